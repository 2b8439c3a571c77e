package functions

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/veil-ai/veil/oip/client"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, cfgAddr, runtime string, p client.Protocol, batch int, latency time.Duration, sink, source string)
	}{
		{name: "defaults from platform env", env: map[string]string{"PORT": "9090", "VEIL_RUNTIME_URL": "http://rt:9000", "K_SINK": "http://sink", "K_SERVICE": "fraud"},
			check: func(t *testing.T, addr, rt string, p client.Protocol, batch int, lat time.Duration, sink, source string) {
				assert.Equal(t, ":9090", addr)
				assert.Equal(t, "http://rt:9000", rt)
				assert.Equal(t, client.GRPCRaw, p)
				assert.Equal(t, 64, batch)
				assert.Equal(t, "http://sink", sink)
				assert.Equal(t, "urn:veil:batcher:fraud", source)
			}},
		{name: "flags win over env", args: []string{"--runtime", "http://a:1", "--protocol", "rest-binary", "--max_batch_size", "8", "--max_latency", "3ms"},
			env: map[string]string{"VEIL_RUNTIME_URL": "http://b:2", "VEIL_MAX_BATCH_SIZE": "99", "VEIL_MAX_LATENCY": "1s"},
			check: func(t *testing.T, addr, rt string, p client.Protocol, batch int, lat time.Duration, sink, source string) {
				assert.Equal(t, "http://a:1", rt)
				assert.Equal(t, client.RESTBinary, p)
				assert.Equal(t, 8, batch)
				assert.Equal(t, 3*time.Millisecond, lat)
			}},
		{name: "VEIL_ env", env: map[string]string{"VEIL_MAX_BATCH_SIZE": "16"},
			check: func(t *testing.T, addr, rt string, p client.Protocol, batch int, lat time.Duration, sink, source string) {
				assert.Equal(t, 16, batch)
			}},
		{name: "bad protocol", args: []string{"--protocol", "soap"}, wantErr: "unknown OIP protocol"},
		{name: "bad env", env: map[string]string{"VEIL_MAX_BATCH_SIZE": "many"}, wantErr: "VEIL_MAX_BATCH_SIZE"},
		{name: "missing scaler", args: []string{"--scaler", "/nonexistent.json"}, wantErr: "--scaler"},
		{name: "stray args", args: []string{"extra"}, wantErr: "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseFlags(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, cfg.ListenAddress, cfg.RuntimeURL, cfg.Protocol, cfg.Batch.MaxBatchSize, cfg.Batch.MaxLatency, cfg.SinkURL, cfg.Receiver.Source)
		})
	}
}
