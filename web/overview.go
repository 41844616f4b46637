package web

import (
	"context"
	"net/http"
	"time"

	"github.com/pushgate/pushgate/api/clientaddr"
	"github.com/pushgate/pushgate/tenants"
)

type overviewData struct {
	Workspace   tenants.Workspace
	PeriodLabel string
	Used        int64
	Limit       int64
	Unlimited   bool
	Percent     int64 // of the limit, capped at 100
	BarWidth    int64 // of the quota bar's 1000 units
	OverQuota   bool
	NearQuota   bool
	ResetsAt    time.Time
	Chart       dailyChart
	History     []monthRow
	Terms       tenants.TermsState
	// PaymentGraceUntil is set while a failed payment keeps the plan until then.
	PaymentGraceUntil *time.Time
	Rates             deliveryRates
	Events            []quotaEventRow
}

type monthRow struct {
	Label string
	Used  int64
	Width int // of 100
}

// twelveMonths is this month (current, read live) and up to 11 archived
// months before it, newest first, each with its bar's width against the largest.
func (dash *Dashboard) twelveMonths(ctx context.Context, workspaceID string, period tenants.Period, current tenants.Usage) ([]monthRow, error) {
	months := []tenants.Usage{current}
	if dash.d.History != nil {
		past, err := dash.d.History.UsageHistory(ctx, workspaceID, 12)
		if err != nil {
			return nil, err
		}
		for _, m := range past {
			if m.Period != period && len(months) < 12 {
				months = append(months, m)
			}
		}
	}
	var top int64
	for _, m := range months {
		top = max(top, m.Used)
	}
	rows := make([]monthRow, 0, len(months))
	for _, m := range months {
		row := monthRow{Label: m.Period.Start().Format("January 2006"), Used: m.Used}
		if top > 0 {
			row.Width = int(m.Used * 100 / top)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// Overview shows this month's usage against the quota, its days, the months
// before it, and what needs the owner's attention.
func (dash *Dashboard) Overview() http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		ctx := r.Context()
		now := dash.d.Now().UTC()
		period := tenants.PeriodOf(now)
		u, err := dash.d.Quotas.Usage(ctx, p.Workspace.ID, period)
		if err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		terms, err := dash.d.Tenants.TermsState(ctx, p)
		if err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		ws := p.Workspace
		o := overviewData{Workspace: ws, PeriodLabel: period.Start().Format("January 2006"), Used: u.Used,
			ResetsAt: period.End(), Chart: newDailyChart(period, u.Daily), Terms: terms}
		o.Limit = ws.LimitIn(period)
		o.Unlimited = o.Limit == tenants.Unlimited
		if !o.Unlimited {
			if o.Limit > 0 {
				o.Percent = min(u.Used*100/o.Limit, 100)
			} else {
				o.Percent = 100
			}
			o.BarWidth = min(u.Used*1000/max(o.Limit, 1), 1000)
			if u.Used > 0 {
				o.BarWidth = max(o.BarWidth, 6) // a first push shows on the bar
			}
			o.OverQuota = u.Used >= o.Limit
			o.NearQuota = !o.OverQuota && o.Percent >= 80
		}
		if g := ws.Billing.GraceUntil; g != nil && g.After(now) {
			o.PaymentGraceUntil = g
		}
		o.Rates = ratesOf(u.Daily)
		if dash.d.QuotaEvents != nil {
			if o.Events, err = dash.quotaEvents(ctx, ws.ID); err != nil {
				dash.fail(w, r, "", view{}, err)
				return
			}
		}
		if o.History, err = dash.twelveMonths(ctx, ws.ID, period, u); err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		v := view{Title: "Overview", Nav: "overview", Data: o}
		if r.URL.Query().Get("accepted") != "" {
			v.Notice = "Thank you: the terms of service version " + terms.Current.Version + " are accepted."
		}
		dash.render(w, r, http.StatusOK, "overview", v)
	})
}

// AcceptTerms records the owner's acceptance of the current terms, as the
// consent API does.
func (dash *Dashboard) AcceptTerms() http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		if _, err := dash.d.Tenants.Accept(r.Context(), p, r.PostFormValue("terms_version"), s.Email, clientaddr.Of(r)); err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		http.Redirect(w, r, "/overview?accepted=1", http.StatusSeeOther)
	})
}
