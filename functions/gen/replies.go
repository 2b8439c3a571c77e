package gen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// Reply event types (the batcher's; declared here too so that gen does not
// depend on the receiver).
const (
	ResultEventType   = "dev.veil.fraud.score.v1"
	RejectedEventType = "dev.veil.transaction.rejected.v1"
)

// Result is one fraud score from a reply.
type Result struct {
	EventID       string  `json:"id"` // the result event's id
	TransactionID string  `json:"transaction_id"`
	Score         float32 `json:"score"`
	Fraud         bool    `json:"fraud"`
	Model         string  `json:"model"`
	ModelVersion  string  `json:"model_version"`
}

// Rejection is one event the batcher refused inside a batch.
type Rejection struct {
	Index  int    `json:"index"`
	ID     string `json:"id"`
	Source string `json:"source"`
	Status int    `json:"status"`
	Reason string `json:"reason"`
}

// ParseReply reads the events in a 2xx reply (binary, structured or
// batched mode); an empty body has none.
func ParseReply(header http.Header, body []byte) ([]Result, []Rejection, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil, nil
	}
	var events []event.Event
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	if mt == "application/cloudevents-batch+json" {
		if err := json.Unmarshal(body, &events); err != nil {
			return nil, nil, fmt.Errorf("batch reply: %w", err)
		}
	} else {
		ev, err := cehttp.NewEventFromHTTPResponse(&http.Response{Header: header, Body: io.NopCloser(bytes.NewReader(body))})
		if err != nil {
			return nil, nil, fmt.Errorf("reply: %w", err)
		}
		events = []event.Event{*ev}
	}
	var results []Result
	var rejections []Rejection
	for i := range events {
		ev := &events[i]
		switch ev.Type() {
		case ResultEventType:
			var r Result
			if err := json.Unmarshal(ev.Data(), &r); err != nil {
				return nil, nil, fmt.Errorf("result event %s: %w", ev.ID(), err)
			}
			r.EventID = ev.ID()
			results = append(results, r)
		case RejectedEventType:
			var r Rejection
			if err := json.Unmarshal(ev.Data(), &r); err != nil {
				return nil, nil, fmt.Errorf("rejection event %s: %w", ev.ID(), err)
			}
			rejections = append(rejections, r)
		}
	}
	return results, rejections, nil
}
