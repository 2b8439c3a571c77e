package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/models"
	"github.com/veil-ai/veil/runtime/coldstart"
	"github.com/veil-ai/veil/runtime/onnx"
	"github.com/veil-ai/veil/runtime/server"
)

func TestSealedFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "no key configured"},
		{name: "cdh", args: []string{"--resource_id", "kbs:///default/veil/k"}},
		{name: "kbs sample allowed", args: []string{"--resource_id", "default/veil/k", "--key_source", "kbs", "--kbs_url", "http://127.0.0.1:1", "--tee", "sample", "--insecure_allow_sample_tee"}},
		{name: "sample refused", args: []string{"--resource_id", "default/veil/k", "--key_source", "kbs", "--kbs_url", "http://127.0.0.1:1", "--tee", "sample"}, wantErr: "--insecure_allow_sample_tee"},
		{name: "kbs needs url", args: []string{"--resource_id", "default/veil/k", "--key_source", "kbs"}, wantErr: "--kbs_url"},
		{name: "bad id", args: []string{"--resource_id", "only/two"}, wantErr: "three segments"},
		{name: "bad key source", args: []string{"--resource_id", "a/b/c", "--key_source", "vault"}, wantErr: "want cdh or kbs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CONFIDENTIAL_RESOURCE_ID", "")
			cfg, err := parseFlags(tt.args)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, cfg.Loader, "the sealed-aware loader is always installed")
		})
	}
}

func TestResourceIDFromEnv(t *testing.T) {
	t.Setenv("CONFIDENTIAL_RESOURCE_ID", "kbs:///default/veil/k")
	cfg, err := parseFlags(nil)
	require.NoError(t, err)
	require.NotNil(t, cfg.Registry, "cold-start metrics need the registry /metrics serves")
	t.Setenv("CONFIDENTIAL_RESOURCE_ID", "not-an-id")
	_, err = parseFlags(nil)
	require.Error(t, err)
}

func TestStopOnUnservable(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantStop bool
	}{
		{"unservable stops", errors.Join(errUnservable, errors.New("policy deny")), true},
		{"other failure stays unready", errors.New("model dir missing"), false},
		{"success", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stopped error
			l := stopOnUnservable(func(context.Context, *onnx.Env) (*server.LoadedModel, error) { return nil, tt.err },
				func(cause error) { stopped = cause })
			_, err := l(context.Background(), nil)
			assert.Equal(t, tt.err, err)
			assert.Equal(t, tt.wantStop, stopped != nil)
		})
	}
	assert.Nil(t, stopOnUnservable(nil, func(error) {}))
}

func TestSealedLoaderMismatches(t *testing.T) {
	sealedDir, plainDir := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(sealedDir, "model.onnx.jwe"), []byte("eyJhbGciOiJkaXIifQ...."), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(plainDir, "model.onnx"), models.FraudONNX, 0o600))
	cs, err := coldstart.New(coldstart.Config{ResourceID: "default/veil/k", KeySource: coldstart.KeySourceCDH}, coldstart.Options{})
	require.NoError(t, err)

	// A sealed model and no key configured.
	_, err = sealedAwareLoader(sealedDir, onnx.Options{}, nil)(context.Background(), nil)
	require.ErrorIs(t, err, errUnservable)
	assert.Contains(t, err.Error(), "CONFIDENTIAL_RESOURCE_ID")

	// A key configured and a plaintext model: never served as confidential.
	_, err = sealedAwareLoader(plainDir, onnx.Options{}, cs)(context.Background(), nil)
	require.ErrorIs(t, err, errUnservable)
	assert.Contains(t, err.Error(), "is not sealed")
}
