package validate

import (
	"fmt"

	utiljson "k8s.io/apimachinery/pkg/util/json"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Object is one rendered Kubernetes object in its unstructured form.
type Object = map[string]any

// Render runs kustomize on the directory dir of fsys (the on-disk file
// system when fsys is nil) and returns the objects it produces.
func Render(fsys filesys.FileSystem, dir string) ([]Object, error) {
	if fsys == nil {
		fsys = filesys.MakeFsOnDisk()
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	resources := rm.Resources()
	objs := make([]Object, 0, len(resources))
	for _, r := range resources {
		// Through JSON so that numbers become int64/float64, the types the
		// API server's unstructured code expects.
		data, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		var obj Object
		if err := utiljson.Unmarshal(data, &obj); err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}
