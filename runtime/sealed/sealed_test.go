package sealed

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/models"
)

func randomKey(t testing.TB, n int) []byte {
	t.Helper()
	k := make([]byte, n)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return k
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want Format
	}{
		{"jwe", []byte("eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..a.b.c"), FormatJWE},
		{"openssl", append([]byte("Salted__"), make([]byte, 24)...), FormatOpenSSL},
		{"onnx", models.FraudONNX, FormatPlain},
		{"empty", nil, FormatPlain},
		{"almost jwe", []byte("eyX"), FormatPlain},
		{"almost openssl", []byte("Salted_"), FormatPlain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Detect(tt.in))
		})
	}
}

func TestIsModelFileName(t *testing.T) {
	for name, want := range map[string]bool{
		"model.onnx":          true,
		"1/model.onnx.jwe":    true,
		"/x/1/model.onnx.enc": true,
		"MODEL.ONNX.JWE":      true,
		"model.onnx.bak":      false,
		"scaler.json":         false,
		"model.jwe":           false,
	} {
		assert.Equal(t, want, IsModelFileName(name), name)
	}
}

func TestJWERoundTrip(t *testing.T) {
	for _, alg := range []jose.KeyAlgorithm{jose.DIRECT, jose.A128KW, jose.A192KW, jose.A256KW} {
		for _, enc := range []jose.ContentEncryption{jose.A128GCM, jose.A192GCM, jose.A256GCM} {
			t.Run(string(alg)+"/"+string(enc), func(t *testing.T) {
				n := kekSize[alg]
				if alg == jose.DIRECT {
					n = cekSize[enc]
				}
				key := randomKey(t, n)
				sealed, err := SealJWE(models.FraudONNX, key, alg, enc)
				require.NoError(t, err)
				assert.Equal(t, FormatJWE, Detect(sealed))
				assert.False(t, bytes.Contains(sealed, models.FraudONNX[:64]))

				plain, err := Open(sealed, key, OpenOptions{})
				require.NoError(t, err)
				assert.Equal(t, models.FraudONNX, plain)
			})
		}
	}
}

func TestJWEKeyAsOctJWK(t *testing.T) {
	key := randomKey(t, 32)
	sealed, err := SealJWE(models.FraudONNX, key, jose.A256KW, jose.A256GCM)
	require.NoError(t, err)
	jwk, err := json.Marshal(jose.JSONWebKey{Key: key})
	require.NoError(t, err)
	require.Contains(t, string(jwk), `"kty":"oct"`)

	plain, err := Open(sealed, append(jwk, '\n'), OpenOptions{})
	require.NoError(t, err)
	assert.Equal(t, models.FraudONNX, plain)
}

// TestJWEHandBuilt checks interop with a producer other than go-jose: a
// dir/A256GCM JWE assembled by hand from RFC 7516 with the standard library.
func TestJWEHandBuilt(t *testing.T) {
	key := randomKey(t, 32)
	b64 := base64.RawURLEncoding
	header := b64.EncodeToString([]byte(`{"alg":"dir","enc":"A256GCM","cty":"application/octet-stream"}`))
	block, err := aes.NewCipher(key)
	require.NoError(t, err)
	gcm, err := cipher.NewGCM(block)
	require.NoError(t, err)
	iv := randomKey(t, gcm.NonceSize())
	sealed := gcm.Seal(nil, iv, models.FraudONNX, []byte(header))
	ct, tag := sealed[:len(sealed)-16], sealed[len(sealed)-16:]
	compact := strings.Join([]string{header, "", b64.EncodeToString(iv), b64.EncodeToString(ct), b64.EncodeToString(tag)}, ".") + "\n"

	plain, err := Open([]byte(compact), key, OpenOptions{})
	require.NoError(t, err)
	assert.Equal(t, models.FraudONNX, plain)
}

// jweWithHeader builds a syntactically valid compact JWE whose protected
// header is hdr, to exercise header checks that run before decryption.
func jweWithHeader(hdr string) []byte {
	b64 := base64.RawURLEncoding
	return []byte(b64.EncodeToString([]byte(hdr)) + "..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA")
}

func TestJWEErrors(t *testing.T) {
	key := randomKey(t, 32)
	good, err := SealJWE(models.FraudONNX, key, jose.DIRECT, jose.A256GCM)
	require.NoError(t, err)
	parts := strings.Split(string(good), ".")
	flip := func(part int) []byte {
		p := append([]string(nil), parts...)
		raw, err := base64.RawURLEncoding.DecodeString(p[part])
		require.NoError(t, err)
		raw[len(raw)/2] ^= 0x01
		p[part] = base64.RawURLEncoding.EncodeToString(raw)
		return []byte(strings.Join(p, "."))
	}
	otherKey := randomKey(t, 32)
	notModel, err := SealJWE([]byte("not a model at all"), key, jose.DIRECT, jose.A256GCM)
	require.NoError(t, err)

	tests := []struct {
		name string
		data []byte
		key  []byte
		want error
	}{
		{"wrong key", good, otherKey, ErrDecrypt},
		{"tampered ciphertext", flip(3), key, ErrDecrypt},
		{"tampered tag", flip(4), key, ErrDecrypt},
		{"tampered iv", flip(2), key, ErrDecrypt},
		{"short key", good, key[:16], ErrBadKey},
		{"key neither raw nor JWK", good, []byte("0123456789"), ErrBadKey},
		{"EC JWK", good, []byte(`{"kty":"EC","crv":"P-256","x":"WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis","y":"y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE"}`), ErrBadKey},
		{"zip refused", jweWithHeader(`{"alg":"dir","enc":"A256GCM","zip":"DEF"}`), key, ErrUnsupported},
		{"crit refused", jweWithHeader(`{"alg":"dir","enc":"A256GCM","crit":["exp"],"exp":1}`), key, ErrUnsupported},
		{"RSA alg refused", jweWithHeader(`{"alg":"RSA-OAEP-256","enc":"A256GCM"}`), key, ErrUnsupported},
		{"PBES2 refused", jweWithHeader(`{"alg":"PBES2-HS256+A128KW","enc":"A256GCM","p2c":1000000000}`), key, ErrUnsupported},
		{"CBC-HS enc refused", jweWithHeader(`{"alg":"dir","enc":"A128CBC-HS256"}`), key, ErrUnsupported},
		{"header not JSON", []byte("eyJub3Q.a.b.c.d"), key, ErrMalformed},
		{"four parts", []byte(strings.Join(parts[:4], ".")), key, ErrMalformed},
		{"decrypts to non-ONNX", notModel, key, ErrNotModel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plain, err := Open(tt.data, tt.key, OpenOptions{})
			require.ErrorIs(t, err, tt.want)
			assert.Nil(t, plain)
		})
	}
}

func TestSealJWERefusesBadArgs(t *testing.T) {
	_, err := SealJWE([]byte("x"), make([]byte, 16), jose.DIRECT, jose.A256GCM)
	assert.ErrorIs(t, err, ErrBadKey)
	_, err = SealJWE([]byte("x"), make([]byte, 32), jose.RSA_OAEP_256, jose.A256GCM)
	assert.ErrorIs(t, err, ErrUnsupported)
}

func TestKFilePassphrase(t *testing.T) {
	// Expectations checked against OpenSSL 3.0 `enc -kfile`.
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{"plain line", "secret\n", "secret", false},
		{"no newline", "secret", "secret", false},
		{"CRLF", "ab\r\n", "ab", false},
		{"many trailing CR LF", "ab\r\r\n\n", "ab", false},
		{"only first line", "first\nsecond\n", "first", false},
		{"inner CR kept", "a\rb\n", "a\rb", false},
		{"NUL cuts", "ab\x00cd\n", "ab", false},
		{"127 bytes max", strings.Repeat("x", 200) + "\n", strings.Repeat("x", 127), false},
		{"single char refused", "a\n", "", true},
		{"single char no newline refused", "a", "", true},
		{"NUL after one char refused", "a\x00bc\n", "", true},
		{"empty line refused", "\n", "", true},
		{"empty refused", "", "", true},
		{"leading NUL refused", "\x00abc\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := KFilePassphrase([]byte(tt.in))
			if tt.wantErr {
				require.ErrorIs(t, err, ErrBadKey)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
}

// The testdata files were made with OpenSSL 3.0.19:
//
//	openssl enc -aes-256-cbc -pbkdf2 -kfile kfile.txt -in models/fraud/1/model.onnx -out fraud-cbc.onnx.enc
//	openssl enc -aes-256-cfb -pbkdf2 -kfile kfile.txt -in models/fraud/1/model.onnx -out fraud-cfb.onnx.enc
func TestOpenSSLVectors(t *testing.T) {
	kfile, err := os.ReadFile(filepath.Join("testdata", "kfile.txt"))
	require.NoError(t, err)
	tests := []struct {
		file   string
		cipher OpenSSLCipher
	}{
		{"fraud-cbc.onnx.enc", OpenSSLCBC},
		{"fraud-cbc.onnx.enc", OpenSSLAuto},
		{"fraud-cfb.onnx.enc", OpenSSLCFB},
		{"fraud-cfb.onnx.enc", OpenSSLAuto},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.cipher.String(), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			require.NoError(t, err)
			require.Equal(t, FormatOpenSSL, Detect(data))
			plain, err := Open(data, bytes.Clone(kfile), OpenOptions{OpenSSLCipher: tt.cipher})
			require.NoError(t, err)
			assert.Equal(t, models.FraudONNX, plain)
		})
	}
}

func TestOpenSSLErrors(t *testing.T) {
	kfile, err := os.ReadFile(filepath.Join("testdata", "kfile.txt"))
	require.NoError(t, err)
	cbc, err := os.ReadFile(filepath.Join("testdata", "fraud-cbc.onnx.enc"))
	require.NoError(t, err)
	cfb, err := os.ReadFile(filepath.Join("testdata", "fraud-cfb.onnx.enc"))
	require.NoError(t, err)
	// CFB maps a ciphertext bit flip to the same plaintext bit: turn the
	// first protobuf tag (field 1, varint) into an invalid wire type.
	tampered := bytes.Clone(cfb)
	tampered[16] ^= 0x07

	tests := []struct {
		name   string
		data   []byte
		key    []byte
		cipher OpenSSLCipher
		want   error
	}{
		{"wrong key CBC", cbc, []byte("another passphrase\n"), OpenSSLCBC, ErrDecrypt},
		{"wrong key auto", cbc, []byte("another passphrase\n"), OpenSSLAuto, ErrNotModel},
		{"wrong cipher", cfb, kfile, OpenSSLCBC, ErrMalformed},
		{"tampered CFB", tampered, kfile, OpenSSLCFB, ErrNotModel},
		{"truncated CBC", cbc[:len(cbc)-5], kfile, OpenSSLCBC, ErrMalformed},
		{"header only", cbc[:16], kfile, OpenSSLCBC, ErrMalformed},
		{"no salt", cbc[:12], kfile, OpenSSLAuto, ErrMalformed},
		{"single-char passphrase", cbc, []byte("k\n"), OpenSSLAuto, ErrBadKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plain, err := Open(tt.data, tt.key, OpenOptions{OpenSSLCipher: tt.cipher})
			require.ErrorIs(t, err, tt.want)
			assert.Nil(t, plain)
		})
	}
}

// TestOpenSSLCFBIsMalleable records why openssl files are not recommended:
// a flip inside the weights still decrypts to a well-formed, different model.
func TestOpenSSLCFBIsMalleable(t *testing.T) {
	kfile, err := os.ReadFile(filepath.Join("testdata", "kfile.txt"))
	require.NoError(t, err)
	cfb, err := os.ReadFile(filepath.Join("testdata", "fraud-cfb.onnx.enc"))
	require.NoError(t, err)
	last := bytes.Clone(cfb)
	last[len(last)-1] ^= 0x01 // the final byte has no following block to garble
	plain, err := Open(last, kfile, OpenOptions{OpenSSLCipher: OpenSSLCFB})
	require.NoError(t, err, "CFB cannot detect this change; only JWE (AES-GCM) would")
	assert.NotEqual(t, models.FraudONNX, plain)
}

func TestOpenSSLNeedsCheck(t *testing.T) {
	cbc, err := os.ReadFile(filepath.Join("testdata", "fraud-cbc.onnx.enc"))
	require.NoError(t, err)
	_, err = OpenOpenSSL(cbc, []byte("veil-test-passphrase-not-secret\n"), OpenSSLCBC, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not authenticated")
}

func TestOpenRefusesPlainAndLarge(t *testing.T) {
	_, err := Open(models.FraudONNX, make([]byte, 32), OpenOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a sealed file")

	big := append([]byte("eyJ"), make([]byte, 100)...)
	_, err = Open(big, make([]byte, 32), OpenOptions{MaxBytes: 64})
	assert.ErrorIs(t, err, ErrTooLarge)
}

func TestParseOpenSSLCipher(t *testing.T) {
	for in, want := range map[string]OpenSSLCipher{"": OpenSSLAuto, "auto": OpenSSLAuto, "cbc": OpenSSLCBC, "aes-256-cbc": OpenSSLCBC, "cfb": OpenSSLCFB, "aes-256-cfb": OpenSSLCFB} {
		got, err := ParseOpenSSLCipher(in)
		require.NoError(t, err)
		assert.Equal(t, want, got, in)
	}
	_, err := ParseOpenSSLCipher("des")
	assert.ErrorIs(t, err, ErrUnsupported)
}

func TestCheckONNX(t *testing.T) {
	require.NoError(t, CheckONNX(models.FraudONNX))
	tests := map[string][]byte{
		"empty":           nil,
		"text":            []byte("hello world, this is not protobuf"),
		"truncated":       models.FraudONNX[:len(models.FraudONNX)-3],
		"no graph":        {0x08, 0x07},
		"random":          randomKey(t, 4096),
		"graph as varint": {0x08, 0x07, 0x38, 0x01},
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			assert.ErrorIs(t, CheckONNX(in), ErrNotModel)
		})
	}
}

func TestZero(t *testing.T) {
	b := []byte{1, 2, 3}
	Zero(b)
	assert.Equal(t, []byte{0, 0, 0}, b)
}
