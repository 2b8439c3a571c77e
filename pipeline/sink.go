package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// The CloudEvents types of the batcher's results: one per transaction, or
// one per runtime batch (its --sink_batch option) holding an array.
const (
	ResultEventType      = "dev.veil.fraud.score.v1"
	ResultBatchEventType = "dev.veil.fraud.score.batch.v1"
)

// maxSinkBody bounds one result request; a result event is ~150 bytes, a
// batched one a few hundred per row.
const maxSinkBody = 8 << 20

// ScoreResult is the data of one result event.
type ScoreResult struct {
	TransactionID string  `json:"transaction_id"`
	Score         float64 `json:"score"`
	Fraud         bool    `json:"fraud"`
	Model         string  `json:"model"`
	ModelVersion  string  `json:"model_version"`
}

// Arrival is a result as the sink saw it.
type Arrival struct {
	ScoreResult
	At time.Time
}

// SinkCounts are the sink's totals.
type SinkCounts struct {
	Events      int   // result events received
	Results     int   // results in them (a batched result event holds several)
	Distinct    int   // distinct transaction ids
	Duplicates  int   // results for an id already seen
	Ignored     int   // events of another type
	Rejected    int   // result events whose data did not decode
	ResultBytes int64 // data bytes of the result events: what left the cloud side, per the egress ratio
}

// Sink is the local stand-in for K_SINK: a CloudEvents receiver that keeps
// every result with its arrival time.
type Sink struct {
	srv      *http.Server
	listener net.Listener
	now      func() time.Time

	mu       sync.Mutex
	first    map[string]Arrival // first result per transaction id
	arrivals []Arrival          // every result, in arrival order
	counts   SinkCounts
	changed  chan struct{} // closed and replaced on every new distinct id
	served   chan error
}

// NewSink listens on addr (e.g. "127.0.0.1:0"); call Serve to start.
func NewSink(addr string) (*Sink, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sink: listen on %s: %w", addr, err)
	}
	s := &Sink{
		listener: l,
		now:      time.Now,
		first:    make(map[string]Arrival),
		changed:  make(chan struct{}),
		served:   make(chan error, 1),
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// ServeHTTP reads one request in binary, structured or batched content
// mode with the CloudEvents SDK's HTTP binding and answers 202 once every
// result in it is recorded, 400 if any cannot be read.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "CloudEvents are POSTed", http.StatusMethodNotAllowed)
		return
	}
	at := s.now()
	r.Body = http.MaxBytesReader(w, r.Body, maxSinkBody)
	var events []event.Event
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == contentTypeBatch {
		evs, err := cehttp.NewEventsFromHTTPRequest(r)
		if err != nil {
			http.Error(w, "batched CloudEvents: "+err.Error(), http.StatusBadRequest)
			return
		}
		events = evs
	} else {
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			http.Error(w, "CloudEvent: "+err.Error(), http.StatusBadRequest)
			return
		}
		events = []event.Event{*e}
	}
	for _, e := range events {
		if err := s.receive(at, e); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	w.WriteHeader(http.StatusAccepted)
}

// contentTypeBatch is CloudEvents' batched content mode.
const contentTypeBatch = "application/cloudevents-batch+json"

// URL is where to send result events (the K_SINK value).
func (s *Sink) URL() string { return "http://" + s.listener.Addr().String() + "/" }

// Serve serves until Close.
func (s *Sink) Serve() {
	go func() {
		err := s.srv.Serve(s.listener)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.served <- err
	}()
}

// Close stops the sink, letting requests in flight finish within ctx.
func (s *Sink) Close(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("sink: shutdown: %w", err)
	}
	select {
	case err := <-s.served:
		if err != nil {
			return fmt.Errorf("sink: serve: %w", err)
		}
	default: // Serve was never called
	}
	return nil
}

// receive records one event; only undecodable result data is an error
// (400: redelivering the same bytes would not help).
func (s *Sink) receive(at time.Time, e event.Event) error {
	if e.Type() != ResultEventType && e.Type() != ResultBatchEventType {
		s.mu.Lock()
		s.counts.Ignored++
		s.mu.Unlock()
		return nil
	}
	data := e.Data()
	results, err := decodeResults(data)
	if err != nil {
		s.mu.Lock()
		s.counts.Rejected++
		s.mu.Unlock()
		slog.Warn("sink: undecodable result event", "id", e.ID(), "err", err)
		return fmt.Errorf("result data of event %q: %w", e.ID(), err)
	}
	s.record(at, int64(len(data)), results)
	return nil
}

func (s *Sink) record(at time.Time, n int64, results []ScoreResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts.Events++
	s.counts.ResultBytes += n
	newID := false
	for _, r := range results {
		a := Arrival{ScoreResult: r, At: at}
		s.arrivals = append(s.arrivals, a)
		s.counts.Results++
		if _, seen := s.first[r.TransactionID]; seen {
			s.counts.Duplicates++
			continue
		}
		s.first[r.TransactionID] = a
		newID = true
	}
	s.counts.Distinct = len(s.first)
	if newID {
		close(s.changed)
		s.changed = make(chan struct{})
	}
}

// decodeResults accepts one result object or, for the batcher's
// one-event-per-batch option, an array of them.
func decodeResults(data []byte) ([]ScoreResult, error) {
	data = bytes.TrimSpace(data)
	var out []ScoreResult
	if len(data) > 0 && data[0] == '[' {
		if err := json.Unmarshal(data, &out); err != nil {
			return nil, fmt.Errorf("decode result array: %w", err)
		}
	} else {
		var r ScoreResult
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("decode result: %w", err)
		}
		out = []ScoreResult{r}
	}
	for i, r := range out {
		if r.TransactionID == "" {
			return nil, fmt.Errorf("result %d has no transaction_id", i)
		}
	}
	return out, nil
}

// WaitDistinct blocks until results for want distinct transactions have
// arrived, or ctx ends.
func (s *Sink) WaitDistinct(ctx context.Context, want int) error {
	for {
		s.mu.Lock()
		have, ch := len(s.first), s.changed
		s.mu.Unlock()
		if have >= want {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for results (%d of %d arrived): %w", have, want, ctx.Err())
		}
	}
}

// Counts returns the totals so far.
func (s *Sink) Counts() SinkCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// First returns the first result per transaction id.
func (s *Sink) First() map[string]Arrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Arrival, len(s.first))
	for k, v := range s.first {
		out[k] = v
	}
	return out
}

// Arrivals returns every result in arrival order.
func (s *Sink) Arrivals() []Arrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Arrival(nil), s.arrivals...)
}
