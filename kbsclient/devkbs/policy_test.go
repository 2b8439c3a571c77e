package devkbs

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/kbsclient/protocol"
)

func id(t *testing.T, s string) protocol.ResourceID {
	t.Helper()
	r, err := protocol.ParseResourceID(s)
	require.NoError(t, err)
	return r
}

func TestPolicyAllows(t *testing.T) {
	pol, err := ParsePolicy([]byte(`{"rules":[
		{"effect":"deny","path":"default/secret/*"},
		{"effect":"allow","path":"default/model-keys/*","tees":["tdx"]},
		{"effect":"allow","path":"dev/*/*","tees":["sample","tdx"]}
	]}`))
	require.NoError(t, err)
	tests := []struct {
		res, tee string
		want     bool
		rule     int
	}{
		{"default/secret/a", "tdx", false, 0},
		{"default/model-keys/fraud", "tdx", true, 1},
		{"default/model-keys/fraud", "sample", false, -1},
		{"dev/x/y", "sample", true, 2},
		{"other/x/y", "tdx", false, -1},
	}
	for _, tc := range tests {
		t.Run(tc.res+"/"+tc.tee, func(t *testing.T) {
			ok, rule := pol.Allows(id(t, tc.res), tc.tee)
			assert.Equal(t, tc.want, ok)
			assert.Equal(t, tc.rule, rule)
		})
	}
}

func TestDefaultPolicy(t *testing.T) {
	pol := DefaultPolicy("tdx")
	ok, _ := pol.Allows(id(t, "a/b/c"), "tdx")
	assert.True(t, ok)
	ok, _ = pol.Allows(id(t, "a/b/c"), "sample")
	assert.False(t, ok, "sample is denied unless explicitly allowed")
	ok, _ = Policy{}.Allows(id(t, "a/b/c"), "tdx")
	assert.False(t, ok, "an empty policy denies")
}

func TestParsePolicyRejects(t *testing.T) {
	tests := map[string]string{
		"bad effect":    `{"rules":[{"effect":"maybe","path":"*/*/*"}]}`,
		"empty path":    `{"rules":[{"effect":"allow","path":""}]}`,
		"bad glob":      `{"rules":[{"effect":"allow","path":"[/*/*"}]}`,
		"unknown tee":   `{"rules":[{"effect":"allow","path":"*/*/*","tees":["snp"]}]}`,
		"unknown field": `{"rules":[],"default":"allow"}`,
		"trailing":      `{"rules":[]} {}`,
		"not json":      `allow all`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(body))
			assert.Error(t, err)
		})
	}
}

func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(`{"rules":[{"effect":"allow","path":"default/*/*","tees":["tdx"]}]}`))
	f.Add([]byte(`{"rules":[{"effect":"deny","path":"[x"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		pol, err := ParsePolicy(b)
		if err != nil {
			return
		}
		// A valid policy evaluates without error for any valid id.
		pol.Allows(protocol.ResourceID{Repo: "a", Type: "b", Tag: "c"}, "tdx")
	})
}
