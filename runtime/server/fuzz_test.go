package server

import (
	"testing"

	"github.com/veil-ai/veil/oip"
)

// FuzzV1Input covers the KServe v1 request decoder: anything either
// decodes to a valid tensor or is a client error.
func FuzzV1Input(f *testing.F) {
	for _, s := range []string{`{"instances":[[1,2,3,4,5]]}`, `{"inputs":[[1,2,3,4,5],[6,7,8,9,0]]}`, `{"instances":[]}`, `{"instances":[[[1]]]}`, `{"instances":[1,2]}`, `{}`} {
		f.Add([]byte(s))
	}
	inputs := []oip.TensorMetadata{{Name: "dense_input", Datatype: "FP32", Shape: []int64{-1, 5}}}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := v1Input(body, inputs)
		if err != nil {
			if !oip.IsInvalid(err) {
				t.Fatalf("non-client error: %v", err)
			}
			return
		}
		if err := in.Validate(); err != nil {
			t.Fatalf("decoded tensor invalid: %v", err)
		}
	})
}
