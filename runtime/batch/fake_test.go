package batch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/veil-ai/veil/oip"
)

// fakeEngine is a deterministic stand-in for a model: for FP32 input rows
// it returns output "y" FP32 [n,2] = (sum of the row, 2 × first element);
// for BYTES inputs, output "len" INT32 [n] = each string's length. A NaN
// anywhere in the input fails the whole run, like a model that rejects a
// value only at run time. It records every run, and can hold runs until
// released so that tests control what is in flight.
type fakeEngine struct {
	mu   sync.Mutex
	runs []fakeRun
	// hold, when not nil, blocks every run until it is closed.
	hold chan struct{}
	// started receives the rows of each run as it starts, when not nil.
	started chan int64
	// fixedOutput makes the engine also return a [1]-shaped output that
	// cannot be split by rows.
	fixedOutput bool
	// cancelled counts runs that ended because their context ended.
	cancelled int
}

type fakeRun struct {
	rows int64
	err  error
}

var errPoison = errors.New("NaN in input row")

// panicValue in an input row makes the fake engine panic.
const panicValue = -12345

func (e *fakeEngine) Infer(ctx context.Context, inputs []oip.Tensor) ([]oip.Tensor, error) {
	rows := int64(-1)
	if len(inputs) > 0 && len(inputs[0].Shape) > 0 {
		rows = inputs[0].Shape[0]
	}
	if e.started != nil {
		e.started <- rows
	}
	if e.hold != nil {
		select {
		case <-e.hold:
		case <-ctx.Done():
			e.mu.Lock()
			e.cancelled++
			e.mu.Unlock()
			return nil, ctx.Err()
		}
	}
	out, err := e.compute(inputs)
	e.mu.Lock()
	e.runs = append(e.runs, fakeRun{rows: rows, err: err})
	e.mu.Unlock()
	return out, err
}

func (e *fakeEngine) compute(inputs []oip.Tensor) ([]oip.Tensor, error) {
	if len(inputs) == 0 {
		return nil, errors.New("no inputs")
	}
	for i := range inputs {
		if err := inputs[i].Validate(); err != nil {
			return nil, fmt.Errorf("fake engine: %w", err)
		}
	}
	in := inputs[0]
	if len(in.Shape) == 0 {
		return nil, errors.New("fake engine: scalar input")
	}
	n := in.Shape[0]
	var out []oip.Tensor
	if in.Datatype == oip.Bytes {
		raw := make([]byte, 0, 4*n)
		for _, s := range in.Strings {
			raw = binary.LittleEndian.AppendUint32(raw, uint32(len(s)))
		}
		out = append(out, oip.Tensor{Name: "len", Datatype: oip.Int32, Shape: []int64{n}, Raw: raw})
	} else {
		vals := floats(in.Raw)
		width := int64(len(vals)) / max(n, 1)
		y := make([]float32, 0, 2*n)
		for r := int64(0); r < n; r++ {
			row := vals[r*width : (r+1)*width]
			var sum float32
			for _, v := range row {
				if math.IsNaN(float64(v)) {
					return nil, errPoison
				}
				if v == panicValue {
					panic("fake engine: panic value in input")
				}
				sum += v
			}
			y = append(y, sum, 2*row[0])
		}
		out = append(out, oip.Tensor{Name: "y", Datatype: oip.FP32, Shape: []int64{n, 2}, Raw: floatBytes(y)})
	}
	if e.fixedOutput {
		out = append(out, oip.Tensor{Name: "count", Datatype: oip.Int64, Shape: []int64{1}, Raw: binary.LittleEndian.AppendUint64(nil, uint64(n))})
	}
	return out, nil
}

func (e *fakeEngine) recorded() []fakeRun {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]fakeRun(nil), e.runs...)
}

func floats(raw []byte) []float32 {
	v := make([]float32, len(raw)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return v
}

func floatBytes(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, f := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b
}

// fp32Input builds input "x" FP32 [len(rows), width].
func fp32Input(rows [][]float32) []oip.Tensor {
	var flat []float32
	for _, r := range rows {
		flat = append(flat, r...)
	}
	width := int64(0)
	if len(rows) > 0 {
		width = int64(len(rows[0]))
	}
	return []oip.Tensor{{Name: "x", Datatype: oip.FP32, Shape: []int64{int64(len(rows)), width}, Raw: floatBytes(flat)}}
}

// wantY is what the fake engine must return for rows, computed here
// independently of any batching.
func wantY(rows [][]float32) []float32 {
	var y []float32
	for _, r := range rows {
		var sum float32
		for _, v := range r {
			sum += v
		}
		y = append(y, sum, 2*r[0])
	}
	return y
}
