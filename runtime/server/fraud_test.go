package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/oip"
	pb "github.com/veil-ai/veil/oip/inferencepb"
	"github.com/veil-ai/veil/runtime/fraudtest"
)

// The workshop's transactions score as published over every protocol the
// server speaks.
func TestFraudScoresOverEveryProtocol(t *testing.T) {
	ts := fraudServer(t)
	cases := fraudtest.Cases()
	in, err := fraudtest.Batch(cases)
	require.NoError(t, err)
	req := &oip.InferRequest{ID: "tx-1", Inputs: []oip.Tensor{in}}

	grpcInfer := func(client pb.GRPCInferenceServiceClient, raw bool) func(t *testing.T) oip.Tensor {
		return func(t *testing.T) oip.Tensor {
			m, err := oip.ToModelInferRequest(req, "model", "", raw)
			require.NoError(t, err)
			out, err := client.ModelInfer(context.Background(), m)
			require.NoError(t, err)
			assert.Equal(t, raw, len(out.RawOutputContents) > 0, "the answer is raw exactly when the request was")
			resp, err := oip.FromModelInferResponse(out)
			require.NoError(t, err)
			assert.Equal(t, "tx-1", resp.ID)
			assert.Equal(t, "1", resp.ModelVersion)
			require.Len(t, resp.Outputs, 1)
			return resp.Outputs[0]
		}
	}
	restInfer := func(path string, binary bool) func(t *testing.T) oip.Tensor {
		return func(t *testing.T) oip.Tensor {
			r := *req
			if binary {
				r.Parameters = oip.Parameters{oip.ParamBinaryDataOutput: true}
			}
			resp := ts.inferREST(t, path, &r, binary)
			assert.Equal(t, "tx-1", resp.ID)
			assert.Equal(t, "model", resp.ModelName)
			require.Len(t, resp.Outputs, 1)
			return resp.Outputs[0]
		}
	}
	tests := []struct {
		name  string
		infer func(t *testing.T) oip.Tensor
	}{
		{"REST JSON", restInfer("/v2/models/model/infer", false)},
		{"REST JSON versioned", restInfer("/v2/models/model/versions/1/infer", false)},
		{"REST binary", restInfer("/v2/models/model/infer", true)},
		{"gRPC typed", grpcInfer(ts.grpc, false)},
		{"gRPC raw", grpcInfer(ts.grpc, true)},
		{"gRPC on the HTTP port typed", grpcInfer(ts.h2c, false)},
		{"gRPC on the HTTP port raw", grpcInfer(ts.h2c, true)},
		{"KServe v1", func(t *testing.T) oip.Tensor {
			var rows [][]float32
			for _, c := range cases {
				x, err := fraudtest.Scale(c.Features)
				require.NoError(t, err)
				rows = append(rows, x)
			}
			body, err := json.Marshal(map[string]any{"instances": rows})
			require.NoError(t, err)
			r := ts.do(t, http.MethodPost, "/v1/models/model:predict", body, nil)
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			var resp struct{ Predictions [][]float64 }
			require.NoError(t, json.Unmarshal(r.body, &resp))
			out := oip.Tensor{Name: fraudtest.OutputName, Datatype: oip.FP32, Shape: []int64{int64(len(resp.Predictions)), 1}}
			flat := make([]float32, 0, len(resp.Predictions))
			for _, p := range resp.Predictions {
				require.Len(t, p, 1)
				flat = append(flat, float32(p[0]))
			}
			out.Raw = f32bytes(flat...)
			return out
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := tc.infer(t)
			assert.Equal(t, fraudtest.OutputName, out.Name)
			assert.Equal(t, []int64{2, 1}, out.Shape)
			scores := fraudtest.Scores(out)
			require.Len(t, scores, len(cases))
			for i, c := range cases {
				assert.InDelta(t, c.Score, scores[i], fraudtest.Tolerance, c.Name)
			}
		})
	}
}

// The variant models from other workshop forks (other tensor names, six
// inputs) are served with no code change, from their model directories.
func TestVariantModelsServed(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("..", "..", "models", "variants", "*"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			ts := start(t, nil, true, func(c *Config) { c.ModelDir = dir; c.IntraOpThreads = 1 })
			r := ts.do(t, http.MethodGet, "/v2/models/model", nil, nil)
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			var meta oip.ModelMetadata
			require.NoError(t, json.Unmarshal(r.body, &meta))
			assert.Equal(t, "onnx_onnxv1", meta.Platform)
			var inputs []oip.Tensor
			for _, in := range meta.Inputs {
				shape := append([]int64(nil), in.Shape...)
				for i := range shape {
					if shape[i] < 0 {
						shape[i] = 3
					}
				}
				n, err := oip.ElementCount(shape)
				require.NoError(t, err)
				inputs = append(inputs, oip.Tensor{Name: in.Name, Datatype: oip.DataType(in.Datatype), Shape: shape, Raw: make([]byte, int(n)*oip.DataType(in.Datatype).Size())})
			}
			resp := ts.inferREST(t, "/v2/models/model/infer", &oip.InferRequest{Inputs: inputs}, false)
			require.Len(t, resp.Outputs, len(meta.Outputs))
			for i, o := range resp.Outputs {
				assert.Equal(t, meta.Outputs[i].Name, o.Name)
				assert.Equal(t, int64(3), o.Shape[0])
			}
			m, err := oip.ToModelInferRequest(&oip.InferRequest{Inputs: inputs}, "model", "", true)
			require.NoError(t, err)
			out, err := ts.grpc.ModelInfer(context.Background(), m)
			require.NoError(t, err)
			assert.Len(t, out.RawOutputContents, len(meta.Outputs))
		})
	}
}

func TestModelDirVersionFolder(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "7"), 0o700))
	b, err := os.ReadFile(filepath.Join("..", "..", "models", "fraud", "1", "model.onnx"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "7", "fraud.onnx"), b, 0o600))
	ts := start(t, nil, true, func(c *Config) { c.ModelDir = dir; c.ModelName = "fraud" })
	assert.Equal(t, http.StatusOK, ts.do(t, http.MethodGet, "/v2/models/fraud/versions/7/ready", nil, nil).status)
	assert.Equal(t, http.StatusNotFound, ts.do(t, http.MethodGet, "/v2/models/fraud/versions/1/ready", nil, nil).status)
	r := ts.do(t, http.MethodGet, "/v2/models/fraud", nil, nil)
	assert.Contains(t, string(r.body), `"versions":["7"]`)
}

func f32bytes(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// Many clients at once over every transport share the one session and
// each gets its own scores.
func TestConcurrentClients(t *testing.T) {
	ts := fraudServer(t)
	cases := fraudtest.Cases()
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for i := range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := cases[i%len(cases)]
			in, err := fraudtest.Batch([]fraudtest.Case{c})
			if err != nil {
				errs <- err
				return
			}
			req := &oip.InferRequest{ID: strconv.Itoa(i), Inputs: []oip.Tensor{in}}
			var out *oip.InferResponse
			switch i % 3 {
			case 0:
				body, _, err := oip.EncodeRESTRequest(req, false)
				if err != nil {
					errs <- err
					return
				}
				resp, err := http.Post(ts.base+"/v2/models/model/infer", "application/json", bytes.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					errs <- err
					return
				}
				out, err = oip.DecodeRESTResponse(b, -1)
				if err != nil {
					errs <- fmt.Errorf("status %d: %w", resp.StatusCode, err)
					return
				}
			default:
				client := ts.grpc
				if i%3 == 2 {
					client = ts.h2c
				}
				m, err := oip.ToModelInferRequest(req, "model", "", i%2 == 0)
				if err != nil {
					errs <- err
					return
				}
				g, err := client.ModelInfer(context.Background(), m)
				if err != nil {
					errs <- err
					return
				}
				if out, err = oip.FromModelInferResponse(g); err != nil {
					errs <- err
					return
				}
			}
			if out.ID != strconv.Itoa(i) {
				errs <- fmt.Errorf("request %d got id %q", i, out.ID)
				return
			}
			if s := fraudtest.Scores(out.Outputs[0])[0]; math.Abs(s-c.Score) > fraudtest.Tolerance {
				errs <- fmt.Errorf("request %d (%s): score %v, want %v", i, c.Name, s, c.Score)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
