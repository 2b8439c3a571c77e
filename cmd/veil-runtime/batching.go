package main

import (
	"errors"
	"flag"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/veil-ai/veil/runtime/batch"
	"github.com/veil-ai/veil/runtime/server"
)

// batchFlags are the adaptive batcher's flags, under MLServer's names.
type batchFlags struct{ cfg batch.Config }

func addBatchFlags(fs *flag.FlagSet) *batchFlags {
	b := &batchFlags{}
	fs.IntVar(&b.cfg.MaxBatchSize, "max_batch_size", batch.DefaultMaxBatchSize,
		"most rows joined into one onnxruntime run from concurrent requests (1 turns batching off)")
	fs.DurationVar(&b.cfg.MaxBatchTime, "max_batch_time", batch.DefaultMaxBatchTime,
		"longest a request waits to be joined while the model is busy (0 turns batching off)")
	return b
}

// apply wraps the model in a batcher whose metrics are served with the
// server's own.
func (b *batchFlags) apply(cfg *server.Config, log *slog.Logger) error {
	if b.cfg.MaxBatchSize < 0 || b.cfg.MaxBatchTime < 0 {
		return errors.New("--max_batch_size and --max_batch_time must not be negative")
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	bc := b.cfg
	bc.Model, bc.Registerer, bc.Logger = cfg.ModelName, cfg.Registry, log
	cfg.NewEngine = func(m server.Model) (server.Engine, error) { return batch.New(bc, m) }
	return nil
}
