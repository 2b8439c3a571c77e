package oip

import (
	"encoding/binary"
	"fmt"
	"math"

	pb "github.com/veil-ai/veil/oip/inferencepb"
)

// FromModelInferRequest decodes a gRPC request (typed contents or
// raw_input_contents; raw entries are aliased, not copied).
func FromModelInferRequest(m *pb.ModelInferRequest) (*InferRequest, error) {
	req := &InferRequest{ID: m.GetId(), Parameters: fromPBParams(m.GetParameters())}
	raw := m.GetRawInputContents()
	if len(raw) != 0 && len(raw) != len(m.GetInputs()) {
		return nil, invalidf("raw_input_contents has %d entries for %d inputs", len(raw), len(m.GetInputs()))
	}
	req.Inputs = make([]Tensor, len(m.GetInputs()))
	for i, in := range m.GetInputs() {
		var rawData []byte
		if len(raw) != 0 {
			rawData = raw[i]
		}
		t, err := tensorFromPB(in.GetName(), in.GetDatatype(), in.GetShape(), in.GetContents(), len(raw) != 0, rawData)
		if err != nil {
			return nil, err
		}
		t.Parameters = fromPBParams(in.GetParameters())
		req.Inputs[i] = t
	}
	for _, o := range m.GetOutputs() {
		if o.GetName() == "" {
			return nil, invalidf("requested output without a name")
		}
		req.Outputs = append(req.Outputs, RequestOutput{Name: o.GetName(), Parameters: fromPBParams(o.GetParameters())})
	}
	return req, nil
}

// FromModelInferResponse decodes a gRPC response for a client.
func FromModelInferResponse(m *pb.ModelInferResponse) (*InferResponse, error) {
	resp := &InferResponse{ModelName: m.GetModelName(), ModelVersion: m.GetModelVersion(), ID: m.GetId(), Parameters: fromPBParams(m.GetParameters())}
	raw := m.GetRawOutputContents()
	if len(raw) != 0 && len(raw) != len(m.GetOutputs()) {
		return nil, invalidf("raw_output_contents has %d entries for %d outputs", len(raw), len(m.GetOutputs()))
	}
	resp.Outputs = make([]Tensor, len(m.GetOutputs()))
	for i, o := range m.GetOutputs() {
		var rawData []byte
		if len(raw) != 0 {
			rawData = raw[i]
		}
		t, err := tensorFromPB(o.GetName(), o.GetDatatype(), o.GetShape(), o.GetContents(), len(raw) != 0, rawData)
		if err != nil {
			return nil, err
		}
		t.Parameters = fromPBParams(o.GetParameters())
		resp.Outputs[i] = t
	}
	return resp, nil
}

// ToModelInferRequest encodes req for a client; with raw set (or any FP16
// or BF16 input, which have no typed form) all inputs travel in
// raw_input_contents, since the protocol forbids mixing.
func ToModelInferRequest(req *InferRequest, modelName, modelVersion string, raw bool) (*pb.ModelInferRequest, error) {
	m := &pb.ModelInferRequest{ModelName: modelName, ModelVersion: modelVersion, Id: req.ID, Parameters: toPBParams(req.Parameters)}
	raw = raw || anyNeedsBinary(req.Inputs)
	for i := range req.Inputs {
		t := &req.Inputs[i]
		if err := t.Validate(); err != nil {
			return nil, err
		}
		in := &pb.ModelInferRequest_InferInputTensor{Name: t.Name, Datatype: string(t.Datatype), Shape: t.Shape, Parameters: toPBParams(t.Parameters)}
		if raw {
			m.RawInputContents = append(m.RawInputContents, rawBytes(t))
		} else {
			c, err := typedContents(t)
			if err != nil {
				return nil, err
			}
			in.Contents = c
		}
		m.Inputs = append(m.Inputs, in)
	}
	for _, o := range req.Outputs {
		m.Outputs = append(m.Outputs, &pb.ModelInferRequest_InferRequestedOutputTensor{Name: o.Name, Parameters: toPBParams(o.Parameters)})
	}
	return m, nil
}

// ToModelInferResponse encodes resp for a server; raw as for
// ToModelInferRequest (servers answer raw when the request was raw).
func ToModelInferResponse(resp *InferResponse, raw bool) (*pb.ModelInferResponse, error) {
	m := &pb.ModelInferResponse{ModelName: resp.ModelName, ModelVersion: resp.ModelVersion, Id: resp.ID, Parameters: toPBParams(resp.Parameters)}
	raw = raw || anyNeedsBinary(resp.Outputs)
	for i := range resp.Outputs {
		t := &resp.Outputs[i]
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("output %q: %w", t.Name, err)
		}
		o := &pb.ModelInferResponse_InferOutputTensor{Name: t.Name, Datatype: string(t.Datatype), Shape: t.Shape, Parameters: toPBParams(t.Parameters)}
		if raw {
			m.RawOutputContents = append(m.RawOutputContents, rawBytes(t))
		} else {
			c, err := typedContents(t)
			if err != nil {
				return nil, err
			}
			o.Contents = c
		}
		m.Outputs = append(m.Outputs, o)
	}
	return m, nil
}

func anyNeedsBinary(ts []Tensor) bool {
	for i := range ts {
		if needsBinary(ts[i].Datatype) {
			return true
		}
	}
	return false
}

func rawBytes(t *Tensor) []byte {
	if t.Datatype != Bytes {
		return t.Raw
	}
	return AppendBinary(make([]byte, 0, BinarySize(t)), t)
}

func tensorFromPB(name, datatype string, shape []int64, c *pb.InferTensorContents, isRaw bool, raw []byte) (Tensor, error) {
	if name == "" {
		return Tensor{}, invalidf("tensor without a name")
	}
	dt, err := ParseDataType(datatype)
	if err != nil {
		return Tensor{}, invalidf("tensor %q: unknown datatype %q", name, datatype)
	}
	if isRaw {
		if hasContents(c) {
			return Tensor{}, invalidf("tensor %q: contents set although raw contents are used", name)
		}
		return TensorFromBinary(name, dt, shape, raw)
	}
	n, err := ElementCount(shape)
	if err != nil {
		return Tensor{}, invalidf("tensor %q: %v", name, err)
	}
	t := Tensor{Name: name, Datatype: dt, Shape: shape}
	if err := fillFromContents(&t, c); err != nil {
		return Tensor{}, err
	}
	if got := int64(elementsSoFar(&t)); got != n {
		return Tensor{}, invalidf("tensor %q: %v: shape %v needs %d elements, contents hold %d", name, ErrShape, shape, n, got)
	}
	return t, nil
}

func hasContents(c *pb.InferTensorContents) bool {
	return len(c.GetBoolContents())+len(c.GetIntContents())+len(c.GetInt64Contents())+len(c.GetUintContents())+
		len(c.GetUint64Contents())+len(c.GetFp32Contents())+len(c.GetFp64Contents())+len(c.GetBytesContents()) > 0
}

// fillFromContents converts typed contents to t's layout. Only the field
// that belongs to t's datatype may be set.
func fillFromContents(t *Tensor, c *pb.InferTensorContents) error {
	le := binary.LittleEndian
	size := t.Datatype.Size()
	var used int
	switch t.Datatype {
	case Bool:
		v := c.GetBoolContents()
		used = len(v)
		t.Raw = make([]byte, len(v))
		for i, b := range v {
			if b {
				t.Raw[i] = 1
			}
		}
	case Int8, Int16, Int32:
		v := c.GetIntContents()
		used = len(v)
		t.Raw = make([]byte, 0, len(v)*size)
		lo, hi := int64(-1)<<(size*8-1), int64(1)<<(size*8-1)-1
		for _, x := range v {
			if int64(x) < lo || int64(x) > hi {
				return invalidf("tensor %q: %d out of range for %s", t.Name, x, t.Datatype)
			}
			t.Raw = appendUint(t.Raw, uint64(x), size)
		}
	case Int64:
		v := c.GetInt64Contents()
		used = len(v)
		t.Raw = make([]byte, 0, len(v)*8)
		for _, x := range v {
			t.Raw = le.AppendUint64(t.Raw, uint64(x))
		}
	case Uint8, Uint16, Uint32:
		v := c.GetUintContents()
		used = len(v)
		t.Raw = make([]byte, 0, len(v)*size)
		hi := uint64(1)<<(size*8) - 1
		for _, x := range v {
			if uint64(x) > hi {
				return invalidf("tensor %q: %d out of range for %s", t.Name, x, t.Datatype)
			}
			t.Raw = appendUint(t.Raw, uint64(x), size)
		}
	case Uint64:
		v := c.GetUint64Contents()
		used = len(v)
		t.Raw = make([]byte, 0, len(v)*8)
		for _, x := range v {
			t.Raw = le.AppendUint64(t.Raw, x)
		}
	case FP32:
		v := c.GetFp32Contents()
		used = len(v)
		t.Raw = make([]byte, 0, len(v)*4)
		for _, x := range v {
			t.Raw = le.AppendUint32(t.Raw, math.Float32bits(x))
		}
	case FP64:
		v := c.GetFp64Contents()
		used = len(v)
		t.Raw = make([]byte, 0, len(v)*8)
		for _, x := range v {
			t.Raw = le.AppendUint64(t.Raw, math.Float64bits(x))
		}
	case Bytes:
		t.Strings = c.GetBytesContents()
		if t.Strings == nil {
			t.Strings = [][]byte{}
		}
		used = len(t.Strings)
	default:
		return invalidf("tensor %q: %s has no typed contents; send it in raw_input_contents", t.Name, t.Datatype)
	}
	if total := len(c.GetBoolContents()) + len(c.GetIntContents()) + len(c.GetInt64Contents()) + len(c.GetUintContents()) +
		len(c.GetUint64Contents()) + len(c.GetFp32Contents()) + len(c.GetFp64Contents()) + len(c.GetBytesContents()); total != used {
		return invalidf("tensor %q: contents set in a field that does not match datatype %s", t.Name, t.Datatype)
	}
	return nil
}

// typedContents converts t to the typed field its datatype uses.
func typedContents(t *Tensor) (*pb.InferTensorContents, error) {
	le := binary.LittleEndian
	c := &pb.InferTensorContents{}
	r := t.Raw
	switch t.Datatype {
	case Bool:
		c.BoolContents = make([]bool, len(r))
		for i, b := range r {
			c.BoolContents[i] = b != 0
		}
	case Int8:
		c.IntContents = make([]int32, len(r))
		for i, b := range r {
			c.IntContents[i] = int32(int8(b))
		}
	case Int16:
		c.IntContents = make([]int32, len(r)/2)
		for i := range c.IntContents {
			c.IntContents[i] = int32(int16(le.Uint16(r[2*i:])))
		}
	case Int32:
		c.IntContents = make([]int32, len(r)/4)
		for i := range c.IntContents {
			c.IntContents[i] = int32(le.Uint32(r[4*i:]))
		}
	case Int64:
		c.Int64Contents = make([]int64, len(r)/8)
		for i := range c.Int64Contents {
			c.Int64Contents[i] = int64(le.Uint64(r[8*i:]))
		}
	case Uint8:
		c.UintContents = make([]uint32, len(r))
		for i, b := range r {
			c.UintContents[i] = uint32(b)
		}
	case Uint16:
		c.UintContents = make([]uint32, len(r)/2)
		for i := range c.UintContents {
			c.UintContents[i] = uint32(le.Uint16(r[2*i:]))
		}
	case Uint32:
		c.UintContents = make([]uint32, len(r)/4)
		for i := range c.UintContents {
			c.UintContents[i] = le.Uint32(r[4*i:])
		}
	case Uint64:
		c.Uint64Contents = make([]uint64, len(r)/8)
		for i := range c.Uint64Contents {
			c.Uint64Contents[i] = le.Uint64(r[8*i:])
		}
	case FP32:
		c.Fp32Contents = make([]float32, len(r)/4)
		for i := range c.Fp32Contents {
			c.Fp32Contents[i] = math.Float32frombits(le.Uint32(r[4*i:]))
		}
	case FP64:
		c.Fp64Contents = make([]float64, len(r)/8)
		for i := range c.Fp64Contents {
			c.Fp64Contents[i] = math.Float64frombits(le.Uint64(r[8*i:]))
		}
	case Bytes:
		c.BytesContents = t.Strings
	default:
		return nil, invalidf("tensor %q: %s has no typed contents; use raw contents", t.Name, t.Datatype)
	}
	return c, nil
}

func fromPBParams(m map[string]*pb.InferParameter) Parameters {
	if len(m) == 0 {
		return nil
	}
	p := make(Parameters, len(m))
	for k, v := range m {
		switch x := v.GetParameterChoice().(type) {
		case *pb.InferParameter_BoolParam:
			p[k] = x.BoolParam
		case *pb.InferParameter_Int64Param:
			p[k] = x.Int64Param
		case *pb.InferParameter_StringParam:
			p[k] = x.StringParam
		case *pb.InferParameter_DoubleParam:
			p[k] = x.DoubleParam
		case *pb.InferParameter_Uint64Param:
			p[k] = x.Uint64Param
		}
	}
	return p
}

// toPBParams maps parameter values to InferParameter; JSON numbers (float64)
// that are whole become int64_param, as KServe's own servers send them.
func toPBParams(p Parameters) map[string]*pb.InferParameter {
	if len(p) == 0 {
		return nil
	}
	m := make(map[string]*pb.InferParameter, len(p))
	for k, v := range p {
		var ip pb.InferParameter
		switch x := v.(type) {
		case bool:
			ip.ParameterChoice = &pb.InferParameter_BoolParam{BoolParam: x}
		case string:
			ip.ParameterChoice = &pb.InferParameter_StringParam{StringParam: x}
		case int:
			ip.ParameterChoice = &pb.InferParameter_Int64Param{Int64Param: int64(x)}
		case int64:
			ip.ParameterChoice = &pb.InferParameter_Int64Param{Int64Param: x}
		case uint64:
			ip.ParameterChoice = &pb.InferParameter_Uint64Param{Uint64Param: x}
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
				ip.ParameterChoice = &pb.InferParameter_Int64Param{Int64Param: int64(x)}
			} else {
				ip.ParameterChoice = &pb.InferParameter_DoubleParam{DoubleParam: x}
			}
		default:
			ip.ParameterChoice = &pb.InferParameter_StringParam{StringParam: fmt.Sprint(x)}
		}
		m[k] = &ip
	}
	return m
}
