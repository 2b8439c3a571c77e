package receiver

import (
	"context"
	"fmt"
	"net/http"

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

// Send delivers the events in order and stops at the first failure.
func (s *HTTPSink) Send(ctx context.Context, events []event.Event) error {
	for i := range events {
		if res := s.client.Send(ctx, events[i]); !protocol.IsACK(res) {
			return fmt.Errorf("send result event %d of %d: %w", i+1, len(events), res)
		}
	}
	return nil
}
