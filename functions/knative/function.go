// Package function is the Knative Functions entry point of the Veil
// batcher: func's Go scaffolding (knative.dev/func-go, instanced form)
// calls New and serves the returned instance. All logic is in
// github.com/veil-ai/veil/functions/knfunc; see func.yaml and README.md.
package function

import "github.com/veil-ai/veil/functions/knfunc"

// New returns the function instance func-go serves.
func New() *knfunc.Function { return knfunc.New() }
