package api_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/pushgate/pushgate/billing"
	"github.com/pushgate/pushgate/billing/stripetest"
	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/storetest"
)

// TestOverIncludedPushesAreDeliveredAndBilledOnce sends 10 pushes over a
// metered workspace's included amount and reports them in two cycles, the
// first of which Stripe does not take.
func TestOverIncludedPushesAreDeliveredAndBilledOnce(t *testing.T) {
	ctx := context.Background()
	stripeURL := stripetest.URL(t)
	apps, sb := mustSandboxApps(t, gateway.Options{})
	var quotas tenants.QuotaStore
	a := mustAPI(t, storetest.SQLite(t), apiOptions{registrationOpen: true, apps: apps,
		meteredPlans: map[tenants.Plan]bool{tenants.PlanEnterprise: true},
		quotas:       func(q tenants.QuotaStore) tenants.QuotaStore { quotas = q; return q }})
	id, tok := a.mustRegister(t, "Metered", true)

	// An enterprise deal of 5 pushes a month, paid through Stripe with metered overage.
	const included, over = 5, 10
	plan, limit := tenants.PlanEnterprise, new(int64)
	*limit = included
	if _, err := a.svc.Update(ctx, id, "ops", "set-plan", tenants.WorkspaceChange{Plan: &plan, QuotaLimit: &limit}); err != nil {
		t.Fatal(err)
	}
	ws, _, err := a.db.ApplyBillingEvent(ctx, tenants.BillingEvent{ID: "evt_sub", Type: "customer.subscription.created", WorkspaceID: id, At: time.Now()},
		func(*tenants.Workspace) (*tenants.BillingUpdate, error) {
			return &tenants.BillingUpdate{Billing: tenants.Billing{CustomerID: "cus_metered", SubscriptionID: "sub_metered",
				Plan: tenants.PlanEnterprise, Status: "active"},
				Audit: tenants.AuditEntry{Actor: "stripe", Source: "stripe", Action: "billing.subscription", CreatedAt: time.Now()}}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	a.svc.PublishWorkspace(ctx, ws)

	for i := range included + over {
		if code, body := a.mmPush(t, ctx, tok, "over"+strconv.Itoa(i)); code != http.StatusOK {
			t.Fatalf("push %d over a metered plan: %d %s", i+1, code, body)
		}
	}
	if got := sb.Stats().APNs.ByReason["delivered"]; got != included+over {
		t.Fatalf("the provider got %d pushes, want %d", got, included+over)
	}
	code, usage := a.call(t, "GET", "/api/v1/workspace/usage", tok, "")
	if code != http.StatusOK || usage["used"] != float64(included+over) || usage["overage"] != float64(over) {
		t.Fatalf("usage = %d %v, want used %d with overage %d", code, usage, included+over, over)
	}

	newBilling := func(url string) (*billing.Service, *stripetest.Recorder) {
		rec := &stripetest.Recorder{}
		b, err := billing.New(billing.Config{WebhookSecret: stripetest.WebhookSecret,
			Plans: map[tenants.Plan]billing.PlanPrice{
				tenants.PlanPro:        {Price: "price_pro"},
				tenants.PlanEnterprise: {Price: "price_ent", MeteredPrice: "price_ent_overage"}},
			Usage: quotas, Overage: a.db}, billing.NewStripeClient(stripetest.SecretKey, url, rec.Client(), nil), a.db, a.svc)
		if err != nil {
			t.Fatal(err)
		}
		return b, rec
	}
	down, _ := newBilling("http://127.0.0.1:1")
	if _, err := down.ReportOverage(ctx); tenants.ErrorCode(err) != tenants.CodeUnavailable {
		t.Fatalf("the first cycle, Stripe unreachable: %v", err)
	}
	up, rec := newBilling(stripeURL)
	for cycle := range 2 {
		if _, err := up.ReportOverage(ctx); err != nil {
			t.Fatalf("cycle %d: %v", cycle+2, err)
		}
	}
	var units int64
	for _, r := range rec.Requests("POST", "/v1/billing/meter_events") {
		n, _ := strconv.ParseInt(r.Form.Get("payload[value]"), 10, 64)
		units += n
	}
	batches, err := a.db.OverageBatches(ctx, id, tenants.PeriodOf(time.Now()))
	var reported, pending int64
	for _, b := range batches {
		if b.ReportedAt != nil {
			reported += b.Quantity
		} else {
			pending += b.Quantity
		}
	}
	if units != over || reported != over || pending != 0 || err != nil {
		t.Fatalf("reported %d units to Stripe, %d recorded as reported, %d pending (%v); want exactly %d", units, reported, pending, err, over)
	}
}
