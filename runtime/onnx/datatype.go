package onnx

import (
	ort "github.com/yalue/onnxruntime_go"

	"github.com/veil-ai/veil/oip"
)

// oipType maps an onnxruntime element type to its OIP datatype; element
// types with no OIP form (complex, float8, int4...) report false.
func oipType(t ort.TensorElementDataType) (oip.DataType, bool) {
	switch t {
	case ort.TensorElementDataTypeBool:
		return oip.Bool, true
	case ort.TensorElementDataTypeInt8:
		return oip.Int8, true
	case ort.TensorElementDataTypeInt16:
		return oip.Int16, true
	case ort.TensorElementDataTypeInt32:
		return oip.Int32, true
	case ort.TensorElementDataTypeInt64:
		return oip.Int64, true
	case ort.TensorElementDataTypeUint8:
		return oip.Uint8, true
	case ort.TensorElementDataTypeUint16:
		return oip.Uint16, true
	case ort.TensorElementDataTypeUint32:
		return oip.Uint32, true
	case ort.TensorElementDataTypeUint64:
		return oip.Uint64, true
	case ort.TensorElementDataTypeFloat16:
		return oip.FP16, true
	case ort.TensorElementDataTypeBFloat16:
		return oip.BF16, true
	case ort.TensorElementDataTypeFloat:
		return oip.FP32, true
	case ort.TensorElementDataTypeDouble:
		return oip.FP64, true
	case ort.TensorElementDataTypeString:
		return oip.Bytes, true
	}
	return "", false
}
