package validate

import (
	"encoding/json"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Template mirrors template.openshift.io/v1 Template from
// github.com/openshift/api (template/v1/types.go). That module is only
// served here as an old +incompatible version, and the kind has no CRD, so
// the few fields are restated.
type Template struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Message           string                 `json:"message,omitempty"`
	Objects           []runtime.RawExtension `json:"objects"`
	Parameters        []TemplateParameter    `json:"parameters,omitempty"`
	ObjectLabels      map[string]string      `json:"labels,omitempty"`
}

// TemplateParameter mirrors template/v1 Parameter.
type TemplateParameter struct {
	Name        string `json:"name"`
	DisplayName string `json:"displayName,omitempty"`
	Description string `json:"description,omitempty"`
	Value       string `json:"value,omitempty"`
	Generate    string `json:"generate,omitempty"`
	From        string `json:"from,omitempty"`
	Required    bool   `json:"required,omitempty"`
}

// DecodeTemplate strictly decodes a rendered Template.
func DecodeTemplate(obj Object) (Template, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return Template{}, fmt.Errorf("encode: %w", err)
	}
	var t Template
	if err := strictUnmarshal(data, &t); err != nil {
		return Template{}, fmt.Errorf("strict decode: %w", err)
	}
	return t, nil
}

// validateTemplate checks the Template itself and then every object it
// would create. Objects using ${PARAMETER} substitutions would need the
// parameters applied first; Veil's template has none.
func (v *Validator) validateTemplate(obj Object) error {
	if err := validateMetadata(obj, true); err != nil {
		return err
	}
	t, err := DecodeTemplate(obj)
	if err != nil {
		return err
	}
	if len(t.Objects) == 0 {
		return errors.New("template has no objects")
	}
	var errs []error
	for i, raw := range t.Objects {
		var inner Object
		if err := json.Unmarshal(raw.Raw, &inner); err != nil {
			errs = append(errs, fmt.Errorf("objects[%d]: %w", i, err))
			continue
		}
		if err := v.Validate(inner); err != nil {
			errs = append(errs, fmt.Errorf("objects[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}
