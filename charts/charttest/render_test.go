// Package charttest checks charts/pushgate offline: it renders the chart with
// Helm's own packages, decodes every manifest strictly into the Kubernetes API
// types and evaluates every pod against the restricted Pod Security level.
package charttest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// chartDir is the chart under test, inside this repository.
var chartDir = filepath.Join("..", "pushgate")

// kubeVersion is the cluster version the chart is rendered for: the oldest it supports.
var kubeVersion = &chartutil.KubeVersion{Version: "v1.30.0", Major: "1", Minor: "30"}

const (
	releaseName = "pushgate"
	namespace   = "pushgate"
)

// rendered is one install's objects, hooks included, by kind and name.
type rendered struct {
	objects []runtime.Object
	// hooks are the objects that Helm runs as hooks, with their events.
	hooks map[string][]string
}

// find returns the object of type T named name; the test fails if there is none.
func find[T runtime.Object](t *testing.T, r rendered, name string) T {
	t.Helper()
	for _, o := range r.objects {
		if v, ok := o.(T); ok && objectName(o) == name {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T named %q rendered; have %v", zero, name, r.names())
	return zero
}

// all returns every object of type T.
func all[T runtime.Object](r rendered) []T {
	var out []T
	for _, o := range r.objects {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func (r rendered) names() []string {
	var out []string
	for _, o := range r.objects {
		out = append(out, fmt.Sprintf("%T/%s", o, objectName(o)))
	}
	sort.Strings(out)
	return out
}

func objectName(o runtime.Object) string {
	if m, ok := o.(interface{ GetName() string }); ok {
		return m.GetName()
	}
	return ""
}

// mustLoadChart loads charts/pushgate as Helm does.
func mustLoadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	return ch
}

// mustValues reads values files of the chart (by file name) and then applies
// overrides written as YAML, later ones winning, as `helm -f` does.
func mustValues(t *testing.T, files []string, overrides ...string) map[string]any {
	t.Helper()
	vals := map[string]any{}
	for _, f := range files {
		v, err := chartutil.ReadValuesFile(filepath.Join(chartDir, f))
		if err != nil {
			t.Fatalf("reading %s: %v", f, err)
		}
		vals = mergeMaps(vals, v)
	}
	for _, o := range overrides {
		var v map[string]any
		if err := yaml.Unmarshal([]byte(o), &v); err != nil {
			t.Fatalf("override %q: %v", o, err)
		}
		vals = mergeMaps(vals, v)
	}
	return vals
}

// mergeMaps merges b into a the way Helm merges values files.
func mergeMaps(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bv, ok := v.(map[string]any); ok {
			if av, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(av, bv)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// install renders the chart as `helm install --dry-run` does on a client with no cluster.
func install(t *testing.T, vals map[string]any) (manifest string, hooks map[string][]string, err error) {
	t.Helper()
	cfg := &action.Configuration{
		Releases:   storage.Init(driver.NewMemory()),
		KubeClient: &kubefake.PrintingKubeClient{Out: io.Discard},
		Log:        func(string, ...any) {},
	}
	inst := action.NewInstall(cfg)
	inst.DryRun = true
	inst.ClientOnly = true
	inst.ReleaseName = releaseName
	inst.Namespace = namespace
	inst.KubeVersion = kubeVersion
	rel, err := inst.Run(mustLoadChart(t), vals)
	if err != nil {
		return "", nil, err
	}
	var b strings.Builder
	b.WriteString(rel.Manifest)
	hooks = map[string][]string{}
	for _, h := range rel.Hooks {
		b.WriteString("\n---\n")
		b.WriteString(h.Manifest)
		for _, e := range h.Events {
			hooks[h.Kind+"/"+h.Name] = append(hooks[h.Kind+"/"+h.Name], e.String())
		}
	}
	return b.String(), hooks, nil
}

// mustRender installs with vals and decodes every document strictly.
func mustRender(t *testing.T, vals map[string]any) rendered {
	t.Helper()
	manifest, hooks, err := install(t, vals)
	if err != nil {
		t.Fatalf("rendering: %v", err)
	}
	objs, err := decodeStrict(manifest)
	if err != nil {
		t.Fatal(err)
	}
	return rendered{objects: objs, hooks: hooks}
}

// renderError installs with vals and returns the error; the test fails if it renders.
func renderError(t *testing.T, vals map[string]any) error {
	t.Helper()
	_, _, err := install(t, vals)
	if err == nil {
		t.Fatal("rendered, want an error")
	}
	return err
}

// strictScheme knows the built-in API types and the Prometheus Operator's.
func strictScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := monitoringv1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// decodeStrict decodes each YAML document into its typed object; an unknown
// or duplicate field, an unknown kind or a wrong type is an error.
func decodeStrict(manifest string) ([]runtime.Object, error) {
	scheme, err := strictScheme()
	if err != nil {
		return nil, err
	}
	ser := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme,
		json.SerializerOptions{Yaml: true, Strict: true})
	var out []runtime.Object
	for _, doc := range releaseutil.SplitManifests(manifest) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		// Reject YAML that only a lenient reader accepts before the typed decode.
		if _, err := utilyaml.ToJSON([]byte(doc)); err != nil {
			return nil, fmt.Errorf("not YAML: %v\n%s", err, doc)
		}
		obj, gvk, err := ser.Decode([]byte(doc), nil, nil)
		if err != nil {
			return nil, fmt.Errorf("decoding %v strictly: %v\n%s", gvk, err, doc)
		}
		out = append(out, obj)
	}
	if len(out) == 0 {
		return nil, errors.New("nothing rendered")
	}
	return out, nil
}

func stripComments(doc string) string {
	var b bytes.Buffer
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}
