package validate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	apiextensions "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// crdSchema is what validating one served version of a CRD needs.
type crdSchema struct {
	structural *structuralschema.Structural
	validator  validation.SchemaValidator
	namespaced bool
}

// strictGroups are API groups whose admission webhooks decode objects
// strictly although their CRDs mark some declared objects with
// x-kubernetes-preserve-unknown-fields (Knative keeps them open for
// experimental features). For these, LoadCRDs drops that marker wherever the
// schema lists properties, so that a misspelt field fails here as it would
// in the Knative webhook; free-form maps (no properties) stay open.
func isStrictGroup(group string) bool {
	return strings.HasSuffix(group, ".knative.dev")
}

// LoadCRDs reads every CustomResourceDefinition in the YAML files of dir.
func LoadCRDs(dir string) (map[schema.GroupVersionKind]*crdSchema, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("list CRDs in %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no CRD files in %s", dir)
	}
	out := map[schema.GroupVersionKind]*crdSchema{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read CRD file: %w", err)
		}
		if err := addCRDs(out, data); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(f), err)
		}
	}
	return out, nil
}

func addCRDs(out map[schema.GroupVersionKind]*crdSchema, data []byte) error {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("split YAML: %w", err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(doc, &crd); err != nil {
			return fmt.Errorf("decode CRD: %w", err)
		}
		if crd.Kind != "CustomResourceDefinition" {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if !v.Served || v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			s, err := newCRDSchema(v.Schema.OpenAPIV3Schema, isStrictGroup(crd.Spec.Group))
			if err != nil {
				return fmt.Errorf("%s %s: %w", crd.Name, v.Name, err)
			}
			s.namespaced = crd.Spec.Scope == apiextensionsv1.NamespaceScoped
			gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}
			out[gvk] = s
		}
	}
}

func newCRDSchema(v1 *apiextensionsv1.JSONSchemaProps, strict bool) (*crdSchema, error) {
	v1 = v1.DeepCopy()
	if strict {
		closeDeclaredObjects(v1, true)
	}
	var internal apiextensions.JSONSchemaProps
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v1, &internal, nil); err != nil {
		return nil, fmt.Errorf("convert schema: %w", err)
	}
	structural, err := structuralschema.NewStructural(&internal)
	if err != nil {
		return nil, fmt.Errorf("structural schema: %w", err)
	}
	if errs := structuralschema.ValidateStructural(nil, structural); len(errs) > 0 {
		return nil, fmt.Errorf("schema is not structural: %w", errs.ToAggregate())
	}
	validator, _, err := validation.NewSchemaValidator(&internal)
	if err != nil {
		return nil, fmt.Errorf("schema validator: %w", err)
	}
	return &crdSchema{structural: structural, validator: validator}, nil
}

// closeDeclaredObjects clears x-kubernetes-preserve-unknown-fields on every
// node that declares properties, below the root (whose metadata is handled
// separately).
func closeDeclaredObjects(s *apiextensionsv1.JSONSchemaProps, root bool) {
	if s == nil {
		return
	}
	if !root && len(s.Properties) > 0 && s.XPreserveUnknownFields != nil && *s.XPreserveUnknownFields {
		s.XPreserveUnknownFields = nil
	}
	for k, p := range s.Properties {
		closeDeclaredObjects(&p, false)
		s.Properties[k] = p
	}
	if s.Items != nil {
		closeDeclaredObjects(s.Items.Schema, false)
		for i := range s.Items.JSONSchemas {
			closeDeclaredObjects(&s.Items.JSONSchemas[i], false)
		}
	}
	if s.AdditionalProperties != nil {
		closeDeclaredObjects(s.AdditionalProperties.Schema, false)
	}
}
