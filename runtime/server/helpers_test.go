package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/veil-ai/veil/internal/syncbuf"
	"github.com/veil-ai/veil/models"
	"github.com/veil-ai/veil/oip"
	pb "github.com/veil-ai/veil/oip/inferencepb"
	"github.com/veil-ai/veil/runtime/onnx"
)

// testEnv is the process's one onnxruntime environment.
var testEnv *onnx.Env

func TestMain(m *testing.M) {
	lib := os.Getenv(onnx.LibraryEnv)
	if lib == "" {
		fmt.Fprintf(os.Stderr, "runtime/server tests need onnxruntime: set %s (run `make ort`; the Makefile exports it)\n", onnx.LibraryEnv)
		os.Exit(1)
	}
	env, err := onnx.NewEnv(lib)
	if err != nil {
		fmt.Fprintf(os.Stderr, "runtime/server tests: %v\n", err)
		os.Exit(1)
	}
	testEnv = env
	code := m.Run()
	_ = env.Close()
	os.Exit(code)
}

// testServer is a started server with clients for both ports.
type testServer struct {
	*Server
	logs   *syncbuf.Buffer
	cancel context.CancelFunc
	base   string
	grpc   pb.GRPCInferenceServiceClient
	h2c    pb.GRPCInferenceServiceClient
}

// bytesLoader loads a model from memory, as sealed-model loaders do.
func bytesLoader(b []byte, version string) Loader {
	return func(ctx context.Context, env *onnx.Env) (*LoadedModel, error) {
		m, err := env.NewModel(b, onnx.Options{IntraOpThreads: 1})
		if err != nil {
			return nil, err
		}
		return &LoadedModel{Model: m, Version: version}, nil
	}
}

func modelLoader(m Model) Loader {
	return func(context.Context, *onnx.Env) (*LoadedModel, error) {
		return &LoadedModel{Model: m, Version: "1"}, nil
	}
}

// start runs a server on free loopback ports; edit adjusts the config.
// It waits for the loader unless waitLoad is false.
func start(t *testing.T, loader Loader, waitLoad bool, edit func(*Config)) *testServer {
	t.Helper()
	logs := &syncbuf.Buffer{}
	cfg := Config{
		Host: "127.0.0.1", ListenEphemeral: true, Env: testEnv, Loader: loader,
		Logger:        slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ShutdownGrace: 5 * time.Second,
	}
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, cfg)
	require.NoError(t, err)
	ts := &testServer{Server: s, logs: logs, cancel: cancel, base: "http://" + s.HTTPAddr()}
	ts.grpc = pb.NewGRPCInferenceServiceClient(dial(t, s.GRPCAddr()))
	ts.h2c = pb.NewGRPCInferenceServiceClient(dial(t, s.HTTPAddr()))
	t.Cleanup(func() {
		cancel()
		require.NoError(t, s.Wait())
		if t.Failed() {
			t.Logf("server logs:\n%s", logs.String())
		}
	})
	if waitLoad {
		select {
		case <-s.Loaded():
		case <-time.After(30 * time.Second):
			t.Fatal("model did not load")
		}
	}
	return ts
}

func fraudServer(t *testing.T) *testServer {
	return start(t, bytesLoader(models.FraudONNX, "1"), true, nil)
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20), grpc.MaxCallSendMsgSize(256<<20)))
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	return cc
}

type httpResult struct {
	status int
	header http.Header
	body   []byte
}

func (r httpResult) errorMessage(t *testing.T) string {
	t.Helper()
	var e oip.ErrorResponse
	require.NoError(t, json.Unmarshal(r.body, &e), "error body must be JSON: %s", r.body)
	require.NotEmpty(t, e.Error)
	return e.Error
}

func (ts *testServer) do(t *testing.T, method, path string, body []byte, header map[string]string) httpResult {
	t.Helper()
	req, err := http.NewRequest(method, ts.base+path, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return httpResult{status: resp.StatusCode, header: resp.Header, body: b}
}

// inferREST sends req (binary inputs if binary) and decodes the answer.
func (ts *testServer) inferREST(t *testing.T, path string, req *oip.InferRequest, binary bool) *oip.InferResponse {
	t.Helper()
	body, jsonLen, err := oip.EncodeRESTRequest(req, binary)
	require.NoError(t, err)
	h := map[string]string{"Content-Type": "application/json"}
	if jsonLen < len(body) {
		h[oip.HeaderInferenceHeaderContentLength] = strconv.Itoa(jsonLen)
		h["Content-Type"] = "application/octet-stream"
	}
	r := ts.do(t, http.MethodPost, path, body, h)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	respLen := -1
	if v := r.header.Get(oip.HeaderInferenceHeaderContentLength); v != "" {
		respLen, err = strconv.Atoi(v)
		require.NoError(t, err)
	}
	resp, err := oip.DecodeRESTResponse(r.body, respLen)
	require.NoError(t, err)
	return resp
}

// fakeModel lets tests script an engine's behaviour.
type fakeModel struct {
	inputs, outputs []oip.TensorMetadata
	infer           func(ctx context.Context, in []oip.Tensor) ([]oip.Tensor, error)
	closed          chan struct{}
}

func (f *fakeModel) Inputs() []oip.TensorMetadata  { return f.inputs }
func (f *fakeModel) Outputs() []oip.TensorMetadata { return f.outputs }
func (f *fakeModel) Infer(ctx context.Context, in []oip.Tensor) ([]oip.Tensor, error) {
	return f.infer(ctx, in)
}
func (f *fakeModel) Close() error {
	if f.closed != nil {
		close(f.closed)
	}
	return nil
}
