// Package kbsclient fetches secrets (model keys) that a Key Broker Service
// releases only to an attested TEE.
//
// The runtime uses one small API for both production paths:
//
//	id, err := kbsclient.ParseResourceID("kbs:///default/model-keys/fraud")
//
//	// Inside a CoCo pod: the Confidential Data Hub attests for us.
//	var src kbsclient.KeySource = kbsclient.NewCDH(kbsclient.CDHConfig{})
//
//	// Or speak RCAR (Trustee protocol 0.4.0) to the KBS directly.
//	src, err := kbsclient.NewKBS(kbsclient.KBSConfig{URL: "https://kbs:8080", CACertPEM: pem, TEE: "tdx"})
//
//	// Or build either from the runtime's flags (--key_source, --cdh_addr,
//	// --kbs_url, --kbs_cert, --tee, --insecure_allow_sample_tee):
//	src, err := kbsclient.NewKeySource(kbsclient.SourceConfig{KeySource: "kbs", KBSURL: u, TEE: "tdx"})
//
//	key, timings, err := src.Resource(ctx, id) // retries with backoff until ctx ends
//	defer kbsclient.Wipe(key)
//
// Subpackages: protocol (wire format, decoders, runtime-data digest, typed
// errors), teekey (ephemeral TEE key, resource JWE), evidence (tdx via
// go-tdx-guest, insecure sample), devkbs (the development KBS behind
// `veil kbs serve`).
//
// Errors can be told apart with errors.Is: ErrPolicyDenied, ErrVersionMismatch,
// ErrAttestationFailed, ErrSessionExpired, ErrUnauthorized, ErrNotFound,
// ErrKBSInternal, ErrBadReply, ErrDecrypt, ErrInsecureTEE, ErrUnsupportedTEE,
// plus context.DeadlineExceeded when the deadline ran out while retrying.
// Timings are filled in even when an error is returned.
package kbsclient

import (
	"context"
	"time"

	"github.com/veil-ai/veil/kbsclient/evidence"
	"github.com/veil-ai/veil/kbsclient/protocol"
)

// ResourceID names one KBS resource <repo>/<type>/<tag>.
type ResourceID = protocol.ResourceID

// ParseResourceID accepts kbs:///<repo>/<type>/<tag> or <repo>/<type>/<tag>.
func ParseResourceID(s string) (ResourceID, error) { return protocol.ParseResourceID(s) }

// KeySource fetches a resource after whatever attestation its path needs.
type KeySource interface {
	// Resource returns the plaintext resource. It retries transient
	// failures with exponential backoff until ctx is done and fails fast on
	// permanent ones (policy deny, version mismatch, rejected evidence,
	// decryption failure). The caller owns the returned bytes and should
	// Wipe them after use.
	Resource(ctx context.Context, id ResourceID) ([]byte, Timings, error)
}

// Timings of one Resource call, for metrics and the cold-start log line.
// Evidence and Attest are zero on the CDH path (the guest components do
// them out of our sight). Phase durations are those of the final attempt.
type Timings struct {
	Evidence time.Duration // collecting TEE evidence (quote generation)
	Attest   time.Duration // /auth + /attest round trips, evidence excluded
	Fetch    time.Duration // resource GET and JWE decryption
	Total    time.Duration // the whole call, retries and backoff included
	Attempts int           // attempts made (1 when the first one succeeded)
}

// Error classes, re-exported so callers need only this package.
var (
	ErrVersionMismatch   = protocol.ErrVersionMismatch
	ErrPolicyDenied      = protocol.ErrPolicyDenied
	ErrAttestationFailed = protocol.ErrAttestationFailed
	ErrSessionExpired    = protocol.ErrSessionExpired
	ErrUnauthorized      = protocol.ErrUnauthorized
	ErrNotFound          = protocol.ErrNotFound
	ErrKBSInternal       = protocol.ErrKBSInternal
	ErrBadReply          = protocol.ErrBadReply
	ErrDecrypt           = protocol.ErrDecrypt
	ErrInsecureTEE       = evidence.ErrInsecureTEE
	ErrUnsupportedTEE    = evidence.ErrUnsupportedTEE
)

// Wipe zeroes b; use it on keys once they are no longer needed.
func Wipe(b []byte) {
	clear(b)
}
