package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzAppsFile feeds arbitrary YAML to the apps loader: it is accepted or
// refused with an error naming the apps file, never a panic.
func FuzzAppsFile(f *testing.F) {
	for _, seed := range []string{
		"- id: apple_rn\n  kind: apns\n  topic: app.example\n  key_file: k.p8\n  key_id: ABC\n  team_id: T\n  environment: production\n",
		"- id: android_rn\n  kind: fcm\n  service_account_file: sa.json\n  endpoint: https://127.0.0.1:1\n",
		"- id: a\n  kind: hms\n", "- {}\n", "{}\n", "[]\n", "- id: [x]\n",
	} {
		f.Add(seed)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, yaml string) {
		path := filepath.Join(dir, "apps.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		apps, err := LoadAppsFile(path)
		if err != nil {
			if !strings.Contains(err.Error(), "apps file") {
				t.Fatalf("error %q does not say it is about the apps file", err)
			}
			return
		}
		if len(apps) == 0 {
			t.Fatal("an apps file with no apps was accepted")
		}
	})
}
