package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
)

// mustOperatorKey creates an operator and an API key for it.
func (a *testAPI) mustOperatorKey(t testing.TB, email string) (string, *tenants.OperatorKey) {
	t.Helper()
	ctx := context.Background()
	if _, err := a.svc.CreateOperator(ctx, email, "operator password"); err != nil {
		t.Fatal(err)
	}
	key, k, err := a.svc.CreateOperatorKey(ctx, email, "tests")
	if err != nil {
		t.Fatal(err)
	}
	return key, k
}

func TestAdminAPI(t *testing.T) {
	for name, dbURL := range sqltest.Backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := mustAPI(t, dbURL, apiOptions{registrationOpen: true})
			ctx := context.Background()
			key, k := a.mustOperatorKey(t, "ops@pushgate.example")
			acme, acmeToken := a.mustRegister(t, "Acme", true)
			beta, _ := a.mustRegister(t, "Beta", false)

			t.Run("without a key, with a workspace token or a revoked key it is 401", func(t *testing.T) {
				for name, token := range map[string]string{"no key": "", "a workspace token": acmeToken, "a made-up key": "pgo_" + strings.Repeat("A", 43)} {
					code, out := a.call(t, "GET", "/api/v1/admin/workspaces", token, "")
					if code != http.StatusUnauthorized || out["code"] != "unauthorized" {
						t.Errorf("%s: %d %v", name, code, out)
					}
				}
				revoked, rk := a.mustOperatorKey(t, "gone@pushgate.example")
				if code, _ := a.call(t, "GET", "/api/v1/admin/workspaces", revoked, ""); code != http.StatusOK {
					t.Fatalf("a live key: %d", code)
				}
				if _, err := a.svc.RevokeOperatorKey(ctx, rk.ID); err != nil {
					t.Fatal(err)
				}
				if code, _ := a.call(t, "GET", "/api/v1/admin/workspaces", revoked, ""); code != http.StatusUnauthorized {
					t.Fatalf("a revoked key: %d", code)
				}
			})
			t.Run("the list searches, filters and pages", func(t *testing.T) {
				code, out := a.call(t, "GET", "/api/v1/admin/workspaces?q=admin@acme", key, "")
				list, _ := out["workspaces"].([]any)
				if code != http.StatusOK || len(list) != 1 || list[0].(map[string]any)["id"] != acme || out["total"] != 1.0 {
					t.Fatalf("search: %d %v", code, out)
				}
				code, out = a.call(t, "GET", "/api/v1/admin/workspaces?terms_pending=true", key, "")
				list, _ = out["workspaces"].([]any)
				if code != http.StatusOK || len(list) != 1 || list[0].(map[string]any)["id"] != beta {
					t.Fatalf("terms pending: %d %v", code, out)
				}
				code, out = a.call(t, "GET", "/api/v1/admin/workspaces?sort=newest&limit=1", key, "")
				list, _ = out["workspaces"].([]any)
				next, _ := out["next"].(string)
				if code != http.StatusOK || len(list) != 1 || list[0].(map[string]any)["id"] != beta || next == "" {
					t.Fatalf("first page: %d %v", code, out)
				}
				code, out = a.call(t, "GET", "/api/v1/admin/workspaces?sort=newest&limit=1&after="+next, key, "")
				list, _ = out["workspaces"].([]any)
				if code != http.StatusOK || len(list) != 1 || list[0].(map[string]any)["id"] != acme {
					t.Fatalf("second page: %d %v", code, out)
				}
			})
			t.Run("bad parameters are 400 naming the field", func(t *testing.T) {
				for path, field := range map[string]string{
					"?plan=gold": "plan", "?sort=random": "sort", "?limit=x": "limit", "?limit=5000": "limit", "?after=garbage": "after",
				} {
					code, out := a.call(t, "GET", "/api/v1/admin/workspaces"+path, key, "")
					if code != http.StatusBadRequest || out["field"] != field {
						t.Errorf("%s: %d %v", path, code, out)
					}
				}
			})
			t.Run("a workspace shows its usage, terms and consents", func(t *testing.T) {
				if err := a.svc.CanSend(ctx, mustPrincipal(t, a, acme)); err != nil {
					t.Fatal(err)
				}
				code, out := a.call(t, "GET", "/api/v1/admin/workspaces/"+acme, key, "")
				consents, _ := out["consents"].([]any)
				if code != http.StatusOK || out["id"] != acme || out["used_this_month"] != 0.0 || len(consents) != 1 {
					t.Fatalf("%d %v", code, out)
				}
				if terms, _ := out["terms"].(map[string]any); terms["status"] != "accepted" {
					t.Fatalf("terms %v", out["terms"])
				}
				for _, id := range []string{"ws_zzzzzzzzzzzzzzzzzzzz", "nonsense", "ws_%2e%2e"} {
					if code, _ := a.call(t, "GET", "/api/v1/admin/workspaces/"+id, key, ""); code != http.StatusNotFound {
						t.Errorf("%s: %d, want 404", id, code)
					}
				}
			})
			t.Run("suspend refuses the workspace's pushes and resume lets them through, both audited", func(t *testing.T) {
				code, out := a.call(t, "POST", "/api/v1/admin/workspaces/"+acme+"/suspend", key, "")
				if code != http.StatusOK || out["status"] != "suspended" {
					t.Fatalf("suspend: %d %v", code, out)
				}
				p, err := a.svc.PrincipalOf(ctx, acme)
				if err != nil {
					t.Fatal(err)
				}
				if err := a.svc.CanSend(ctx, p); tenants.ErrorCode(err) != tenants.CodeForbidden {
					t.Fatalf("a suspended workspace may send: %v", err)
				}
				if code, out := a.call(t, "POST", "/api/v1/admin/workspaces/"+acme+"/resume", key, "{}"); code != http.StatusOK || out["status"] != "active" {
					t.Fatalf("resume: %d %v", code, out)
				}
				code, out = a.call(t, "GET", "/api/v1/admin/workspaces/"+acme+"/audit?limit=2", key, "")
				entries, _ := out["entries"].([]any)
				if code != http.StatusOK || len(entries) != 2 {
					t.Fatalf("audit: %d %v", code, out)
				}
				for i, action := range []string{"workspace.resume", "workspace.suspend"} {
					e := entries[i].(map[string]any)
					if e["action"] != action || e["actor"] != "operator:"+k.Email || e["source"] != "api" {
						t.Fatalf("entry %d: %v", i, e)
					}
				}
			})
			t.Run("set plan with a limit, refused where the plan has its own", func(t *testing.T) {
				code, out := a.call(t, "POST", "/api/v1/admin/workspaces/"+acme+"/plan", key, `{"plan":"enterprise","monthly_limit":5000}`)
				if code != http.StatusOK || out["plan"] != "enterprise" || out["monthly_limit"] != 5000.0 {
					t.Fatalf("%d %v", code, out)
				}
				code, out = a.call(t, "POST", "/api/v1/admin/workspaces/"+acme+"/plan", key, `{"plan":"pro","monthly_limit":5000}`)
				if code != http.StatusBadRequest || out["field"] != "monthly_limit" {
					t.Fatalf("a limit on pro: %d %v", code, out)
				}
				for _, body := range []string{`{}`, `{"plan":"gold"}`, `{"plan":"free","extra":1}`, `not json`} {
					if code, out := a.call(t, "POST", "/api/v1/admin/workspaces/"+acme+"/plan", key, body); code != http.StatusBadRequest {
						t.Errorf("%s: %d %v", body, code, out)
					}
				}
				if code, out := a.call(t, "POST", "/api/v1/admin/workspaces/"+acme+"/plan", key, `{"plan":"free"}`); code != http.StatusOK || out["monthly_limit"] != 10000.0 {
					t.Fatalf("back to free: %d %v", code, out)
				}
			})
			t.Run("added pushes raise this month's limit", func(t *testing.T) {
				code, out := a.call(t, "POST", "/api/v1/admin/workspaces/"+acme+"/pushes", key, `{"pushes":2500,"note":"support ticket 42"}`)
				if code != http.StatusOK || out["monthly_limit"] != 12500.0 || out["package_pushes"] != 2500.0 {
					t.Fatalf("%d %v", code, out)
				}
				for _, body := range []string{`{"pushes":0}`, `{"pushes":-5}`, fmt.Sprintf(`{"pushes":%d}`, tenants.MaxGrantedPushes+1)} {
					if code, out := a.call(t, "POST", "/api/v1/admin/workspaces/"+acme+"/pushes", key, body); code != http.StatusBadRequest || out["field"] != "pushes" {
						t.Errorf("%s: %d %v", body, code, out)
					}
				}
				_, out = a.call(t, "GET", "/api/v1/admin/workspaces/"+acme+"/audit?limit=1", key, "")
				e := out["entries"].([]any)[0].(map[string]any)
				if e["action"] != "workspace.add_pushes" || !strings.Contains(e["detail"].(string), "pushes=2500") || e["source"] != "api" {
					t.Fatalf("audit %v", e)
				}
			})
			t.Run("a rotated token replaces the old one at once", func(t *testing.T) {
				code, out := a.call(t, "POST", "/api/v1/admin/workspaces/"+acme+"/token", key, "")
				token, _ := out["token"].(string)
				if code != http.StatusOK || !strings.HasPrefix(token, "pgw_") {
					t.Fatalf("%d %v", code, out)
				}
				if _, err := a.svc.Authenticate(ctx, token); err != nil {
					t.Fatalf("the new token: %v", err)
				}
				if _, err := a.svc.Authenticate(ctx, acmeToken); tenants.ErrorCode(err) != tenants.CodeUnauthorized {
					t.Fatalf("the old token still works: %v", err)
				}
				if code, _ := a.call(t, "POST", "/api/v1/admin/workspaces/"+acme+"/token", key, `{"grace_seconds":999999}`); code != http.StatusBadRequest {
					t.Fatalf("a grace of 11 days: %d", code)
				}
			})
			t.Run("readyz shows its checks to an operator key from anywhere", func(t *testing.T) {
				req, _ := http.NewRequest("GET", a.URL+"/readyz", nil)
				req.Header.Set("X-Forwarded-For", "203.0.113.9") // not a local caller
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"checks"`) {
					t.Fatalf("readyz: %d %s", resp.StatusCode, body)
				}
			})
		})
	}
}

func mustPrincipal(t *testing.T, a *testAPI, id string) *tenants.Principal {
	t.Helper()
	p, err := a.svc.PrincipalOf(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOperatorKeyShapes(t *testing.T) {
	a := mustAPI(t, sqltest.Backends(t)["sqlite"], apiOptions{})
	key, _ := a.mustOperatorKey(t, "ops@pushgate.example")
	for name, token := range map[string]string{
		"a key one character short": key[:len(key)-1],
		"a key with another prefix": "pgw_" + key[4:],
		"the key's hash":            tenants.HashOperatorKey(key),
	} {
		t.Run(name+" is 401", func(t *testing.T) {
			if code, _ := a.call(t, "GET", "/api/v1/admin/workspaces", token, ""); code != http.StatusUnauthorized {
				t.Fatalf("%d", code)
			}
		})
	}
}
