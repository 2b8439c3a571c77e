package main

import (
	"context"
	"errors"
	"io"
)

// runPipeline is being built (placeholder until its issue lands).
func runPipeline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("veil run: not built yet")
}
