package receiver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/client"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// HTTPSink sends result events to a CloudEvents HTTP endpoint such as the
// K_SINK that a SinkBinding injects, in binary mode, one POST per event
// (Brokers do not accept batched mode).
type HTTPSink struct {
	client client.Client
}

// NewHTTPSink targets url with the given HTTP client (nil: a default one).
func NewHTTPSink(url string, hc *http.Client) (*HTTPSink, error) {
	opts := []cehttp.Option{cehttp.WithTarget(url)}
	if hc != nil {
		opts = append(opts, cehttp.WithClient(*hc))
	}
	p, err := cloudevents.NewHTTP(opts...)
	if err != nil {
		return nil, fmt.Errorf("result sink %s: %w", url, err)
	}
	c, err := cloudevents.NewClient(p)
	if err != nil {
		return nil, fmt.Errorf("result sink %s: %w", url, err)
	}
	return &HTTPSink{client: c}, nil
}

// sinkParallelism bounds concurrent POSTs for one batch of results.
const sinkParallelism = 8

// Send delivers the events, up to sinkParallelism at a time, and fails if
// any one was not acknowledged (the caller then answers 5xx and the
// sender redelivers; result ids are deterministic, so the sink can drop
// the ones it already has).
func (s *HTTPSink) Send(ctx context.Context, events []event.Event) error {
	if len(events) == 1 {
		if res := s.client.Send(ctx, events[0]); !protocol.IsACK(res) {
			return fmt.Errorf("send result event: %w", res)
		}
		return nil
	}
	errs := make([]error, len(events))
	sem := make(chan struct{}, sinkParallelism)
	var wg sync.WaitGroup
	for i := range events {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if res := s.client.Send(ctx, events[i]); !protocol.IsACK(res) {
				errs[i] = fmt.Errorf("send result event %d of %d: %w", i+1, len(events), res)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
