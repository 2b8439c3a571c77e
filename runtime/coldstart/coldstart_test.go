package coldstart

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/internal/syncbuf"
	"github.com/veil-ai/veil/kbsclient"
	"github.com/veil-ai/veil/kbsclient/devkbs"
	"github.com/veil-ai/veil/kbsclient/protocol"
	"github.com/veil-ai/veil/models"
	"github.com/veil-ai/veil/runtime/sealed"
)

const resourceID = "kbs:///default/veil/fraud-model-key"

// fakeSource is a KeySource with a canned answer; it hands out a copy of
// key each call so the test can check the caller wiped what it got.
type fakeSource struct {
	key    []byte
	err    error
	mu     sync.Mutex
	handed [][]byte
}

func (f *fakeSource) Resource(ctx context.Context, id kbsclient.ResourceID) ([]byte, kbsclient.Timings, error) {
	t := kbsclient.Timings{Evidence: time.Millisecond, Attest: 2 * time.Millisecond, Fetch: 3 * time.Millisecond, Attempts: 1}
	if f.err != nil {
		return nil, t, f.err
	}
	k := bytes.Clone(f.key)
	f.mu.Lock()
	f.handed = append(f.handed, k)
	f.mu.Unlock()
	return k, t, nil
}

type harness struct {
	cs  *ColdStart
	reg *prometheus.Registry
	log *syncbuf.Buffer
}

func newHarness(t *testing.T, cfg Config, src kbsclient.KeySource) harness {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	lb := &syncbuf.Buffer{}
	if cfg.ResourceID == "" {
		cfg.ResourceID = resourceID
	}
	cs, err := New(cfg, Options{Metrics: m, Logger: slog.New(slog.NewTextHandler(lb, nil)), KeySource: src})
	require.NoError(t, err)
	return harness{cs: cs, reg: reg, log: lb}
}

func sealModel(t *testing.T, key []byte) []byte {
	t.Helper()
	s, err := sealed.SealJWE(models.FraudONNX, key, jose.A256KW, jose.A256GCM)
	require.NoError(t, err)
	return s
}

func newKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	for i := range k {
		k[i] = byte(i*7 + 3)
	}
	return k
}

func TestLoadJWE(t *testing.T) {
	key := newKey(t)
	src := &fakeSource{key: key}
	h := newHarness(t, Config{}, src)

	var got, passed []byte
	phases, err := h.cs.Load(context.Background(), sealModel(t, key), func(model []byte) error {
		got, passed = bytes.Clone(model), model
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, models.FraudONNX, got)
	assert.Equal(t, make([]byte, len(passed)), passed, "plaintext zeroed after the session was created")
	require.Len(t, src.handed, 1)
	assert.Equal(t, make([]byte, 32), src.handed[0], "released key zeroed")

	assert.Equal(t, 3*time.Millisecond, phases.Fetch)
	assert.Equal(t, 1, phases.KeyAttempts)
	assert.GreaterOrEqual(t, phases.Total, phases.Decrypt+phases.Session)

	lines := strings.Split(strings.TrimSpace(h.log.String()), "\n")
	require.Len(t, lines, 1, "exactly one cold-start log line")
	for _, k := range []string{"evidence_ms=1 ", "attest_ms=2 ", "fetch_ms=3 ", "decrypt_ms=", "session_ms=", "total_ms=", "resource_id=" + resourceID, "format=jwe"} {
		assert.Contains(t, lines[0], k)
	}
	assert.Equal(t, 1.0, testutil.ToFloat64(h.cs.metrics.results.WithLabelValues("ok")))
	n, err := testutil.GatherAndCount(h.reg, "veil_coldstart_phase_seconds")
	require.NoError(t, err)
	assert.Equal(t, 6, n, "one histogram per phase")
}

func TestLoadOpenSSL(t *testing.T) {
	kfile, err := os.ReadFile(filepath.Join("..", "sealed", "testdata", "kfile.txt"))
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join("..", "sealed", "testdata", "fraud-cbc.onnx.enc"))
	require.NoError(t, err)
	h := newHarness(t, Config{OpenSSLCipher: "aes-256-cbc"}, &fakeSource{key: kfile})
	var got []byte
	_, err = h.cs.Load(context.Background(), data, func(m []byte) error { got = bytes.Clone(m); return nil })
	require.NoError(t, err)
	assert.Equal(t, models.FraudONNX, got)
	assert.Contains(t, h.log.String(), "format=openssl")
}

func TestLoadFailures(t *testing.T) {
	key := newKey(t)
	good := sealModel(t, key)
	tampered := flipInPart(t, good, 4) // the GCM tag
	otherKey := bytes.Repeat([]byte{9}, 32)

	tests := []struct {
		name   string
		data   []byte
		src    *fakeSource
		want   error
		class  string
		substr string
	}{
		{"wrong key", good, &fakeSource{key: otherKey}, sealed.ErrDecrypt, "model_decrypt", "decrypt jwe model"},
		{"tampered tag", tampered, &fakeSource{key: key}, sealed.ErrDecrypt, "model_decrypt", "wrong key or tampered"},
		{"policy deny", good, &fakeSource{err: protocol.NewServerError(401, "PolicyDeny", "Access denied by policy")}, kbsclient.ErrPolicyDenied, "policy_denied", "PolicyDeny"},
		{"version mismatch", good, &fakeSource{err: protocol.NewServerError(401, "AttestationError", "KBS Client Protocol Version Mismatch: expect =0.2.0 while the request is 0.4.0")}, kbsclient.ErrVersionMismatch, "version_mismatch", "Version Mismatch"},
		{"deadline", good, &fakeSource{err: context.DeadlineExceeded}, context.DeadlineExceeded, "deadline", "release model key"},
		{"key not 32 bytes", good, &fakeSource{key: []byte("short")}, sealed.ErrBadKey, "bad_key", "unusable key"},
		{"plain model", models.FraudONNX, &fakeSource{key: key}, nil, "other", "not sealed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{}, tt.src)
			called := false
			_, err := h.cs.Load(context.Background(), tt.data, func([]byte) error { called = true; return nil })
			require.Error(t, err)
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
			}
			assert.Contains(t, err.Error(), tt.substr)
			assert.False(t, called, "nothing may be served")
			lines := strings.Split(strings.TrimSpace(h.log.String()), "\n")
			require.Len(t, lines, 1)
			assert.Contains(t, lines[0], "level=ERROR")
			assert.Contains(t, lines[0], "will not be served")
			assert.Equal(t, 1.0, testutil.ToFloat64(h.cs.metrics.results.WithLabelValues(tt.class)))
			for _, k := range tt.src.handed {
				assert.Equal(t, make([]byte, len(k)), k, "released key zeroed even on failure")
			}
		})
	}
}

// flipInPart flips one bit inside part i of a compact JWE, keeping the
// base64url valid so only authentication can catch it.
func flipInPart(t *testing.T, compact []byte, i int) []byte {
	t.Helper()
	parts := strings.Split(string(compact), ".")
	require.Len(t, parts, 5)
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	require.NoError(t, err)
	raw[len(raw)/2] ^= 0x01
	parts[i] = base64.RawURLEncoding.EncodeToString(raw)
	return []byte(strings.Join(parts, "."))
}

func TestLoadSessionFailure(t *testing.T) {
	key := newKey(t)
	h := newHarness(t, Config{}, &fakeSource{key: key})
	var passed []byte
	_, err := h.cs.Load(context.Background(), sealModel(t, key), func(m []byte) error {
		passed = m
		return errors.New("onnxruntime said no")
	})
	require.ErrorContains(t, err, "onnxruntime said no")
	assert.Equal(t, make([]byte, len(passed)), passed)
	assert.Contains(t, h.log.String(), "cold start failed")
}

func TestUnsealFinishOnce(t *testing.T) {
	key := newKey(t)
	h := newHarness(t, Config{}, &fakeSource{key: key})
	u, err := h.cs.Unseal(context.Background(), sealModel(t, key))
	require.NoError(t, err)
	require.NoError(t, u.Finish(5*time.Millisecond, nil))
	require.NoError(t, u.Finish(time.Second, nil))
	assert.Equal(t, 5*time.Millisecond, u.Phases.Session)
	assert.Nil(t, u.Model)
	assert.Equal(t, 1, strings.Count(h.log.String(), "cold start"))
}

// TestLoadThroughFakeCDH uses the real CDH client against a loopback CDH.
func TestLoadThroughFakeCDH(t *testing.T) {
	key := newKey(t)
	var paths []string
	var mu sync.Mutex
	cdh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		if r.URL.Path != "/cdh/resource/default/veil/fraud-model-key" {
			http.Error(w, "URL NOT FOUND", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(key)
	}))
	defer cdh.Close()
	h := newHarness(t, Config{KeySource: KeySourceCDH, CDHAddr: cdh.URL, Deadline: 10 * time.Second}, nil)
	var got []byte
	_, err := h.cs.Load(context.Background(), sealModel(t, key), func(m []byte) error { got = bytes.Clone(m); return nil })
	require.NoError(t, err)
	assert.Equal(t, models.FraudONNX, got)
	assert.Equal(t, []string{"/cdh/resource/default/veil/fraud-model-key"}, paths)
	assert.NotContains(t, h.log.String(), string(key))
}

func newDevKBS(t *testing.T, mutate func(*devkbs.Config)) *httptest.Server {
	t.Helper()
	cfg := devkbs.Config{AdminToken: []byte("admin"), AllowInsecureSampleTEE: true, Logger: slog.New(slog.DiscardHandler)}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := devkbs.New(cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { ts.Close(); srv.Close() })
	return ts
}

func uploadKey(t *testing.T, url string, key []byte) {
	t.Helper()
	admin, err := kbsclient.NewAdmin(kbsclient.AdminConfig{URL: url, Token: "admin"})
	require.NoError(t, err)
	id, err := kbsclient.ParseResourceID(resourceID)
	require.NoError(t, err)
	require.NoError(t, admin.Upload(context.Background(), id, key))
}

// TestLoadThroughDevKBS runs RCAR with the sample TEE against the
// development KBS, including the failures the KBS itself causes.
func TestLoadThroughDevKBS(t *testing.T) {
	key := newKey(t)
	kbsCfg := func(url string) Config {
		return Config{KeySource: KeySourceKBS, KBSURL: url, TEE: "sample", AllowInsecureSampleTEE: true, Deadline: 3 * time.Second}
	}

	t.Run("ok", func(t *testing.T) {
		ts := newDevKBS(t, nil)
		uploadKey(t, ts.URL, key)
		h := newHarness(t, kbsCfg(ts.URL), nil)
		var got []byte
		phases, err := h.cs.Load(context.Background(), sealModel(t, key), func(m []byte) error { got = bytes.Clone(m); return nil })
		require.NoError(t, err)
		assert.Equal(t, models.FraudONNX, got)
		assert.Positive(t, phases.Attest)
		assert.Contains(t, h.log.String(), "tee=sample")
	})
	t.Run("policy deny", func(t *testing.T) {
		pol := devkbs.Policy{Rules: []devkbs.Rule{{Effect: "deny", Path: "default/veil/*"}}}
		ts := newDevKBS(t, func(c *devkbs.Config) { c.Policy = &pol })
		uploadKey(t, ts.URL, key)
		h := newHarness(t, kbsCfg(ts.URL), nil)
		_, err := h.cs.Load(context.Background(), sealModel(t, key), func([]byte) error { t.Fatal("served"); return nil })
		require.ErrorIs(t, err, kbsclient.ErrPolicyDenied)
	})
	t.Run("wrong key in the KBS", func(t *testing.T) {
		ts := newDevKBS(t, nil)
		uploadKey(t, ts.URL, bytes.Repeat([]byte{1}, 32))
		h := newHarness(t, kbsCfg(ts.URL), nil)
		_, err := h.cs.Load(context.Background(), sealModel(t, key), func([]byte) error { t.Fatal("served"); return nil })
		require.ErrorIs(t, err, sealed.ErrDecrypt)
	})
	t.Run("KBS never up", func(t *testing.T) {
		ts := newDevKBS(t, nil)
		url := ts.URL
		ts.Close()
		cfg := kbsCfg(url)
		cfg.Deadline = 700 * time.Millisecond
		h := newHarness(t, cfg, nil)
		_, err := h.cs.Load(context.Background(), sealModel(t, key), func([]byte) error { t.Fatal("served"); return nil })
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), "connection refused")
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no resource id", Config{KeySource: "cdh"}, "no key configured"},
		{"bad resource id", Config{ResourceID: "kbs://host/a/b/c", KeySource: "cdh"}, "KBS host"},
		{"bad key source", Config{ResourceID: resourceID, KeySource: "vault"}, "want cdh or kbs"},
		{"kbs without url", Config{ResourceID: resourceID, KeySource: "kbs", TEE: "tdx"}, "--kbs_url is required"},
		{"sample refused", Config{ResourceID: resourceID, KeySource: "kbs", KBSURL: "http://127.0.0.1:1", TEE: "sample"}, "--insecure_allow_sample_tee"},
		{"bad cipher", Config{ResourceID: resourceID, KeySource: "cdh", OpenSSLCipher: "des"}, "openssl cipher"},
		{"negative deadline", Config{ResourceID: resourceID, KeySource: "cdh", Deadline: -time.Second}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorContains(t, tt.cfg.Validate(), tt.want)
			_, err := New(tt.cfg, Options{})
			require.ErrorContains(t, err, tt.want)
		})
	}
	require.NoError(t, Config{ResourceID: resourceID, KeySource: "kbs", KBSURL: "http://127.0.0.1:1", TEE: "sample", AllowInsecureSampleTEE: true}.Validate())
	_, err := New(Config{ResourceID: resourceID, KeySource: "kbs", KBSURL: "http://127.0.0.1:1", TEE: "tdx", KBSCert: "/nonexistent/ca.pem"}, Options{})
	require.ErrorContains(t, err, "KBS certificate")
}

func TestRegisterFlags(t *testing.T) {
	env := map[string]string{EnvResourceID: resourceID}
	var c Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.RegisterFlags(fs, func(k string) string { return env[k] })
	require.NoError(t, fs.Parse(nil))
	assert.Equal(t, resourceID, c.ResourceID, "default from the KServe variable")
	assert.Equal(t, KeySourceCDH, c.KeySource)
	assert.Equal(t, kbsclient.DefaultCDHAddr, c.CDHAddr)
	assert.Equal(t, DefaultDeadline, c.Deadline)
	assert.False(t, c.AllowInsecureSampleTEE)

	var c2 Config
	fs2 := flag.NewFlagSet("t", flag.ContinueOnError)
	c2.RegisterFlags(fs2, func(k string) string { return env[k] })
	require.NoError(t, fs2.Parse([]string{"--resource_id", "a/b/c", "--key_source", "kbs", "--kbs_url", "http://k", "--tee", "sample", "--insecure_allow_sample_tee", "--key_deadline", "3s"}))
	assert.Equal(t, Config{ResourceID: "a/b/c", KeySource: "kbs", CDHAddr: kbsclient.DefaultCDHAddr, KBSURL: "http://k", TEE: "sample", AllowInsecureSampleTEE: true, Deadline: 3 * time.Second, OpenSSLCipher: "auto"}, c2)
}

func TestNewMetricsTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := NewMetrics(reg)
	require.NoError(t, err)
	_, err = NewMetrics(reg)
	require.Error(t, err)
}
