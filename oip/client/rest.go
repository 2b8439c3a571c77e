package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/veil-ai/veil/oip"
)

// restTransport speaks OIP REST over one shared http.Client.
type restTransport struct {
	base    *url.URL
	binary  bool
	hc      *http.Client
	maxResp int64
	bufs    sync.Pool // *bytes.Buffer for bodies we fully consume
	traffic *trafficCounter
}

func newRESTTransport(base *url.URL, cfg Config, traffic *trafficCounter) (*restTransport, error) {
	tr := &http.Transport{
		Proxy:               nil, // OIP traffic goes straight to the runtime
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     cfg.TLS,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		MaxConnsPerHost:     cfg.MaxConns,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &restTransport{
		base:    base,
		binary:  cfg.Protocol == RESTBinary,
		hc:      &http.Client{Transport: tr},
		maxResp: cfg.MaxResponseBytes,
		bufs:    sync.Pool{New: func() any { return new(bytes.Buffer) }},
		traffic: traffic,
	}, nil
}

func (t *restTransport) modelPath(model, version string) string {
	p := t.base.Path + "/v2/models/" + url.PathEscape(model)
	if version != "" {
		p += "/versions/" + url.PathEscape(version)
	}
	return p
}

func (t *restTransport) url(path string) string {
	u := *t.base
	u.Path = path
	u.RawPath = ""
	return u.String()
}

func (t *restTransport) infer(ctx context.Context, model, version string, req *oip.InferRequest) (*oip.InferResponse, error) {
	if t.binary {
		// Ask for outputs in the binary extension too: the compact way back.
		p := make(oip.Parameters, len(req.Parameters)+1)
		for k, v := range req.Parameters {
			p[k] = v
		}
		p[oip.ParamBinaryDataOutput] = true
		r := *req
		r.Parameters = p
		req = &r
	}
	body, jsonLen, err := oip.EncodeRESTRequest(req, t.binary)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url(t.modelPath(model, version)+"/infer"), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if jsonLen < len(body) {
		hr.Header.Set("Content-Type", "application/octet-stream")
		hr.Header.Set(oip.HeaderInferenceHeaderContentLength, strconv.Itoa(jsonLen))
	} else {
		hr.Header.Set("Content-Type", "application/json")
	}
	resp, err := t.hc.Do(hr)
	if err != nil {
		return nil, transportErr(err)
	}
	defer resp.Body.Close()
	t.traffic.sent.Add(int64(len(body)))
	// The decoded tensors alias the body, so it gets its own buffer.
	data, err := readBounded(resp.Body, resp.ContentLength, t.maxResp, nil)
	if err != nil {
		return nil, err
	}
	t.traffic.received.Add(int64(len(data)))
	if resp.StatusCode != http.StatusOK {
		return nil, httpError(resp.StatusCode, data)
	}
	jl := -1
	if h := resp.Header.Get(oip.HeaderInferenceHeaderContentLength); h != "" {
		if jl, err = strconv.Atoi(h); err != nil || jl < 0 || jl > len(data) {
			return nil, fmt.Errorf("bad %s header %q", oip.HeaderInferenceHeaderContentLength, h)
		}
	}
	out, err := oip.DecodeRESTResponse(data, jl)
	if err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	return out, nil
}

// get fetches path and returns status and body (bounded, pooled buffer
// copied out only where kept).
func (t *restTransport) get(ctx context.Context, path string, v any) (int, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url(path), nil)
	if err != nil {
		return 0, err
	}
	resp, err := t.hc.Do(hr)
	if err != nil {
		return 0, transportErr(err)
	}
	defer resp.Body.Close()
	buf := t.bufs.Get().(*bytes.Buffer)
	defer t.bufs.Put(buf)
	buf.Reset()
	data, err := readBounded(resp.Body, resp.ContentLength, t.maxResp, buf)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, httpError(resp.StatusCode, data)
	}
	if v != nil {
		if err := json.Unmarshal(data, v); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s: %w", path, err)
		}
	}
	return resp.StatusCode, nil
}

// probe maps a health endpoint to a bool: 200 = true; any other answer
// from the server = false; no answer = error.
func (t *restTransport) probe(ctx context.Context, path string) (bool, error) {
	_, err := t.get(ctx, path, nil)
	if err == nil {
		return true, nil
	}
	var e *Error
	if errors.As(err, &e) && e.HTTPStatus != 0 {
		return false, nil
	}
	return false, err
}

func (t *restTransport) serverLive(ctx context.Context) (bool, error) {
	return t.probe(ctx, t.base.Path+"/v2/health/live")
}

func (t *restTransport) serverReady(ctx context.Context) (bool, error) {
	return t.probe(ctx, t.base.Path+"/v2/health/ready")
}

func (t *restTransport) modelReady(ctx context.Context, model, version string) (bool, error) {
	return t.probe(ctx, t.modelPath(model, version)+"/ready")
}

func (t *restTransport) modelMetadata(ctx context.Context, model, version string) (*oip.ModelMetadata, error) {
	var md oip.ModelMetadata
	if _, err := t.get(ctx, t.modelPath(model, version), &md); err != nil {
		return nil, err
	}
	return &md, nil
}

func (t *restTransport) close() error {
	t.hc.CloseIdleConnections()
	return nil
}

// readBounded reads a body of at most max bytes into buf (or a new slice
// sized from Content-Length).
func readBounded(r io.Reader, contentLength, max int64, buf *bytes.Buffer) ([]byte, error) {
	if contentLength > max {
		return nil, fmt.Errorf("response of %d bytes exceeds the %d byte limit", contentLength, max)
	}
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	if contentLength > 0 {
		buf.Grow(int(contentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(r, max+1))
	if err != nil {
		return nil, transportErr(fmt.Errorf("read response: %w", err))
	}
	if n > max {
		return nil, fmt.Errorf("response exceeds the %d byte limit", max)
	}
	return buf.Bytes(), nil
}

// httpError builds *Error from a non-200 answer, using the OIP error body
// when there is one.
func httpError(status int, body []byte) error {
	var er oip.ErrorResponse
	msg := ""
	if json.Unmarshal(body, &er) == nil && er.Error != "" {
		msg = er.Error
	} else {
		msg = strings.TrimSpace(string(body))
	}
	if len(msg) > 512 {
		msg = msg[:512]
	}
	return &Error{HTTPStatus: status, Message: msg}
}

func transportErr(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return transportError{err}
}
