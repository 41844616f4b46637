package billing

import (
	"slices"

	"github.com/pushgate/pushgate/tenants"
)

// Offer is what this gateway sells through self-service, for the dashboard.
type Offer struct {
	// Plans are the plans on sale through Checkout, in plan order.
	Plans []tenants.Plan
	// Metered lists the plans whose pushes over the included amount are billed.
	Metered map[tenants.Plan]bool
	// Packages are the push package sizes on sale, smallest first.
	Packages []int64
}

// Offer returns the plans and packages on sale.
func (s *Service) Offer() Offer {
	o := Offer{Metered: map[tenants.Plan]bool{}}
	for _, p := range []tenants.Plan{tenants.PlanPro, tenants.PlanEnterprise} {
		if pp, ok := s.cfg.Plans[p]; ok {
			o.Plans = append(o.Plans, p)
			o.Metered[p] = pp.MeteredPrice != ""
		}
	}
	for n := range s.cfg.Packages {
		o.Packages = append(o.Packages, n)
	}
	slices.Sort(o.Packages)
	return o
}

// Subscribed reports whether a workspace pays for a subscription that is
// still alive, so that it changes plans in the portal, not through Checkout.
func Subscribed(b tenants.Billing) bool { return subscribed(b) }
