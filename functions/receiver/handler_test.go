package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/veil-ai/veil/functions/batcher"
	"github.com/veil-ai/veil/functions/transaction"
	"github.com/veil-ai/veil/models"
)

// sigmoidModel stands in for the runtime: score = sigmoid(sum of the row).
type sigmoidModel struct {
	rows atomic.Int64
	fail atomic.Pointer[error]
}

func (m *sigmoidModel) Infer(_ context.Context, rows []float32, n, width int) (batcher.Output, error) {
	if e := m.fail.Load(); e != nil {
		return batcher.Output{}, *e
	}
	m.rows.Add(int64(n))
	out := make([]float32, n)
	for i := range out {
		out[i] = expectedScore(rows[i*width : (i+1)*width])
	}
	return batcher.Output{Scores: out, Model: "fraud", Version: "1"}, nil
}

func expectedScore(row []float32) float32 {
	var s float64
	for _, v := range row {
		s += float64(v)
	}
	return float32(1 / (1 + math.Exp(-s)))
}

type fixture struct {
	srv     *httptest.Server
	h       *Handler
	model   *sigmoidModel
	reg     *prometheus.Registry
	metrics *Metrics
	scaler  *transaction.Scaler
}

type fixtureOpts struct {
	sink      Sink
	sinkBatch bool
	scorer    Scorer // overrides the real batcher
}

func newFixture(t *testing.T, o fixtureOpts) *fixture {
	t.Helper()
	scaler, err := transaction.ParseScaler(models.FraudScalerJSON)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	model := &sigmoidModel{}
	f := &fixture{model: model, reg: reg, metrics: m, scaler: scaler}
	cfg := Config{Source: "urn:veil:test", Threshold: 0.95, MaxBodyBytes: 1 << 16, MaxBatchEvents: 100, SinkBatch: o.sinkBatch}
	scorer := o.scorer
	if scorer == nil {
		bcfg := batcher.Config{Width: scaler.Width(), MaxBatchSize: 8, MaxLatency: 2 * time.Millisecond, MaxConcurrency: 2,
			QueueSize: 64, RequestTimeout: 5 * time.Second, DedupSize: 1000,
			Observer: func(rows int, took time.Duration, err error) { m.ObserveBatch(rows, took.Seconds(), err) }}
		if o.sinkBatch {
			bcfg.Publisher = func(ctx context.Context, batch []batcher.Scored) error {
				return o.sink.Send(ctx, []event.Event{f.h.BatchResultEvent(batch)})
			}
		}
		b, err := batcher.New(bcfg, model)
		require.NoError(t, err)
		t.Cleanup(func() { _ = b.Close(context.Background()) })
		scorer = b
	}
	h, err := NewHandler(cfg, scaler, scorer, o.sink, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	f.h = h
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

const txData = `{"distance_from_home":5,"distance_from_last_transaction":0.3111400080477545,` +
	`"ratio_to_median_purchase_price":1.9459399775518593,"repeat_retailer":1,"used_chip":1,"used_pin_number":0,"online_order":0}`

func (f *fixture) want(t *testing.T, data string) float32 {
	tx, err := transaction.Decode([]byte(data), transaction.AllColumns)
	require.NoError(t, err)
	return expectedScore(f.scaler.Transform(nil, &tx))
}

func binaryRequest(t *testing.T, url, id, typ, data string) *http.Request {
	r, err := http.NewRequest(http.MethodPost, url, strings.NewReader(data))
	require.NoError(t, err)
	r.Header.Set("Ce-Specversion", "1.0")
	r.Header.Set("Ce-Id", id)
	r.Header.Set("Ce-Source", "urn:test:bank")
	r.Header.Set("Ce-Type", typ)
	r.Header.Set("Content-Type", "application/json")
	return r
}

func structuredRequest(t *testing.T, url, id, typ, data string) *http.Request {
	body := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"urn:test:bank","type":%q,"datacontenttype":"application/json","data":%s}`, id, typ, data)
	r, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	r.Header.Set("Content-Type", "application/cloudevents+json; charset=utf-8")
	return r
}

type resultData struct {
	TransactionID string  `json:"transaction_id"`
	Score         float32 `json:"score"`
	Fraud         bool    `json:"fraud"`
	Model         string  `json:"model"`
	ModelVersion  string  `json:"model_version"`
}

func do(t *testing.T, r *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

func TestSingleModes(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	tests := []struct {
		name       string
		req        *http.Request
		wantStatus int
		wantBody   string // substring, for errors
		wantTxID   string
	}{
		{"binary", binaryRequest(t, f.srv.URL, "e1", transaction.EventType, txData), 200, "", "e1"},
		{"structured", structuredRequest(t, f.srv.URL, "e2", transaction.EventType, txData), 200, "", "e2"},
		{"transaction_id wins", binaryRequest(t, f.srv.URL, "e3", transaction.EventType, `{"transaction_id":"T9",`+txData[1:]), 200, "", "T9"},
		{"other type ignored", binaryRequest(t, f.srv.URL, "e4", "com.example.other", `{"x":1}`), 202, "", ""},
		{"missing feature", binaryRequest(t, f.srv.URL, "e5", transaction.EventType, `{"used_chip":1}`), 400, "missing field distance_from_last_transaction", ""},
		{"bad flag", binaryRequest(t, f.srv.URL, "e6", transaction.EventType, strings.Replace(txData, `"used_chip":1`, `"used_chip":7`, 1)), 400, "used_chip must be 0 or 1", ""},
		{"not json data", binaryRequest(t, f.srv.URL, "e7", transaction.EventType, `hello`), 400, "must be a JSON object", ""},
		{"missing id", binaryRequest(t, f.srv.URL, "", transaction.EventType, txData), 400, "invalid CloudEvent", ""},
		{"not a CloudEvent", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, f.srv.URL, strings.NewReader(txData))
			r.Header.Set("Content-Type", "application/json")
			return r
		}(), 415, "not a CloudEvent", ""},
		{"GET", func() *http.Request { r, _ := http.NewRequest(http.MethodGet, f.srv.URL, nil); return r }(), 405, "POST", ""},
		{"too large", binaryRequest(t, f.srv.URL, "e8", transaction.EventType, `{"pad":"`+strings.Repeat("x", 1<<16)+`"}`), 413, "exceeds", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			structured := strings.HasPrefix(tc.req.Header.Get("Content-Type"), "application/cloudevents+json")
			resp, body := do(t, tc.req)
			require.Equal(t, tc.wantStatus, resp.StatusCode, string(body))
			if tc.wantBody != "" {
				assert.Contains(t, string(body), tc.wantBody)
			}
			if tc.wantTxID == "" {
				if resp.StatusCode == 202 {
					assert.Empty(t, body, "a 202 is no Broker reply")
				}
				return
			}
			ev, err := cehttp.NewEventFromHTTPResponse(&http.Response{Header: resp.Header, Body: io.NopCloser(bytes.NewReader(body))})
			require.NoError(t, err)
			require.NoError(t, ev.Validate())
			assert.Equal(t, ResultEventType, ev.Type())
			assert.NotEqual(t, transaction.EventType, ev.Type(), "reply must not match the trigger")
			assert.Equal(t, "urn:veil:test", ev.Source())
			if structured {
				assert.Equal(t, contentTypeStructured, resp.Header.Get("Content-Type"))
				assert.Contains(t, string(body), `"data":{`, "JSON data stays JSON, not data_base64")
			} else {
				assert.NotEmpty(t, resp.Header.Get("Ce-Id"))
			}
			var rd resultData
			require.NoError(t, json.Unmarshal(ev.Data(), &rd))
			assert.Equal(t, tc.wantTxID, rd.TransactionID)
			assert.Equal(t, f.want(t, txData), rd.Score)
			assert.Equal(t, float64(rd.Score) > 0.95, rd.Fraud)
			assert.Equal(t, "fraud", rd.Model)
			assert.Equal(t, "1", rd.ModelVersion)
		})
	}
	assert.Equal(t, 1.0, testutil.ToFloat64(f.metrics.EventsIgnored))
	assert.Equal(t, 3.0, testutil.ToFloat64(f.metrics.Dropped.WithLabelValues("malformed")))
	assert.Equal(t, 3.0, testutil.ToFloat64(f.metrics.ResultsOut.WithLabelValues("reply")))
	assert.Equal(t, int64(3), f.model.rows.Load())
	in, out := testutil.ToFloat64(f.metrics.BytesIn), testutil.ToFloat64(f.metrics.BytesOut)
	assert.Greater(t, in, 0.0)
	assert.Greater(t, out, 0.0)
}

func TestRedeliveryAnsweredFromCache(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	var replies [][]byte
	var ids []string
	for range 3 {
		resp, body := do(t, binaryRequest(t, f.srv.URL, "same", transaction.EventType, txData))
		require.Equal(t, 200, resp.StatusCode)
		replies = append(replies, body)
		ids = append(ids, resp.Header.Get("Ce-Id"))
	}
	assert.Equal(t, replies[0], replies[1])
	assert.Equal(t, replies[0], replies[2])
	assert.Equal(t, ids[0], ids[2], "result id is derived from (source, id)")
	assert.Equal(t, int64(1), f.model.rows.Load(), "scored once")
	assert.Equal(t, 2.0, testutil.ToFloat64(f.metrics.DedupHits))
}

// errScorer fails every row with one error.
type errScorer struct{ err error }

func (s errScorer) Score(_ context.Context, reqs []batcher.Request, out []batcher.Outcome) {
	for i := range reqs {
		out[i].Err = s.err
	}
}

type refused struct{}

func (refused) Error() string   { return "model not found" }
func (refused) Retryable() bool { return false }

func TestRetryableStatuses(t *testing.T) {
	tests := []struct {
		err        error
		wantStatus int
		wantReason string
	}{
		{batcher.ErrQueueFull, 429, "queue_full"},
		{batcher.ErrClosed, 503, "shutting_down"},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), 503, "timeout"},
		{errors.New("connection refused"), 503, "runtime_unavailable"},
		{fmt.Errorf("infer: %w", refused{}), 502, "runtime_rejected"},
	}
	for _, tc := range tests {
		t.Run(tc.wantReason, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{scorer: errScorer{tc.err}})
			resp, body := do(t, binaryRequest(t, f.srv.URL, "r", transaction.EventType, txData))
			assert.Equal(t, tc.wantStatus, resp.StatusCode, string(body))
			assert.Contains(t, string(body), tc.wantReason)
			if tc.wantStatus == 429 {
				assert.Equal(t, "1", resp.Header.Get("Retry-After"))
			}
			assert.Equal(t, 1.0, testutil.ToFloat64(f.metrics.Dropped.WithLabelValues(tc.wantReason)))

			batch := fmt.Sprintf(`[{"specversion":"1.0","id":"b1","source":"s","type":%q,"data":%s}]`, transaction.EventType, txData)
			resp, body = do(t, batchRequest(t, f.srv.URL, batch))
			assert.Equal(t, tc.wantStatus, resp.StatusCode, string(body))
		})
	}
}

func batchRequest(t *testing.T, url, body string) *http.Request {
	r, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	r.Header.Set("Content-Type", contentTypeBatch)
	return r
}

func ceJSON(id, typ, data string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"urn:test:bank","type":%q,"datacontenttype":"application/json","data":%s}`, id, typ, data)
}

func TestBatchedMode(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	good := func(id string) string { return ceJSON(id, transaction.EventType, txData) }
	tests := []struct {
		name         string
		body         string
		wantStatus   int
		wantResults  []string // transaction ids
		wantRejected []int    // indexes
		wantText     string
	}{
		{"all good", "[" + good("a") + "," + good("b") + "," + good("c") + "]", 200, []string{"a", "b", "c"}, nil, ""},
		{"mixed", "[" + good("d") + `,{"specversion":"1.0"},` + ceJSON("x", transaction.EventType, `{"used_chip":1}`) + "," +
			ceJSON("o", "com.example.other", `{}`) + ",42," + good("e") + "]", 200, []string{"d", "e"}, []int{1, 2, 4}, ""},
		{"all bad", `[{"id":"1"},{"specversion":"9"}]`, 400, nil, []int{0, 1}, ""},
		{"only others", "[" + ceJSON("o2", "com.example.other", `{}`) + "]", 200, nil, nil, ""},
		{"empty", `[]`, 200, nil, nil, ""},
		{"not an array", `{"a":1}`, 400, nil, nil, "JSON array"},
		{"broken", `[{"a":1}`, 400, nil, nil, "not a valid JSON array"},
		{"too many", "[" + strings.Repeat(good("m")+",", 100) + good("m") + "]", 400, nil, nil, "101 events, limit 100"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, batchRequest(t, f.srv.URL, tc.body))
			require.Equal(t, tc.wantStatus, resp.StatusCode, string(body))
			if tc.wantText != "" {
				assert.Contains(t, string(body), tc.wantText)
				return
			}
			require.Equal(t, contentTypeBatch, resp.Header.Get("Content-Type"))
			var evs []event.Event
			require.NoError(t, json.Unmarshal(body, &evs))
			var gotResults []string
			var gotRejected []int
			for _, ev := range evs {
				require.NoError(t, ev.Validate())
				switch ev.Type() {
				case ResultEventType:
					var rd resultData
					require.NoError(t, json.Unmarshal(ev.Data(), &rd))
					assert.Equal(t, f.want(t, txData), rd.Score)
					gotResults = append(gotResults, rd.TransactionID)
				case RejectedEventType:
					var rj rejection
					require.NoError(t, json.Unmarshal(ev.Data(), &rj))
					assert.Equal(t, 400, rj.Status)
					assert.NotEmpty(t, rj.Reason)
					gotRejected = append(gotRejected, rj.Index)
				default:
					t.Fatalf("unexpected reply type %s", ev.Type())
				}
			}
			assert.Equal(t, tc.wantResults, gotResults)
			assert.Equal(t, tc.wantRejected, gotRejected)
		})
	}
}

func TestBatchPartialFailureKeepsScoredRows(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	// Score "a" first; then the runtime fails: a batch of a+b is 503, but a
	// is answered from the cache, and after recovery only b is scored.
	resp, _ := do(t, binaryRequest(t, f.srv.URL, "a", transaction.EventType, txData))
	require.Equal(t, 200, resp.StatusCode)
	down := errors.New("runtime down")
	f.model.fail.Store(&down)
	body := "[" + ceJSON("a", transaction.EventType, txData) + "," + ceJSON("b", transaction.EventType, txData) + "]"
	resp, text := do(t, batchRequest(t, f.srv.URL, body))
	require.Equal(t, 503, resp.StatusCode)
	assert.Contains(t, string(text), "1 of 2 transactions not scored")
	f.model.fail.Store(nil)
	resp, _ = do(t, batchRequest(t, f.srv.URL, body))
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, int64(2), f.model.rows.Load())
}

// recordingSink keeps what it is sent and can fail.
type recordingSink struct {
	mu     sync.Mutex
	events []event.Event
	fail   atomic.Bool
}

func (s *recordingSink) Send(_ context.Context, evs []event.Event) error {
	if s.fail.Load() {
		return errors.New("sink unreachable")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, evs...)
	return nil
}

func (s *recordingSink) got() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Event(nil), s.events...)
}

func TestSinkModes(t *testing.T) {
	t.Run("per event", func(t *testing.T) {
		sink := &recordingSink{}
		f := newFixture(t, fixtureOpts{sink: sink})
		resp, body := do(t, binaryRequest(t, f.srv.URL, "s1", transaction.EventType, txData))
		require.Equal(t, 202, resp.StatusCode)
		assert.Empty(t, body)
		got := sink.got()
		require.Len(t, got, 1)
		assert.Equal(t, ResultEventType, got[0].Type())
		sink.fail.Store(true)
		resp, _ = do(t, binaryRequest(t, f.srv.URL, "s2", transaction.EventType, txData))
		assert.Equal(t, 503, resp.StatusCode, "no ack before the result is delivered")
	})
	t.Run("one event per runtime batch", func(t *testing.T) {
		sink := &recordingSink{}
		f := newFixture(t, fixtureOpts{sink: sink, sinkBatch: true})
		body := "[" + ceJSON("a", transaction.EventType, txData) + "," + ceJSON("b", transaction.EventType, txData) + "]"
		resp, _ := do(t, batchRequest(t, f.srv.URL, body))
		require.Equal(t, 202, resp.StatusCode)
		got := sink.got()
		require.Len(t, got, 1)
		assert.Equal(t, ResultBatchEventType, got[0].Type())
		var rows []resultData
		require.NoError(t, json.Unmarshal(got[0].Data(), &rows))
		require.Len(t, rows, 2)
		assert.ElementsMatch(t, []string{"a", "b"}, []string{rows[0].TransactionID, rows[1].TransactionID})
	})
}

func TestReadiness(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	rec := httptest.NewRecorder()
	f.h.Readiness(rec, nil)
	assert.Equal(t, 200, rec.Code)
	f.h.SetReady(false)
	rec = httptest.NewRecorder()
	f.h.Readiness(rec, nil)
	assert.Equal(t, 503, rec.Code)
	rec = httptest.NewRecorder()
	f.h.Liveness(rec, nil)
	assert.Equal(t, 200, rec.Code)
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`[]`))
	f.Add([]byte("[" + ceJSON("a", transaction.EventType, txData) + `,{"specversion":"1.0"},7]`))
	f.Add([]byte(`[{"specversion":"1.0","id":"x","source":"s","type":"t","data_base64":"AAA="}]`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := decodeBatch(body, 50)
		if err != nil {
			if !errors.Is(err, errBadBatch) {
				t.Fatalf("batch error does not wrap errBadBatch: %v", err)
			}
			return
		}
		if len(items) > 50 {
			t.Fatalf("%d items over the limit", len(items))
		}
		for _, it := range items {
			if it.err == nil {
				if err := it.ev.Validate(); err != nil {
					t.Fatalf("accepted invalid event: %v", err)
				}
			}
		}
	})
}
