package main

import (
	"bytes"
	"context"
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEnvDefaults(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		wantCount int
		wantLat   time.Duration
		wantErr   string
	}{
		{"flag defaults", nil, nil, 20000, 5 * time.Millisecond, ""},
		{"env sets", map[string]string{"VEIL_RUN_COUNT": "500", "VEIL_RUN_MAX_LATENCY": "2ms"}, nil, 500, 2 * time.Millisecond, ""},
		{"command line wins", map[string]string{"VEIL_RUN_COUNT": "500"}, []string{"--count", "7"}, 7, 5 * time.Millisecond, ""},
		{"bad env value", map[string]string{"VEIL_RUN_COUNT": "many"}, nil, 0, 0, "VEIL_RUN_COUNT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			count := fs.Int("count", 20000, "")
			lat := fs.Duration("max_latency", 5*time.Millisecond, "")
			err := envDefaults(fs, func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.NoError(t, fs.Parse(tt.args))
			assert.Equal(t, tt.wantCount, *count)
			assert.Equal(t, tt.wantLat, *lat)
		})
	}
}

func TestRunPipelineRejectsBadFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--count", "0"}, "count 0"},
		{[]string{"--protocol", "carrier-pigeon"}, "protocol"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"--count", "1"}, "not found"}, // an empty --bin_dir

	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		err := runPipeline(context.Background(), append(tt.args, "--bin_dir", t.TempDir()), &out, &errb)
		require.Error(t, err, tt.args)
		assert.Contains(t, err.Error(), tt.wantErr)
	}
}
