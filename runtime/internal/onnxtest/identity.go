// Package onnxtest builds tiny ONNX models for tests, so every datatype can
// be exercised without shipping model files or needing Python.
package onnxtest

import "google.golang.org/protobuf/encoding/protowire"

// ONNX TensorProto.DataType numbers (onnx.proto).
const (
	Float    = 1
	Uint8    = 2
	Int8     = 3
	Uint16   = 4
	Int16    = 5
	Int32    = 6
	Int64    = 7
	String   = 8
	Bool     = 9
	Float16  = 10
	Double   = 11
	Uint32   = 12
	Uint64   = 13
	BFloat16 = 16
)

// Identity returns a serialized ONNX model whose output "y" is its input
// "x", of element type elemType and shape dims (a negative dim becomes the
// symbolic dimension "n").
func Identity(elemType int, dims ...int64) []byte {
	valueInfo := func(name string) []byte {
		var shape []byte
		for _, d := range dims {
			var dim []byte
			if d < 0 {
				dim = protowire.AppendTag(dim, 2, protowire.BytesType)
				dim = protowire.AppendString(dim, "n")
			} else {
				dim = protowire.AppendTag(dim, 1, protowire.VarintType)
				dim = protowire.AppendVarint(dim, uint64(d))
			}
			shape = appendMessage(shape, 1, dim)
		}
		var tensor []byte
		tensor = protowire.AppendTag(tensor, 1, protowire.VarintType)
		tensor = protowire.AppendVarint(tensor, uint64(elemType))
		tensor = appendMessage(tensor, 2, shape)
		typ := appendMessage(nil, 1, tensor)
		var vi []byte
		vi = appendString(vi, 1, name)
		return appendMessage(vi, 2, typ)
	}
	var node []byte
	node = appendString(node, 1, "x")
	node = appendString(node, 2, "y")
	node = appendString(node, 4, "Identity")
	var graph []byte
	graph = appendMessage(graph, 1, node)
	graph = appendString(graph, 2, "identity")
	graph = appendMessage(graph, 11, valueInfo("x"))
	graph = appendMessage(graph, 12, valueInfo("y"))
	var opset []byte
	opset = appendString(opset, 1, "")
	opset = protowire.AppendTag(opset, 2, protowire.VarintType)
	opset = protowire.AppendVarint(opset, 13)
	var model []byte
	model = protowire.AppendTag(model, 1, protowire.VarintType)
	model = protowire.AppendVarint(model, 8)
	model = appendString(model, 2, "veil-onnxtest")
	model = appendMessage(model, 7, graph)
	model = appendMessage(model, 8, opset)
	return model
}

func appendMessage(b []byte, field protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}

func appendString(b []byte, field protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendString(b, s)
}
