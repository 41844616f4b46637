package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzConfigFile feeds arbitrary YAML to the config loader: it is accepted
// or refused with an error naming a setting, never a panic.
func FuzzConfigFile(f *testing.F) {
	for _, seed := range []string{
		"listen: 127.0.0.1:8086\nregion: de\npublic_url: https://de.gw.example\n",
		"region_urls: us=https://us.gw.example,de=https://de.gw.example\nquota_policy: fail_closed\n",
		"rate_limits: free=10/100,pro=2000/50000\nshutdown_timeout: 1s\n",
		"database_url: postgres://localhost/x\nredis_url: redis://127.0.0.1:6379/0\n",
		"unknown_key: 1\n", "listen: [1, 2]\n", "- a\n", ": :\n",
	} {
		f.Add(seed)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, yaml string) {
		path := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := defaultConfig()
		if err := loadConfigFile(path, &cfg); err != nil {
			if !strings.Contains(err.Error(), "config file") {
				t.Fatalf("error %q does not say it is about the config file", err)
			}
			return
		}
		_ = cfg.validate()
	})
}
