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

	"github.com/veil-ai/veil/kbsclient/initdata"
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
func verifyTDX(primary json.RawMessage, digest []byte, init *protocol.InitData, cfg TDXVerifyConfig, now time.Time) error {
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
	if err := checkQuoteReportData(quote, want); err != nil {
		return err
	}
	if init == nil {
		return nil
	}
	return checkQuoteInitData(quote, *init)
}

// checkQuoteInitData binds sent init-data to the TD as Trustee does:
// MRCONFIGID must be the document's digest (its own algorithm) adjusted to
// 48 bytes.
func checkQuoteInitData(quote any, init protocol.InitData) error {
	q, ok := quote.(*pb.QuoteV4)
	if !ok {
		return fmt.Errorf("unsupported TD quote type %T", quote)
	}
	doc, err := initdata.Parse([]byte(init.Body))
	if err != nil {
		return fmt.Errorf("init-data: %w", err)
	}
	d, err := initdata.Digest([]byte(init.Body), doc.Algorithm)
	if err != nil {
		return fmt.Errorf("init-data: %w", err)
	}
	want := initdata.MRConfigID(d)
	if subtle.ConstantTimeCompare(q.GetTdQuoteBody().GetMrConfigId(), want[:]) != 1 {
		return errors.New("TD quote MRCONFIGID does not match the init-data digest")
	}
	return nil
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
