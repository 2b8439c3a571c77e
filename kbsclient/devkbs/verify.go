package devkbs

import (
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/google/go-tdx-guest/verify"

	"github.com/veil-ai/veil/kbsclient/protocol"
)

// TDXVerifyConfig tunes tdx quote verification.
type TDXVerifyConfig struct {
	// TrustedRoots replaces the Intel SGX root CA embedded in go-tdx-guest.
	TrustedRoots *x509.CertPool
}

// verifySample checks the insecure sample evidence: its report_data must be
// exactly the unpadded runtime-data digest (as Trustee's sample verifier).
func verifySample(primary json.RawMessage, digest []byte) error {
	rd, err := protocol.DecodeSampleEvidence(primary)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(rd, digest) != 1 {
		return errors.New("sample evidence report_data does not match the runtime data hash")
	}
	return nil
}

// verifyTDX checks the quote's signature chain up to the Intel root (no
// collateral, TCB or revocation checks: DEVELOPMENT ONLY) and that its
// REPORTDATA is the zero-padded runtime-data digest.
func verifyTDX(primary json.RawMessage, digest []byte, cfg TDXVerifyConfig, now time.Time) error {
	raw, err := protocol.DecodeTDXEvidence(primary)
	if err != nil {
		return err
	}
	quote, err := abi.QuoteToProto(raw)
	if err != nil {
		return fmt.Errorf("parse TD quote: %w", err)
	}
	if err := verify.TdxQuote(quote, &verify.Options{Now: now, TrustedRoots: cfg.TrustedRoots}); err != nil {
		return fmt.Errorf("verify TD quote signature: %w", err)
	}
	want, err := protocol.TDXReportData(digest)
	if err != nil {
		return err
	}
	return checkQuoteReportData(quote, want)
}

func checkQuoteReportData(quote any, want [protocol.TDXReportDataSize]byte) error {
	q, ok := quote.(*pb.QuoteV4)
	if !ok {
		return fmt.Errorf("unsupported TD quote type %T", quote)
	}
	if subtle.ConstantTimeCompare(q.GetTdQuoteBody().GetReportData(), want[:]) != 1 {
		return errors.New("TD quote REPORTDATA does not match the runtime data hash")
	}
	return nil
}
