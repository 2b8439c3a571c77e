// Package validate renders Veil's kustomize trees and checks every object
// the way an API server would before admitting it: custom resources (KServe,
// Knative) against the openAPIV3Schema of the upstream CRDs in
// manifests/crds, including the pruning pass that detects unknown fields;
// built-in kinds by strict decoding into the k8s.io/api types; OpenShift
// Templates, which have no CRD, by strict decoding into a local mirror of
// template.openshift.io/v1 and then validating each embedded object.
package validate
