package sealed

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	jose "github.com/go-jose/go-jose/v4"
)

// SealTreeOptions configures SealTree.
type SealTreeOptions struct {
	// Alg is the JWE key management algorithm: dir or A256KW (default).
	Alg jose.KeyAlgorithm
	// MaxBytes bounds each model file; 0 means MaxSealedBytes.
	MaxBytes int
}

// SealedFile is one model file SealTree encrypted, by slash paths relative
// to the source and destination roots.
type SealedFile struct {
	From, To string
}

// SealTree copies the tree src into the directory out, replacing every
// model file (model.onnx) by its JWE (model.onnx.jwe, A256GCM with key)
// and copying every other file untouched, so version folders and artifact/
// keep their layout. It refuses a tree with no model, a model that is not
// ONNX, a file that is already sealed where a model is expected, and
// anything but regular files and directories. out must not exist yet or
// be empty.
func SealTree(src fs.FS, out string, key []byte, opts SealTreeOptions) ([]SealedFile, error) {
	alg := opts.Alg
	if alg == "" {
		alg = jose.A256KW
	}
	if alg != jose.DIRECT && alg != jose.A256KW {
		return nil, fmt.Errorf("%w: seal alg %q (want dir or A256KW)", ErrUnsupported, alg)
	}
	limit := opts.MaxBytes
	if limit <= 0 {
		limit = MaxSealedBytes
	}
	if err := ensureEmptyDir(out); err != nil {
		return nil, err
	}
	var done []SealedFile
	err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(out, filepath.FromSlash(p))
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case !d.Type().IsRegular():
			return fmt.Errorf("%s: only regular files can be sealed or copied", p)
		}
		data, err := readBounded(src, p, limit)
		if err != nil {
			return err
		}
		if !IsModelFileName(p) {
			return writeNew(dst, data)
		}
		if path.Base(p) != ModelFileName || Detect(data) != FormatPlain {
			return fmt.Errorf("%s: already sealed (or named like a sealed model); seal plaintext models only", p)
		}
		if err := CheckONNX(data); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		jwe, err := SealJWE(data, key, alg, jose.A256GCM)
		if err != nil {
			return fmt.Errorf("seal %s: %w", p, err)
		}
		to := p + ".jwe"
		if err := writeNew(filepath.Join(out, filepath.FromSlash(to)), jwe); err != nil {
			return err
		}
		done = append(done, SealedFile{From: p, To: to})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("seal tree into %s: %w", out, err)
	}
	if len(done) == 0 {
		return nil, fmt.Errorf("seal tree: no %s found", ModelFileName)
	}
	return done, nil
}

func ensureEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	case err != nil:
		return fmt.Errorf("output directory: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("output directory %s is not empty", dir)
	}
	return nil
}

func readBounded(src fs.FS, p string, limit int) ([]byte, error) {
	f, err := src.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if len(data) > limit {
		return nil, fmt.Errorf("%s: %w (limit %d bytes)", p, ErrTooLarge, limit)
	}
	return data, nil
}

// writeNew creates a file that must not exist yet.
func writeNew(dst string, data []byte) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return f.Close()
}
