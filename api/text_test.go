package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
)

func TestBadTextIsRefusedNamingTheField(t *testing.T) {
	for name, dbURL := range sqltest.Backends(t) {
		t.Run(name, func(t *testing.T) {
			a := mustAPI(t, dbURL, apiOptions{registrationOpen: true})
			id, tok := a.mustRegister(t, "Alpha", false)
			before := a.workspaceCount(t)

			for _, c := range []struct{ name, method, path, body, field string }{
				{"NUL in accepted_by", "POST", "/api/v1/workspace/consent", `{"terms_version":"2026-11-01","accepted_by":"cto\u0000@alpha.example"}`, "accepted_by"},
				{"a right-to-left override in accepted_by", "POST", "/api/v1/workspace/consent", `{"terms_version":"2026-11-01","accepted_by":"Jane \u202eDoe"}`, "accepted_by"},
				{"a bell in accepted_by", "POST", "/api/v1/workspace/consent", `{"terms_version":"2026-11-01","accepted_by":"Jane\u0007"}`, "accepted_by"},
				{"invalid UTF-8 in accepted_by", "POST", "/api/v1/workspace/consent", "{\"terms_version\":\"2026-11-01\",\"accepted_by\":\"Jane\xff\"}", "accepted_by"},
				{"a lone surrogate in accepted_by", "POST", "/api/v1/workspace/consent", `{"terms_version":"2026-11-01","accepted_by":"Jane\udfff"}`, "accepted_by"},
				{"NUL in a name", "POST", "/api/v1/workspaces", `{"name":"Acme\u0000","contact_email":"ops@acme.example"}`, "name"},
				{"an isolate in a name", "POST", "/api/v1/workspaces", `{"name":"Acme\u2067","contact_email":"ops@acme.example"}`, "name"},
				{"a line separator in a name", "POST", "/api/v1/workspaces", `{"name":"Acme\u2028Corp","contact_email":"ops@acme.example"}`, "name"},
				{"invalid UTF-8 in a name", "POST", "/api/v1/workspaces", "{\"name\":\"Ac\xc3me\",\"contact_email\":\"ops@acme.example\"}", "name"},
				{"a right-to-left override in an email", "POST", "/api/v1/workspaces", `{"name":"Acme","contact_email":"ops\u202e@acme.example"}`, "contact_email"},
				{"invalid UTF-8 in a server id", "POST", "/api/v1/workspaces", "{\"name\":\"Acme\",\"contact_email\":\"ops@acme.example\",\"server_id\":\"srv\xff\"}", "server_id"},
				{"NUL in a server id", "PATCH", "/api/v1/workspace", `{"server_id":"srv\u0000"}`, "server_id"},
				{"invalid UTF-8 in a server id change", "PATCH", "/api/v1/workspace", "{\"server_id\":\"srv\xe2\x82\"}", "server_id"},
				{"invalid UTF-8 in a privacy change", "PATCH", "/api/v1/workspace", "{\"privacy\":\"id_only\xff\"}", "privacy"},
			} {
				t.Run(c.name, func(t *testing.T) {
					code, out := a.call(t, c.method, c.path, tok, c.body)
					if code != http.StatusBadRequest || out["field"] != c.field || !strings.Contains(out["error"].(string), c.field) {
						t.Fatalf("%s %s = %d %v, want 400 naming %s", c.method, c.path, code, out, c.field)
					}
				})
			}
			t.Run("nothing refused was stored", func(t *testing.T) {
				if n := a.workspaceCount(t); n != before {
					t.Fatalf("workspaces went from %d to %d", before, n)
				}
				if hist, _ := a.db.Consents(context.Background(), id); len(hist) != 0 {
					t.Fatalf("refused consents were recorded: %+v", hist)
				}
				ws, _ := a.db.Workspace(context.Background(), id)
				if ws.ServerID != "" || ws.Privacy != "full" {
					t.Fatalf("refused changes were applied: %+v", ws)
				}
			})
			t.Run("text of any script is kept exactly", func(t *testing.T) {
				const name, by = "Åcme 日本 👩‍💻", "José Ñúñez"
				code, out := a.call(t, "POST", "/api/v1/workspaces", "", `{"name":"`+name+`","contact_email":"ops@acme.example"}`)
				if code != http.StatusCreated || out["name"] != name {
					t.Fatalf("register %q = %d %v", name, code, out)
				}
				code, out = a.call(t, "POST", "/api/v1/workspace/consent", tok, `{"terms_version":"2026-11-01","accepted_by":"`+by+`"}`)
				if code != http.StatusOK || out["accepted_by"] != by {
					t.Fatalf("consent by %q = %d %v", by, code, out)
				}
				if hist, _ := a.db.Consents(context.Background(), id); len(hist) != 1 || hist[0].AcceptedBy != by {
					t.Fatalf("consent history = %+v", hist)
				}
			})
		})
	}
}
