package pipeline

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/functions/transaction"
)

func TestGenerateTransactions(t *testing.T) {
	a, err := GenerateTransactions(2000, 7, 0.2)
	require.NoError(t, err)
	b, err := GenerateTransactions(2000, 7, 0.2)
	require.NoError(t, err)
	c, err := GenerateTransactions(2000, 8, 0.2)
	require.NoError(t, err)
	require.Len(t, a, 2000)
	assert.Equal(t, a, b, "same seed, same transactions")
	assert.NotEqual(t, a[0].Data, c[0].Data, "another seed, other transactions")

	ids := map[string]bool{}
	fraud := 0
	for _, tx := range a {
		assert.False(t, ids[tx.ID], "unique id %s", tx.ID)
		ids[tx.ID] = true
		dec, err := transaction.Decode(tx.Data, transaction.AllColumns)
		require.NoError(t, err, "the batcher can decode what we send")
		assert.Empty(t, dec.ID, "the event id is the transaction id, as gen.Send sends it")
		if tx.Fraud {
			fraud++
		}
	}
	assert.InDelta(t, 0.2, float64(fraud)/2000, 0.04)

	_, err = GenerateTransactions(10, 1, 1.5)
	assert.Error(t, err)
}
