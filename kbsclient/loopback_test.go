package kbsclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/kbsclient"
	"github.com/veil-ai/veil/kbsclient/devkbs"
	"github.com/veil-ai/veil/kbsclient/evidence"
	"github.com/veil-ai/veil/kbsclient/protocol"
	"github.com/veil-ai/veil/kbsclient/teekey"
)

const adminToken = "test-admin-token"

var secret = []byte("0123456789abcdef0123456789abcdef")

// fastBackoff keeps retry tests quick without asserting on speed.
var fastBackoff = kbsclient.Backoff{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond}

// quiet drops logs: the loopback tests assert on errors, not log lines.
var quiet = slog.New(slog.DiscardHandler)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newDevKBS(t *testing.T, mutate func(*devkbs.Config)) *devkbs.Server {
	t.Helper()
	cfg := devkbs.Config{AdminToken: []byte(adminToken), AllowInsecureSampleTEE: true, Logger: quiet}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := devkbs.New(cfg)
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	return srv
}

func upload(t *testing.T, url string, id string, data []byte) {
	t.Helper()
	admin, err := kbsclient.NewAdmin(kbsclient.AdminConfig{URL: url, Token: adminToken})
	require.NoError(t, err)
	rid, err := kbsclient.ParseResourceID(id)
	require.NoError(t, err)
	require.NoError(t, admin.Upload(context.Background(), rid, data))
}

func sampleClient(t *testing.T, url string, mutate func(*kbsclient.KBSConfig)) *kbsclient.KBS {
	t.Helper()
	cfg := kbsclient.KBSConfig{URL: url, TEE: "sample", AllowInsecureSampleTEE: true, Backoff: fastBackoff, Logger: quiet}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := kbsclient.NewKBS(cfg)
	require.NoError(t, err)
	return c
}

func ctxWithin(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustID(t *testing.T, s string) kbsclient.ResourceID {
	t.Helper()
	id, err := kbsclient.ParseResourceID(s)
	require.NoError(t, err)
	return id
}

func TestLoopbackHappyPath(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*kbsclient.KBSConfig)
	}{
		{"EC P-256 with cookie", nil},
		{"EC P-256 with bearer token", func(c *kbsclient.KBSConfig) { c.UseBearerToken = true }},
		{"RSA-OAEP-256", func(c *kbsclient.KBSConfig) { c.KeyAlgorithm = teekey.RSAOAEP256 }},
		{"with init-data", func(c *kbsclient.KBSConfig) {
			c.InitData = &protocol.InitData{Format: "toml", Body: "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n"}
		}},
	}
	ts := httptest.NewServer(newDevKBS(t, nil))
	defer ts.Close()
	upload(t, ts.URL, "kbs:///default/model-keys/fraud", secret)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := sampleClient(t, ts.URL, tc.mutate)
			got, tm, err := c.Resource(ctxWithin(t, 10*time.Second), mustID(t, "default/model-keys/fraud"))
			require.NoError(t, err)
			assert.Equal(t, secret, got)
			assert.Equal(t, 1, tm.Attempts)
			assert.Positive(t, tm.Attest)
			assert.Positive(t, tm.Fetch)
			assert.GreaterOrEqual(t, tm.Total, tm.Evidence+tm.Attest+tm.Fetch)
		})
	}
}

func TestLoopbackHTTPSWithCACert(t *testing.T) {
	ts := httptest.NewTLSServer(newDevKBS(t, nil))
	defer ts.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	admin, err := kbsclient.NewAdmin(kbsclient.AdminConfig{URL: ts.URL, Token: adminToken, CACertPEM: caPEM})
	require.NoError(t, err)
	require.NoError(t, admin.Upload(context.Background(), mustID(t, "default/k/tls"), secret))

	c := sampleClient(t, ts.URL, func(c *kbsclient.KBSConfig) { c.CACertPEM = caPEM })
	got, _, err := c.Resource(ctxWithin(t, 10*time.Second), mustID(t, "default/k/tls"))
	require.NoError(t, err)
	assert.Equal(t, secret, got)

	// Without the CA the certificate is not trusted: a permanent error.
	c = sampleClient(t, ts.URL, nil)
	_, tm, err := c.Resource(ctxWithin(t, 10*time.Second), mustID(t, "default/k/tls"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not trusted")
	assert.Equal(t, 1, tm.Attempts)
}

func TestLoopbackPolicyDeny(t *testing.T) {
	pol := devkbs.Policy{Rules: []devkbs.Rule{
		{Effect: "deny", Path: "default/secret/*"},
		{Effect: "allow", Path: "default/*/*", TEEs: []string{"sample"}},
	}}
	ts := httptest.NewServer(newDevKBS(t, func(c *devkbs.Config) { c.Policy = &pol }))
	defer ts.Close()
	upload(t, ts.URL, "default/secret/a", secret)
	upload(t, ts.URL, "other/repo/b", secret)
	upload(t, ts.URL, "default/open/c", secret)
	c := sampleClient(t, ts.URL, nil)
	for _, id := range []string{"default/secret/a", "other/repo/b"} {
		_, tm, err := c.Resource(ctxWithin(t, 10*time.Second), mustID(t, id))
		require.ErrorIs(t, err, kbsclient.ErrPolicyDenied, id)
		assert.Equal(t, 1, tm.Attempts, "policy deny must fail fast")
	}
	got, _, err := c.Resource(ctxWithin(t, 10*time.Second), mustID(t, "default/open/c"))
	require.NoError(t, err)
	assert.Equal(t, secret, got)
}

func TestLoopbackKBSDownThenUp(t *testing.T) {
	srv := newDevKBS(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens: connection refused

	attempted := make(chan struct{})
	var once sync.Once
	watch := kbsclient.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	ev, err := evidence.New(evidence.Config{TEE: "sample", AllowInsecureSampleTEE: true})
	require.NoError(t, err)
	c, err := kbsclient.NewKBS(kbsclient.KBSConfig{
		URL: "http://" + addr, Evidence: ev, AllowInsecureSampleTEE: true, Backoff: watch, Logger: quiet,
		HTTPClient: &http.Client{Transport: notifyTransport{base: http.DefaultTransport, fn: func() { once.Do(func() { close(attempted) }) }}},
	})
	require.NoError(t, err)

	type result struct {
		data []byte
		tm   kbsclient.Timings
		err  error
	}
	done := make(chan result, 1)
	go func() {
		d, tm, err := c.Resource(ctxWithin(t, 30*time.Second), mustID(t, "default/k/late"))
		done <- result{d, tm, err}
	}()
	<-attempted // the client has hit a dead KBS at least once
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("could not re-listen on %s: %v", addr, err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln2)
	defer hs.Close()
	upload(t, "http://"+addr, "default/k/late", secret)

	r := <-done
	require.NoError(t, r.err)
	assert.Equal(t, secret, r.data)
	assert.Greater(t, r.tm.Attempts, 1)
}

// notifyTransport calls fn after every request that failed or was not
// answered with 200 (the KBS was down or the resource missing).
type notifyTransport struct {
	base http.RoundTripper
	fn   func()
}

func (n notifyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := n.base.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusOK {
		n.fn()
	}
	return resp, err
}

func TestLoopbackKBSNeverUpHitsDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	c := sampleClient(t, "http://"+addr, nil)
	_, tm, err := c.Resource(ctxWithin(t, 300*time.Millisecond), mustID(t, "default/k/x"))
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "gave up")
	assert.Contains(t, err.Error(), "connection refused")
	assert.Greater(t, tm.Attempts, 1)
}

func TestLoopbackResourceUploadedLater(t *testing.T) {
	ts := httptest.NewServer(newDevKBS(t, nil))
	defer ts.Close()
	attempted := make(chan struct{})
	var once sync.Once
	c := sampleClient(t, ts.URL, func(c *kbsclient.KBSConfig) {
		c.HTTPClient = &http.Client{Transport: notifyTransport{base: http.DefaultTransport, fn: func() { once.Do(func() { close(attempted) }) }}}
	})
	done := make(chan error, 1)
	go func() {
		got, _, err := c.Resource(ctxWithin(t, 30*time.Second), mustID(t, "default/k/later"))
		if err == nil && !bytes.Equal(got, secret) {
			err = errors.New("wrong secret")
		}
		done <- err
	}()
	<-attempted
	upload(t, ts.URL, "default/k/later", secret)
	require.NoError(t, <-done)
}

func TestLoopbackWrongProtocolVersion(t *testing.T) {
	// A KBS pinned to another protocol version answers /auth like Trustee.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"type":"https://github.com/confidential-containers/kbs/errors/AttestationError","detail":"Attestation error: RCAR handshake Auth failed: KBS Client Protocol Version Mismatch: expect =0.5.0 while the request is 0.4.0"}`)
	}))
	defer ts.Close()
	c := sampleClient(t, ts.URL, nil)
	_, tm, err := c.Resource(ctxWithin(t, 10*time.Second), mustID(t, "default/k/x"))
	require.ErrorIs(t, err, kbsclient.ErrVersionMismatch)
	assert.NotErrorIs(t, err, kbsclient.ErrPolicyDenied)
	assert.Contains(t, err.Error(), "expect =0.5.0")
	assert.Equal(t, 1, tm.Attempts)
	var se *protocol.ServerError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "AttestationError", se.Variant())
}

func TestLoopbackExpiredSessionIsRenewed(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	ts := httptest.NewServer(newDevKBS(t, func(c *devkbs.Config) { c.Now = clock.Now; c.SessionTTL = time.Minute }))
	defer ts.Close()
	upload(t, ts.URL, "default/k/s", secret)
	var auths countingTransport
	auths.base = http.DefaultTransport
	c := sampleClient(t, ts.URL, func(c *kbsclient.KBSConfig) { c.HTTPClient = &http.Client{Transport: &auths} })
	_, _, err := c.Resource(ctxWithin(t, 10*time.Second), mustID(t, "default/k/s"))
	require.NoError(t, err)
	_, _, err = c.Resource(ctxWithin(t, 10*time.Second), mustID(t, "default/k/s"))
	require.NoError(t, err)
	assert.Equal(t, 1, auths.count(protocol.PathAuth), "a live session is reused")

	clock.Advance(2 * time.Minute)
	got, tm, err := c.Resource(ctxWithin(t, 10*time.Second), mustID(t, "default/k/s"))
	require.NoError(t, err)
	assert.Equal(t, secret, got)
	assert.Equal(t, 1, tm.Attempts)
	assert.Equal(t, 2, auths.count(protocol.PathAuth), "an expired session is replaced by a new handshake")
}

func TestLoopbackSessionExpiresDuringHandshake(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	ts := httptest.NewServer(newDevKBS(t, func(c *devkbs.Config) { c.Now = clock.Now; c.SessionTTL = time.Minute }))
	defer ts.Close()
	upload(t, ts.URL, "default/k/s", secret)
	slow := slowEvidence{clock: clock, step: 2 * time.Minute}
	c := sampleClient(t, ts.URL, func(c *kbsclient.KBSConfig) { c.Evidence = slow })
	_, tm, err := c.Resource(ctxWithin(t, 300*time.Millisecond), mustID(t, "default/k/s"))
	require.ErrorIs(t, err, kbsclient.ErrSessionExpired)
	assert.Contains(t, err.Error(), "session expired")
	assert.Greater(t, tm.Attempts, 1, "an expired session is retried with a fresh handshake")
}

// slowEvidence is sample evidence whose collection outlives the session.
type slowEvidence struct {
	clock *fakeClock
	step  time.Duration
}

func (s slowEvidence) TEE() string { return "sample" }
func (s slowEvidence) Evidence(ctx context.Context, d []byte) (json.RawMessage, error) {
	s.clock.Advance(s.step)
	ev, err := evidence.New(evidence.Config{TEE: "sample", AllowInsecureSampleTEE: true})
	if err != nil {
		return nil, err
	}
	return ev.Evidence(ctx, d)
}

type countingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[r.URL.Path]++
	c.mu.Unlock()
	return c.base.RoundTrip(r)
}

func (c *countingTransport) count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[path]
}

func TestLoopbackTamperedJWE(t *testing.T) {
	srv := newDevKBS(t, nil)
	tamper := func(jwe map[string]string) {
		ct := []byte(jwe["ciphertext"])
		if ct[0] == 'A' {
			ct[0] = 'B'
		} else {
			ct[0] = 'A'
		}
		jwe["ciphertext"] = string(ct)
	}
	tests := []struct {
		name   string
		mangle func(map[string]string)
	}{
		{"ciphertext", tamper},
		{"tag", func(j map[string]string) { j["tag"] = "AAAAAAAAAAAAAAAAAAAAAA" }},
		{"protected header", func(j map[string]string) { j["protected"] = j["protected"][:len(j["protected"])-2] + "fQ" }},
		{"encrypted key", func(j map[string]string) { j["encrypted_key"] = "A" + j["encrypted_key"][1:] }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, protocol.PathResource) {
					srv.ServeHTTP(w, r)
					return
				}
				rec := httptest.NewRecorder()
				srv.ServeHTTP(rec, r)
				var jwe map[string]string
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &jwe))
				tc.mangle(jwe)
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(jwe)
			}))
			defer ts.Close()
			upload(t, ts.URL, "default/k/t", secret)
			c := sampleClient(t, ts.URL, nil)
			got, tm, err := c.Resource(ctxWithin(t, 10*time.Second), mustID(t, "default/k/t"))
			require.ErrorIs(t, err, kbsclient.ErrDecrypt)
			assert.Nil(t, got)
			assert.Equal(t, 1, tm.Attempts)
		})
	}
}

func TestLoopbackSampleRefusedByServer(t *testing.T) {
	ts := httptest.NewServer(newDevKBS(t, func(c *devkbs.Config) { c.AllowInsecureSampleTEE = false }))
	defer ts.Close()
	c := sampleClient(t, ts.URL, nil)
	_, _, err := c.Resource(ctxWithin(t, 10*time.Second), mustID(t, "default/k/x"))
	require.ErrorIs(t, err, kbsclient.ErrAttestationFailed)
	assert.Contains(t, err.Error(), "insecure_allow_sample_tee")
}

func TestNewKBSRefusesTEEs(t *testing.T) {
	tests := []struct {
		name    string
		cfg     kbsclient.KBSConfig
		wantErr error
		wantMsg string
	}{
		{"sample without flag", kbsclient.KBSConfig{URL: "http://127.0.0.1:1", TEE: "sample"}, kbsclient.ErrInsecureTEE, "insecure_allow_sample_tee"},
		{"injected sample provider without flag", kbsclient.KBSConfig{URL: "http://127.0.0.1:1", TEE: "tdx", Evidence: slowEvidence{}}, kbsclient.ErrInsecureTEE, "insecure_allow_sample_tee"},
		{"azure vTPM", kbsclient.KBSConfig{URL: "http://127.0.0.1:1", TEE: "az-tdx-vtpm"}, kbsclient.ErrUnsupportedTEE, "--key_source cdh"},
		{"snp", kbsclient.KBSConfig{URL: "http://127.0.0.1:1", TEE: "snp"}, kbsclient.ErrUnsupportedTEE, "--key_source cdh"},
		{"unknown", kbsclient.KBSConfig{URL: "http://127.0.0.1:1", TEE: "banana"}, kbsclient.ErrUnsupportedTEE, "banana"},
		{"bad URL", kbsclient.KBSConfig{URL: "ftp://x", TEE: "tdx"}, nil, "want http(s)"},
		{"bad CA", kbsclient.KBSConfig{URL: "https://x:1", TEE: "tdx", CACertPEM: []byte("nope")}, nil, "no PEM certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kbsclient.NewKBS(tc.cfg)
			require.Error(t, err)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
			}
			assert.Contains(t, err.Error(), tc.wantMsg)
		})
	}
}
