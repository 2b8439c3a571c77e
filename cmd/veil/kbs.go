package main

import (
	"context"
	"errors"
	"io"
)

// runKBS is being built (placeholder until its issue lands).
func runKBS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("veil kbs: not built yet")
}
