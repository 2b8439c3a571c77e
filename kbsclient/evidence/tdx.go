package evidence

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/google/go-tdx-guest/client"

	"github.com/veil-ai/veil/kbsclient/protocol"
)

// DefaultCCELPath is where the kernel exposes the TDX CC event log.
const DefaultCCELPath = "/sys/firmware/acpi/tables/data/CCEL"

// maxEventLogBytes bounds the event log we read and send (KBS body limit).
const maxEventLogBytes = 1 << 20

// TDXConfig configures the tdx provider.
type TDXConfig struct {
	// QuoteSource is a go-tdx-guest client.QuoteProvider or client.Device.
	// Nil means configfs-tsm, falling back to /dev/tdx_guest (what
	// client.GetRawQuote does when configfs-tsm is unsupported).
	QuoteSource any
	// CCELPath is the event log to attach; empty means DefaultCCELPath. A
	// missing file is not an error (the verifier then only warns).
	CCELPath string
}

type tdx struct {
	cfg TDXConfig
}

func newTDX(cfg TDXConfig) *tdx {
	if cfg.CCELPath == "" {
		cfg.CCELPath = DefaultCCELPath
	}
	return &tdx{cfg: cfg}
}

// TEE implements Provider.
func (*tdx) TEE() string { return protocol.TEETDX }

// Evidence implements Provider: REPORTDATA = digest ‖ zeros (64 bytes).
func (t *tdx) Evidence(ctx context.Context, digest []byte) (json.RawMessage, error) {
	rd, err := protocol.TDXReportData(digest)
	if err != nil {
		return nil, fmt.Errorf("tdx evidence: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tdx evidence: %w", err)
	}
	src := t.cfg.QuoteSource
	if src == nil {
		qp, err := client.GetQuoteProvider()
		if err != nil {
			return nil, fmt.Errorf("tdx evidence: configfs-tsm quote provider: %w", err)
		}
		src = qp
	}
	quote, err := client.GetRawQuote(src, rd)
	if err != nil {
		return nil, fmt.Errorf("tdx evidence: get TD quote (configfs-tsm, then /dev/tdx_guest): %w", err)
	}
	if len(quote) == 0 {
		return nil, errors.New("tdx evidence: the quote provider returned an empty quote")
	}
	ev := protocol.TDXEvidence{Quote: encodeStd(quote)}
	ccel, err := readEventLog(t.cfg.CCELPath)
	if err != nil {
		return nil, fmt.Errorf("tdx evidence: %w", err)
	}
	if ccel != nil {
		s := encodeStd(ccel)
		ev.CCEventLog = &s
	}
	return json.Marshal(ev)
}

func readEventLog(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open CC event log: %w", err)
	}
	defer f.Close()
	buf, err := io.ReadAll(io.LimitReader(f, maxEventLogBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read CC event log %s: %w", path, err)
	}
	if len(buf) > maxEventLogBytes {
		return nil, fmt.Errorf("CC event log %s exceeds %d bytes", path, maxEventLogBytes)
	}
	if len(buf) == 0 {
		return nil, nil
	}
	return buf, nil
}

func encodeStd(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
