package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/veil-ai/veil/oip"
)

// handleV1 serves KServe's v1 protocol: GET /v1/models/{m} and
// POST /v1/models/{m}:predict. The verb follows a colon inside the last
// path segment, which ServeMux patterns cannot express.
func (s *Server) handleV1(w http.ResponseWriter, r *http.Request) {
	seg := r.PathValue("model")
	name, verb, hasVerb := strings.Cut(seg, ":")
	switch {
	case !hasVerb:
		onlyMethod(http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
			if _, err := s.lookup(name, ""); err != nil {
				s.fail(w, r, err)
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"name": name, "ready": true})
		})(w, r)
	case verb == "predict":
		onlyMethod(http.MethodPost, func(w http.ResponseWriter, r *http.Request) { s.handleV1Predict(w, r, name) })(w, r)
	case verb == "explain":
		s.fail(w, r, fmt.Errorf("%w: explain is not available for ONNX models", oip.ErrUnsupported))
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	}
}

type v1Request struct {
	Instances json.RawMessage `json:"instances"`
	// KServe also accepts "inputs" for the same list.
	Inputs json.RawMessage `json:"inputs"`
}

// handleV1Predict runs {"instances": [...]} on a single-input model: the
// instances are the rows of that input; each prediction is the matching
// row of the output (or, for several outputs, an object of rows by name).
func (s *Server) handleV1Predict(w http.ResponseWriter, r *http.Request, name string) {
	sv, err := s.lookup(name, "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	in, err := v1Input(body, sv.model.Inputs())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp, err := s.infer(r.Context(), name, "", &oip.InferRequest{Inputs: []oip.Tensor{in}})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	preds, err := v1Predictions(resp.Outputs)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := append(append([]byte(`{"predictions":`), preds...), '}')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

func v1Input(body []byte, inputs []oip.TensorMetadata) (oip.Tensor, error) {
	if len(inputs) != 1 {
		return oip.Tensor{}, fmt.Errorf("%w: KServe v1 :predict needs a single-input model, this one has %d inputs; use the v2 protocol", oip.ErrInvalid, len(inputs))
	}
	var req v1Request
	if err := json.Unmarshal(body, &req); err != nil {
		return oip.Tensor{}, fmt.Errorf("%w: malformed v1 request JSON: %v", oip.ErrInvalid, err)
	}
	rows := req.Instances
	if len(rows) == 0 {
		rows = req.Inputs
	}
	var list []json.RawMessage
	if err := json.Unmarshal(rows, &list); err != nil || len(list) == 0 {
		return oip.Tensor{}, fmt.Errorf("%w: v1 request needs a non-empty \"instances\" array", oip.ErrInvalid)
	}
	shape := append([]int64{int64(len(list))}, rowShape(list[0])...)
	meta := inputs[0]
	return oip.DecodeJSONData(meta.Name, oip.DataType(meta.Datatype), shape, rows)
}

// rowShape infers an instance's shape from its first elements' nesting.
func rowShape(v json.RawMessage) []int64 {
	var shape []int64
	for len(shape) < 32 {
		v = bytes.TrimSpace(v)
		if len(v) == 0 || v[0] != '[' {
			return shape
		}
		var list []json.RawMessage
		if json.Unmarshal(v, &list) != nil {
			return shape
		}
		shape = append(shape, int64(len(list)))
		if len(list) == 0 {
			return shape
		}
		v = list[0]
	}
	return shape
}

func v1Predictions(outs []oip.Tensor) ([]byte, error) {
	if len(outs) == 1 {
		return oip.AppendNestedJSONData(nil, &outs[0])
	}
	// Several outputs: one object per row, {output name: row}.
	var rows int
	perOutput := make([][]json.RawMessage, len(outs))
	for i := range outs {
		nested, err := oip.AppendNestedJSONData(nil, &outs[i])
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(nested, &perOutput[i]); err != nil {
			return nil, fmt.Errorf("output %q has no rows to predict with: %w", outs[i].Name, err)
		}
		if i == 0 {
			rows = len(perOutput[i])
		} else if len(perOutput[i]) != rows {
			return nil, fmt.Errorf("outputs %q and %q differ in rows (%d, %d)", outs[0].Name, outs[i].Name, rows, len(perOutput[i]))
		}
	}
	preds := make([]map[string]json.RawMessage, rows)
	for r := range preds {
		preds[r] = make(map[string]json.RawMessage, len(outs))
		for i := range outs {
			preds[r][outs[i].Name] = perOutput[i][r]
		}
	}
	return json.Marshal(preds)
}
