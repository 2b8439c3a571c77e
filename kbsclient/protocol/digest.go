package protocol

import (
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"sort"
	"strings"
	"unicode/utf8"
)

// TDXReportDataSize is the size of the TDX REPORTDATA field.
const TDXReportDataSize = 64

func newHash(alg string) (hash.Hash, error) {
	switch alg {
	case "sha256":
		return sha256.New(), nil
	case "sha384":
		return sha512.New384(), nil
	case "sha512":
		return sha512.New(), nil
	default:
		return nil, fmt.Errorf("%w: unsupported runtime-data hash algorithm %q", ErrBadReply, alg)
	}
}

// CanonicalRuntimeData is the RFC 8785 (JCS) serialization of the object the
// KBS hashes for protocol 0.4.0: {"additional-evidence", "nonce", "tee-pubkey"}.
// The additional-evidence key is present even when empty.
func CanonicalRuntimeData(nonce string, key TeePubKey, additionalEvidence string) ([]byte, error) {
	jwk := map[string]any{"alg": key.Alg, "kty": key.Kty}
	for k, v := range map[string]string{"crv": key.Crv, "e": key.E, "n": key.N, "x": key.X, "y": key.Y} {
		if v != "" {
			jwk[k] = v
		}
	}
	obj := map[string]any{
		"additional-evidence": additionalEvidence,
		"nonce":               nonce,
		"tee-pubkey":          jwk,
	}
	var b strings.Builder
	if err := writeJCS(&b, obj); err != nil {
		return nil, fmt.Errorf("canonicalize runtime data: %w", err)
	}
	return []byte(b.String()), nil
}

// RuntimeDataDigest hashes the canonical runtime data with alg (sha256,
// sha384 or sha512). For tdx the result is zero-padded to 64 bytes by
// TDXReportData; sample evidence carries it unpadded.
func RuntimeDataDigest(alg, nonce string, key TeePubKey, additionalEvidence string) ([]byte, error) {
	h, err := newHash(alg)
	if err != nil {
		return nil, err
	}
	canon, err := CanonicalRuntimeData(nonce, key, additionalEvidence)
	if err != nil {
		return nil, err
	}
	h.Write(canon)
	return h.Sum(nil), nil
}

// TDXReportData zero-pads a digest to the 64-byte REPORTDATA, as the
// guest-components TDX attester and the Trustee verifier do.
func TDXReportData(digest []byte) ([TDXReportDataSize]byte, error) {
	var rd [TDXReportDataSize]byte
	if len(digest) > TDXReportDataSize {
		return rd, fmt.Errorf("report data of %d bytes exceeds %d bytes", len(digest), TDXReportDataSize)
	}
	copy(rd[:], digest)
	return rd, nil
}

// writeJCS writes string and object values in JCS form. Runtime data only
// holds strings and objects, so numbers and arrays are refused rather than
// half-supported. Keys sort by UTF-16 code units as JCS requires.
func writeJCS(b *strings.Builder, v any) error {
	switch t := v.(type) {
	case string:
		return writeJCSString(b, t)
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return lessUTF16(keys[i], keys[j]) })
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJCSString(b, k); err != nil {
				return err
			}
			b.WriteByte(':')
			if err := writeJCS(b, t[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
		return nil
	default:
		return fmt.Errorf("unsupported JSON value of type %T", v)
	}
}

// writeJCSString escapes like ECMAScript JSON.stringify: only '"', '\\' and
// control characters; everything else (including U+2028/U+2029, which Go's
// encoding/json would escape) is written as UTF-8.
func writeJCSString(b *strings.Builder, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("string is not valid UTF-8")
	}
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return nil
}

func lessUTF16(a, b string) bool {
	ua, ub := utf16Units(a), utf16Units(b)
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			return ua[i] < ub[i]
		}
	}
	return len(ua) < len(ub)
}

func utf16Units(s string) []uint16 {
	out := make([]uint16, 0, len(s))
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			out = append(out, uint16(0xD800+(r>>10)), uint16(0xDC00+(r&0x3FF)))
			continue
		}
		out = append(out, uint16(r))
	}
	return out
}
