package oip

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// DecodeRESTRequest decodes a REST inference request body. jsonLen is the
// Inference-Header-Content-Length header value, or -1 when the header is
// absent (then the whole body is JSON). Tensors sent with the binary
// extension alias body, so body must not be reused while they are in use.
func DecodeRESTRequest(body []byte, jsonLen int) (*InferRequest, error) {
	header, blobs, err := splitBody(body, jsonLen)
	if err != nil {
		return nil, err
	}
	var wire InferenceRequest
	if err := unmarshalStrict(header, &wire); err != nil {
		return nil, invalidf("malformed inference request JSON: %v", err)
	}
	req := &InferRequest{ID: wire.ID, Parameters: wire.Parameters, Outputs: wire.Outputs}
	req.Inputs = make([]Tensor, len(wire.Inputs))
	for i := range wire.Inputs {
		in := &wire.Inputs[i]
		t, rest, err := decodeRESTTensor(in.Name, in.Datatype, in.Shape, in.Parameters, in.Data, blobs)
		if err != nil {
			return nil, err
		}
		blobs = rest
		req.Inputs[i] = t
	}
	if len(blobs) != 0 {
		return nil, invalidf("%d bytes of binary data not claimed by any input's %s", len(blobs), ParamBinaryDataSize)
	}
	for _, o := range req.Outputs {
		if o.Name == "" {
			return nil, invalidf("requested output without a name")
		}
	}
	return req, nil
}

// DecodeRESTResponse is DecodeRESTRequest's counterpart for clients.
func DecodeRESTResponse(body []byte, jsonLen int) (*InferResponse, error) {
	header, blobs, err := splitBody(body, jsonLen)
	if err != nil {
		return nil, err
	}
	var wire InferenceResponse
	if err := unmarshalStrict(header, &wire); err != nil {
		return nil, invalidf("malformed inference response JSON: %v", err)
	}
	resp := &InferResponse{ModelName: wire.ModelName, ModelVersion: wire.ModelVersion, ID: wire.ID, Parameters: wire.Parameters}
	resp.Outputs = make([]Tensor, len(wire.Outputs))
	for i := range wire.Outputs {
		o := &wire.Outputs[i]
		t, rest, err := decodeRESTTensor(o.Name, o.Datatype, o.Shape, o.Parameters, o.Data, blobs)
		if err != nil {
			return nil, err
		}
		blobs = rest
		resp.Outputs[i] = t
	}
	if len(blobs) != 0 {
		return nil, invalidf("%d bytes of binary data not claimed by any output's %s", len(blobs), ParamBinaryDataSize)
	}
	return resp, nil
}

func unmarshalStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("trailing data after JSON object")
	}
	return nil
}

func splitBody(body []byte, jsonLen int) (header, blobs []byte, err error) {
	switch {
	case jsonLen < 0:
		return body, nil, nil
	case jsonLen == 0:
		// A raw binary request needs the model's input metadata; servers
		// handle it before calling the codec.
		return nil, nil, invalidf("%s: 0 (raw binary request) needs the model's metadata; send a JSON header", HeaderInferenceHeaderContentLength)
	case jsonLen > len(body):
		return nil, nil, invalidf("%s %d exceeds the body's %d bytes", HeaderInferenceHeaderContentLength, jsonLen, len(body))
	}
	return body[:jsonLen], body[jsonLen:], nil
}

// decodeRESTTensor builds a tensor from its JSON description, taking its
// data either from JSON or, with binary_data_size, from the front of blobs.
func decodeRESTTensor(name, datatype string, shape []int64, params Parameters, data json.RawMessage, blobs []byte) (Tensor, []byte, error) {
	if name == "" {
		return Tensor{}, blobs, invalidf("tensor without a name")
	}
	dt, err := ParseDataType(datatype)
	if err != nil {
		return Tensor{}, blobs, invalidf("tensor %q: unknown datatype %q", name, datatype)
	}
	if shape == nil {
		return Tensor{}, blobs, invalidf("tensor %q: missing shape", name)
	}
	size, hasSize, err := binarySize(params)
	if err != nil {
		return Tensor{}, blobs, invalidf("tensor %q: %v", name, err)
	}
	if !hasSize {
		if len(data) == 0 {
			return Tensor{}, blobs, invalidf("tensor %q: no data and no %s", name, ParamBinaryDataSize)
		}
		t, err := DecodeJSONData(name, dt, shape, data)
		t.Parameters = params
		return t, blobs, err
	}
	if len(data) != 0 && string(data) != "null" {
		return Tensor{}, blobs, invalidf("tensor %q: has both data and %s", name, ParamBinaryDataSize)
	}
	if blobs == nil {
		return Tensor{}, blobs, invalidf("tensor %q: %s set but there is no %s header", name, ParamBinaryDataSize, HeaderInferenceHeaderContentLength)
	}
	if size > int64(len(blobs)) {
		return Tensor{}, blobs, invalidf("tensor %q: %s %d exceeds the %d binary bytes left", name, ParamBinaryDataSize, size, len(blobs))
	}
	t, err := TensorFromBinary(name, dt, shape, blobs[:size:size])
	if err != nil {
		return Tensor{}, blobs, err
	}
	t.Parameters = withoutParam(params, ParamBinaryDataSize)
	return t, blobs[size:], nil
}

func binarySize(params Parameters) (int64, bool, error) {
	v, ok := params[ParamBinaryDataSize]
	if !ok {
		return 0, false, nil
	}
	f, isNum := v.(float64)
	if !isNum {
		if i, isInt := v.(int64); isInt {
			f, isNum = float64(i), true
		}
	}
	if !isNum || f < 0 || f != math.Trunc(f) || f > math.MaxInt64/2 {
		return 0, false, fmt.Errorf("%s must be a non-negative integer, got %v", ParamBinaryDataSize, v)
	}
	return int64(f), true, nil
}

func withoutParam(p Parameters, name string) Parameters {
	if _, ok := p[name]; !ok {
		return p
	}
	if len(p) == 1 {
		return nil
	}
	out := make(Parameters, len(p)-1)
	for k, v := range p {
		if k != name {
			out[k] = v
		}
	}
	return out
}

// TensorFromBinary builds a tensor from its binary-extension (or gRPC raw)
// bytes: fixed-size elements are taken as they are (aliasing b); BYTES
// elements are each a 4-byte little-endian length followed by the bytes.
func TensorFromBinary(name string, dt DataType, shape []int64, b []byte) (Tensor, error) {
	t := Tensor{Name: name, Datatype: dt, Shape: shape}
	n, err := ElementCount(shape)
	if err != nil {
		return t, invalidf("tensor %q: %v", name, err)
	}
	if dt != Bytes {
		t.Raw = b
		if err := t.Validate(); err != nil {
			return t, err
		}
		return t, nil
	}
	// Each element needs at least its 4-byte length.
	if n > int64(len(b)/4) {
		return t, invalidf("tensor %q: shape %v needs %d BYTES elements, only %d bytes sent", name, shape, n, len(b))
	}
	t.Strings = make([][]byte, 0, n)
	for len(b) > 0 {
		if len(b) < 4 {
			return t, invalidf("tensor %q: truncated BYTES element length", name)
		}
		l := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if uint64(l) > uint64(len(b)) {
			return t, invalidf("tensor %q: BYTES element of %d bytes exceeds the %d left", name, l, len(b))
		}
		t.Strings = append(t.Strings, b[:l:l])
		b = b[l:]
	}
	if int64(len(t.Strings)) != n {
		return t, invalidf("tensor %q: %v: shape %v needs %d elements, got %d", name, ErrShape, shape, n, len(t.Strings))
	}
	return t, nil
}

// BinarySize is the length of t's binary-extension form.
func BinarySize(t *Tensor) int {
	if t.Datatype != Bytes {
		return len(t.Raw)
	}
	n := 4 * len(t.Strings)
	for _, s := range t.Strings {
		n += len(s)
	}
	return n
}

// AppendBinary appends t's binary-extension (and gRPC raw) form to dst.
func AppendBinary(dst []byte, t *Tensor) []byte {
	if t.Datatype != Bytes {
		return append(dst, t.Raw...)
	}
	for _, s := range t.Strings {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
		dst = append(dst, s...)
	}
	return dst
}

// EncodeRESTRequest encodes req as a REST body. With binary set, every
// input travels in the binary extension; FP16 and BF16 always do. It
// returns the body and the JSON header's length: when that is shorter than
// the body, send it as Inference-Header-Content-Length.
func EncodeRESTRequest(req *InferRequest, binaryInputs bool) ([]byte, int, error) {
	var w envelope
	w.open()
	if req.ID != "" {
		w.field("id", req.ID)
	}
	if len(req.Parameters) > 0 {
		w.field("parameters", req.Parameters)
	}
	w.key("inputs")
	bin, err := w.tensors(req.Inputs, func(t *Tensor) bool { return binaryInputs })
	if err != nil {
		return nil, 0, err
	}
	if len(req.Outputs) > 0 {
		w.field("outputs", req.Outputs)
	}
	return w.finish(bin)
}

// EncodeRESTResponse encodes resp as a REST body; outputs for which binary
// returns true (and every FP16/BF16 output) travel in the binary
// extension. binary may be nil (all JSON). Returns body and JSON length as
// EncodeRESTRequest does.
func EncodeRESTResponse(resp *InferResponse, binary func(name string) bool) ([]byte, int, error) {
	var w envelope
	w.open()
	w.field("model_name", resp.ModelName)
	if resp.ModelVersion != "" {
		w.field("model_version", resp.ModelVersion)
	}
	w.field("id", resp.ID)
	if len(resp.Parameters) > 0 {
		w.field("parameters", resp.Parameters)
	}
	w.key("outputs")
	bin, err := w.tensors(resp.Outputs, func(t *Tensor) bool { return binary != nil && binary(t.Name) })
	if err != nil {
		return nil, 0, err
	}
	return w.finish(bin)
}

// envelope writes the JSON header of a REST body field by field, with the
// same field names as InferenceRequest and InferenceResponse. It exists
// because encoding/json re-validates every pre-encoded data array it embeds
// (json.RawMessage is compacted on output), which costs as much as encoding
// the numbers; tensor data from AppendJSONData is valid by construction.
type envelope struct {
	b     []byte
	comma bool
	err   error
}

func (w *envelope) open() { w.b = append(w.b, '{') }

func (w *envelope) key(k string) {
	if w.comma {
		w.b = append(w.b, ',')
	}
	w.comma = true
	w.b = strconv.AppendQuote(w.b, k)
	w.b = append(w.b, ':')
}

// field writes a small value with encoding/json (ids, names, parameters).
func (w *envelope) field(k string, v any) {
	w.key(k)
	enc, err := json.Marshal(v)
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("encode %s: %w", k, err)
	}
	w.b = append(w.b, enc...)
}

// tensors writes an array of $request_input / $response_output objects and
// returns the tensors whose data goes to the binary extension.
func (w *envelope) tensors(ts []Tensor, wantBinary func(*Tensor) bool) ([]*Tensor, error) {
	var bin []*Tensor
	w.b = append(w.b, '[')
	for i := range ts {
		t := &ts[i]
		if err := t.Validate(); err != nil {
			return nil, err
		}
		if i > 0 {
			w.b = append(w.b, ',')
		}
		var inner envelope
		inner.b = w.b
		inner.open()
		inner.field("name", t.Name)
		inner.field("shape", shapeOrEmpty(t.Shape))
		inner.field("datatype", string(t.Datatype))
		params := t.Parameters
		isBinary := needsBinary(t.Datatype) || wantBinary(t)
		if isBinary {
			params = withParam(t.Parameters, ParamBinaryDataSize, BinarySize(t))
		}
		if len(params) > 0 {
			inner.field("parameters", params)
		}
		if isBinary {
			bin = append(bin, t)
		} else {
			inner.key("data")
			var err error
			if inner.b, err = AppendJSONData(inner.b, t); err != nil {
				return nil, err
			}
		}
		if inner.err != nil {
			return nil, inner.err
		}
		w.b = append(inner.b, '}')
	}
	w.b = append(w.b, ']')
	return bin, nil
}

// finish closes the header and appends the binary blobs after it.
func (w *envelope) finish(bin []*Tensor) ([]byte, int, error) {
	if w.err != nil {
		return nil, 0, w.err
	}
	w.b = append(w.b, '}')
	header := len(w.b)
	for _, t := range bin {
		w.b = AppendBinary(w.b, t)
	}
	return w.b, header, nil
}

func shapeOrEmpty(s []int64) []int64 {
	if s == nil {
		return []int64{}
	}
	return s
}

func withParam(p Parameters, name string, v any) Parameters {
	out := make(Parameters, len(p)+1)
	for k, x := range p {
		out[k] = x
	}
	out[name] = v
	return out
}
