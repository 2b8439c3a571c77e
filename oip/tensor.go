package oip

import (
	"fmt"
	"math"
)

// Tensor is one named tensor in a wire-neutral form shared by every codec:
// fixed-size elements as little-endian row-major bytes (the layout of the
// binary extension, gRPC raw contents and onnxruntime's own buffers, so the
// fast paths need no conversion), BYTES elements as a list of byte strings.
type Tensor struct {
	Name     string
	Datatype DataType
	Shape    []int64
	// Raw holds fixed-size elements; nil for BYTES.
	Raw []byte
	// Strings holds BYTES elements; nil for every other datatype.
	Strings [][]byte
	// Parameters are the tensor's own OIP parameters, if any.
	Parameters Parameters
}

// ErrShape reports a shape that does not fit the data.
var ErrShape = fmt.Errorf("%w: shape mismatch", ErrInvalid)

// ElementCount is the product of the shape's dimensions; it fails on a
// negative dimension or on overflow, both of which are client errors.
func ElementCount(shape []int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("%w: negative dimension %d in shape %v", ErrShape, d, shape)
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, fmt.Errorf("%w: shape %v overflows", ErrShape, shape)
		}
		n *= d
	}
	return n, nil
}

// Validate checks that the tensor's data fits its datatype and shape.
func (t *Tensor) Validate() error {
	if !t.Datatype.Valid() {
		return invalidf("tensor %q: unknown datatype %q", t.Name, t.Datatype)
	}
	n, err := ElementCount(t.Shape)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if t.Datatype == Bytes {
		if int64(len(t.Strings)) != n {
			return fmt.Errorf("tensor %q: %w: shape %v needs %d elements, got %d", t.Name, ErrShape, t.Shape, n, len(t.Strings))
		}
		return nil
	}
	want := n * int64(t.Datatype.Size())
	if int64(len(t.Raw)) != want {
		return fmt.Errorf("tensor %q: %w: shape %v of %s needs %d bytes, got %d", t.Name, ErrShape, t.Shape, t.Datatype, want, len(t.Raw))
	}
	return nil
}
