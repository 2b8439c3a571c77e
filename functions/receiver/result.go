package receiver

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/veil-ai/veil/functions/batcher"
)

// Result and rejection event types. None of them matches the transaction
// trigger's type filter, so a Broker reply cannot loop back into us.
const (
	ResultEventType      = "dev.veil.fraud.score.v1"
	ResultBatchEventType = "dev.veil.fraud.score.batch.v1"
	RejectedEventType    = "dev.veil.transaction.rejected.v1"
)

// resultID is deterministic in the input's (source, id), so a redelivered
// transaction yields an identical result event that downstream can dedup.
func resultID(source, id string) string {
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write([]byte(id))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// appendResultData writes {"transaction_id","score","fraud","model",
// "model_version"}; the score uses float32's shortest form, which parses
// back to the exact float32 the model produced.
func appendResultData(b []byte, s batcher.Scored, threshold float64) []byte {
	b = append(b, `{"transaction_id":`...)
	b = strconv.AppendQuote(b, s.TransactionID)
	b = append(b, `,"score":`...)
	b = strconv.AppendFloat(b, float64(s.Score), 'g', -1, 32)
	b = append(b, `,"fraud":`...)
	b = strconv.AppendBool(b, float64(s.Score) > threshold)
	b = append(b, `,"model":`...)
	b = strconv.AppendQuote(b, s.Model)
	b = append(b, `,"model_version":`...)
	b = strconv.AppendQuote(b, s.Version)
	return append(b, '}')
}

func (h *Handler) resultEvent(inSource, inID string, s batcher.Scored) event.Event {
	ev := event.New()
	ev.SetID(resultID(inSource, inID))
	ev.SetSource(h.cfg.Source)
	ev.SetType(ResultEventType)
	setJSONData(&ev, appendResultData(nil, s, h.cfg.Threshold))
	return ev
}

// BatchResultEvent carries every result of one runtime request as a JSON
// array, for --sink_batch; its id is derived from its rows' keys.
func (h *Handler) BatchResultEvent(batch []batcher.Scored) event.Event {
	hash := sha256.New()
	b := append(make([]byte, 0, 96*len(batch)), '[')
	for i, s := range batch {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendResultData(b, s, h.cfg.Threshold)
		hash.Write([]byte(s.Key))
		hash.Write([]byte{0})
	}
	b = append(b, ']')
	ev := event.New()
	ev.SetID(hex.EncodeToString(hash.Sum(nil)[:16]))
	ev.SetSource(h.cfg.Source)
	ev.SetType(ResultBatchEventType)
	setJSONData(&ev, b)
	return ev
}

// rejection describes one batch element that will not be scored.
type rejection struct {
	Index  int    `json:"index"`
	ID     string `json:"id,omitempty"`
	Source string `json:"source,omitempty"`
	Status int    `json:"status"`
	Reason string `json:"reason"`
}

func (h *Handler) rejectionEvent(r rejection) event.Event {
	ev := event.New()
	if r.ID != "" {
		ev.SetID(resultID(r.Source, r.ID) + "-rejected")
	} else {
		ev.SetID(uuid.NewString()) // nothing stable to derive it from
	}
	ev.SetSource(h.cfg.Source)
	ev.SetType(RejectedEventType)
	_ = ev.SetData(event.ApplicationJSON, r)
	return ev
}

// setJSONData attaches already-encoded JSON. event.SetData would mark a
// []byte payload as binary, and structured or batched mode would then carry
// it base64-encoded: a third more egress for nothing.
func setJSONData(ev *event.Event, data []byte) {
	ev.SetDataContentType(event.ApplicationJSON)
	ev.DataEncoded = data
	ev.DataBase64 = false
}
