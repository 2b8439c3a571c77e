package protocol

import (
	"fmt"
	"regexp"
	"strings"
)

// resourceSegment is one segment of Trustee's resource path grammar
// (kbs/src/plugins/implementations/resource/backend.rs): it may not start
// with a dot, which also rules out "." and ".." path traversal.
var resourceSegment = regexp.MustCompile(`^[a-zA-Z0-9_\-]+[a-zA-Z0-9_\-\.]*$`)

// kbsScheme is the KServe / CoCo resource URI prefix with an empty host: the
// KBS address comes from configuration, never from the resource id.
const kbsScheme = "kbs:///"

// ResourceID names one KBS resource: <repository>/<type>/<tag>.
type ResourceID struct {
	Repo string
	Type string
	Tag  string
}

// ParseResourceID accepts "kbs:///<repo>/<type>/<tag>" and the bare
// "<repo>/<type>/<tag>" form, and checks each segment against the KBS path
// grammar (exactly three segments, the repository is mandatory).
func ParseResourceID(s string) (ResourceID, error) {
	path := s
	switch {
	case strings.HasPrefix(s, kbsScheme):
		path = strings.TrimPrefix(s, kbsScheme)
	case strings.HasPrefix(s, "kbs://"):
		return ResourceID{}, fmt.Errorf("resource id %q: a KBS host in the id is not supported, use kbs:///<repo>/<type>/<tag> and configure the KBS URL", s)
	case strings.Contains(s, "://"):
		return ResourceID{}, fmt.Errorf("resource id %q: unsupported scheme, want kbs:///<repo>/<type>/<tag>", s)
	}
	parts := strings.Split(path, "/")
	if len(parts) != 3 {
		return ResourceID{}, fmt.Errorf("resource id %q: want exactly three segments <repo>/<type>/<tag>, got %d", s, len(parts))
	}
	names := [3]string{"repository", "type", "tag"}
	for i, p := range parts {
		if !resourceSegment.MatchString(p) {
			return ResourceID{}, fmt.Errorf("resource id %q: invalid %s segment %q (allowed: letters, digits, _ - and non-leading dots)", s, names[i], p)
		}
	}
	return ResourceID{Repo: parts[0], Type: parts[1], Tag: parts[2]}, nil
}

// Path is the id as used in URLs: <repo>/<type>/<tag>.
func (r ResourceID) Path() string { return r.Repo + "/" + r.Type + "/" + r.Tag }

// String is the canonical URI form kbs:///<repo>/<type>/<tag>.
func (r ResourceID) String() string { return kbsScheme + r.Path() }

// Valid reports whether r satisfies the KBS path grammar (a zero ResourceID
// does not).
func (r ResourceID) Valid() error {
	_, err := ParseResourceID(r.Path())
	return err
}
