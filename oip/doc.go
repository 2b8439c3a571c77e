// Package oip holds the Open Inference Protocol (KServe "v2") wire types and
// codecs shared by the Veil runtime and the Veil functions (the client is in
// oip/client). Every codec converts between a wire form and Tensor
// (little-endian Raw bytes, or Strings for BYTES) and works in both
// directions, so servers and clients use the same code:
//
// Protocol-neutral messages: InferRequest, InferResponse (Outputs in a
// request are the requested outputs; InferRequest.WantsBinary applies the
// binary_data / binary_data_output parameters).
//
// REST JSON and the binary tensor data extension (jsonLen is the
// Inference-Header-Content-Length value, -1 when absent; the encoders return
// the body and the JSON length, and the header is needed when that is
// shorter than the body):
//
//	DecodeRESTRequest(body, jsonLen) (*InferRequest, error)          // server
//	EncodeRESTResponse(resp, wantBinary func(name) bool) (body, jsonLen, error)
//	EncodeRESTRequest(req, binaryInputs bool) (body, jsonLen, error) // client
//	DecodeRESTResponse(body, jsonLen) (*InferResponse, error)
//	DecodeJSONData(name, dt, shape, data) (Tensor, error)           // one tensor's "data"
//	AppendJSONData(dst, *Tensor) ([]byte, error)                    // flat
//	AppendNestedJSONData(dst, *Tensor) ([]byte, error)              // nested by shape (KServe v1)
//	TensorFromBinary(name, dt, shape, b) (Tensor, error)            // binary/raw form
//	AppendBinary(dst, *Tensor) []byte; BinarySize(*Tensor) int
//
// Typed helpers: FP32Tensor, FP64Tensor, Int64Tensor build tensors from Go
// slices; (*Tensor).Float32s, Float64s, Int64s read them back.
//
// gRPC (typed contents, or raw_input_contents/raw_output_contents):
//
//	FromModelInferRequest(*pb.ModelInferRequest) (*InferRequest, error)            // server
//	ToModelInferResponse(resp, raw bool) (*pb.ModelInferResponse, error)
//	ToModelInferRequest(req, model, version string, raw bool) (*pb.ModelInferRequest, error) // client
//	FromModelInferResponse(*pb.ModelInferResponse) (*InferResponse, error)
//
// FP16 and BF16 travel only as binary/raw: the encoders switch to it on
// their own, the JSON and typed decoders reject them. Decoders never
// allocate per number and alias the input buffer for binary/raw data.
// Errors caused by the sender wrap ErrInvalid (IsInvalid): servers answer
// 400 / INVALID_ARGUMENT for them; ErrUnsupported (501 / UNIMPLEMENTED)
// marks well-formed requests the engine cannot run.
package oip
