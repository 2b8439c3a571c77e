package oip

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sampleTensors has one tensor of every datatype with awkward values
// (extremes, negative zero, NaN, escapes, invalid-free UTF-8).
func sampleTensors() []Tensor {
	le := binary.LittleEndian
	f32 := func(v ...float32) []byte {
		var b []byte
		for _, x := range v {
			b = le.AppendUint32(b, math.Float32bits(x))
		}
		return b
	}
	f64 := func(v ...float64) []byte {
		var b []byte
		for _, x := range v {
			b = le.AppendUint64(b, math.Float64bits(x))
		}
		return b
	}
	u := func(size int, v ...uint64) []byte {
		var b []byte
		for _, x := range v {
			b = appendUint(b, x, size)
		}
		return b
	}
	return []Tensor{
		{Name: "bool", Datatype: Bool, Shape: []int64{2, 2}, Raw: []byte{1, 0, 0, 1}},
		{Name: "i8", Datatype: Int8, Shape: []int64{3}, Raw: u(1, 0x80, 0x7f, 0xff)},
		{Name: "i16", Datatype: Int16, Shape: []int64{3}, Raw: u(2, 0x8000, 0x7fff, 0xffff)},
		{Name: "i32", Datatype: Int32, Shape: []int64{3}, Raw: u(4, 0x80000000, 0x7fffffff, 0xffffffff)},
		{Name: "i64", Datatype: Int64, Shape: []int64{3}, Raw: u(8, 1<<63, 1<<63-1, math.MaxUint64)},
		{Name: "u8", Datatype: Uint8, Shape: []int64{2}, Raw: u(1, 0, 255)},
		{Name: "u16", Datatype: Uint16, Shape: []int64{2}, Raw: u(2, 0, 65535)},
		{Name: "u32", Datatype: Uint32, Shape: []int64{2}, Raw: u(4, 0, math.MaxUint32)},
		{Name: "u64", Datatype: Uint64, Shape: []int64{2}, Raw: u(8, 0, math.MaxUint64)},
		{Name: "f32", Datatype: FP32, Shape: []int64{2, 3}, Raw: f32(0.0050283, -1.5e-30, 3.4e38, float32(math.Inf(1)), float32(math.Inf(-1)), 1)},
		{Name: "f64", Datatype: FP64, Shape: []int64{1, 3}, Raw: f64(0.1, -math.MaxFloat64, 5e-324)},
		{Name: "bytes", Datatype: Bytes, Shape: []int64{3}, Strings: [][]byte{[]byte("plain"), []byte("quote\" back\\ nl\n ctl\x01 é"), {}}},
		{Name: "empty", Datatype: FP32, Shape: []int64{0, 5}, Raw: []byte{}},
	}
}

func halfTensors() []Tensor {
	return []Tensor{
		{Name: "f16", Datatype: FP16, Shape: []int64{2}, Raw: []byte{0x00, 0x3c, 0x00, 0xc0}},
		{Name: "bf16", Datatype: BF16, Shape: []int64{1, 1}, Raw: []byte{0x80, 0x3f}},
	}
}

func normalize(ts []Tensor) []Tensor {
	out := make([]Tensor, len(ts))
	for i, t := range ts {
		t.Parameters = nil
		if t.Raw != nil && len(t.Raw) == 0 {
			t.Raw = []byte{}
		}
		if t.Datatype != Bytes && t.Raw == nil {
			t.Raw = []byte{}
		}
		for j, s := range t.Strings {
			if len(s) == 0 {
				t.Strings[j] = []byte{}
			}
		}
		out[i] = t
	}
	return out
}

func TestRESTRoundTrip(t *testing.T) {
	all := append(sampleTensors(), halfTensors()...)
	for _, binaryInputs := range []bool{false, true} {
		t.Run(map[bool]string{false: "json", true: "binary"}[binaryInputs], func(t *testing.T) {
			req := &InferRequest{ID: "42", Parameters: Parameters{"p": "v"}, Inputs: all,
				Outputs: []RequestOutput{{Name: "out", Parameters: Parameters{ParamBinaryData: true}}}}
			body, jsonLen, err := EncodeRESTRequest(req, binaryInputs)
			require.NoError(t, err)
			hdr := -1
			if jsonLen < len(body) {
				hdr = jsonLen
			}
			got, err := DecodeRESTRequest(body, hdr)
			require.NoError(t, err)
			assert.Equal(t, "42", got.ID)
			assert.Equal(t, "v", got.Parameters["p"])
			assert.True(t, got.WantsBinary("out"))
			assert.Equal(t, normalize(all), normalize(got.Inputs))

			resp := &InferResponse{ModelName: "m", ModelVersion: "1", ID: "42", Outputs: all}
			body, jsonLen, err = EncodeRESTResponse(resp, func(string) bool { return binaryInputs })
			require.NoError(t, err)
			hdr = -1
			if jsonLen < len(body) {
				hdr = jsonLen
			}
			back, err := DecodeRESTResponse(body, hdr)
			require.NoError(t, err)
			assert.Equal(t, "m", back.ModelName)
			assert.Equal(t, "1", back.ModelVersion)
			assert.Equal(t, normalize(all), normalize(back.Outputs))
		})
	}
}

func TestRESTNaNSurvivesJSON(t *testing.T) {
	in := Tensor{Name: "x", Datatype: FP32, Shape: []int64{1}, Raw: binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(math.NaN())))}
	data, err := AppendJSONData(nil, &in)
	require.NoError(t, err)
	assert.Equal(t, `["NaN"]`, string(data))
	out, err := DecodeJSONData("x", FP32, []int64{1}, data)
	require.NoError(t, err)
	assert.True(t, math.IsNaN(float64(math.Float32frombits(binary.LittleEndian.Uint32(out.Raw)))))
}

func TestGRPCRoundTrip(t *testing.T) {
	for _, raw := range []bool{false, true} {
		t.Run(map[bool]string{false: "typed", true: "raw"}[raw], func(t *testing.T) {
			inputs := sampleTensors()
			if raw {
				inputs = append(inputs, halfTensors()...)
			}
			req := &InferRequest{ID: "7", Parameters: Parameters{"n": int64(3), "b": true, "s": "x", "d": 0.5},
				Inputs: inputs, Outputs: []RequestOutput{{Name: "o"}}}
			m, err := ToModelInferRequest(req, "model", "1", raw)
			require.NoError(t, err)
			assert.Equal(t, raw, len(m.RawInputContents) > 0)
			got, err := FromModelInferRequest(m)
			require.NoError(t, err)
			assert.Equal(t, req.Parameters, got.Parameters)
			assert.Equal(t, normalize(inputs), normalize(got.Inputs))
			assert.Equal(t, "o", got.Outputs[0].Name)

			resp := &InferResponse{ModelName: "model", ID: "7", Outputs: inputs}
			rm, err := ToModelInferResponse(resp, raw)
			require.NoError(t, err)
			assert.Equal(t, raw, len(rm.RawOutputContents) > 0)
			back, err := FromModelInferResponse(rm)
			require.NoError(t, err)
			assert.Equal(t, normalize(inputs), normalize(back.Outputs))
		})
	}
}

func TestGRPCHalfForcesRaw(t *testing.T) {
	m, err := ToModelInferRequest(&InferRequest{Inputs: append(sampleTensors()[:1], halfTensors()...)}, "m", "", false)
	require.NoError(t, err)
	assert.Len(t, m.RawInputContents, 3)
}

func TestDecodeJSONDataShapes(t *testing.T) {
	tests := []struct {
		name  string
		dt    DataType
		shape []int64
		data  string
		want  []byte
	}{
		{"flat", Int32, []int64{2, 2}, "[1,2,3,4]", []byte{1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0}},
		{"nested", Int32, []int64{2, 2}, " [ [1, 2] ,\n[3,4] ] ", []byte{1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0}},
		{"scalar", Uint8, []int64{1}, "7", []byte{7}},
		{"float as int", Int16, []int64{2}, "[3.0, -1e2]", []byte{3, 0, 0x9c, 0xff}},
		{"int as float", FP64, []int64{1}, "[2]", binary.LittleEndian.AppendUint64(nil, math.Float64bits(2))},
		{"bool numbers", Bool, []int64{3}, "[true, 0, 1]", []byte{1, 0, 1}},
		{"empty", FP32, []int64{0}, "[]", []byte{}},
		{"empty nested", FP32, []int64{1, 0}, "[[]]", []byte{}},
		{"u64 max", Uint64, []int64{1}, "[18446744073709551615]", []byte{255, 255, 255, 255, 255, 255, 255, 255}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeJSONData("x", tc.dt, tc.shape, []byte(tc.data))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got.Raw)
		})
	}
}

func TestDecodeJSONDataErrors(t *testing.T) {
	tests := []struct {
		name  string
		dt    DataType
		shape []int64
		data  string
		msg   string
	}{
		{"too few", FP32, []int64{2}, "[1]", "needs 2 elements"},
		{"too many", FP32, []int64{1}, "[1,2]", "needs 1 elements"},
		{"negative dim", FP32, []int64{-1}, "[1]", "negative dimension"},
		{"string for number", FP32, []int64{1}, `["a"]`, "want a number"},
		{"number for bytes", Bytes, []int64{1}, `[1]`, "must be JSON strings"},
		{"fp16", FP16, []int64{1}, `[1]`, "no JSON form"},
		{"bf16", BF16, []int64{1}, `[1]`, "no JSON form"},
		{"int8 overflow", Int8, []int64{1}, `[128]`, "out of range"},
		{"uint negative", Uint32, []int64{1}, `[-1]`, "out of range"},
		{"fraction for int", Int32, []int64{1}, `[1.5]`, "want an integer"},
		{"fp32 overflow", FP32, []int64{1}, `[1e39]`, "want a number"},
		{"bad bool", Bool, []int64{1}, `[2]`, "want a boolean"},
		{"unclosed", FP32, []int64{1}, `[1`, "unexpected end"},
		{"trailing", FP32, []int64{1}, `[1]]`, "trailing"},
		{"double comma", FP32, []int64{2}, `[1,,2]`, "unexpected"},
		{"leading comma", FP32, []int64{1}, `[,1]`, "unexpected"},
		{"trailing comma", FP32, []int64{1}, `[1,]`, "unexpected"},
		{"object", FP32, []int64{1}, `{"a":1}`, "unexpected"},
		{"empty", FP32, []int64{1}, ``, "no data"},
		{"unterminated string", Bytes, []int64{1}, `["abc`, "unterminated"},
		{"deep", FP32, []int64{1}, strings.Repeat("[", 100) + "1" + strings.Repeat("]", 100), "too deep"},
		{"unknown datatype", DataType("FP8"), []int64{1}, `[1]`, "unknown datatype"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeJSONData("x", tc.dt, tc.shape, []byte(tc.data))
			require.Error(t, err)
			assert.True(t, IsInvalid(err), "error must be a client error: %v", err)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestDecodeRESTRequestErrors(t *testing.T) {
	good := `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}`
	tests := []struct {
		name    string
		body    string
		jsonLen int
		msg     string
	}{
		{"malformed json", `{"inputs":[`, -1, "malformed"},
		{"trailing json", `{"inputs":[]} x`, -1, "malformed"},
		{"no name", `{"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]}`, -1, "without a name"},
		{"bad datatype", `{"inputs":[{"name":"x","shape":[1],"datatype":"F32","data":[1]}]}`, -1, "unknown datatype"},
		{"no shape", `{"inputs":[{"name":"x","datatype":"FP32","data":[1]}]}`, -1, "missing shape"},
		{"no data", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]}`, -1, "no data"},
		{"binary without header", good, -1, "no Inference-Header-Content-Length"},
		{"header too long", good + "abcd", 1000, "exceeds the body"},
		{"raw binary request", "abcd", 0, "needs the model's metadata"},
		{"short binary", good + "ab", len(good), "exceeds the 2 binary bytes"},
		{"extra binary", good + "abcdef", len(good), "not claimed"},
		{"bad size", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":"4"}}]}abcd`, 88, "non-negative integer"},
		{"size and data", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":{"binary_data_size":4}}]}abcd`, 99, "both data"},
		{"binary shape mismatch", `{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":4}}]}abcd`, 88, "shape mismatch"},
		{"output without name", `{"inputs":[],"outputs":[{}]}`, -1, "without a name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			jsonLen := tc.jsonLen
			if jsonLen > 0 && jsonLen != 1000 {
				jsonLen = strings.Index(tc.body, "}]}") + 3
			}
			_, err := DecodeRESTRequest([]byte(tc.body), jsonLen)
			require.Error(t, err)
			assert.True(t, IsInvalid(err), "error must be a client error: %v", err)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestTensorFromBinaryBytesErrors(t *testing.T) {
	tests := []struct {
		name  string
		shape []int64
		data  []byte
		msg   string
	}{
		{"truncated length", []int64{1}, []byte{1, 0, 0, 0, 'a', 0}, "truncated"},
		{"element too long", []int64{1}, []byte{9, 0, 0, 0, 'a'}, "exceeds"},
		{"count mismatch", []int64{2}, []byte{1, 0, 0, 0, 'a', 0, 0, 0, 0, 0, 0, 0, 0}, "needs 2"},
		{"huge shape", []int64{1 << 40}, []byte{0, 0, 0, 0}, "only 4 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := TensorFromBinary("s", Bytes, tc.shape, tc.data)
			require.Error(t, err)
			assert.True(t, IsInvalid(err))
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestBinaryAliasesBody(t *testing.T) {
	body, jsonLen, err := EncodeRESTRequest(&InferRequest{Inputs: []Tensor{{Name: "x", Datatype: Uint8, Shape: []int64{2}, Raw: []byte{1, 2}}}}, true)
	require.NoError(t, err)
	req, err := DecodeRESTRequest(body, jsonLen)
	require.NoError(t, err)
	body[len(body)-1] = 9
	assert.Equal(t, []byte{1, 9}, req.Inputs[0].Raw, "binary inputs must alias the body, not copy it")
	assert.Nil(t, req.Inputs[0].Parameters, "binary_data_size is framing, not a tensor parameter")
}

func TestDecodeJSONDataNoPerElementAllocation(t *testing.T) {
	data := []byte("[" + strings.Repeat("1.2345678,", 999) + "1.5]")
	allocs := testing.AllocsPerRun(20, func() {
		_, err := DecodeJSONData("x", FP32, []int64{1000}, data)
		require.NoError(t, err)
	})
	assert.Less(t, allocs, 10.0, "decoding 1000 numbers must not allocate per element")
}

func TestGRPCErrors(t *testing.T) {
	tests := []struct {
		name string
		req  func() *InferRequest
		raw  bool
		edit func(m *inferReqPB)
		msg  string
	}{
		{"raw count mismatch", oneInput, true, func(m *inferReqPB) { m.RawInputContents = append(m.RawInputContents, []byte{1}) }, "raw_input_contents has 2"},
		{"contents and raw", oneInput, true, func(m *inferReqPB) { m.Inputs[0].Contents = mustContents(sampleTensors()[9]) }, "contents set although raw"},
		{"wrong field", oneInput, false, func(m *inferReqPB) { m.Inputs[0].Contents.IntContents = []int32{1} }, "does not match datatype"},
		{"count mismatch", oneInput, false, func(m *inferReqPB) { m.Inputs[0].Shape = []int64{7} }, "needs 7 elements"},
		{"fp16 typed", oneInput, false, func(m *inferReqPB) { m.Inputs[0].Datatype = "FP16" }, "no typed contents"},
		{"int8 range", oneInput, false, func(m *inferReqPB) {
			m.Inputs[0].Datatype = "INT8"
			m.Inputs[0].Contents.Fp32Contents = nil
			m.Inputs[0].Contents.IntContents = []int32{1, 2, 3, 4, 5, 300}
		}, "out of range"},
		{"raw short", oneInput, true, func(m *inferReqPB) { m.RawInputContents[0] = m.RawInputContents[0][1:] }, "shape mismatch"},
		{"unknown datatype", oneInput, false, func(m *inferReqPB) { m.Inputs[0].Datatype = "X" }, "unknown datatype"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ToModelInferRequest(tc.req(), "m", "", tc.raw)
			require.NoError(t, err)
			tc.edit(m)
			_, err = FromModelInferRequest(m)
			require.Error(t, err)
			assert.True(t, IsInvalid(err))
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

func oneInput() *InferRequest { return &InferRequest{Inputs: []Tensor{sampleTensors()[9]}} }

func mustContents(t Tensor) *contentsPB {
	c, err := typedContents(&t)
	if err != nil {
		panic(err)
	}
	return c
}

func TestWantsBinary(t *testing.T) {
	req := &InferRequest{Parameters: Parameters{ParamBinaryDataOutput: true},
		Outputs: []RequestOutput{{Name: "a", Parameters: Parameters{ParamBinaryData: false}}, {Name: "b"}}}
	assert.False(t, req.WantsBinary("a"))
	assert.True(t, req.WantsBinary("b"))
	assert.True(t, req.WantsBinary("c"))
	assert.False(t, (&InferRequest{}).WantsBinary("a"))
}

func TestAppendNestedJSONData(t *testing.T) {
	tests := []struct {
		name string
		t    Tensor
		want string
	}{
		{"matrix", Tensor{Datatype: Uint8, Shape: []int64{2, 3}, Raw: []byte{1, 2, 3, 4, 5, 6}}, "[[1,2,3],[4,5,6]]"},
		{"column", Tensor{Datatype: Bool, Shape: []int64{2, 1}, Raw: []byte{1, 0}}, "[[true],[false]]"},
		{"scalar", Tensor{Datatype: Int8, Shape: []int64{}, Raw: []byte{0xff}}, "-1"},
		{"empty rows", Tensor{Datatype: FP32, Shape: []int64{2, 0}, Raw: []byte{}}, "[[],[]]"},
		{"strings", Tensor{Datatype: Bytes, Shape: []int64{1, 2}, Strings: [][]byte{[]byte("a"), []byte("b")}}, `[["a","b"]]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AppendNestedJSONData(nil, &tc.t)
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(got))
			if len(tc.t.Shape) > 0 {
				back, err := DecodeJSONData("x", tc.t.Datatype, tc.t.Shape, got)
				require.NoError(t, err)
				assert.Equal(t, normalize([]Tensor{tc.t})[0].Raw, normalize([]Tensor{back})[0].Raw)
			}
		})
	}
	_, err := AppendNestedJSONData(nil, &Tensor{Datatype: FP16, Shape: []int64{1}, Raw: []byte{0, 0}})
	assert.ErrorContains(t, err, "no JSON form")
}
