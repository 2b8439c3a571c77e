package initdata

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testCert = `-----BEGIN CERTIFICATE-----
MIIBszCCAVmgAwIBAgIUQ2VydGlmaWNhdGVGb3JUZXN0c09ubHkwCgYIKoZIzj0E
-----END CERTIFICATE-----
`

func TestBuildRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		alg  Algorithm
	}{
		{"url only", Config{KBSURL: "https://kbs.example.com"}, SHA256},
		{"pinned cert", Config{KBSURL: "https://kbs.example.com:8080", KBSCertPEM: testCert}, SHA256},
		{"image policy", Config{KBSURL: "http://10.0.0.4:8080", ImagePolicyURI: "kbs:///default/image-policy/policy"}, SHA256},
		{"custom policy sha384", Config{KBSURL: "https://kbs.example.com", AgentPolicy: "package agent_policy\ndefault ExecProcessRequest := false\n", Algorithm: SHA384}, SHA384},
		{"sha512", Config{KBSURL: "https://kbs.example.com", Algorithm: SHA512}, SHA512},
		{"policy with quotes and backslashes", Config{KBSURL: "https://kbs.example.com", AgentPolicy: "package agent_policy\n# ''' and \"\"\" inside\nallowed := regex.match(`^/bin/\\w+$`, \"x\")\n"}, SHA256},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := Build(tc.cfg)
			require.NoError(t, err)
			assert.Equal(t, tc.alg, doc.Algorithm)
			assert.Equal(t, []string{EntryAA, EntryCDH, EntryPolicy}, doc.EntryNames())

			text, err := doc.Marshal()
			require.NoError(t, err)
			value, err := Encode(text)
			require.NoError(t, err)

			decoded, err := Decode(value)
			require.NoError(t, err)
			assert.Equal(t, text, decoded, "the guest must hash exactly the bytes we hashed")

			back, err := Parse(decoded)
			require.NoError(t, err)
			assert.Equal(t, doc, back)

			want, err := Digest(text, tc.alg)
			require.NoError(t, err)
			got, err := Digest(decoded, back.Algorithm)
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
}

// The aa.toml and cdh.toml entries are TOML documents of their own, read by
// the Attestation Agent and the Confidential Data Hub.
func TestBuildGuestConfigs(t *testing.T) {
	doc, err := Build(Config{KBSURL: "https://kbs.example.com", KBSCertPEM: testCert, ImagePolicyURI: "kbs:///default/image-policy/policy"})
	require.NoError(t, err)

	var aa struct {
		TokenConfigs struct {
			KBS struct {
				URL  string `toml:"url"`
				Cert string `toml:"cert"`
			} `toml:"kbs"`
		} `toml:"token_configs"`
	}
	require.NoError(t, toml.NewDecoder(strings.NewReader(doc.Data[EntryAA])).DisallowUnknownFields().Decode(&aa))
	assert.Equal(t, "https://kbs.example.com", aa.TokenConfigs.KBS.URL)
	assert.Equal(t, testCert, aa.TokenConfigs.KBS.Cert)

	var cdh struct {
		Socket      string   `toml:"socket"`
		Credentials []string `toml:"credentials"`
		KBC         struct {
			Name    string `toml:"name"`
			URL     string `toml:"url"`
			KBSCert string `toml:"kbs_cert"`
		} `toml:"kbc"`
		Image struct {
			URI string `toml:"image_security_policy_uri"`
		} `toml:"image"`
	}
	require.NoError(t, toml.NewDecoder(strings.NewReader(doc.Data[EntryCDH])).DisallowUnknownFields().Decode(&cdh))
	assert.Equal(t, CDHSocket, cdh.Socket)
	assert.Empty(t, cdh.Credentials)
	assert.Equal(t, "cc_kbc", cdh.KBC.Name)
	assert.Equal(t, "https://kbs.example.com", cdh.KBC.URL)
	assert.Equal(t, testCert, cdh.KBC.KBSCert)
	assert.Equal(t, "kbs:///default/image-policy/policy", cdh.Image.URI)

	assert.Equal(t, DefaultAgentPolicy, doc.Data[EntryPolicy])
	assert.Contains(t, DefaultAgentPolicy, "default ExecProcessRequest := false")
	assert.Contains(t, DefaultAgentPolicy, "default SetPolicyRequest := false")
}

func TestBuildRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no url", Config{}, "KBS URL is required"},
		{"scheme", Config{KBSURL: "ftp://kbs.example.com"}, "must be http(s)"},
		{"no host", Config{KBSURL: "https://"}, "must be http(s)"},
		{"path", Config{KBSURL: "https://kbs.example.com/kbs/v0"}, "must not carry a path"},
		{"not pem", Config{KBSURL: "https://kbs.example.com", KBSCertPEM: "hello"}, "not a PEM CERTIFICATE"},
		{"key not cert", Config{KBSURL: "https://kbs.example.com", KBSCertPEM: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, "not a PEM CERTIFICATE"},
		{"image uri", Config{KBSURL: "https://kbs.example.com", ImagePolicyURI: "https://x/y"}, "kbs:///"},
		{"algorithm", Config{KBSURL: "https://kbs.example.com", Algorithm: "md5"}, "unsupported algorithm"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(tc.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestMarshalRejectsUnknownEntry(t *testing.T) {
	_, err := Document{Version: Version, Algorithm: SHA256, Data: map[string]string{"extra.toml": "x"}}.Marshal()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unsupported data entry")
}

// testdata/shell-built.toml was written by hand in the layout of the
// OpenShift sandboxed containers documentation, and
// testdata/shell-built.annotation was produced from it with
// `gzip -9 -n | base64 -w0`. The expected digests below were computed with
// sha256sum/sha384sum/sha512sum and the PCR 8 value with
// `printf '%064d%s' 0 $sha256 | xxd -r -p | sha256sum`, i.e. independently
// of this package.
const (
	shellSHA256 = "2756bd347dbc2478af81800f5f62b819c61e9727266cd5050e88eb78e8847ae1"
	shellSHA384 = "86b3e98dd10cbcd1ca3f1cb2318610c4dae1aed8074c5f47e65b6127e53fa67ac8ba38d23a9bc75c73edaaecb15ab336"
	shellSHA512 = "72da02c961c0987aecdc3205b7ad7ab7d81ee9834d8da602cf02f43985ea29d6f45a71d8c193c8ce76979b76eeeec8464a17d684ede3936675fc0db0b0f39f42"
	shellPCR8   = "19b0f77a3500fd5d74389ccd2417bb4435b137387e2aced49758dda056be5ce1"
)

func TestDigestMatchesSpec(t *testing.T) {
	text, err := os.ReadFile("testdata/shell-built.toml")
	require.NoError(t, err)

	tests := []struct {
		alg        Algorithm
		digest     string
		mrConfigID string // digest zero-padded or truncated to 48 bytes
	}{
		{SHA256, shellSHA256, shellSHA256 + strings.Repeat("00", 16)},
		{SHA384, shellSHA384, shellSHA384},
		{SHA512, shellSHA512, shellSHA512[:96]},
	}
	for _, tc := range tests {
		t.Run(string(tc.alg), func(t *testing.T) {
			d, err := Digest(text, tc.alg)
			require.NoError(t, err)
			assert.Equal(t, tc.digest, hex.EncodeToString(d))
			id := MRConfigID(d)
			assert.Equal(t, tc.mrConfigID, hex.EncodeToString(id[:]))
		})
	}

	d, err := Digest(text, SHA256)
	require.NoError(t, err)
	pcr, err := AzurePCR8(d)
	require.NoError(t, err)
	assert.Equal(t, shellPCR8, hex.EncodeToString(pcr))

	d384, err := Digest(text, SHA384)
	require.NoError(t, err)
	_, err = AzurePCR8(d384)
	require.Error(t, err, "Azure's PCR 8 binding only works with a sha256 digest")
}

func TestDecodeShellAnnotation(t *testing.T) {
	text, err := os.ReadFile("testdata/shell-built.toml")
	require.NoError(t, err)
	value, err := os.ReadFile("testdata/shell-built.annotation")
	require.NoError(t, err)

	decoded, err := Decode(string(value) + "\n")
	require.NoError(t, err)
	assert.Equal(t, text, decoded)

	doc, err := Parse(decoded)
	require.NoError(t, err)
	assert.Equal(t, SHA256, doc.Algorithm)
	assert.Equal(t, []string{EntryAA, EntryCDH, EntryPolicy}, doc.EntryNames())
	assert.Contains(t, doc.Data[EntryCDH], `name = "cc_kbc"`)
}

func gzipBase64(t testing.TB, data []byte) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(data)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  string
	}{
		{"empty", "  \n", "empty"},
		{"not base64", "%%%", "base64"},
		{"url-safe alphabet", strings.ReplaceAll(gzipBase64(t, []byte("version = '0.1.0'")), "+", "-") + "-_", "base64"},
		{"not gzip", base64.StdEncoding.EncodeToString([]byte("version = '0.1.0'")), "gzip"},
		{"gzip bomb", gzipBase64(t, make([]byte, MaxTOMLBytes+10)), "exceeds"},
		{"too long", strings.Repeat("A", MaxAnnotationBytes+4), "over the"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.value)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		text string
		want string
	}{
		{"unknown key", "version = '0.1.0'\nalgorithm = 'sha256'\nextra = 1\n[data]\n'aa.toml' = ''\n", "parse TOML"},
		{"wrong type", "version = '0.1.0'\nalgorithm = 'sha256'\n[data]\n'aa.toml' = 3\n", "parse TOML"},
		{"missing version", "algorithm = 'sha256'\n[data]\n'aa.toml' = ''\n", "missing version"},
		{"future version", "version = '0.2.0'\nalgorithm = 'sha256'\n[data]\n'aa.toml' = ''\n", "not supported"},
		{"algorithm", "version = '0.1.0'\nalgorithm = 'sm3'\n[data]\n'aa.toml' = ''\n", "unsupported algorithm"},
		{"no data", "version = '0.1.0'\nalgorithm = 'sha256'\n", "no data"},
		{"not toml", "{\"version\": \"0.1.0\"}", "parse TOML"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.text))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestParseAlgorithm(t *testing.T) {
	for _, s := range []string{"sha256", "sha384", "sha512"} {
		a, err := ParseAlgorithm(s)
		require.NoError(t, err)
		assert.Equal(t, Algorithm(s), a)
	}
	_, err := ParseAlgorithm("SHA256")
	require.Error(t, err, "names are case-sensitive in the guest")
}

func FuzzDecode(f *testing.F) {
	value, err := os.ReadFile("testdata/shell-built.annotation")
	require.NoError(f, err)
	f.Add(string(value))
	f.Add(gzipBase64(f, []byte("version = '0.1.0'\nalgorithm = 'sha256'\n[data]\n'x' = 'y'\n")))
	f.Add("H4sIAAAAAAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, value string) {
		text, err := Decode(value)
		if err != nil {
			return
		}
		require.LessOrEqual(t, len(text), MaxTOMLBytes)
		doc, err := Parse(text)
		if err != nil {
			return
		}
		_, err = Digest(text, doc.Algorithm)
		require.NoError(t, err, "Parse accepted an algorithm Digest cannot use")
	})
}
