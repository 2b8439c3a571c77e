package protocol

import (
	"errors"
	"testing"
)

func FuzzDecodeChallenge(f *testing.F) {
	for _, s := range []string{
		`{"nonce":"q1Zx7hJ0XvJb2Y0nWm1p0QmS5W0Y3m2L2QvX8a3o9Ew=","extra-params":""}`,
		`{"nonce":"n","extra-params":{"selected-hash-algorithm":"sha512"}}`,
		`{"nonce":"n","extra-params":{"selected-hash-algorithm":1}}`,
		`{"nonce":""}`, `[]`, `null`, `{"nonce":"n"} x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeChallenge(b)
		if err != nil {
			if !errors.Is(err, ErrBadReply) {
				t.Fatalf("error not classed as a bad reply: %v", err)
			}
			return
		}
		if c.Nonce == "" {
			t.Fatal("accepted an empty nonce")
		}
		if _, err := c.HashAlgorithm(); err != nil {
			t.Fatalf("accepted challenge has no usable hash: %v", err)
		}
	})
}

func FuzzDecodeAttestResponse(f *testing.F) {
	for _, s := range []string{`{"token":"eyJhbGciOiJFUzI1NiJ9.e30.sig"}`, `{"token":""}`, `{}`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeAttestResponse(b)
		if err == nil && r.Token == "" {
			t.Fatal("accepted an empty token")
		}
	})
}

func FuzzDecodeError(f *testing.F) {
	f.Add(401, []byte(`{"type":"https://github.com/confidential-containers/kbs/errors/PolicyDeny","detail":"Access denied by policy"}`))
	f.Add(404, []byte(`{"type":"https://github.com/confidential-containers/kbs/errors/PluginNotFound","detail":"Plugin x not found"}`))
	f.Add(502, []byte(`<html>bad gateway</html>`))
	f.Add(401, []byte{})
	f.Fuzz(func(t *testing.T, status int, b []byte) {
		e := DecodeError(status, b)
		if e == nil || e.Status != status {
			t.Fatal("DecodeError lost the status")
		}
		if e.Class() == nil {
			t.Fatal("every server error has a class")
		}
		_ = e.Error()
	})
}

func FuzzDecodeAttestation(f *testing.F) {
	f.Add([]byte(`{"init-data":null,"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"x","y":"y"}},"tee-evidence":{"primary_evidence":{"svn":"1","report_data":"AA=="},"additional_evidence":""}}`))
	f.Add([]byte(`{"runtime-data":{"nonce":""}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAttestation(b)
		if err != nil {
			return
		}
		if a.RuntimeData.Nonce == "" || len(a.TeeEvidence.PrimaryEvidence) == 0 {
			t.Fatal("accepted an attestation without nonce or evidence")
		}
		// Whatever was accepted must canonicalise or fail cleanly.
		_, _ = RuntimeDataDigest("sha384", a.RuntimeData.Nonce, a.RuntimeData.TeePubKey, a.TeeEvidence.AdditionalEvidence)
	})
}

func FuzzDecodeEvidence(f *testing.F) {
	f.Add([]byte(`{"svn":"1","report_data":"AAEC"}`))
	f.Add([]byte(`{"cc_eventlog":null,"quote":"AAEC"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeSampleEvidence(b)
		if q, err := DecodeTDXEvidence(b); err == nil && len(q) == 0 {
			t.Fatal("accepted an empty quote")
		}
	})
}
