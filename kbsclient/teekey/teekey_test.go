package teekey

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/kbsclient/protocol"
)

func TestRoundTrip(t *testing.T) {
	for _, alg := range []Algorithm{"", ECDHP256, RSAOAEP256} {
		t.Run(string(alg), func(t *testing.T) {
			k, err := Generate(alg)
			require.NoError(t, err)
			pub, err := k.Public()
			require.NoError(t, err)
			require.NoError(t, ValidatePublic(pub))
			msg := []byte("model key bytes")
			jwe, err := Encrypt(pub, msg)
			require.NoError(t, err)
			got, err := k.Decrypt(jwe)
			require.NoError(t, err)
			assert.Equal(t, msg, got)

			other, err := Generate(alg)
			require.NoError(t, err)
			_, err = other.Decrypt(jwe)
			assert.ErrorIs(t, err, protocol.ErrDecrypt, "another key must not open it")
		})
	}
}

// TestTrusteeShape checks what a Trustee KBS (and a Rust client) expects:
// flattened JSON, everything in the protected header, A256GCM.
func TestTrusteeShape(t *testing.T) {
	k, err := Generate(ECDHP256)
	require.NoError(t, err)
	pub, err := k.Public()
	require.NoError(t, err)
	jwe, err := Encrypt(pub, []byte("x"))
	require.NoError(t, err)
	var flat map[string]any
	require.NoError(t, json.Unmarshal(jwe, &flat))
	for _, f := range []string{"protected", "encrypted_key", "iv", "ciphertext", "tag"} {
		assert.Contains(t, flat, f)
	}
	assert.NotContains(t, flat, "recipients")
	assert.NotContains(t, flat, "header")
	raw, err := base64.RawURLEncoding.DecodeString(flat["protected"].(string))
	require.NoError(t, err)
	// A Rust client re-serialises the header for the AAD, so the bytes must
	// already be in its (sorted, compact) order.
	assert.Regexp(t, `^\{"alg":"ECDH-ES\+A256KW","enc":"A256GCM","epk":\{"crv":"P-256","kty":"EC","x":"[A-Za-z0-9_-]{43}","y":"[A-Za-z0-9_-]{43}"\}\}$`, string(raw))
	var hdr map[string]any
	require.NoError(t, json.Unmarshal(raw, &hdr))
	assert.Equal(t, "ECDH-ES+A256KW", hdr["alg"])
	assert.Equal(t, "A256GCM", hdr["enc"])
	assert.Contains(t, hdr, "epk")
	ek, err := base64.RawURLEncoding.DecodeString(flat["encrypted_key"].(string))
	require.NoError(t, err)
	assert.Len(t, ek, 40, "AES-256-KW of a 32-byte CEK")
}

// TestFixedLengthCoordinates generates keys until one has a coordinate with
// a leading zero byte (about 1 in 128) and checks it is still 32 bytes.
func TestFixedLengthCoordinates(t *testing.T) {
	sawShort := false
	for i := 0; i < 3000 && !sawShort; i++ {
		k, err := Generate(ECDHP256)
		require.NoError(t, err)
		pub, err := k.Public()
		require.NoError(t, err)
		x, err := base64.RawURLEncoding.DecodeString(pub.X)
		require.NoError(t, err)
		y, err := base64.RawURLEncoding.DecodeString(pub.Y)
		require.NoError(t, err)
		require.Len(t, x, 32)
		require.Len(t, y, 32)
		sawShort = x[0] == 0 || y[0] == 0
	}
	assert.True(t, sawShort, "no coordinate with a leading zero was generated")
}

func TestValidatePublicRejects(t *testing.T) {
	k, err := Generate(ECDHP256)
	require.NoError(t, err)
	good, err := k.Public()
	require.NoError(t, err)
	short := good
	short.X = base64.RawURLEncoding.EncodeToString(make([]byte, 31))
	offCurve := good
	offCurve.Y = base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	p521 := good
	p521.Crv = "P-521"
	tests := map[string]protocol.TeePubKey{
		"short coordinate": short,
		"off curve":        offCurve,
		"other curve":      p521,
		"RSA-OAEP (SHA-1)": {Kty: "RSA", Alg: "RSA-OAEP", N: "AQAB", E: "AQAB"},
		"RSA1_5":           {Kty: "RSA", Alg: "RSA1_5", N: "AQAB", E: "AQAB"},
		"tiny RSA":         {Kty: "RSA", Alg: "RSA-OAEP-256", N: "AQAB", E: "AQAB"},
		"empty":            {},
	}
	for name, pub := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Error(t, ValidatePublic(pub))
		})
	}
}

func TestDecryptRefusesHeaders(t *testing.T) {
	k, err := Generate(ECDHP256)
	require.NoError(t, err)
	pub, err := k.Public()
	require.NoError(t, err)
	ecPub, _, err := publicKey(pub)
	require.NoError(t, err)

	// A JWE from another implementation (go-jose orders epk differently)
	// opens, since the AAD is the protected header as received.
	plain, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.ECDH_ES_A256KW, Key: ecPub}, nil)
	require.NoError(t, err)
	obj, err := plain.Encrypt([]byte("from go-jose"))
	require.NoError(t, err)
	pt, err := k.Decrypt([]byte(obj.FullSerialize()))
	require.NoError(t, err)
	assert.Equal(t, "from go-jose", string(pt))

	compressed, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.ECDH_ES_A256KW, Key: ecPub}, &jose.EncrypterOptions{Compression: jose.DEFLATE})
	require.NoError(t, err)
	obj, err = compressed.Encrypt([]byte("x"))
	require.NoError(t, err)
	_, err = k.Decrypt([]byte(obj.FullSerialize()))
	assert.ErrorIs(t, err, protocol.ErrDecrypt)
	assert.Contains(t, err.Error(), "zip")

	wrongEnc, err := jose.NewEncrypter(jose.A128GCM, jose.Recipient{Algorithm: jose.ECDH_ES_A256KW, Key: ecPub}, nil)
	require.NoError(t, err)
	obj, err = wrongEnc.Encrypt([]byte("x"))
	require.NoError(t, err)
	_, err = k.Decrypt([]byte(obj.FullSerialize()))
	assert.ErrorIs(t, err, protocol.ErrDecrypt, "only A256GCM is accepted")
}

func FuzzDecrypt(f *testing.F) {
	k, err := Generate(ECDHP256)
	if err != nil {
		f.Fatal(err)
	}
	pub, err := k.Public()
	if err != nil {
		f.Fatal(err)
	}
	good, err := Encrypt(pub, []byte("secret"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"ciphertext":"dpTMvd0XS-rtrj7OfABSnzSIs_lxpaPseeTvB9guAcM","encrypted_key":"qNvIcT0OdSrs_t9nFbCxi-aq_eM-mKGrMC3rsW5p8TkWseH_paNQ7g","iv":"Iq5BGnM9QPJvOC9H","protected":"eyJhbGciOiJFQ0RILUVTK0EyNTZLVyIsImVuYyI6IkEyNTZHQ00iLCJlcGsiOnsiY3J2IjoiUC0yNTYiLCJrdHkiOiJFQyIsIngiOiJqVmtOY0hyTDNjX0RvQldOTzdOMVg4WmxuZ0ZYTmhPbmwwVkN4cWdXd0dvIiwieSI6Ink2Q3k3ZzlDZC0wV3oyVU1KdFF2MmxfVF9oM3kzUFhtajBvYlNCajF6amcifX0","tag":"h8QtYKXL0uaKuNnH6UvuOw"}`))
	f.Add([]byte(`{"protected":"e30","ciphertext":"","iv":"","tag":""}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Anyone may encrypt to a public key, so success proves little;
		// what matters is no panic and every failure classed as ErrDecrypt.
		if _, err := k.Decrypt(b); err != nil && !errors.Is(err, protocol.ErrDecrypt) {
			t.Fatalf("failure not classed as ErrDecrypt: %v", err)
		}
	})
}
