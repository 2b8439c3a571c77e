package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/models"
	"github.com/veil-ai/veil/runtime/sealed"
)

func TestRunSeal(t *testing.T) {
	for _, alg := range []string{"A256KW", "dir"} {
		t.Run(alg, func(t *testing.T) {
			dir := t.TempDir()
			out, keyFile := filepath.Join(dir, "out"), filepath.Join(dir, "key.bin")
			var stdout, stderr bytes.Buffer
			err := runSeal(context.Background(), []string{"--out", out, "--key", keyFile, "--alg", alg, "--kbs_url", "http://127.0.0.1:8080"}, &stdout, &stderr)
			require.NoError(t, err, stderr.String())

			st, err := os.Stat(keyFile)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
			key, err := os.ReadFile(keyFile)
			require.NoError(t, err)
			require.Len(t, key, 32)

			data, err := os.ReadFile(filepath.Join(out, "1", "model.onnx.jwe"))
			require.NoError(t, err)
			plain, err := sealed.Open(data, key, sealed.OpenOptions{})
			require.NoError(t, err)
			assert.Equal(t, models.FraudONNX, plain)
			scaler, err := os.ReadFile(filepath.Join(out, "artifact", "scaler.json"))
			require.NoError(t, err)
			assert.Equal(t, models.FraudScalerJSON, scaler)

			s := stdout.String()
			assert.Contains(t, s, "set-resource --resource-file "+keyFile+" --path default/veil/fraud-model-key")
			assert.Contains(t, s, "veil kbs upload --kbs_url http://127.0.0.1:8080 --admin_token_file ADMIN_TOKEN_FILE --resource_id kbs:///default/veil/fraud-model-key --in "+keyFile)
			assert.NotContains(t, s, string(key))
		})
	}
}

func TestRunSealRefuses(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.bin")
	require.NoError(t, os.WriteFile(keyFile, []byte("old key"), 0o600))
	var stdout, stderr bytes.Buffer

	err := runSeal(context.Background(), []string{"--out", filepath.Join(dir, "o1"), "--key", keyFile}, &stdout, &stderr)
	require.ErrorContains(t, err, "refusing to overwrite")
	old, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	assert.Equal(t, "old key", string(old))

	err = runSeal(context.Background(), []string{"--out", filepath.Join(dir, "o2"), "--key", keyFile, "--force"}, &stdout, &stderr)
	require.NoError(t, err)
	renewed, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	assert.Len(t, renewed, 32)

	err = runSeal(context.Background(), []string{"--out", filepath.Join(dir, "o3"), "--key", filepath.Join(dir, "k3"), "--alg", "A128KW"}, &stdout, &stderr)
	require.ErrorContains(t, err, "want A256KW or dir")

	err = runSeal(context.Background(), []string{"--out", filepath.Join(dir, "o4"), "--key", filepath.Join(dir, "k4"), "--resource_id", "kbs://host/a/b/c"}, &stdout, &stderr)
	require.Error(t, err)

	// A failed seal leaves no key behind that could be mistaken for the real one.
	empty := t.TempDir()
	err = runSeal(context.Background(), []string{"--in", empty, "--out", filepath.Join(dir, "o5"), "--key", filepath.Join(dir, "k5")}, &stdout, &stderr)
	require.ErrorContains(t, err, "no model.onnx")
	_, err = os.Stat(filepath.Join(dir, "k5"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	err = runSeal(context.Background(), []string{"--key", filepath.Join(dir, "k6")}, &stdout, &stderr)
	require.ErrorContains(t, err, "required")
}
