package client

import (
	"context"
	"testing"

	"github.com/veil-ai/veil/oip"
)

// BenchmarkInfer measures one 64-row FP32 [64,5] request per transport
// against the in-process fake servers (allocations are the point; the
// fakes do little work).
func BenchmarkInfer(b *testing.B) {
	restURL := restServer(b).URL
	grpcURL := grpcServer(b)
	vals := make([]float32, 64*5)
	for i := range vals {
		vals[i] = float32(i) / 7
	}
	in := []oip.Tensor{fp32("x", []int64{64, 5}, vals...)}
	for _, p := range Protocols {
		b.Run(string(p), func(b *testing.B) {
			url := restURL
			if p.IsGRPC() {
				url = grpcURL
			}
			c, err := New(Config{URL: url, Protocol: p})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Infer(context.Background(), "sum", in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
