package client

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
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
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/veil-ai/veil/oip"
	pb "github.com/veil-ai/veil/oip/inferencepb"
)

// The fake server hosts model "sum" (version "3"): input "x" FP32 [n,k],
// output "y" FP32 [n,1] = row sums. Model "broken" fails as a server
// fault; any other model is unknown. It is built on package oip's server
// codecs, so these tests also round-trip them from the client side.

func sumModel(req *oip.InferRequest) (*oip.InferResponse, error) {
	if len(req.Inputs) != 1 || req.Inputs[0].Datatype != oip.FP32 || len(req.Inputs[0].Shape) != 2 {
		return nil, errors.New("want one FP32 [n,k] input")
	}
	in := req.Inputs[0]
	n, k := int(in.Shape[0]), int(in.Shape[1])
	raw := make([]byte, 4*n)
	for i := range n {
		var s float32
		for j := range k {
			s += math.Float32frombits(binary.LittleEndian.Uint32(in.Raw[4*(i*k+j):]))
		}
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(s))
	}
	return &oip.InferResponse{ModelName: "sum", ModelVersion: "3", ID: req.ID,
		Outputs: []oip.Tensor{{Name: "y", Datatype: oip.FP32, Shape: []int64{int64(n), 1}, Raw: raw}}}, nil
}

var sumMeta = oip.ModelMetadata{Name: "sum", Versions: []string{"3"}, Platform: "test",
	Inputs: []oip.TensorMetadata{{Name: "x", Datatype: "FP32", Shape: []int64{-1, -1}}}, Outputs: []oip.TensorMetadata{{Name: "y", Datatype: "FP32", Shape: []int64{-1, 1}}}}

func restServer(t testing.TB) *httptest.Server {
	writeErr := func(w http.ResponseWriter, code int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(oip.ErrorResponse{Error: msg})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/health/live", func(w http.ResponseWriter, _ *http.Request) {})
	mux.HandleFunc("GET /v2/health/ready", func(w http.ResponseWriter, _ *http.Request) {})
	mux.HandleFunc("GET /v2/models/{model}/ready", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("model") != "sum" {
			writeErr(w, 404, "unknown model")
		}
	})
	mux.HandleFunc("GET /v2/models/{model}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("model") != "sum" {
			writeErr(w, 404, "unknown model")
			return
		}
		_ = json.NewEncoder(w).Encode(sumMeta)
	})
	mux.HandleFunc("POST /v2/models/{model}/infer", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("model") {
		case "sum":
		case "broken":
			writeErr(w, 500, "model crashed")
			return
		case "huge":
			_, _ = w.Write([]byte(`{"model_name":"huge","outputs":[],"pad":"` + strings.Repeat("x", 4096) + `"}`))
			return
		default:
			writeErr(w, 404, "unknown model")
			return
		}
		body, _ := io.ReadAll(r.Body)
		jl := -1
		if h := r.Header.Get(oip.HeaderInferenceHeaderContentLength); h != "" {
			jl, _ = strconv.Atoi(h)
		}
		req, err := oip.DecodeRESTRequest(body, jl)
		if err != nil {
			writeErr(w, 400, err.Error())
			return
		}
		resp, err := sumModel(req)
		if err != nil {
			writeErr(w, 400, err.Error())
			return
		}
		out, jsonLen, err := oip.EncodeRESTResponse(resp, req.WantsBinary)
		require.NoError(t, err)
		if jsonLen < len(out) {
			w.Header().Set(oip.HeaderInferenceHeaderContentLength, strconv.Itoa(jsonLen))
		}
		_, _ = w.Write(out)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type grpcFake struct {
	pb.UnimplementedGRPCInferenceServiceServer
}

func (grpcFake) ServerLive(context.Context, *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
	return &pb.ServerLiveResponse{Live: true}, nil
}
func (grpcFake) ServerReady(context.Context, *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
	return &pb.ServerReadyResponse{Ready: true}, nil
}
func (grpcFake) ModelReady(_ context.Context, r *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
	if r.Name != "sum" {
		return nil, status.Error(codes.NotFound, "unknown model")
	}
	return &pb.ModelReadyResponse{Ready: true}, nil
}
func (grpcFake) ModelMetadata(_ context.Context, r *pb.ModelMetadataRequest) (*pb.ModelMetadataResponse, error) {
	if r.Name != "sum" {
		return nil, status.Error(codes.NotFound, "unknown model")
	}
	return &pb.ModelMetadataResponse{Name: "sum", Versions: []string{"3"}, Platform: "test",
		Inputs:  []*pb.ModelMetadataResponse_TensorMetadata{{Name: "x", Datatype: "FP32", Shape: []int64{-1, -1}}},
		Outputs: []*pb.ModelMetadataResponse_TensorMetadata{{Name: "y", Datatype: "FP32", Shape: []int64{-1, 1}}}}, nil
}
func (grpcFake) ModelInfer(_ context.Context, m *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	switch m.ModelName {
	case "sum":
	case "broken":
		return nil, status.Error(codes.Internal, "model crashed")
	case "huge":
		return &pb.ModelInferResponse{ModelName: "huge", Id: strings.Repeat("x", 4096)}, nil
	default:
		return nil, status.Error(codes.NotFound, "unknown model")
	}
	req, err := oip.FromModelInferRequest(m)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	resp, err := sumModel(req)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return oip.ToModelInferResponse(resp, len(m.RawInputContents) > 0)
}

func grpcServer(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer()
	pb.RegisterGRPCInferenceServiceServer(s, grpcFake{})
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return "http://" + l.Addr().String()
}

func fp32(name string, shape []int64, vals ...float32) oip.Tensor {
	raw := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return oip.Tensor{Name: name, Datatype: oip.FP32, Shape: shape, Raw: raw}
}

func floats(t *testing.T, ts oip.Tensor) []float32 {
	require.Equal(t, oip.FP32, ts.Datatype)
	out := make([]float32, len(ts.Raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(ts.Raw[4*i:]))
	}
	return out
}

func TestAllTransports(t *testing.T) {
	restURL := restServer(t).URL
	grpcURL := grpcServer(t)
	for _, p := range Protocols {
		t.Run(string(p), func(t *testing.T) {
			url := restURL
			if p.IsGRPC() {
				url = grpcURL
			}
			c, err := New(Config{URL: url, Protocol: p, Timeout: 5 * time.Second, MaxResponseBytes: 2048})
			require.NoError(t, err)
			defer c.Close()
			ctx := context.Background()
			assert.Equal(t, p, c.Protocol())

			resp, err := c.Infer(ctx, "sum", []oip.Tensor{fp32("x", []int64{3, 2}, 1, 2, 0.5, 0.25, -1, 1e-3)}, WithRequestID("r1"))
			require.NoError(t, err)
			assert.Equal(t, "sum", resp.ModelName)
			assert.Equal(t, "3", resp.ModelVersion)
			assert.Equal(t, "r1", resp.ID)
			require.Len(t, resp.Outputs, 1)
			assert.Equal(t, []int64{3, 1}, resp.Outputs[0].Shape)
			assert.Equal(t, []float32{3, 0.75, -1 + 1e-3}, floats(t, resp.Outputs[0]))
			tr := c.Traffic()
			assert.GreaterOrEqual(t, tr.Sent, int64(24), "at least the 6 FP32 inputs went out")
			assert.GreaterOrEqual(t, tr.Received, int64(12), "at least the 3 FP32 outputs came back")

			for _, probe := range []func(context.Context) (bool, error){c.ServerLive, c.ServerReady} {
				ok, err := probe(ctx)
				require.NoError(t, err)
				assert.True(t, ok)
			}
			ok, err := c.ModelReady(ctx, "sum", "")
			require.NoError(t, err)
			assert.True(t, ok)
			md, err := c.ModelMetadata(ctx, "sum", "")
			require.NoError(t, err)
			assert.Equal(t, sumMeta.Inputs, md.Inputs)
			assert.Equal(t, sumMeta.Outputs, md.Outputs)

			tests := []struct {
				name      string
				model     string
				inputs    []oip.Tensor
				retryable bool
				status    int
				code      codes.Code
			}{
				{"unknown model", "nope", []oip.Tensor{fp32("x", []int64{1, 1}, 1)}, false, 404, codes.NotFound},
				{"server fault", "broken", []oip.Tensor{fp32("x", []int64{1, 1}, 1)}, true, 500, codes.Internal},
				{"bad input", "sum", []oip.Tensor{fp32("x", []int64{2}, 1, 2)}, false, 400, codes.InvalidArgument},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					_, err := c.Infer(ctx, tc.model, tc.inputs)
					require.Error(t, err)
					var e *Error
					require.ErrorAs(t, err, &e)
					assert.Equal(t, tc.retryable, IsRetryable(err), err.Error())
					if p.IsGRPC() {
						assert.Equal(t, tc.code, e.GRPCCode)
					} else {
						assert.Equal(t, tc.status, e.HTTPStatus)
					}
				})
			}
			_, err = c.Infer(ctx, "huge", []oip.Tensor{fp32("x", []int64{1, 1}, 1)})
			require.Error(t, err, "responses over MaxResponseBytes are refused")
			assert.False(t, IsRetryable(err) && !p.IsGRPC())
		})
	}
}

func TestUnreachableIsRetryable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	for _, p := range Protocols {
		t.Run(string(p), func(t *testing.T) {
			c, err := New(Config{URL: "http://" + addr, Protocol: p, Timeout: 2 * time.Second})
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Infer(context.Background(), "sum", []oip.Tensor{fp32("x", []int64{1, 1}, 1)})
			require.Error(t, err)
			assert.True(t, IsRetryable(err), "connection refused must be retryable: %v", err)
		})
	}
}

func TestDeadline(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer slow.Close()
	defer close(release)
	c, err := New(Config{URL: slow.URL, Protocol: RESTBinary, Timeout: 20 * time.Millisecond})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Infer(context.Background(), "sum", []oip.Tensor{fp32("x", []int64{1, 1}, 1)})
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, IsRetryable(err))
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no url", Config{Protocol: GRPC}, "empty server URL"},
		{"scheme", Config{URL: "ftp://x:1", Protocol: GRPC}, "scheme"},
		{"protocol", Config{URL: "http://x:1", Protocol: "soap"}, "unknown OIP protocol"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			assert.ErrorContains(t, err, tc.want)
		})
	}
	p, err := ParseProtocol("grpc-raw")
	require.NoError(t, err)
	assert.Equal(t, GRPCRaw, p)
}
