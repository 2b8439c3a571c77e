package devkbs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"

	"github.com/veil-ai/veil/kbsclient/protocol"
)

// Policy decides which attested TEE may read which resource. Rules are tried
// in order; the first whose path glob and TEE list match decides. When none
// matches the resource is denied.
//
// File format (JSON):
//
//	{"rules": [
//	  {"effect": "deny",  "path": "default/secret/*"},
//	  {"effect": "allow", "path": "default/model-keys/*", "tees": ["tdx"]}
//	]}
//
// "path" is a path.Match glob over <repo>/<type>/<tag> ("*" never crosses a
// "/"); an empty or missing "tees" list matches every attested TEE.
type Policy struct {
	Rules []Rule `json:"rules"`
}

// Rule is one policy entry.
type Rule struct {
	Effect string   `json:"effect"` // "allow" or "deny"
	Path   string   `json:"path"`
	TEEs   []string `json:"tees,omitempty"`
}

// DefaultPolicy allows every resource to the given attested TEEs and denies
// everything else.
func DefaultPolicy(tees ...string) Policy {
	return Policy{Rules: []Rule{{Effect: "allow", Path: "*/*/*", TEEs: tees}}}
}

// ParsePolicy decodes and validates a policy file.
func ParsePolicy(data []byte) (Policy, error) {
	var p Policy
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Policy{}, fmt.Errorf("parse policy: %w", err)
	}
	if dec.More() {
		return Policy{}, fmt.Errorf("parse policy: trailing data after the JSON object")
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// Validate checks effects, globs and TEE names.
func (p Policy) Validate() error {
	for i, r := range p.Rules {
		if r.Effect != "allow" && r.Effect != "deny" {
			return fmt.Errorf("policy rule %d: effect %q, want allow or deny", i, r.Effect)
		}
		if r.Path == "" {
			return fmt.Errorf("policy rule %d: empty path glob", i)
		}
		if _, err := path.Match(r.Path, "a/b/c"); err != nil {
			return fmt.Errorf("policy rule %d: path glob %q: %w", i, r.Path, err)
		}
		for _, t := range r.TEEs {
			if t != protocol.TEETDX && t != protocol.TEESample {
				return fmt.Errorf("policy rule %d: TEE %q is not one the development KBS can verify (tdx, sample)", i, t)
			}
		}
	}
	return nil
}

// Allows reports whether an attested tee may read id, and which rule
// decided (-1 when none matched).
func (p Policy) Allows(id protocol.ResourceID, tee string) (bool, int) {
	for i, r := range p.Rules {
		if ok, _ := path.Match(r.Path, id.Path()); !ok {
			continue
		}
		if len(r.TEEs) > 0 && !contains(r.TEEs, tee) {
			continue
		}
		return r.Effect == "allow", i
	}
	return false, -1
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
