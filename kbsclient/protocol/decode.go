package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// decodeStrict decodes exactly one JSON value into v. Unknown fields are
// tolerated (newer KBS versions may add some) but trailing data is not.
func decodeStrict(body []byte, v any) error {
	if len(body) > MaxBodyBytes {
		return fmt.Errorf("%w: body of %d bytes exceeds the %d byte limit", ErrBadReply, len(body), MaxBodyBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadReply, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after the JSON value", ErrBadReply)
	}
	return nil
}

// DecodeChallenge parses and checks the reply of /auth.
func DecodeChallenge(body []byte) (Challenge, error) {
	var c Challenge
	if err := decodeStrict(body, &c); err != nil {
		return Challenge{}, fmt.Errorf("decode challenge: %w", err)
	}
	if c.Nonce == "" {
		return Challenge{}, fmt.Errorf("decode challenge: %w: empty nonce", ErrBadReply)
	}
	if !utf8.ValidString(c.Nonce) || strings.ContainsFunc(c.Nonce, func(r rune) bool { return r < 0x20 }) {
		return Challenge{}, fmt.Errorf("decode challenge: %w: nonce has control or invalid characters", ErrBadReply)
	}
	if _, err := c.HashAlgorithm(); err != nil {
		return Challenge{}, fmt.Errorf("decode challenge: %w", err)
	}
	return c, nil
}

// HashAlgorithm is the runtime-data hash the KBS asked for: the
// "selected-hash-algorithm" of an object extra-params, else sha384 (the
// guest-components rule).
func (c Challenge) HashAlgorithm() (string, error) {
	raw := bytes.TrimSpace(c.ExtraParams)
	if len(raw) == 0 || raw[0] != '{' {
		// Missing, null or a string (Trustee sends ""): the default.
		if len(raw) > 0 && raw[0] != '"' && string(raw) != "null" {
			return "", fmt.Errorf("%w: extra-params is neither a string nor an object", ErrBadReply)
		}
		return "sha384", nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", fmt.Errorf("%w: extra-params: %v", ErrBadReply, err)
	}
	sel, ok := obj["selected-hash-algorithm"]
	if !ok {
		return "sha384", nil
	}
	var alg string
	if err := json.Unmarshal(sel, &alg); err != nil {
		return "", fmt.Errorf("%w: selected-hash-algorithm is not a string", ErrBadReply)
	}
	if _, err := newHash(alg); err != nil {
		return "", err
	}
	return alg, nil
}

// DecodeAttestResponse parses the reply of /attest.
func DecodeAttestResponse(body []byte) (AttestResponse, error) {
	var r AttestResponse
	if err := decodeStrict(body, &r); err != nil {
		return AttestResponse{}, fmt.Errorf("decode attest response: %w", err)
	}
	if r.Token == "" {
		return AttestResponse{}, fmt.Errorf("decode attest response: %w: empty token", ErrBadReply)
	}
	return r, nil
}

// DecodeError turns a non-2xx KBS reply into a *ServerError. A body that is
// not Trustee's error JSON is kept (truncated) as the detail.
func DecodeError(status int, body []byte) *ServerError {
	var info ErrorInformation
	if err := decodeStrict(body, &info); err == nil && info.Type != "" {
		return &ServerError{Status: status, Type: info.Type, Detail: info.Detail}
	}
	detail := strings.ToValidUTF8(string(body), "?")
	const maxDetail = 256
	if len(detail) > maxDetail {
		detail = detail[:maxDetail] + "…"
	}
	if detail == "" {
		detail = "(empty body)"
	}
	return &ServerError{Status: status, Detail: detail}
}

// DecodeAttestation parses an /attest request body (server side).
func DecodeAttestation(body []byte) (Attestation, error) {
	var a Attestation
	if err := decodeStrict(body, &a); err != nil {
		return Attestation{}, fmt.Errorf("decode attestation: %w", err)
	}
	if a.RuntimeData.Nonce == "" {
		return Attestation{}, fmt.Errorf("decode attestation: %w: empty nonce", ErrBadReply)
	}
	if len(bytes.TrimSpace(a.TeeEvidence.PrimaryEvidence)) == 0 {
		return Attestation{}, fmt.Errorf("decode attestation: %w: missing primary_evidence", ErrBadReply)
	}
	return a, nil
}

// DecodeRequest parses an /auth request body (server side).
func DecodeRequest(body []byte) (Request, error) {
	var r Request
	if err := decodeStrict(body, &r); err != nil {
		return Request{}, fmt.Errorf("decode auth request: %w", err)
	}
	if r.Version == "" || r.TEE == "" {
		return Request{}, fmt.Errorf("decode auth request: %w: version and tee are required", ErrBadReply)
	}
	return r, nil
}

// DecodeSampleEvidence parses sample evidence and returns its report data.
func DecodeSampleEvidence(raw []byte) ([]byte, error) {
	var ev SampleEvidence
	if err := decodeStrict(raw, &ev); err != nil {
		return nil, fmt.Errorf("decode sample evidence: %w", err)
	}
	rd, err := base64.StdEncoding.DecodeString(ev.ReportData)
	if err != nil {
		return nil, fmt.Errorf("decode sample evidence: report_data: %w", err)
	}
	return rd, nil
}

// DecodeTDXEvidence parses tdx evidence and returns the raw quote.
func DecodeTDXEvidence(raw []byte) ([]byte, error) {
	var ev TDXEvidence
	if err := decodeStrict(raw, &ev); err != nil {
		return nil, fmt.Errorf("decode tdx evidence: %w", err)
	}
	q, err := base64.StdEncoding.DecodeString(ev.Quote)
	if err != nil {
		return nil, fmt.Errorf("decode tdx evidence: quote: %w", err)
	}
	if len(q) == 0 {
		return nil, fmt.Errorf("decode tdx evidence: empty quote")
	}
	return q, nil
}
