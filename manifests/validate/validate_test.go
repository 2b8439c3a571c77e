package validate

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"

	"github.com/veil-ai/veil/kbsclient/initdata"
)

const manifestsRoot = ".."

// expected lists, per kustomization directory (relative to manifests/),
// the objects it must render as Kind/namespace/name. A new kustomization
// without an entry here fails TestValidator.
var expected = map[string][]string{
	"base":                                  {"InferenceService//fraud", "ServingRuntime//veil"},
	"overlays/standard":                     {"InferenceService/veil/fraud", "ServingRuntime/veil/veil"},
	"overlays/plain":                        {"InferenceService/veil-plain/fraud", "ServingRuntime/veil-plain/veil"},
	"overlays/kserve-confidential":          {"InferenceService/veil/fraud", "ServingRuntime/veil/veil"},
	"overlays/cluster-runtime":              {"ClusterServingRuntime//veil"},
	"overlays/baremetal-tdx":                {"InferenceService/veil/fraud", "ServingRuntime/veil/veil"},
	"openshift-ai":                          {"Template/redhat-ods-applications/veil"},
	"eventing":                              {"Broker/veil-onprem/veil", "Trigger/veil-onprem/veil-scores", "Trigger/veil-onprem/veil-transactions"},
	"knative-serving/features":              {"ConfigMap/knative-serving/config-features"},
	"knative-serving/runtime-class-default": {"ConfigMap/knative-serving/config-deployment"},
	"kbs":                                   {"ConfigMap/trustee-operator-system/veil-resource-policy"},
}

func newValidator(t *testing.T) *Validator {
	t.Helper()
	v, err := New(filepath.Join(manifestsRoot, "crds"))
	require.NoError(t, err)
	return v
}

// kustomizations finds every directory under manifests/ holding a
// kustomization, except this package's fixtures.
func kustomizations(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(manifestsRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p == filepath.Join(manifestsRoot, "validate") {
			return filepath.SkipDir
		}
		if !d.IsDir() && d.Name() == "kustomization.yaml" {
			rel, err := filepath.Rel(manifestsRoot, filepath.Dir(p))
			if err != nil {
				return err
			}
			dirs = append(dirs, filepath.ToSlash(rel))
		}
		return nil
	})
	require.NoError(t, err)
	sort.Strings(dirs)
	return dirs
}

func render(t *testing.T, dir string) []Object {
	t.Helper()
	objs, err := Render(nil, filepath.Join(manifestsRoot, dir))
	require.NoError(t, err)
	return objs
}

func objectID(o Object) string {
	md, _ := o["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	name, _ := md["name"].(string)
	return o["kind"].(string) + "/" + ns + "/" + name
}

func find(t *testing.T, objs []Object, kind string) Object {
	t.Helper()
	for _, o := range objs {
		if o["kind"] == kind {
			return o
		}
	}
	t.Fatalf("no %s rendered", kind)
	return nil
}

// get walks a path of map keys and list indexes through an object.
func get(o any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := o.(map[string]any)
			if !ok {
				return nil
			}
			o = m[k]
		case int:
			l, ok := o.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			o = l[k]
		}
	}
	return o
}

// TestValidator shares one Validator (loading the 2 MB InferenceService
// CRD is the slow part) between its subtests.
func TestValidator(t *testing.T) {
	v := newValidator(t)
	t.Run("RenderAndValidate", func(t *testing.T) { testRenderAndValidate(t, v) })
	t.Run("BrokenFixturesFail", func(t *testing.T) { testBrokenFixturesFail(t, v) })
	t.Run("BrokenOverlayFails", func(t *testing.T) { testBrokenOverlayFails(t, v) })
}

func testRenderAndValidate(t *testing.T, v *Validator) {
	dirs := kustomizations(t)
	want := make([]string, 0, len(expected))
	for d := range expected {
		want = append(want, d)
	}
	sort.Strings(want)
	require.Equal(t, want, dirs, "every kustomization needs an entry in expected")

	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			objs := render(t, dir)
			ids := make([]string, 0, len(objs))
			for _, o := range objs {
				ids = append(ids, objectID(o))
				assert.NoError(t, v.Validate(o))
			}
			sort.Strings(ids)
			assert.Equal(t, expected[dir], ids)
		})
	}
}

// Each fixture starts with "# want: <text>"; validating it must fail with
// an error containing that text.
func testBrokenFixturesFail(t *testing.T, v *Validator) {
	files, err := filepath.Glob("testdata/broken/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			first, _, _ := strings.Cut(string(data), "\n")
			want, ok := strings.CutPrefix(first, "# want: ")
			require.True(t, ok, "fixture must start with '# want: '")

			jsonData, err := yaml.YAMLToJSON(data)
			require.NoError(t, err)
			var obj Object
			require.NoError(t, utiljson.Unmarshal(jsonData, &obj))
			err = v.Validate(obj)
			require.Error(t, err)
			assert.Contains(t, err.Error(), want)
		})
	}
}

func testBrokenOverlayFails(t *testing.T, v *Validator) {
	objs, err := Render(nil, "testdata/broken-overlay")
	require.NoError(t, err)
	isvc := find(t, objs, "InferenceService")
	err = v.Validate(isvc)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown field "spec.predictor.minReplica"`)
}

func TestServingRuntimeContract(t *testing.T) {
	sr := find(t, render(t, "base"), "ServingRuntime")
	containers := get(sr, "spec", "containers").([]any)
	require.Len(t, containers, 1)
	c := containers[0]
	assert.Equal(t, "kserve-container", get(c, "name"))
	assert.Equal(t, "quay.io/veil-ai/veil-runtime:0.1.0", get(c, "image"))

	// Knative allows exactly one port; h2c carries REST and gRPC.
	ports := get(c, "ports").([]any)
	require.Len(t, ports, 1)
	assert.Equal(t, "h2c", get(ports[0], "name"))
	assert.EqualValues(t, 8080, get(ports[0], "containerPort"))
	assert.Contains(t, get(c, "args"), "--http_port=8080")
	assert.Equal(t, []any{"v2", "grpc-v2"}, get(sr, "spec", "protocolVersions"))
	assert.Equal(t, "onnx", get(sr, "spec", "supportedModelFormats", 0, "name"))
	assert.Equal(t, "8080", get(sr, "spec", "annotations", "prometheus.kserve.io/port"))

	sc := get(c, "securityContext")
	assert.Equal(t, true, get(sc, "runAsNonRoot"))
	assert.Equal(t, true, get(sc, "readOnlyRootFilesystem"))
	assert.Equal(t, false, get(sc, "allowPrivilegeEscalation"))
	assert.Equal(t, "/v2/health/ready", get(c, "readinessProbe", "httpGet", "path"))
	assert.NotNil(t, get(c, "resources", "limits", "cpu"))
}

const modelKey = "kbs:///default/veil/fraud-model-key"

func env(isvc Object, name string) any {
	list, _ := get(isvc, "spec", "predictor", "model", "env").([]any)
	for _, e := range list {
		if get(e, "name") == name {
			return get(e, "value")
		}
	}
	return nil
}

func TestConfidentialVariants(t *testing.T) {
	tests := []struct {
		dir          string
		mode         string
		minReplicas  int64
		confidential bool // kata-remote + initdata
		veilKey      bool // Veil fetches the key through the CDH
		kserveKey    bool // KServe's storage-initializer does
	}{
		{"base", "Serverless", 0, true, true, false},
		{"overlays/standard", "RawDeployment", 1, true, true, false},
		{"overlays/kserve-confidential", "Serverless", 0, true, false, true},
		{"overlays/plain", "RawDeployment", 1, false, false, false},
		{"overlays/baremetal-tdx", "Serverless", 0, true, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			objs := render(t, tc.dir)
			isvc := find(t, objs, "InferenceService")
			sr := find(t, objs, "ServingRuntime")
			args := get(sr, "spec", "containers", 0, "args").([]any)

			assert.Equal(t, tc.mode, get(isvc, "metadata", "annotations", "serving.kserve.io/deploymentMode"))
			assert.EqualValues(t, tc.minReplicas, get(isvc, "spec", "predictor", "minReplicas"))
			assert.Equal(t, "veil", get(isvc, "spec", "predictor", "model", "runtime"))

			if tc.confidential {
				if tc.dir == "overlays/baremetal-tdx" {
					assert.Equal(t, "kata-qemu-tdx", get(isvc, "spec", "predictor", "runtimeClassName"))
					assert.Nil(t, get(isvc, "spec", "predictor", "annotations", "io.katacontainers.config.hypervisor.machine_type"))
				} else {
					assert.Equal(t, "kata-remote", get(isvc, "spec", "predictor", "runtimeClassName"))
					assert.Equal(t, "Standard_DC4es_v5", get(isvc, "spec", "predictor", "annotations", "io.katacontainers.config.hypervisor.machine_type"))
				}
				value, _ := get(isvc, "spec", "predictor", "annotations", initdata.AnnotationKey).(string)
				text, err := initdata.Decode(value)
				require.NoError(t, err)
				doc, err := initdata.Parse(text)
				require.NoError(t, err)
				assert.Equal(t, initdata.SHA256, doc.Algorithm, "Azure PCR 8 binding needs sha256")
				assert.Contains(t, doc.Data[initdata.EntryCDH], "https://kbs-route-trustee-operator-system.apps.trusted.example.com")
				assert.Equal(t, "true", get(sr, "spec", "labels", "veil.dev/confidential"))
			} else {
				assert.Nil(t, get(isvc, "spec", "predictor", "runtimeClassName"))
				assert.Nil(t, get(isvc, "spec", "predictor", "annotations"))
				assert.Nil(t, get(sr, "spec", "labels", "veil.dev/confidential"))
			}
			if tc.veilKey {
				assert.Equal(t, modelKey, env(isvc, "CONFIDENTIAL_RESOURCE_ID"))
				assert.Contains(t, args, "--key_source=cdh")
			} else {
				assert.Nil(t, env(isvc, "CONFIDENTIAL_RESOURCE_ID"))
				assert.NotContains(t, args, "--key_source=cdh")
			}
			if tc.kserveKey {
				assert.Equal(t, true, get(isvc, "spec", "predictor", "model", "confidential", "enabled"))
				assert.Equal(t, modelKey, get(isvc, "spec", "predictor", "model", "confidential", "resourceId"))
			} else {
				assert.Nil(t, get(isvc, "spec", "predictor", "model", "confidential"))
			}
		})
	}
}

// The committed initdata value must be what `veil initdata` builds for the
// documented placeholder KBS URL, so that the docs reproduce it.
func TestBaseInitdataReproducible(t *testing.T) {
	isvc := find(t, render(t, "base"), "InferenceService")
	value := get(isvc, "spec", "predictor", "annotations", initdata.AnnotationKey).(string)
	text, err := initdata.Decode(value)
	require.NoError(t, err)
	doc, err := initdata.Build(initdata.Config{KBSURL: "https://kbs-route-trustee-operator-system.apps.trusted.example.com"})
	require.NoError(t, err)
	want, err := doc.Marshal()
	require.NoError(t, err)
	assert.Equal(t, string(want), string(text))
}

// The Template is a copy of the base runtime plus dashboard metadata; it
// must not drift from it.
func TestTemplateMatchesBaseRuntime(t *testing.T) {
	base := find(t, render(t, "base"), "ServingRuntime")
	tmplObj := find(t, render(t, "openshift-ai"), "Template")
	tmpl, err := DecodeTemplate(tmplObj)
	require.NoError(t, err)
	require.Len(t, tmpl.Objects, 1)
	var sr Object
	require.NoError(t, utiljson.Unmarshal(tmpl.Objects[0].Raw, &sr))

	assert.Equal(t, "ServingRuntime", sr["kind"])
	assert.True(t, reflect.DeepEqual(base["spec"], sr["spec"]), "template runtime spec differs from manifests/base")
	assert.Equal(t, "true", tmpl.Labels["opendatahub.io/dashboard"])
	assert.Equal(t, `["single"]`, tmpl.Annotations["opendatahub.io/modelServingSupport"])
	assert.Equal(t, "REST", tmpl.Annotations["opendatahub.io/apiProtocol"])
	for k, v := range get(base, "metadata", "annotations").(map[string]any) {
		assert.Equal(t, v, get(sr, "metadata", "annotations", k), k)
	}
}

func TestEventingWiring(t *testing.T) {
	objs := render(t, "eventing")
	triggers := map[string]Object{}
	for _, o := range objs {
		if o["kind"] == "Trigger" {
			triggers[get(o, "metadata", "name").(string)] = o
		}
	}
	tx, scores := triggers["veil-transactions"], triggers["veil-scores"]
	require.NotNil(t, tx)
	require.NotNil(t, scores)
	assert.Equal(t, "dev.veil.transaction.v1", get(tx, "spec", "filter", "attributes", "type"))
	assert.Equal(t, "veil-batcher", get(tx, "spec", "subscriber", "ref", "name"))
	assert.Equal(t, "dev.veil.fraud.score.v1", get(scores, "spec", "filter", "attributes", "type"))
	assert.NotEqual(t, get(tx, "spec", "filter", "attributes", "type"), get(scores, "spec", "filter", "attributes", "type"),
		"a reply matching the transaction filter would loop")
	for name, tr := range triggers {
		assert.Equal(t, "exponential", get(tr, "spec", "delivery", "backoffPolicy"), name)
		assert.NotNil(t, get(tr, "spec", "delivery", "deadLetterSink", "ref", "name"), name)
		assert.Equal(t, "veil", get(tr, "spec", "broker"), name)
	}
}

// The Knative runtime-class default must select the label the runtime puts
// on its pods, and the KBS policy must protect the key the ISVC asks for.
func TestCrossFileConsistency(t *testing.T) {
	sr := find(t, render(t, "base"), "ServingRuntime")
	cm := find(t, render(t, "knative-serving/runtime-class-default"), "ConfigMap")
	var rc map[string]struct {
		Selector map[string]string `json:"selector"`
	}
	require.NoError(t, yaml.UnmarshalStrict([]byte(get(cm, "data", "runtime-class-name").(string)), &rc))
	require.Contains(t, rc, "kata-remote")
	for k, v := range rc["kata-remote"].Selector {
		assert.Equal(t, v, get(sr, "spec", "labels", k))
	}

	features := find(t, render(t, "knative-serving/features"), "ConfigMap")
	assert.Equal(t, "enabled", get(features, "data", "kubernetes.podspec-runtimeclassname"))
	data, err := os.ReadFile(filepath.Join(manifestsRoot, "knative-serving/features/openshift-serverless-patch.yaml"))
	require.NoError(t, err)
	var ks Object
	require.NoError(t, yaml.Unmarshal(data, &ks))
	assert.Equal(t, "enabled", get(ks, "spec", "config", "features", "kubernetes.podspec-runtimeclassname"))

	policy := find(t, render(t, "kbs"), "ConfigMap")
	rego := get(policy, "data", "policy.rego").(string)
	segments := strings.Split(strings.TrimPrefix(modelKey, "kbs:///"), "/")
	assert.Contains(t, rego, `model_key := ["`+strings.Join(segments, `", "`)+`"]`)
	assert.Contains(t, rego, `"ear.status"] == "affirming"`)
	assert.Contains(t, rego, "default allow := false")

	data, err = os.ReadFile(filepath.Join(manifestsRoot, "kbs/kbsconfig-patch.yaml"))
	require.NoError(t, err)
	var ops []struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}
	require.NoError(t, yaml.UnmarshalStrict(data, &ops))
	got := map[string]any{}
	for _, op := range ops {
		got[op.Path] = op.Value
	}
	assert.Equal(t, segments[1], got["/spec/kbsSecretResources/-"], "the Secret name is the middle segment of the key path")
	assert.Equal(t, get(policy, "metadata", "name"), got["/spec/kbsResourcePolicyConfigMapName"])
}

// A sanity check of the CRD copies: same git blobs as documented.
func TestCRDAttribution(t *testing.T) {
	f, err := os.Open(filepath.Join(manifestsRoot, "crds", "SOURCE.md"))
	require.NoError(t, err)
	defer f.Close()
	files, err := filepath.Glob(filepath.Join(manifestsRoot, "crds", "*.yaml"))
	require.NoError(t, err)
	listed := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, _, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "| "), " |"); ok && strings.HasSuffix(name, ".yaml") {
			listed[name] = true
		}
	}
	require.NoError(t, sc.Err())
	for _, file := range files {
		assert.True(t, listed[filepath.Base(file)], "%s lacks an attribution row", filepath.Base(file))
	}
}

// FuzzValidate feeds arbitrary YAML documents to the validator: it must
// never panic, and an object without apiVersion/kind is always an error.
func FuzzValidate(f *testing.F) {
	files, err := filepath.Glob("testdata/broken/*.yaml")
	require.NoError(f, err)
	for _, file := range files {
		data, err := os.ReadFile(file)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte("kind: ConfigMap\nmetadata: {name: x}\n"))
	v, err := New(filepath.Join(manifestsRoot, "crds"))
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, data []byte) {
		jsonData, err := yaml.YAMLToJSON(data)
		if err != nil {
			return
		}
		var obj Object
		if err := utiljson.Unmarshal(jsonData, &obj); err != nil || obj == nil {
			return
		}
		err = v.Validate(obj)
		if _, ok := obj["apiVersion"].(string); !ok {
			require.Error(t, err)
		}
	})
}
