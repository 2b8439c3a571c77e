package main

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
)

// features returns batch rows of scaled fraud-model features. Values follow
// a standard normal, like StandardScaler output; the model's run time does
// not depend on them, but realistic magnitudes keep the JSON text length
// (and so the JSON codecs' work) representative.
func features(batch, seed int) []float32 {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	v := make([]float32, batch*featureSize)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// featureBytes is features as little-endian bytes, the layout of oip.Tensor.Raw.
func featureBytes(batch, seed int) []byte {
	v := features(batch, seed)
	b := make([]byte, 0, 4*len(v))
	for _, f := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b
}
