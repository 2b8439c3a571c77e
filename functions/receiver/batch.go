package receiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
)

// batchItem is one element of a batched-mode body: the event, or why it
// could not be read. One bad element never spoils the others.
type batchItem struct {
	ev  event.Event
	err error
}

// errBadBatch wraps failures of the batch as a whole (not a JSON array,
// too many events); per-element problems live in batchItem.err.
var errBadBatch = errors.New("invalid batch")

// decodeBatch reads an application/cloudevents-batch+json body: a JSON
// array of structured-mode events. It parses the array first and then each
// element on its own, so that a malformed event is reported by its index
// rather than failing the whole batch.
func decodeBatch(body []byte, maxEvents int) ([]batchItem, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return nil, fmt.Errorf("%w: body must be a JSON array of events", errBadBatch)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(trimmed, &raws); err != nil {
		return nil, fmt.Errorf("%w: body is not a valid JSON array", errBadBatch)
	}
	if len(raws) > maxEvents {
		return nil, fmt.Errorf("%w: %d events, limit %d", errBadBatch, len(raws), maxEvents)
	}
	items := make([]batchItem, len(raws))
	for i, raw := range raws {
		if err := json.Unmarshal(raw, &items[i].ev); err != nil {
			items[i].err = fmt.Errorf("event %d is not a structured CloudEvent: %s", i, firstLine(err))
			continue
		}
		if err := items[i].ev.Validate(); err != nil {
			items[i].err = fmt.Errorf("event %d: %s", i, firstLine(err))
		}
	}
	return items, nil
}

// firstLine keeps error texts short and single-line for HTTP bodies.
func firstLine(err error) string {
	s := err.Error()
	if i := bytes.IndexByte([]byte(s), '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
