package sealed

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/veil-ai/veil/models"
)

// FuzzOpenJWE feeds arbitrary compact JWEs and keys to the JWE path: it must
// never panic and must never return plaintext for input it did not
// authenticate.
func FuzzOpenJWE(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 32)
	for _, alg := range []jose.KeyAlgorithm{jose.DIRECT, jose.A256KW} {
		s, err := SealJWE([]byte("seed plaintext"), key, alg, jose.A256GCM)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s, key)
	}
	f.Add(jweWithHeader(`{"alg":"dir","enc":"A256GCM","zip":"DEF"}`), key)
	f.Add([]byte("eyJ...."), []byte(`{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAA"}`))
	f.Fuzz(func(t *testing.T, data, k []byte) {
		if _, err := ParseJWEKey(k); err != nil {
			return
		}
		plain, err := Open(data, k, OpenOptions{Check: func([]byte) error { return nil }, MaxBytes: 1 << 20})
		if err == nil && Detect(data) != FormatJWE {
			t.Fatalf("non-JWE input %q opened to %q", data, plain)
		}
	})
}

// FuzzOpenOpenSSL feeds arbitrary openssl files and key files; decryption
// of garbage must fail cleanly (padding or the ONNX check), never panic.
func FuzzOpenOpenSSL(f *testing.F) {
	for _, name := range []string{"fraud-cbc.onnx.enc", "fraud-cfb.onnx.enc"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data[:min(len(data), 512)], []byte("veil-test-passphrase-not-secret\n"), uint8(0))
	}
	f.Add([]byte("Salted__12345678"), []byte("ab\r\n"), uint8(1))
	f.Add([]byte("Salted__"), []byte("\x00"), uint8(2))
	f.Fuzz(func(t *testing.T, data, kfile []byte, mode uint8) {
		c := OpenSSLCipher(mode % 3)
		plain, err := OpenOpenSSL(data, kfile, c, CheckONNX)
		if err == nil && CheckONNX(plain) != nil {
			t.Fatalf("accepted a plaintext that is not ONNX")
		}
	})
}

// FuzzKFilePassphrase checks the -kfile rule's invariants on any input.
func FuzzKFilePassphrase(f *testing.F) {
	for _, s := range []string{"secret\n", "ab\r\n", "a\n", "ab\x00cd", "", "\n\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, kfile []byte) {
		pass, err := KFilePassphrase(kfile)
		if err != nil {
			return
		}
		if len(pass) < 2 || len(pass) > kfileBufSize-1 || bytes.IndexByte(pass, 0) >= 0 || bytes.IndexByte(pass, '\n') >= 0 {
			t.Fatalf("passphrase %q breaks the -kfile rule", pass)
		}
		if !bytes.HasPrefix(kfile, pass) {
			t.Fatalf("passphrase %q is not a prefix of the key file", pass)
		}
	})
}

// FuzzCheckONNX makes sure the wire-level model check never panics and
// accepts the shipped model.
func FuzzCheckONNX(f *testing.F) {
	f.Add(models.FraudONNX)
	f.Add([]byte{0x08, 0x07, 0x3a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = CheckONNX(b)
	})
}
