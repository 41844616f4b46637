package gateway

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestEveryKindOwnsAppsFileKeys(t *testing.T) {
	var keys []string
	for _, f := range reflect.VisibleFields(reflect.TypeFor[AppConfig]()) {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		keys = append(keys, name)
	}
	owner := map[string]string{}
	for kind, k := range providerKinds {
		if k.validate == nil || k.open == nil {
			t.Errorf("kind %s: validate and open are required", kind)
		}
		for _, f := range k.fields {
			if !slices.Contains(keys, f) {
				t.Errorf("kind %s lists %q, which is no key of AppConfig", kind, f)
			}
			if o, taken := owner[f]; taken {
				t.Errorf("%q is listed by both %s and %s", f, o, kind)
			}
			owner[f] = kind
		}
	}
	for _, common := range []string{"id", "kind", "endpoint", "ca_file"} {
		if o, ok := owner[common]; ok {
			t.Errorf("%q is common to every kind, but %s lists it", common, o)
		}
	}
}
