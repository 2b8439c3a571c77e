package devkbs

import (
	"net/http"
	"testing"

	"github.com/veil-ai/veil/kbsclient/protocol"
)

// FuzzAttestHandler feeds arbitrary /attest bodies (sample and tdx sessions)
// to the server: it must answer Trustee error JSON, never panic, and never
// accept evidence it did not verify.
func FuzzAttestHandler(f *testing.F) {
	f.Add(false, []byte(`{"init-data":null,"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"x","y":"y"}},"tee-evidence":{"primary_evidence":{"svn":"1","report_data":"AA=="},"additional_evidence":""}}`))
	f.Add(true, []byte(`{"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"RSA","alg":"RSA-OAEP-256","n":"AQAB","e":"AQAB"}},"tee-evidence":{"primary_evidence":{"quote":"AAAA"},"additional_evidence":""}}`))
	f.Add(true, []byte(`{"init-data":{"format":"toml","body":"[x"},"runtime-data":{"nonce":"n"},"tee-evidence":{"primary_evidence":{}}}`))
	f.Add(false, []byte(`{`))
	f.Fuzz(func(t *testing.T, tdx bool, body []byte) {
		s := newServer(t, nil)
		tee := "sample"
		if tdx {
			tee = "tdx"
		}
		cookie, _ := handshake(t, s, tee)
		r := call(t, s, http.MethodPost, protocol.PathAttest, body, map[string]string{"Cookie": protocol.SessionCookie + "=" + cookie})
		if r.status == http.StatusOK {
			// The nonce is random per session, so random input cannot match it.
			t.Fatalf("accepted an attestation for a nonce it never saw: %s", body)
		}
		if se := protocol.DecodeError(r.status, r.body); se.Type == "" {
			t.Fatalf("error reply is not Trustee error JSON: %q", r.body)
		}
	})
}
