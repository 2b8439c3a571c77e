// Package policy_test executes manifests/kbs/resource-policy.rego with the
// OPA engine, the way Trustee's KBS does, so that a policy which only looks
// right (and passes the cross-file checks in manifests/validate) cannot ship.
package policy_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// resourcePolicyFile is the policy the kbs kustomization ships as the
// veil-resource-policy ConfigMap.
var resourcePolicyFile = filepath.Join("..", "kbs", "resource-policy.rego")

// allowQuery is the rule Trustee evaluates (spec kbs-protocol.md §8:
// "rule data.policy.allow, policy id resource-policy").
const allowQuery = "data.policy.allow"

// evalResourcePolicy evaluates the policy as Trustee's KBS does
// (kbs-protocol.md §8): rego input = the verified EAR token claims, rego
// data = {"plugin", "resource-path", "query"} of the request. Trustee treats
// a missing or non-boolean allow as deny, so only a literal true allows.
func evalResourcePolicy(t *testing.T, policy string, claims, request map[string]any) bool {
	t.Helper()
	opts := []func(*rego.Rego){
		rego.Query(allowQuery),
		rego.Module("resource-policy.rego", policy),
		rego.Store(inmem.NewFromObject(request)),
	}
	if claims != nil {
		opts = append(opts, rego.Input(claims))
	}
	rs, err := rego.New(opts...).Eval(context.Background())
	require.NoError(t, err, "evaluating %s", allowQuery)
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return false
	}
	allowed, ok := rs[0].Expressions[0].Value.(bool)
	return ok && allowed
}

// earClaims builds the EAR token claims the CoCo attestation service issues
// (kbs-protocol.md §1.7): submods.cpu0 carries ear.status and the
// annotated evidence keyed by the serde TEE name (§1.10).
func earClaims(status, tee string) map[string]any {
	return map[string]any{
		"eat_profile":     "tag:github.com,2023:veraison/ear",
		"iat":             1764888000,
		"ear.verifier-id": map[string]any{"developer": "https://confidentialcontainers.org", "build": "attestation-service 0.1.0"},
		"submods": map[string]any{
			"cpu0": map[string]any{
				"ear.status":                 status,
				"ear.trustworthiness-vector": map[string]any{"executables": 2, "hardware": 2, "configuration": 2},
				"ear.appraisal-policy-id":    "policy:ear_default_policy_cpu",
				"ear.veraison.annotated-evidence": map[string]any{
					tee: map[string]any{"quote": map[string]any{"header": map[string]any{"tee_type": "81000000"}}},
					"runtime_data_claims": map[string]any{
						"tee-pubkey": map[string]any{"kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW", "x": "x", "y": "y"},
					},
				},
			},
		},
	}
}

// resourceRequest is the rego data document for GET
// /kbs/v0/resource/<path>: the plugin name and the resource path, as a list
// of segments (Trustee since 51e0f050) or as one string (older releases).
func resourceRequest(plugin string, path any) map[string]any {
	return map[string]any{"plugin": plugin, "resource-path": path, "query": map[string]any{}}
}

func TestResourcePolicy(t *testing.T) {
	raw, err := os.ReadFile(resourcePolicyFile)
	require.NoError(t, err)
	policy := string(raw)

	keyList := []any{"default", "veil", "fraud-model-key"}
	const keyString = "default/veil/fraud-model-key"

	// withCPU0 returns TDX affirming claims with cpu0 changed by edit.
	withCPU0 := func(edit func(cpu0 map[string]any)) map[string]any {
		claims := earClaims("affirming", "tdx")
		edit(claims["submods"].(map[string]any)["cpu0"].(map[string]any))
		return claims
	}

	tests := []struct {
		name    string
		claims  map[string]any
		request map[string]any
		want    bool
	}{
		// The one thing the policy releases: the model key, to an affirming TDX guest.
		{"tdx affirming list path", earClaims("affirming", "tdx"), resourceRequest("resource", keyList), true},
		{"tdx affirming string path", earClaims("affirming", "tdx"), resourceRequest("resource", keyString), true},
		{"azure tdx vtpm affirming list path", earClaims("affirming", "az-tdx-vtpm"), resourceRequest("resource", keyList), true},
		{"azure tdx vtpm affirming string path", earClaims("affirming", "az-tdx-vtpm"), resourceRequest("resource", keyString), true},

		// Any other resource, even to a trusted guest.
		{"other tag", earClaims("affirming", "tdx"), resourceRequest("resource", []any{"default", "veil", "other-key"}), false},
		{"other repository", earClaims("affirming", "tdx"), resourceRequest("resource", []any{"other", "veil", "fraud-model-key"}), false},
		{"path prefix only", earClaims("affirming", "tdx"), resourceRequest("resource", []any{"default", "veil"}), false},
		{"path with extra segment", earClaims("affirming", "tdx"), resourceRequest("resource", []any{"default", "veil", "fraud-model-key", "x"}), false},
		{"string path other tag", earClaims("affirming", "tdx"), resourceRequest("resource", "default/veil/other-key"), false},
		{"string path with leading slash", earClaims("affirming", "tdx"), resourceRequest("resource", "/default/veil/fraud-model-key"), false},
		{"string path with extra segment", earClaims("affirming", "tdx"), resourceRequest("resource", keyString+"/x"), false},
		{"list holding the joined string", earClaims("affirming", "tdx"), resourceRequest("resource", []any{keyString}), false},
		{"other plugin", earClaims("affirming", "tdx"), resourceRequest("nebula-ca", keyList), false},

		// Appraisal not affirming (EAR status tiers).
		{"tdx warning", earClaims("warning", "tdx"), resourceRequest("resource", keyList), false},
		{"tdx contraindicated", earClaims("contraindicated", "tdx"), resourceRequest("resource", keyList), false},
		{"tdx none", earClaims("none", "tdx"), resourceRequest("resource", keyList), false},
		{"azure tdx vtpm warning string path", earClaims("warning", "az-tdx-vtpm"), resourceRequest("resource", keyString), false},
		{"status with other case", earClaims("Affirming", "tdx"), resourceRequest("resource", keyList), false},

		// Other TEEs, affirming or not.
		{"sample affirming", earClaims("affirming", "sample"), resourceRequest("resource", keyList), false},
		{"snp affirming", earClaims("affirming", "snp"), resourceRequest("resource", keyList), false},
		{"azure snp vtpm affirming", earClaims("affirming", "az-snp-vtpm"), resourceRequest("resource", keyList), false},
		{"pre-0.16 azure tdx spelling", earClaims("affirming", "aztdxvtpm"), resourceRequest("resource", keyList), false},

		// Missing or malformed fields deny without an evaluation error.
		{"no input", nil, resourceRequest("resource", keyList), false},
		{"empty claims", map[string]any{}, resourceRequest("resource", keyList), false},
		{"no cpu0 submod", map[string]any{"submods": map[string]any{"gpu0": map[string]any{"ear.status": "affirming"}}}, resourceRequest("resource", keyList), false},
		{"no status", withCPU0(func(c map[string]any) { delete(c, "ear.status") }), resourceRequest("resource", keyList), false},
		{"status not a string", withCPU0(func(c map[string]any) { c["ear.status"] = 2 }), resourceRequest("resource", keyList), false},
		{"no annotated evidence", withCPU0(func(c map[string]any) { delete(c, "ear.veraison.annotated-evidence") }), resourceRequest("resource", keyList), false},
		{"annotated evidence not an object", withCPU0(func(c map[string]any) { c["ear.veraison.annotated-evidence"] = "tdx" }), resourceRequest("resource", keyList), false},
		{"tdx evidence false", withCPU0(func(c map[string]any) { c["ear.veraison.annotated-evidence"] = map[string]any{"tdx": false} }), resourceRequest("resource", keyList), false},
		{"no plugin", earClaims("affirming", "tdx"), map[string]any{"resource-path": keyList}, false},
		{"no resource path", earClaims("affirming", "tdx"), map[string]any{"plugin": "resource"}, false},
		{"empty request", earClaims("affirming", "tdx"), map[string]any{}, false},
		{"resource path not list or string", earClaims("affirming", "tdx"), resourceRequest("resource", map[string]any{"repository": "default"}), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, evalResourcePolicy(t, policy, tc.claims, tc.request))
		})
	}
}
