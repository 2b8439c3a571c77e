package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/internal/syncbuf"
)

// startKBS runs `veil kbs serve` in-process on a free loopback port and
// returns its URL.
func startKBS(t *testing.T, args ...string) (string, *syncbuf.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	logs := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- runKBS(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), pw, logs)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
			go io.Copy(io.Discard, pr)
			return u, logs
		}
	}
	t.Fatalf("veil kbs serve did not start: %s", logs.String())
	return "", nil
}

func TestKBSServeUploadGet(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin-token")
	url, logs := startKBS(t, "--admin_token_file", tokenFile, "--insecure_allow_sample_tee")

	st, err := os.Stat(tokenFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "a created admin token is private")

	key := []byte("0123456789abcdef0123456789abcdef")
	keyFile := filepath.Join(dir, "key.bin")
	require.NoError(t, os.WriteFile(keyFile, key, 0o600))

	var out strings.Builder
	require.NoError(t, runKBS(context.Background(), []string{"upload", "--kbs_url", url, "--admin_token_file", tokenFile,
		"--resource_id", "kbs:///default/model-keys/fraud", "--in", keyFile}, &out, io.Discard))
	assert.Contains(t, out.String(), "uploaded 32 bytes")

	out.Reset()
	require.NoError(t, runKBS(context.Background(), []string{"get", "--kbs_url", url, "--resource_id", "default/model-keys/fraud",
		"--tee", "sample", "--insecure_allow_sample_tee"}, &out, io.Discard))
	sum := sha256.Sum256(key)
	assert.Contains(t, out.String(), hex.EncodeToString(sum[:]))
	assert.NotContains(t, out.String(), string(key), "get never prints the resource")
	assert.NotContains(t, logs.String(), string(key), "the KBS never logs the resource")
	assert.Contains(t, logs.String(), "DEVELOPMENT ONLY")

	err = runKBS(context.Background(), []string{"get", "--kbs_url", url, "--resource_id", "default/model-keys/fraud", "--tee", "sample", "--timeout", "5s"}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "--insecure_allow_sample_tee")

	wrongToken := filepath.Join(dir, "wrong")
	require.NoError(t, os.WriteFile(wrongToken, []byte("nope\n"), 0o600))
	err = runKBS(context.Background(), []string{"upload", "--kbs_url", url, "--admin_token_file", wrongToken,
		"--resource_id", "default/model-keys/x", "--in", keyFile}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "admin")
}

func TestKBSServePolicyFile(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "tok")
	require.NoError(t, os.WriteFile(tokenFile, []byte("given-token\n"), 0o600))
	policy := filepath.Join(dir, "policy.json")
	require.NoError(t, os.WriteFile(policy, []byte(`{"rules":[{"effect":"allow","path":"default/open/*","tees":["sample"]}]}`), 0o600))
	url, _ := startKBS(t, "--admin_token_file", tokenFile, "--policy", policy, "--insecure_allow_sample_tee", "--session_ttl", "1m")
	keyFile := filepath.Join(dir, "k")
	require.NoError(t, os.WriteFile(keyFile, []byte("k"), 0o600))
	for _, id := range []string{"default/open/a", "default/closed/a"} {
		require.NoError(t, runKBS(context.Background(), []string{"upload", "--kbs_url", url, "--admin_token_file", tokenFile, "--resource_id", id, "--in", keyFile}, io.Discard, io.Discard))
	}
	get := func(id string) error {
		return runKBS(context.Background(), []string{"get", "--kbs_url", url, "--resource_id", id, "--tee", "sample", "--insecure_allow_sample_tee", "--timeout", "5s"}, io.Discard, io.Discard)
	}
	assert.NoError(t, get("default/open/a"))
	assert.ErrorContains(t, get("default/closed/a"), "denied by KBS resource policy")
}

func TestKBSFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", nil, "missing subcommand"},
		{"unknown subcommand", []string{"frobnicate"}, "unknown subcommand"},
		{"serve without token file", []string{"serve"}, "--admin_token_file is required"},
		{"serve on all interfaces without TLS", []string{"serve", "--addr", "0.0.0.0:0", "--admin_token_file", "TOKEN"}, "not loopback"},
		{"serve with bad policy", []string{"serve", "--admin_token_file", "TOKEN", "--policy", "/nonexistent/policy.json"}, "read policy"},
		{"upload missing flags", []string{"upload", "--kbs_url", "http://127.0.0.1:1"}, "required"},
		{"upload bad id", []string{"upload", "--kbs_url", "http://127.0.0.1:1", "--admin_token_file", "TOKEN", "--resource_id", "a/b", "--in", "TOKEN"}, "three segments"},
		{"get unsupported tee", []string{"get", "--kbs_url", "http://127.0.0.1:1", "--resource_id", "a/b/c", "--tee", "az-tdx-vtpm"}, "--key_source cdh"},
		{"get bad key source", []string{"get", "--resource_id", "a/b/c", "--key_source", "vault"}, "want kbs or cdh"},
	}
	tokenFile := filepath.Join(t.TempDir(), "tok")
	require.NoError(t, os.WriteFile(tokenFile, []byte("t"), 0o600))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.ReplaceAll(a, "TOKEN", tokenFile)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := runKBS(ctx, args, io.Discard, io.Discard)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestLoadOrCreateToken(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "tok")
	tok, created, err := loadOrCreateToken(p)
	require.NoError(t, err)
	assert.True(t, created)
	assert.GreaterOrEqual(t, len(tok), 40)
	again, created, err := loadOrCreateToken(p)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, tok, again, "an existing token is reused, never overwritten")

	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	_, _, err = loadOrCreateToken(empty)
	assert.ErrorContains(t, err, "empty")
}

func TestKBSHelpSaysDevelopmentOnly(t *testing.T) {
	var out strings.Builder
	require.NoError(t, runKBS(context.Background(), []string{"--help"}, &out, io.Discard))
	assert.Contains(t, out.String(), "DEVELOPMENT ONLY")
	var errOut strings.Builder
	err := runKBS(context.Background(), []string{"serve", "-h"}, io.Discard, &errOut)
	assert.Error(t, err)
	assert.Contains(t, errOut.String(), "DEVELOPMENT ONLY")
	assert.Contains(t, errOut.String(), "insecure_allow_sample_tee")
}
