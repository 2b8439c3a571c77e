package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/kbsclient/initdata"
)

func TestInitdataBuildAndDecode(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.rego")
	require.NoError(t, os.WriteFile(policy, []byte("package agent_policy\ndefault ExecProcessRequest := false\n"), 0o600))
	tomlOut := filepath.Join(dir, "initdata.toml")

	var out, errOut bytes.Buffer
	err := runInitdata(context.Background(), []string{
		"--kbs_url", "https://kbs.example.com", "--policy", policy, "--toml_out", tomlOut,
	}, &out, &errOut)
	require.NoError(t, err, errOut.String())
	value := strings.TrimSpace(out.String())

	text, err := os.ReadFile(tomlOut)
	require.NoError(t, err)
	decoded, err := initdata.Decode(value)
	require.NoError(t, err)
	assert.Equal(t, text, decoded)
	digest, err := initdata.Digest(text, initdata.SHA256)
	require.NoError(t, err)
	pcr, err := initdata.AzurePCR8(digest)
	require.NoError(t, err)
	report := errOut.String()
	assert.Contains(t, report, initdata.AnnotationKey)
	assert.Contains(t, report, "sha256:")
	assert.Contains(t, report, "pcr8        "+hex.EncodeToString(pcr))

	var dout, derr bytes.Buffer
	require.NoError(t, runInitdataDecode([]string{"-"}, strings.NewReader(value+"\n"), &dout, &derr))
	assert.Equal(t, string(text), dout.String())
	assert.Equal(t, report, derr.String(), "decode reports the same digests as build")
}

func TestInitdataErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no url", nil, "KBS URL is required"},
		{"bad algorithm", []string{"--kbs_url", "https://k", "--algorithm", "md5"}, "unsupported algorithm"},
		{"missing cert", []string{"--kbs_url", "https://k", "--kbs_cert", "/nonexistent/cert.pem"}, "read KBS certificate"},
		{"stray args", []string{"--kbs_url", "https://k", "extra"}, "unexpected arguments"},
		{"decode arity", []string{"decode"}, "usage"},
		{"decode garbage", []string{"decode", "!!"}, "base64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := runInitdata(context.Background(), tc.args, &out, &errOut)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Empty(t, out.String())
		})
	}
}
