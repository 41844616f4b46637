package billing_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/billing"
	"github.com/pushgate/pushgate/billing/stripetest"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
	"github.com/pushgate/pushgate/tenants/storetest"
)

func TestPlanPricesAndPackagesParse(t *testing.T) {
	plans, err := billing.ParsePlanPrices("pro=price_pro, enterprise=price_ent")
	if err != nil || plans[tenants.PlanPro].Price != "price_pro" || plans[tenants.PlanEnterprise].Price != "price_ent" {
		t.Fatalf("ParsePlanPrices = %v, %v", plans, err)
	}
	if err := billing.AddMeteredPrices(plans, "pro=price_pro_overage"); err != nil || plans[tenants.PlanPro].MeteredPrice != "price_pro_overage" {
		t.Fatalf("AddMeteredPrices = %v, %v", plans, err)
	}
	packages, err := billing.ParsePackages("100000=price_100k,1000000=price_1m")
	if err != nil || packages[100_000] != "price_100k" || packages[1_000_000] != "price_1m" {
		t.Fatalf("ParsePackages = %v, %v", packages, err)
	}
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"free has no price", func() error { _, err := billing.ParsePlanPrices("free=price_1"); return err }, "free has no price"},
		{"an unknown plan", func() error { _, err := billing.ParsePlanPrices("gold=price_1"); return err }, `unknown plan "gold"`},
		{"a plan twice", func() error { _, err := billing.ParsePlanPrices("pro=price_1,pro=price_2"); return err }, "twice"},
		{"a product id instead of a price", func() error { _, err := billing.ParsePlanPrices("pro=prod_1"); return err }, "not a Stripe price id"},
		{"a metered price without its plan's price", func() error { return billing.AddMeteredPrices(map[tenants.Plan]billing.PlanPrice{}, "pro=price_1") }, "no recurring price"},
		{"a metered price equal to the recurring one", func() error {
			return billing.AddMeteredPrices(map[tenants.Plan]billing.PlanPrice{tenants.PlanPro: {Price: "price_1"}}, "pro=price_1")
		}, "must differ"},
		{"a package of no pushes", func() error { _, err := billing.ParsePackages("0=price_1"); return err }, "PUSHES=PRICE_ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.err(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func mustService(t testing.TB, stripeURL string) *billing.Service {
	t.Helper()
	db := sqltest.Migrated(t, storetest.SQLite(t))
	svc := tenants.NewService(db, tenants.Config{Region: "us", PublicURL: "https://us.gw.example"})
	b, err := billing.New(billing.Config{WebhookSecret: stripetest.WebhookSecret,
		Plans:    map[tenants.Plan]billing.PlanPrice{tenants.PlanPro: {Price: "price_pro", MeteredPrice: "price_pro_overage"}},
		Packages: map[int64]string{100_000: "price_100k"}, ReturnURL: "https://us.gw.example",
		Usage: sqlstore.NewQuotaStore(db), Overage: db},
		billing.NewStripeClient(stripetest.SecretKey, stripeURL, nil, nil), db, svc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckPricesAsksStripe(t *testing.T) {
	t.Run("prices Stripe has pass", func(t *testing.T) {
		if err := mustService(t, stripetest.URL(t)).CheckPrices(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Stripe unreachable names the price and says unavailable", func(t *testing.T) {
		err := mustService(t, "http://127.0.0.1:1").CheckPrices(context.Background())
		var pe *billing.PriceError
		if !errors.As(err, &pe) || tenants.ErrorCode(pe.Err) != tenants.CodeUnavailable || pe.Price == "" {
			t.Fatalf("CheckPrices = %v, want a PriceError that is unavailable", err)
		}
	})
}

func TestReportUsageAgainstStripeMock(t *testing.T) {
	c := billing.NewStripeClient(stripetest.SecretKey, stripetest.URL(t), nil, nil)
	err := c.ReportUsage(context.Background(), billing.UsageReport{EventName: "pushgate_pushes", CustomerID: "cus_1",
		Value: 10, At: time.Now(), Identifier: "ws_1-2026-11-1"})
	if err != nil {
		t.Fatal(err)
	}
}
