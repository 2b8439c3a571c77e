// Package functions_test runs the on-prem path end to end on loopback with
// the built binaries: veil-runtime serving the shipped fraud model,
// veil-batcher in front of it, and veil gen sending synthetic transactions.
// Every score that comes back is checked against direct scoring of the
// same rows at the runtime (over another transport, with the scaling done
// here from scaler.json), and nothing may be lost or scored twice, also
// with redeliveries and with the runtime killed mid-stream.
package functions_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/functions/gen"
	"github.com/veil-ai/veil/models"
	"github.com/veil-ai/veil/oip"
	"github.com/veil-ai/veil/oip/client"
	"github.com/veil-ai/veil/test/e2e"
)

const count = 10000

type stack struct {
	t          *testing.T
	rtHTTP     int
	rtGRPC     int
	runtime    *e2e.Process
	batcherURL string
	direct     *client.Client
}

func (s *stack) startRuntime() {
	s.t.Helper()
	s.runtime = e2e.Start(s.t, "veil-runtime", nil,
		"--model_dir", filepath.Join(e2e.RepoRoot(), "models", "fraud"), "--model_name", "fraud",
		"--host", "127.0.0.1", "--http_port", strconv.Itoa(s.rtHTTP), "--grpc_port", strconv.Itoa(s.rtGRPC))
	e2e.WaitHTTP(s.t, s.runtime, fmt.Sprintf("http://127.0.0.1:%d/v2/health/ready", s.rtHTTP), 60*time.Second)
}

func newStack(t *testing.T) *stack {
	s := &stack{t: t, rtHTTP: e2e.FreePort(t), rtGRPC: e2e.FreePort(t)}
	s.startRuntime()
	s.batcherURL = s.startBatcher("grpc-raw", s.rtGRPC)
	c, err := client.New(client.Config{URL: fmt.Sprintf("http://127.0.0.1:%d", s.rtHTTP), Protocol: client.RESTJSON, Timeout: 30 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	s.direct = c
	return s
}

// startBatcher runs a veil-batcher against the runtime port over protocol.
func (s *stack) startBatcher(protocol string, port int, extra ...string) string {
	bport := e2e.FreePort(s.t)
	args := []string{"--runtime", fmt.Sprintf("http://127.0.0.1:%d", port), "--protocol", protocol,
		"--listen_address", fmt.Sprintf("127.0.0.1:%d", bport),
		"--max_batch_size", "64", "--max_latency", "5ms", "--request_timeout", "2s"}
	b := e2e.Start(s.t, "veil-batcher", nil, append(args, extra...)...)
	url := fmt.Sprintf("http://127.0.0.1:%d", bport)
	e2e.WaitHTTP(s.t, b, url+"/health/readiness", 30*time.Second)
	return url
}

// scalerFile is the shipped scaler.json, read independently of the
// batcher's code.
type scalerFile struct {
	Order []string  `json:"feature_order"`
	Mean  []float64 `json:"mean_"`
	Scale []float64 `json:"scale_"`
}

// directScores scores the rows of seed at the runtime, one REST JSON
// request per 1000 rows, and returns transaction id -> score.
func (s *stack) directScores(seed uint64, count int) map[string]float32 {
	t := s.t
	var sc scalerFile
	require.NoError(t, json.Unmarshal(models.FraudScalerJSON, &sc))
	g, err := gen.NewGenerator(gen.Config{Seed: seed})
	require.NoError(t, err)
	rows := g.Take(count)
	out := make(map[string]float32, count)
	for start := 0; start < len(rows); start += 1000 {
		chunk := rows[start:min(start+1000, len(rows))]
		raw := make([]byte, 0, 4*len(sc.Order)*len(chunk))
		for _, l := range chunk {
			var cols map[string]float64
			line := gen.AppendJSONLine(nil, l)
			var generic map[string]any
			require.NoError(t, json.Unmarshal(line, &generic))
			cols = map[string]float64{}
			for k, v := range generic {
				if f, ok := v.(float64); ok {
					cols[k] = f
				}
			}
			for i, name := range sc.Order {
				x := float32((cols[name] - sc.Mean[i]) / sc.Scale[i])
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(x))
			}
		}
		resp, err := s.direct.Infer(context.Background(), "fraud", []oip.Tensor{{Name: "dense_input", Datatype: oip.FP32,
			Shape: []int64{int64(len(chunk)), int64(len(sc.Order))}, Raw: raw}})
		require.NoError(t, err)
		require.NotEmpty(t, resp.Outputs)
		o := resp.Outputs[0]
		require.Len(t, o.Raw, 4*len(chunk))
		for i, l := range chunk {
			out[l.ID] = math.Float32frombits(binary.LittleEndian.Uint32(o.Raw[4*i:]))
		}
	}
	return out
}

// metrics reads the main batcher's counters, summed over labels.
func (s *stack) metrics() map[string]float64 { return scrape(s.t, s.batcherURL) }

// scrape reads a batcher's veil_batcher_* series, summed over labels.
func scrape(t *testing.T, batcherURL string) map[string]float64 {
	resp, err := http.Get(batcherURL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "veil_batcher_") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		v, err := strconv.ParseFloat(val, 64)
		require.NoError(t, err)
		m[name] += v
	}
	return m
}

// gen starts the veil gen binary against url.
func (s *stack) gen(url string, count int, replies string, args ...string) *e2e.Process {
	base := []string{"gen", "--url", url + "/", "--count", strconv.Itoa(count), "--replies", replies, "--quiet"}
	return e2e.Start(s.t, "veil", nil, append(base, args...)...)
}

func wait(t *testing.T, p *e2e.Process, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	require.NoError(t, p.Wait(ctx), p.Output())
}

type reply struct {
	ID            string  `json:"id"`
	TransactionID string  `json:"transaction_id"`
	Score         float32 `json:"score"`
	Fraud         bool    `json:"fraud"`
	Model         string  `json:"model"`
	ModelVersion  string  `json:"model_version"`
}

// checkReplies asserts exactly count distinct results, each equal to the
// direct score, identical across duplicates.
func checkReplies(t *testing.T, path string, want map[string]float32) (total int) {
	count := len(want)
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	got := map[string]reply{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r reply
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		total++
		if prev, seen := got[r.TransactionID]; seen {
			require.Equal(t, prev, r, "a redelivered transaction gets the identical result")
			continue
		}
		got[r.TransactionID] = r
	}
	require.NoError(t, sc.Err())
	require.Len(t, got, count, "exactly one distinct result per transaction")
	mismatches := 0
	for id, r := range got {
		w, ok := want[id]
		require.True(t, ok, "unknown transaction %s", id)
		if r.Score != w {
			mismatches++
		}
		assert.Equal(t, float64(r.Score) > 0.95, r.Fraud)
		assert.Equal(t, "fraud", r.Model)
		assert.Equal(t, "1", r.ModelVersion)
	}
	require.Zero(t, mismatches, "scores differ from direct runtime scoring")
	return total
}

func TestFunctionsEndToEnd(t *testing.T) {
	s := newStack(t)
	dir := t.TempDir()

	t.Run("10k binary", func(t *testing.T) {
		before := s.metrics()
		want := s.directScores(11, count)
		out := filepath.Join(dir, "binary.jsonl")
		wait(t, s.gen(s.batcherURL, count, out, "--seed", "11", "--mode", "binary", "--concurrency", "32"), 2*time.Minute)
		checkReplies(t, out, want)
		after := s.metrics()
		assert.Equal(t, float64(count), after["veil_batcher_rows_scored_total"]-before["veil_batcher_rows_scored_total"])
		in := after["veil_batcher_ingress_bytes_total"] - before["veil_batcher_ingress_bytes_total"]
		eg := after["veil_batcher_egress_bytes_total"] - before["veil_batcher_egress_bytes_total"]
		msg := fmt.Sprintf("EGRESS binary mode: %d transactions, %.0f transaction bytes in, %.0f result bytes out, ratio %.3f; %.1f rows per runtime request",
			count, in, eg, eg/in, (after["veil_batcher_batch_rows_sum"]-before["veil_batcher_batch_rows_sum"])/(after["veil_batcher_batch_rows_count"]-before["veil_batcher_batch_rows_count"]))
		t.Log(msg)
		fmt.Println(msg)
		rtOut := after["veil_batcher_runtime_bytes_sent_total"] - before["veil_batcher_runtime_bytes_sent_total"]
		rtIn := after["veil_batcher_runtime_bytes_received_total"] - before["veil_batcher_runtime_bytes_received_total"]
		require.Positive(t, rtOut)
		msg = fmt.Sprintf("EGRESS runtime link (gRPC raw): %.0f bytes to the runtime, %.0f bytes back out of the cloud, ratio %.3f", rtOut, rtIn, rtIn/rtOut)
		t.Log(msg)
		fmt.Println(msg)
	})

	t.Run("10k batched with redeliveries", func(t *testing.T) {
		before := s.metrics()
		want := s.directScores(12, count)
		out := filepath.Join(dir, "batched.jsonl")
		wait(t, s.gen(s.batcherURL, count, out, "--seed", "12", "--mode", "batched", "--batch_events", "50", "--redeliver", "0.3"), 2*time.Minute)
		total := checkReplies(t, out, want)
		assert.Greater(t, total, count, "some results were delivered twice")
		after := s.metrics()
		assert.Equal(t, float64(count), after["veil_batcher_rows_scored_total"]-before["veil_batcher_rows_scored_total"],
			"a redelivered transaction is answered from the dedup cache, not scored again")
		assert.Equal(t, float64(total-count), after["veil_batcher_dedup_hits_total"]-before["veil_batcher_dedup_hits_total"])
		in := after["veil_batcher_ingress_bytes_total"] - before["veil_batcher_ingress_bytes_total"]
		eg := after["veil_batcher_egress_bytes_total"] - before["veil_batcher_egress_bytes_total"]
		msg := fmt.Sprintf("EGRESS batched mode: %.0f transaction bytes in, %.0f result bytes out, ratio %.3f", in, eg, eg/in)
		t.Log(msg)
		fmt.Println(msg)
	})

	t.Run("rest-binary transport", func(t *testing.T) {
		url := s.startBatcher("rest-binary", s.rtHTTP)
		want := s.directScores(14, 2000)
		out := filepath.Join(dir, "rest.jsonl")
		wait(t, s.gen(url, 2000, out, "--seed", "14", "--mode", "batched", "--batch_events", "20"), 2*time.Minute)
		checkReplies(t, out, want)
	})

	// SinkBinding: results go to K_SINK, the sender gets 202s.
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprintf("K_SINK sink_batch=%v", batch), func(t *testing.T) {
			var mu sync.Mutex
			got := map[string]float32{}
			sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ev, err := cehttp.NewEventFromHTTPRequest(r)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				var rows []reply
				if batch {
					assert.Equal(t, "dev.veil.fraud.score.batch.v1", ev.Type())
					assert.NoError(t, json.Unmarshal(ev.Data(), &rows))
				} else {
					var one reply
					assert.Equal(t, "dev.veil.fraud.score.v1", ev.Type())
					assert.NoError(t, json.Unmarshal(ev.Data(), &one))
					rows = []reply{one}
				}
				mu.Lock()
				for _, r := range rows {
					got[r.TransactionID] = r.Score
				}
				mu.Unlock()
				w.WriteHeader(http.StatusAccepted)
			}))
			defer sink.Close()
			extra := []string{"--sink", sink.URL}
			if batch {
				extra = append(extra, "--sink_batch")
			}
			url := s.startBatcher("grpc-raw", s.rtGRPC, extra...)
			seed := uint64(15)
			if batch {
				seed = 16
			}
			want := s.directScores(seed, 2000)
			before := scrape(t, url)
			g := s.gen(url, 2000, filepath.Join(dir, fmt.Sprintf("sink-%v.jsonl", batch)), "--seed", strconv.FormatUint(seed, 10), "--mode", "batched", "--batch_events", "25")
			wait(t, g, 2*time.Minute)
			assert.Contains(t, g.Output(), "2000 acknowledged")
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, got, 2000)
			for id, score := range got {
				require.Equal(t, want[id], score, id)
			}
			after := scrape(t, url)
			in := after["veil_batcher_ingress_bytes_total"] - before["veil_batcher_ingress_bytes_total"]
			eg := after["veil_batcher_egress_bytes_total"] - before["veil_batcher_egress_bytes_total"]
			msg := fmt.Sprintf("EGRESS K_SINK sink_batch=%v: %.0f transaction bytes in, %.0f result bytes out, ratio %.3f", batch, in, eg, eg/in)
			t.Log(msg)
			fmt.Println(msg)
		})
	}

	t.Run("runtime killed mid-stream", func(t *testing.T) {
		before := s.metrics()
		want := s.directScores(13, count)
		out := filepath.Join(dir, "killed.jsonl")
		g := s.gen(s.batcherURL, count, out, "--seed", "13", "--mode", "binary", "--rate", "4000", "--retries", "40")
		require.Eventually(t, func() bool {
			return s.metrics()["veil_batcher_rows_scored_total"]-before["veil_batcher_rows_scored_total"] >= 2000
		}, time.Minute, 20*time.Millisecond, "stream never started")
		s.runtime.Kill()
		time.Sleep(300 * time.Millisecond)
		s.startRuntime()
		wait(t, g, 2*time.Minute)
		checkReplies(t, out, want)
		after := s.metrics()
		assert.Positive(t, after["veil_batcher_events_dropped_total"]-before["veil_batcher_events_dropped_total"],
			"the outage was seen (5xx answered, then retried)")
		assert.Contains(t, g.Output(), "0 failed")
		t.Logf("gen: %s", strings.TrimSpace(g.Output()))
	})
}
