package gen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/veil-ai/veil/functions/transaction"
)

// Mode is how events travel.
type Mode string

// Content modes the generator sends.
const (
	ModeBinary  Mode = "binary"  // one event per request, attributes in ce-* headers
	ModeBatched Mode = "batched" // application/cloudevents-batch+json, BatchEvents per request
)

// ParseMode checks a mode name.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeBinary, ModeBatched:
		return Mode(s), nil
	}
	return "", fmt.Errorf("unknown mode %q (want binary or batched)", s)
}

// SendConfig says where and how to send.
type SendConfig struct {
	URL         string
	Mode        Mode
	BatchEvents int     // events per request in batched mode
	Rate        float64 // target events per second; 0 = as fast as possible
	Concurrency int     // requests in flight
	Source      string  // CloudEvents source of every event
	// Retries per request on 5xx, 429, 404, 408, 409 and connection
	// errors, with exponential backoff from MinBackoff to MaxBackoff (a
	// Retry-After header is honoured up to MaxBackoff). A retried event
	// keeps its id.
	Retries    int
	MinBackoff time.Duration
	MaxBackoff time.Duration
	Timeout    time.Duration // per attempt
	// Redeliver is the fraction of requests sent a second time after their
	// first successful answer, as an at-least-once broker would.
	Redeliver float64
	Seed      uint64 // for the redelivery choice
	// MaxReplyBytes bounds a reply body.
	MaxReplyBytes int64
	HTTPClient    *http.Client
	Progress      io.Writer // nil: no progress bar
	Total         int       // events expected, for the progress bar (0: unknown)
	Hooks         Hooks
}

// Hooks let a caller observe each request. They run on the sending
// goroutines and must be safe for concurrent use and quick.
type Hooks struct {
	// OnSend is called before each attempt.
	OnSend func(ids []string, attempt int, at time.Time)
	// OnAck is called once per request with its final answer.
	OnAck func(Ack)
}

// Ack is a request's final outcome.
type Ack struct {
	IDs         []string
	Events      []Labeled
	Status      int // 0 when no answer arrived
	Header      http.Header
	Body        []byte
	Attempts    int
	Redelivery  bool // a deliberate second delivery
	FirstSentAt time.Time
	AckedAt     time.Time
	Err         error // set when the request gave up
}

// Stats summarises a run.
type Stats struct {
	Events      int64 // generated events
	Requests    int64 // requests answered 2xx (including redeliveries)
	Acked       int64 // events answered 2xx (first deliveries)
	Rejected    int64 // events answered 4xx (not retried)
	Failed      int64 // events given up after the retries
	Retries     int64 // extra attempts
	Redelivered int64 // events deliberately delivered twice
	BytesSent   int64 // request bytes: bodies plus ce-* and content-type headers
	BytesRecv   int64 // 2xx reply bytes: bodies plus ce-* and content-type headers
	Elapsed     time.Duration
}

func (c *SendConfig) defaults() error {
	if c.URL == "" {
		return errors.New("gen: URL is required")
	}
	if c.Mode == "" {
		c.Mode = ModeBinary
	}
	if _, err := ParseMode(string(c.Mode)); err != nil {
		return err
	}
	if c.BatchEvents <= 0 {
		c.BatchEvents = 100
	}
	if c.Mode == ModeBinary {
		c.BatchEvents = 1
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.Source == "" {
		c.Source = "urn:veil:gen"
	}
	if c.Retries < 0 {
		return errors.New("gen: retries must not be negative")
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 50 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = 2 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.MaxReplyBytes <= 0 {
		c.MaxReplyBytes = 16 << 20
	}
	if c.Rate < 0 || c.Redeliver < 0 || c.Redeliver > 1 {
		return errors.New("gen: rate must be >= 0 and redeliver in [0,1]")
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.Concurrency, MaxConnsPerHost: c.Concurrency}}
	}
	return nil
}

// unit is one request's worth of events.
type unit struct {
	events []Labeled
	ids    []string
}

// Send delivers every transaction from txs and returns when all are
// answered (or given up), or ctx ends. The error reports events that
// were never acknowledged.
func Send(ctx context.Context, cfg SendConfig, txs iter.Seq[Labeled]) (Stats, error) {
	if err := cfg.defaults(); err != nil {
		return Stats{}, err
	}
	s := &sender{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x72656465))}
	start := time.Now()
	units := make(chan unit, cfg.Concurrency)
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range units {
				s.deliver(ctx, u)
			}
		}()
	}
	var stopProgress func()
	if cfg.Progress != nil {
		stopProgress = s.progress(cfg.Progress, start)
	}
	s.feed(ctx, txs, units, start)
	close(units)
	wg.Wait()
	if stopProgress != nil {
		stopProgress()
	}
	st := s.stats()
	st.Elapsed = time.Since(start)
	if err := ctx.Err(); err != nil {
		return st, fmt.Errorf("gen: stopped after %d of %d events: %w", st.Acked, st.Events, err)
	}
	if st.Failed > 0 {
		return st, fmt.Errorf("gen: %d events not delivered after %d retries", st.Failed, cfg.Retries)
	}
	return st, nil
}

type sender struct {
	cfg SendConfig
	mu  sync.Mutex // guards rng
	rng *rand.Rand

	events, requests, acked, rejected, failed, retries, redelivered, bytesSent, bytesRecv atomic.Int64
}

func (s *sender) stats() Stats {
	return Stats{Events: s.events.Load(), Requests: s.requests.Load(), Acked: s.acked.Load(), Rejected: s.rejected.Load(),
		Failed: s.failed.Load(), Retries: s.retries.Load(), Redelivered: s.redelivered.Load(),
		BytesSent: s.bytesSent.Load(), BytesRecv: s.bytesRecv.Load()}
}

// feed groups events into units and paces them to the target rate.
func (s *sender) feed(ctx context.Context, txs iter.Seq[Labeled], units chan<- unit, start time.Time) {
	var cur unit
	var sent int64
	flush := func() bool {
		if len(cur.events) == 0 {
			return true
		}
		if s.cfg.Rate > 0 {
			due := start.Add(time.Duration(float64(sent) / s.cfg.Rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return false
				}
			}
		}
		select {
		case units <- cur:
		case <-ctx.Done():
			return false
		}
		sent += int64(len(cur.events))
		cur = unit{}
		return true
	}
	for l := range txs {
		s.events.Add(1)
		cur.events = append(cur.events, l)
		cur.ids = append(cur.ids, l.ID)
		if len(cur.events) >= s.cfg.BatchEvents && !flush() {
			return
		}
	}
	flush()
}

// deliver sends one unit until it is answered for good, then maybe once more.
func (s *sender) deliver(ctx context.Context, u unit) {
	body, header := s.encode(u)
	ack := s.attempt(ctx, u, body, header, false)
	if ack.Status < 200 || ack.Status > 299 {
		return
	}
	s.mu.Lock()
	again := s.cfg.Redeliver > 0 && s.rng.Float64() < s.cfg.Redeliver
	s.mu.Unlock()
	if again {
		s.redelivered.Add(int64(len(u.events)))
		s.attempt(ctx, u, body, header, true)
	}
}

func (s *sender) attempt(ctx context.Context, u unit, body []byte, header http.Header, redelivery bool) Ack {
	ack := Ack{IDs: u.ids, Events: u.events, Redelivery: redelivery, FirstSentAt: time.Now()}
	reqBytes := int64(len(body) + headerBytes(header))
	for attempt := 0; ; attempt++ {
		if s.cfg.Hooks.OnSend != nil {
			s.cfg.Hooks.OnSend(u.ids, attempt, time.Now())
		}
		ack.Attempts = attempt + 1
		status, respHeader, respBody, err := s.post(ctx, body, header)
		s.bytesSent.Add(reqBytes)
		ack.Status, ack.Header, ack.Body, ack.Err = status, respHeader, respBody, err
		n := int64(len(u.events))
		switch {
		case err == nil && status >= 200 && status < 300:
			s.requests.Add(1)
			s.bytesRecv.Add(int64(len(respBody) + headerBytes(respHeader)))
			if !redelivery {
				s.acked.Add(n)
			}
			return s.finish(ack)
		case err == nil && !retryable(status):
			if !redelivery {
				s.rejected.Add(n)
			}
			ack.Err = fmt.Errorf("rejected with HTTP %d: %s", status, firstLine(respBody))
			return s.finish(ack)
		}
		if attempt >= s.cfg.Retries || ctx.Err() != nil {
			if !redelivery {
				s.failed.Add(n)
			}
			if ack.Err == nil {
				ack.Err = fmt.Errorf("gave up after %d attempts: HTTP %d", attempt+1, status)
			}
			return s.finish(ack)
		}
		s.retries.Add(1)
		select {
		case <-time.After(s.backoff(attempt, respHeader)):
		case <-ctx.Done():
		}
	}
}

func (s *sender) finish(a Ack) Ack {
	a.AckedAt = time.Now()
	if s.cfg.Hooks.OnAck != nil {
		s.cfg.Hooks.OnAck(a)
	}
	return a
}

func (s *sender) post(ctx context.Context, body []byte, header http.Header) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.MaxReplyBytes+1))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read reply: %w", err)
	}
	if int64(len(b)) > s.cfg.MaxReplyBytes {
		return resp.StatusCode, resp.Header, nil, fmt.Errorf("reply exceeds %d bytes", s.cfg.MaxReplyBytes)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// retryable follows the Knative data-plane contract.
func retryable(status int) bool {
	switch status {
	case http.StatusNotFound, http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests:
		return true
	}
	return status >= 500
}

func (s *sender) backoff(attempt int, h http.Header) time.Duration {
	d := s.cfg.MinBackoff << min(attempt, 20)
	if ra := h.Get("Retry-After"); ra != "" {
		if secs, err := strconv.Atoi(ra); err == nil && secs >= 0 {
			d = max(d, time.Duration(secs)*time.Second)
		}
	}
	d = min(d, s.cfg.MaxBackoff)
	s.mu.Lock()
	jitter := 0.8 + 0.4*s.rng.Float64()
	s.mu.Unlock()
	return time.Duration(float64(d) * jitter)
}

// encode builds a unit's request body and headers.
func (s *sender) encode(u unit) ([]byte, http.Header) {
	h := http.Header{}
	if s.cfg.Mode == ModeBinary {
		l := u.events[0]
		h.Set("Content-Type", "application/json")
		h.Set("Ce-Specversion", "1.0")
		h.Set("Ce-Id", l.ID)
		h.Set("Ce-Source", s.cfg.Source)
		h.Set("Ce-Type", transaction.EventType)
		return l.Transaction.AppendJSON(make([]byte, 0, 256)), h
	}
	h.Set("Content-Type", "application/cloudevents-batch+json")
	b := make([]byte, 0, 320*len(u.events))
	b = append(b, '[')
	for i, l := range u.events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"specversion":"1.0","id":`...)
		b = strconv.AppendQuote(b, l.ID)
		b = append(b, `,"source":`...)
		b = strconv.AppendQuote(b, s.cfg.Source)
		b = append(b, `,"type":"`+transaction.EventType+`","datacontenttype":"application/json","data":`...)
		b = l.Transaction.AppendJSON(b)
		b = append(b, '}')
	}
	return append(b, ']'), h
}

// headerBytes counts the headers that carry an event, like the receiver's
// byte metrics do.
func headerBytes(h http.Header) int {
	n := 0
	for k, vs := range h {
		if len(k) > 3 && (k[:3] == "Ce-" || k[:3] == "ce-") || http.CanonicalHeaderKey(k) == "Content-Type" {
			for _, v := range vs {
				n += len(k) + len(v) + 4
			}
		}
	}
	return n
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

// progress draws a bar on w until the returned func is called.
func (s *sender) progress(w io.Writer, start time.Time) func() {
	done := make(chan struct{})
	finished := make(chan struct{})
	draw := func() {
		st := s.stats()
		total := int64(s.cfg.Total)
		doneEv := st.Acked + st.Rejected + st.Failed
		bar := ""
		if total > 0 {
			const width = 30
			filled := int(min(doneEv, total) * width / total)
			bar = "[" + string(bytes.Repeat([]byte{'='}, filled)) + string(bytes.Repeat([]byte{' '}, width-filled)) + "] "
		}
		rate := float64(doneEv) / max(time.Since(start).Seconds(), 1e-3)
		fmt.Fprintf(w, "\r%s%d/%d events  %.0f ev/s  retries %d  rejected %d ", bar, doneEv, max(total, st.Events), rate, st.Retries, st.Rejected)
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				draw()
			case <-done:
				draw()
				fmt.Fprintln(w)
				return
			}
		}
	}()
	return func() { close(done); <-finished }
}
