package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pushgate/pushgate/billing"
	"github.com/pushgate/pushgate/tenants"
)

type billingData struct {
	Enabled     bool
	Workspace   tenants.Workspace
	PeriodLabel string
	ResetsAt    time.Time
	Used        int64
	Limit       int64
	Unlimited   bool
	// PackagePushes are the pushes bought for this month.
	PackagePushes int64
	// Status is the subscription's status in words a person reads.
	Status     string
	PeriodEnd  *time.Time
	GraceUntil *time.Time
	Subscribed bool
	HasPortal  bool
	Offer      billing.Offer
}

// billingPolicy lets the billing page's forms follow their redirect to
// Stripe's hosted pages: browsers apply form-action to the redirect too.
var billingPolicy = strings.Replace(contentSecurityPolicy, "form-action 'self'",
	"form-action 'self' https://checkout.stripe.com https://billing.stripe.com", 1)

var billingNotices = map[string]string{
	"subscribed": "Thank you. Your plan changes as soon as Stripe confirms the payment, usually within a minute.",
	"package":    "Thank you. The pushes are added as soon as Stripe confirms the payment, usually within a minute.",
	"canceled":   "Checkout was canceled; nothing changed.",
}

// statusWords names a Stripe subscription status as an owner reads it.
func statusWords(s string) string {
	switch s {
	case "":
		return "no subscription"
	case "active":
		return "active, paid"
	case "trialing":
		return "in its trial"
	case "past_due":
		return "a payment failed; Stripe retries it"
	case "unpaid":
		return "unpaid"
	case "canceled":
		return "canceled"
	case "incomplete", "incomplete_expired":
		return "the first payment is not complete"
	case "paused":
		return "paused"
	}
	return s
}

// BillingPage shows the workspace's plan, limit, period, packages and
// payment status, with the ways to upgrade, manage and buy pushes.
func (dash *Dashboard) BillingPage() http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		v, err := dash.billingView(r, p)
		if err != nil {
			dash.fail(w, r, "", view{}, err)
			return
		}
		v.Notice = billingNotices[r.URL.Query().Get("billing")]
		w.Header().Set("Content-Security-Policy", billingPolicy)
		dash.render(w, r, http.StatusOK, "billing", v)
	})
}

func (dash *Dashboard) billingView(r *http.Request, p *tenants.Principal) (view, error) {
	now := dash.d.Now().UTC()
	period := tenants.PeriodOf(now)
	u, err := dash.d.Quotas.Usage(r.Context(), p.Workspace.ID, period)
	if err != nil {
		return view{}, err
	}
	ws := p.Workspace
	d := billingData{Enabled: dash.d.Billing != nil, Workspace: ws, PeriodLabel: period.Start().Format("January 2006"),
		ResetsAt: period.End(), Used: u.Used, Limit: ws.LimitIn(period), Status: statusWords(ws.Billing.Status),
		PeriodEnd: ws.Billing.CurrentPeriodEnd, Subscribed: billing.Subscribed(ws.Billing), HasPortal: ws.Billing.CustomerID != ""}
	d.Unlimited = d.Limit == tenants.Unlimited
	if ws.PackagePeriod == period {
		d.PackagePushes = ws.PackagePushes
	}
	if g := ws.Billing.GraceUntil; g != nil && g.After(now) {
		d.GraceUntil = g
	}
	if dash.d.Billing != nil {
		d.Offer = dash.d.Billing.Offer()
	}
	return view{Title: "Billing", Nav: "billing", Data: d}, nil
}

// billingAction runs one of the billing calls and sends the owner on to
// the Stripe page it returns; a refusal is shown on the billing page.
func (dash *Dashboard) billingAction(call func(r *http.Request, b *billing.Service, workspaceID string) (string, error)) http.Handler {
	return dash.owner(func(w http.ResponseWriter, r *http.Request, s *tenants.Session, p *tenants.Principal) {
		if dash.d.Billing == nil {
			dash.fail(w, r, "", view{}, tenants.Errorf(tenants.CodeNotFound, "billing is not configured on this gateway; ask its operator to change your plan"))
			return
		}
		url, err := call(r, dash.d.Billing, p.Workspace.ID)
		if err != nil {
			v, verr := dash.billingView(r, p)
			if verr != nil {
				dash.fail(w, r, "", view{}, verr)
				return
			}
			w.Header().Set("Content-Security-Policy", billingPolicy)
			dash.fail(w, r, "billing", v, err)
			return
		}
		http.Redirect(w, r, url, http.StatusSeeOther)
	})
}

// Upgrade starts Stripe Checkout for the plan of the form.
func (dash *Dashboard) Upgrade() http.Handler {
	return dash.billingAction(func(r *http.Request, b *billing.Service, id string) (string, error) {
		return b.Checkout(r.Context(), id, tenants.Plan(r.PostFormValue("plan")))
	})
}

// ManageBilling opens the Stripe customer portal.
func (dash *Dashboard) ManageBilling() http.Handler {
	return dash.billingAction(func(r *http.Request, b *billing.Service, id string) (string, error) {
		return b.Portal(r.Context(), id)
	})
}

// BuyPackage starts Stripe Checkout for a push package.
func (dash *Dashboard) BuyPackage() http.Handler {
	return dash.billingAction(func(r *http.Request, b *billing.Service, id string) (string, error) {
		n, err := strconv.ParseInt(r.PostFormValue("pushes"), 10, 64)
		if err != nil {
			return "", tenants.FieldError("pushes", "pick one of the packages")
		}
		return b.BuyPackage(r.Context(), id, n)
	})
}
