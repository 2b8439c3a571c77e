package server

import (
	"context"
	"fmt"

	"github.com/veil-ai/veil/oip"
	"github.com/veil-ai/veil/runtime/modeldir"
	"github.com/veil-ai/veil/runtime/onnx"
)

// Engine runs inference: all of the model's outputs, in the model's order
// (the server selects the requested ones). *onnx.Model is one; a batcher
// wrapping the model is another.
type Engine interface {
	Infer(ctx context.Context, inputs []oip.Tensor) ([]oip.Tensor, error)
}

// Model is a servable model: an Engine with metadata. *onnx.Model is one.
type Model interface {
	Engine
	Inputs() []oip.TensorMetadata
	Outputs() []oip.TensorMetadata
	Close() error
}

// LoadedModel is what a Loader hands the server.
type LoadedModel struct {
	Model Model
	// Version is the model version served (modeldir.DefaultVersion when the
	// model is not in a version folder).
	Version string
}

// Loader produces the model. The server runs it in the background once it
// is listening (live at once, ready when the loader succeeds; a failure is
// logged and the server stays unready). env is the process's onnxruntime
// environment, for env.NewModel on in-memory bytes.
type Loader func(ctx context.Context, env *onnx.Env) (*LoadedModel, error)

// DirLoader loads the plain ONNX model modeldir.Find picks in dir.
func DirLoader(dir string, opts onnx.Options) Loader {
	return func(ctx context.Context, env *onnx.Env) (*LoadedModel, error) {
		found, err := modeldir.Find(dir)
		if err != nil {
			return nil, err
		}
		b, err := modeldir.ReadONNX(found, 0)
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, err := env.NewModel(b, opts)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", found.Path, err)
		}
		return &LoadedModel{Model: m, Version: found.Version}, nil
	}
}

// served is the loaded model as the handlers see it.
type served struct {
	model   Model
	engine  Engine
	version string
}
