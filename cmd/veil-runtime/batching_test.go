package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/oip"
	"github.com/veil-ai/veil/runtime/batch"
	"github.com/veil-ai/veil/runtime/server"
)

func TestBatchFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr bool
	}{
		{name: "defaults"},
		{name: "set", args: []string{"--max_batch_size=8", "--max_batch_time=250us"}},
		{name: "off", args: []string{"--max_batch_size=1"}},
		{name: "negative size", args: []string{"--max_batch_size=-1"}, wantErr: true},
		{name: "negative time", args: []string{"--max_batch_time=-1ms"}, wantErr: true},
		{name: "not a duration", args: []string{"--max_batch_time=soon"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseFlags(tt.args)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, cfg.Registry, "batch metrics need the registry /metrics serves")
			require.NotNil(t, cfg.NewEngine)
			eng, err := cfg.NewEngine(echoModel{})
			require.NoError(t, err)
			b, ok := eng.(*batch.Batcher)
			require.True(t, ok, "the model is wrapped in a batcher")
			defer b.Close()

			in := []oip.Tensor{{Name: "x", Datatype: oip.FP32, Shape: []int64{1, 1}, Raw: make([]byte, 4)}}
			out, err := b.Infer(context.Background(), in)
			require.NoError(t, err)
			assert.Equal(t, []int64{1, 1}, out[0].Shape)

			families, err := cfg.Registry.Gather()
			require.NoError(t, err)
			var names []string
			for _, f := range families {
				names = append(names, f.GetName())
			}
			assert.Contains(t, names, "veil_batch_size_rows")
		})
	}
}

// echoModel returns a copy of its first input as its only output.
type echoModel struct{}

func (echoModel) Infer(_ context.Context, in []oip.Tensor) ([]oip.Tensor, error) {
	out := in[0]
	out.Raw = append([]byte(nil), in[0].Raw...)
	return []oip.Tensor{out}, nil
}
func (echoModel) Inputs() []oip.TensorMetadata  { return nil }
func (echoModel) Outputs() []oip.TensorMetadata { return nil }
func (echoModel) Close() error                  { return nil }

var _ server.Model = echoModel{}
