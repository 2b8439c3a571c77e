package oip

import (
	"testing"

	"google.golang.org/protobuf/proto"
)

// FuzzDecodeJSONData: any bytes must decode or fail with a client error,
// and whatever decodes must re-encode and decode to the same tensor.
func FuzzDecodeJSONData(f *testing.F) {
	for _, s := range []string{"[1,2,3]", "[[1.5],[2e3]]", `["a","\u00e9\n"]`, "[true,false]", "[]", "7", `["NaN"]`, "[[[]]]", "[1,", "[-0.0]"} {
		f.Add([]byte(s), uint8(0), int64(3))
	}
	types := []DataType{FP32, FP64, Int8, Int16, Int32, Int64, Uint8, Uint16, Uint32, Uint64, Bool, Bytes, FP16}
	f.Fuzz(func(t *testing.T, data []byte, dt uint8, n int64) {
		d := types[int(dt)%len(types)]
		got, err := DecodeJSONData("x", d, []int64{n}, data)
		if err != nil {
			if !IsInvalid(err) {
				t.Fatalf("non-client error: %v", err)
			}
			return
		}
		enc, err := AppendJSONData(nil, &got)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := DecodeJSONData("x", d, []int64{n}, enc)
		if err != nil {
			t.Fatalf("decode of own encoding %q: %v", enc, err)
		}
		if d != Bytes && string(again.Raw) != string(got.Raw) && !hasNaN(d, got.Raw) {
			t.Fatalf("round trip changed data: %q", enc)
		}
	})
}

func hasNaN(d DataType, raw []byte) bool {
	if d != FP32 && d != FP64 {
		return false
	}
	enc, _ := AppendJSONData(nil, &Tensor{Datatype: d, Shape: []int64{int64(len(raw) / d.Size())}, Raw: raw})
	return len(enc) > 0 && containsNaN(string(enc))
}

func containsNaN(s string) bool {
	for i := 0; i+5 <= len(s); i++ {
		if s[i:i+5] == `"NaN"` {
			return true
		}
	}
	return false
}

// FuzzDecodeRESTRequest covers the JSON header and the binary extension
// framing together.
func FuzzDecodeRESTRequest(f *testing.F) {
	for _, in := range [][]Tensor{sampleTensors(), halfTensors()} {
		for _, bin := range []bool{false, true} {
			body, jsonLen, err := EncodeRESTRequest(&InferRequest{ID: "1", Inputs: in}, bin)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(body, jsonLen)
		}
	}
	f.Add([]byte(`{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":5}}]}`+"\x01\x00\x00\x00a"), 89)
	f.Fuzz(func(t *testing.T, body []byte, jsonLen int) {
		if jsonLen > len(body) || jsonLen < -1 {
			jsonLen = -1
		}
		req, err := DecodeRESTRequest(body, jsonLen)
		if err != nil {
			if !IsInvalid(err) {
				t.Fatalf("non-client error: %v", err)
			}
			return
		}
		for i := range req.Inputs {
			if err := req.Inputs[i].Validate(); err != nil {
				t.Fatalf("decoded tensor invalid: %v", err)
			}
		}
		if _, _, err := EncodeRESTRequest(req, true); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

// FuzzDecodeRESTResponse covers the client-side decoder.
func FuzzDecodeRESTResponse(f *testing.F) {
	body, jsonLen, err := EncodeRESTResponse(&InferResponse{ModelName: "m", Outputs: append(sampleTensors(), halfTensors()...)}, func(string) bool { return true })
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body, jsonLen)
	f.Add([]byte(`{"model_name":"m","outputs":[{"name":"y","shape":[1,1],"datatype":"FP32","data":[0.5]}]}`), -1)
	f.Fuzz(func(t *testing.T, body []byte, jsonLen int) {
		if jsonLen > len(body) || jsonLen < -1 {
			jsonLen = -1
		}
		if _, err := DecodeRESTResponse(body, jsonLen); err != nil && !IsInvalid(err) {
			t.Fatalf("non-client error: %v", err)
		}
	})
}

// FuzzTensorFromBinary covers the binary/raw element framing.
func FuzzTensorFromBinary(f *testing.F) {
	f.Add([]byte("\x01\x00\x00\x00a\x00\x00\x00\x00"), uint8(11), int64(2))
	f.Add([]byte{0, 0, 0x80, 0x3f}, uint8(0), int64(1))
	types := []DataType{FP32, FP64, Int8, Int16, Int32, Int64, Uint8, Uint16, Uint32, Uint64, Bool, Bytes, FP16, BF16}
	f.Fuzz(func(t *testing.T, b []byte, dt uint8, n int64) {
		d := types[int(dt)%len(types)]
		got, err := TensorFromBinary("x", d, []int64{n}, b)
		if err != nil {
			if !IsInvalid(err) {
				t.Fatalf("non-client error: %v", err)
			}
			return
		}
		if string(AppendBinary(nil, &got)) != string(b) {
			t.Fatal("binary round trip changed data")
		}
	})
}

// FuzzFromModelInferRequest covers the gRPC decoder (typed and raw) on
// arbitrary protobuf bytes.
func FuzzFromModelInferRequest(f *testing.F) {
	for _, raw := range []bool{false, true} {
		in := sampleTensors()
		if raw {
			in = append(in, halfTensors()...)
		}
		m, err := ToModelInferRequest(&InferRequest{ID: "1", Inputs: in, Parameters: Parameters{"a": int64(1)}}, "m", "1", raw)
		if err != nil {
			f.Fatal(err)
		}
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m inferReqPB
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		req, err := FromModelInferRequest(&m)
		if err != nil {
			if !IsInvalid(err) {
				t.Fatalf("non-client error: %v", err)
			}
			return
		}
		for i := range req.Inputs {
			if err := req.Inputs[i].Validate(); err != nil {
				t.Fatalf("decoded tensor invalid: %v", err)
			}
		}
		if _, err := ToModelInferResponse(&InferResponse{Outputs: req.Inputs}, len(m.RawInputContents) > 0); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
	})
}
