package oip

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// The hand-written envelope must be what encoding/json would have written:
// valid JSON whose fields decode into the wire structs.
func TestEnvelopeIsValidJSON(t *testing.T) {
	tensors := []Tensor{
		FP32Tensor(`in"<&>\`, []int64{2, 2}, []float32{1.5, float32(math.NaN()), float32(math.Inf(-1)), 0}),
		{Name: "s", Datatype: Bytes, Shape: []int64{2}, Strings: [][]byte{[]byte(`"quoted"`), []byte("\x00\n")}},
		{Name: "empty", Datatype: FP32, Shape: []int64{0, 5}, Raw: []byte{}},
	}
	tensors[0].Parameters = Parameters{"note": "<html>", "n": 3}

	resp := &InferResponse{ModelName: "m\u2028", ModelVersion: "7", ID: `id"1`, Parameters: Parameters{"p": true}, Outputs: tensors}
	body, n, err := EncodeRESTResponse(resp, func(name string) bool { return name == "empty" })
	require.NoError(t, err)
	require.True(t, json.Valid(body[:n]), "header %s", body[:n])
	var wire InferenceResponse
	require.NoError(t, json.Unmarshal(body[:n], &wire))
	require.Equal(t, "m\u2028", wire.ModelName)
	require.Equal(t, `id"1`, wire.ID)
	require.Len(t, wire.Outputs, 3)
	require.Equal(t, `in"<&>\`, wire.Outputs[0].Name)
	require.Equal(t, "<html>", wire.Outputs[0].Parameters["note"])
	require.JSONEq(t, `[1.5,"NaN","-Infinity",0]`, string(wire.Outputs[0].Data))
	require.EqualValues(t, 0, wire.Outputs[2].Parameters[ParamBinaryDataSize])

	req := &InferRequest{ID: "r", Inputs: tensors, Outputs: []RequestOutput{{Name: "o", Parameters: Parameters{ParamBinaryData: true}}}}
	body, n, err = EncodeRESTRequest(req, false)
	require.NoError(t, err)
	require.True(t, json.Valid(body[:n]), "header %s", body[:n])
	got, err := DecodeRESTRequest(body, n)
	require.NoError(t, err)
	require.Equal(t, "r", got.ID)
	require.Len(t, got.Inputs, 3)
	require.Equal(t, tensors[1].Strings, got.Inputs[1].Strings)
	require.Equal(t, "o", got.Outputs[0].Name)
}
