package sqlstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
)

func stripeAudit(action string) tenants.AuditEntry {
	return tenants.AuditEntry{Actor: "stripe", Action: action, Source: "stripe", CreatedAt: base}
}

func mustCustomer(t *testing.T, db *sqlstore.DB, id, customer string) {
	t.Helper()
	got, err := db.SetStripeCustomer(context.Background(), id, customer)
	if err != nil || got != customer {
		t.Fatalf("SetStripeCustomer(%s, %s) = %q, %v", id, customer, got, err)
	}
}

func TestBillingEvents(t *testing.T) {
	ctx := context.Background()
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		mustCreate(t, db, "ws_billing", "pgw_us_billingtoken", base)
		mustCustomer(t, db, "ws_billing", "cus_A")
		toPro := func(ws *tenants.Workspace) (*tenants.BillingUpdate, error) {
			b := ws.Billing
			b.SubscriptionID, b.Plan, b.Status = "sub_1", tenants.PlanPro, "active"
			end := base.AddDate(0, 1, 0)
			b.CurrentPeriodEnd = &end
			return &tenants.BillingUpdate{Billing: b, Plan: tenants.PlanPro, Audit: stripeAudit("billing.subscription_created")}, nil
		}

		t.Run("a failed effect leaves the event unrecorded, so Stripe's retry applies it", func(t *testing.T) {
			ev := tenants.BillingEvent{ID: "evt_1", Type: "customer.subscription.created", CustomerID: "cus_A", At: base}
			_, _, err := db.ApplyBillingEvent(ctx, ev, func(*tenants.Workspace) (*tenants.BillingUpdate, error) {
				return nil, errors.New("database went away")
			})
			if err == nil {
				t.Fatal("the failing decision was not reported")
			}
			ws, outcome, err := db.ApplyBillingEvent(ctx, ev, toPro)
			if err != nil || outcome != tenants.BillingApplied || ws.Plan != tenants.PlanPro {
				t.Fatalf("retry = %v, %v, %+v", outcome, err, ws)
			}
			if ws.Billing.CustomerID != "cus_A" || ws.Billing.Status != "active" || ws.Billing.CurrentPeriodEnd == nil || ws.MonthlyLimit() != 1_000_000 {
				t.Fatalf("billing state after the event = %+v, limit %d", ws.Billing, ws.MonthlyLimit())
			}
		})

		t.Run("a replayed event is not decided again", func(t *testing.T) {
			called := false
			_, outcome, err := db.ApplyBillingEvent(ctx, tenants.BillingEvent{ID: "evt_1", Type: "customer.subscription.created", CustomerID: "cus_A", At: base},
				func(*tenants.Workspace) (*tenants.BillingUpdate, error) { called = true; return nil, nil })
			if err != nil || outcome != tenants.BillingReplayed || called {
				t.Fatalf("replay = %v, %v (decide called: %v)", outcome, err, called)
			}
		})

		t.Run("the plan change is audited with its source", func(t *testing.T) {
			log, err := db.AuditLog(ctx, "ws_billing", 1)
			if err != nil || len(log) != 1 || log[0].Source != "stripe" || log[0].Action != "billing.subscription_created" {
				t.Fatalf("audit = %+v, %v", log, err)
			}
		})

		t.Run("an operator's change gets the actor's prefix as its source", func(t *testing.T) {
			free := tenants.PlanFree
			none := (*int64)(nil)
			if _, err := db.UpdateWorkspace(ctx, "ws_billing", tenants.WorkspaceChange{Plan: &free, QuotaLimit: &none},
				tenants.AuditEntry{Actor: "operator:cli:ann", Action: "workspace.set_plan"}); err != nil {
				t.Fatal(err)
			}
			log, _ := db.AuditLog(ctx, "ws_billing", 1)
			if len(log) != 1 || log[0].Source != "operator" {
				t.Fatalf("audit = %+v", log)
			}
		})

		t.Run("an unknown customer without our metadata belongs to no workspace here", func(t *testing.T) {
			_, outcome, err := db.ApplyBillingEvent(ctx, tenants.BillingEvent{ID: "evt_other", Type: "invoice.paid", CustomerID: "cus_elsewhere", At: base}, toPro)
			if err != nil || outcome != tenants.BillingNotHere {
				t.Fatalf("outcome = %v, %v", outcome, err)
			}
		})

		t.Run("a customer held by another workspace is refused", func(t *testing.T) {
			mustCreate(t, db, "ws_second", "pgw_us_secondtoken", base)
			if _, err := db.SetStripeCustomer(ctx, "ws_second", "cus_A"); tenants.ErrorCode(err) != tenants.CodeConflict {
				t.Fatalf("SetStripeCustomer of a taken customer = %v, want a conflict", err)
			}
			if got, err := db.SetStripeCustomer(ctx, "ws_billing", "cus_B"); err != nil || got != "cus_A" {
				t.Fatalf("a second customer replaced the first: %q, %v", got, err)
			}
		})
	})
}

func TestPushPackages(t *testing.T) {
	ctx := context.Background()
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		mustCreate(t, db, "ws_pkg", "pgw_us_packagetoken", base)
		buy := func(event, session string, pushes int64, p tenants.Period) (*tenants.Workspace, tenants.BillingOutcome) {
			t.Helper()
			ws, outcome, err := db.ApplyBillingEvent(ctx, tenants.BillingEvent{ID: event, Type: "checkout.session.completed", WorkspaceID: "ws_pkg", At: base},
				func(ws *tenants.Workspace) (*tenants.BillingUpdate, error) {
					return &tenants.BillingUpdate{Billing: ws.Billing, Audit: stripeAudit("billing.package"),
						Package: &tenants.Package{CheckoutSessionID: session, Pushes: pushes, Period: p}}, nil
				})
			if err != nil {
				t.Fatal(err)
			}
			return ws, outcome
		}
		march, april := tenants.Period("2025-03"), tenants.Period("2025-04")

		ws, outcome := buy("evt_p1", "cs_1", 100_000, march)
		if outcome != tenants.BillingApplied || ws.LimitIn(march) != 110_000 || ws.LimitIn(april) != 10_000 {
			t.Fatalf("after one package: %v, limit %d in March and %d in April", outcome, ws.LimitIn(march), ws.LimitIn(april))
		}
		if ws, outcome = buy("evt_p2", "cs_1", 100_000, march); outcome != tenants.BillingUnchanged || ws.LimitIn(march) != 110_000 {
			t.Fatalf("the same session under another event id: %v, limit %d; want it counted once", outcome, ws.LimitIn(march))
		}
		if ws, _ = buy("evt_p3", "cs_2", 50_000, march); ws.LimitIn(march) != 160_000 {
			t.Fatalf("a second package in March: limit %d, want 160000", ws.LimitIn(march))
		}
		if ws, _ = buy("evt_p4", "cs_3", 1_000, april); ws.LimitIn(april) != 11_000 || ws.LimitIn(march) != 10_000 {
			t.Fatalf("a package of a new month: limits %d (April) %d (March)", ws.LimitIn(april), ws.LimitIn(march))
		}
		if ws, _ = buy("evt_p5", "cs_4", 7, march); ws.LimitIn(april) != 11_000 {
			t.Fatalf("a late package of an earlier month changed this month's limit: %d", ws.LimitIn(april))
		}
		got, err := db.Packages(ctx, "ws_pkg")
		if err != nil || len(got) != 4 {
			t.Fatalf("Packages = %+v, %v; want the four sessions", got, err)
		}
		read, err := db.Workspace(ctx, "ws_pkg")
		if err != nil || read.PackagePeriod != april || read.PackagePushes != 1_000 {
			t.Fatalf("read back: %v %+v", err, read)
		}
	})
}

func TestEndGrace(t *testing.T) {
	ctx := context.Background()
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		grace := base.Add(7 * 24 * time.Hour)
		setup := func(id string, plan tenants.Plan) {
			mustCreate(t, db, id, "pgw_us_"+id+"_token", base)
			_, _, err := db.ApplyBillingEvent(ctx, tenants.BillingEvent{ID: "evt_" + id, Type: "invoice.payment_failed", WorkspaceID: id, At: base},
				func(ws *tenants.Workspace) (*tenants.BillingUpdate, error) {
					b := tenants.Billing{SubscriptionID: "sub_" + id, Plan: tenants.PlanPro, Status: "past_due", GraceUntil: &grace}
					return &tenants.BillingUpdate{Billing: b, Plan: plan, Audit: stripeAudit("billing.payment_failed")}, nil
				})
			if err != nil {
				t.Fatal(err)
			}
		}
		setup("ws_paid", tenants.PlanPro)
		setup("ws_deal", tenants.PlanEnterprise) // an operator's plan beside a failing subscription

		if ids, err := db.GraceExpired(ctx, grace.Add(-time.Second)); err != nil || len(ids) != 0 {
			t.Fatalf("before the grace ends: %v, %v", ids, err)
		}
		ids, err := db.GraceExpired(ctx, grace)
		if err != nil || len(ids) != 2 {
			t.Fatalf("when the grace ends: %v, %v", ids, err)
		}
		audit := tenants.AuditEntry{Actor: "billing", Action: "billing.grace_expired", Source: "billing"}
		ws, ended, err := db.EndGrace(ctx, "ws_paid", grace, audit)
		if err != nil || !ended || ws.Plan != tenants.PlanFree || !ws.Billing.GraceEnded {
			t.Fatalf("EndGrace = %+v, %v, %v", ws, ended, err)
		}
		if _, again, err := db.EndGrace(ctx, "ws_paid", grace, audit); err != nil || again {
			t.Fatalf("a second EndGrace = %v, %v; want nothing to do", again, err)
		}
		if ws, _, _ := db.EndGrace(ctx, "ws_deal", grace, audit); ws.Plan != tenants.PlanEnterprise {
			t.Fatalf("the operator's plan became %s", ws.Plan)
		}
		if ids, _ := db.GraceExpired(ctx, grace.Add(time.Hour)); len(ids) != 0 {
			t.Fatalf("ended graces are listed again: %v", ids)
		}
		log, _ := db.AuditLog(ctx, "ws_paid", 1)
		if len(log) != 1 || log[0].Source != "billing" || log[0].Action != "billing.grace_expired" {
			t.Fatalf("audit = %+v", log)
		}
	})
}
