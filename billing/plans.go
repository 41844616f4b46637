// Package billing sells plans and push packages through Stripe: the plans
// as configuration, the Stripe interface and its stripe-go implementation,
// Checkout and the customer portal, and the signed webhooks that change a
// workspace's plan. It routes no HTTP of its own; package api mounts it.
package billing

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/pushgate/pushgate/tenants"
)

// PlanPrice is what a paid plan costs in Stripe.
type PlanPrice struct {
	// Price is the recurring price of the plan's subscription.
	Price string
	// MeteredPrice, when set, bills pushes over the plan's included amount (metered overage).
	MeteredPrice string
}

// priceID is the shape of a Stripe price id.
var priceID = regexp.MustCompile(`^price_[A-Za-z0-9_]{1,200}$`)

func checkPriceID(id string) error {
	if !priceID.MatchString(id) {
		return fmt.Errorf("%q is not a Stripe price id (price_…)", id)
	}
	return nil
}

// ParsePlanPrices reads "pro=price_…,enterprise=price_…": the recurring
// price of each plan sold through Checkout. free has none.
func ParsePlanPrices(raw string) (map[tenants.Plan]PlanPrice, error) {
	out := map[tenants.Plan]PlanPrice{}
	if strings.TrimSpace(raw) == "" {
		return out, nil
	}
	for _, item := range strings.Split(raw, ",") {
		plan, price, ok := strings.Cut(strings.TrimSpace(item), "=")
		p := tenants.Plan(plan)
		switch {
		case !ok:
			return nil, fmt.Errorf("expected PLAN=PRICE_ID such as pro=price_1Abc, got %q", item)
		case p == tenants.PlanFree:
			return nil, fmt.Errorf("free has no price; list the paid plans only")
		case !p.Valid():
			return nil, fmt.Errorf("unknown plan %q: the paid plans are pro and enterprise", plan)
		}
		if _, dup := out[p]; dup {
			return nil, fmt.Errorf("plan %s is listed twice", p)
		}
		if err := checkPriceID(price); err != nil {
			return nil, fmt.Errorf("plan %s: %v", p, err)
		}
		out[p] = PlanPrice{Price: price}
	}
	return out, nil
}

// AddMeteredPrices reads "pro=price_…" into plans: the metered price that
// bills a plan's overage. Every plan named must have its recurring price.
func AddMeteredPrices(plans map[tenants.Plan]PlanPrice, raw string) error {
	if strings.TrimSpace(raw) == "" {
		return nil
	}
	for _, item := range strings.Split(raw, ",") {
		plan, price, ok := strings.Cut(strings.TrimSpace(item), "=")
		pp, known := plans[tenants.Plan(plan)]
		switch {
		case !ok:
			return fmt.Errorf("expected PLAN=PRICE_ID such as pro=price_1Abc, got %q", item)
		case !known:
			return fmt.Errorf("plan %q has no recurring price in stripe_prices, so it cannot have a metered one", plan)
		case pp.MeteredPrice != "":
			return fmt.Errorf("plan %s is listed twice", plan)
		}
		if err := checkPriceID(price); err != nil {
			return fmt.Errorf("plan %s: %v", plan, err)
		}
		if price == pp.Price {
			return fmt.Errorf("plan %s: the metered price must differ from its recurring price", plan)
		}
		pp.MeteredPrice = price
		plans[tenants.Plan(plan)] = pp
	}
	return nil
}

// ParsePackages reads "100000=price_…,1000000=price_…": the push packages
// on sale, each a number of pushes and its one-time price.
func ParsePackages(raw string) (map[int64]string, error) {
	out := map[int64]string{}
	if strings.TrimSpace(raw) == "" {
		return out, nil
	}
	for _, item := range strings.Split(raw, ",") {
		size, price, ok := strings.Cut(strings.TrimSpace(item), "=")
		n, err := strconv.ParseInt(size, 10, 64)
		if !ok || err != nil || n < 1 {
			return nil, fmt.Errorf("expected PUSHES=PRICE_ID such as 100000=price_1Abc, got %q", item)
		}
		if _, dup := out[n]; dup {
			return nil, fmt.Errorf("a package of %d pushes is listed twice", n)
		}
		if err := checkPriceID(price); err != nil {
			return nil, fmt.Errorf("package of %d pushes: %v", n, err)
		}
		out[n] = price
	}
	return out, nil
}

// planOfPrice maps a subscription's prices to the plan they pay for, "" when none is configured.
func (c *Config) planOfPrice(prices []string) tenants.Plan {
	for _, id := range prices {
		for plan, pp := range c.Plans {
			if pp.Price == id {
				return plan
			}
		}
	}
	return ""
}

// planNames lists the plans on sale, for error messages.
func (c *Config) planNames() string {
	var names []string
	for p := range c.Plans {
		names = append(names, string(p))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// packageSizes lists the package sizes on sale, for error messages.
func (c *Config) packageSizes() string {
	var sizes []int64
	for n := range c.Packages {
		sizes = append(sizes, n)
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
	parts := make([]string, len(sizes))
	for i, n := range sizes {
		parts[i] = strconv.FormatInt(n, 10)
	}
	return strings.Join(parts, ", ")
}
