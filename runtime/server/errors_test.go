package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/veil-ai/veil/models"
	"github.com/veil-ai/veil/oip"
	pb "github.com/veil-ai/veil/oip/inferencepb"
	"github.com/veil-ai/veil/runtime/fraudtest"
)

const goodInput = `{"name":"dense_input","shape":[1,5],"datatype":"FP32","data":[1,2,3,4,5]}`

func TestRESTErrors(t *testing.T) {
	ts := start(t, bytesLoader(models.FraudONNX, "1"), true, func(c *Config) { c.MaxRequestBytes = 4096 })
	binBody := `{"inputs":[{"name":"dense_input","shape":[1,5],"datatype":"FP32","parameters":{"binary_data_size":20}}]}`
	tests := []struct {
		name    string
		method  string
		path    string
		body    string
		header  map[string]string
		status  int
		message string
	}{
		{"unknown model", "POST", "/v2/models/other/infer", `{"inputs":[` + goodInput + `]}`, nil, 404, `model "other" not found`},
		{"unknown model metadata", "GET", "/v2/models/other", "", nil, 404, "not found"},
		{"unknown model ready", "GET", "/v2/models/other/ready", "", nil, 404, "not found"},
		{"other version", "POST", "/v2/models/model/versions/2/infer", `{"inputs":[` + goodInput + `]}`, nil, 404, `version "2" not found`},
		{"other version metadata", "GET", "/v2/models/model/versions/2", "", nil, 404, "not found"},
		{"unknown input", "POST", "/v2/models/model/infer", `{"inputs":[{"name":"x","shape":[1,5],"datatype":"FP32","data":[1,2,3,4,5]}]}`, nil, 400, `unknown input "x"`},
		{"missing input", "POST", "/v2/models/model/infer", `{"inputs":[]}`, nil, 400, `missing input "dense_input"`},
		{"unknown output", "POST", "/v2/models/model/infer", `{"inputs":[` + goodInput + `],"outputs":[{"name":"nope"}]}`, nil, 400, `unknown requested output "nope"`},
		{"wrong datatype", "POST", "/v2/models/model/infer", `{"inputs":[{"name":"dense_input","shape":[1,5],"datatype":"INT32","data":[1,2,3,4,5]}]}`, nil, 400, "model expects FP32"},
		{"unknown datatype", "POST", "/v2/models/model/infer", `{"inputs":[{"name":"dense_input","shape":[1,5],"datatype":"FLOAT","data":[1,2,3,4,5]}]}`, nil, 400, "unknown datatype"},
		{"shape mismatch", "POST", "/v2/models/model/infer", `{"inputs":[{"name":"dense_input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`, nil, 400, "model expects [-1 5]"},
		{"element count mismatch", "POST", "/v2/models/model/infer", `{"inputs":[{"name":"dense_input","shape":[2,5],"datatype":"FP32","data":[1,2,3,4,5]}]}`, nil, 400, "needs 10 elements"},
		{"malformed JSON", "POST", "/v2/models/model/infer", `{"inputs":[`, nil, 400, "malformed"},
		{"malformed data", "POST", "/v2/models/model/infer", `{"inputs":[{"name":"dense_input","shape":[1,5],"datatype":"FP32","data":[1,2,,4,5]}]}`, nil, 400, "malformed"},
		{"FP16 as JSON", "POST", "/v2/models/model/infer", `{"inputs":[{"name":"dense_input","shape":[1,1],"datatype":"FP16","data":[1]}]}`, nil, 400, "no JSON form"},
		{"binary too short", "POST", "/v2/models/model/infer", binBody + "0123456789", map[string]string{oip.HeaderInferenceHeaderContentLength: strconv.Itoa(len(binBody))}, 400, "exceeds the 10 binary bytes"},
		{"binary left over", "POST", "/v2/models/model/infer", binBody + strings.Repeat("x", 24), map[string]string{oip.HeaderInferenceHeaderContentLength: strconv.Itoa(len(binBody))}, 400, "not claimed"},
		{"binary header past body", "POST", "/v2/models/model/infer", binBody, map[string]string{oip.HeaderInferenceHeaderContentLength: "100000"}, 400, "exceeds the body"},
		{"binary header not a number", "POST", "/v2/models/model/infer", binBody, map[string]string{oip.HeaderInferenceHeaderContentLength: "ten"}, 400, "bad Inference-Header-Content-Length"},
		{"binary without header", "POST", "/v2/models/model/infer", binBody + strings.Repeat("x", 20), nil, 400, "malformed"},
		{"body too large", "POST", "/v2/models/model/infer", `{"inputs":[` + strings.Repeat(" ", 5000) + `]}`, nil, 413, "exceeds the 4096 byte limit"},
		{"wrong method", "GET", "/v2/models/model/infer", "", nil, 405, "not allowed"},
		{"wrong method metadata", "DELETE", "/v2/models/model", "", nil, 405, "not allowed"},
		{"unknown path", "GET", "/v3/nothing", "", nil, 404, "no such endpoint"},
		{"v1 unknown model", "POST", "/v1/models/other:predict", `{"instances":[[1,2,3,4,5]]}`, nil, 404, "not found"},
		{"v1 no instances", "POST", "/v1/models/model:predict", `{"instances":[]}`, nil, 400, "instances"},
		{"v1 malformed", "POST", "/v1/models/model:predict", `{"instances":`, nil, 400, "malformed"},
		{"v1 wrong width", "POST", "/v1/models/model:predict", `{"instances":[[1,2,3]]}`, nil, 400, "model expects"},
		{"v1 explain", "POST", "/v1/models/model:explain", `{"instances":[[1,2,3,4,5]]}`, nil, 501, "explain"},
		{"v1 unknown verb", "POST", "/v1/models/model:train", `{}`, nil, 404, "no such endpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, tc.method, tc.path, []byte(tc.body), tc.header)
			assert.Equal(t, tc.status, r.status, "body: %s", r.body)
			assert.Equal(t, "application/json", r.header.Get("Content-Type"))
			assert.Contains(t, r.errorMessage(t), tc.message)
		})
	}
	// A binary body that is fine must still work after all that.
	x, err := fraudtest.Batch(fraudtest.Cases()[:1])
	require.NoError(t, err)
	r := ts.do(t, "POST", "/v2/models/model/infer", append([]byte(binBody), x.Raw...), map[string]string{oip.HeaderInferenceHeaderContentLength: strconv.Itoa(len(binBody))})
	assert.Equal(t, http.StatusOK, r.status, "%s", r.body)
}

func TestGRPCErrors(t *testing.T) {
	ts := start(t, bytesLoader(models.FraudONNX, "1"), true, func(c *Config) { c.MaxRequestBytes = 4096 })
	good, err := fraudtest.Batch(fraudtest.Cases()[:1])
	require.NoError(t, err)
	request := func(edit func(*oip.InferRequest), model, version string, raw bool) *pb.ModelInferRequest {
		r := &oip.InferRequest{Inputs: []oip.Tensor{good}}
		if edit != nil {
			edit(r)
		}
		m, err := oip.ToModelInferRequest(r, model, version, raw)
		require.NoError(t, err)
		return m
	}
	tests := []struct {
		name    string
		req     *pb.ModelInferRequest
		code    codes.Code
		message string
	}{
		{"unknown model", request(nil, "other", "", false), codes.NotFound, `model "other" not found`},
		{"other version", request(nil, "model", "3", false), codes.NotFound, `version "3" not found`},
		{"unknown input", request(func(r *oip.InferRequest) { r.Inputs[0].Name = "x" }, "model", "", false), codes.InvalidArgument, `unknown input "x"`},
		{"missing input", request(func(r *oip.InferRequest) { r.Inputs = nil }, "model", "", false), codes.InvalidArgument, "missing input"},
		{"unknown output", request(func(r *oip.InferRequest) { r.Outputs = []oip.RequestOutput{{Name: "nope"}} }, "model", "", false), codes.InvalidArgument, "unknown requested output"},
		{"wrong datatype", request(func(r *oip.InferRequest) {
			r.Inputs[0] = oip.Tensor{Name: "dense_input", Datatype: oip.FP64, Shape: []int64{1, 5}, Raw: make([]byte, 40)}
		}, "model", "", false), codes.InvalidArgument, "model expects FP32"},
		{"shape mismatch", request(func(r *oip.InferRequest) { r.Inputs[0].Shape = []int64{5, 1} }, "model", "", true), codes.InvalidArgument, "model expects [-1 5]"},
		{"too large", request(func(r *oip.InferRequest) {
			r.Inputs[0] = oip.Tensor{Name: "dense_input", Datatype: oip.FP32, Shape: []int64{1000, 5}, Raw: make([]byte, 20000)}
		}, "model", "", true), codes.ResourceExhausted, "larger than max"},
	}
	// Framing errors the codec must catch, built by hand.
	bad := request(nil, "model", "", true)
	bad.RawInputContents = append(bad.RawInputContents, []byte{1})
	tests = append(tests, struct {
		name    string
		req     *pb.ModelInferRequest
		code    codes.Code
		message string
	}{"raw count mismatch", bad, codes.InvalidArgument, "raw_input_contents has 2 entries"})
	typedFP16 := request(nil, "model", "", false)
	typedFP16.Inputs[0].Datatype = "FP16"
	tests = append(tests, struct {
		name    string
		req     *pb.ModelInferRequest
		code    codes.Code
		message string
	}{"FP16 typed", typedFP16, codes.InvalidArgument, "no typed contents"})

	for _, tc := range tests {
		for name, client := range map[string]pb.GRPCInferenceServiceClient{"grpc port": ts.grpc, "http port": ts.h2c} {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				_, err := client.ModelInfer(context.Background(), tc.req)
				require.Error(t, err)
				st := status.Convert(err)
				assert.Equal(t, tc.code, st.Code(), st.Message())
				assert.Contains(t, st.Message(), tc.message)
			})
		}
	}
	_, err = ts.grpc.ModelMetadata(context.Background(), &pb.ModelMetadataRequest{Name: "other"})
	assert.Equal(t, codes.NotFound, status.Code(err))
	_, err = ts.grpc.ModelReady(context.Background(), &pb.ModelReadyRequest{Name: "model", Version: "9"})
	assert.Equal(t, codes.NotFound, status.Code(err))
}

// Engine failures map to their classes; panics never reach the client.
func TestEngineFailures(t *testing.T) {
	var mode atomic.Value
	fm := &fakeModel{
		inputs:  []oip.TensorMetadata{{Name: "x", Datatype: "FP32", Shape: []int64{-1}}},
		outputs: []oip.TensorMetadata{{Name: "y", Datatype: "FP32", Shape: []int64{-1}}},
		infer: func(ctx context.Context, in []oip.Tensor) ([]oip.Tensor, error) {
			switch mode.Load() {
			case "panic":
				panic("engine exploded")
			case "unsupported":
				return nil, errors.Join(oip.ErrUnsupported, errors.New("no such kernel"))
			}
			return nil, errors.New("onnxruntime: something broke")
		},
	}
	ts := start(t, modelLoader(fm), true, nil)
	body := []byte(`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`)
	tests := []struct {
		mode   string
		status int
		code   codes.Code
		msg    string
	}{
		{"panic", 500, codes.Internal, "internal server error"},
		{"unsupported", 501, codes.Unimplemented, "no such kernel"},
		{"error", 500, codes.Internal, "something broke"},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			mode.Store(tc.mode)
			r := ts.do(t, "POST", "/v2/models/model/infer", body, nil)
			assert.Equal(t, tc.status, r.status)
			assert.Contains(t, r.errorMessage(t), tc.msg)
			m, err := oip.ToModelInferRequest(&oip.InferRequest{Inputs: []oip.Tensor{{Name: "x", Datatype: oip.FP32, Shape: []int64{1}, Raw: make([]byte, 4)}}}, "model", "", false)
			require.NoError(t, err)
			for _, c := range []pb.GRPCInferenceServiceClient{ts.grpc, ts.h2c} {
				_, err = c.ModelInfer(context.Background(), m)
				assert.Equal(t, tc.code, status.Code(err))
				assert.Contains(t, status.Convert(err).Message(), tc.msg)
			}
		})
	}
	assert.Contains(t, ts.logs.String(), "engine exploded", "panics are logged for operators")
	// The server still works after the panics.
	assert.Equal(t, http.StatusOK, ts.do(t, "GET", "/v2/health/ready", nil, nil).status)
}
