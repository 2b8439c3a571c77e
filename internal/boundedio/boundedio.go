// Package boundedio reads files whose size the caller must bound: key files,
// tokens, certificates and sealed models come from places an operator (or an
// attacker) controls, and an unbounded read is a memory exhaustion waiting to
// happen.
package boundedio

import (
	"fmt"
	"io"
	"os"
)

// ReadFile reads the whole file at path, refusing one larger than limit
// bytes. What was read of an oversized file is cleared before it is dropped,
// because such files may hold key material.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		clear(data)
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		clear(data)
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}
