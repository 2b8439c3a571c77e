package server

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/veil-ai/veil/models"
	"github.com/veil-ai/veil/oip"
	pb "github.com/veil-ai/veil/oip/inferencepb"
	"github.com/veil-ai/veil/runtime/onnx"
)

// The server is live at once and ready only when the loader succeeds.
func TestLiveBeforeReady(t *testing.T) {
	release := make(chan struct{})
	loader := func(ctx context.Context, env *onnx.Env) (*LoadedModel, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return bytesLoader(models.FraudONNX, "1")(ctx, env)
	}
	ts := start(t, loader, false, nil)
	ctx := context.Background()

	assert.Equal(t, http.StatusOK, ts.do(t, "GET", "/v2/health/live", nil, nil).status)
	for _, path := range []string{"/v2/health/ready", "/v2/models/model/ready", "/v2/models/model", "/v1/models/model"} {
		r := ts.do(t, "GET", path, nil, nil)
		assert.Equal(t, http.StatusServiceUnavailable, r.status, path)
		assert.Contains(t, r.errorMessage(t), "loading", path)
	}
	r := ts.do(t, "POST", "/v2/models/model/infer", []byte(`{"inputs":[`+goodInput+`]}`), nil)
	assert.Equal(t, http.StatusServiceUnavailable, r.status)
	live, err := ts.grpc.ServerLive(ctx, &pb.ServerLiveRequest{})
	require.NoError(t, err)
	assert.True(t, live.Live)
	ready, err := ts.grpc.ServerReady(ctx, &pb.ServerReadyRequest{})
	require.NoError(t, err)
	assert.False(t, ready.Ready)
	mready, err := ts.h2c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "model"})
	require.NoError(t, err)
	assert.False(t, mready.Ready)
	_, err = ts.grpc.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "model"})
	assert.Equal(t, codes.Unavailable, status.Code(err))

	hc := healthpb.NewHealthClient(dial(t, ts.GRPCAddr()))
	hr, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, hr.Status)

	close(release)
	<-ts.Loaded()
	for _, service := range []string{"", "model"} {
		hr, err = hc.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		require.NoError(t, err)
		assert.Equal(t, healthpb.HealthCheckResponse_SERVING, hr.Status, service)
	}
	assert.Equal(t, http.StatusOK, ts.do(t, "GET", "/v2/health/ready", nil, nil).status)
	assert.Equal(t, http.StatusOK, ts.do(t, "GET", "/v2/models/model/ready", nil, nil).status)
	ready, err = ts.grpc.ServerReady(ctx, &pb.ServerReadyRequest{})
	require.NoError(t, err)
	assert.True(t, ready.Ready)
	mready, err = ts.grpc.ModelReady(ctx, &pb.ModelReadyRequest{Name: "model", Version: "1"})
	require.NoError(t, err)
	assert.True(t, mready.Ready)
}

func TestLoaderFailureStaysUnready(t *testing.T) {
	tests := []struct {
		name   string
		loader Loader
		log    string
	}{
		{"error", func(context.Context, *onnx.Env) (*LoadedModel, error) { return nil, errors.New("key release denied") }, "key release denied"},
		{"panic", func(context.Context, *onnx.Env) (*LoadedModel, error) { panic("loader bug") }, "loader bug"},
		{"nil model", func(context.Context, *onnx.Env) (*LoadedModel, error) { return &LoadedModel{}, nil }, "no model"},
		{"bad bytes", bytesLoader([]byte("garbage"), "1"), "read ONNX graph"},
		{"missing dir", nil, "read model directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := start(t, tc.loader, true, func(c *Config) { c.ModelDir = t.TempDir() + "/nope" })
			r := ts.do(t, "GET", "/v2/health/ready", nil, nil)
			assert.Equal(t, http.StatusServiceUnavailable, r.status)
			assert.Contains(t, r.errorMessage(t), "failed to load")
			assert.Equal(t, http.StatusOK, ts.do(t, "GET", "/v2/health/live", nil, nil).status)
			assert.Contains(t, ts.logs.String(), tc.log)
		})
	}
}

// SIGTERM (context end) lets in-flight requests finish, then stops.
func TestGracefulDrain(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	closed := make(chan struct{})
	fm := &fakeModel{
		inputs:  []oip.TensorMetadata{{Name: "x", Datatype: "FP32", Shape: []int64{-1}}},
		outputs: []oip.TensorMetadata{{Name: "y", Datatype: "FP32", Shape: []int64{-1}}},
		infer: func(ctx context.Context, in []oip.Tensor) ([]oip.Tensor, error) {
			close(entered)
			<-release
			return []oip.Tensor{{Name: "y", Datatype: oip.FP32, Shape: in[0].Shape, Raw: in[0].Raw}}, nil
		},
		closed: closed,
	}
	ts := start(t, modelLoader(fm), true, nil)
	type result struct {
		status int
		body   []byte
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Post(ts.base+"/v2/models/model/infer", "application/json", bytes.NewReader([]byte(`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[2.5]}]}`)))
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, err = buf.ReadFrom(resp.Body)
		done <- result{status: resp.StatusCode, body: buf.Bytes(), err: err}
	}()
	<-entered
	ts.cancel()
	// Draining: not ready any more, while the request is still running.
	require.Eventually(t, func() bool { return !ts.ready() }, 5*time.Second, 10*time.Millisecond)
	select {
	case <-ts.done:
		t.Fatal("server stopped before the in-flight request finished")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	r := <-done
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusOK, r.status)
	assert.Contains(t, string(r.body), "2.5")
	require.NoError(t, ts.Wait())
	select {
	case <-closed:
	default:
		t.Fatal("model not closed at shutdown")
	}
	_, err := http.Get(ts.base + "/v2/health/live")
	assert.Error(t, err, "no longer listening")
}

// The Engine seam: a wrapper (e.g. the batcher) sees every inference and
// is closed at shutdown before the model.
func TestEngineSeam(t *testing.T) {
	var calls atomic.Int32
	var closedEngine atomic.Bool
	ts := start(t, bytesLoader(models.FraudONNX, "1"), true, func(c *Config) {
		c.NewEngine = func(m Model) (Engine, error) {
			return &countingEngine{next: m, calls: &calls, closed: &closedEngine}, nil
		}
	})
	ts.inferREST(t, "/v2/models/model/infer", fraudRequest(t), false)
	assert.Equal(t, int32(1), calls.Load())
	ts.cancel()
	require.NoError(t, ts.Wait())
	assert.True(t, closedEngine.Load())
}

type countingEngine struct {
	next   Engine
	calls  *atomic.Int32
	closed *atomic.Bool
}

func (c *countingEngine) Infer(ctx context.Context, in []oip.Tensor) ([]oip.Tensor, error) {
	c.calls.Add(1)
	return c.next.Infer(ctx, in)
}

func (c *countingEngine) Close() { c.closed.Store(true) }

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		msg  string
	}{
		{"same ports", Config{HTTPPort: 9000, GRPCPort: 9000}, "both 9000"},
		{"bad port", Config{HTTPPort: 70000}, "out of range"},
		{"negative threads", Config{IntraOpThreads: -1}, "negative"},
		{"negative limit", Config{MaxRequestBytes: -5}, "max request bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Start(context.Background(), tc.cfg)
			assert.ErrorContains(t, err, tc.msg)
		})
	}
	_, err := Start(context.Background(), Config{Host: "127.0.0.1", ListenEphemeral: true, ORTLibrary: "/nope/libonnxruntime.so.1"})
	assert.ErrorContains(t, err, "--ort_library")
}

// A loader that ignores its context cannot keep the server from stopping.
func TestShutdownWithStuckLoader(t *testing.T) {
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	loader := func(context.Context, *onnx.Env) (*LoadedModel, error) {
		<-stuck
		return nil, errors.New("too late")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, Config{Host: "127.0.0.1", ListenEphemeral: true, Env: testEnv, Loader: loader, ShutdownGrace: 200 * time.Millisecond})
	require.NoError(t, err)
	cancel()
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		assert.ErrorContains(t, err, "model loader did not stop")
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown blocked on the loader")
	}
}
