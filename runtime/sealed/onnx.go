package sealed

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// ONNX ModelProto field numbers (onnx/onnx.proto) that a model must carry.
const (
	onnxFieldIRVersion protowire.Number = 1
	onnxFieldGraph     protowire.Number = 7
)

// CheckONNX reports whether b is a well-formed ONNX ModelProto at the wire
// level: every byte parses as protobuf fields, ir_version is a varint and a
// graph is present. Random bytes (a wrong key on an unauthenticated format)
// essentially never pass this over a whole model. It is no substitute for
// AES-GCM: a deliberate attacker could forge a valid protobuf, which is why
// JWE is the recommended format.
func CheckONNX(b []byte) error {
	var haveIR, haveGraph bool
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: bad protobuf tag: %v", ErrNotModel, protowire.ParseError(n))
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return fmt.Errorf("%w: bad protobuf field %d: %v", ErrNotModel, num, protowire.ParseError(m))
		}
		switch num {
		case onnxFieldIRVersion:
			haveIR = typ == protowire.VarintType
		case onnxFieldGraph:
			haveGraph = typ == protowire.BytesType
		}
		b = b[m:]
	}
	if !haveIR || !haveGraph {
		return fmt.Errorf("%w: no ir_version or graph field", ErrNotModel)
	}
	return nil
}
