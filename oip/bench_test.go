package oip

import (
	"strconv"
	"strings"
	"testing"
)

// Benchmarks for the hot codec paths (a 64-row fraud batch); they report
// allocations so regressions to per-element allocation show up.
func fraudJSONRequest() []byte {
	var sb strings.Builder
	sb.WriteString(`{"id":"b","inputs":[{"name":"dense_input","shape":[64,5],"datatype":"FP32","data":[`)
	for i := range 64 * 5 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.FormatFloat(float64(i)*0.0123456-1.5, 'g', -1, 32))
	}
	sb.WriteString(`]}]}`)
	return []byte(sb.String())
}

func BenchmarkDecodeRESTRequestJSON(b *testing.B) {
	body := fraudJSONRequest()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := DecodeRESTRequest(body, -1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeRESTRequestBinary(b *testing.B) {
	req, err := DecodeRESTRequest(fraudJSONRequest(), -1)
	if err != nil {
		b.Fatal(err)
	}
	body, jsonLen, err := EncodeRESTRequest(req, true)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := DecodeRESTRequest(body, jsonLen); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeRESTResponseJSON(b *testing.B) {
	req, err := DecodeRESTRequest(fraudJSONRequest(), -1)
	if err != nil {
		b.Fatal(err)
	}
	resp := &InferResponse{ModelName: "model", ID: "b", Outputs: req.Inputs}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := EncodeRESTResponse(resp, nil); err != nil {
			b.Fatal(err)
		}
	}
}
