package charttest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBrokenValuesFail renders every testdata/broken file on top of the
// defaults; each must fail with the message on its "# want:" line.
func TestBrokenValuesFail(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "broken", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no broken values files: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name+" fails to render", func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(raw), "\n")
			want, ok := strings.CutPrefix(first, "# want: ")
			if !ok {
				t.Fatalf("%s does not start with a # want: line", f)
			}
			err = renderError(t, mustValues(t, []string{"values.yaml"}, string(raw)))
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q\nwant it to contain %q", err, want)
			}
		})
	}
}
