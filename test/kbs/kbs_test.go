// Package kbs tests the `veil kbs` command as the other tools use it: a
// subprocess on a free loopback port, /healthz readiness, `veil kbs upload`,
// then the kbsclient library fetching through RCAR.
package kbs

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
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
	certFile, keyFile, caPEM := e2e.SelfSignedCert(t, dir)
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
		"--resource_id", "default/k/tls", "--in", secretFile, "--kbs_cert", certFile)
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
