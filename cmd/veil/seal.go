package main

import (
	"context"
	"errors"
	"io"
)

// runSeal is being built (placeholder until its issue lands).
func runSeal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("veil seal: not built yet")
}
