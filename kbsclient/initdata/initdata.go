// Package initdata builds, encodes and inspects the Kata Containers initdata
// document that configures the guest components of a confidential pod: the
// Attestation Agent (aa.toml), the Confidential Data Hub (cdh.toml) and the
// kata-agent policy (policy.rego).
//
// The document travels as the pod annotation
// io.katacontainers.config.hypervisor.cc_init_data (Kata >= 3.20; 3.8-3.19
// used io.katacontainers.config.runtime.cc_init_data) whose value is
// base64(gzip(TOML)). The host can read and rewrite that annotation, so the
// guest binds it into attestation evidence: the digest of the TOML bytes is
// placed in the TDX MRCONFIGID (bare-metal TDX) or extended into vTPM PCR 8
// (Azure TDX peer pods), and Trustee only releases secrets to a guest whose
// evidence carries the expected value.
package initdata

import (
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
)

// Annotation keys that carry the encoded document.
const (
	// AnnotationKey is read by Kata >= 3.20 and by the peer-pod
	// cloud-api-adaptor since August 2025.
	AnnotationKey = "io.katacontainers.config.hypervisor.cc_init_data"
	// LegacyAnnotationKey is the name Kata 3.8.0-3.19.x used.
	LegacyAnnotationKey = "io.katacontainers.config.runtime.cc_init_data"
)

// Version is the initdata specification version this package writes.
const Version = "0.1.0"

// Names of the data entries the guest components consume.
const (
	EntryAA     = "aa.toml"
	EntryCDH    = "cdh.toml"
	EntryPolicy = "policy.rego"
)

// Algorithm names the hash the guest applies to the TOML document.
type Algorithm string

// Algorithms the Kata runtime and Trustee accept.
const (
	SHA256 Algorithm = "sha256"
	SHA384 Algorithm = "sha384"
	SHA512 Algorithm = "sha512"
)

// ParseAlgorithm validates an algorithm name.
func ParseAlgorithm(s string) (Algorithm, error) {
	a := Algorithm(s)
	if _, err := a.newHash(); err != nil {
		return "", err
	}
	return a, nil
}

func (a Algorithm) newHash() (hash.Hash, error) {
	switch a {
	case SHA256:
		return sha256.New(), nil
	case SHA384:
		return sha512.New384(), nil
	case SHA512:
		return sha512.New(), nil
	default:
		return nil, fmt.Errorf("initdata: unsupported algorithm %q (want sha256, sha384 or sha512)", string(a))
	}
}
