package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/pushgate/pushgate/tenants"
)

// UsageHistory reads archived months of a workspace, newest first.
type UsageHistory interface {
	UsageHistory(ctx context.Context, workspaceID string, months int) ([]tenants.Usage, error)
}

type usageJSON struct {
	Period    tenants.Period `json:"period"`
	Limit     *int64         `json:"limit"` // null: unlimited
	Used      int64          `json:"used"`
	Remaining *int64         `json:"remaining"`
	// Overage is what was sent over the limit, billed as metered overage.
	Overage  int64                `json:"overage,omitempty"`
	ResetsAt time.Time            `json:"resets_at"`
	Daily    []tenants.DailyUsage `json:"daily"`
	History  []monthJSON          `json:"history,omitempty"`
}

type monthJSON struct {
	Period tenants.Period `json:"period"`
	Used   int64          `json:"used"`
}

// handleUsage answers GET /api/v1/workspace/usage: this month's count,
// limit and days, and the months before it.
func handleUsage(quotas tenants.QuotaStore, history UsageHistory, now func() time.Time, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := principalFrom(r.Context())
		period := tenants.PeriodOf(now())
		u, err := quotas.Usage(r.Context(), p.Workspace.ID, period)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		out := usageJSON{Period: period, Used: u.Used, ResetsAt: period.End(), Daily: u.Daily}
		if out.Daily == nil {
			out.Daily = []tenants.DailyUsage{}
		}
		if limit := p.Workspace.MonthlyLimit(); limit != tenants.Unlimited {
			remaining := max(limit-u.Used, 0)
			out.Limit, out.Remaining, out.Overage = &limit, &remaining, max(u.Used-limit, 0)
		}
		if history != nil {
			months, err := history.UsageHistory(r.Context(), p.Workspace.ID, 12)
			if err != nil {
				writeAPIError(w, r, log, err)
				return
			}
			for _, m := range months {
				if m.Period != period {
					out.History = append(out.History, monthJSON{Period: m.Period, Used: m.Used})
				}
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
}
