package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/api"
	"github.com/pushgate/pushgate/billing"
	"github.com/pushgate/pushgate/billing/stripetest"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
	"github.com/pushgate/pushgate/tenants/storetest"
)

const (
	proPrice     = "price_pro_monthly"
	packagePrice = "price_pushes_100k"
	grace        = 7 * 24 * time.Hour
)

// billingClock is the billing service's settable clock.
type billingClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *billingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *billingClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// billingAPI is the HTTP surface with billing on, over stripe-mock and a real database.
type billingAPI struct {
	URL   string
	svc   *tenants.Service
	db    *sqlstore.DB
	bill  *billing.Service
	rec   *stripetest.Recorder
	clock *billingClock
	logs  *lockedBuffer
}

func mustBillingAPI(t *testing.T, dbURL, stripeURL string) *billingAPI {
	t.Helper()
	ctx := context.Background()
	db := sqltest.Migrated(t, dbURL)
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := tenants.NewService(db, tenants.Config{Region: "us", PublicURL: "https://us.gw.example",
		Terms: tenants.Terms{Version: "2026-11-01", URL: "https://gw.example/terms", PublishedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		Log:   log})
	if err := svc.PublishConfiguredTerms(ctx); err != nil {
		t.Fatal(err)
	}
	clock := &billingClock{now: time.Now().UTC()}
	rec := &stripetest.Recorder{}
	reg := prometheus.NewRegistry()
	bill, err := billing.New(billing.Config{
		WebhookSecret: stripetest.WebhookSecret,
		Plans:         map[tenants.Plan]billing.PlanPrice{tenants.PlanPro: {Price: proPrice}},
		Packages:      map[int64]string{100_000: packagePrice},
		Grace:         grace, ReturnURL: "https://us.gw.example/", Now: clock.Now, Log: log, Registerer: reg,
	}, billing.NewStripeClient(stripetest.SecretKey, stripeURL, rec.Client(), log), db, svc)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.NewHandler(api.Deps{Log: log, Registry: reg, Tenants: svc,
		PublicURL: "https://us.gw.example", Billing: bill}))
	t.Cleanup(srv.Close)
	return &billingAPI{URL: srv.URL, svc: svc, db: db, bill: bill, rec: rec, clock: clock, logs: logs}
}

// workspace registers a free workspace and returns its id and token.
func (a *billingAPI) workspace(t *testing.T) (string, string) {
	t.Helper()
	reg, err := a.svc.Register(context.Background(), tenants.RegisterRequest{Name: "Acme", ContactEmail: "ops@acme.example",
		AcceptTermsVersion: "2026-11-01"}, "test", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return reg.Workspace.ID, reg.Token
}

func (a *billingAPI) call(t *testing.T, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s answered %d with non-JSON %q", req.URL.Path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// webhook posts payload to /webhooks/stripe with a signature made at signedAt.
func (a *billingAPI) webhook(t *testing.T, payload []byte, secret string, signedAt time.Time) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.URL+"/webhooks/stripe", bytes.NewReader(payload))
	req.Header.Set("Stripe-Signature", stripetest.Sign(payload, secret, signedAt))
	code, _ := do(t, req)
	return code
}

// deliver sends a well-signed event and fails the test unless it is answered 200.
func (a *billingAPI) deliver(t *testing.T, id, typ string, created time.Time, object any) {
	t.Helper()
	if code := a.webhook(t, stripetest.Event(t, id, typ, created, object), stripetest.WebhookSecret, time.Now()); code != http.StatusOK {
		t.Fatalf("event %s (%s) answered %d, want 200; logs:\n%s", id, typ, code, a.logs)
	}
}

func (a *billingAPI) stored(t *testing.T, id string) *tenants.Workspace {
	t.Helper()
	ws, err := a.db.Workspace(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

func (a *billingAPI) audit(t *testing.T, id string) []tenants.AuditEntry {
	t.Helper()
	log, err := a.db.AuditLog(context.Background(), id, 100)
	if err != nil {
		t.Fatal(err)
	}
	return log
}

// getBilling is the billing object of GET /api/v1/workspace.
func (a *billingAPI) getBilling(t *testing.T, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.URL+"/api/v1/workspace", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	code, body := do(t, req)
	b, ok := body["billing"].(map[string]any)
	if code != 200 || !ok {
		t.Fatalf("GET /api/v1/workspace = %d %v", code, body)
	}
	return b
}

func eachDatabase(t *testing.T, f func(t *testing.T, dbURL string)) {
	for name, url := range map[string]string{"sqlite": storetest.SQLite(t), "postgres": storetest.Postgres(t)} {
		t.Run(name, func(t *testing.T) { f(t, url) })
	}
}

func TestCheckoutPortalAndPackageAgainstStripeMock(t *testing.T) {
	stripeURL := stripetest.URL(t)
	eachDatabase(t, func(t *testing.T, dbURL string) {
		a := mustBillingAPI(t, dbURL, stripeURL)
		id, token := a.workspace(t)

		t.Run("the portal needs a billing account first", func(t *testing.T) {
			if code, body := a.call(t, "/api/v1/workspace/billing/portal", token, ""); code != 409 || body["reason"] != "no_billing_account" {
				t.Fatalf("portal without a customer = %d %v", code, body)
			}
		})
		t.Run("checkout answers a Checkout URL of a subscription for the workspace", func(t *testing.T) {
			code, body := a.call(t, "/api/v1/workspace/billing/checkout", token, `{"plan":"pro"}`)
			if code != 200 || !strings.HasPrefix(body["url"].(string), "https://") {
				t.Fatalf("checkout = %d %v", code, body)
			}
			sessions := a.rec.Requests("POST", "/v1/checkout/sessions")
			if len(sessions) != 1 {
				t.Fatalf("%d Checkout sessions were created, want 1", len(sessions))
			}
			f := sessions[0].Form
			for key, want := range map[string]string{
				"mode": "subscription", "client_reference_id": id, "metadata[workspace_id]": id, "metadata[plan]": "pro",
				"subscription_data[metadata][workspace_id]": id, "line_items[0][price]": proPrice, "customer": a.stored(t, id).Billing.CustomerID,
				"success_url": "https://us.gw.example?billing=subscribed&session_id={CHECKOUT_SESSION_ID}",
				"cancel_url":  "https://us.gw.example?billing=canceled",
			} {
				if got := f.Get(key); got != want || got == "" {
					t.Errorf("Checkout session %s = %q, want %q", key, got, want)
				}
			}
		})
		t.Run("the Stripe customer is created once and reused", func(t *testing.T) {
			if code, body := a.call(t, "/api/v1/workspace/billing/checkout", token, `{"plan":"pro"}`); code != 200 {
				t.Fatalf("second checkout = %d %v", code, body)
			}
			customers := a.rec.Requests("POST", "/v1/customers")
			if len(customers) != 1 || customers[0].Form.Get("metadata[workspace_id]") != id {
				t.Fatalf("customers created: %+v; want one, of this workspace", customers)
			}
			sessions := a.rec.Requests("POST", "/v1/checkout/sessions")
			if len(sessions) != 2 || sessions[1].Form.Get("customer") != sessions[0].Form.Get("customer") {
				t.Fatalf("the second session did not reuse the customer: %+v", sessions)
			}
		})
		t.Run("the portal answers a portal URL for the customer", func(t *testing.T) {
			code, body := a.call(t, "/api/v1/workspace/billing/portal", token, "")
			portal := a.rec.Requests("POST", "/v1/billing_portal/sessions")
			if code != 200 || body["url"] == "" || len(portal) != 1 || portal[0].Form.Get("customer") != a.stored(t, id).Billing.CustomerID {
				t.Fatalf("portal = %d %v (requests %+v)", code, body, portal)
			}
		})
		t.Run("a package is a Checkout payment of its one-time price", func(t *testing.T) {
			code, body := a.call(t, "/api/v1/workspace/billing/package", token, `{"pushes":100000}`)
			if code != 200 || body["url"] == "" {
				t.Fatalf("package = %d %v", code, body)
			}
			sessions := a.rec.Requests("POST", "/v1/checkout/sessions")
			f := sessions[len(sessions)-1].Form
			if f.Get("mode") != "payment" || f.Get("line_items[0][price]") != packagePrice || f.Get("metadata[pushes]") != "100000" ||
				f.Get("payment_intent_data[metadata][workspace_id]") != id || f.Get("client_reference_id") != id {
				t.Fatalf("package session form = %v", f)
			}
		})
		for _, tc := range []struct{ name, path, body, field string }{
			{"a plan not on sale is refused naming the field", "/api/v1/workspace/billing/checkout", `{"plan":"enterprise"}`, "plan"},
			{"free needs no checkout", "/api/v1/workspace/billing/checkout", `{"plan":"free"}`, "plan"},
			{"an unknown plan is refused", "/api/v1/workspace/billing/checkout", `{"plan":"gold"}`, "plan"},
			{"a package size not on sale is refused", "/api/v1/workspace/billing/package", `{"pushes":5}`, "pushes"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if code, body := a.call(t, tc.path, token, tc.body); code != 400 || body["field"] != tc.field {
					t.Fatalf("%s %s = %d %v", tc.path, tc.body, code, body)
				}
			})
		}
		t.Run("a workspace with a live subscription is sent to the portal", func(t *testing.T) {
			a.deliver(t, "evt_live", "customer.subscription.created", time.Now(),
				stripetest.Subscription("sub_live", a.stored(t, id).Billing.CustomerID, id, "active", proPrice, time.Now(), time.Now().AddDate(0, 1, 0)))
			if code, body := a.call(t, "/api/v1/workspace/billing/checkout", token, `{"plan":"pro"}`); code != 409 || body["reason"] != "already_subscribed" {
				t.Fatalf("checkout while subscribed = %d %v", code, body)
			}
		})
	})
}

func TestCheckoutWhileStripeIsUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	a := mustBillingAPI(t, storetest.SQLite(t), closed)
	id, token := a.workspace(t)
	code, body := a.call(t, "/api/v1/workspace/billing/checkout", token, `{"plan":"pro"}`)
	if code != 503 || !strings.Contains(body["error"].(string), "Stripe") {
		t.Fatalf("checkout with Stripe unreachable = %d %v, want 503 naming Stripe", code, body)
	}
	if ws := a.stored(t, id); ws.Billing.CustomerID != "" {
		t.Fatalf("a customer %q was stored though Stripe never answered", ws.Billing.CustomerID)
	}
}

func TestBillingOff(t *testing.T) {
	a := mustAPI(t, storetest.SQLite(t), apiOptions{registrationOpen: true})
	reg, err := a.svc.Register(context.Background(), tenants.RegisterRequest{Name: "Acme", ContactEmail: "ops@acme.example"}, "test", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v1/workspace/billing/checkout", "/api/v1/workspace/billing/portal", "/api/v1/workspace/billing/package", "/webhooks/stripe"} {
		req, _ := http.NewRequest(http.MethodPost, a.URL+path, strings.NewReader(`{"plan":"pro","pushes":1}`))
		req.Header.Set("Authorization", "Bearer "+reg.Token)
		if code, body := do(t, req); code != 404 || body["reason"] != "billing_not_configured" {
			t.Errorf("%s without billing = %d %v, want 404 billing_not_configured", path, code, body)
		}
	}
}

func TestStripeWebhooks(t *testing.T) {
	stripeURL := stripetest.URL(t)
	eachDatabase(t, func(t *testing.T, dbURL string) {
		a := mustBillingAPI(t, dbURL, stripeURL)
		t0 := time.Now().UTC().Truncate(time.Second)
		subscribe := func(t *testing.T) (id, token, customer string) {
			t.Helper()
			id, token = a.workspace(t)
			customer = "cus_" + strings.TrimPrefix(id, "ws_")
			if _, err := a.db.SetStripeCustomer(context.Background(), id, customer); err != nil {
				t.Fatal(err)
			}
			return id, token, customer
		}
		created := stripetest.Subscription // shorthand

		t.Run("a valid subscription event moves the workspace to its plan", func(t *testing.T) {
			id, token, cus := subscribe(t)
			end := t0.AddDate(0, 1, 0)
			a.deliver(t, "evt_valid_"+id, "customer.subscription.created", t0, created("sub_"+id, cus, id, "active", proPrice, t0, end))
			ws := a.stored(t, id)
			if ws.Plan != tenants.PlanPro || ws.MonthlyLimit() != 1_000_000 {
				t.Fatalf("after the event: plan %s, limit %d", ws.Plan, ws.MonthlyLimit())
			}
			b := a.getBilling(t, token)
			if b["plan"] != "pro" || b["status"] != "active" || b["current_period_end"] != end.Format(time.RFC3339) || b["grace_until"] != nil {
				t.Fatalf("billing = %v", b)
			}
			if log := a.audit(t, id); log[0].Source != "stripe" || !strings.Contains(log[0].Detail, "plan=free->pro") {
				t.Fatalf("audit = %+v", log[0])
			}
		})

		for _, tc := range []struct {
			name     string
			payload  func(id, cus string) []byte
			secret   string
			signedAt time.Time
			reason   string
		}{
			{"a bad signature is refused", func(id, cus string) []byte {
				return stripetest.Event(t, "evt_badsig_"+id, "customer.subscription.created", t0, created("sub_"+id, cus, id, "active", proPrice, t0, t0))
			}, "whsec_someone_else", time.Now(), "bad_signature"},
			{"a stale timestamp is refused", func(id, cus string) []byte {
				return stripetest.Event(t, "evt_stale_"+id, "customer.subscription.created", t0, created("sub_"+id, cus, id, "active", proPrice, t0, t0))
			}, stripetest.WebhookSecret, time.Now().Add(-10 * time.Minute), "stale_timestamp"},
			{"an unparseable body is refused", func(string, string) []byte { return []byte(`{"id": "evt_x", "type": `) },
				stripetest.WebhookSecret, time.Now(), "unparseable"},
			{"an object that does not decode is refused", func(id, cus string) []byte {
				return stripetest.Event(t, "evt_shape_"+id, "customer.subscription.updated", t0, map[string]any{"id": "sub_1", "customer": cus, "created": "yesterday"})
			}, stripetest.WebhookSecret, time.Now(), "unparseable"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				id, _, cus := subscribe(t)
				before := len(strings.Split(a.logs.String(), "\n"))
				if code := a.webhook(t, tc.payload(id, cus), tc.secret, tc.signedAt); code != 400 {
					t.Fatalf("answered %d, want 400", code)
				}
				if ws := a.stored(t, id); ws.Plan != tenants.PlanFree || ws.Billing.SubscriptionID != "" {
					t.Fatalf("state changed: %+v", ws)
				}
				lines := strings.Split(a.logs.String(), "\n")[before-1:]
				if n := strings.Count(strings.Join(lines, "\n"), "Stripe webhook refused"); n != 1 || !strings.Contains(strings.Join(lines, "\n"), "reason="+tc.reason) {
					t.Fatalf("logged %d refusals (want 1, reason %s):\n%s", n, tc.reason, strings.Join(lines, "\n"))
				}
			})
		}

		t.Run("an unknown event type is answered 200 and ignored", func(t *testing.T) {
			id, _, cus := subscribe(t)
			a.deliver(t, "evt_unknown_"+id, "customer.discount.created", t0, map[string]any{"id": "di_1", "customer": cus})
			if ws := a.stored(t, id); ws.Plan != tenants.PlanFree || len(a.audit(t, id)) != 1 {
				t.Fatalf("an unknown event changed the workspace: %+v", ws)
			}
		})

		t.Run("a replayed event is answered 200 and has no second effect", func(t *testing.T) {
			id, _, cus := subscribe(t)
			ev := stripetest.Event(t, "evt_replay_"+id, "customer.subscription.created", t0, created("sub_"+id, cus, id, "active", proPrice, t0, t0.AddDate(0, 1, 0)))
			for range 3 {
				if code := a.webhook(t, ev, stripetest.WebhookSecret, time.Now()); code != 200 {
					t.Fatalf("delivery answered %d", code)
				}
			}
			if n := len(a.audit(t, id)); n != 2 {
				t.Fatalf("%d audit entries after three deliveries, want the creation and one event", n)
			}
		})

		t.Run("updated then deleted, arriving in reverse order, ends on free", func(t *testing.T) {
			id, token, cus := subscribe(t)
			sub := "sub_" + id
			a.deliver(t, "evt_c_"+id, "customer.subscription.created", t0, created(sub, cus, id, "active", proPrice, t0, t0.AddDate(0, 1, 0)))
			a.deliver(t, "evt_d_"+id, "customer.subscription.deleted", t0.Add(2*time.Minute), created(sub, cus, id, "canceled", proPrice, t0, t0.AddDate(0, 1, 0)))
			a.deliver(t, "evt_u_"+id, "customer.subscription.updated", t0.Add(time.Minute), created(sub, cus, id, "active", proPrice, t0, t0.AddDate(0, 1, 0)))
			ws := a.stored(t, id)
			if ws.Plan != tenants.PlanFree || ws.Billing.Status != "canceled" {
				t.Fatalf("after deleted, then the older updated: plan %s, status %s", ws.Plan, ws.Billing.Status)
			}
			if b := a.getBilling(t, token); b["plan"] != "free" || b["status"] != "canceled" {
				t.Fatalf("billing = %v", b)
			}
		})

		t.Run("an event of an older subscription does not undo a newer one", func(t *testing.T) {
			id, _, cus := subscribe(t)
			a.deliver(t, "evt_new_"+id, "customer.subscription.created", t0, created("sub_new_"+id, cus, id, "active", proPrice, t0, t0.AddDate(0, 1, 0)))
			a.deliver(t, "evt_old_"+id, "customer.subscription.deleted", t0.Add(time.Minute), created("sub_old_"+id, cus, id, "canceled", proPrice, t0.Add(-time.Hour), t0))
			if ws := a.stored(t, id); ws.Plan != tenants.PlanPro || ws.Billing.SubscriptionID != "sub_new_"+id {
				t.Fatalf("the old subscription's end moved the workspace: plan %s, subscription %s", ws.Plan, ws.Billing.SubscriptionID)
			}
		})

		t.Run("a failed payment keeps the plan for the grace, then falls back to free", func(t *testing.T) {
			id, token, cus := subscribe(t)
			sub := "sub_" + id
			a.deliver(t, "evt_gc_"+id, "customer.subscription.created", t0, created(sub, cus, id, "active", proPrice, t0, t0.AddDate(0, 1, 0)))
			failedAt := t0.Add(time.Hour)
			a.deliver(t, "evt_gf_"+id, "invoice.payment_failed", failedAt, stripetest.Invoice("in_"+id, cus, sub, failedAt))
			a.deliver(t, "evt_gp_"+id, "customer.subscription.updated", failedAt, created(sub, cus, id, "past_due", proPrice, t0, t0.AddDate(0, 1, 0)))
			until := failedAt.Add(grace)
			ws := a.stored(t, id)
			if ws.Plan != tenants.PlanPro || ws.Billing.GraceUntil == nil || !ws.Billing.GraceUntil.Equal(until) {
				t.Fatalf("after the failure: plan %s, grace until %v (want %v)", ws.Plan, ws.Billing.GraceUntil, until)
			}
			if b := a.getBilling(t, token); b["plan"] != "pro" || b["status"] != "past_due" || b["grace_until"] != until.Format(time.RFC3339) {
				t.Fatalf("billing during the grace = %v", b)
			}
			a.clock.Set(until.Add(-time.Second))
			if n, err := a.bill.ExpireGraces(context.Background()); err != nil || n != 0 {
				t.Fatalf("ExpireGraces before the end = %d, %v", n, err)
			}
			a.clock.Set(until)
			defer a.clock.Set(time.Now())
			if n, err := a.bill.ExpireGraces(context.Background()); err != nil || n < 1 {
				t.Fatalf("ExpireGraces at the end = %d, %v", n, err)
			}
			if ws := a.stored(t, id); ws.Plan != tenants.PlanFree || ws.MonthlyLimit() != 10_000 {
				t.Fatalf("after the grace: plan %s, limit %d", ws.Plan, ws.MonthlyLimit())
			}
			if log := a.audit(t, id); log[0].Action != "billing.grace_expired" || log[0].Source != "billing" {
				t.Fatalf("audit = %+v", log[0])
			}
			// A later state of the still unpaid subscription keeps it on free; the payment brings pro back.
			a.deliver(t, "evt_gp2_"+id, "customer.subscription.updated", until.Add(time.Minute), created(sub, cus, id, "past_due", proPrice, t0, t0.AddDate(0, 1, 0)))
			if ws := a.stored(t, id); ws.Plan != tenants.PlanFree {
				t.Fatalf("a past_due update after the grace restored plan %s", ws.Plan)
			}
			a.deliver(t, "evt_gpaid_"+id, "invoice.paid", until.Add(2*time.Minute), stripetest.Invoice("in_"+id, cus, sub, failedAt))
			if ws := a.stored(t, id); ws.Plan != tenants.PlanPro || ws.Billing.GraceUntil != nil {
				t.Fatalf("after the late payment: plan %s, grace %v", ws.Plan, ws.Billing.GraceUntil)
			}
		})

		t.Run("a paid package adds its pushes to this month once", func(t *testing.T) {
			id, token, cus := subscribe(t)
			session := stripetest.CheckoutSession("cs_"+id, cus, "payment", "paid", map[string]string{"workspace_id": id, "kind": "package", "pushes": "100000"})
			a.deliver(t, "evt_pkg1_"+id, "checkout.session.completed", time.Now(), session)
			a.deliver(t, "evt_pkg2_"+id, "checkout.session.async_payment_succeeded", time.Now(), session)
			if ws := a.stored(t, id); ws.MonthlyLimit() != 110_000 {
				t.Fatalf("limit after one package delivered twice = %d, want 110000", ws.MonthlyLimit())
			}
			if b := a.getBilling(t, token); b["package_pushes"] != float64(100_000) {
				t.Fatalf("billing = %v", b)
			}
		})

		t.Run("an unpaid package adds nothing until it is paid", func(t *testing.T) {
			id, _, cus := subscribe(t)
			meta := map[string]string{"workspace_id": id, "kind": "package", "pushes": "100000"}
			a.deliver(t, "evt_unpaid_"+id, "checkout.session.completed", time.Now(), stripetest.CheckoutSession("cs_"+id, cus, "payment", "unpaid", meta))
			if ws := a.stored(t, id); ws.MonthlyLimit() != 10_000 {
				t.Fatalf("an unpaid package counted: limit %d", ws.MonthlyLimit())
			}
			a.deliver(t, "evt_paid_"+id, "checkout.session.async_payment_succeeded", time.Now(), stripetest.CheckoutSession("cs_"+id, cus, "payment", "paid", meta))
			if ws := a.stored(t, id); ws.MonthlyLimit() != 110_000 {
				t.Fatalf("the paid package did not count: limit %d", ws.MonthlyLimit())
			}
		})

		t.Run("an event of a workspace of another region is answered 200", func(t *testing.T) {
			a.deliver(t, "evt_elsewhere", "customer.subscription.created", t0,
				created("sub_elsewhere", "cus_elsewhere", "ws_elsewhere", "active", proPrice, t0, t0))
		})
	})
}

func TestStripeWebhookWhileTheDatabaseIsDown(t *testing.T) {
	a := mustBillingAPI(t, storetest.Postgres(t), stripetest.URL(t))
	id, _ := a.workspace(t)
	a.db.Close()
	ev := stripetest.Event(t, "evt_down", "customer.subscription.created", time.Now(),
		stripetest.Subscription("sub_down", "cus_down", id, "active", proPrice, time.Now(), time.Now()))
	if code := a.webhook(t, ev, stripetest.WebhookSecret, time.Now()); code < 500 {
		t.Fatalf("answered %d with the database down, want 5xx so Stripe retries", code)
	}
}
