package functions

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/functions/receiver"
	"github.com/veil-ai/veil/oip"
	"github.com/veil-ai/veil/oip/client"
)

// fakeRuntime is an OIP REST server (on package oip's codecs) whose
// "fraud" model scores a row as 1/(1+exp(-sum)).
func fakeRuntime(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/models/fraud/infer" {
			http.Error(w, `{"error":"unknown model"}`, http.StatusNotFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		jl := -1
		if h := r.Header.Get(oip.HeaderInferenceHeaderContentLength); h != "" {
			jl, _ = strconv.Atoi(h)
		}
		req, err := oip.DecodeRESTRequest(body, jl)
		if err != nil {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		in := req.Inputs[0]
		n, k := int(in.Shape[0]), int(in.Shape[1])
		raw := make([]byte, 4*n)
		for i := range n {
			var s float64
			for j := range k {
				s += float64(math.Float32frombits(binary.LittleEndian.Uint32(in.Raw[4*(i*k+j):])))
			}
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(float32(1/(1+math.Exp(-s)))))
		}
		resp := &oip.InferResponse{ModelName: "fraud", ModelVersion: "7", Outputs: []oip.Tensor{{Name: "dense_3", Datatype: oip.FP32, Shape: []int64{int64(n), 1}, Raw: raw}}}
		out, jsonLen, err := oip.EncodeRESTResponse(resp, req.WantsBinary)
		require.NoError(t, err)
		if jsonLen < len(out) {
			w.Header().Set(oip.HeaderInferenceHeaderContentLength, strconv.Itoa(jsonLen))
		}
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func testConfig(runtimeURL string) Config {
	cfg := DefaultConfig()
	cfg.RuntimeURL = runtimeURL
	cfg.Protocol = client.RESTBinary
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Batch.RequestTimeout = 2 * time.Second
	cfg.ShutdownTimeout = 10 * time.Second
	return cfg
}

const tx = `{"distance_from_home":5,"distance_from_last_transaction":100,"ratio_to_median_purchase_price":1.2,"repeat_retailer":1,"used_chip":0,"used_pin_number":0,"online_order":1}`

func post(t *testing.T, url, id string) (*http.Response, string) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(tx))
	require.NoError(t, err)
	for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Id": id, "Ce-Source": "urn:test", "Ce-Type": "dev.veil.transaction.v1", "Content-Type": "application/json"} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func serve(t *testing.T, cfg Config) (*Service, string, context.CancelFunc, chan error) {
	s, err := New(cfg)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, "http://" + l.Addr().String(), cancel, done
}

func TestServiceScoresThroughTheRuntime(t *testing.T) {
	rt := fakeRuntime(t)
	s, url, _, _ := serve(t, testConfig(rt.URL))
	resp, body := post(t, url+"/", "e1")
	require.Equal(t, 200, resp.StatusCode, body)
	var rd struct {
		TransactionID string  `json:"transaction_id"`
		Score         float32 `json:"score"`
		Model         string  `json:"model"`
		ModelVersion  string  `json:"model_version"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &rd))
	assert.Equal(t, "e1", rd.TransactionID)
	assert.Equal(t, "7", rd.ModelVersion, "the version the runtime answered with")
	// Scaled with the shipped scaler, then the fake's sigmoid of the sum.
	scaled := []float64{(100 - 5.008556866310878) / 26.3078888503332, (1.2 - 1.8217510089119675) / 2.7968641109323626,
		(0 - 0.350090625) / 0.4769980914921037, (0 - 0.10085625) / 0.3011382852377584, (1 - 0.6500984375) / 0.4769386323837257}
	var sum float64
	for _, v := range scaled {
		sum += float64(float32(v))
	}
	assert.InDelta(t, 1/(1+math.Exp(-sum)), float64(rd.Score), 1e-6)

	for _, path := range []string{"/health/liveness", "/health/readiness", "/metrics"} {
		r, err := http.Get(url + path)
		require.NoError(t, err)
		r.Body.Close()
		assert.Equal(t, 200, r.StatusCode, path)
	}
	assert.Equal(t, 1.0, metric(t, s, receiver.MetricRowsScored))
	assert.Positive(t, metric(t, s, MetricRuntimeBytesReceived))
}

// metric sums a series of the service's registry over its labels.
func metric(t *testing.T, s *Service, name string) float64 {
	mfs, err := s.Registry().Gather()
	require.NoError(t, err)
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				total += m.Counter.GetValue()
			case m.Gauge != nil:
				total += m.Gauge.GetValue()
			}
		}
	}
	return total
}

// SIGTERM (ctx cancelled) must flush an open batch at once and answer the
// waiting request, even though the batch would otherwise wait an hour.
func TestDrainFlushesOpenBatch(t *testing.T) {
	rt := fakeRuntime(t)
	cfg := testConfig(rt.URL)
	cfg.Batch.MaxLatency = time.Hour
	s, url, cancel, done := serve(t, cfg)
	type answer struct {
		status int
		body   string
	}
	got := make(chan answer, 1)
	go func() {
		resp, body := post(t, url+"/", "open")
		got <- answer{resp.StatusCode, body}
	}()
	require.Eventually(t, func() bool { return metric(t, s, receiver.MetricEventsIn) == 1 }, 10*time.Second, 5*time.Millisecond)
	time.Sleep(20 * time.Millisecond) // let it reach the batcher; the drain must work either way
	select {
	case <-got:
		t.Fatal("answered before the drain: the batch should still be open")
	default:
	}
	cancel()
	a := <-got
	assert.Equal(t, 200, a.status, a.body)
	assert.Contains(t, a.body, `"transaction_id":"open"`)
	require.NoError(t, <-done)
	done <- nil // for the cleanup
}

func TestRuntimeDownIs503(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	for _, p := range []client.Protocol{client.RESTBinary, client.GRPCRaw} {
		t.Run(string(p), func(t *testing.T) {
			cfg := testConfig("http://" + addr)
			cfg.Protocol = p
			s, url, _, _ := serve(t, cfg)
			resp, body := post(t, url+"/", "x")
			assert.Equal(t, 503, resp.StatusCode, body)
			assert.Contains(t, body, "runtime_unavailable")
			assert.Equal(t, 1.0, metric(t, s, receiver.MetricDropped))
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no runtime", func(c *Config) { c.RuntimeURL = "" }, "runtime URL is required"},
		{"bad scaler", func(c *Config) { c.ScalerJSON = []byte("{}") }, "feature_order is empty"},
		{"sink batch without sink", func(c *Config) { c.Receiver.SinkBatch = true }, "needs K_SINK"},
		{"bad batch", func(c *Config) { c.Batch.MaxBatchSize = 0 }, "max batch size"},
		{"bad CA", func(c *Config) { c.RuntimeCAFile = "/nonexistent" }, "runtime CA"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("http://127.0.0.1:1")
			tc.mod(&cfg)
			_, err := New(cfg)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}
