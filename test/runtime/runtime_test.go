// Package runtime_test starts the built veil-runtime binary on free
// loopback ports and talks to it over the network, REST and gRPC, as
// KServe and the batching functions do.
package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/veil-ai/veil/oip"
	pb "github.com/veil-ai/veil/oip/inferencepb"
	"github.com/veil-ai/veil/runtime/fraudtest"
	"github.com/veil-ai/veil/test/e2e"
)

type runtimeProc struct {
	proc     *e2e.Process
	base     string
	grpcAddr string
	httpAddr string
}

// startRuntime runs bin/veil-runtime with no environment help: the
// onnxruntime library must be found beside the binary.
func startRuntime(t *testing.T, modelDir string, extra ...string) runtimeProc {
	t.Helper()
	httpPort, grpcPort := e2e.FreePort(t), e2e.FreePort(t)
	args := append([]string{
		"--model_dir", modelDir, "--host", "127.0.0.1",
		"--http_port", strconv.Itoa(httpPort), "--grpc_port", strconv.Itoa(grpcPort),
		"--intra_op_threads", "1",
	}, extra...)
	p := e2e.Start(t, "veil-runtime", []string{"ORT_LIBRARY_PATH="}, args...)
	r := runtimeProc{proc: p, base: fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		httpAddr: fmt.Sprintf("127.0.0.1:%d", httpPort), grpcAddr: fmt.Sprintf("127.0.0.1:%d", grpcPort)}
	e2e.WaitHTTP(t, p, r.base+"/v2/health/ready", 60*time.Second)
	return r
}

func grpcClient(t *testing.T, addr string) pb.GRPCInferenceServiceClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	return pb.NewGRPCInferenceServiceClient(cc)
}

func TestFraudModelOverTheNetwork(t *testing.T) {
	rt := startRuntime(t, filepath.Join(e2e.RepoRoot(), "models", "fraud"), "--model_name", "fraud", "--log_level", "debug")
	cases := fraudtest.Cases()
	in, err := fraudtest.Batch(cases)
	require.NoError(t, err)
	req := &oip.InferRequest{ID: "e2e", Inputs: []oip.Tensor{in}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	checkScores := func(t *testing.T, out oip.Tensor) {
		t.Helper()
		scores := fraudtest.Scores(out)
		require.Len(t, scores, len(cases))
		for i, c := range cases {
			assert.InDelta(t, c.Score, scores[i], fraudtest.Tolerance, c.Name)
		}
	}
	t.Run("REST JSON and binary", func(t *testing.T) {
		for _, binary := range []bool{false, true} {
			r := *req
			if binary {
				r.Parameters = oip.Parameters{oip.ParamBinaryDataOutput: true}
			}
			body, jsonLen, err := oip.EncodeRESTRequest(&r, binary)
			require.NoError(t, err)
			hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, rt.base+"/v2/models/fraud/infer", bytes.NewReader(body))
			require.NoError(t, err)
			if jsonLen < len(body) {
				hreq.Header.Set(oip.HeaderInferenceHeaderContentLength, strconv.Itoa(jsonLen))
			}
			hreq.Header.Set("x-request-id", "e2e-rest")
			resp, err := http.DefaultClient.Do(hreq)
			require.NoError(t, err)
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
			respLen := -1
			if v := resp.Header.Get(oip.HeaderInferenceHeaderContentLength); v != "" {
				respLen, err = strconv.Atoi(v)
				require.NoError(t, err)
			}
			assert.Equal(t, binary, respLen >= 0, "binary output exactly when asked")
			out, err := oip.DecodeRESTResponse(b, respLen)
			require.NoError(t, err)
			assert.Equal(t, "e2e", out.ID)
			checkScores(t, out.Outputs[0])
		}
	})
	for name, addr := range map[string]string{"gRPC port": rt.grpcAddr, "gRPC on the HTTP port": rt.httpAddr} {
		t.Run(name, func(t *testing.T) {
			c := grpcClient(t, addr)
			live, err := c.ServerLive(ctx, &pb.ServerLiveRequest{})
			require.NoError(t, err)
			assert.True(t, live.Live)
			md, err := c.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "fraud"})
			require.NoError(t, err)
			assert.Equal(t, "dense_input", md.Inputs[0].Name)
			for _, raw := range []bool{false, true} {
				m, err := oip.ToModelInferRequest(req, "fraud", "1", raw)
				require.NoError(t, err)
				g, err := c.ModelInfer(ctx, m)
				require.NoError(t, err)
				out, err := oip.FromModelInferResponse(g)
				require.NoError(t, err)
				checkScores(t, out.Outputs[0])
			}
		})
	}
	t.Run("KServe v1", func(t *testing.T) {
		var rows [][]float32
		for _, c := range cases {
			x, err := fraudtest.Scale(c.Features)
			require.NoError(t, err)
			rows = append(rows, x)
		}
		body, err := json.Marshal(map[string]any{"instances": rows})
		require.NoError(t, err)
		resp, err := http.Post(rt.base+"/v1/models/fraud:predict", "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var v1 struct{ Predictions [][]float64 }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&v1))
		require.Len(t, v1.Predictions, len(cases))
		for i, c := range cases {
			assert.InDelta(t, c.Score, v1.Predictions[i][0], fraudtest.Tolerance, c.Name)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		resp, err := http.Get(rt.base + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Contains(t, string(b), `request_predict_seconds_count{model_name="fraud"}`)
	})

	// SIGTERM: a clean exit.
	require.NoError(t, rt.proc.Stop(10*time.Second))
	assert.Contains(t, rt.proc.Output(), "e2e-rest", "logs carry the request id")
	assert.Contains(t, rt.proc.Output(), "shut down")
}

func TestVariantModelOverTheNetwork(t *testing.T) {
	rt := startRuntime(t, filepath.Join(e2e.RepoRoot(), "models", "variants", "tarilabs-fraud-detection-6input"))
	c := grpcClient(t, rt.grpcAddr)
	ctx := context.Background()
	md, err := c.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "model"})
	require.NoError(t, err)
	var inputs []oip.Tensor
	for _, in := range md.Inputs {
		shape := append([]int64(nil), in.Shape...)
		for i := range shape {
			if shape[i] < 0 {
				shape[i] = 1
			}
		}
		n, err := oip.ElementCount(shape)
		require.NoError(t, err)
		dt := oip.DataType(in.Datatype)
		inputs = append(inputs, oip.Tensor{Name: in.Name, Datatype: dt, Shape: shape, Raw: make([]byte, int(n)*dt.Size())})
	}
	m, err := oip.ToModelInferRequest(&oip.InferRequest{Inputs: inputs}, "model", "", true)
	require.NoError(t, err)
	g, err := c.ModelInfer(ctx, m)
	require.NoError(t, err)
	assert.Len(t, g.Outputs, len(md.Outputs))
}

func TestMissingModelDirStaysUnready(t *testing.T) {
	httpPort, grpcPort := e2e.FreePort(t), e2e.FreePort(t)
	p := e2e.Start(t, "veil-runtime", nil, "--model_dir", filepath.Join(t.TempDir(), "none"), "--host", "127.0.0.1",
		"--http_port", strconv.Itoa(httpPort), "--grpc_port", strconv.Itoa(grpcPort))
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	e2e.WaitHTTP(t, p, base+"/v2/health/live", 30*time.Second)
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/v2/health/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable && bytes.Contains([]byte(p.Output()), []byte("model load failed"))
	}, 30*time.Second, 50*time.Millisecond)
}
