package main

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/tenants/storetest"
)

// TestOperatorAPIEndToEnd creates an operator and its API key with the CLI,
// then suspends and resumes a workspace through the running gateway's
// operator API and sees its pushes refused and let through.
func TestOperatorAPIEndToEnd(t *testing.T) {
	g := mustGateway(t, storetest.SQLite(t), "")
	if err := runWithInput(t.Context(), []string{"admin", "create", "--email", "ops@pushgate.example"}, envFrom(g.env),
		strings.NewReader("operator password\n"), &strings.Builder{}, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	created := mustRunJSON(t, g.env, "admin", "create-key", "--email", "ops@pushgate.example", "--name", "scripts", "--json")
	key, _ := created["key"].(string)
	if !strings.HasPrefix(key, "pgo_") || created["email"] != "ops@pushgate.example" {
		t.Fatalf("create-key = %v", created)
	}
	if out := mustRun(t, g.env, "admin", "list-keys"); !strings.Contains(out, "scripts") || strings.Contains(out, key) || !strings.Contains(out, "live") {
		t.Fatalf("list-keys shows the key or misses it:\n%s", out)
	}

	t.Run("a suspension through the API refuses the next push with 403 until resumed", func(t *testing.T) {
		if code, _, out := g.post(t, "/api/v1/admin/workspaces/"+g.id+"/suspend", key, nil); code != http.StatusOK || out["status"] != "suspended" {
			t.Fatalf("suspend: %d %v", code, out)
		}
		if code, _, resp := g.mmSend(t, g.token, mmPush("apple_rn", "device-1")); code != http.StatusForbidden || resp["status"] != "FAIL" {
			t.Fatalf("a push of a suspended workspace: %d %+v", code, resp)
		}
		if code, _, _ := g.post(t, "/api/v1/admin/workspaces/"+g.id+"/resume", key, nil); code != http.StatusOK {
			t.Fatalf("resume: %d", code)
		}
		if code, _, resp := g.mmSend(t, g.token, mmPush("apple_rn", "device-1")); code != http.StatusOK || resp["status"] != "OK" {
			t.Fatalf("a push after resume: %d %+v", code, resp)
		}
	})
	t.Run("the audit log names the operator and the API", func(t *testing.T) {
		req, _ := http.NewRequest("GET", g.URL+"/api/v1/admin/workspaces/"+g.id+"/audit?limit=1", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if body := string(raw); !strings.Contains(body, `"actor":"operator:ops@pushgate.example"`) || !strings.Contains(body, `"source":"api"`) {
			t.Fatalf("audit: %s", body)
		}
	})
	t.Run("a revoked key is refused at once", func(t *testing.T) {
		id := strconv.FormatInt(int64(created["id"].(float64)), 10)
		if out := mustRun(t, g.env, "admin", "revoke-key", id); !strings.Contains(out, "revoked") {
			t.Fatalf("revoke-key = %q", out)
		}
		if code, _, _ := g.post(t, "/api/v1/admin/workspaces/"+g.id+"/suspend", key, nil); code != http.StatusUnauthorized {
			t.Fatalf("a revoked key: %d", code)
		}
	})
}
