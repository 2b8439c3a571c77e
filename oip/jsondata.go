package oip

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// maxJSONDepth bounds array nesting in tensor data; no real tensor comes
// close, and it keeps hostile input cheap to reject.
const maxJSONDepth = 64

// DecodeJSONData parses a REST tensor's "data" (flat or nested arrays, or a
// single scalar) of datatype dt straight into the Tensor layout: fixed-size
// elements into a little-endian buffer (no allocation per element), BYTES
// elements from JSON strings. The element count must match shape.
func DecodeJSONData(name string, dt DataType, shape []int64, data []byte) (Tensor, error) {
	t := Tensor{Name: name, Datatype: dt, Shape: shape}
	if !dt.Valid() {
		return t, invalidf("input %q: unknown datatype %q", name, dt)
	}
	if needsBinary(dt) {
		return t, invalidf("input %q: %s has no JSON form; send it with the binary tensor data extension (parameter %s)", name, dt, ParamBinaryDataSize)
	}
	n, err := ElementCount(shape)
	if err != nil {
		return t, invalidf("input %q: %v", name, err)
	}
	// Every JSON element takes at least two bytes ("1,"), so the data's
	// length bounds what is worth preallocating whatever the shape claims.
	capHint := min(n, int64(len(data)/2+1))
	var visit func(tok []byte, str bool) error
	if dt == Bytes {
		t.Strings = make([][]byte, 0, capHint)
		visit = func(tok []byte, str bool) error {
			if !str {
				return invalidf("input %q: BYTES elements must be JSON strings, got %s", name, truncate(tok))
			}
			s, err := unquote(tok)
			if err != nil {
				return invalidf("input %q: bad string element: %v", name, err)
			}
			t.Strings = append(t.Strings, s)
			return nil
		}
	} else {
		size := dt.Size()
		t.Raw = make([]byte, 0, capHint*int64(size))
		visit = func(tok []byte, str bool) error {
			var err error
			t.Raw, err = appendElement(t.Raw, dt, tok, str)
			if err != nil {
				return invalidf("input %q: element %d: %v", name, elementsSoFar(&t), err)
			}
			return nil
		}
	}
	if err := walkJSON(data, visit); err != nil {
		if IsInvalid(err) {
			return t, err
		}
		return t, invalidf("input %q: malformed data: %v", name, err)
	}
	if got := int64(elementsSoFar(&t)); got != n {
		return t, invalidf("input %q: shape %v needs %d elements, data has %d", name, shape, n, got)
	}
	return t, nil
}

func elementsSoFar(t *Tensor) int {
	if t.Datatype == Bytes {
		return len(t.Strings)
	}
	return len(t.Raw) / t.Datatype.Size()
}

type jsonSyntaxError string

func (e jsonSyntaxError) Error() string { return string(e) }

// walkJSON calls visit for every scalar of a JSON value made of nested
// arrays, in row-major order, checking the array grammar on the way.
func walkJSON(b []byte, visit func(tok []byte, str bool) error) error {
	i := skipSpace(b, 0)
	if i == len(b) {
		return jsonSyntaxError("no data")
	}
	if b[i] != '[' {
		tok, str, j, err := scanScalar(b, i)
		if err != nil {
			return err
		}
		if err := visit(tok, str); err != nil {
			return err
		}
		if skipSpace(b, j) != len(b) {
			return jsonSyntaxError("trailing bytes after value")
		}
		return nil
	}
	const (
		afterOpen = iota
		afterValue
		afterComma
	)
	depth, state := 0, afterComma
	for {
		i = skipSpace(b, i)
		if i == len(b) {
			return jsonSyntaxError("unexpected end of data")
		}
		c := b[i]
		switch {
		case state != afterValue && c == '[':
			depth++
			if depth > maxJSONDepth {
				return jsonSyntaxError("arrays nested too deep")
			}
			state = afterOpen
			i++
		case (state == afterOpen || state == afterValue) && c == ']':
			depth--
			i++
			state = afterValue
			if depth == 0 {
				if skipSpace(b, i) != len(b) {
					return jsonSyntaxError("trailing bytes after data")
				}
				return nil
			}
		case state == afterValue && c == ',':
			state = afterComma
			i++
		case state != afterValue:
			tok, str, j, err := scanScalar(b, i)
			if err != nil {
				return err
			}
			if err := visit(tok, str); err != nil {
				return err
			}
			i, state = j, afterValue
		default:
			return jsonSyntaxError("unexpected " + strconv.QuoteRune(rune(c)) + " at offset " + strconv.Itoa(i))
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanScalar returns the token starting at b[i] (a string including its
// quotes, a number or a literal) and the offset after it.
func scanScalar(b []byte, i int) (tok []byte, str bool, next int, err error) {
	if b[i] == '"' {
		j := i + 1
		for j < len(b) {
			switch b[j] {
			case '\\':
				j += 2
				continue
			case '"':
				return b[i : j+1], true, j + 1, nil
			}
			j++
		}
		return nil, false, 0, jsonSyntaxError("unterminated string")
	}
	j := i
	for j < len(b) {
		c := b[j]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' || (c >= 'a' && c <= 'z') {
			j++
			continue
		}
		break
	}
	if j == i {
		return nil, false, 0, jsonSyntaxError("unexpected " + strconv.QuoteRune(rune(b[i])) + " at offset " + strconv.Itoa(i))
	}
	return b[i:j], false, j, nil
}

// unquote decodes a JSON string token; only strings with escapes go
// through encoding/json.
func unquote(tok []byte) ([]byte, error) {
	inner := tok[1 : len(tok)-1]
	plain := true
	for _, c := range inner {
		if c == '\\' || c < 0x20 {
			plain = false
			break
		}
	}
	if plain {
		return append([]byte(nil), inner...), nil
	}
	var s string
	if err := json.Unmarshal(tok, &s); err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// view lets strconv read a token without copying it; strconv never keeps
// its argument (its errors clone the text).
func view(tok []byte) string { return unsafe.String(unsafe.SliceData(tok), len(tok)) }

func truncate(tok []byte) string {
	if len(tok) > 32 {
		return string(tok[:32]) + "..."
	}
	return string(tok)
}

type elementError string

func (e elementError) Error() string { return string(e) }

// appendElement parses one JSON scalar as dt and appends its little-endian
// bytes to dst.
func appendElement(dst []byte, dt DataType, tok []byte, str bool) ([]byte, error) {
	le := binary.LittleEndian
	switch dt {
	case Bool:
		switch view(tok) {
		case "true", "1":
			return append(dst, 1), nil
		case "false", "0":
			return append(dst, 0), nil
		}
		return dst, elementError("want a boolean, got " + truncate(tok))
	case FP32, FP64:
		bits := 64
		if dt == FP32 {
			bits = 32
		}
		f, err := parseFloat(tok, str, bits)
		if err != nil {
			return dst, err
		}
		if dt == FP32 {
			return le.AppendUint32(dst, math.Float32bits(float32(f))), nil
		}
		return le.AppendUint64(dst, math.Float64bits(f)), nil
	case Int8, Int16, Int32, Int64:
		if str {
			return dst, elementError("want a number, got a string")
		}
		bits := dt.Size() * 8
		v, err := strconv.ParseInt(view(tok), 10, bits)
		if err != nil {
			v, err = integralFloat(tok, float64(int64(-1)<<(bits-1)), float64(uint64(1)<<(bits-1)))
			if err != nil {
				return dst, err
			}
		}
		return appendUint(dst, uint64(v), dt.Size()), nil
	case Uint8, Uint16, Uint32, Uint64:
		if str {
			return dst, elementError("want a number, got a string")
		}
		bits := dt.Size() * 8
		v, err := strconv.ParseUint(view(tok), 10, bits)
		if err != nil {
			f, ferr := integralFloat(tok, 0, math.Ldexp(1, bits))
			if ferr != nil {
				return dst, ferr
			}
			v = uint64(f)
		}
		return appendUint(dst, v, dt.Size()), nil
	}
	return dst, elementError("datatype " + string(dt) + " has no JSON form")
}

func appendUint(dst []byte, v uint64, size int) []byte {
	switch size {
	case 1:
		return append(dst, byte(v))
	case 2:
		return binary.LittleEndian.AppendUint16(dst, uint16(v))
	case 4:
		return binary.LittleEndian.AppendUint32(dst, uint32(v))
	}
	return binary.LittleEndian.AppendUint64(dst, v)
}

// integralFloat accepts numbers such as 3.0 or 1e3 for integer tensors, as
// clients that hold everything as floats send them; lo <= v < hi.
func integralFloat(tok []byte, lo, hi float64) (int64, error) {
	f, err := strconv.ParseFloat(view(tok), 64)
	if err != nil || f != math.Trunc(f) {
		return 0, elementError("want an integer, got " + truncate(tok))
	}
	if f < lo || f >= hi {
		return 0, elementError("integer out of range: " + truncate(tok))
	}
	if hi > math.MaxInt64 {
		// Unsigned 64-bit: the caller converts; keep the value exact.
		u := uint64(f)
		return int64(u), nil
	}
	return int64(f), nil
}

// parseFloat reads a JSON number, or one of the strings "NaN", "Infinity"
// and "-Infinity" that AppendJSONData writes for values JSON cannot hold.
func parseFloat(tok []byte, str bool, bits int) (float64, error) {
	if str {
		switch view(tok) {
		case `"NaN"`:
			return math.NaN(), nil
		case `"Infinity"`:
			return math.Inf(1), nil
		case `"-Infinity"`:
			return math.Inf(-1), nil
		}
		return 0, elementError("want a number, got a string")
	}
	f, err := strconv.ParseFloat(view(tok), bits)
	if err != nil {
		return 0, elementError("want a number, got " + truncate(tok))
	}
	return f, nil
}

// AppendJSONData appends t's elements to dst as a flat JSON array (the
// shape travels beside it). NaN and infinities become the strings "NaN",
// "Infinity" and "-Infinity"; BYTES elements become JSON strings, with
// invalid UTF-8 replaced by U+FFFD as encoding/json does (ask for binary
// output to get bytes exactly). FP16 and BF16 have no JSON form.
func AppendJSONData(dst []byte, t *Tensor) ([]byte, error) {
	if err := t.Validate(); err != nil {
		return dst, err
	}
	if needsBinary(t.Datatype) {
		return dst, invalidf("tensor %q: %s has no JSON form; request it as binary (%s)", t.Name, t.Datatype, ParamBinaryData)
	}
	dst = append(dst, '[')
	if t.Datatype == Bytes {
		for i, s := range t.Strings {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, s)
		}
		return append(dst, ']'), nil
	}
	n := len(t.Raw) / t.Datatype.Size()
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONElement(dst, t, i)
	}
	return append(dst, ']'), nil
}

// AppendNestedJSONData is AppendJSONData with arrays nested by the shape
// (a rank-0 tensor is a bare value), as KServe v1 predictions are written.
func AppendNestedJSONData(dst []byte, t *Tensor) ([]byte, error) {
	if err := t.Validate(); err != nil {
		return dst, err
	}
	if needsBinary(t.Datatype) {
		return dst, invalidf("tensor %q: %s has no JSON form; request it as binary (%s)", t.Name, t.Datatype, ParamBinaryData)
	}
	if len(t.Shape) == 0 {
		return appendJSONElement(dst, t, 0), nil
	}
	next := 0
	var nest func(d int)
	nest = func(d int) {
		dst = append(dst, '[')
		for i := int64(0); i < t.Shape[d]; i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			if d == len(t.Shape)-1 {
				dst = appendJSONElement(dst, t, next)
				next++
			} else {
				nest(d + 1)
			}
		}
		dst = append(dst, ']')
	}
	nest(0)
	return dst, nil
}

// appendJSONElement appends element i of a validated tensor.
func appendJSONElement(dst []byte, t *Tensor, i int) []byte {
	if t.Datatype == Bytes {
		return appendJSONString(dst, t.Strings[i])
	}
	le := binary.LittleEndian
	size := t.Datatype.Size()
	e := t.Raw[i*size : (i+1)*size]
	switch t.Datatype {
	case Bool:
		return strconv.AppendBool(dst, e[0] != 0)
	case Int8:
		return strconv.AppendInt(dst, int64(int8(e[0])), 10)
	case Int16:
		return strconv.AppendInt(dst, int64(int16(le.Uint16(e))), 10)
	case Int32:
		return strconv.AppendInt(dst, int64(int32(le.Uint32(e))), 10)
	case Int64:
		return strconv.AppendInt(dst, int64(le.Uint64(e)), 10)
	case Uint8:
		return strconv.AppendUint(dst, uint64(e[0]), 10)
	case Uint16:
		return strconv.AppendUint(dst, uint64(le.Uint16(e)), 10)
	case Uint32:
		return strconv.AppendUint(dst, uint64(le.Uint32(e)), 10)
	case Uint64:
		return strconv.AppendUint(dst, le.Uint64(e), 10)
	case FP32:
		return appendFloat(dst, float64(math.Float32frombits(le.Uint32(e))), 32)
	case FP64:
		return appendFloat(dst, math.Float64frombits(le.Uint64(e)), 64)
	}
	return dst
}

func appendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

const hexDigits = "0123456789abcdef"

func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return append(dst, '"')
}
