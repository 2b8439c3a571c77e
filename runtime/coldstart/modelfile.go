package coldstart

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/veil-ai/veil/internal/boundedio"

	"github.com/veil-ai/veil/runtime/modeldir"
	"github.com/veil-ai/veil/runtime/sealed"
)

// KindSealed is a model file that needs its key: JWE or openssl, told
// apart by content when it is read.
const KindSealed modeldir.Kind = "sealed"

// sniffLen covers the longest magic ("Salted__").
const sniffLen = 8

// RecognizeSealed is a modeldir.Recognizer for sealed models: any file
// whose content starts like a JWE or an openssl file, whatever its name,
// and model.onnx.jwe / model.onnx.enc by name (a damaged one then fails at
// decryption with a clear error instead of being skipped).
func RecognizeSealed(path, name string) (modeldir.Kind, bool, error) {
	if name == sealed.JWEModelFileName || name == sealed.OpenSSLModelFileName {
		return KindSealed, true, nil
	}
	head, err := readHead(path, sniffLen)
	if err != nil {
		return "", false, err
	}
	if sealed.Detect(head) != sealed.FormatPlain {
		return KindSealed, true, nil
	}
	return "", false, nil
}

// Finder finds plain and sealed models: sealed recognition runs first so a
// sealed file named model.onnx is never handed to onnxruntime as is.
func Finder() modeldir.Finder {
	return modeldir.Finder{
		Recognizers: []modeldir.Recognizer{RecognizeSealed, modeldir.RecognizeONNX},
		Preferred:   []string{sealed.ModelFileName, sealed.JWEModelFileName, sealed.OpenSSLModelFileName},
	}
}

// ReadSealed reads a sealed model file, bounded by sealed.MaxSealedBytes.
func ReadSealed(m modeldir.Model) ([]byte, error) {
	if m.Kind != KindSealed {
		return nil, fmt.Errorf("model file %s is %q, not sealed", m.Path, m.Kind)
	}
	b, err := boundedio.ReadFile(m.Path, sealed.MaxSealedBytes)
	if err != nil {
		return nil, fmt.Errorf("read sealed model: %w", err)
	}
	return b, nil
}

func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	k, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:k], nil
}
