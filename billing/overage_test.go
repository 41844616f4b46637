package billing_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/billing"
	"github.com/pushgate/pushgate/billing/stripetest"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
	"github.com/pushgate/pushgate/tenants/storetest"
)

// usageTable is the quota store's count per workspace and month, set by the test.
type usageTable struct {
	mu   sync.Mutex
	used map[tenants.Period]int64
}

func (u *usageTable) set(p tenants.Period, n int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.used[p] = n
}

func (u *usageTable) Usage(_ context.Context, _ string, p tenants.Period) (tenants.Usage, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return tenants.Usage{Period: p, Used: u.used[p]}, nil
}

type overageFixture struct {
	db    *sqlstore.DB
	svc   *tenants.Service
	usage *usageTable
	now   time.Time
	wsID  string
}

// mustMeteredWorkspace returns a workspace that pays for pro, whose overage is metered.
func mustMeteredWorkspace(t *testing.T) *overageFixture {
	t.Helper()
	ctx := context.Background()
	db := sqltest.Migrated(t, storetest.SQLite(t))
	f := &overageFixture{db: db, usage: &usageTable{used: map[tenants.Period]int64{}},
		now: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	f.svc = tenants.NewService(db, tenants.Config{Region: "us", PublicURL: "https://us.gw.example",
		MeteredPlans: map[tenants.Plan]bool{tenants.PlanPro: true}, Now: func() time.Time { return f.now }})
	reg, err := f.svc.Register(ctx, tenants.RegisterRequest{Name: "Metered", ContactEmail: "ops@metered.example"}, "test", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	f.wsID = reg.Workspace.ID
	_, _, err = db.ApplyBillingEvent(ctx, tenants.BillingEvent{ID: "evt_sub", Type: "customer.subscription.created", WorkspaceID: f.wsID, At: f.now},
		func(ws *tenants.Workspace) (*tenants.BillingUpdate, error) {
			return &tenants.BillingUpdate{Plan: tenants.PlanPro, Billing: tenants.Billing{CustomerID: "cus_metered",
				SubscriptionID: "sub_metered", Plan: tenants.PlanPro, Status: "active"},
				Audit: tenants.AuditEntry{Actor: "stripe", Source: "stripe", Action: "billing.plan", CreatedAt: f.now}}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// billing returns billing for the fixture over Stripe at url, recording what it sends.
func (f *overageFixture) billing(t *testing.T, url string) (*billing.Service, *stripetest.Recorder) {
	t.Helper()
	rec := &stripetest.Recorder{}
	b, err := billing.New(billing.Config{WebhookSecret: stripetest.WebhookSecret,
		Plans: map[tenants.Plan]billing.PlanPrice{tenants.PlanPro: {Price: "price_pro", MeteredPrice: "price_pro_overage"}},
		Now:   func() time.Time { return f.now }, Usage: f.usage, Overage: f.db},
		billing.NewStripeClient(stripetest.SecretKey, url, rec.Client(), nil), f.db, f.svc)
	if err != nil {
		t.Fatal(err)
	}
	return b, rec
}

// meterEvents sums the reported values by identifier.
func meterEvents(rec *stripetest.Recorder) map[string]int64 {
	out := map[string]int64{}
	for _, r := range rec.Requests("POST", "/v1/billing/meter_events") {
		v, _ := strconv.ParseInt(r.Form.Get("payload[value]"), 10, 64)
		out[r.Form.Get("identifier")] = v
	}
	return out
}

func (f *overageFixture) batches(t *testing.T, p tenants.Period) (reported, pending int64, n int) {
	t.Helper()
	bs, err := f.db.OverageBatches(context.Background(), f.wsID, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.ReportedAt != nil {
			reported += b.Quantity
		} else {
			pending += b.Quantity
		}
	}
	return reported, pending, len(bs)
}

func TestMeteredOverage(t *testing.T) {
	ctx := context.Background()
	f := mustMeteredWorkspace(t)
	stripeURL := stripetest.URL(t)
	b, rec := f.billing(t, stripeURL)
	dec := tenants.PeriodOf(f.now)
	const included = 1_000_000

	t.Run("the admission limit is unlimited while pro's overage is metered", func(t *testing.T) {
		ws, err := f.svc.Workspace(ctx, f.wsID)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.svc.AdmissionLimit(ws); got != tenants.Unlimited {
			t.Fatalf("admission limit %d, want unlimited", got)
		}
		if got := ws.MonthlyLimit(); got != included {
			t.Fatalf("included %d, want %d", got, included)
		}
		canceled := *ws
		canceled.Billing.Status = "canceled"
		if got := f.svc.AdmissionLimit(&canceled); got != included {
			t.Fatalf("a canceled subscription's admission limit %d, want the included %d", got, included)
		}
	})

	t.Run("nothing is reported within the included amount", func(t *testing.T) {
		f.usage.set(dec, included)
		if n, err := b.ReportOverage(ctx); err != nil || n != 0 {
			t.Fatalf("ReportOverage = %d, %v; want nothing sent", n, err)
		}
	})

	t.Run("overage is reported once, in batches, under one identifier each", func(t *testing.T) {
		f.usage.set(dec, included+120)
		if n, err := b.ReportOverage(ctx); err != nil || n != 1 {
			t.Fatalf("ReportOverage = %d, %v; want one batch", n, err)
		}
		if n, err := b.ReportOverage(ctx); err != nil || n != 0 {
			t.Fatalf("a second run with nothing new = %d, %v; want nothing sent", n, err)
		}
		f.usage.set(dec, included+200)
		if n, err := b.ReportOverage(ctx); err != nil || n != 1 {
			t.Fatalf("ReportOverage = %d, %v; want one more batch", n, err)
		}
		ev := meterEvents(rec)
		want := map[string]int64{"pushgate-" + f.wsID + "-2026-12-1": 120, "pushgate-" + f.wsID + "-2026-12-2": 80}
		if len(ev) != 2 || ev["pushgate-"+f.wsID+"-2026-12-1"] != 120 || ev["pushgate-"+f.wsID+"-2026-12-2"] != 80 {
			t.Fatalf("meter events %v, want %v", ev, want)
		}
	})

	t.Run("a batch Stripe did not take is resent as it was", func(t *testing.T) {
		down, _ := f.billing(t, "http://127.0.0.1:1")
		f.usage.set(dec, included+300)
		if _, err := down.ReportOverage(ctx); tenants.ErrorCode(err) != tenants.CodeUnavailable {
			t.Fatalf("with Stripe unreachable: %v, want unavailable", err)
		}
		if reported, pending, n := f.batches(t, dec); reported != 200 || pending != 100 || n != 3 {
			t.Fatalf("after the failure: %d reported, %d pending in %d batches; want 200, 100, 3", reported, pending, n)
		}
		f.usage.set(dec, included+350) // more overage meanwhile goes into a batch of its own
		if n, err := b.ReportOverage(ctx); err != nil || n != 2 {
			t.Fatalf("ReportOverage = %d, %v; want the pending batch resent and one new", n, err)
		}
		ev := meterEvents(rec)
		if ev["pushgate-"+f.wsID+"-2026-12-3"] != 100 || ev["pushgate-"+f.wsID+"-2026-12-4"] != 50 {
			t.Fatalf("meter events %v, want batch 3 of 100 and batch 4 of 50", ev)
		}
	})

	t.Run("replicas reporting at once send each push exactly once", func(t *testing.T) {
		f.usage.set(dec, included+1350)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				replica, _ := f.billing(t, stripeURL)
				if _, err := replica.ReportOverage(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if reported, pending, n := f.batches(t, dec); reported != 1350 || pending != 0 || n != 5 {
			t.Fatalf("%d reported, %d pending in %d batches; want exactly 1350, 0, 5", reported, pending, n)
		}
	})

	t.Run("the last batch of a month is sent after it ends, dated inside it", func(t *testing.T) {
		f.usage.set(dec, included+1400)
		f.now = time.Date(2027, 1, 1, 0, 0, 30, 0, time.UTC)
		if n, err := b.ReportOverage(ctx); err != nil || n != 1 {
			t.Fatalf("ReportOverage = %d, %v; want December's last batch", n, err)
		}
		reqs := rec.Requests("POST", "/v1/billing/meter_events")
		last := reqs[len(reqs)-1]
		if last.Form.Get("identifier") != "pushgate-"+f.wsID+"-2026-12-6" || last.Form.Get("payload[value]") != "50" {
			t.Fatalf("last meter event %v, want December's batch 6 of 50", last.Form)
		}
		if at, _ := strconv.ParseInt(last.Form.Get("timestamp"), 10, 64); !time.Unix(at, 0).Before(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("December's last batch is dated %v", time.Unix(at, 0).UTC())
		}
	})
}
