package oip

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Typed helpers for the common datatypes, so callers need not write the
// little-endian conversion themselves.

// FP32Tensor builds an FP32 tensor holding v.
func FP32Tensor(name string, shape []int64, v []float32) Tensor {
	raw := make([]byte, 0, 4*len(v))
	for _, x := range v {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(x))
	}
	return Tensor{Name: name, Datatype: FP32, Shape: shape, Raw: raw}
}

// FP64Tensor builds an FP64 tensor holding v.
func FP64Tensor(name string, shape []int64, v []float64) Tensor {
	raw := make([]byte, 0, 8*len(v))
	for _, x := range v {
		raw = binary.LittleEndian.AppendUint64(raw, math.Float64bits(x))
	}
	return Tensor{Name: name, Datatype: FP64, Shape: shape, Raw: raw}
}

// Int64Tensor builds an INT64 tensor holding v.
func Int64Tensor(name string, shape []int64, v []int64) Tensor {
	raw := make([]byte, 0, 8*len(v))
	for _, x := range v {
		raw = binary.LittleEndian.AppendUint64(raw, uint64(x))
	}
	return Tensor{Name: name, Datatype: Int64, Shape: shape, Raw: raw}
}

// Float32s returns an FP32 tensor's elements.
func (t *Tensor) Float32s() ([]float32, error) {
	if err := t.expect(FP32); err != nil {
		return nil, err
	}
	out := make([]float32, len(t.Raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Raw[4*i:]))
	}
	return out, nil
}

// Float64s returns an FP64 tensor's elements.
func (t *Tensor) Float64s() ([]float64, error) {
	if err := t.expect(FP64); err != nil {
		return nil, err
	}
	out := make([]float64, len(t.Raw)/8)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(t.Raw[8*i:]))
	}
	return out, nil
}

// Int64s returns an INT64 tensor's elements.
func (t *Tensor) Int64s() ([]int64, error) {
	if err := t.expect(Int64); err != nil {
		return nil, err
	}
	out := make([]int64, len(t.Raw)/8)
	for i := range out {
		out[i] = int64(binary.LittleEndian.Uint64(t.Raw[8*i:]))
	}
	return out, nil
}

func (t *Tensor) expect(dt DataType) error {
	if t.Datatype != dt {
		return fmt.Errorf("tensor %q is %s, not %s", t.Name, t.Datatype, dt)
	}
	return t.Validate()
}
