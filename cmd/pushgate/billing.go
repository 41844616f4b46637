package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/billing"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
)

// billingSettings are the billing settings as validate derived them; on is
// false when no Stripe secret key is set, and then nothing else is used.
type billingSettings struct {
	on        bool
	plans     map[tenants.Plan]billing.PlanPrice
	packages  map[int64]string
	grace     time.Duration
	returnURL string
	// metered is set when some plan bills its overage.
	metered bool
}

// meteredPlans are the plans whose overage is billed instead of refused.
func (b billingSettings) meteredPlans() map[tenants.Plan]bool {
	out := map[tenants.Plan]bool{}
	for plan, pp := range b.plans {
		if b.on && pp.MeteredPrice != "" {
			out[plan] = true
		}
	}
	return out
}

// validateBilling checks the Stripe settings: all of key, webhook secret
// and pro's price, or none of them.
func (c *config) validateBilling(bad func(key, format string, args ...any) error) error {
	var err error
	b := &c.billing
	if b.grace, err = time.ParseDuration(c.BillingGrace); err != nil || b.grace < 0 {
		return bad("billing_grace", "expected a duration such as 168h (7 days), got %q", c.BillingGrace)
	}
	b.returnURL = c.BillingReturn
	if b.returnURL == "" {
		b.returnURL = strings.TrimRight(c.PublicURL, "/")
	}
	if err := checkHTTPURL(b.returnURL); err != nil {
		return bad("billing_return_url", "%v", err)
	}
	if b.plans, err = billing.ParsePlanPrices(c.StripePrices); err != nil {
		return bad("stripe_prices", "%v", err)
	}
	if err := billing.AddMeteredPrices(b.plans, c.StripeMetered); err != nil {
		return bad("stripe_metered_prices", "%v", err)
	}
	if b.packages, err = billing.ParsePackages(c.StripePackages); err != nil {
		return bad("stripe_packages", "%v", err)
	}
	if c.StripeSecretKey == "" {
		for key, v := range map[string]string{"stripe_webhook_secret": c.StripeWebhook, "stripe_prices": c.StripePrices,
			"stripe_metered_prices": c.StripeMetered, "stripe_packages": c.StripePackages} {
			if v != "" {
				return bad("stripe_secret_key", "is required when %s is set (billing is off without it)", key)
			}
		}
		return nil
	}
	if !strings.HasPrefix(c.StripeSecretKey, "sk_") && !strings.HasPrefix(c.StripeSecretKey, "rk_") {
		return bad("stripe_secret_key", "expected a Stripe secret or restricted key (sk_… or rk_…)")
	}
	if !strings.HasPrefix(c.StripeWebhook, "whsec_") {
		return bad("stripe_webhook_secret", "expected the webhook endpoint's signing secret (whsec_…): billing needs Stripe's webhooks")
	}
	if _, ok := b.plans[tenants.PlanPro]; !ok {
		return bad("stripe_prices", "expected at least the price of plan pro, as in pro=price_1Abc, got %q", c.StripePrices)
	}
	b.on = true
	b.metered = len(b.meteredPlans()) > 0
	return nil
}

// priceSettings maps a billing.PriceError's kind to the setting that names the price.
var priceSettings = map[string]string{"plan": "stripe_prices", "metered": "stripe_metered_prices", "package": "stripe_packages"}

// openBilling builds billing when it is configured, and checks every
// configured price with Stripe: one Stripe does not have stops serve naming
// its setting; Stripe being unreachable is only a warning.
func openBilling(ctx context.Context, cfg config, db *sqlstore.DB, svc *tenants.Service, usage billing.UsageSource, log *slog.Logger, reg prometheus.Registerer) (*billing.Service, error) {
	if !cfg.billing.on {
		return nil, nil
	}
	blog := log.With("component", "billing")
	b, err := billing.New(billing.Config{
		WebhookSecret: cfg.StripeWebhook, Plans: cfg.billing.plans, Packages: cfg.billing.packages,
		Grace: cfg.billing.grace, ReturnURL: cfg.billing.returnURL, Log: blog, Registerer: reg,
		MeterEvent: cfg.StripeMeterEvent, Usage: usage, Overage: db,
	}, billing.NewStripeClient(cfg.StripeSecretKey, cfg.StripeAPIURL, nil, blog), db, svc)
	if err != nil {
		return nil, err
	}
	checkCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err = b.CheckPrices(checkCtx)
	var pe *billing.PriceError
	switch {
	case err == nil:
		return b, nil
	case errors.As(err, &pe) && tenants.ErrorCode(pe.Err) == tenants.CodeUnavailable:
		blog.Warn("could not check the configured Stripe prices; Checkout fails until Stripe answers", "err", pe)
		return b, nil
	case errors.As(err, &pe) && tenants.ErrorCode(pe.Err) == tenants.CodeUnauthorized:
		return nil, fmt.Errorf("config: PUSHGATE_STRIPE_SECRET_KEY (stripe_secret_key): %v", pe.Err)
	case errors.As(err, &pe):
		key := priceSettings[pe.Kind]
		env := ""
		for _, s := range settings() {
			if s.key == key {
				env = s.env
			}
		}
		return nil, fmt.Errorf("config: %s (%s): %s %s: %s: %v", env, key, pe.Kind, pe.Key, pe.Price, pe.Err)
	}
	return nil, fmt.Errorf("checking the Stripe prices: %w", err)
}
