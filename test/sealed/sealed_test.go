package sealed

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/models"
	"github.com/veil-ai/veil/test/e2e"
)

func freeAddr(t *testing.T) string {
	return "127.0.0.1:" + strconv.Itoa(e2e.FreePort(t))
}

// TestSealedModelThroughKBS is the main path: veil seal, the development
// KBS with the sample TEE, and the runtime attesting for its key.
func TestSealedModelThroughKBS(t *testing.T) {
	w := newWorld(t)
	key := w.seal(t)
	addr := freeAddr(t)
	w.startKBS(t, addr)
	w.upload(t, addr, w.keyFile)

	rt := w.startRuntime(t, kbsFlags(addr)...)
	e2e.WaitHTTP(t, rt.Process, rt.base+"/v2/health/ready", startTimeout)
	rt.requireCorrectScores(t)

	// The cold start is visible in the metrics and in exactly one log line.
	resp, err := http.Get(rt.base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	var metrics bytes.Buffer
	_, err = metrics.ReadFrom(resp.Body)
	require.NoError(t, err)
	for _, phase := range []string{"evidence", "attest", "fetch", "decrypt", "session", "total"} {
		assert.Contains(t, metrics.String(), `veil_coldstart_phase_seconds_count{phase="`+phase+`"} 1`)
	}
	assert.Equal(t, 1, strings.Count(rt.Output(), "cold start: sealed model loaded"), rt.Output())

	assertNoLeaks(t, key, []string{w.root}, w.allLogs(), w.keyFile)
}

// TestSealedModelThroughCDH fetches the key from a fake Confidential Data
// Hub, the production path inside a CoCo pod.
func TestSealedModelThroughCDH(t *testing.T) {
	w := newWorld(t)
	key := w.seal(t, "--alg", "dir")
	cdh := newFakeCDH(t, key)

	rt := w.startRuntime(t, "--key_source", "cdh", "--cdh_addr", cdh.URL)
	e2e.WaitHTTP(t, rt.Process, rt.base+"/v2/health/ready", startTimeout)
	rt.requireCorrectScores(t)
	assert.Equal(t, []string{"/cdh/resource/default/veil/fraud-model-key"}, cdh.requests())
	assertNoLeaks(t, key, []string{w.root}, w.allLogs(), w.keyFile)
}

// TestKBSDownThenUp: the runtime is live at once, not ready while the KBS
// is unreachable, and becomes ready once the KBS comes up with the key.
func TestKBSDownThenUp(t *testing.T) {
	w := newWorld(t)
	key := w.seal(t)
	addr := freeAddr(t) // nothing listens yet

	rt := w.startRuntime(t, append(kbsFlags(addr), "--key_deadline", "2m")...)
	e2e.WaitHTTP(t, rt.Process, rt.base+"/v2/health/live", startTimeout)
	require.Eventually(t, func() bool { return strings.Contains(rt.Output(), "retrying") }, startTimeout, 50*time.Millisecond,
		"the runtime should be retrying against the dead KBS")
	assert.Equal(t, http.StatusServiceUnavailable, status(rt.base+"/v2/health/ready"))

	w.startKBS(t, addr)
	w.upload(t, addr, w.keyFile)
	e2e.WaitHTTP(t, rt.Process, rt.base+"/v2/health/ready", startTimeout)
	rt.requireCorrectScores(t)
	assertNoLeaks(t, key, []string{w.root}, w.allLogs(), w.keyFile)
}

// TestFailuresServeNothing covers what must stop the model from being
// served: each gives a clear reason, a non-zero exit, never readiness, and
// leaves neither key nor plaintext behind.
func TestFailuresServeNothing(t *testing.T) {
	tests := []struct {
		name string
		// setup prepares the world and returns the runtime's key flags and
		// the key that must not leak.
		setup func(t *testing.T, w *world) ([]string, []byte)
		want  []string
	}{
		{
			name: "policy deny",
			setup: func(t *testing.T, w *world) ([]string, []byte) {
				key := w.seal(t)
				pol := filepath.Join(w.root, "policy.json")
				require.NoError(t, os.WriteFile(pol, []byte(`{"rules":[{"effect":"deny","path":"default/veil/*"}]}`), 0o600))
				addr := freeAddr(t)
				w.startKBS(t, addr, "--policy", pol)
				w.upload(t, addr, w.keyFile)
				return kbsFlags(addr), key
			},
			want: []string{"PolicyDeny", "will not be served"},
		},
		{
			name: "wrong key",
			setup: func(t *testing.T, w *world) ([]string, []byte) {
				key := w.seal(t)
				wrong := filepath.Join(w.root, "wrong.bin")
				require.NoError(t, os.WriteFile(wrong, bytes.Repeat([]byte{0x5a}, 32), 0o600))
				addr := freeAddr(t)
				w.startKBS(t, addr)
				w.upload(t, addr, wrong)
				return kbsFlags(addr), key
			},
			want: []string{"wrong key or tampered", "will not be served"},
		},
		{
			name: "tampered ciphertext",
			setup: func(t *testing.T, w *world) ([]string, []byte) {
				key := w.seal(t)
				tamper(t, filepath.Join(w.sealed, "1", "model.onnx.jwe"), 3)
				addr := freeAddr(t)
				w.startKBS(t, addr)
				w.upload(t, addr, w.keyFile)
				return kbsFlags(addr), key
			},
			want: []string{"wrong key or tampered"},
		},
		{
			name: "tampered tag",
			setup: func(t *testing.T, w *world) ([]string, []byte) {
				key := w.seal(t, "--alg", "dir")
				tamper(t, filepath.Join(w.sealed, "1", "model.onnx.jwe"), 4)
				cdh := newFakeCDH(t, key)
				return []string{"--key_source", "cdh", "--cdh_addr", cdh.URL}, key
			},
			want: []string{"wrong key or tampered"},
		},
		{
			name: "wrong protocol version",
			setup: func(t *testing.T, w *world) ([]string, []byte) {
				key := w.seal(t)
				// A KBS that speaks another protocol answers /auth like
				// Trustee does when the versions differ.
				old := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
					rw.Header().Set("Content-Type", "application/json")
					rw.WriteHeader(http.StatusUnauthorized)
					_, _ = fmt.Fprint(rw, `{"type":"https://github.com/confidential-containers/kbs/errors/AttestationError","detail":"Attestation error: RCAR handshake Auth failed: KBS Client Protocol Version Mismatch: expect =0.2.0 while the request is 0.4.0"}`)
				}))
				t.Cleanup(old.Close)
				return kbsFlags(strings.TrimPrefix(old.URL, "http://")), key
			},
			want: []string{"version mismatch"},
		},
		{
			name: "expired session",
			setup: func(t *testing.T, w *world) ([]string, []byte) {
				key := w.seal(t)
				addr := freeAddr(t)
				w.startKBS(t, addr, "--session_ttl", "1ns")
				w.upload(t, addr, w.keyFile)
				return append(kbsFlags(addr), "--key_deadline", "3s"), key
			},
			want: []string{"expired", "will not be served"},
		},
		{
			name: "sample TEE without the insecure flag",
			setup: func(t *testing.T, w *world) ([]string, []byte) {
				key := w.seal(t)
				return []string{"--key_source", "kbs", "--kbs_url", "http://" + freeAddr(t), "--tee", "sample"}, key
			},
			want: []string{"--insecure_allow_sample_tee"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			flags, key := tt.setup(t, w)
			rt := w.startRuntime(t, flags...)
			out := rt.expectFailure(t, startTimeout)
			for _, s := range tt.want {
				assert.Contains(t, strings.ToLower(out), strings.ToLower(s))
			}
			assertNoLeaks(t, key, []string{w.root}, w.allLogs(), w.keyFile)
		})
	}
}

// TestSealedModelWithoutKeySource: a sealed model and no resource id is a
// configuration error, not a silent fallback.
func TestSealedModelWithoutKeySource(t *testing.T) {
	w := newWorld(t)
	w.seal(t)
	port := e2e.FreePort(t)
	p := e2e.Start(t, "veil-runtime", append(w.env(), "CONFIDENTIAL_RESOURCE_ID="),
		"--model_dir", w.sealed, "--model_name", modelName, "--http_port", strconv.Itoa(port), "--grpc_port", strconv.Itoa(e2e.FreePort(t)))
	rt := runtimeProc{Process: p, base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	out := rt.expectFailure(t, startTimeout)
	assert.Contains(t, out, "CONFIDENTIAL_RESOURCE_ID")
}

// tamper flips one bit in the middle of a compact JWE part (3 ciphertext,
// 4 tag), keeping it valid base64url.
func tamper(t *testing.T, path string, part int) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	parts := strings.Split(strings.TrimSpace(string(data)), ".")
	require.Len(t, parts, 5)
	raw, err := base64.RawURLEncoding.DecodeString(parts[part])
	require.NoError(t, err)
	raw[len(raw)/2] ^= 0x01
	parts[part] = base64.RawURLEncoding.EncodeToString(raw)
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(parts, ".")), 0o644))
}

// TestInteropGoJOSE serves a model sealed directly with go-jose (dir +
// A128GCM), not by veil seal, with the key released as an oct JWK.
func TestInteropGoJOSE(t *testing.T) {
	w := newWorld(t)
	key := []byte{0x8f, 0x21, 0xc4, 0x07, 0x5e, 0xb3, 0x9a, 0x60, 0x1d, 0xf2, 0x48, 0x9c, 0x33, 0xe7, 0x05, 0xaa}
	enc, err := jose.NewEncrypter(jose.A128GCM, jose.Recipient{Algorithm: jose.DIRECT, Key: key},
		(&jose.EncrypterOptions{}).WithContentType("application/octet-stream"))
	require.NoError(t, err)
	obj, err := enc.Encrypt(models.FraudONNX)
	require.NoError(t, err)
	compact, err := obj.CompactSerialize()
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(w.sealed, "1"), 0o755))
	// KServe names the file freely; content decides. Use the plain name.
	require.NoError(t, os.WriteFile(filepath.Join(w.sealed, "1", "model.onnx"), []byte(compact), 0o644))
	jwk, err := json.Marshal(jose.JSONWebKey{Key: key})
	require.NoError(t, err)
	cdh := newFakeCDH(t, jwk)

	rt := w.startRuntime(t, "--key_source", "cdh", "--cdh_addr", cdh.URL)
	e2e.WaitHTTP(t, rt.Process, rt.base+"/v2/health/ready", startTimeout)
	rt.requireCorrectScores(t)
	assertNoLeaks(t, key, []string{w.root}, w.allLogs())
}

// TestInteropOpenSSL serves a model encrypted the way the CoCo demo scripts
// do it: openssl enc -aes-256-cbc -pbkdf2 -kfile.
func TestInteropOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed: skipping the openssl interop test (apt-get install openssl to run it)")
	}
	w := newWorld(t)
	// The plaintext source lives outside the world so the leak scan can
	// cover everything the runtime could have touched.
	src := filepath.Join(t.TempDir(), "model.onnx")
	require.NoError(t, os.WriteFile(src, models.FraudONNX, 0o600))
	kfile := filepath.Join(w.root, "key.txt")
	pass := []byte("veil-interop-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "\n")
	require.NoError(t, os.WriteFile(kfile, pass, 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(w.sealed, "1"), 0o755))
	out, err := exec.Command(openssl, "enc", "-aes-256-cbc", "-pbkdf2", "-kfile", kfile,
		"-in", src, "-out", filepath.Join(w.sealed, "1", "model.onnx.enc")).CombinedOutput()
	require.NoError(t, err, string(out))
	require.NoError(t, os.Remove(src))
	cdh := newFakeCDH(t, pass)

	rt := w.startRuntime(t, "--key_source", "cdh", "--cdh_addr", cdh.URL)
	e2e.WaitHTTP(t, rt.Process, rt.base+"/v2/health/ready", startTimeout)
	rt.requireCorrectScores(t)
	assertNoLeaks(t, bytes.TrimSpace(pass), []string{w.root}, w.allLogs(), kfile)
}

// TestSealedModelThroughKBSOverTLS is the production shape of the direct
// path: an HTTPS KBS whose certificate the runtime checks against
// --kbs_cert.
func TestSealedModelThroughKBSOverTLS(t *testing.T) {
	w := newWorld(t)
	key := w.seal(t)
	certFile, keyFile, _ := e2e.SelfSignedCert(t, w.root)
	addr := freeAddr(t)
	p := e2e.Start(t, "veil", w.env(), "kbs", "serve", "--addr", addr, "--admin_token_file", w.tokenFile,
		"--insecure_allow_sample_tee", "--tls_cert", certFile, "--tls_key", keyFile)
	w.logs = append(w.logs, p)
	require.Eventually(t, func() bool { return strings.Contains(p.Output(), "listening on https://") }, startTimeout, 20*time.Millisecond, p.Output())
	out, err := run(t, "veil", "kbs", "upload", "--kbs_url", "https://"+addr, "--kbs_cert", certFile,
		"--admin_token_file", w.tokenFile, "--resource_id", resourceID, "--in", w.keyFile)
	require.NoError(t, err, out)

	rt := w.startRuntime(t, "--key_source", "kbs", "--kbs_url", "https://"+addr, "--kbs_cert", certFile,
		"--tee", "sample", "--insecure_allow_sample_tee")
	e2e.WaitHTTP(t, rt.Process, rt.base+"/v2/health/ready", startTimeout)
	rt.requireCorrectScores(t)

	// Without the CA the runtime must refuse the KBS, not fall back.
	other := w.startRuntime(t, "--key_source", "kbs", "--kbs_url", "https://"+addr,
		"--tee", "sample", "--insecure_allow_sample_tee", "--key_deadline", "5s")
	assert.Contains(t, other.expectFailure(t, startTimeout), "certificate")
	assertNoLeaks(t, key, []string{w.root}, w.allLogs(), w.keyFile)
}
