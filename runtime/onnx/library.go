// Package onnx runs ONNX models with onnxruntime (through
// github.com/yalue/onnxruntime_go) behind the oip.Tensor interface: Env is
// the per-process onnxruntime environment, Model one loaded model (created
// from bytes, never from a file, so a sealed model can stay in memory).
package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// LibraryName is the onnxruntime shared library `make build` puts beside
// the binaries.
const LibraryName = "libonnxruntime.so.1"

// LibraryEnv is the environment variable naming the library.
const LibraryEnv = "ORT_LIBRARY_PATH"

// FindLibrary locates libonnxruntime: the explicit path (the --ort_library
// flag) if given, else $ORT_LIBRARY_PATH, else LibraryName beside the
// running executable.
func FindLibrary(explicit string) (string, error) {
	return findLibrary(explicit, os.Getenv(LibraryEnv), os.Executable)
}

func findLibrary(explicit, env string, executable func() (string, error)) (string, error) {
	for _, c := range []struct{ path, from string }{{explicit, "--ort_library"}, {env, LibraryEnv}} {
		if c.path == "" {
			continue
		}
		if err := isFile(c.path); err != nil {
			return "", fmt.Errorf("onnxruntime library from %s: %w", c.from, err)
		}
		return c.path, nil
	}
	exe, err := executable()
	if err == nil {
		if resolved, rerr := filepath.EvalSymlinks(exe); rerr == nil {
			exe = resolved
		}
		beside := filepath.Join(filepath.Dir(exe), LibraryName)
		if isFile(beside) == nil {
			return beside, nil
		}
	}
	return "", fmt.Errorf("onnxruntime library not found: pass --ort_library, set %s, or put %s beside the executable (`make ort` fetches it into .cache/, `make build` copies it into bin/)", LibraryEnv, LibraryName)
}

func isFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New(path + " is a directory")
	}
	return nil
}
