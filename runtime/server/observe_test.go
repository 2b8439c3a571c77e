package server

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/veil-ai/veil/oip"
	pb "github.com/veil-ai/veil/oip/inferencepb"
	"github.com/veil-ai/veil/runtime/fraudtest"
	"github.com/veil-ai/veil/runtime/internal/onnxtest"
)

func fraudRequest(t *testing.T) *oip.InferRequest {
	in, err := fraudtest.Batch(fraudtest.Cases())
	require.NoError(t, err)
	return &oip.InferRequest{Inputs: []oip.Tensor{in}}
}

func TestMetrics(t *testing.T) {
	ts := fraudServer(t)
	ts.inferREST(t, "/v2/models/model/infer", fraudRequest(t), false)
	ts.do(t, "GET", "/v2/models/nope", nil, nil)
	m, err := oip.ToModelInferRequest(fraudRequest(t), "model", "", true)
	require.NoError(t, err)
	_, err = ts.grpc.ModelInfer(context.Background(), m)
	require.NoError(t, err)
	_, err = ts.grpc.ModelInfer(context.Background(), &pb.ModelInferRequest{ModelName: "nope"})
	require.Error(t, err)

	r := ts.do(t, "GET", "/metrics", nil, nil)
	require.Equal(t, http.StatusOK, r.status)
	text := string(r.body)
	for _, want := range []string{
		`request_predict_seconds_count{model_name="model"} 2`,
		`veil_requests_total{code="200",protocol="rest"} 1`,
		`veil_requests_total{code="404",protocol="rest"} 1`,
		`veil_request_errors_total{code="404",protocol="rest"} 1`,
		`veil_requests_total{code="OK",protocol="grpc"} 1`,
		`veil_request_errors_total{code="NotFound",protocol="grpc"} 1`,
		`veil_requests_in_flight{protocol="rest"} 1`,
		`go_goroutines`,
	} {
		assert.Contains(t, text, want)
	}
}

// Logs carry x-request-id and never the tensor data, not even when a
// malformed request quotes it back to the client.
func TestRequestIDAndNoDataInLogs(t *testing.T) {
	ts := fraudServer(t)
	body := []byte(`{"inputs":[{"name":"dense_input","shape":[1,5],"datatype":"FP32","data":[4242.4242,2,3,4,"SECRETVALUE"]}]}`)
	r := ts.do(t, "POST", "/v2/models/model/infer", body, map[string]string{"x-request-id": "req-abc-123"})
	assert.Equal(t, http.StatusBadRequest, r.status)
	assert.Equal(t, "req-abc-123", r.header.Get("x-request-id"))
	assert.Contains(t, r.errorMessage(t), "want a number", "the client learns what was wrong")

	ok := ts.do(t, "POST", "/v2/models/model/infer", []byte(`{"inputs":[{"name":"dense_input","shape":[1,5],"datatype":"FP32","data":[7777.7777,2,3,4,5]}]}`), map[string]string{"x-request-id": "req-ok-1"})
	assert.Equal(t, http.StatusOK, ok.status)

	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-request-id", "grpc-req-9")
	var hdr metadata.MD
	_, err := ts.grpc.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "model", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "zzz", Datatype: "FP32", Shape: []int64{1}, Contents: &pb.InferTensorContents{Fp32Contents: []float32{31337.5}}}}}, grpc.Header(&hdr))
	require.Error(t, err)
	assert.Equal(t, []string{"grpc-req-9"}, hdr.Get("x-request-id"))

	logs := ts.logs.String()
	for _, id := range []string{"req-abc-123", "req-ok-1", "grpc-req-9"} {
		assert.Contains(t, logs, id)
	}
	for _, secret := range []string{"SECRETVALUE", "4242.4242", "7777.7777", "31337.5"} {
		assert.NotContains(t, logs, secret)
	}
}

func TestServerMetadataAndModelList(t *testing.T) {
	ts := fraudServer(t)
	for _, path := range []string{"/v2", "/v2/"} {
		r := ts.do(t, "GET", path, nil, nil)
		require.Equal(t, http.StatusOK, r.status)
		var md oip.ServerMetadata
		require.NoError(t, json.Unmarshal(r.body, &md))
		assert.Equal(t, "veil-runtime", md.Name)
		assert.Contains(t, md.Extensions, "binary_tensor_data")
		assert.Contains(t, md.Extensions, "grpc_on_http_port")
	}
	g, err := ts.h2c.ServerMetadata(context.Background(), &pb.ServerMetadataRequest{})
	require.NoError(t, err)
	assert.Contains(t, g.Extensions, "binary_tensor_data")
	for _, path := range []string{"/v2/models", "/v1/models"} {
		r := ts.do(t, "GET", path, nil, nil)
		assert.JSONEq(t, `{"models":["model"]}`, string(r.body))
	}
	assert.JSONEq(t, `{"name":"model","ready":true}`, string(ts.do(t, "GET", "/v1/models/model", nil, nil).body))
	assert.JSONEq(t, `{"status":"alive"}`, string(ts.do(t, "GET", "/", nil, nil).body))
	gm, err := ts.grpc.ModelMetadata(context.Background(), &pb.ModelMetadataRequest{Name: "model", Version: "1"})
	require.NoError(t, err)
	assert.Equal(t, "onnx_onnxv1", gm.Platform)
	assert.Equal(t, []int64{-1, 5}, gm.Inputs[0].Shape)
	assert.Equal(t, []string{"1"}, gm.Versions)
}

// Output selection and per-output binary choice, on a two-output model.
func TestOutputSelection(t *testing.T) {
	fm := &fakeModel{
		inputs:  []oip.TensorMetadata{{Name: "x", Datatype: "FP32", Shape: []int64{-1}}},
		outputs: []oip.TensorMetadata{{Name: "a", Datatype: "FP32", Shape: []int64{-1}}, {Name: "b", Datatype: "INT64", Shape: []int64{-1}}},
		infer: func(ctx context.Context, in []oip.Tensor) ([]oip.Tensor, error) {
			n := in[0].Shape[0]
			return []oip.Tensor{
				{Name: "a", Datatype: oip.FP32, Shape: []int64{n}, Raw: in[0].Raw},
				{Name: "b", Datatype: oip.Int64, Shape: []int64{n}, Raw: make([]byte, 8*n)},
			}, nil
		},
	}
	ts := start(t, modelLoader(fm), true, nil)
	x := oip.Tensor{Name: "x", Datatype: oip.FP32, Shape: []int64{1}, Raw: binary.LittleEndian.AppendUint32(nil, math.Float32bits(1.5))}
	all := ts.inferREST(t, "/v2/models/model/infer", &oip.InferRequest{Inputs: []oip.Tensor{x}}, false)
	assert.Len(t, all.Outputs, 2)

	body, _, err := oip.EncodeRESTRequest(&oip.InferRequest{Inputs: []oip.Tensor{x}, Outputs: []oip.RequestOutput{{Name: "b"}, {Name: "a", Parameters: oip.Parameters{oip.ParamBinaryData: true}}}}, false)
	require.NoError(t, err)
	r := ts.do(t, "POST", "/v2/models/model/infer", body, nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	jsonLen, err := strconv.Atoi(r.header.Get(oip.HeaderInferenceHeaderContentLength))
	require.NoError(t, err)
	assert.Equal(t, "application/octet-stream", r.header.Get("Content-Type"))
	assert.Equal(t, 4, len(r.body)-jsonLen, "only output a travels as binary")
	resp, err := oip.DecodeRESTResponse(r.body, jsonLen)
	require.NoError(t, err)
	require.Len(t, resp.Outputs, 2)
	assert.Equal(t, "b", resp.Outputs[0].Name)
	assert.Equal(t, "a", resp.Outputs[1].Name)
	assert.Equal(t, x.Raw, resp.Outputs[1].Raw)

	m, err := oip.ToModelInferRequest(&oip.InferRequest{Inputs: []oip.Tensor{x}, Outputs: []oip.RequestOutput{{Name: "b"}}}, "model", "", false)
	require.NoError(t, err)
	g, err := ts.grpc.ModelInfer(context.Background(), m)
	require.NoError(t, err)
	require.Len(t, g.Outputs, 1)
	assert.Equal(t, "b", g.Outputs[0].Name)

	// v1 with several outputs: one object per row.
	v1 := ts.do(t, "POST", "/v1/models/model:predict", []byte(`{"instances":[1.5, 2]}`), nil)
	require.Equal(t, http.StatusOK, v1.status, "%s", v1.body)
	assert.JSONEq(t, `{"predictions":[{"a":1.5,"b":0},{"a":2,"b":0}]}`, string(v1.body))
}

// Every OIP datatype round-trips through an Identity model over REST (JSON
// where it has a JSON form, binary otherwise) and gRPC (typed and raw).
func TestDatatypesEndToEnd(t *testing.T) {
	tests := []struct {
		onnxType int
		dt       oip.DataType
		json     string
	}{
		{onnxtest.Bool, oip.Bool, "[true,false]"},
		{onnxtest.Int8, oip.Int8, "[-128,127]"},
		{onnxtest.Int16, oip.Int16, "[-300,300]"},
		{onnxtest.Int32, oip.Int32, "[-70000,70000]"},
		{onnxtest.Int64, oip.Int64, "[-9007199254740993,9223372036854775807]"},
		{onnxtest.Uint8, oip.Uint8, "[0,255]"},
		{onnxtest.Uint16, oip.Uint16, "[1,65535]"},
		{onnxtest.Uint32, oip.Uint32, "[1,4294967295]"},
		{onnxtest.Uint64, oip.Uint64, "[1,18446744073709551615]"},
		{onnxtest.Float, oip.FP32, "[0.0050283,-1e-30]"},
		{onnxtest.Double, oip.FP64, "[0.1,-1e300]"},
		{onnxtest.String, oip.Bytes, `["fraud","ok \"quoted\""]`},
		{onnxtest.Float16, oip.FP16, ""},
		{onnxtest.BFloat16, oip.BF16, ""},
	}
	for _, tc := range tests {
		t.Run(string(tc.dt), func(t *testing.T) {
			ts := start(t, bytesLoader(onnxtest.Identity(tc.onnxType, -1), "1"), true, nil)
			var in oip.Tensor
			if tc.json != "" {
				var err error
				in, err = oip.DecodeJSONData("x", tc.dt, []int64{2}, []byte(tc.json))
				require.NoError(t, err)
			} else {
				in = oip.Tensor{Name: "x", Datatype: tc.dt, Shape: []int64{2}, Raw: []byte{0x00, 0x3c, 0x80, 0xbf}}
			}
			req := &oip.InferRequest{Inputs: []oip.Tensor{in}}
			check := func(t *testing.T, out []oip.Tensor) {
				require.Len(t, out, 1)
				assert.Equal(t, tc.dt, out[0].Datatype)
				assert.Equal(t, []int64{2}, out[0].Shape)
				assert.Equal(t, in.Raw, out[0].Raw)
				assert.Equal(t, len(in.Strings), len(out[0].Strings))
				for i := range in.Strings {
					assert.Equal(t, string(in.Strings[i]), string(out[0].Strings[i]))
				}
			}
			check(t, ts.inferREST(t, "/v2/models/model/infer", req, false).Outputs)
			bin := *req
			bin.Parameters = oip.Parameters{oip.ParamBinaryDataOutput: true}
			check(t, ts.inferREST(t, "/v2/models/model/infer", &bin, true).Outputs)
			for _, raw := range []bool{false, true} {
				m, err := oip.ToModelInferRequest(req, "model", "", raw)
				require.NoError(t, err)
				g, err := ts.grpc.ModelInfer(context.Background(), m)
				require.NoError(t, err)
				resp, err := oip.FromModelInferResponse(g)
				require.NoError(t, err)
				check(t, resp.Outputs)
			}
			if tc.json != "" {
				r := ts.do(t, "POST", "/v2/models/model/infer", []byte(`{"inputs":[{"name":"x","shape":[2],"datatype":"`+string(tc.dt)+`","data":`+tc.json+`}]}`), nil)
				require.Equal(t, http.StatusOK, r.status, "%s", r.body)
				assert.True(t, strings.Contains(string(r.body), `"datatype":"`+string(tc.dt)+`"`))
			}
		})
	}
}

// The binary extension's raw binary request: the body is the one input.
func TestRawBinaryRequest(t *testing.T) {
	ts := fraudServer(t)
	in, err := fraudtest.Batch(fraudtest.Cases())
	require.NoError(t, err)
	r := ts.do(t, "POST", "/v2/models/model/infer", in.Raw, map[string]string{oip.HeaderInferenceHeaderContentLength: "0"})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	jsonLen, err := strconv.Atoi(r.header.Get(oip.HeaderInferenceHeaderContentLength))
	require.NoError(t, err)
	resp, err := oip.DecodeRESTResponse(r.body, jsonLen)
	require.NoError(t, err)
	scores := fraudtest.Scores(resp.Outputs[0])
	for i, c := range fraudtest.Cases() {
		assert.InDelta(t, c.Score, scores[i], fraudtest.Tolerance, c.Name)
	}
	bad := ts.do(t, "POST", "/v2/models/model/infer", in.Raw[:7], map[string]string{oip.HeaderInferenceHeaderContentLength: "0"})
	assert.Equal(t, http.StatusBadRequest, bad.status)
	assert.Contains(t, bad.errorMessage(t), "not a whole number")
}
