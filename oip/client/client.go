// Package client is the Open Inference Protocol (KServe v2) client used by
// the Veil functions, the benchmark and the tests. One Client speaks one of
// four transports: REST JSON, REST with the binary tensor data extension,
// gRPC with typed contents, and gRPC with raw contents. All encoding is
// done by package oip's codecs; this package only moves bytes, keeps one
// HTTP transport or one gRPC connection per Client, bounds response sizes
// and classifies failures (see Error) so callers can tell a retryable
// outage from a request the server will never accept.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/veil-ai/veil/oip"
)

// Protocol names a transport.
type Protocol string

// The four transports.
const (
	RESTJSON   Protocol = "rest-json"   // REST, tensors as JSON arrays
	RESTBinary Protocol = "rest-binary" // REST, binary tensor data extension both ways
	GRPC       Protocol = "grpc"        // gRPC, typed InferTensorContents
	GRPCRaw    Protocol = "grpc-raw"    // gRPC, raw_input_contents / raw_output_contents
)

// Protocols lists every transport, for flags and benchmarks.
var Protocols = []Protocol{RESTJSON, RESTBinary, GRPC, GRPCRaw}

// ParseProtocol checks a transport name.
func ParseProtocol(s string) (Protocol, error) {
	for _, p := range Protocols {
		if string(p) == s {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown OIP protocol %q (want rest-json, rest-binary, grpc or grpc-raw)", s)
}

// IsGRPC reports whether the transport is gRPC.
func (p Protocol) IsGRPC() bool { return p == GRPC || p == GRPCRaw }

// DefaultMaxResponseBytes bounds a response when Config leaves it zero.
const DefaultMaxResponseBytes = 64 << 20

// Config configures a Client.
type Config struct {
	// URL is the server: http://host:port or https://host:port (for gRPC
	// the scheme picks plaintext or TLS; a bare host:port is plaintext).
	URL      string
	Protocol Protocol
	// Timeout applies to each call whose context has no deadline; 0 = none.
	Timeout time.Duration
	// TLS overrides the TLS settings for https (nil: system roots).
	TLS *tls.Config
	// MaxResponseBytes bounds a response body or message.
	MaxResponseBytes int64
	// MaxConns bounds connections per host for REST (0: unlimited).
	MaxConns int
}

// Client talks to one OIP server over one transport. It is safe for
// concurrent use; Close releases its connections.
type Client struct {
	cfg     Config
	trans   transport
	traffic *trafficCounter
}

// transport is one of the wire implementations.
type transport interface {
	infer(ctx context.Context, model, version string, req *oip.InferRequest) (*oip.InferResponse, error)
	serverLive(ctx context.Context) (bool, error)
	serverReady(ctx context.Context) (bool, error)
	modelReady(ctx context.Context, model, version string) (bool, error)
	modelMetadata(ctx context.Context, model, version string) (*oip.ModelMetadata, error)
	close() error
}

// New creates a client; gRPC connects lazily on the first call.
func New(cfg Config) (*Client, error) {
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if _, err := ParseProtocol(string(cfg.Protocol)); err != nil {
		return nil, err
	}
	u, secure, err := parseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, traffic: &trafficCounter{}}
	if cfg.Protocol.IsGRPC() {
		c.trans, err = newGRPCTransport(u.Host, secure, cfg, c.traffic)
	} else {
		c.trans, err = newRESTTransport(u, cfg, c.traffic)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

func parseURL(raw string) (*url.URL, bool, error) {
	if raw == "" {
		return nil, false, errors.New("oip client: empty server URL")
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, false, fmt.Errorf("oip client: server URL: %w", err)
	}
	switch u.Scheme {
	case "http", "https":
	default:
		return nil, false, fmt.Errorf("oip client: server URL scheme %q (want http or https)", u.Scheme)
	}
	if u.Host == "" {
		return nil, false, fmt.Errorf("oip client: server URL %q has no host", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, u.Scheme == "https", nil
}

// Protocol is the client's transport.
func (c *Client) Protocol() Protocol { return c.cfg.Protocol }

// InferOption adjusts one inference call.
type InferOption func(*inferOptions)

type inferOptions struct {
	version string
	req     oip.InferRequest
}

// WithVersion targets one model version.
func WithVersion(v string) InferOption { return func(o *inferOptions) { o.version = v } }

// WithRequestID sets the request id echoed in the response.
func WithRequestID(id string) InferOption { return func(o *inferOptions) { o.req.ID = id } }

// WithOutputs asks for these outputs only.
func WithOutputs(names ...string) InferOption {
	return func(o *inferOptions) {
		for _, n := range names {
			o.req.Outputs = append(o.req.Outputs, oip.RequestOutput{Name: n})
		}
	}
}

// WithParameters sets request-level parameters.
func WithParameters(p oip.Parameters) InferOption {
	return func(o *inferOptions) { o.req.Parameters = p }
}

// Infer runs the model on inputs and returns the response, including the
// model name and version that answered.
func (c *Client) Infer(ctx context.Context, model string, inputs []oip.Tensor, opts ...InferOption) (*oip.InferResponse, error) {
	var o inferOptions
	for _, opt := range opts {
		opt(&o)
	}
	o.req.Inputs = inputs
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.trans.infer(ctx, model, o.version, &o.req)
	if err != nil {
		return nil, wrap("infer "+model, err)
	}
	return resp, nil
}

// ServerLive reports the server's liveness.
func (c *Client) ServerLive(ctx context.Context) (bool, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	ok, err := c.trans.serverLive(ctx)
	return ok, wrap("server live", err)
}

// ServerReady reports whether the server is ready for inference.
func (c *Client) ServerReady(ctx context.Context) (bool, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	ok, err := c.trans.serverReady(ctx)
	return ok, wrap("server ready", err)
}

// ModelReady reports whether a model (version "" = default) is ready.
func (c *Client) ModelReady(ctx context.Context, model, version string) (bool, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	ok, err := c.trans.modelReady(ctx, model, version)
	return ok, wrap("model ready "+model, err)
}

// ModelMetadata returns a model's inputs, outputs and versions.
func (c *Client) ModelMetadata(ctx context.Context, model, version string) (*oip.ModelMetadata, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	md, err := c.trans.modelMetadata(ctx, model, version)
	if err != nil {
		return nil, wrap("model metadata "+model, err)
	}
	return md, nil
}

// Close releases connections.
func (c *Client) Close() error { return c.trans.close() }

func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.cfg.Timeout <= 0 {
		return ctx, func() {}
	}
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.cfg.Timeout)
}
