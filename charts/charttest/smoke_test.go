package charttest

import "testing"

func TestSmoke(t *testing.T) {
	for _, f := range [][]string{{"values.yaml"}, {"values.yaml", "values-us.yaml"}, {"values.yaml", "values-de.yaml"}} {
		r := mustRender(t, mustValues(t, f))
		t.Log(r.names(), r.hooks)
	}
}
