package tenants_test

import (
	"testing"

	"github.com/pushgate/pushgate/tenants"
)

func TestPackagesCountInTheirMonthOnly(t *testing.T) {
	custom := int64(500)
	for _, tc := range []struct {
		name string
		ws   tenants.Workspace
		want int64
	}{
		{"a package adds to its month", tenants.Workspace{Plan: tenants.PlanFree, PackagePushes: 100_000, PackagePeriod: "2026-11"}, 110_000},
		{"a package of another month adds nothing", tenants.Workspace{Plan: tenants.PlanFree, PackagePushes: 100_000, PackagePeriod: "2026-10"}, 10_000},
		{"a package adds to a custom limit", tenants.Workspace{Plan: tenants.PlanEnterprise, QuotaLimit: &custom, PackagePushes: 100, PackagePeriod: "2026-11"}, 600},
		{"unlimited stays unlimited", tenants.Workspace{Plan: tenants.PlanEnterprise, PackagePushes: 100, PackagePeriod: "2026-11"}, tenants.Unlimited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.ws.LimitIn("2026-11"); got != tc.want {
				t.Fatalf("LimitIn(2026-11) = %d, want %d", got, tc.want)
			}
		})
	}
}
