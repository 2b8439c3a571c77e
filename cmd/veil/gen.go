package main

import (
	"context"
	"errors"
	"io"
)

// runGen is being built (placeholder until its issue lands).
func runGen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("veil gen: not built yet")
}
