package initdata

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// agentPolicyPackage is the package the kata agent queries: for each ttRPC
// request it evaluates data.agent_policy.<RequestName> with the request as
// input (kbs-protocol.md §3 "Policy requirements" and the §4 initdata
// example, package agent_policy).
const agentPolicyPackage = "agent_policy"

// evalAgentPolicy asks the policy whether the agent may serve request with
// the given input. An undefined or non-boolean rule is a denial, as in the
// agent.
func evalAgentPolicy(t *testing.T, policy, request string, input map[string]any) bool {
	t.Helper()
	query := fmt.Sprintf("data.%s.%s", agentPolicyPackage, request)
	rs, err := rego.New(
		rego.Query(query),
		rego.Module(EntryPolicy, policy),
		rego.Input(input),
	).Eval(context.Background())
	require.NoError(t, err, "evaluating %s", query)
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return false
	}
	allowed, ok := rs[0].Expressions[0].Value.(bool)
	return ok && allowed
}

// TestDefaultAgentPolicyDecisions runs the policy that Build places in
// initdata (the measured copy, not just the embedded source) against
// requests shaped like the agent's ttRPC messages.
func TestDefaultAgentPolicyDecisions(t *testing.T) {
	doc, err := Build(Config{KBSURL: "https://kbs.example.com"})
	require.NoError(t, err)
	policy := doc.Data[EntryPolicy]
	require.NotEmpty(t, policy)

	tests := []struct {
		request string
		input   map[string]any
		want    bool
	}{
		// The host may not run commands, feed stdin or swap the policy.
		{"ExecProcessRequest", map[string]any{"container_id": "c1", "exec_id": "e1", "process": map[string]any{"Args": []any{"/bin/sh"}, "Terminal": true}}, false},
		{"ExecProcessRequest", map[string]any{"container_id": "c1", "exec_id": "e2", "process": map[string]any{"Args": []any{"curl", "-s", "http://127.0.0.1:8006/cdh/resource/default/veil/fraud-model-key"}}}, false},
		{"WriteStreamRequest", map[string]any{"container_id": "c1", "exec_id": "", "data": "bHM="}, false},
		{"SetPolicyRequest", map[string]any{"policy": "package agent_policy\ndefault ExecProcessRequest := true\n"}, false},
		// The pod lifecycle stays with the host.
		{"CreateContainerRequest", map[string]any{"container_id": "c1", "exec_id": "c1", "OCI": map[string]any{"Process": map[string]any{"Args": []any{"/veil-runtime"}}}}, true},
		{"StartContainerRequest", map[string]any{"container_id": "c1"}, true},
		{"CreateSandboxRequest", map[string]any{"hostname": "fraud", "sandbox_id": "s1"}, true},
		{"ReadStreamRequest", map[string]any{"container_id": "c1", "exec_id": "", "len": 4096}, true},
		{"RemoveContainerRequest", map[string]any{"container_id": "c1", "timeout": 0}, true},
		// A request the policy does not name is undefined, hence denied.
		{"NoSuchRequest", map[string]any{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.request, func(t *testing.T) {
			assert.Equal(t, tc.want, evalAgentPolicy(t, policy, tc.request, tc.input))
		})
	}
}

// TestDefaultAgentPolicyRulesAreBooleans compiles the policy and checks that
// every rule it declares evaluates to a plain boolean for an empty request,
// with exactly the documented three denied.
func TestDefaultAgentPolicyRulesAreBooleans(t *testing.T) {
	module, err := ast.ParseModuleWithOpts(EntryPolicy, DefaultAgentPolicy, ast.ParserOptions{RegoVersion: ast.RegoV1})
	require.NoError(t, err)
	assert.Equal(t, "data."+agentPolicyPackage, module.Package.Path.String())

	requestName := regexp.MustCompile(`^[A-Z][A-Za-z]*Request$`)
	denied := map[string]bool{}
	seen := map[string]bool{}
	for _, rule := range module.Rules {
		name := rule.Head.Ref().String()
		require.Regexp(t, requestName, name, "rule %s is not a ttRPC request name", name)
		if seen[name] {
			continue
		}
		seen[name] = true
		if !evalAgentPolicy(t, DefaultAgentPolicy, name, map[string]any{}) {
			denied[name] = true
		}
	}
	assert.Greater(t, len(seen), 30, "policy names too few requests")
	assert.Equal(t, map[string]bool{"ExecProcessRequest": true, "WriteStreamRequest": true, "SetPolicyRequest": true}, denied)
}
