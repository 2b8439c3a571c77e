package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/veil-ai/veil/oip"
)

// restHandler routes the REST API (OIP v2, KServe v1, health, metrics).
func (s *Server) restHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", s.get(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	}))
	mux.HandleFunc("/v2/health/live", s.get(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"live": true})
	}))
	mux.HandleFunc("/v2/health/ready", s.get(s.handleServerReady))
	mux.HandleFunc("/v2", s.get(s.handleServerMetadata))
	mux.HandleFunc("/v2/{$}", s.get(s.handleServerMetadata))
	mux.HandleFunc("/v2/models", s.get(s.handleModelList))
	mux.HandleFunc("/v2/models/{model}", s.get(s.handleModelMetadata))
	mux.HandleFunc("/v2/models/{model}/versions/{version}", s.get(s.handleModelMetadata))
	mux.HandleFunc("/v2/models/{model}/ready", s.get(s.handleModelReady))
	mux.HandleFunc("/v2/models/{model}/versions/{version}/ready", s.get(s.handleModelReady))
	mux.HandleFunc("/v2/models/{model}/infer", s.post(s.handleInfer))
	mux.HandleFunc("/v2/models/{model}/versions/{version}/infer", s.post(s.handleInfer))
	mux.HandleFunc("/v1/models", s.get(s.handleModelList))
	mux.HandleFunc("/v1/models/{model}", s.handleV1)
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return mux
}

func (s *Server) get(h http.HandlerFunc) http.HandlerFunc  { return onlyMethod(http.MethodGet, h) }
func (s *Server) post(h http.HandlerFunc) http.HandlerFunc { return onlyMethod(http.MethodPost, h) }

// onlyMethod answers other methods with a JSON 405 (HEAD works as GET).
func onlyMethod(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed; use %s", r.Method, method))
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, oip.ErrorResponse{Error: msg})
}

// fail answers err with its status and logs it.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, _ := classify(err)
	s.logFailure(r.Context(), "rest", status, err)
	writeError(w, status, err.Error())
}

func (s *Server) handleServerReady(w http.ResponseWriter, r *http.Request) {
	if !s.ready() {
		writeError(w, http.StatusServiceUnavailable, s.notReadyReason())
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
}

func (s *Server) notReadyReason() string {
	switch {
	case s.draining.Load():
		return "server is shutting down"
	case s.loadErr.Load() != nil:
		return "model failed to load"
	}
	return "model is loading"
}

func (s *Server) handleServerMetadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.serverMetadata())
}

func (s *Server) handleModelList(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string][]string{"models": {s.cfg.ModelName}})
}

func (s *Server) handleModelMetadata(w http.ResponseWriter, r *http.Request) {
	sv, err := s.lookup(r.PathValue("model"), r.PathValue("version"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.metadata(sv))
}

func (s *Server) handleModelReady(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("model")
	if _, err := s.lookup(name, r.PathValue("version")); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "ready": true})
}

// readBody reads a request body bounded by MaxRequestBytes.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > s.cfg.MaxRequestBytes {
		return nil, tooLargef("request body of %d bytes exceeds the %d byte limit", r.ContentLength, s.cfg.MaxRequestBytes)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.cfg.MaxRequestBytes)); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, tooLargef("request body exceeds the %d byte limit", s.cfg.MaxRequestBytes)
		}
		return nil, fmt.Errorf("%w: read body: %v", oip.ErrInvalid, err)
	}
	return buf.Bytes(), nil
}

func (s *Server) handleInfer(w http.ResponseWriter, r *http.Request) {
	name, version := r.PathValue("model"), r.PathValue("version")
	// Fail fast, before reading a large body, when there is nothing to run.
	if _, err := s.lookup(name, version); err != nil {
		s.fail(w, r, err)
		return
	}
	jsonLen := -1
	if h := r.Header.Get(oip.HeaderInferenceHeaderContentLength); h != "" {
		n, err := strconv.Atoi(h)
		if err != nil || n < 0 {
			s.fail(w, r, fmt.Errorf("%w: bad %s header %q", oip.ErrInvalid, oip.HeaderInferenceHeaderContentLength, h))
			return
		}
		jsonLen = n
	}
	body, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req *oip.InferRequest
	if jsonLen == 0 {
		req, err = s.rawBinaryRequest(name, version, body)
	} else {
		req, err = oip.DecodeRESTRequest(body, jsonLen)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp, err := s.infer(r.Context(), name, version, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out, outJSONLen, err := oip.EncodeRESTResponse(resp, req.WantsBinary)
	if err != nil {
		s.fail(w, r, fmt.Errorf("encode response: %w", err))
		return
	}
	if outJSONLen < len(out) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set(oip.HeaderInferenceHeaderContentLength, strconv.Itoa(outJSONLen))
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// rawBinaryRequest implements the binary extension's "raw binary request"
// (Inference-Header-Content-Length: 0): the body is the bytes of the only
// input, batch 1, at most one variable dimension (sized from the body);
// every output comes back binary.
func (s *Server) rawBinaryRequest(name, version string, body []byte) (*oip.InferRequest, error) {
	sv, err := s.lookup(name, version)
	if err != nil {
		return nil, err
	}
	inputs := sv.model.Inputs()
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%w: a raw binary request (%s: 0) needs a single-input model, this one has %d", oip.ErrInvalid, oip.HeaderInferenceHeaderContentLength, len(inputs))
	}
	meta := inputs[0]
	dt := oip.DataType(meta.Datatype)
	shape := append([]int64(nil), meta.Shape...)
	variable := -1
	for i, d := range shape {
		if d >= 0 {
			continue
		}
		if variable >= 0 {
			return nil, fmt.Errorf("%w: a raw binary request needs at most one variable dimension; input %q has shape %v", oip.ErrInvalid, meta.Name, meta.Shape)
		}
		variable = i
		shape[i] = 1
	}
	if dt == oip.Bytes {
		shape = []int64{1}
	} else if variable >= 0 {
		fixed, err := oip.ElementCount(shape)
		if err != nil {
			return nil, err
		}
		row := fixed * int64(dt.Size())
		if row == 0 || int64(len(body))%row != 0 {
			return nil, fmt.Errorf("%w: %d body bytes are not a whole number of %s elements for shape %v", oip.ErrInvalid, len(body), dt, meta.Shape)
		}
		shape[variable] = int64(len(body)) / row
	}
	var t oip.Tensor
	if dt == oip.Bytes {
		t = oip.Tensor{Name: meta.Name, Datatype: dt, Shape: shape, Strings: [][]byte{body}}
	} else if t, err = oip.TensorFromBinary(meta.Name, dt, shape, body); err != nil {
		return nil, err
	}
	return &oip.InferRequest{Inputs: []oip.Tensor{t}, Parameters: oip.Parameters{oip.ParamBinaryDataOutput: true}}, nil
}
