package gen

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/functions/transaction"
)

func TestDeterministic(t *testing.T) {
	a, err := NewGenerator(Config{Seed: 42})
	require.NoError(t, err)
	b, err := NewGenerator(Config{Seed: 42})
	require.NoError(t, err)
	c, err := NewGenerator(Config{Seed: 43})
	require.NoError(t, err)
	as, bs, cs := a.Take(100), b.Take(100), c.Take(100)
	assert.Equal(t, as, bs)
	assert.NotEqual(t, as[0].Transaction, cs[0].Transaction)
	assert.Equal(t, "tx-42-0", as[0].ID)
	assert.Equal(t, "tx-42-99", as[99].ID)
	for _, l := range as {
		assert.Equal(t, transaction.AllColumns, l.Transaction.Present)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, r := range []float64{-0.1, 1.5, math.NaN()} {
		_, err := NewGenerator(Config{FraudRate: r})
		assert.Error(t, err, "rate %v", r)
	}
	_, err := ParseMode("carrier-pigeon")
	assert.Error(t, err)
}

// The generated data follows DATA.md: fraud rate, per-class log-normal
// moments and flag probabilities (fixed seed, so the check is exact
// arithmetic on a fixed sample; tolerances are a few standard errors).
func TestMatchesDatasetStatistics(t *testing.T) {
	g, err := NewGenerator(Config{Seed: 7})
	require.NoError(t, err)
	const n = 40000
	type acc struct{ n, s, ss float64 }
	var cont [2][3]acc
	var flags [2][4]float64
	var count [2]float64
	for l := range g.All(n) {
		k := 0
		if l.Fraud {
			k = 1
		}
		count[k]++
		for i, c := range []transaction.Column{transaction.DistanceFromHome, transaction.DistanceFromLastTransaction, transaction.RatioToMedianPurchasePrice} {
			v := math.Log(l.Transaction.Value(c))
			cont[k][i].n++
			cont[k][i].s += v
			cont[k][i].ss += v * v
		}
		for i, c := range []transaction.Column{transaction.RepeatRetailer, transaction.UsedChip, transaction.UsedPinNumber, transaction.OnlineOrder} {
			flags[k][i] += l.Transaction.Value(c)
		}
	}
	assert.InDelta(t, DefaultFraudRate, count[1]/n, 0.005)
	for k, st := range []classStats{legit, fraud} {
		for i := range 3 {
			a := cont[k][i]
			mean := a.s / a.n
			sd := math.Sqrt(a.ss/a.n - mean*mean)
			assert.InDelta(t, st.lnMean[i], mean, 0.1, "class %d feature %d mean", k, i)
			assert.InDelta(t, st.lnSD[i], sd, 0.1, "class %d feature %d sd", k, i)
		}
		for i := range 4 {
			assert.InDelta(t, st.p[i], flags[k][i]/count[k], 0.03, "class %d flag %d", k, i)
		}
	}
}

func TestJSONLine(t *testing.T) {
	g, err := NewGenerator(Config{Seed: 1, FraudRate: 1})
	require.NoError(t, err)
	l := g.Next()
	line := AppendJSONLine(nil, l)
	require.True(t, strings.HasSuffix(string(line), ",\"fraud\":1}\n"))
	tx, err := transaction.Decode(line, transaction.AllColumns)
	require.NoError(t, err)
	assert.Equal(t, l.ID, tx.ID)
	assert.Equal(t, l.Transaction.Values, tx.Values)
}

// flakyServer fails the first attempt of every request with the given
// status (or by dropping the connection when status is 0), then answers
// like the batcher would: 200 and one result per event.
type flakyServer struct {
	mu       sync.Mutex
	seen     map[string]int // event id -> deliveries
	failWith int
	failed   map[string]bool
	reject   string // event id answered 400
	requests atomic.Int64
}

func (f *flakyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	body, _ := io.ReadAll(r.Body)
	var ids []string
	if r.Header.Get("Content-Type") == "application/cloudevents-batch+json" {
		var evs []struct {
			ID   string          `json:"id"`
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &evs); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		for _, e := range evs {
			ids = append(ids, e.ID)
		}
	} else {
		if _, err := transaction.Decode(body, transaction.AllColumns); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		ids = []string{r.Header.Get("Ce-Id")}
	}
	f.mu.Lock()
	first := !f.failed[ids[0]]
	f.failed[ids[0]] = true
	f.mu.Unlock()
	if first && f.failWith != -1 {
		if f.failWith == 0 {
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close()
			return
		}
		w.Header().Set("Retry-After", "0")
		http.Error(w, "try later", f.failWith)
		return
	}
	if ids[0] == f.reject {
		http.Error(w, "malformed", 400)
		return
	}
	f.mu.Lock()
	for _, id := range ids {
		f.seen[id]++
	}
	f.mu.Unlock()
	var out []map[string]any
	for _, id := range ids {
		out = append(out, map[string]any{"specversion": "1.0", "id": id + "-r", "source": "s", "type": ResultEventType,
			"datacontenttype": "application/json", "data": map[string]any{"transaction_id": id, "score": 0.5, "fraud": false, "model": "m", "model_version": "1"}})
	}
	w.Header().Set("Content-Type", "application/cloudevents-batch+json")
	_ = json.NewEncoder(w).Encode(out)
}

func TestSendRetriesKeepIDs(t *testing.T) {
	tests := []struct {
		name     string
		mode     Mode
		failWith int
	}{
		{"binary 503", ModeBinary, 503},
		{"binary 429", ModeBinary, 429},
		{"binary dropped connection", ModeBinary, 0},
		{"batched 503", ModeBatched, 503},
		{"batched no failures", ModeBatched, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := &flakyServer{seen: map[string]int{}, failed: map[string]bool{}, failWith: tc.failWith}
			srv := httptest.NewServer(fs)
			defer srv.Close()
			g, err := NewGenerator(Config{Seed: 3})
			require.NoError(t, err)
			var mu sync.Mutex
			results := map[string]int{}
			var sends atomic.Int64
			cfg := SendConfig{URL: srv.URL, Mode: tc.mode, BatchEvents: 7, Concurrency: 4, Retries: 3,
				MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
				Hooks: Hooks{
					OnSend: func(ids []string, attempt int, at time.Time) { sends.Add(1) },
					OnAck: func(a Ack) {
						res, _, err := ParseReply(a.Header, a.Body)
						require.NoError(t, err)
						mu.Lock()
						defer mu.Unlock()
						for _, r := range res {
							results[r.TransactionID]++
						}
					}}}
			st, err := Send(context.Background(), cfg, g.All(50))
			require.NoError(t, err)
			assert.Equal(t, int64(50), st.Events)
			assert.Equal(t, int64(50), st.Acked)
			assert.Len(t, fs.seen, 50, "every generated id arrived")
			for id, n := range fs.seen {
				assert.Equal(t, 1, n, "id %s accepted once", id)
			}
			assert.Len(t, results, 50)
			assert.Equal(t, fs.requests.Load(), sends.Load())
			if tc.failWith != -1 {
				assert.Equal(t, st.Retries, fs.requests.Load()-st.Requests)
				assert.Positive(t, st.Retries)
			}
			assert.Positive(t, st.BytesSent)
			assert.Positive(t, st.BytesRecv)
		})
	}
}

func TestSendRejectsAndRedelivers(t *testing.T) {
	fs := &flakyServer{seen: map[string]int{}, failed: map[string]bool{}, failWith: -1, reject: "tx-5-3"}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	g, err := NewGenerator(Config{Seed: 5})
	require.NoError(t, err)
	var redeliveries atomic.Int64
	cfg := SendConfig{URL: srv.URL, Mode: ModeBinary, Redeliver: 1, Retries: 2, Seed: 1,
		Hooks: Hooks{OnAck: func(a Ack) {
			if a.Redelivery {
				redeliveries.Add(1)
			}
		}}}
	st, err := Send(context.Background(), cfg, g.All(10))
	require.NoError(t, err, "a 400 is final, not a failure to deliver")
	assert.Equal(t, int64(1), st.Rejected)
	assert.Equal(t, int64(9), st.Acked)
	assert.Equal(t, int64(9), st.Redelivered)
	assert.Equal(t, int64(9), redeliveries.Load())
	for id, n := range fs.seen {
		assert.Equal(t, 2, n, "id %s delivered twice with the same id", id)
	}
}

func TestSendGivesUp(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", 503) }))
	defer srv.Close()
	g, err := NewGenerator(Config{Seed: 1})
	require.NoError(t, err)
	st, err := Send(context.Background(), SendConfig{URL: srv.URL, Retries: 2, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}, g.All(3))
	require.Error(t, err)
	assert.Equal(t, int64(3), st.Failed)
	assert.Equal(t, int64(6), st.Retries)
}

func TestParseReply(t *testing.T) {
	binary := http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"r1"}, "Ce-Source": {"s"}, "Ce-Type": {ResultEventType}, "Content-Type": {"application/json"}}
	data := `{"transaction_id":"t1","score":0.25,"fraud":false,"model":"fraud","model_version":"1"}`
	tests := []struct {
		name     string
		header   http.Header
		body     string
		results  int
		rejected int
		wantErr  bool
	}{
		{"binary", binary, data, 1, 0, false},
		{"structured", http.Header{"Content-Type": {"application/cloudevents+json"}},
			`{"specversion":"1.0","id":"r1","source":"s","type":"` + ResultEventType + `","data":` + data + `}`, 1, 0, false},
		{"batched", http.Header{"Content-Type": {"application/cloudevents-batch+json"}},
			`[{"specversion":"1.0","id":"r1","source":"s","type":"` + ResultEventType + `","data":` + data + `},` +
				`{"specversion":"1.0","id":"x","source":"s","type":"` + RejectedEventType + `","data":{"index":1,"status":400,"reason":"bad"}}]`, 1, 1, false},
		{"empty", http.Header{}, "", 0, 0, false},
		{"garbage batch", http.Header{"Content-Type": {"application/cloudevents-batch+json"}}, `[{`, 0, 0, true},
		{"bad result data", binary, `{"score":"high"}`, 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, rej, err := ParseReply(tc.header, []byte(tc.body))
			if tc.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Len(t, res, tc.results)
			assert.Len(t, rej, tc.rejected)
			if tc.results > 0 {
				assert.Equal(t, Result{EventID: "r1", TransactionID: "t1", Score: 0.25, Model: "fraud", ModelVersion: "1"}, res[0])
			}
		})
	}
}

func FuzzParseReply(f *testing.F) {
	f.Add("application/cloudevents-batch+json", []byte(`[{"specversion":"1.0","id":"r","source":"s","type":"`+ResultEventType+`","data":{"score":0.5}}]`))
	f.Add("application/cloudevents+json", []byte(`{"specversion":"1.0","id":"r","source":"s","type":"`+RejectedEventType+`","data":{"index":1}}`))
	f.Add("application/json", []byte(`{"score":1}`))
	f.Add("", []byte(`[`))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		h := http.Header{"Content-Type": {contentType}, "Ce-Specversion": {"1.0"}, "Ce-Id": {"x"}, "Ce-Source": {"s"}, "Ce-Type": {ResultEventType}}
		res, rej, err := ParseReply(h, body)
		if err != nil && (len(res) > 0 || len(rej) > 0) {
			t.Fatalf("results returned with an error: %v", err)
		}
	})
}
