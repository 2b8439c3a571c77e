package protocol

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// specKey and specNonce are the inputs of the worked vector in
// shared/spec/kbs-protocol.md §1.6.
var specKey = TeePubKey{
	Kty: "EC", Crv: "P-256", Alg: "ECDH-ES+A256KW",
	X: "WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis",
	Y: "y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE",
}

const specNonce = "q1Zx7hJ0XvJb2Y0nWm1p0QmS5W0Y3m2L2QvX8a3o9Ew="

func TestRuntimeDataSpecVector(t *testing.T) {
	canon, err := CanonicalRuntimeData(specNonce, specKey, "")
	require.NoError(t, err)
	assert.Equal(t, `{"additional-evidence":"","nonce":"q1Zx7hJ0XvJb2Y0nWm1p0QmS5W0Y3m2L2QvX8a3o9Ew=","tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","x":"WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis","y":"y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE"}}`, string(canon))

	digest, err := RuntimeDataDigest("sha384", specNonce, specKey, "")
	require.NoError(t, err)
	assert.Equal(t, "b39f22c2447de5a7f946c67ca5e95c6a639ce36c29929eb7bbb6ff464515492f3804d05ea48db6c89f2ea1f8d33aa9e7", hex.EncodeToString(digest))

	rd, err := TDXReportData(digest)
	require.NoError(t, err)
	assert.Equal(t, "b39f22c2447de5a7f946c67ca5e95c6a639ce36c29929eb7bbb6ff464515492f3804d05ea48db6c89f2ea1f8d33aa9e700000000000000000000000000000000", hex.EncodeToString(rd[:]))
}

func TestRuntimeDataDigestAlgorithms(t *testing.T) {
	tests := []struct {
		alg     string
		size    int
		wantErr bool
	}{
		{"sha256", 32, false},
		{"sha384", 48, false},
		{"sha512", 64, false},
		{"sm3", 0, true},
		{"", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.alg, func(t *testing.T) {
			d, err := RuntimeDataDigest(tc.alg, specNonce, specKey, "")
			if tc.wantErr {
				require.ErrorIs(t, err, ErrBadReply)
				return
			}
			require.NoError(t, err)
			assert.Len(t, d, tc.size)
		})
	}
}

func TestCanonicalRuntimeDataEscaping(t *testing.T) {
	tests := []struct {
		name, nonce, want string
	}{
		// JCS leaves '<', '>', '&' and U+2028 alone (Go's encoding/json would escape them).
		{"html characters", "a<b>&c", `"nonce":"a<b>&c"`},
		{"line separator", "x\u2028y", "\"nonce\":\"x\u2028y\""},
		{"quote and backslash", `q"\`, `"nonce":"q\"\\"`},
		{"control characters", "\x01\n", `"nonce":"\u0001\n"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			canon, err := CanonicalRuntimeData(tc.nonce, specKey, "")
			require.NoError(t, err)
			assert.Contains(t, string(canon), tc.want)
		})
	}
	_, err := CanonicalRuntimeData("\xff", specKey, "")
	assert.Error(t, err, "invalid UTF-8 must be refused")
}

func TestCanonicalRuntimeDataRSAKeyOrder(t *testing.T) {
	canon, err := CanonicalRuntimeData("n", TeePubKey{Kty: "RSA", Alg: "RSA-OAEP-256", N: "AQAB", E: "AQAB"}, "ev")
	require.NoError(t, err)
	assert.Equal(t, `{"additional-evidence":"ev","nonce":"n","tee-pubkey":{"alg":"RSA-OAEP-256","e":"AQAB","kty":"RSA","n":"AQAB"}}`, string(canon))
}

func TestLessUTF16(t *testing.T) {
	// U+FF61 sorts after U+1F600 in UTF-8 byte order but before it in UTF-16.
	assert.True(t, lessUTF16("\U0001F600", "\uFF61"))
	assert.False(t, lessUTF16("\uFF61", "\U0001F600"))
	assert.True(t, lessUTF16("a", "ab"))
}

func TestTDXReportDataTooLong(t *testing.T) {
	_, err := TDXReportData(make([]byte, 65))
	assert.Error(t, err)
	rd, err := TDXReportData([]byte{1, 2})
	require.NoError(t, err)
	assert.Equal(t, byte(2), rd[1])
	assert.Equal(t, byte(0), rd[63])
}
