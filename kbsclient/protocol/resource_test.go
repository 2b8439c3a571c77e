package protocol

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseResourceID(t *testing.T) {
	tests := []struct {
		in      string
		want    ResourceID
		wantErr string
	}{
		{in: "kbs:///default/model-keys/fraud", want: ResourceID{"default", "model-keys", "fraud"}},
		{in: "default/model-keys/fraud", want: ResourceID{"default", "model-keys", "fraud"}},
		{in: "default/model-keys/model-name.key", want: ResourceID{"default", "model-keys", "model-name.key"}},
		{in: "a_b/-c/d.e.f", want: ResourceID{"a_b", "-c", "d.e.f"}},
		{in: "kbs://kbs.example/default/k/t", wantErr: "host"},
		{in: "https:///default/k/t", wantErr: "scheme"},
		{in: "default/k", wantErr: "three segments"},
		{in: "default/k/t/extra", wantErr: "three segments"},
		{in: "", wantErr: "three segments"},
		{in: "default//t", wantErr: "type"},
		{in: "../k/t", wantErr: "repository"},
		{in: "default/./t", wantErr: "type"},
		{in: "default/k/.hidden", wantErr: "tag"},
		{in: "default/k/t?x=1", wantErr: "tag"},
		{in: "default/k/t%2F", wantErr: "tag"},
		{in: "kbs:///default/k/ t", wantErr: "tag"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseResourceID(tc.in)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, "kbs:///"+got.Path(), got.String())
			again, err := ParseResourceID(got.String())
			require.NoError(t, err)
			assert.Equal(t, got, again)
			assert.NoError(t, got.Valid())
		})
	}
	assert.Error(t, ResourceID{}.Valid())
}

func FuzzParseResourceID(f *testing.F) {
	for _, s := range []string{"kbs:///default/k/t", "a/b/c", "../../x", "kbs://h/a/b/c", "a/b/c/d", "a/./c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseResourceID(s)
		if err != nil {
			return
		}
		// A valid id never allows path traversal and round-trips.
		for _, seg := range []string{id.Repo, id.Type, id.Tag} {
			if seg == "" || seg[0] == '.' {
				t.Fatalf("accepted bad segment %q in %q", seg, s)
			}
		}
		again, err := ParseResourceID(id.String())
		if err != nil || again != id {
			t.Fatalf("round trip of %q failed: %v", s, err)
		}
	})
}
