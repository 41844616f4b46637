package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/tenants/storetest"
)

func mustRunJSON(t *testing.T, env map[string]string, args ...string) map[string]any {
	t.Helper()
	var out map[string]any
	raw := mustRun(t, env, args...)
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("pushgate %s printed non-JSON %q", strings.Join(args, " "), raw)
	}
	return out
}

func TestWorkspaceCLI(t *testing.T) {
	for name, dbURL := range map[string]string{"sqlite": storetest.SQLite(t), "postgres": storetest.Postgres(t)} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"PUSHGATE_DATABASE_URL": dbURL, "PUSHGATE_PUBLIC_URL": "https://us.gw.example", "USER": "alice"}
			mustRun(t, env, "migrate")

			created := mustRunJSON(t, env, "workspace", "create", "--name", "Acme", "--email", "ops@acme.example", "--server-id", "srv1", "--plan", "pro", "--json")
			id, _ := created["id"].(string)
			token, _ := created["token"].(string)
			t.Run("create prints the contract's JSON object", func(t *testing.T) {
				urls, _ := created["push_urls"].(map[string]any)
				if !strings.HasPrefix(token, "pgw_us_") || created["region"] != "us" || created["plan"] != "pro" ||
					urls["mattermost"] != "https://us.gw.example/mm/"+token || urls["rocketchat"] != "https://us.gw.example" {
					t.Fatalf("create --json = %v", created)
				}
			})
			t.Run("create prints a claim link, and claim-link issues a new one", func(t *testing.T) {
				first, _ := created["claim_url"].(string)
				if !strings.HasPrefix(first, "https://us.gw.example/claim/") || created["claim_expires_at"] == nil {
					t.Fatalf("create --json = %v", created)
				}
				out := mustRunJSON(t, env, "workspace", "claim-link", id, "--json")
				if next, _ := out["claim_url"].(string); next == first || !strings.HasPrefix(next, "https://us.gw.example/claim/") {
					t.Fatalf("claim-link = %v", out)
				}
			})
			t.Run("list shows it", func(t *testing.T) {
				if out := mustRun(t, env, "workspace", "list"); !strings.Contains(out, id) || !strings.Contains(out, "Acme") {
					t.Fatalf("list = %q", out)
				}
			})
			t.Run("show never prints the token", func(t *testing.T) {
				out := mustRunJSON(t, env, "workspace", "show", id, "--json")
				if out["id"] != id || out["server_id"] != "srv1" || strings.Contains(mustRun(t, env, "workspace", "show", id), token) {
					t.Fatalf("show = %v", out)
				}
			})
			t.Run("set-plan with a limit takes effect", func(t *testing.T) {
				out := mustRunJSON(t, env, "workspace", "set-plan", id, "enterprise", "--limit", "50000", "--json")
				if out["plan"] != "enterprise" || out["monthly_limit"] != float64(50000) {
					t.Fatalf("set-plan = %v", out)
				}
			})
			t.Run("suspend and resume change the status", func(t *testing.T) {
				if out := mustRunJSON(t, env, "workspace", "suspend", id, "--json"); out["status"] != "suspended" {
					t.Fatalf("suspend = %v", out)
				}
				if out := mustRunJSON(t, env, "workspace", "resume", id, "--json"); out["status"] != "active" {
					t.Fatalf("resume = %v", out)
				}
			})
			t.Run("rotate-token prints a new token", func(t *testing.T) {
				out := mustRunJSON(t, env, "workspace", "rotate-token", id, "--json")
				if tok, _ := out["token"].(string); tok == token || !strings.HasPrefix(tok, "pgw_us_") {
					t.Fatalf("rotate-token = %v", out)
				}
			})
			t.Run("unknown workspace is an error naming it", func(t *testing.T) {
				err := run(context.Background(), []string{"workspace", "suspend", "ws_aaaaaaaaaaaaaaaaaaaa"}, envFrom(env), io.Discard, io.Discard)
				if err == nil || !strings.Contains(err.Error(), "ws_aaaaaaaaaaaaaaaaaaaa") {
					t.Fatalf("suspend ws_aaaaaaaaaaaaaaaaaaaa = %v", err)
				}
			})
			t.Run("bad text is refused naming what is wrong", func(t *testing.T) {
				for _, tc := range []struct {
					args []string
					want string
				}{
					{[]string{"workspace", "create", "--name", "Acme\u202e", "--email", "ops@acme.example"}, "name: contains the invisible bidirectional control U+202E"},
					{[]string{"workspace", "create", "--name", "Ac\xffme", "--email", "ops@acme.example"}, "name: is not valid UTF-8"},
					{[]string{"workspace", "create", "--name", "Acme", "--email", "ops\x00@acme.example"}, "contact_email: contains the control character U+0000"},
					{[]string{"workspace", "show", "ws_prbyzqk67yqqqoyjus7\x00"}, "is not a workspace id"},
					{[]string{"workspace", "suspend", "ws_nope"}, "is not a workspace id"},
				} {
					err := run(context.Background(), tc.args, envFrom(env), io.Discard, io.Discard)
					if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "internal") {
						t.Fatalf("pushgate %q = %v, want an error saying %q", tc.args, err, tc.want)
					}
				}
			})
			t.Run("bad input is refused", func(t *testing.T) {
				for _, args := range [][]string{
					{"workspace", "create", "--name", "x", "--email", "bad"},
					{"workspace", "set-plan", id, "gold"},
					{"workspace", "set-plan", id},
					{"workspace", "show"},
				} {
					if err := run(context.Background(), args, envFrom(env), io.Discard, io.Discard); err == nil {
						t.Fatalf("pushgate %s succeeded", strings.Join(args, " "))
					}
				}
			})
			t.Run("admin create hashes the password read from stdin", func(t *testing.T) {
				var stdout bytes.Buffer
				err := runWithInput(context.Background(), []string{"admin", "create", "--email", "Root@Pushgate.example"}, envFrom(env),
					strings.NewReader("correct horse battery\n"), &stdout, io.Discard)
				if err != nil || !strings.Contains(stdout.String(), "root@pushgate.example") {
					t.Fatalf("admin create = %v %q", err, stdout.String())
				}
				err = runWithInput(context.Background(), []string{"admin", "create", "--email", "x@pushgate.example"}, envFrom(env),
					strings.NewReader("short\n"), io.Discard, io.Discard)
				if err == nil || !strings.Contains(err.Error(), "at least") {
					t.Fatalf("a short password was accepted: %v", err)
				}
			})
		})
	}
}
