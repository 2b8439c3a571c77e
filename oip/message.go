package oip

// InferRequest is a decoded inference request, independent of the wire it
// came on (REST JSON, REST binary extension, gRPC typed or raw).
type InferRequest struct {
	ID         string
	Parameters Parameters
	Inputs     []Tensor
	// Outputs are the requested outputs; empty means all of them.
	Outputs []RequestOutput
}

// InferResponse is an inference response, independent of the wire.
type InferResponse struct {
	ModelName    string
	ModelVersion string
	ID           string
	Parameters   Parameters
	Outputs      []Tensor
}

// WantsBinary reports whether the output named name should be returned in
// the binary tensor data extension: the output's own binary_data parameter
// wins over the request-wide binary_data_output one. FP16 and BF16 have no
// JSON form, so callers force those binary regardless.
func (r *InferRequest) WantsBinary(name string) bool {
	for _, o := range r.Outputs {
		if o.Name == name {
			if v, ok := o.Parameters[ParamBinaryData].(bool); ok {
				return v
			}
			break
		}
	}
	v, _ := r.Parameters[ParamBinaryDataOutput].(bool)
	return v
}

// needsBinary reports whether a datatype cannot travel as JSON or typed gRPC.
func needsBinary(d DataType) bool { return d == FP16 || d == BF16 }
