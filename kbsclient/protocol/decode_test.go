package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecodeChallenge(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantHash string
		wantErr  bool
	}{
		{"trustee string extra-params", `{"nonce":"q1Zx7hJ0XvJb2Y0nWm1p0QmS5W0Y3m2L2QvX8a3o9Ew=","extra-params":""}`, "sha384", false},
		{"object without selection", `{"nonce":"n","extra-params":{}}`, "sha384", false},
		{"ITA selects sha512", `{"nonce":"n","extra-params":{"selected-hash-algorithm":"sha512"}}`, "sha512", false},
		{"missing extra-params", `{"nonce":"n"}`, "sha384", false},
		{"null extra-params", `{"nonce":"n","extra-params":null}`, "sha384", false},
		{"unknown fields tolerated", `{"nonce":"n","extra-params":"","future":1}`, "sha384", false},
		{"unsupported hash", `{"nonce":"n","extra-params":{"selected-hash-algorithm":"sm3"}}`, "", true},
		{"hash not a string", `{"nonce":"n","extra-params":{"selected-hash-algorithm":5}}`, "", true},
		{"extra-params number", `{"nonce":"n","extra-params":7}`, "", true},
		{"empty nonce", `{"nonce":"","extra-params":""}`, "", true},
		{"control char nonce", `{"nonce":"a\u0000b","extra-params":""}`, "", true},
		{"not JSON", `<html>`, "", true},
		{"trailing data", `{"nonce":"n"}{}`, "", true},
		{"array", `[]`, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeChallenge([]byte(tc.body))
			if tc.wantErr {
				require.ErrorIs(t, err, ErrBadReply)
				return
			}
			require.NoError(t, err)
			h, err := c.HashAlgorithm()
			require.NoError(t, err)
			assert.Equal(t, tc.wantHash, h)
		})
	}
}

func TestDecodeAttestResponse(t *testing.T) {
	r, err := DecodeAttestResponse([]byte(`{"token":"eyJ.a.b"}`))
	require.NoError(t, err)
	assert.Equal(t, "eyJ.a.b", r.Token)
	for _, bad := range []string{`{}`, `{"token":""}`, `{"token":1}`, ``, `null`} {
		_, err := DecodeAttestResponse([]byte(bad))
		assert.ErrorIs(t, err, ErrBadReply, bad)
	}
}

func TestDecodeErrorClasses(t *testing.T) {
	const p = ErrorTypePrefix
	tests := []struct {
		name   string
		status int
		body   string
		want   error
	}{
		{"policy deny", 401, `{"type":"` + p + `PolicyDeny","detail":"Access denied by policy"}`, ErrPolicyDenied},
		{"version mismatch", 401, `{"type":"` + p + `AttestationError","detail":"Attestation error: RCAR handshake Auth failed: KBS Client Protocol Version Mismatch: expect =0.4.0 while the request is 0.1.0"}`, ErrVersionMismatch},
		{"attest failed", 401, `{"type":"` + p + `AttestationError","detail":"Attestation error: RCAR handshake Attest failed"}`, ErrAttestationFailed},
		{"session expired", 401, `{"type":"` + p + `AttestationError","detail":"Attestation error: RCAR handshake Attest failed: session expired"}`, ErrSessionExpired},
		{"token not found", 401, `{"type":"` + p + `TokenNotFound","detail":"Attestation Token not found"}`, ErrUnauthorized},
		{"missing resource", 401, `{"type":"` + p + `PluginInternalError","detail":"Plugin internal error"}`, ErrKBSInternal},
		{"plugin not found", 404, `{"type":"` + p + `PluginNotFound","detail":"Plugin foo not found"}`, ErrNotFound},
		{"bad path", 404, `{"type":"` + p + `InvalidRequestPath","detail":"x"}`, ErrNotFound},
		{"plain text 502", 502, `Bad Gateway`, ErrKBSInternal},
		{"plain text 404", 404, `not here`, ErrNotFound},
		{"plain 401", 401, ``, ErrUnauthorized},
		{"unknown variant 400", 400, `{"type":"` + p + `Whatever","detail":"?"}`, ErrBadReply},
	}
	all := []error{ErrPolicyDenied, ErrVersionMismatch, ErrAttestationFailed, ErrSessionExpired, ErrUnauthorized, ErrKBSInternal, ErrNotFound, ErrBadReply}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := error(DecodeError(tc.status, []byte(tc.body)))
			for _, class := range all {
				assert.Equal(t, class == tc.want, errors.Is(err, class), "class %v", class)
			}
			assert.Contains(t, err.Error(), "HTTP")
		})
	}
}

func TestDecodeErrorTruncatesJunk(t *testing.T) {
	se := DecodeError(500, []byte(strings.Repeat("x", 10000)+"\xff"))
	assert.Less(t, len(se.Detail), 300)
}

func TestServerErrorRoundTrip(t *testing.T) {
	e := NewServerError(401, "PolicyDeny", "Access denied by policy")
	body, err := json.Marshal(e.Info())
	require.NoError(t, err)
	got := DecodeError(401, body)
	assert.Equal(t, e, got)
	assert.Equal(t, "PolicyDeny", got.Variant())
}

func TestDecodeEvidence(t *testing.T) {
	rd, err := DecodeSampleEvidence([]byte(`{"svn":"1","report_data":"AAEC"}`))
	require.NoError(t, err)
	assert.Equal(t, []byte{0, 1, 2}, rd)
	_, err = DecodeSampleEvidence([]byte(`{"svn":"1","report_data":"!!"}`))
	assert.Error(t, err)
	q, err := DecodeTDXEvidence([]byte(`{"cc_eventlog":null,"quote":"AAEC"}`))
	require.NoError(t, err)
	assert.Equal(t, []byte{0, 1, 2}, q)
	_, err = DecodeTDXEvidence([]byte(`{"quote":""}`))
	assert.Error(t, err)
}

func TestDecodeRequestAndAttestation(t *testing.T) {
	req := NewRequest(TEETDX)
	body, err := json.Marshal(req)
	require.NoError(t, err)
	assert.JSONEq(t, `{"version":"0.4.0","tee":"tdx","extra-params":{"supported-hash-algorithms":["sha256","sha384","sha512","sm3"]}}`, string(body))
	got, err := DecodeRequest(body)
	require.NoError(t, err)
	assert.Equal(t, "0.4.0", got.Version)
	_, err = DecodeRequest([]byte(`{"version":"0.4.0"}`))
	assert.Error(t, err)

	att := Attestation{
		RuntimeData: RuntimeData{Nonce: "n", TeePubKey: TeePubKey{Kty: "EC", Crv: "P-256", Alg: "ECDH-ES+A256KW", X: "x", Y: "y"}},
		TeeEvidence: CompositeEvidence{PrimaryEvidence: json.RawMessage(`{"quote":"AA=="}`)},
	}
	body, err = json.Marshal(att)
	require.NoError(t, err)
	assert.JSONEq(t, `{"init-data":null,"runtime-data":{"nonce":"n","tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","x":"x","y":"y"}},"tee-evidence":{"primary_evidence":{"quote":"AA=="},"additional_evidence":""}}`, string(body))
	back, err := DecodeAttestation(body)
	require.NoError(t, err)
	assert.Equal(t, "n", back.RuntimeData.Nonce)
	_, err = DecodeAttestation([]byte(`{"runtime-data":{"nonce":"n"}}`))
	assert.Error(t, err)
}
