package main

import (
	"context"
	"errors"
	"io"
)

// runInitdata is being built (placeholder until its issue lands).
func runInitdata(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("veil initdata: not built yet")
}
