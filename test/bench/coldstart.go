package main

import (
	"crypto/rand"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	ort "github.com/yalue/onnxruntime_go"

	"github.com/veil-ai/veil/models"
	"github.com/veil-ai/veil/runtime/sealed"
)

// coldStart is the part of a scale-from-zero start this machine can measure:
// opening the sealed model (JWE A256KW/A256GCM, as `veil seal` writes it)
// and creating the onnxruntime session from the plaintext. VM boot and
// attestation need TDX hardware and are estimated in docs/performance.md.
type coldStart struct {
	modelBytes int
	decrypt    time.Duration // median
	session    time.Duration // median
}

func (c coldStart) String() string {
	return fmt.Sprintf("fraud model (%d bytes): JWE decrypt %s, onnxruntime session %s (medians)",
		c.modelBytes, humanDuration(c.decrypt), humanDuration(c.session))
}

// measureColdStart needs the onnxruntime environment initialized.
func measureColdStart(threads, repeats int) (coldStart, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return coldStart{}, fmt.Errorf("model key: %w", err)
	}
	defer sealed.Zero(key)
	sealedModel, err := sealed.SealJWE(models.FraudONNX, key, jose.A256KW, jose.A256GCM)
	if err != nil {
		return coldStart{}, fmt.Errorf("seal the fraud model: %w", err)
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return coldStart{}, fmt.Errorf("onnxruntime session options: %w", err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(threads); err != nil {
		return coldStart{}, fmt.Errorf("set intra-op threads: %w", err)
	}

	var dec, sess []time.Duration
	for range repeats {
		t0 := time.Now()
		plain, err := sealed.OpenJWE(sealedModel, key)
		if err != nil {
			return coldStart{}, fmt.Errorf("open the sealed model: %w", err)
		}
		t1 := time.Now()
		s, err := ort.NewDynamicAdvancedSessionWithONNXData(plain, []string{inputName}, []string{outputName}, opts)
		if err != nil {
			return coldStart{}, fmt.Errorf("onnxruntime session: %w", err)
		}
		t2 := time.Now()
		_ = s.Destroy()
		sealed.Zero(plain)
		dec = append(dec, t1.Sub(t0))
		sess = append(sess, t2.Sub(t1))
	}
	slices.Sort(dec)
	slices.Sort(sess)
	return coldStart{modelBytes: len(models.FraudONNX), decrypt: dec[len(dec)/2], session: sess[len(sess)/2]}, nil
}
