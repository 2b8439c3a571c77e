package transaction

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/veil-ai/veil/models"
)

const sally = `{"distance_from_home":57.87,"distance_from_last_transaction":0.3111400080477545,` +
	`"ratio_to_median_purchase_price":1.9459399775518593,"repeat_retailer":1,"used_chip":1,"used_pin_number":0,"online_order":0}`

func TestDecode(t *testing.T) {
	model := mustScaler(t).Required()
	tests := []struct {
		name     string
		data     string
		required ColumnSet
		wantErr  string
		check    func(t *testing.T, tx Transaction)
	}{
		{name: "full row", data: sally, required: AllColumns, check: func(t *testing.T, tx Transaction) {
			assert.Equal(t, 0.3111400080477545, tx.Value(DistanceFromLastTransaction))
			assert.Equal(t, 1.0, tx.Value(UsedChip))
			assert.Equal(t, AllColumns, tx.Present)
			assert.Empty(t, tx.ID)
		}},
		{name: "model columns only, booleans, id", required: model,
			data: `{"transaction_id":"t-1","distance_from_last_transaction":100,"ratio_to_median_purchase_price":1.2,"used_chip":false,"used_pin_number":false,"online_order":true,"merchant":"x"}`,
			check: func(t *testing.T, tx Transaction) {
				assert.Equal(t, "t-1", tx.ID)
				assert.Equal(t, 1.0, tx.Value(OnlineOrder))
				assert.False(t, tx.Present.Has(DistanceFromHome))
			}},
		{name: "missing required", data: `{"distance_from_last_transaction":1}`, required: model, wantErr: "missing field ratio_to_median_purchase_price"},
		{name: "not an object", data: `[1,2]`, required: model, wantErr: "must be a JSON object"},
		{name: "empty", data: ``, required: model, wantErr: "must be a JSON object"},
		{name: "broken json", data: `{"used_chip":1,`, required: model, wantErr: "not valid JSON"},
		{name: "string value", data: `{"distance_from_last_transaction":"3"}`, required: 0, wantErr: "distance_from_last_transaction is not a number"},
		{name: "null value", data: `{"used_chip":null}`, required: 0, wantErr: "used_chip is null"},
		{name: "binary out of range", data: `{"used_pin_number":2}`, required: 0, wantErr: "used_pin_number must be 0 or 1"},
		{name: "negative distance", data: `{"distance_from_home":-1}`, required: 0, wantErr: "must not be negative"},
		{name: "huge", data: `{"distance_from_home":1e300}`, required: 0, wantErr: "exceeds"},
		{name: "overflow", data: `{"distance_from_home":1e999}`, required: 0, wantErr: "is not a number"},
		{name: "numeric id", data: `{"transaction_id":7}`, required: 0, wantErr: "transaction_id must be a string"},
		{name: "empty id", data: `{"transaction_id":""}`, required: 0, wantErr: "transaction_id must be 1.."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tx, err := Decode([]byte(tc.data), tc.required)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.True(t, errors.Is(err, ErrMalformed))
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, tx)
		})
	}
}

func TestDecodeNeverEchoesValues(t *testing.T) {
	_, err := Decode([]byte(`{"used_chip":"SECRET-4111"}`), 0)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "SECRET")
}

func TestAppendJSONRoundTrip(t *testing.T) {
	tx, err := Decode([]byte(sally), AllColumns)
	require.NoError(t, err)
	tx.ID = "a\"b"
	back, err := Decode(tx.AppendJSON(nil), AllColumns)
	require.NoError(t, err)
	assert.Equal(t, tx, back)
}

func mustScaler(t testing.TB) *Scaler {
	t.Helper()
	s, err := ParseScaler(models.FraudScalerJSON)
	require.NoError(t, err)
	return s
}

func TestShippedScaler(t *testing.T) {
	s := mustScaler(t)
	require.Equal(t, 5, s.Width())
	assert.Equal(t, []Column{DistanceFromLastTransaction, RatioToMedianPurchasePrice, UsedChip, UsedPinNumber, OnlineOrder}, s.Order)
	var tx Transaction
	tx.Set(DistanceFromLastTransaction, 100)
	tx.Set(RatioToMedianPurchasePrice, 1.2)
	tx.Set(OnlineOrder, 1)
	row := s.Transform(nil, &tx)
	require.Len(t, row, 5)
	for i, c := range s.Order {
		want := float32((tx.Value(c) - s.Mean[i]) / s.Scale[i])
		assert.Equal(t, want, row[i], "feature %d", i)
	}
	assert.InDelta(t, (100-5.008556866310878)/26.3078888503332, float64(row[0]), 1e-6)
}

func TestParseScalerErrors(t *testing.T) {
	tests := []struct{ name, data, want string }{
		{"not json", `x`, "parse scaler"},
		{"no features", `{"feature_order":[]}`, "feature_order is empty"},
		{"unknown column", `{"feature_order":["zip"],"mean_":[0],"scale_":[1]}`, "unknown transaction column"},
		{"duplicate", `{"feature_order":["used_chip","used_chip"],"mean_":[0,0],"scale_":[1,1]}`, "listed twice"},
		{"length", `{"feature_order":["used_chip"],"mean_":[0,0],"scale_":[1]}`, "1 features but 2 means"},
		{"zero scale", `{"feature_order":["used_chip"],"mean_":[0],"scale_":[0]}`, "scale 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScaler([]byte(tc.data))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	s, err := ParseScaler([]byte(`{"feature_order":["used_chip"],"with_mean":false,"with_std":false}`))
	require.NoError(t, err)
	assert.Equal(t, []float32{1}, s.Transform(nil, &Transaction{Values: [NumColumns]float64{UsedChip: 1}}))
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{sally, `{}`, `{"used_chip":true}`, `{"transaction_id":"x","online_order":1e400}`, `[`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tx, err := Decode(data, AllColumns)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		for c := Column(0); c < NumColumns; c++ {
			v := tx.Value(c)
			if math.IsNaN(v) || v < 0 || v > MaxValue || (c.Binary() && v != 0 && v != 1) {
				t.Fatalf("accepted bad value %v for %s", v, c.Name())
			}
		}
		back, err := Decode(tx.AppendJSON(nil), AllColumns)
		if err != nil || back != tx {
			t.Fatalf("round trip: %v %+v %+v", err, back, tx)
		}
	})
}
