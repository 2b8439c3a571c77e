package onnx

import (
	"errors"
	"fmt"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// Env is the process's onnxruntime environment. onnxruntime_go keeps the
// environment in its own package state, so there can be one Env at a time;
// main owns it and closes it after every Model is closed.
type Env struct {
	mu     sync.Mutex
	closed bool
}

// NewEnv loads the onnxruntime library at libraryPath (see FindLibrary)
// and initialises the environment.
func NewEnv(libraryPath string) (*Env, error) {
	if ort.IsInitialized() {
		return nil, errors.New("onnxruntime environment already initialised in this process: create one Env and share it")
	}
	ort.SetSharedLibraryPath(libraryPath)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return nil, fmt.Errorf("initialise onnxruntime from %s: %w", libraryPath, err)
	}
	// The npm build of onnxruntime records telemetry sessions; a confidential
	// server reports nothing. (That build still writes $TMPDIR/.ses, a
	// timestamp and a random session id, when the library is loaded, before
	// any call can stop it; it holds no model, key or request data.)
	if err := ort.DisableTelemetry(); err != nil {
		_ = ort.DestroyEnvironment()
		return nil, fmt.Errorf("disable onnxruntime telemetry: %w", err)
	}
	return &Env{}, nil
}

// Version is the loaded onnxruntime's version.
func (e *Env) Version() string { return ort.GetVersion() }

// Close destroys the environment; Models must be closed first.
func (e *Env) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	if err := ort.DestroyEnvironment(); err != nil {
		return fmt.Errorf("destroy onnxruntime environment: %w", err)
	}
	return nil
}
