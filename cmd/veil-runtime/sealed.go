package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/veil-ai/veil/runtime/coldstart"
	"github.com/veil-ai/veil/runtime/onnx"
	"github.com/veil-ai/veil/runtime/server"
)

// errUnservable marks a load failure that must end the process (exit 1)
// rather than leave it running unready: a sealed model whose key was not
// released or did not decrypt, or a confidential configuration that does
// not match the model directory.
var errUnservable = errors.New("the model cannot be served")

// sealedFlags are the cold-start flags (KServe's confidential model serving
// names; the resource id defaults to $CONFIDENTIAL_RESOURCE_ID).
type sealedFlags struct{ cfg coldstart.Config }

func addSealedFlags(fs *flag.FlagSet) *sealedFlags {
	s := &sealedFlags{}
	s.cfg.RegisterFlags(fs, nil)
	return s
}

// apply installs a loader that serves sealed models through attested key
// release and plain ones as before. A key configuration is checked now, so
// a mistake fails before the server starts.
func (s *sealedFlags) apply(cfg *server.Config, log *slog.Logger) error {
	var cs *coldstart.ColdStart
	if s.cfg.ResourceID != "" {
		if cfg.Registry == nil {
			cfg.Registry = prometheus.NewRegistry()
		}
		m, err := coldstart.NewMetrics(cfg.Registry)
		if err != nil {
			return err
		}
		if cs, err = coldstart.New(s.cfg, coldstart.Options{Metrics: m, Logger: log}); err != nil {
			return err
		}
	}
	cfg.Loader = sealedAwareLoader(cfg.ModelDir, cfg.ModelOptions(), cs)
	return nil
}

// sealedAwareLoader finds the model with sealed files recognized by
// content; a sealed one is unsealed in memory by cs (nil: no key
// configured), a plain one goes to the server's own loader.
func sealedAwareLoader(dir string, opts onnx.Options, cs *coldstart.ColdStart) server.Loader {
	return func(ctx context.Context, env *onnx.Env) (*server.LoadedModel, error) {
		found, err := coldstart.Finder().Find(dir)
		if err != nil {
			return nil, err
		}
		if found.Kind != coldstart.KindSealed {
			if cs != nil {
				return nil, fmt.Errorf("%w: a model key is configured (%s or --resource_id) but %s is not sealed; refusing to serve a plaintext model as confidential",
					errUnservable, coldstart.EnvResourceID, found.Path)
			}
			return server.DirLoader(dir, opts)(ctx, env)
		}
		if cs == nil {
			return nil, fmt.Errorf("%w: %s is sealed but no model key is configured: set %s or --resource_id, and --key_source",
				errUnservable, found.Path, coldstart.EnvResourceID)
		}
		data, err := coldstart.ReadSealed(found)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errUnservable, err)
		}
		var model *onnx.Model
		_, err = cs.Load(ctx, data, func(plain []byte) error {
			var err error
			model, err = env.NewModel(plain, opts)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errUnservable, err)
		}
		return &server.LoadedModel{Model: model, Version: found.Version}, nil
	}
}

// stopOnUnservable makes an unservable load failure cancel the run with
// that cause, so main can exit non-zero with the reason.
func stopOnUnservable(loader server.Loader, stop context.CancelCauseFunc) server.Loader {
	if loader == nil {
		return nil
	}
	return func(ctx context.Context, env *onnx.Env) (*server.LoadedModel, error) {
		lm, err := loader(ctx, env)
		if errors.Is(err, errUnservable) {
			stop(err)
		}
		return lm, err
	}
}
