package initdata

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Size bounds for decoding. Kubernetes caps all annotations of an object at
// 256 KiB together, so a larger value cannot be deployed anyway; the
// decompressed bound stops gzip bombs.
const (
	MaxAnnotationBytes = 256 << 10
	MaxTOMLBytes       = 1 << 20
)

// Encode turns TOML text into the annotation value: standard base64 (with
// padding) of its gzip compression, as the Kata runtime and the peer-pod
// cloud-api-adaptor decode it.
func Encode(text []byte) (string, error) {
	if len(text) > MaxTOMLBytes {
		return "", fmt.Errorf("initdata: encode: document is %d bytes, over the %d byte limit", len(text), MaxTOMLBytes)
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return "", fmt.Errorf("initdata: encode: %w", err)
	}
	if _, err := zw.Write(text); err != nil {
		return "", fmt.Errorf("initdata: encode: gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("initdata: encode: gzip: %w", err)
	}
	value := base64.StdEncoding.EncodeToString(buf.Bytes())
	if len(value) > MaxAnnotationBytes {
		return "", fmt.Errorf("initdata: encode: annotation value is %d bytes, over the %d byte limit", len(value), MaxAnnotationBytes)
	}
	return value, nil
}

// Decode reverses Encode and returns the exact TOML bytes the guest hashes.
// Surrounding whitespace (a trailing newline from a shell pipeline) is
// ignored.
func Decode(value string) ([]byte, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return nil, errors.New("initdata: decode: empty annotation value")
	}
	if len(value) > MaxAnnotationBytes {
		return nil, fmt.Errorf("initdata: decode: annotation value is %d bytes, over the %d byte limit", len(value), MaxAnnotationBytes)
	}
	compressed, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		return nil, fmt.Errorf("initdata: decode: base64: %w", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(compressed))
	if err != nil {
		return nil, fmt.Errorf("initdata: decode: gzip: %w", err)
	}
	defer zr.Close()
	text, err := io.ReadAll(io.LimitReader(zr, MaxTOMLBytes+1))
	if err != nil {
		return nil, fmt.Errorf("initdata: decode: gzip: %w", err)
	}
	if len(text) > MaxTOMLBytes {
		return nil, fmt.Errorf("initdata: decode: document exceeds %d bytes once decompressed", MaxTOMLBytes)
	}
	return text, nil
}
