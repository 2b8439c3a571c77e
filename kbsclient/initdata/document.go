package initdata

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	"github.com/pelletier/go-toml/v2"
)

// Document is a parsed initdata TOML document.
type Document struct {
	Version   string
	Algorithm Algorithm
	// Data maps entry names (aa.toml, cdh.toml, policy.rego) to their text.
	Data map[string]string
}

// wireDocument is the layout written by Marshal. The known entries are
// struct fields so that their multi-line text stays readable in the TOML
// (go-toml only honours the multiline option on struct fields).
type wireDocument struct {
	Version   string   `toml:"version"`
	Algorithm string   `toml:"algorithm"`
	Data      wireData `toml:"data"`
}

type wireData struct {
	AA     string `toml:"aa.toml,multiline,omitempty"`
	CDH    string `toml:"cdh.toml,multiline,omitempty"`
	Policy string `toml:"policy.rego,multiline,omitempty"`
}

// parsedDocument accepts any data entry so that foreign documents can be
// inspected.
type parsedDocument struct {
	Version   string            `toml:"version"`
	Algorithm string            `toml:"algorithm"`
	Data      map[string]string `toml:"data"`
}

// Marshal renders the document as TOML. These exact bytes are what the guest
// hashes, so callers must keep them (not a re-rendering) when computing the
// digest of a document that is already deployed.
func (d Document) Marshal() ([]byte, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	w := wireDocument{Version: d.Version, Algorithm: string(d.Algorithm)}
	for name, text := range d.Data {
		switch name {
		case EntryAA:
			w.Data.AA = text
		case EntryCDH:
			w.Data.CDH = text
		case EntryPolicy:
			w.Data.Policy = text
		default:
			return nil, fmt.Errorf("initdata: marshal: unsupported data entry %q (only %s, %s, %s)", name, EntryAA, EntryCDH, EntryPolicy)
		}
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(w); err != nil {
		return nil, fmt.Errorf("initdata: marshal TOML: %w", err)
	}
	return buf.Bytes(), nil
}

// Parse decodes an initdata TOML document, rejecting unknown top-level keys
// and unsupported algorithms.
func Parse(text []byte) (Document, error) {
	var p parsedDocument
	dec := toml.NewDecoder(bytes.NewReader(text)).DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Document{}, fmt.Errorf("initdata: parse TOML: %w", err)
	}
	d := Document{Version: p.Version, Algorithm: Algorithm(p.Algorithm), Data: p.Data}
	if err := d.validate(); err != nil {
		return Document{}, err
	}
	return d, nil
}

// EntryNames lists the data entries in sorted order.
func (d Document) EntryNames() []string {
	names := make([]string, 0, len(d.Data))
	for n := range d.Data {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (d Document) validate() error {
	if d.Version == "" {
		return errors.New("initdata: missing version")
	}
	if d.Version != Version {
		return fmt.Errorf("initdata: version %q is not supported (want %q)", d.Version, Version)
	}
	if _, err := d.Algorithm.newHash(); err != nil {
		return err
	}
	if len(d.Data) == 0 {
		return errors.New("initdata: document has no data entries")
	}
	return nil
}
