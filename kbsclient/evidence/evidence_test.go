package evidence

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-tdx-guest/abi"
	tdxtest "github.com/google/go-tdx-guest/testing"
	"github.com/google/go-tdx-guest/testing/testdata"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/kbsclient/protocol"
)

// specDigest is the SHA-384 of the worked runtime-data vector in the spec.
func specDigest(t *testing.T) []byte {
	t.Helper()
	d, err := protocol.RuntimeDataDigest("sha384", "q1Zx7hJ0XvJb2Y0nWm1p0QmS5W0Y3m2L2QvX8a3o9Ew=", protocol.TeePubKey{
		Kty: "EC", Crv: "P-256", Alg: "ECDH-ES+A256KW",
		X: "WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis", Y: "y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE",
	}, "")
	require.NoError(t, err)
	return d
}

// fakeQuoteProvider programs go-tdx-guest's mock provider to answer the
// canned test quote only for exactly the REPORTDATA we expect.
func fakeQuoteProvider(t *testing.T, digest []byte) *tdxtest.TdxQuoteProvider {
	t.Helper()
	rd, err := protocol.TDXReportData(digest)
	require.NoError(t, err)
	qp, err := tdxtest.TcQuoteProvider([]tdxtest.TestCase{{Name: "runtime-data", Input: rd, Quote: testdata.RawQuote}})
	require.NoError(t, err)
	return qp
}

func decodeTDX(t *testing.T, raw json.RawMessage) protocol.TDXEvidence {
	t.Helper()
	var ev protocol.TDXEvidence
	require.NoError(t, json.Unmarshal(raw, &ev))
	return ev
}

func TestTDXEvidenceViaQuoteProvider(t *testing.T) {
	digest := specDigest(t)
	p, err := New(Config{TEE: "tdx", TDX: TDXConfig{QuoteSource: fakeQuoteProvider(t, digest), CCELPath: filepath.Join(t.TempDir(), "absent")}})
	require.NoError(t, err)
	assert.Equal(t, "tdx", p.TEE())
	raw, err := p.Evidence(context.Background(), digest)
	require.NoError(t, err)
	ev := decodeTDX(t, raw)
	assert.Nil(t, ev.CCEventLog, "a missing event log is omitted")
	quote, err := base64.StdEncoding.DecodeString(ev.Quote)
	require.NoError(t, err)
	assert.Equal(t, testdata.RawQuote, quote)
	_, err = abi.QuoteToProto(quote)
	assert.NoError(t, err, "the evidence carries a parseable v4 quote")
}

func TestTDXEvidenceWrongReportData(t *testing.T) {
	digest := specDigest(t)
	other := append([]byte(nil), digest...)
	other[0] ^= 1
	// The fake answers nothing for REPORTDATA it was not programmed with.
	p, err := New(Config{TEE: "tdx", TDX: TDXConfig{QuoteSource: fakeQuoteProvider(t, other)}})
	require.NoError(t, err)
	_, err = p.Evidence(context.Background(), digest)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "empty quote")
}

func TestTDXEvidenceViaDevice(t *testing.T) {
	// The deprecated /dev/tdx_guest ioctl path, with go-tdx-guest's fake device.
	var input [64]byte
	input[63] = 1 // tdxtest.TestCases' programmed REPORTDATA
	dev, err := tdxtest.TcDevice(tdxtest.TestCases())
	require.NoError(t, err)
	p, err := New(Config{TEE: "tdx", TDX: TDXConfig{QuoteSource: dev}})
	require.NoError(t, err)
	raw, err := p.Evidence(context.Background(), input[:])
	require.NoError(t, err)
	quote, err := base64.StdEncoding.DecodeString(decodeTDX(t, raw).Quote)
	require.NoError(t, err)
	assert.Equal(t, testdata.RawQuote, quote[:len(testdata.RawQuote)])
}

type unsupportedProvider struct{}

func (unsupportedProvider) IsSupported() error                    { return os.ErrNotExist }
func (unsupportedProvider) GetRawQuote([64]byte) ([]uint8, error) { panic("must not be called") }

func TestTDXEvidenceFallsBackToDevice(t *testing.T) {
	if _, err := os.Stat("/dev/tdx_guest"); err == nil {
		t.Skip("a real TDX guest device is present")
	}
	p, err := New(Config{TEE: "tdx", TDX: TDXConfig{QuoteSource: unsupportedProvider{}}})
	require.NoError(t, err)
	_, err = p.Evidence(context.Background(), specDigest(t))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/dev/tdx_guest")
}

func TestTDXEvidenceEventLogAndLimits(t *testing.T) {
	digest := specDigest(t)
	ccel := filepath.Join(t.TempDir(), "CCEL")
	require.NoError(t, os.WriteFile(ccel, []byte("TCG event log"), 0o600))
	p, err := New(Config{TEE: "tdx", TDX: TDXConfig{QuoteSource: fakeQuoteProvider(t, digest), CCELPath: ccel}})
	require.NoError(t, err)
	raw, err := p.Evidence(context.Background(), digest)
	require.NoError(t, err)
	ev := decodeTDX(t, raw)
	require.NotNil(t, ev.CCEventLog)
	assert.Equal(t, base64.StdEncoding.EncodeToString([]byte("TCG event log")), *ev.CCEventLog)

	_, err = p.Evidence(context.Background(), make([]byte, 65))
	assert.ErrorContains(t, err, "exceeds 64 bytes")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = p.Evidence(ctx, digest)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestSampleEvidence(t *testing.T) {
	p, err := New(Config{TEE: "sample", AllowInsecureSampleTEE: true})
	require.NoError(t, err)
	digest := specDigest(t)
	raw, err := p.Evidence(context.Background(), digest)
	require.NoError(t, err)
	rd, err := protocol.DecodeSampleEvidence(raw)
	require.NoError(t, err)
	assert.Equal(t, digest, rd, "sample carries the unpadded digest")
	assert.Len(t, rd, 48)
}

func TestNewSelectsTEE(t *testing.T) {
	tests := []struct {
		tee         string
		allowSample bool
		wantErr     error
		wantMsg     string
	}{
		{tee: "tdx"},
		{tee: "sample", allowSample: true},
		{tee: "sample", wantErr: ErrInsecureTEE, wantMsg: "--insecure_allow_sample_tee"},
		{tee: "az-tdx-vtpm", wantErr: ErrUnsupportedTEE, wantMsg: "--key_source cdh"},
		{tee: "az-snp-vtpm", wantErr: ErrUnsupportedTEE, wantMsg: "--key_source cdh"},
		{tee: "snp", wantErr: ErrUnsupportedTEE, wantMsg: "--key_source cdh"},
		{tee: "sgx", wantErr: ErrUnsupportedTEE, wantMsg: "--key_source cdh"},
		{tee: "", wantErr: ErrUnsupportedTEE, wantMsg: "no TEE"},
		{tee: "TDX", wantErr: ErrUnsupportedTEE, wantMsg: "unknown TEE"},
	}
	for _, tc := range tests {
		t.Run(tc.tee, func(t *testing.T) {
			p, err := New(Config{TEE: tc.tee, AllowInsecureSampleTEE: tc.allowSample})
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				assert.Contains(t, err.Error(), tc.wantMsg)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.tee, p.TEE())
		})
	}
}
