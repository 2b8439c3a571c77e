package initdata

import (
	"crypto/sha256"
	"fmt"
)

// MRConfigIDSize is the size of the TDX TD report field MRCONFIGID.
const MRConfigIDSize = 48

// Digest hashes the TOML bytes with the algorithm the document names. The
// hash covers the whole (decompressed) TOML file, not just its data table.
func Digest(text []byte, alg Algorithm) ([]byte, error) {
	h, err := alg.newHash()
	if err != nil {
		return nil, err
	}
	h.Write(text)
	return h.Sum(nil), nil
}

// MRConfigID is the value QEMU places in the TD's MRCONFIGID on bare-metal
// TDX: the digest zero-padded (sha256) or truncated (sha512) to 48 bytes.
func MRConfigID(digest []byte) [MRConfigIDSize]byte {
	var id [MRConfigIDSize]byte
	copy(id[:], digest)
	return id
}

// AzurePCR8 is the vTPM PCR 8 value a fresh Azure TDX peer-pod VM reports
// after it extended PCR 8 (initially all zeros) with the initdata digest:
// SHA-256(0^32 || digest). Both the podvm and Trustee's az-tdx-vtpm verifier
// only handle a 32-byte digest, so only sha256 documents can be bound there.
func AzurePCR8(digest []byte) ([]byte, error) {
	if len(digest) != sha256.Size {
		return nil, fmt.Errorf("initdata: PCR 8 binding needs a 32-byte (sha256) digest, got %d bytes", len(digest))
	}
	var buf [2 * sha256.Size]byte
	copy(buf[sha256.Size:], digest)
	sum := sha256.Sum256(buf[:])
	return sum[:], nil
}
