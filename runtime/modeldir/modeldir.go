// Package modeldir finds the model file in a KServe model directory
// (/mnt/models by default): model.onnx, else the single recognised file,
// else the same inside the highest numbered version folder N/. It only
// chooses a file; reading (and, for sealed models, unsealing) it is the
// loader's job, so plaintext never has to touch the disk.
package modeldir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Kind says what a recognised model file holds.
type Kind string

// KindONNX is a plain serialized ONNX model.
const KindONNX Kind = "onnx"

// DefaultVersion is the version reported for a model that is not in a
// numbered version folder.
const DefaultVersion = "1"

// Model is the chosen model file.
type Model struct {
	Path    string
	Kind    Kind
	Version string
}

// Recognizer decides whether the regular file at path (base name name) is
// a model file, and of what kind. Sealed-model support adds recognizers
// (e.g. for model.onnx.jwe or content-sniffed files) in front of ONNX's.
type Recognizer func(path, name string) (Kind, bool, error)

// RecognizeONNX accepts *.onnx files.
func RecognizeONNX(_, name string) (Kind, bool, error) {
	return KindONNX, strings.HasSuffix(name, ".onnx"), nil
}

// Finder finds model files with its recognizers; Preferred names win over
// other recognised files in the same folder.
type Finder struct {
	Recognizers []Recognizer
	Preferred   []string
}

// ONNXFinder finds plain ONNX models.
func ONNXFinder() Finder {
	return Finder{Recognizers: []Recognizer{RecognizeONNX}, Preferred: []string{"model.onnx"}}
}

// Find finds a plain ONNX model in dir (see package doc).
func Find(dir string) (Model, error) { return ONNXFinder().Find(dir) }

// Find looks in dir, then in its highest numbered version folder.
func (f Finder) Find(dir string) (Model, error) {
	m, found, err := f.findIn(dir)
	if err != nil {
		return Model{}, err
	}
	if found {
		m.Version = DefaultVersion
		return m, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Model{}, fmt.Errorf("read model directory: %w", err)
	}
	best := int64(-1)
	for _, e := range entries {
		if !isDir(dir, e) {
			continue
		}
		if n, err := strconv.ParseInt(e.Name(), 10, 64); err == nil && n > best {
			best = n
		}
	}
	if best < 0 {
		return Model{}, fmt.Errorf("no model file in %s: want model.onnx, a single *.onnx, or a numbered version folder holding one", dir)
	}
	// Use the folder's own spelling (e.g. "01") for the path.
	var name string
	for _, e := range entries {
		if n, err := strconv.ParseInt(e.Name(), 10, 64); err == nil && n == best && isDir(dir, e) {
			name = e.Name()
			break
		}
	}
	vdir := filepath.Join(dir, name)
	m, found, err = f.findIn(vdir)
	if err != nil {
		return Model{}, err
	}
	if !found {
		return Model{}, fmt.Errorf("no model file in the highest version folder %s", vdir)
	}
	m.Version = strconv.FormatInt(best, 10)
	return m, nil
}

func isDir(dir string, e fs.DirEntry) bool {
	if e.IsDir() {
		return true
	}
	if e.Type()&fs.ModeSymlink != 0 {
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		return err == nil && fi.IsDir()
	}
	return false
}

// findIn looks for a model file directly in dir.
func (f Finder) findIn(dir string) (Model, bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Model{}, false, fmt.Errorf("read model directory: %w", err)
	}
	var found []Model
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		// Storage initializers and ConfigMaps mount files as symlinks.
		fi, err := os.Stat(path)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		kind, ok, err := f.recognize(path, e.Name())
		if err != nil {
			return Model{}, false, err
		}
		if !ok {
			continue
		}
		m := Model{Path: path, Kind: kind}
		for _, p := range f.Preferred {
			if e.Name() == p {
				return m, true, nil
			}
		}
		found = append(found, m)
	}
	switch len(found) {
	case 0:
		return Model{}, false, nil
	case 1:
		return found[0], true, nil
	}
	paths := make([]string, len(found))
	for i, m := range found {
		paths[i] = filepath.Base(m.Path)
	}
	sort.Strings(paths)
	return Model{}, false, fmt.Errorf("%d model files in %s (%s): keep one, or name the one to serve %s", len(found), dir, strings.Join(paths, ", "), f.preferredName())
}

func (f Finder) preferredName() string {
	if len(f.Preferred) == 0 {
		return "model.onnx"
	}
	return f.Preferred[0]
}

func (f Finder) recognize(path, name string) (Kind, bool, error) {
	for _, r := range f.Recognizers {
		kind, ok, err := r(path, name)
		if err != nil {
			return "", false, fmt.Errorf("inspect %s: %w", path, err)
		}
		if ok {
			return kind, true, nil
		}
	}
	return "", false, nil
}

// ErrNotFound is returned by ReadONNX for a missing file.
var ErrNotFound = errors.New("model file not found")

// ReadONNX reads a plain ONNX model file, bounded by limit bytes.
func ReadONNX(m Model, limit int64) ([]byte, error) {
	if m.Kind != KindONNX {
		return nil, fmt.Errorf("model file %s is %q, not a plain ONNX model: it needs a loader that can unseal it", m.Path, m.Kind)
	}
	fi, err := os.Stat(m.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, m.Path)
		}
		return nil, fmt.Errorf("stat model file: %w", err)
	}
	if limit > 0 && fi.Size() > limit {
		return nil, fmt.Errorf("model file %s is %d bytes, over the %d byte limit", m.Path, fi.Size(), limit)
	}
	b, err := os.ReadFile(m.Path)
	if err != nil {
		return nil, fmt.Errorf("read model file: %w", err)
	}
	return b, nil
}
