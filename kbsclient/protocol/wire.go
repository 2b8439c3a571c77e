package protocol

import "encoding/json"

// Version is the only RCAR protocol version Trustee v0.14–v0.21 accept
// (exact match, kbs/src/attestation/backend.rs).
const Version = "0.4.0"

// URL paths of the KBS API, all under the /kbs/v0 prefix.
const (
	PathPrefix   = "/kbs/v0"
	PathAuth     = PathPrefix + "/auth"
	PathAttest   = PathPrefix + "/attest"
	PathResource = PathPrefix + "/resource/"
)

// SessionCookie is the cookie that carries the RCAR session id.
const SessionCookie = "kbs-session-id"

// MaxBodyBytes bounds every request and reply body, like Trustee's
// payload_request_size default (2 MiB).
const MaxBodyBytes = 2 << 20

// TEE names as spelled by kbs-types.
const (
	TEETDX       = "tdx"
	TEESample    = "sample"
	TEEAzTDXVTPM = "az-tdx-vtpm"
	TEEAzSNPVTPM = "az-snp-vtpm"
	TEESNP       = "snp"
	TEESGX       = "sgx"
)

// Request is the body of POST /kbs/v0/auth.
type Request struct {
	Version     string         `json:"version"`
	TEE         string         `json:"tee"`
	ExtraParams map[string]any `json:"extra-params"`
}

// SupportedHashAlgorithms is what guest-components advertises in
// extra-params; the Intel Trust Authority backend negotiates from it.
func SupportedHashAlgorithms() []string { return []string{"sha256", "sha384", "sha512", "sm3"} }

// NewRequest is the auth request guest-components sends for tee.
func NewRequest(tee string) Request {
	return Request{
		Version:     Version,
		TEE:         tee,
		ExtraParams: map[string]any{"supported-hash-algorithms": SupportedHashAlgorithms()},
	}
}

// Challenge is the reply of /auth. ExtraParams is a JSON string ("" for most
// TEEs) or an object such as {"selected-hash-algorithm":"sha512"}.
type Challenge struct {
	Nonce       string          `json:"nonce"`
	ExtraParams json.RawMessage `json:"extra-params"`
}

// TeePubKey is the TEE's public key as a JWK (kbs-types TeePubKey, tagged by
// kty). Fields are declared in JCS order so a marshalled key is canonical.
type TeePubKey struct {
	Alg string `json:"alg"`
	Crv string `json:"crv,omitempty"`
	E   string `json:"e,omitempty"`
	Kty string `json:"kty"`
	N   string `json:"n,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

// RuntimeData is the attester's freshness and key binding.
type RuntimeData struct {
	Nonce     string    `json:"nonce"`
	TeePubKey TeePubKey `json:"tee-pubkey"`
}

// CompositeEvidence wraps the primary TEE evidence; note the snake_case keys,
// unlike the kebab-case outer keys.
type CompositeEvidence struct {
	PrimaryEvidence    json.RawMessage `json:"primary_evidence"`
	AdditionalEvidence string          `json:"additional_evidence"`
}

// InitData is the optional initdata document (Trustee's built-in AS only
// accepts format "toml").
type InitData struct {
	Format string `json:"format"`
	Body   string `json:"body"`
}

// Attestation is the body of POST /kbs/v0/attest (protocol 0.4.0).
type Attestation struct {
	InitData    *InitData         `json:"init-data"`
	RuntimeData RuntimeData       `json:"runtime-data"`
	TeeEvidence CompositeEvidence `json:"tee-evidence"`
}

// AttestResponse is the reply of /attest.
type AttestResponse struct {
	Token string `json:"token"`
}

// ErrorInformation is Trustee's error body.
type ErrorInformation struct {
	Type   string `json:"type"`
	Detail string `json:"detail"`
}

// ErrorTypePrefix starts every Trustee error type URI.
const ErrorTypePrefix = "https://github.com/confidential-containers/kbs/errors/"

// SampleEvidence is the evidence of the insecure "sample" TEE: the raw
// runtime-data digest, unpadded, as standard base64.
type SampleEvidence struct {
	SVN        string `json:"svn"`
	ReportData string `json:"report_data"`
}

// TDXEvidence is the evidence of the "tdx" TEE: the TD quote and optionally
// the CC event log, both standard base64.
type TDXEvidence struct {
	CCEventLog *string `json:"cc_eventlog,omitempty"`
	Quote      string  `json:"quote"`
}
