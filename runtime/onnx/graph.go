package onnx

import (
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/encoding/protowire"
)

// graphIO reads the graph's inputs and outputs straight from the ONNX
// protobuf. onnxruntime_go can only report them by building a throwaway
// session with default options (a thread pool the size of the host), which
// costs more than the real session on a cold start; NewModel falls back to
// that when the bytes do not parse here.
func graphIO(model []byte) (inputs, outputs []ort.InputOutputInfo, err error) {
	var graph []byte
	err = eachField(model, func(num protowire.Number, v []byte) error {
		if num == 7 { // ModelProto.graph
			graph = v
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("model: %w", err)
	}
	if graph == nil {
		return nil, nil, errors.New("model has no graph")
	}
	initializers := map[string]bool{}
	var ins, outs [][]byte
	err = eachField(graph, func(num protowire.Number, v []byte) error {
		switch num {
		case 5: // GraphProto.initializer (TensorProto)
			return eachField(v, func(n protowire.Number, b []byte) error {
				if n == 8 { // TensorProto.name
					initializers[string(b)] = true
				}
				return nil
			})
		case 11:
			ins = append(ins, v)
		case 12:
			outs = append(outs, v)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("graph: %w", err)
	}
	for _, b := range ins {
		info, err := valueInfo(b)
		if err != nil {
			return nil, nil, fmt.Errorf("graph input: %w", err)
		}
		// Inputs backed by an initializer are weights, not model inputs
		// (onnxruntime leaves them out too).
		if !initializers[info.Name] {
			inputs = append(inputs, info)
		}
	}
	for _, b := range outs {
		info, err := valueInfo(b)
		if err != nil {
			return nil, nil, fmt.Errorf("graph output: %w", err)
		}
		outputs = append(outputs, info)
	}
	return inputs, outputs, nil
}

// valueInfo decodes a ValueInfoProto.
func valueInfo(b []byte) (ort.InputOutputInfo, error) {
	info := ort.InputOutputInfo{OrtValueType: ort.ONNXTypeUnknown}
	var typ []byte
	err := eachField(b, func(num protowire.Number, v []byte) error {
		switch num {
		case 1:
			info.Name = string(v)
		case 2:
			typ = v
		}
		return nil
	})
	if err != nil {
		return info, err
	}
	return info, eachField(typ, func(num protowire.Number, v []byte) error {
		switch num {
		case 1: // TypeProto.tensor_type
			info.OrtValueType = ort.ONNXTypeTensor
			return tensorType(v, &info)
		case 4:
			info.OrtValueType = ort.ONNXTypeSequence
		case 5:
			info.OrtValueType = ort.ONNXTypeMap
		case 8:
			info.OrtValueType = ort.ONNXTypeSparseTensor
		case 9:
			info.OrtValueType = ort.ONNXTypeOptional
		}
		return nil
	})
}

func tensorType(b []byte, info *ort.InputOutputInfo) error {
	info.Dimensions = ort.Shape{}
	return eachFieldOrVarint(b, func(num protowire.Number, v []byte, x uint64) error {
		switch num {
		case 1:
			info.DataType = ort.TensorElementDataType(x)
		case 2: // TensorShapeProto
			return eachField(v, func(n protowire.Number, dim []byte) error {
				if n != 1 {
					return nil
				}
				d := int64(-1)
				err := eachFieldOrVarint(dim, func(k protowire.Number, _ []byte, x uint64) error {
					if k == 1 { // dim_value; a dim_param stays -1
						d = int64(x)
					}
					return nil
				})
				info.Dimensions = append(info.Dimensions, d)
				return err
			})
		}
		return nil
	})
}

// eachField calls fn for every length-delimited field of a message.
func eachField(b []byte, fn func(num protowire.Number, v []byte) error) error {
	return eachFieldOrVarint(b, func(num protowire.Number, v []byte, _ uint64) error {
		if v == nil {
			return nil
		}
		return fn(num, v)
	})
}

// eachFieldOrVarint calls fn for every length-delimited (v) and varint (x)
// field, skipping the other wire types.
func eachFieldOrVarint(b []byte, fn func(num protowire.Number, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		switch typ {
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			if v == nil {
				v = []byte{}
			}
			if err := fn(num, v, 0); err != nil {
				return err
			}
			b = b[m:]
		case protowire.VarintType:
			x, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			if err := fn(num, nil, x); err != nil {
				return err
			}
			b = b[m:]
		default:
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			b = b[m:]
		}
	}
	return nil
}
