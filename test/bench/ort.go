package main

import (
	"context"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/veil-ai/veil/models"
)

// The fraud model's tensors (see package models).
const (
	modelName   = "fraud"
	inputName   = "dense_input"
	outputName  = "dense_3"
	featureSize = 5
)

// rawORT is the physical limit: onnxruntime's own Run on tensors made
// once, in this process, with no protocol, copy or allocation per request.
type rawORT struct {
	session *ort.DynamicAdvancedSession
}

func newRawORT(libPath string, threads int, spinning bool) (*rawORT, error) {
	ort.SetSharedLibraryPath(libPath)
	if err := ort.InitializeEnvironment(); err != nil {
		return nil, fmt.Errorf("initialize onnxruntime from %s: %w", libPath, err)
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnxruntime session options: %w", err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(threads); err != nil {
		return nil, fmt.Errorf("set intra-op threads: %w", err)
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("set inter-op threads: %w", err)
	}
	if !spinning {
		// Idle intra-op threads then sleep instead of spinning for work.
		if err := opts.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			return nil, fmt.Errorf("turn off intra-op spinning: %w", err)
		}
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(models.FraudONNX, []string{inputName}, []string{outputName}, opts)
	if err != nil {
		return nil, fmt.Errorf("onnxruntime session for the fraud model: %w", err)
	}
	return &rawORT{session: s}, nil
}

func (r *rawORT) close() {
	_ = r.session.Destroy()
	_ = ort.DestroyEnvironment()
}

// op runs the shared session on one client's own input and output tensors.
func (r *rawORT) op(batch int) newOp {
	return func(client int) (op, error) {
		in, err := ort.NewTensor(ort.NewShape(int64(batch), featureSize), features(batch, client))
		if err != nil {
			return nil, fmt.Errorf("input tensor: %w", err)
		}
		out, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(batch), 1))
		if err != nil {
			return nil, fmt.Errorf("output tensor: %w", err)
		}
		inputs, outputs := []ort.Value{in}, []ort.Value{out}
		return func(context.Context) error {
			if err := r.session.Run(inputs, outputs); err != nil {
				return fmt.Errorf("onnxruntime run: %w", err)
			}
			return nil
		}, nil
	}
}
