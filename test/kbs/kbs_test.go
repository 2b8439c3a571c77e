// Package kbs tests the `veil kbs` command as the other tools use it: a
// subprocess on a free loopback port, /healthz readiness, `veil kbs upload`,
// then the kbsclient library fetching through RCAR.
package kbs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/kbsclient"
	"github.com/veil-ai/veil/test/e2e"
)

var quiet = slog.New(slog.DiscardHandler)

func veil(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(e2e.BinDir(t), "veil"), args...).CombinedOutput()
	return string(out), err
}

func fetch(t *testing.T, cfg kbsclient.KBSConfig, id string) ([]byte, error) {
	t.Helper()
	cfg.TEE, cfg.AllowInsecureSampleTEE, cfg.Logger = "sample", true, quiet
	c, err := kbsclient.NewKBS(cfg)
	require.NoError(t, err)
	rid, err := kbsclient.ParseResourceID(id)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, _, err := c.Resource(ctx, rid)
	return b, err
}

func TestServeUploadFetch(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "admin-token")
	url := fmt.Sprintf("http://127.0.0.1:%d", e2e.FreePort(t))
	p := e2e.Start(t, "veil", nil, "kbs", "serve", "--addr", strings.TrimPrefix(url, "http://"),
		"--admin_token_file", token, "--session_ttl", "1m", "--insecure_allow_sample_tee")
	e2e.WaitHTTP(t, p, url+"/healthz", 20*time.Second)

	key := make([]byte, 32)
	_, err := rand.Read(key)
	require.NoError(t, err)
	keyFile := filepath.Join(dir, "key.bin")
	require.NoError(t, os.WriteFile(keyFile, key, 0o600))
	out, err := veil(t, "kbs", "upload", "--kbs_url", url, "--admin_token_file", token,
		"--resource_id", "kbs:///default/model-keys/fraud", "--in", keyFile)
	require.NoError(t, err, out)

	got, err := fetch(t, kbsclient.KBSConfig{URL: url}, "kbs:///default/model-keys/fraud")
	require.NoError(t, err)
	assert.Equal(t, key, got)

	require.NoError(t, p.Stop(10*time.Second), "SIGTERM is a clean shutdown")
	assert.Contains(t, p.Output(), "DEVELOPMENT ONLY")
	assert.NotContains(t, p.Output(), string(key))
}

func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, caPEM := selfSigned(t, dir)
	token := filepath.Join(dir, "admin-token")
	require.NoError(t, os.WriteFile(token, []byte("tls-admin-token\n"), 0o600))
	addr := fmt.Sprintf("127.0.0.1:%d", e2e.FreePort(t))
	url := "https://" + addr
	p := e2e.Start(t, "veil", nil, "kbs", "serve", "--addr", addr, "--admin_token_file", token,
		"--tls_cert", certFile, "--tls_key", keyFile, "--insecure_allow_sample_tee")
	waitTLS(t, p, url+"/healthz", caPEM)

	secretFile := filepath.Join(dir, "s")
	require.NoError(t, os.WriteFile(secretFile, []byte("tls secret"), 0o600))
	out, err := veil(t, "kbs", "upload", "--kbs_url", url, "--admin_token_file", token,
		"--resource_id", "default/k/tls", "--in", secretFile, "--kbs_cert", filepath.Join(dir, "ca.pem"))
	require.NoError(t, err, out)
	out, err = veil(t, "kbs", "upload", "--kbs_url", url, "--admin_token_file", token,
		"--resource_id", "default/k/tls", "--in", secretFile)
	require.Error(t, err, "without --kbs_cert the self-signed KBS is not trusted")
	assert.Contains(t, out, "certificate")

	got, err := fetch(t, kbsclient.KBSConfig{URL: url, CACertPEM: caPEM}, "default/k/tls")
	require.NoError(t, err)
	assert.Equal(t, "tls secret", string(got))
}

func waitTLS(t *testing.T, p *e2e.Process, url string, caPEM []byte) {
	t.Helper()
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	e2e.WaitHTTPWith(t, c, p, url, 20*time.Second)
}

// selfSigned writes a loopback server certificate that is its own CA.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, caPEM []byte) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "veil dev kbs"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	require.NoError(t, err)
	caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(priv)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, caPEM, 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile, caPEM
}
