package kbsclient

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/veil-ai/veil/kbsclient/protocol"
)

// DefaultCDHAddr is where the CoCo api-server-rest listens inside the pod.
const DefaultCDHAddr = "http://127.0.0.1:8006"

// CDHConfig configures the Confidential Data Hub client.
type CDHConfig struct {
	Addr       string       // default DefaultCDHAddr
	HTTPClient *http.Client // default: a client with a 30s per-request timeout
	Backoff    Backoff
	Logger     *slog.Logger
}

// CDH fetches resources through the Confidential Data Hub REST API
// (GET /cdh/resource/<repo>/<type>/<tag>); the guest components attest with
// the KBS and decrypt the reply, so we receive plaintext over loopback.
type CDH struct {
	cfg CDHConfig
}

// NewCDH returns a CDH key source.
func NewCDH(cfg CDHConfig) *CDH {
	if cfg.Addr == "" {
		cfg.Addr = DefaultCDHAddr
	}
	cfg.Addr = strings.TrimRight(cfg.Addr, "/")
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second, CheckRedirect: refuseRedirect}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &CDH{cfg: cfg}
}

// CDHError is a non-200 answer from the CDH.
type CDHError struct {
	Status int
	Body   string // CDH error text, truncated
}

func (e *CDHError) Error() string {
	return fmt.Sprintf("confidential data hub answered HTTP %d: %s", e.Status, e.Body)
}

// Resource implements KeySource.
func (c *CDH) Resource(ctx context.Context, id ResourceID) ([]byte, Timings, error) {
	start := time.Now()
	var t Timings
	if err := id.Valid(); err != nil {
		return nil, t, err
	}
	var out []byte
	n, err := retry(ctx, c.cfg.Backoff, c.cfg.Logger, "fetch "+id.String()+" from the confidential data hub", func(ctx context.Context) error {
		fetchStart := time.Now()
		b, err := c.get(ctx, id)
		t.Fetch = time.Since(fetchStart)
		out = b
		return err
	})
	t.Attempts, t.Total = n, time.Since(start)
	if err != nil {
		return nil, t, err
	}
	return out, t, nil
}

func (c *CDH) get(ctx context.Context, id ResourceID) ([]byte, error) {
	url := c.cfg.Addr + "/cdh/resource/" + id.Path()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, permanent(fmt.Errorf("CDH request %s: %w", url, err))
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("CDH GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := readBounded(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("CDH GET %s: %w", url, err)
	}
	if resp.StatusCode == http.StatusOK {
		return body, nil
	}
	cerr := &CDHError{Status: resp.StatusCode, Body: protocol.DecodeError(resp.StatusCode, body).Detail}
	// 404 means the feature or route is missing and 403 a non-loopback
	// peer: configuration errors. 5xx is usually the KBS behind the CDH
	// being unreachable or not yet holding the resource.
	if resp.StatusCode < 500 {
		return nil, permanent(cerr)
	}
	return nil, cerr
}

// readBounded reads at most protocol.MaxBodyBytes.
func readBounded(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, protocol.MaxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(b) > protocol.MaxBodyBytes {
		clear(b)
		return nil, fmt.Errorf("%w: body exceeds %d bytes", ErrBadReply, protocol.MaxBodyBytes)
	}
	return b, nil
}
