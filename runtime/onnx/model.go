package onnx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/veil-ai/veil/oip"
)

// Platform is the OIP platform name of ONNX models.
const Platform = "onnx_onnxv1"

// Options tune a Model's session.
type Options struct {
	// IntraOpThreads is onnxruntime's intra-op thread count; 0 means
	// DefaultIntraOpThreads (the cgroup CPU quota).
	IntraOpThreads int
	// IntraOpSpinning lets idle intra-op threads busy-wait for the next
	// piece of work (onnxruntime's own default). Off here: a server runs
	// many requests at once on their own goroutines, and spinning threads
	// burn the very cores those requests need (CPU profiles of the bench
	// showed most server CPU spent spinning inside onnxruntime).
	IntraOpSpinning bool
}

// Model is one loaded ONNX model. Infer may be called from any number of
// goroutines at once: onnxruntime sessions are safe for concurrent Run.
type Model struct {
	session *ort.DynamicAdvancedSession
	inputs  []oip.TensorMetadata
	outputs []oip.TensorMetadata
	ortIn   []ort.TensorElementDataType
	ortOut  []ort.TensorElementDataType
	skipped []string

	// mu makes Close wait for running inferences.
	mu     sync.RWMutex
	closed bool
}

// NewModel loads a model from its serialized ONNX bytes. It never touches
// the file system, so a model decrypted in memory stays there; onnxruntime
// keeps its own copy, so the caller may wipe onnxBytes once this returns.
func (e *Env) NewModel(onnxBytes []byte, opts Options) (*Model, error) {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return nil, errors.New("load model: onnxruntime environment is closed")
	}
	if len(onnxBytes) == 0 {
		return nil, errors.New("load model: no ONNX bytes")
	}
	ins, outs, err := graphIO(onnxBytes)
	if err != nil {
		// Not an ONNX protobuf we can read: let onnxruntime judge it.
		if ins, outs, err = ort.GetInputOutputInfoWithONNXData(onnxBytes); err != nil {
			return nil, fmt.Errorf("read ONNX graph inputs and outputs: %w", err)
		}
	}
	m := &Model{}
	var inNames, outNames []string
	for _, in := range ins {
		dt, ok := oipType(in.DataType)
		if in.OrtValueType != ort.ONNXTypeTensor || !ok {
			return nil, fmt.Errorf("model input %q (%s) has no Open Inference Protocol form: only tensors of OIP datatypes are supported", in.Name, in.String())
		}
		m.inputs = append(m.inputs, oip.TensorMetadata{Name: in.Name, Datatype: string(dt), Shape: dims(in.Dimensions)})
		m.ortIn = append(m.ortIn, in.DataType)
		inNames = append(inNames, in.Name)
	}
	for _, out := range outs {
		dt, ok := oipType(out.DataType)
		if out.OrtValueType != ort.ONNXTypeTensor || !ok {
			// Sequences and maps (e.g. sklearn's ZipMap probabilities) have
			// no OIP form; serve the tensor outputs rather than nothing.
			m.skipped = append(m.skipped, out.Name)
			continue
		}
		m.outputs = append(m.outputs, oip.TensorMetadata{Name: out.Name, Datatype: string(dt), Shape: dims(out.Dimensions)})
		m.ortOut = append(m.ortOut, out.DataType)
		outNames = append(outNames, out.Name)
	}
	if len(inNames) == 0 || len(outNames) == 0 {
		return nil, fmt.Errorf("model has %d servable inputs and %d servable outputs; need at least one of each", len(inNames), len(outNames))
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("create session options: %w", err)
	}
	defer so.Destroy()
	threads := opts.IntraOpThreads
	if threads <= 0 {
		threads = DefaultIntraOpThreads()
	}
	if err := so.SetIntraOpNumThreads(threads); err != nil {
		return nil, fmt.Errorf("set intra-op threads to %d: %w", threads, err)
	}
	spin := "0"
	if opts.IntraOpSpinning {
		spin = "1"
	}
	if err := so.AddSessionConfigEntry("session.intra_op.allow_spinning", spin); err != nil {
		return nil, fmt.Errorf("set intra-op spinning to %s: %w", spin, err)
	}
	// Requests run concurrently on their own goroutines; one inter-op
	// thread per session keeps the thread count bounded by the quota.
	if err := so.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("set inter-op threads: %w", err)
	}
	m.session, err = ort.NewDynamicAdvancedSessionWithONNXData(onnxBytes, inNames, outNames, so)
	if err != nil {
		return nil, fmt.Errorf("create onnxruntime session: %w", err)
	}
	return m, nil
}

func dims(s ort.Shape) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		if d < 0 {
			d = -1
		}
		out[i] = d
	}
	return out
}

// Inputs describes the model's inputs (-1 marks a dynamic dimension).
func (m *Model) Inputs() []oip.TensorMetadata { return m.inputs }

// Outputs describes the model's servable outputs.
func (m *Model) Outputs() []oip.TensorMetadata { return m.outputs }

// SkippedOutputs names graph outputs that are not tensors and are not served.
func (m *Model) SkippedOutputs() []string { return m.skipped }

// Close releases the session after in-flight inferences end.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	if err := m.session.Destroy(); err != nil {
		return fmt.Errorf("destroy onnxruntime session: %w", err)
	}
	return nil
}

// Infer runs the model on inputs (each model input exactly once, in any
// order) and returns every output in the model's order. Input problems
// wrap oip.ErrInvalid; what onnxruntime cannot do wraps oip.ErrUnsupported.
// Fixed-size inputs are handed to onnxruntime without copying.
func (m *Model) Infer(ctx context.Context, inputs []oip.Tensor) ([]oip.Tensor, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, errors.New("model is closed")
	}
	ordered, err := m.order(inputs)
	if err != nil {
		return nil, err
	}
	values := make([]ort.Value, len(ordered))
	defer destroyAll(values)
	for i, t := range ordered {
		values[i], err = newValue(t, m.ortIn[i])
		if err != nil {
			return nil, err
		}
	}
	outs := make([]ort.Value, len(m.outputs))
	defer destroyAll(outs)
	if err := m.preallocateHalfOutputs(ordered, outs); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("before inference: %w", err)
	}
	if err := m.run(ctx, values, outs); err != nil {
		return nil, err
	}
	// The input buffers are Go memory onnxruntime read without copying;
	// keep them alive until it is done.
	runtime.KeepAlive(ordered)
	result := make([]oip.Tensor, len(outs))
	for i, v := range outs {
		result[i], err = toTensor(m.outputs[i], v)
		if err != nil {
			return nil, fmt.Errorf("read output %q: %w", m.outputs[i].Name, err)
		}
	}
	return result, nil
}

// run executes the session, terminating it if ctx ends first.
func (m *Model) run(ctx context.Context, in, out []ort.Value) error {
	if ctx.Done() == nil {
		if err := m.session.Run(in, out); err != nil {
			return fmt.Errorf("onnxruntime run: %w", err)
		}
		return nil
	}
	ro, err := ort.NewRunOptions()
	if err != nil {
		return fmt.Errorf("create run options: %w", err)
	}
	defer ro.Destroy()
	stop := context.AfterFunc(ctx, func() { _ = ro.Terminate() })
	defer stop()
	if err := m.session.RunWithOptions(in, out, ro); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("onnxruntime run: %w", ctx.Err())
		}
		return fmt.Errorf("onnxruntime run: %w", err)
	}
	return nil
}

func destroyAll(vs []ort.Value) {
	for _, v := range vs {
		if v != nil {
			_ = v.Destroy()
		}
	}
}

// order matches the request's tensors to the model's inputs and checks
// datatype and shape against the graph.
func (m *Model) order(inputs []oip.Tensor) ([]*oip.Tensor, error) {
	ordered := make([]*oip.Tensor, len(m.inputs))
	for i := range inputs {
		t := &inputs[i]
		idx := -1
		for j, in := range m.inputs {
			if in.Name == t.Name {
				idx = j
				break
			}
		}
		if idx < 0 {
			return nil, fmt.Errorf("%w: unknown input %q; the model's inputs are %s", oip.ErrInvalid, t.Name, names(m.inputs))
		}
		if ordered[idx] != nil {
			return nil, fmt.Errorf("%w: input %q given twice", oip.ErrInvalid, t.Name)
		}
		meta := m.inputs[idx]
		if string(t.Datatype) != meta.Datatype {
			return nil, fmt.Errorf("%w: input %q has datatype %s, the model expects %s", oip.ErrInvalid, t.Name, t.Datatype, meta.Datatype)
		}
		if err := t.Validate(); err != nil {
			return nil, err
		}
		if !shapeFits(t.Shape, meta.Shape) {
			return nil, fmt.Errorf("%w: input %q has shape %v, the model expects %v (-1 = any)", oip.ErrInvalid, t.Name, t.Shape, meta.Shape)
		}
		ordered[idx] = t
	}
	for i, t := range ordered {
		if t == nil {
			return nil, fmt.Errorf("%w: missing input %q; the model's inputs are %s", oip.ErrInvalid, m.inputs[i].Name, names(m.inputs))
		}
	}
	return ordered, nil
}

func shapeFits(got, want []int64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if want[i] >= 0 && got[i] != want[i] {
			return false
		}
	}
	return true
}

func names(ts []oip.TensorMetadata) string {
	n := make([]string, len(ts))
	for i, t := range ts {
		n[i] = fmt.Sprintf("%q", t.Name)
	}
	return strings.Join(n, ", ")
}

// newValue wraps t for onnxruntime: fixed-size tensors over t's own bytes
// (copied only when misaligned for the element type or a BOOL byte is not
// 0/1), BYTES as an onnxruntime string tensor.
func newValue(t *oip.Tensor, et ort.TensorElementDataType) (ort.Value, error) {
	if len(t.Shape) == 0 {
		return nil, fmt.Errorf("%w: input %q is a scalar (shape []); onnxruntime_go cannot build rank-0 tensors, send shape [1]", oip.ErrUnsupported, t.Name)
	}
	shape := ort.NewShape(t.Shape...)
	if t.Datatype == oip.Bytes {
		st, err := ort.NewStringTensor(shape)
		if err != nil {
			return nil, fmt.Errorf("input %q: create string tensor: %w", t.Name, err)
		}
		strs := make([]string, len(t.Strings))
		for i, s := range t.Strings {
			if bytes.IndexByte(s, 0) >= 0 {
				_ = st.Destroy()
				return nil, fmt.Errorf("%w: input %q: BYTES element %d contains a NUL byte, which onnxruntime_go string tensors cannot carry", oip.ErrUnsupported, t.Name, i)
			}
			strs[i] = string(s)
		}
		if err := st.SetContents(strs); err != nil {
			_ = st.Destroy()
			return nil, fmt.Errorf("input %q: fill string tensor: %w", t.Name, err)
		}
		return st, nil
	}
	data := t.Raw
	size := t.Datatype.Size()
	if len(data) == 0 {
		// onnxruntime_go needs a non-empty buffer even for zero elements.
		data = make([]byte, 1)
	} else if uintptr(unsafe.Pointer(unsafe.SliceData(data)))%uintptr(size) != 0 {
		data = alignedCopy(data)
	}
	if t.Datatype == oip.Bool {
		data = normalizeBools(data)
	}
	v, err := ort.NewCustomDataTensor(shape, data, et)
	if err != nil {
		return nil, fmt.Errorf("input %q: create tensor: %w", t.Name, err)
	}
	return v, nil
}

func alignedCopy(b []byte) []byte {
	words := make([]uint64, (len(b)+7)/8)
	out := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(words))), len(b))
	copy(out, b)
	return out
}

func normalizeBools(b []byte) []byte {
	for _, x := range b {
		if x > 1 {
			out := make([]byte, len(b))
			for j, y := range b {
				if y != 0 {
					out[j] = 1
				}
			}
			return out
		}
	}
	return b
}

// preallocateHalfOutputs works around onnxruntime_go v1.38.0 sizing
// automatically allocated FP16/BF16 outputs by element count instead of
// bytes: such outputs get a buffer here. Dynamic dimensions are resolved
// only for the common case of a batch dimension shared with the inputs.
func (m *Model) preallocateHalfOutputs(inputs []*oip.Tensor, outs []ort.Value) error {
	for i, meta := range m.outputs {
		if meta.Datatype != string(oip.FP16) && meta.Datatype != string(oip.BF16) {
			continue
		}
		shape := append([]int64(nil), meta.Shape...)
		for d, v := range shape {
			if v >= 0 {
				continue
			}
			batch, ok := m.batchDim(inputs)
			if d != 0 || !ok {
				return fmt.Errorf("%w: output %q is %s with dynamic shape %v; onnxruntime_go v1.38.0 cannot allocate it", oip.ErrUnsupported, meta.Name, meta.Datatype, meta.Shape)
			}
			shape[d] = batch
		}
		n, err := oip.ElementCount(shape)
		if err != nil {
			return fmt.Errorf("output %q: %w", meta.Name, err)
		}
		buf := make([]byte, max(1, n*2))
		v, err := ort.NewCustomDataTensor(ort.NewShape(shape...), buf, m.ortOut[i])
		if err != nil {
			return fmt.Errorf("output %q: allocate: %w", meta.Name, err)
		}
		outs[i] = v
	}
	return nil
}

// batchDim is the first dimension shared by every input whose graph shape
// starts with a dynamic dimension.
func (m *Model) batchDim(inputs []*oip.Tensor) (int64, bool) {
	batch := int64(-1)
	for i, meta := range m.inputs {
		if len(meta.Shape) == 0 || meta.Shape[0] >= 0 {
			continue
		}
		b := inputs[i].Shape[0]
		if batch >= 0 && b != batch {
			return 0, false
		}
		batch = b
	}
	return batch, batch >= 0
}

// toTensor reads an output value into an oip.Tensor; fixed-size data is
// viewed in place (onnxruntime_go already copied it into Go memory).
func toTensor(meta oip.TensorMetadata, v ort.Value) (oip.Tensor, error) {
	t := oip.Tensor{Name: meta.Name, Datatype: oip.DataType(meta.Datatype), Shape: []int64(v.GetShape())}
	switch x := v.(type) {
	case *ort.StringTensor:
		strs, err := x.GetContents()
		if err != nil {
			return t, err
		}
		t.Strings = make([][]byte, len(strs))
		for i, s := range strs {
			t.Strings[i] = []byte(s)
		}
		return t, nil
	case *ort.CustomDataTensor:
		n, err := oip.ElementCount(t.Shape)
		if err != nil {
			return t, err
		}
		t.Raw = x.GetData()[:n*int64(t.Datatype.Size())]
		return t, nil
	case *ort.Tensor[float32]:
		t.Raw = view(x.GetData())
	case *ort.Tensor[float64]:
		t.Raw = view(x.GetData())
	case *ort.Tensor[int8]:
		t.Raw = view(x.GetData())
	case *ort.Tensor[int16]:
		t.Raw = view(x.GetData())
	case *ort.Tensor[int32]:
		t.Raw = view(x.GetData())
	case *ort.Tensor[int64]:
		t.Raw = view(x.GetData())
	case *ort.Tensor[uint8]:
		t.Raw = view(x.GetData())
	case *ort.Tensor[uint16]:
		t.Raw = view(x.GetData())
	case *ort.Tensor[uint32]:
		t.Raw = view(x.GetData())
	case *ort.Tensor[uint64]:
		t.Raw = view(x.GetData())
	case *ort.Tensor[bool]:
		t.Raw = view(x.GetData())
	default:
		return t, fmt.Errorf("unexpected onnxruntime value %T", v)
	}
	return t, t.Validate()
}

// view reinterprets a Go slice as its little-endian bytes (every platform
// onnxruntime_go supports here is little-endian).
func view[T any](d []T) []byte {
	if len(d) == 0 {
		return []byte{}
	}
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(d))), len(d)*int(unsafe.Sizeof(zero)))
}
