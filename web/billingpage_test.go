package web_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/billing"
	"github.com/pushgate/pushgate/billing/stripetest"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/web"
)

// withStripeMock sells pro and a 100,000-push package through stripe-mock.
func withStripeMock(t *testing.T) func(*web.Deps) {
	url := stripetest.URL(t)
	return func(d *web.Deps) {
		log := slog.New(slog.DiscardHandler)
		bill, err := billing.New(billing.Config{
			WebhookSecret: stripetest.WebhookSecret,
			Plans:         map[tenants.Plan]billing.PlanPrice{tenants.PlanPro: {Price: "price_pro"}},
			Packages:      map[int64]string{100_000: "price_100k"},
			ReturnURL:     "http://gw.test/billing", Log: log, Registerer: prometheus.NewRegistry(),
		}, billing.NewStripeClient(stripetest.SecretKey, url, nil, log), d.Accounts.(*sqlstore.DB), d.Tenants)
		if err != nil {
			t.Fatal(err)
		}
		d.Billing = bill
	}
}

func TestBillingPage(t *testing.T) {
	t.Run("without Stripe settings the page shows the plan and says billing is off", func(t *testing.T) {
		site := mustSite(t, "http://gw.test")
		b, _ := mustOwner(t, site, "No Billing", "owner@nobilling.example")
		status, body := b.get("/billing")
		if status != http.StatusOK {
			t.Fatalf("%d\n%s", status, body)
		}
		mustContain(t, body, `<td id="plan-name"><strong>free</strong>`, "10,000 notifications", `id="billing-off"`, "no subscription")
		mustNotContain(t, body, `action="/billing/checkout"`)
		if status, _, _ := b.postForm("/billing", "/billing/checkout", url.Values{"plan": {"pro"}}); status != http.StatusNotFound {
			t.Fatalf("checkout without billing: %d", status)
		}
	})

	site := mustSite(t, "http://gw.test", withStripeMock(t))
	ctx := context.Background()

	t.Run("a free workspace upgrades through Checkout and then manages its billing in the portal", func(t *testing.T) {
		b, id := mustOwner(t, site, "Upgrader", "owner@upgrader.example")
		resp, err := b.c.Get(site.URL + "/billing")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://checkout.stripe.com https://billing.stripe.com") {
			t.Fatalf("the billing page's forms cannot go on to Stripe: %s", csp)
		}
		_, body := b.get("/billing")
		mustContain(t, body, `id="upgrade-pro"`, `name="pushes" value="100000"`, "100,000 notifications")
		mustNotContain(t, body, `id="manage"`)
		status, body, h := b.postForm("/billing", "/billing/portal", url.Values{})
		if status != http.StatusConflict || !strings.Contains(body, "no billing account yet") {
			t.Fatalf("portal before a customer: %d\n%s", status, body)
		}
		status, _, h = b.postForm("/billing", "/billing/checkout", url.Values{"plan": {"pro"}})
		if status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "https://") {
			t.Fatalf("checkout: %d to %q", status, h.Get("Location"))
		}
		ws, err := site.svc.Workspace(ctx, id)
		if err != nil || ws.Billing.CustomerID == "" {
			t.Fatalf("no Stripe customer after checkout: %+v %v", ws, err)
		}
		_, body = b.get("/billing?billing=subscribed")
		mustContain(t, body, `id="manage"`, "Your plan changes as soon as Stripe confirms")
		status, _, h = b.postForm("/billing", "/billing/portal", url.Values{})
		if status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "https://") {
			t.Fatalf("portal: %d to %q", status, h.Get("Location"))
		}
	})
	t.Run("a package on sale goes to Checkout; another size is 400 under its field", func(t *testing.T) {
		b, _ := mustOwner(t, site, "Packer", "owner@packer.example")
		status, _, h := b.postForm("/billing", "/billing/package", url.Values{"pushes": {"100000"}})
		if status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "https://") {
			t.Fatalf("package: %d to %q", status, h.Get("Location"))
		}
		for _, n := range []string{"5", "lots"} {
			status, body, _ := b.postForm("/billing", "/billing/package", url.Values{"pushes": {n}})
			if status != http.StatusBadRequest {
				t.Fatalf("%s: %d\n%s", n, status, body)
			}
			mustContain(t, body, `id="pushes-error"`)
		}
	})
	t.Run("an unknown plan is 400 under its field", func(t *testing.T) {
		b, _ := mustOwner(t, site, "Planner", "owner@planner.example")
		status, body, _ := b.postForm("/billing", "/billing/checkout", url.Values{"plan": {"platinum"}})
		if status != http.StatusBadRequest {
			t.Fatalf("%d\n%s", status, body)
		}
		mustContain(t, body, `id="plan-error"`)
	})
	t.Run("a failed payment shows the overview's banner", func(t *testing.T) {
		b, id := mustOwner(t, site, "Unpaid", "owner@unpaid.example")
		now := time.Now().UTC()
		grace := now.Add(72 * time.Hour)
		_, _, err := site.db.ApplyBillingEvent(ctx, tenants.BillingEvent{ID: "evt_unpaid", Type: "invoice.payment_failed", WorkspaceID: id, At: now},
			func(ws *tenants.Workspace) (*tenants.BillingUpdate, error) {
				return &tenants.BillingUpdate{Billing: tenants.Billing{Status: "past_due", GraceUntil: &grace},
					Audit: tenants.AuditEntry{Actor: "stripe", Action: "billing.payment_failed", WorkspaceID: id, CreatedAt: now}}, nil
			})
		if err != nil {
			t.Fatal(err)
		}
		_, body := b.get("/billing")
		mustContain(t, body, `id="payment-failed"`, grace.Format("2 January 2006"), "a payment failed; Stripe retries it")
	})
	t.Run("a form without its CSRF token is refused and reaches no Stripe", func(t *testing.T) {
		b, id := mustOwner(t, site, "Forged", "owner@forged.example")
		if status, _, _ := b.post("/billing/checkout", url.Values{"plan": {"pro"}}); status != http.StatusForbidden {
			t.Fatalf("%d", status)
		}
		if ws, _ := site.svc.Workspace(ctx, id); ws.Billing.CustomerID != "" {
			t.Fatal("a forged form created a Stripe customer")
		}
	})
	t.Run("the default upgrade_url of over-quota errors leads to the billing page", func(t *testing.T) {
		resp, err := site.newBrowser(t).c.Get(site.URL + "/upgrade")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if status, h := resp.StatusCode, resp.Header; status != http.StatusSeeOther || h.Get("Location") != "/billing" {
			t.Fatalf("%d to %q", status, h.Get("Location"))
		}
	})
	t.Run("the page needs a signed-in owner", func(t *testing.T) {
		if status, _ := site.newBrowser(t).get("/billing"); status != http.StatusSeeOther {
			t.Fatalf("%d", status)
		}
	})
}
