package oip

// DataType is an OIP tensor element type name, as it appears on the wire.
type DataType string

// The OIP datatypes. BF16 is in KServe's required_api.md; FP16 and BF16 have
// no JSON or typed-gRPC form and travel only as binary or raw bytes.
const (
	Bool   DataType = "BOOL"
	Uint8  DataType = "UINT8"
	Uint16 DataType = "UINT16"
	Uint32 DataType = "UINT32"
	Uint64 DataType = "UINT64"
	Int8   DataType = "INT8"
	Int16  DataType = "INT16"
	Int32  DataType = "INT32"
	Int64  DataType = "INT64"
	FP16   DataType = "FP16"
	BF16   DataType = "BF16"
	FP32   DataType = "FP32"
	FP64   DataType = "FP64"
	Bytes  DataType = "BYTES"
)

var elementSizes = map[DataType]int{
	Bool: 1, Uint8: 1, Uint16: 2, Uint32: 4, Uint64: 8,
	Int8: 1, Int16: 2, Int32: 4, Int64: 8,
	FP16: 2, BF16: 2, FP32: 4, FP64: 8,
	Bytes: 0,
}

// ParseDataType checks that s names an OIP datatype.
func ParseDataType(s string) (DataType, error) {
	d := DataType(s)
	if _, ok := elementSizes[d]; !ok {
		return "", invalidf("unknown datatype %q", s)
	}
	return d, nil
}

// Size is the element size in bytes; 0 for BYTES, whose elements vary.
func (d DataType) Size() int { return elementSizes[d] }

// Valid reports whether d is an OIP datatype.
func (d DataType) Valid() bool { _, ok := elementSizes[d]; return ok }
