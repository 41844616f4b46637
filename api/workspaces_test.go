package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/api"
	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
	"github.com/pushgate/pushgate/tenants/storetest"
)

// lockedBuffer collects log output from concurrent handlers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type testAPI struct {
	URL     string
	handler http.Handler
	svc     *tenants.Service
	db      *sqlstore.DB
	logs    *lockedBuffer
	reg     *prometheus.Registry
	// deliveries is the delivery log, when apiOptions turned it on.
	deliveries *tenants.DeliveryLog
}

type apiOptions struct {
	region           string
	registrationOpen bool
	perHour          int
	trustProxy       bool
	apps             *gateway.Registry
	rateLimits       map[tenants.Plan]api.RateLimit
	// quotas wraps the database's quota store, to inject faults.
	quotas       func(tenants.QuotaStore) tenants.QuotaStore
	meteredPlans map[tenants.Plan]bool
	// deliveryLog, when set, turns the delivery log on with these options (its store is the database).
	deliveryLog *tenants.DeliveryLogOptions
}

func mustAPI(t testing.TB, dbURL string, o apiOptions) *testAPI {
	t.Helper()
	if o.region == "" {
		o.region = "us"
	}
	if o.perHour == 0 {
		o.perHour = 1000
	}
	ctx := context.Background()
	db := sqltest.Migrated(t, dbURL)
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := tenants.NewService(db, tenants.Config{
		Region: o.region, PublicURL: "https://" + o.region + ".gw.example",
		RegionURLs: map[string]string{"us": "https://us.gw.example", "de": "https://de.gw.example"},
		Terms:      tenants.Terms{Version: "2026-11-01", URL: "https://gw.example/terms", PublishedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		Log:        log, MeteredPlans: o.meteredPlans,
	})
	if err := svc.PublishConfiguredTerms(ctx); err != nil {
		t.Fatal(err)
	}
	var quotas tenants.QuotaStore = sqlstore.NewQuotaStore(db)
	if o.quotas != nil {
		quotas = o.quotas(quotas)
	}
	reg := prometheus.NewRegistry()
	var deliveries *tenants.DeliveryLog
	if o.deliveryLog != nil {
		opts := *o.deliveryLog
		opts.Store, opts.Log, opts.Registerer = db, log, reg
		deliveries = tenants.NewDeliveryLog(opts)
	}
	h := api.NewHandler(api.Deps{
		Log: log, Registry: reg, Tenants: svc, PublicURL: "https://" + o.region + ".gw.example",
		RegistrationOpen: o.registrationOpen, RegistrationsPerHour: o.perHour, TrustProxy: o.trustProxy,
		Quotas: quotas, History: db, Apps: o.apps, RateLimits: o.rateLimits, Deliveries: deliveries,
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testAPI{URL: srv.URL, handler: h, svc: svc, db: db, logs: logs, reg: reg, deliveries: deliveries}
}

// call sends a JSON request and decodes the JSON answer.
func (a *testAPI) call(t testing.TB, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, a.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s answered %d with non-JSON %q", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func (a *testAPI) mustRegister(t testing.TB, name string, accept bool) (id, token string) {
	t.Helper()
	body := `{"name":"` + name + `","contact_email":"admin@` + strings.ToLower(name) + `.example"`
	if accept {
		body += `,"accept_terms_version":"2026-11-01"`
	}
	code, out := a.call(t, "POST", "/api/v1/workspaces", "", body+"}")
	if code != http.StatusCreated {
		t.Fatalf("register %s = %d %v", name, code, out)
	}
	return out["id"].(string), out["token"].(string)
}

func (a *testAPI) workspaceCount(t *testing.T) int {
	t.Helper()
	list, err := a.db.ListWorkspaces(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

func TestRegistration(t *testing.T) {
	for name, dbURL := range sqltest.Backends(t) {
		t.Run(name, func(t *testing.T) {
			a := mustAPI(t, dbURL, apiOptions{registrationOpen: true})

			t.Run("registration answers 201 with the token and push URLs", func(t *testing.T) {
				code, out := a.call(t, "POST", "/api/v1/workspaces", "", `{"name":"Acme","contact_email":"ops@acme.example","server_id":"aoej8izzfffr9e67d6uz3g387h","accept_terms_version":"2026-11-01"}`)
				if code != http.StatusCreated {
					t.Fatalf("code = %d %v", code, out)
				}
				token, _ := out["token"].(string)
				if !strings.HasPrefix(token, "pgw_us_") {
					t.Fatalf("token %q is not a us token", tenants.TokenHint(token))
				}
				urls, _ := out["push_urls"].(map[string]any)
				if urls["mattermost"] != "https://us.gw.example/mm/"+token || urls["rocketchat"] != "https://us.gw.example" {
					t.Fatalf("push_urls = %v", urls)
				}
				if out["plan"] != "free" || out["region"] != "us" || !strings.HasPrefix(out["id"].(string), "ws_") {
					t.Fatalf("registration = %v", out)
				}
			})

			t.Run("registration answers a one-time claim_url, and the token issues a new one until the workspace has an owner", func(t *testing.T) {
				code, out := a.call(t, "POST", "/api/v1/workspaces", "", `{"name":"Claimable","contact_email":"ops@claimable.example"}`)
				claim, _ := out["claim_url"].(string)
				if code != http.StatusCreated || !strings.HasPrefix(claim, "https://us.gw.example/claim/") || len(claim) != len("https://us.gw.example/claim/")+43 {
					t.Fatalf("registration = %d %v", code, out)
				}
				token := out["token"].(string)
				code, again := a.call(t, "POST", "/api/v1/workspace/claim", token, "")
				if next, _ := again["claim_url"].(string); code != http.StatusCreated || next == claim || again["expires_at"] == nil {
					t.Fatalf("a new claim link = %d %v", code, again)
				}
				if code, out := a.call(t, "POST", "/api/v1/workspace/claim", "", ""); code != http.StatusUnauthorized {
					t.Fatalf("a claim link without the token = %d %v", code, out)
				}
				if err := a.db.CreateOwnerAccount(context.Background(), &tenants.OwnerAccount{WorkspaceID: out["id"].(string), Email: "boss@claimable.example", PasswordHash: "x"}); err != nil {
					t.Fatal(err)
				}
				if code, out := a.call(t, "POST", "/api/v1/workspace/claim", token, ""); code != http.StatusConflict || out["reason"] != "already_claimed" {
					t.Fatalf("a claim link of an owned workspace = %d %v", code, out)
				}
			})

			before := a.workspaceCount(t)
			bad := []struct {
				name, body, field string
			}{
				{"a missing name names the field", `{"contact_email":"a@b.example"}`, "name"},
				{"a name of the wrong type names the field", `{"name":42,"contact_email":"a@b.example"}`, "name"},
				{"an overlong name names the field", `{"name":"` + strings.Repeat("x", 101) + `","contact_email":"a@b.example"}`, "name"},
				{"an invalid email names the field", `{"name":"x","contact_email":"nope"}`, "contact_email"},
				{"an unknown field names the field", `{"name":"x","contact_email":"a@b.example","plan":"enterprise"}`, "plan"},
				{"a stale terms version names the field", `{"name":"x","contact_email":"a@b.example","accept_terms_version":"1999"}`, "terms_version"},
			}
			for _, tt := range bad {
				t.Run(tt.name, func(t *testing.T) {
					code, out := a.call(t, "POST", "/api/v1/workspaces", "", tt.body)
					if code/100 != 4 || out["field"] != tt.field || !strings.Contains(out["error"].(string), tt.field) {
						t.Fatalf("answer = %d %v, want a 4xx naming %s", code, out, tt.field)
					}
				})
			}
			t.Run("malformed JSON is a 400", func(t *testing.T) {
				if code, out := a.call(t, "POST", "/api/v1/workspaces", "", `{"name":`); code != 400 {
					t.Fatalf("answer = %d %v", code, out)
				}
			})
			t.Run("refused registrations write nothing", func(t *testing.T) {
				if n := a.workspaceCount(t); n != before {
					t.Fatalf("workspaces went from %d to %d", before, n)
				}
			})
		})
	}
}

func TestRegistrationClosedAndRateLimited(t *testing.T) {
	dbURL := storetest.SQLite(t)
	t.Run("closed registration is a 403", func(t *testing.T) {
		a := mustAPI(t, dbURL, apiOptions{registrationOpen: false})
		code, out := a.call(t, "POST", "/api/v1/workspaces", "", `{"name":"x","contact_email":"a@b.example"}`)
		if code != 403 || out["reason"] != "registration_closed" {
			t.Fatalf("answer = %d %v", code, out)
		}
	})
	t.Run("registrations past the per-address limit get 429 with Retry-After", func(t *testing.T) {
		a := mustAPI(t, storetest.SQLite(t), apiOptions{registrationOpen: true, perHour: 3})
		for i := range 3 {
			a.mustRegister(t, "Ws"+string(rune('a'+i)), false)
		}
		code, out := a.call(t, "POST", "/api/v1/workspaces", "", `{"name":"x","contact_email":"a@b.example"}`)
		if code != 429 || out["code"] != "rate_limited" {
			t.Fatalf("4th registration = %d %v", code, out)
		}
	})
}

func TestWorkspaceAPI(t *testing.T) {
	for name, dbURL := range sqltest.Backends(t) {
		t.Run(name, func(t *testing.T) {
			a := mustAPI(t, dbURL, apiOptions{registrationOpen: true})
			idA, tokA := a.mustRegister(t, "Alpha", false)
			idB, tokB := a.mustRegister(t, "Beta", true)

			t.Run("each token sees its own workspace only", func(t *testing.T) {
				for _, c := range []struct{ id, tok string }{{idA, tokA}, {idB, tokB}} {
					code, out := a.call(t, "GET", "/api/v1/workspace", c.tok, "")
					if code != 200 || out["id"] != c.id {
						t.Fatalf("GET /api/v1/workspace = %d %v, want %s", code, out, c.id)
					}
					urls := out["push_urls"].(map[string]any)
					if urls["mattermost"] != "https://us.gw.example/mm/"+c.tok {
						t.Fatalf("push_urls.mattermost = %v", urls["mattermost"])
					}
				}
			})
			t.Run("a workspace without consent is told to accept", func(t *testing.T) {
				_, out := a.call(t, "GET", "/api/v1/workspace", tokA, "")
				terms := out["terms"].(map[string]any)
				if terms["status"] != "required" || !strings.Contains(terms["action"].(string), "/api/v1/workspace/consent") {
					t.Fatalf("terms = %v", terms)
				}
			})
			t.Run("consent to another version is a 409", func(t *testing.T) {
				code, out := a.call(t, "POST", "/api/v1/workspace/consent", tokA, `{"terms_version":"2020-01-01"}`)
				if code != 409 || out["field"] != "terms_version" || !strings.Contains(out["error"].(string), "2026-11-01") {
					t.Fatalf("answer = %d %v", code, out)
				}
			})
			t.Run("consent to the current version is recorded", func(t *testing.T) {
				code, out := a.call(t, "POST", "/api/v1/workspace/consent", tokA, `{"terms_version":"2026-11-01","accepted_by":"cto@alpha.example"}`)
				if code != 200 || out["terms_version"] != "2026-11-01" || out["accepted_by"] != "cto@alpha.example" {
					t.Fatalf("answer = %d %v", code, out)
				}
				_, ws := a.call(t, "GET", "/api/v1/workspace", tokA, "")
				if ws["terms"].(map[string]any)["status"] != "accepted" {
					t.Fatalf("terms after consent = %v", ws["terms"])
				}
				hist, _ := a.db.Consents(context.Background(), idA)
				if len(hist) != 1 || hist[0].AcceptedIP != "127.0.0.1" {
					t.Fatalf("consent history = %+v", hist)
				}
				if other, _ := a.db.Consents(context.Background(), idB); len(other) != 1 {
					t.Fatalf("Beta's consents changed: %+v", other)
				}
			})
			t.Run("a rotated token is refused at once and the new one works", func(t *testing.T) {
				code, out := a.call(t, "POST", "/api/v1/workspace/token", tokA, "")
				if code != 200 {
					t.Fatalf("rotate = %d %v", code, out)
				}
				newTok := out["token"].(string)
				if code, out := a.call(t, "GET", "/api/v1/workspace", tokA, ""); code != 401 {
					t.Fatalf("old token after rotation = %d %v", code, out)
				}
				if code, out := a.call(t, "GET", "/api/v1/workspace", newTok, ""); code != 200 || out["id"] != idA {
					t.Fatalf("new token = %d %v", code, out)
				}
				if code, _ := a.call(t, "GET", "/api/v1/workspace", tokB, ""); code != 200 {
					t.Fatal("rotating Alpha's token broke Beta's")
				}
				tokA = newTok
			})
			t.Run("privacy can be switched to id_only", func(t *testing.T) {
				code, out := a.call(t, "PATCH", "/api/v1/workspace", tokA, `{"privacy":"id_only"}`)
				if code != 200 || out["privacy"] != "id_only" {
					t.Fatalf("answer = %d %v", code, out)
				}
				if code, out := a.call(t, "PATCH", "/api/v1/workspace", tokA, `{"privacy":"some"}`); code != 400 || out["field"] != "privacy" {
					t.Fatalf("bad privacy = %d %v", code, out)
				}
			})
			t.Run("missing or wrong credentials are 401", func(t *testing.T) {
				for _, tok := range []string{"", "pgw_us_nonsense", "Basic abc"} {
					if code, out := a.call(t, "GET", "/api/v1/workspace", tok, ""); code != 401 || out["code"] != "unauthorized" {
						t.Fatalf("token %q = %d %v", tok, code, out)
					}
				}
			})
			t.Run("bad input on the workspace endpoints names the field", func(t *testing.T) {
				for _, c := range []struct{ method, path, body, field string }{
					{"POST", "/api/v1/workspace/consent", `{"terms_version":1}`, "terms_version"},
					{"POST", "/api/v1/workspace/consent", `{"terms":"2026-11-01"}`, "terms"},
					{"POST", "/api/v1/workspace/consent", `{}`, "terms_version"},
					{"POST", "/api/v1/workspace/token", `{"grace_seconds":999999}`, "grace_seconds"},
					{"PATCH", "/api/v1/workspace", `{"server_id":"a b"}`, "server_id"},
				} {
					code, out := a.call(t, c.method, c.path, tokA, c.body)
					if code != 400 || out["field"] != c.field {
						t.Fatalf("%s %s %s = %d %v, want 400 naming %s", c.method, c.path, c.body, code, out, c.field)
					}
				}
			})
			t.Run("tokens never appear in logs or metrics", func(t *testing.T) {
				for _, tok := range []string{tokA, tokB} {
					if strings.Contains(a.logs.String(), tok) {
						t.Fatal("a workspace token reached the log")
					}
				}
				mfs, _ := a.reg.Gather()
				for _, mf := range mfs {
					for _, m := range mf.GetMetric() {
						for _, l := range m.GetLabel() {
							if strings.Contains(l.GetValue(), "pgw_") {
								t.Fatalf("metric %s has a token in label %s", mf.GetName(), l.GetName())
							}
						}
					}
				}
			})
		})
	}
}

func TestAnotherRegionsTokenIsMisdirected(t *testing.T) {
	us := mustAPI(t, storetest.SQLite(t), apiOptions{region: "us", registrationOpen: true})
	de := mustAPI(t, storetest.SQLite(t), apiOptions{region: "de", registrationOpen: true})
	_, tok := us.mustRegister(t, "Eta", true)
	code, out := de.call(t, "GET", "/api/v1/workspace", tok, "")
	if code != http.StatusMisdirectedRequest || out["region_url"] != "https://us.gw.example" || !strings.Contains(out["error"].(string), "https://us.gw.example") {
		t.Fatalf("de answered a us token with %d %v, want 421 naming the us URL", code, out)
	}
}

func TestTerms(t *testing.T) {
	a := mustAPI(t, storetest.SQLite(t), apiOptions{})
	code, out := a.call(t, "GET", "/api/v1/terms", "", "")
	if code != 200 || out["version"] != "2026-11-01" || out["url"] != "https://gw.example/terms" || out["published_at"] != "2026-11-01T00:00:00Z" {
		t.Fatalf("GET /api/v1/terms = %d %v", code, out)
	}
}

func TestASuspendedWorkspace(t *testing.T) {
	for name, dbURL := range sqltest.Backends(t) {
		t.Run(name, func(t *testing.T) {
			a := mustAPI(t, dbURL, apiOptions{registrationOpen: true})
			id, tok := a.mustRegister(t, "Alpha", false)
			suspended, active := tenants.StatusSuspended, tenants.StatusActive
			if _, err := a.svc.Update(context.Background(), id, "operator:test", "workspace.suspend", tenants.WorkspaceChange{Status: &suspended}); err != nil {
				t.Fatal(err)
			}

			t.Run("still reads itself and its usage", func(t *testing.T) {
				if code, out := a.call(t, "GET", "/api/v1/workspace", tok, ""); code != 200 || out["status"] != "suspended" {
					t.Fatalf("GET /api/v1/workspace = %d %v", code, out)
				}
				if code, out := a.call(t, "GET", "/api/v1/workspace/usage", tok, ""); code != 200 {
					t.Fatalf("GET /api/v1/workspace/usage = %d %v", code, out)
				}
			})
			t.Run("still accepts the terms", func(t *testing.T) {
				if code, out := a.call(t, "POST", "/api/v1/workspace/consent", tok, `{"terms_version":"2026-11-01"}`); code != 200 {
					t.Fatalf("consent = %d %v", code, out)
				}
			})
			t.Run("cannot change its settings, and is told why", func(t *testing.T) {
				code, out := a.call(t, "PATCH", "/api/v1/workspace", tok, `{"privacy":"id_only","server_id":"srv1"}`)
				if code != 403 || out["reason"] != "suspended" || !strings.Contains(out["error"].(string), "suspended") {
					t.Fatalf("PATCH while suspended = %d %v, want 403 suspended", code, out)
				}
				if ws, _ := a.db.Workspace(context.Background(), id); ws.Privacy != tenants.PrivacyFull || ws.ServerID != "" {
					t.Fatalf("the refused change was applied: %+v", ws)
				}
			})
			t.Run("can rotate a leaked token", func(t *testing.T) {
				code, out := a.call(t, "POST", "/api/v1/workspace/token", tok, "")
				if code != 200 {
					t.Fatalf("rotate while suspended = %d %v", code, out)
				}
				if code, _ := a.call(t, "GET", "/api/v1/workspace", tok, ""); code != 401 {
					t.Fatalf("the old token still answers %d", code)
				}
				tok = out["token"].(string)
			})
			t.Run("changes its settings again once resumed", func(t *testing.T) {
				if _, err := a.svc.Update(context.Background(), id, "operator:test", "workspace.resume", tenants.WorkspaceChange{Status: &active}); err != nil {
					t.Fatal(err)
				}
				if code, out := a.call(t, "PATCH", "/api/v1/workspace", tok, `{"privacy":"id_only"}`); code != 200 || out["privacy"] != "id_only" {
					t.Fatalf("PATCH after resume = %d %v", code, out)
				}
			})
		})
	}
}
