// Package receiver is the CloudEvents side of the batcher: it reads
// transactions in binary, structured and batched content modes, scales
// them, hands them to the micro-batcher and answers each request only once
// its scores exist, with result events as the HTTP reply (Knative Broker
// reply) or sent to K_SINK.
//
// Status codes follow the Knative data-plane contract, so that a Broker
// retries exactly what a retry can fix:
//
//   - 200 with the result event(s) as the reply; 202 with no body when the
//     results went to K_SINK, or when the event is of another type
//     (acknowledged, ignored, counted).
//   - 400 for a malformed event or transaction (not retried; a Broker sends
//     it to its dead-letter sink), with the reason as text.
//   - 413 for a body over --max_body_bytes, 415 for a body that is no
//     CloudEvent at all.
//   - 429 when the local queue is full, 503 when the runtime is unreachable,
//     failing or too slow, or the batcher is shutting down: retryable.
//
// Batched mode (application/cloudevents-batch+json) is solicited only, by
// our own generator; a Broker never sends it. Each element is judged on
// its own:
//
//   - if every transaction in it was scored (or was ignored/rejected), the
//     answer is 200 with a batch of events: one result per scored
//     transaction and one dev.veil.transaction.rejected.v1 event (index,
//     id, source, status 400, reason) per malformed element; 400 with the
//     same body if every element was malformed.
//   - if any transaction hit a retryable failure, the answer is 429 (all of
//     them queue-full) or 503, so the sender redelivers the whole batch; the
//     rows that were scored meanwhile are cached by (source, id) and are
//     answered from the cache on redelivery, never scored twice.
package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/veil-ai/veil/functions/batcher"
	"github.com/veil-ai/veil/functions/transaction"
)

// Content types of the three modes.
const (
	contentTypeStructured = "application/cloudevents+json"
	contentTypeBatch      = "application/cloudevents-batch+json"
)

// Scorer is the part of the batcher the handler uses.
type Scorer interface {
	Score(ctx context.Context, reqs []batcher.Request, out []batcher.Outcome)
}

// Sink sends result events somewhere other than the HTTP reply (K_SINK).
type Sink interface {
	Send(ctx context.Context, events []event.Event) error
}

// Config is the receiver's part of the batcher configuration.
type Config struct {
	Source         string  // source attribute of result events
	Threshold      float64 // fraud = score > Threshold
	MaxBodyBytes   int64   // largest request body
	MaxBatchEvents int     // most events in one batched-mode request
	// SinkBatch: results go to the sink as one event per runtime batch,
	// sent by the batcher's Publisher, so the handler sends nothing itself.
	SinkBatch bool
}

// Handler is the CloudEvents HTTP endpoint.
type Handler struct {
	cfg     Config
	scaler  *transaction.Scaler
	scorer  Scorer
	sink    Sink // nil: reply in the HTTP response
	metrics *Metrics
	log     *slog.Logger
	ready   atomic.Bool
}

// NewHandler builds the endpoint; sink may be nil.
func NewHandler(cfg Config, scaler *transaction.Scaler, scorer Scorer, sink Sink, m *Metrics, log *slog.Logger) (*Handler, error) {
	switch {
	case scaler == nil || scorer == nil || m == nil || log == nil:
		return nil, errors.New("receiver: scaler, scorer, metrics and logger are required")
	case cfg.Source == "":
		return nil, errors.New("receiver: result source must not be empty")
	case cfg.MaxBodyBytes <= 0 || cfg.MaxBatchEvents <= 0:
		return nil, errors.New("receiver: body and batch limits must be positive")
	case cfg.SinkBatch && sink == nil:
		return nil, errors.New("receiver: batched sink results need a sink (K_SINK)")
	}
	h := &Handler{cfg: cfg, scaler: scaler, scorer: scorer, sink: sink, metrics: m, log: log}
	h.ready.Store(true)
	return h, nil
}

// SetReady switches the readiness probe; SIGTERM handling turns it off.
func (h *Handler) SetReady(ok bool) { h.ready.Store(ok) }

// Liveness answers the liveness probe.
func (h *Handler) Liveness(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }

// Readiness answers the readiness probe: 503 while draining.
func (h *Handler) Readiness(w http.ResponseWriter, _ *http.Request) {
	if !h.ready.Load() {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// ServeHTTP receives one request in any of the three content modes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "CloudEvents are POSTed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.drop("too_large", 1)
			http.Error(w, fmt.Sprintf("body exceeds %d bytes", h.cfg.MaxBodyBytes), http.StatusRequestEntityTooLarge)
			return
		}
		h.drop("read_error", 1)
		http.Error(w, "reading body failed", http.StatusBadRequest)
		return
	}
	h.metrics.BytesIn.Add(float64(len(body) + eventHeaderBytes(r.Header)))
	cw := &countingWriter{ResponseWriter: w}
	defer func() { h.metrics.BytesOut.Add(float64(cw.bytes)) }()

	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mediaType {
	case contentTypeBatch:
		h.serveBatch(r.Context(), cw, body)
	case contentTypeStructured:
		h.serveSingle(r.Context(), cw, r.Header, body, "structured")
	default:
		h.serveSingle(r.Context(), cw, r.Header, body, "binary")
	}
}

// prepared is one transaction ready for the batcher, or why not.
type prepared struct {
	source, id string
	req        batcher.Request
}

// prepare checks an event and turns it into a batcher request; ok=false
// with err=nil means "another type, ignore".
func (h *Handler) prepare(ev *event.Event) (p prepared, ok bool, err error) {
	if ev.Type() != transaction.EventType {
		return p, false, nil
	}
	if ct := ev.DataContentType(); ct != "" && !isJSON(ct) {
		return p, false, fmt.Errorf("%w: datacontenttype must be application/json", transaction.ErrMalformed)
	}
	tx, err := transaction.Decode(ev.Data(), h.scaler.Required())
	if err != nil {
		return p, false, err
	}
	if tx.ID == "" {
		tx.ID = ev.ID()
	}
	p = prepared{source: ev.Source(), id: ev.ID(), req: batcher.Request{
		Key:           dedupKey(ev.Source(), ev.ID()),
		TransactionID: tx.ID,
		Features:      h.scaler.Transform(make([]float32, 0, h.scaler.Width()), &tx),
	}}
	return p, true, nil
}

func (h *Handler) serveSingle(ctx context.Context, w *countingWriter, header http.Header, body []byte, mode string) {
	ev, err := binding.ToEvent(ctx, cehttp.NewMessage(header, io.NopCloser(bytes.NewReader(body))))
	if err == nil {
		err = ev.Validate()
	}
	if err != nil {
		h.metrics.EventsIn.WithLabelValues(mode, "invalid").Inc()
		if errors.Is(err, binding.ErrUnknownEncoding) {
			h.drop("not_cloudevent", 1)
			http.Error(w, "not a CloudEvent: expected ce-* headers or "+contentTypeStructured, http.StatusUnsupportedMediaType)
			return
		}
		h.drop("invalid_event", 1)
		http.Error(w, "invalid CloudEvent: "+firstLine(err), http.StatusBadRequest)
		return
	}
	reply, status, reason := h.handle(ctx, ev, mode)
	switch {
	case status >= 300:
		if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		http.Error(w, reason, status)
	case reply == nil:
		w.WriteHeader(status)
	case mode == "structured":
		writeStructured(w, reply)
	default:
		if err := cehttp.WriteResponseWriter(ctx, binding.ToMessage(reply), http.StatusOK, w); err != nil {
			h.log.Warn("writing reply failed", "error", err)
		}
	}
}

// Handle scores one decoded event, for hosts that do their own HTTP
// decoding, such as the Knative Functions (func-go) scaffolding. It
// returns the reply event (nil: none) and, for failures, a
// cehttp.Result carrying the status code the HTTP path would answer.
func (h *Handler) Handle(ctx context.Context, ev event.Event) (*event.Event, error) {
	if err := ev.Validate(); err != nil {
		h.metrics.EventsIn.WithLabelValues("sdk", "invalid").Inc()
		h.drop("invalid_event", 1)
		return nil, cehttp.NewResult(http.StatusBadRequest, "invalid CloudEvent: %s", firstLine(err))
	}
	reply, status, reason := h.handle(ctx, &ev, "sdk")
	if status >= 300 {
		return nil, cehttp.NewResult(status, "%s", reason)
	}
	return reply, nil
}

// handle is the single-event path shared by ServeHTTP and Handle: the
// reply (nil for none), the status, and the reason text for failures.
func (h *Handler) handle(ctx context.Context, ev *event.Event, mode string) (*event.Event, int, string) {
	p, ok, err := h.prepare(ev)
	switch {
	case err != nil:
		h.metrics.EventsIn.WithLabelValues(mode, "transaction").Inc()
		h.drop("malformed", 1)
		return nil, http.StatusBadRequest, firstLine(err)
	case !ok:
		h.metrics.EventsIn.WithLabelValues(mode, "other").Inc()
		h.metrics.EventsIgnored.Inc()
		return nil, http.StatusAccepted, ""
	}
	h.metrics.EventsIn.WithLabelValues(mode, "transaction").Inc()
	out := make([]batcher.Outcome, 1)
	h.scorer.Score(ctx, []batcher.Request{p.req}, out)
	if out[0].Duplicate && out[0].Err == nil {
		h.metrics.DedupHits.Inc()
	}
	if err := out[0].Err; err != nil {
		status, reason := classify(err)
		h.drop(reason, 1)
		h.log.Debug("transaction not scored", "reason", reason, "status", status, "error", err)
		return nil, status, "not scored, retry later: " + reason
	}
	res := h.resultEvent(p.source, p.id, out[0].Scored)
	if h.sink != nil {
		// A redelivery re-sends its result: the ack may have been lost
		// after the sink got it, and the deterministic id lets downstream
		// drop the copy.
		if err := h.sendToSink(ctx, []event.Event{res}); err != nil {
			h.drop("sink", 1)
			h.log.Warn("result not delivered to sink", "error", err)
			return nil, http.StatusServiceUnavailable, "result sink unavailable"
		}
		return nil, http.StatusAccepted, ""
	}
	h.metrics.ResultsOut.WithLabelValues("reply").Inc()
	return &res, http.StatusOK, ""
}

// sendToSink sends per-event results to K_SINK. In --sink_batch mode the
// batcher's Publisher has already sent them with their batch, so nothing
// is sent here.
func (h *Handler) sendToSink(ctx context.Context, events []event.Event) error {
	if h.cfg.SinkBatch || len(events) == 0 {
		return nil
	}
	if err := h.sink.Send(ctx, events); err != nil {
		return err
	}
	h.metrics.ResultsOut.WithLabelValues("sink").Add(float64(len(events)))
	for i := range events {
		h.metrics.BytesOut.Add(float64(EventWireBytes(&events[i])))
	}
	return nil
}

func (h *Handler) serveBatch(ctx context.Context, w *countingWriter, body []byte) {
	items, err := decodeBatch(body, h.cfg.MaxBatchEvents)
	if err != nil {
		h.metrics.EventsIn.WithLabelValues("batched", "invalid").Inc()
		h.drop("invalid_batch", 1)
		http.Error(w, firstLine(err), http.StatusBadRequest)
		return
	}
	var (
		preps    []prepared
		rejected []rejection
	)
	for i := range items {
		it := &items[i]
		if it.err != nil {
			h.metrics.EventsIn.WithLabelValues("batched", "invalid").Inc()
			rejected = append(rejected, rejection{Index: i, ID: it.ev.ID(), Source: it.ev.Source(), Status: http.StatusBadRequest, Reason: firstLine(it.err)})
			continue
		}
		p, ok, err := h.prepare(&it.ev)
		switch {
		case err != nil:
			h.metrics.EventsIn.WithLabelValues("batched", "transaction").Inc()
			rejected = append(rejected, rejection{Index: i, ID: it.ev.ID(), Source: it.ev.Source(), Status: http.StatusBadRequest, Reason: firstLine(err)})
		case !ok:
			h.metrics.EventsIn.WithLabelValues("batched", "other").Inc()
			h.metrics.EventsIgnored.Inc()
		default:
			h.metrics.EventsIn.WithLabelValues("batched", "transaction").Inc()
			preps = append(preps, p)
		}
	}
	if len(rejected) > 0 {
		h.drop("malformed", len(rejected))
	}
	reqs := make([]batcher.Request, len(preps))
	for i := range preps {
		reqs[i] = preps[i].req
	}
	out := make([]batcher.Outcome, len(reqs))
	if len(reqs) > 0 {
		h.scorer.Score(ctx, reqs, out)
	}
	failed, queueFull := 0, 0
	var firstErr error
	for _, o := range out {
		if o.Duplicate && o.Err == nil {
			h.metrics.DedupHits.Inc()
		}
		if o.Err != nil {
			failed++
			if errors.Is(o.Err, batcher.ErrQueueFull) {
				queueFull++
			}
			if firstErr == nil {
				firstErr = o.Err
			}
			_, reason := classify(o.Err)
			h.drop(reason, 1)
		}
	}
	if failed > 0 {
		status, reason := classify(firstErr)
		if queueFull < failed && status == http.StatusTooManyRequests {
			status = http.StatusServiceUnavailable
		}
		h.log.Debug("batch not fully scored", "failed", failed, "events", len(items), "reason", reason, "status", status, "error", firstErr)
		w.Header().Set("Retry-After", "1")
		http.Error(w, fmt.Sprintf("%d of %d transactions not scored (%s); redeliver the batch, scored ones are kept", failed, len(reqs), reason), status)
		return
	}
	results := make([]event.Event, 0, len(preps)+len(rejected))
	for i, p := range preps {
		results = append(results, h.resultEvent(p.source, p.id, out[i].Scored))
	}
	if h.sink != nil {
		if err := h.sendToSink(ctx, results); err != nil {
			h.drop("sink", len(results))
			h.log.Warn("results not delivered to sink", "error", err)
			http.Error(w, "result sink unavailable", http.StatusServiceUnavailable)
			return
		}
		results = results[:0]
	} else {
		h.metrics.ResultsOut.WithLabelValues("reply").Add(float64(len(results)))
	}
	for _, r := range rejected {
		results = append(results, h.rejectionEvent(r))
	}
	status := http.StatusOK
	if len(rejected) > 0 && len(preps) == 0 && len(rejected) == len(items) {
		status = http.StatusBadRequest
	}
	if len(results) == 0 && h.sink != nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	writeBatch(w, status, results)
}

func (h *Handler) drop(reason string, n int) {
	h.metrics.Dropped.WithLabelValues(reason).Add(float64(n))
}

// classify maps a scoring failure to an HTTP status and a metric reason.
func classify(err error) (int, string) {
	switch {
	case errors.Is(err, batcher.ErrQueueFull):
		return http.StatusTooManyRequests, "queue_full"
	case errors.Is(err, batcher.ErrClosed):
		return http.StatusServiceUnavailable, "shutting_down"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, "timeout"
	}
	var r interface{ Retryable() bool }
	if errors.As(err, &r) && !r.Retryable() {
		// The runtime refused the request itself (a configuration problem,
		// e.g. wrong model name): still 5xx, the event is not at fault.
		return http.StatusBadGateway, "runtime_rejected"
	}
	return http.StatusServiceUnavailable, "runtime_unavailable"
}

func dedupKey(source, id string) string { return source + "\x00" + id }

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

func writeStructured(w http.ResponseWriter, ev *event.Event) {
	writeEvents(w, http.StatusOK, contentTypeStructured, ev)
}

func writeBatch(w http.ResponseWriter, status int, events []event.Event) {
	writeEvents(w, status, contentTypeBatch, events)
}

// writeEvents answers with v (one event or a batch) as JSON of the given
// CloudEvents content type.
func writeEvents(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding reply failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// eventHeaderBytes counts the headers that carry an event in binary mode
// (ce-* attributes and the content type), so that byte counts compare
// binary and structured mode fairly.
func eventHeaderBytes(h http.Header) int {
	n := 0
	for k, vs := range h {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "ce-") && lk != "content-type" {
			continue
		}
		for _, v := range vs {
			n += len(k) + len(v) + 4 // ": " and CRLF
		}
	}
	return n
}

// EventWireBytes is the size of ev sent in binary mode: its body plus the
// ce-* and content-type headers, counted as eventHeaderBytes does. Used
// for results sent to K_SINK, which do not pass through countingWriter.
func EventWireBytes(ev *event.Event) int {
	n := len(ev.Data())
	add := func(name, v string) {
		if v != "" {
			n += len(name) + len(v) + 4
		}
	}
	add("Ce-Specversion", ev.SpecVersion())
	add("Ce-Id", ev.ID())
	add("Ce-Source", ev.Source())
	add("Ce-Type", ev.Type())
	add("Ce-Subject", ev.Subject())
	add("Content-Type", ev.DataContentType())
	return n
}

// countingWriter counts the result bytes we send back: body plus event
// headers, like eventHeaderBytes on the way in. Error texts are not
// results and are not counted.
type countingWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (c *countingWriter) WriteHeader(status int) {
	c.status = status
	if status < 300 {
		c.bytes += eventHeaderBytes(c.Header())
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.WriteHeader(http.StatusOK)
	}
	n, err := c.ResponseWriter.Write(b)
	if c.status < 300 {
		c.bytes += n
	}
	return n, err
}
