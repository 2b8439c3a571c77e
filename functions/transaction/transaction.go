// Package transaction is the card-transaction event payload shared by the
// batcher (which decodes and scales it) and the generator (which produces
// it): the dataset's column names, strict JSON decoding with clear reasons,
// and the model's StandardScaler.
package transaction

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// EventType is the CloudEvents type of a transaction to score.
const EventType = "dev.veil.transaction.v1"

// Column is one of the dataset's feature columns.
type Column int

// The dataset's feature columns, in the dataset's order.
const (
	DistanceFromHome Column = iota
	DistanceFromLastTransaction
	RatioToMedianPurchasePrice
	RepeatRetailer
	UsedChip
	UsedPinNumber
	OnlineOrder
	NumColumns
)

var columnNames = [NumColumns]string{
	"distance_from_home",
	"distance_from_last_transaction",
	"ratio_to_median_purchase_price",
	"repeat_retailer",
	"used_chip",
	"used_pin_number",
	"online_order",
}

// Name is the column's JSON field name.
func (c Column) Name() string {
	if c < 0 || c >= NumColumns {
		return "column(" + strconv.Itoa(int(c)) + ")"
	}
	return columnNames[c]
}

// Binary reports whether the column holds a 0/1 flag rather than a
// non-negative distance or ratio.
func (c Column) Binary() bool { return c >= RepeatRetailer }

// ParseColumn finds a column by its JSON name.
func ParseColumn(name string) (Column, error) {
	for i, n := range columnNames {
		if n == name {
			return Column(i), nil
		}
	}
	return 0, fmt.Errorf("unknown transaction column %q", name)
}

// ColumnSet is a set of columns, used to say which ones must be present.
type ColumnSet uint16

// Has reports whether c is in the set.
func (s ColumnSet) Has(c Column) bool { return s&(1<<uint(c)) != 0 }

// With returns the set plus c.
func (s ColumnSet) With(c Column) ColumnSet { return s | 1<<uint(c) }

// AllColumns requires every dataset column.
const AllColumns ColumnSet = 1<<uint(NumColumns) - 1

// Limits that keep a transaction sane: values this large are data errors
// (the dataset's maximum distance is under 11,000), and would overflow
// float32 once scaled.
const (
	MaxValue      = 1e9
	MaxIDLength   = 256
	MaxDataLength = 64 << 10
)

// Transaction is one card transaction with the dataset's columns.
// Values holds every column (binary ones as 0 or 1); Present says which
// ones the producer sent.
type Transaction struct {
	ID      string
	Values  [NumColumns]float64
	Present ColumnSet
}

// Value returns a column's value.
func (t *Transaction) Value(c Column) float64 { return t.Values[c] }

// Set sets a column's value and marks it present.
func (t *Transaction) Set(c Column, v float64) {
	t.Values[c] = v
	t.Present = t.Present.With(c)
}

// ErrMalformed is wrapped by every decoding failure: the producer sent
// something that no retry can fix.
var ErrMalformed = errors.New("malformed transaction")

// flexNumber accepts a JSON number or a JSON boolean (true = 1), since
// producers differ on how they write the binary flags.
type flexNumber float64

func (f *flexNumber) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true":
		*f = 1
		return nil
	case "false":
		*f = 0
		return nil
	case "null":
		return errors.New("is null")
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return errors.New("is not a number")
	}
	*f = flexNumber(v)
	return nil
}

// Decode parses a transaction from JSON, requiring the columns in
// required. Unknown fields are ignored so that producers can add columns
// without breaking scoring. Every error wraps ErrMalformed and names the
// field and the reason, but never echoes the value (transaction data must
// not reach logs).
func Decode(data []byte, required ColumnSet) (Transaction, error) {
	var tx Transaction
	if len(data) > MaxDataLength {
		return tx, fmt.Errorf("%w: data is %d bytes, limit %d", ErrMalformed, len(data), MaxDataLength)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return tx, fmt.Errorf("%w: data must be a JSON object", ErrMalformed)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &raw); err != nil {
		return tx, fmt.Errorf("%w: data is not valid JSON: %s", ErrMalformed, jsonReason(err))
	}
	if v, ok := raw["transaction_id"]; ok {
		var id string
		if err := json.Unmarshal(v, &id); err != nil {
			return tx, fmt.Errorf("%w: transaction_id must be a string", ErrMalformed)
		}
		if len(id) == 0 || len(id) > MaxIDLength || !utf8.ValidString(id) {
			return tx, fmt.Errorf("%w: transaction_id must be 1..%d bytes of UTF-8", ErrMalformed, MaxIDLength)
		}
		tx.ID = id
	}
	for c := Column(0); c < NumColumns; c++ {
		v, ok := raw[c.Name()]
		if !ok {
			if required.Has(c) {
				return tx, fmt.Errorf("%w: missing field %s", ErrMalformed, c.Name())
			}
			continue
		}
		var f flexNumber
		if err := f.UnmarshalJSON(bytes.TrimSpace(v)); err != nil {
			return tx, fmt.Errorf("%w: field %s %v", ErrMalformed, c.Name(), err)
		}
		if err := checkValue(c, float64(f)); err != nil {
			return tx, err
		}
		tx.Set(c, float64(f))
	}
	return tx, nil
}

func checkValue(c Column, v float64) error {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Errorf("%w: field %s is not finite", ErrMalformed, c.Name())
	case c.Binary() && v != 0 && v != 1:
		return fmt.Errorf("%w: field %s must be 0 or 1", ErrMalformed, c.Name())
	case v < 0:
		return fmt.Errorf("%w: field %s must not be negative", ErrMalformed, c.Name())
	case v > MaxValue:
		return fmt.Errorf("%w: field %s exceeds %g", ErrMalformed, c.Name(), MaxValue)
	}
	return nil
}

// jsonReason keeps the JSON error's position but not its content.
func jsonReason(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "syntax error at offset " + strconv.FormatInt(se.Offset, 10)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "unexpected " + te.Value
	}
	return "invalid"
}

// AppendJSON appends the transaction's JSON form (present columns only,
// shortest float formatting) to b; the generator uses it on its hot path.
func (t *Transaction) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	first := true
	if t.ID != "" {
		b = append(b, `"transaction_id":`...)
		b = strconv.AppendQuote(b, t.ID)
		first = false
	}
	for c := Column(0); c < NumColumns; c++ {
		if !t.Present.Has(c) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, c.Name()...)
		b = append(b, `":`...)
		b = strconv.AppendFloat(b, t.Values[c], 'g', -1, 64)
	}
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler with AppendJSON.
func (t Transaction) MarshalJSON() ([]byte, error) { return t.AppendJSON(nil), nil }
