package validate

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	sigsjson "sigs.k8s.io/json"
)

// templateGVK is OpenShift's Template, an aggregated API with no CRD.
var templateGVK = schema.GroupVersionKind{Group: "template.openshift.io", Version: "v1", Kind: "Template"}

// Validator checks rendered objects. Build it with New.
type Validator struct {
	crds    map[schema.GroupVersionKind]*crdSchema
	scheme  *runtime.Scheme
	decoder runtime.Decoder
}

// New returns a Validator for the CRDs found in crdDir plus every built-in
// kind client-go knows.
func New(crdDir string) (*Validator, error) {
	crds, err := LoadCRDs(crdDir)
	if err != nil {
		return nil, err
	}
	scheme := clientgoscheme.Scheme
	return &Validator{
		crds:    crds,
		scheme:  scheme,
		decoder: serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer(),
	}, nil
}

// Validate reports every problem found in obj, or nil.
func (v *Validator) Validate(obj Object) error {
	gvk, name, err := identify(obj)
	if err != nil {
		return err
	}
	where := fmt.Sprintf("%s %q", gvk.Kind, name)
	var errs error
	switch {
	case gvk == templateGVK:
		errs = v.validateTemplate(obj)
	case v.crds[gvk] != nil:
		errs = v.validateCustomResource(v.crds[gvk], obj)
	case v.scheme.Recognizes(gvk):
		errs = v.validateBuiltin(obj)
	default:
		errs = fmt.Errorf("no schema known for %s", gvk)
	}
	if errs != nil {
		return fmt.Errorf("%s: %w", where, errs)
	}
	return nil
}

func identify(obj Object) (schema.GroupVersionKind, string, error) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if apiVersion == "" || kind == "" {
		return schema.GroupVersionKind{}, "", errors.New("object without apiVersion or kind")
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return schema.GroupVersionKind{}, "", fmt.Errorf("apiVersion %q: %w", apiVersion, err)
	}
	var name string
	if md, ok := obj["metadata"].(map[string]any); ok {
		name, _ = md["name"].(string)
	}
	return gv.WithKind(kind), name, nil
}

func (v *Validator) validateCustomResource(s *crdSchema, obj Object) error {
	var errs []error
	if err := validateMetadata(obj, s.namespaced); err != nil {
		errs = append(errs, err)
	}
	// Pruning on a copy: what the API server would silently drop is an
	// unknown field, i.e. a typo or a field this KServe/Knative lacks.
	pruned := runtime.DeepCopyJSON(obj)
	unknown := pruning.PruneWithOptions(pruned, s.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	for _, path := range unknown {
		errs = append(errs, fmt.Errorf("unknown field %q", path))
	}
	if fieldErrs := validation.ValidateCustomResource(nil, obj, s.validator); len(fieldErrs) > 0 {
		errs = append(errs, fieldErrs.ToAggregate())
	}
	if fieldErrs := listtype.ValidateListSetsAndMaps(nil, s.structural, obj); len(fieldErrs) > 0 {
		errs = append(errs, fieldErrs.ToAggregate())
	}
	return errors.Join(errs...)
}

func (v *Validator) validateBuiltin(obj Object) error {
	data, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	if _, _, err := v.decoder.Decode(data, nil, nil); err != nil {
		return fmt.Errorf("strict decode: %w", err)
	}
	return nil
}

// validateMetadata decodes metadata strictly (no unknown or mistyped
// fields) and checks the name and namespace syntax.
func validateMetadata(obj Object, namespaced bool) error {
	raw, ok := obj["metadata"]
	if !ok {
		return errors.New("missing metadata")
	}
	data, err := json.Marshal(raw)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	var md metav1.ObjectMeta
	if err := strictUnmarshal(data, &md); err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	var errs []error
	for _, msg := range utilvalidation.IsDNS1123Subdomain(md.Name) {
		errs = append(errs, fmt.Errorf("metadata.name %q: %s", md.Name, msg))
	}
	if md.Namespace != "" {
		if !namespaced {
			errs = append(errs, fmt.Errorf("metadata.namespace set on a cluster-scoped kind"))
		}
		for _, msg := range utilvalidation.IsDNS1123Label(md.Namespace) {
			errs = append(errs, fmt.Errorf("metadata.namespace %q: %s", md.Namespace, msg))
		}
	}
	return errors.Join(errs...)
}

// strictUnmarshal decodes JSON case-sensitively and fails on unknown or
// duplicate fields, as the API server's strict field validation does.
func strictUnmarshal(data []byte, v any) error {
	strictErrs, err := sigsjson.UnmarshalStrict(data, v)
	if err != nil {
		return err
	}
	if len(strictErrs) > 0 {
		msgs := make([]string, len(strictErrs))
		for i, e := range strictErrs {
			msgs[i] = e.Error()
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
}
