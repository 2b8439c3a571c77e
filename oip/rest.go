package oip

import "encoding/json"

// Parameters is an OIP parameter map: values are strings, numbers or bools.
type Parameters map[string]any

// InferenceRequest is the REST $inference_request. Data stays raw JSON so
// that decoders can parse numbers straight into typed buffers.
type InferenceRequest struct {
	ID         string          `json:"id,omitempty"`
	Parameters Parameters      `json:"parameters,omitempty"`
	Inputs     []RequestInput  `json:"inputs"`
	Outputs    []RequestOutput `json:"outputs,omitempty"`
}

// RequestInput is a REST $request_input.
type RequestInput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters Parameters      `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
}

// RequestOutput is a REST $request_output.
type RequestOutput struct {
	Name       string     `json:"name"`
	Parameters Parameters `json:"parameters,omitempty"`
}

// InferenceResponse is the REST $inference_response.
type InferenceResponse struct {
	ModelName    string           `json:"model_name"`
	ModelVersion string           `json:"model_version,omitempty"`
	ID           string           `json:"id"`
	Parameters   Parameters       `json:"parameters,omitempty"`
	Outputs      []ResponseOutput `json:"outputs"`
}

// ResponseOutput is a REST $response_output.
type ResponseOutput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters Parameters      `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
}

// ServerMetadata is the REST $metadata_server_response.
type ServerMetadata struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

// TensorMetadata is a REST $metadata_tensor; -1 marks a dynamic dimension.
type TensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// ModelMetadata is the REST $metadata_model_response.
type ModelMetadata struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions,omitempty"`
	Platform string           `json:"platform"`
	Inputs   []TensorMetadata `json:"inputs"`
	Outputs  []TensorMetadata `json:"outputs"`
}

// ErrorResponse is the body of every failed REST call.
type ErrorResponse struct {
	Error string `json:"error"`
}

// Binary tensor data extension names (Triton's, advertised as
// "binary_tensor_data").
const (
	HeaderInferenceHeaderContentLength = "Inference-Header-Content-Length"
	ParamBinaryDataSize                = "binary_data_size"
	ParamBinaryData                    = "binary_data"
	ParamBinaryDataOutput              = "binary_data_output"
	ExtensionBinaryTensorData          = "binary_tensor_data"
)
