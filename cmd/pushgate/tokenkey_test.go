package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/tenants"
)

var bannerToken = regexp.MustCompile(`token\s+(pgw_\S+)`)

func TestDevModeKeepsTheTokenKeyItMade(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PUSHGATE_DATA_DIR": dir, "PUSHGATE_TOKEN_KEY": ""}
	s := mustServe(t, env, "--dev")
	first := bannerToken.FindStringSubmatch(mustEventually(t, s.stdout, "Ctrl-C"))
	if first == nil || len(first[1]) != tenants.TokenLen {
		t.Fatalf("the banner shows no signed token:\n%s", s.stdout)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, "token-key"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("token-key in data_dir: %v, mode %v; want a file of mode 0600", err, info.Mode())
	}

	t.Run("a restart keeps the key, so the token still works", func(t *testing.T) {
		s := mustServe(t, env, "--dev")
		again := bannerToken.FindStringSubmatch(mustEventually(t, s.stdout, "Ctrl-C"))
		if again == nil || again[1] != first[1] {
			t.Fatalf("after a restart the banner shows another token:\n%s", s.stdout)
		}
	})
	t.Run("the CLI signs with the same key", func(t *testing.T) {
		out := mustRun(t, map[string]string{"PUSHGATE_DATA_DIR": dir, "PUSHGATE_TOKEN_KEY": ""},
			"workspace", "create", "--name", "Beta", "--email", "admin@beta.example", "--json")
		var created struct{ Token string }
		if err := json.Unmarshal([]byte(out), &created); err != nil {
			t.Fatal(err)
		}
		if created.Token[7:9] != "dv" || created.Token[7:9] != first[1][7:9] {
			t.Fatalf("CLI token %s… was not signed by the dev key %s", tenants.TokenHint(created.Token), first[1][7:9])
		}
	})
}

func TestCommandsThatIssueTokensNeedTheKey(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PUSHGATE_DATA_DIR": dir, "PUSHGATE_TOKEN_KEY": ""}
	mustRun(t, env, "migrate")
	for _, args := range [][]string{
		{"workspace", "create", "--name", "Alpha", "--email", "admin@alpha.example"},
		{"workspace", "rotate-token", "ws_aaaaaaaaaaaaaaaaaaaa"},
	} {
		t.Run(strings.Join(args[:2], " ")+" fails naming PUSHGATE_TOKEN_KEY", func(t *testing.T) {
			err := run(t.Context(), args, envFrom(env), new(strings.Builder), new(strings.Builder))
			if err == nil || !strings.Contains(err.Error(), "PUSHGATE_TOKEN_KEY") {
				t.Fatalf("run = %v, want an error naming PUSHGATE_TOKEN_KEY", err)
			}
		})
	}
	t.Run("workspace list needs no key", func(t *testing.T) {
		mustRun(t, env, "workspace", "list")
	})
}
