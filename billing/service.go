package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/tenants"
)

// DefaultGrace is how long a workspace keeps its plan after a failed payment.
const DefaultGrace = 7 * 24 * time.Hour

// Config is billing's configuration.
type Config struct {
	WebhookSecret string
	Plans         map[tenants.Plan]PlanPrice
	// Packages maps a number of pushes to its one-time price.
	Packages map[int64]string
	// Grace is how long a failed payment keeps the plan (default DefaultGrace).
	Grace time.Duration
	// ReturnURL is where Checkout and the portal send the customer back: the dashboard, or the public URL.
	ReturnURL  string
	Now        func() time.Time
	Log        *slog.Logger
	Registerer prometheus.Registerer

	// MeterEvent is the Stripe billing meter's event name that metered
	// prices bill (default DefaultMeterEvent).
	MeterEvent string
	// Usage and Overage, both needed when a plan has a metered price, are
	// where overage is counted from and where its reports are kept.
	Usage   UsageSource
	Overage tenants.OverageStore
}

// DefaultMeterEvent is the meter event name pushgate reports overage under.
const DefaultMeterEvent = "pushgate_pushes"

// UsageSource reads a workspace's use of a month (the quota store).
type UsageSource interface {
	Usage(ctx context.Context, workspaceID string, p tenants.Period) (tenants.Usage, error)
}

// Service is billing for one region: Checkout and the portal for its
// workspaces, and Stripe's webhooks. The dashboard and the API call it alike.
type Service struct {
	cfg     Config
	stripe  Stripe
	store   tenants.BillingStore
	tenants *tenants.Service
	events  *prometheus.CounterVec

	overageReported *prometheus.CounterVec
}

// New returns billing over a Stripe client, the billing store and the
// tenancy (whose published limits make plan changes apply on every replica).
func New(cfg Config, st Stripe, store tenants.BillingStore, svc *tenants.Service) (*Service, error) {
	if cfg.WebhookSecret == "" {
		return nil, errors.New("billing needs the webhook signing secret")
	}
	if _, ok := cfg.Plans[tenants.PlanPro]; !ok {
		return nil, errors.New("billing needs the price of plan pro")
	}
	if cfg.Grace == 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Packages == nil {
		cfg.Packages = map[int64]string{}
	}
	cfg.ReturnURL = strings.TrimRight(cfg.ReturnURL, "/")
	if cfg.MeterEvent == "" {
		cfg.MeterEvent = DefaultMeterEvent
	}
	for plan, pp := range cfg.Plans {
		if pp.MeteredPrice != "" && (cfg.Usage == nil || cfg.Overage == nil) {
			return nil, fmt.Errorf("plan %s has a metered price, so billing needs the usage and overage stores", plan)
		}
	}
	s := &Service{cfg: cfg, stripe: st, store: store, tenants: svc,
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_billing_webhooks_total",
			Help: "Stripe webhooks by event type and outcome (applied, unchanged, replayed, no_workspace, ignored, refused, failed).",
		}, []string{"type", "outcome"}),
		overageReported: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_billing_overage_reported_total",
			Help: "Overage pushes reported to Stripe as metered usage, by result (reported, failed).",
		}, []string{"result"})}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.events, s.overageReported} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// PriceError says which configured price Stripe does not know or cannot confirm.
type PriceError struct {
	// Kind is "plan", "metered" or "package"; Key the plan or the package size.
	Kind, Key, Price string
	Err              error
}

func (e *PriceError) Error() string {
	return fmt.Sprintf("%s %s: price %s: %v", e.Kind, e.Key, e.Price, e.Err)
}

func (e *PriceError) Unwrap() error { return e.Err }

// CheckPrices asks Stripe for every configured price and returns the first
// that Stripe does not have, has archived, or could not be asked about
// (a *PriceError whose code is unavailable).
func (s *Service) CheckPrices(ctx context.Context) error {
	type item struct{ kind, key, price string }
	var items []item
	for plan, pp := range s.cfg.Plans {
		items = append(items, item{"plan", string(plan), pp.Price})
		if pp.MeteredPrice != "" {
			items = append(items, item{"metered", string(plan), pp.MeteredPrice})
		}
	}
	for n, p := range s.cfg.Packages {
		items = append(items, item{"package", strconv.FormatInt(n, 10), p})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].kind+items[i].key < items[j].kind+items[j].key })
	for _, it := range items {
		p, err := s.stripe.Price(ctx, it.price)
		switch {
		case tenants.ErrorCode(err) == tenants.CodeNotFound:
			return &PriceError{Kind: it.kind, Key: it.key, Price: it.price, Err: errors.New("Stripe has no such price")}
		case err != nil:
			return &PriceError{Kind: it.kind, Key: it.key, Price: it.price, Err: err}
		case !p.Active:
			return &PriceError{Kind: it.kind, Key: it.key, Price: it.price, Err: errors.New("the price is archived in Stripe")}
		}
	}
	return nil
}

// subscribed reports whether a subscription is still alive in Stripe, so
// that a second Checkout would make a second subscription.
func subscribed(b tenants.Billing) bool {
	if b.SubscriptionID == "" {
		return false
	}
	switch b.Status {
	case "active", "trialing", "past_due", "unpaid", "paused":
		return true
	}
	return false
}

// Checkout starts a subscription to plan for a workspace and returns the
// Checkout URL. The workspace's Stripe customer is created once and reused.
func (s *Service) Checkout(ctx context.Context, workspaceID string, plan tenants.Plan) (string, error) {
	pp, err := s.planPrice(plan)
	if err != nil {
		return "", err
	}
	ws, err := s.tenants.Workspace(ctx, workspaceID)
	if err != nil {
		return "", err
	}
	if subscribed(ws.Billing) {
		return "", &tenants.Error{Code: tenants.CodeConflict, Reason: "already_subscribed",
			Message: fmt.Sprintf("this workspace already has a %s subscription (%s); change or cancel it in the customer portal: POST /api/v1/workspace/billing/portal",
				orUnknown(ws.Billing.Plan), ws.Billing.Status)}
	}
	customerID, err := s.customer(ctx, ws)
	if err != nil {
		return "", err
	}
	sess, err := s.stripe.CreateCheckoutSession(ctx, CheckoutRequest{
		Mode: ModeSubscription, CustomerID: customerID, WorkspaceID: ws.ID,
		Price: pp.Price, MeteredPrice: pp.MeteredPrice,
		SuccessURL: s.returnURL("billing=subscribed&session_id={CHECKOUT_SESSION_ID}"),
		CancelURL:  s.returnURL("billing=canceled"),
		Metadata:   map[string]string{"workspace_id": ws.ID, "plan": string(plan)},
	})
	if err != nil {
		return "", err
	}
	s.cfg.Log.Info("checkout session created", "workspace", ws.ID, "plan", plan, "session", sess.ID)
	return sess.URL, nil
}

func (s *Service) planPrice(plan tenants.Plan) (PlanPrice, error) {
	switch {
	case plan == "":
		return PlanPrice{}, tenants.FieldError("plan", "is required: one of %s", s.cfg.planNames())
	case plan == tenants.PlanFree:
		return PlanPrice{}, tenants.FieldError("plan", "free needs no checkout; to leave a paid plan, cancel it in the customer portal (POST /api/v1/workspace/billing/portal)")
	case !plan.Valid():
		return PlanPrice{}, tenants.FieldError("plan", "must be one of %s, got %q", s.cfg.planNames(), plan)
	}
	pp, ok := s.cfg.Plans[plan]
	if !ok {
		return PlanPrice{}, tenants.FieldError("plan", "%s is not sold through self-service on this gateway (on sale: %s); contact the operator", plan, s.cfg.planNames())
	}
	return pp, nil
}

// BuyPackage starts the one-time purchase of a push package and returns
// the Checkout URL; the pushes are added when Stripe reports it paid.
func (s *Service) BuyPackage(ctx context.Context, workspaceID string, pushes int64) (string, error) {
	price, ok := s.cfg.Packages[pushes]
	if !ok {
		if len(s.cfg.Packages) == 0 {
			return "", &tenants.Error{Code: tenants.CodeNotFound, Reason: "no_packages", Message: "this gateway sells no push packages"}
		}
		return "", tenants.FieldError("pushes", "must be the size of a package on sale: %s; got %d", s.cfg.packageSizes(), pushes)
	}
	ws, err := s.tenants.Workspace(ctx, workspaceID)
	if err != nil {
		return "", err
	}
	customerID, err := s.customer(ctx, ws)
	if err != nil {
		return "", err
	}
	sess, err := s.stripe.CreateCheckoutSession(ctx, CheckoutRequest{
		Mode: ModePayment, CustomerID: customerID, WorkspaceID: ws.ID, Price: price,
		SuccessURL: s.returnURL("billing=package&session_id={CHECKOUT_SESSION_ID}"),
		CancelURL:  s.returnURL("billing=canceled"),
		Metadata:   map[string]string{"workspace_id": ws.ID, "kind": "package", "pushes": strconv.FormatInt(pushes, 10)},
	})
	if err != nil {
		return "", err
	}
	s.cfg.Log.Info("package checkout session created", "workspace", ws.ID, "pushes", pushes, "session", sess.ID)
	return sess.URL, nil
}

// Portal returns the URL of a customer portal session, where the workspace
// changes or cancels its plan and sees its invoices.
func (s *Service) Portal(ctx context.Context, workspaceID string) (string, error) {
	ws, err := s.tenants.Workspace(ctx, workspaceID)
	if err != nil {
		return "", err
	}
	if ws.Billing.CustomerID == "" {
		return "", &tenants.Error{Code: tenants.CodeConflict, Reason: "no_billing_account",
			Message: `this workspace has no billing account yet; subscribe first: POST /api/v1/workspace/billing/checkout {"plan":"pro"}`}
	}
	return s.stripe.CreatePortalSession(ctx, ws.Billing.CustomerID, s.cfg.ReturnURL)
}

// customer returns the workspace's Stripe customer, creating and storing it
// the first time; a customer Stripe created is never forgotten.
func (s *Service) customer(ctx context.Context, ws *tenants.Workspace) (string, error) {
	if ws.Billing.CustomerID != "" {
		return ws.Billing.CustomerID, nil
	}
	id, err := s.stripe.CreateCustomer(ctx, CustomerRequest{WorkspaceID: ws.ID, Name: ws.Name, Email: ws.ContactEmail})
	if err != nil {
		return "", err
	}
	return s.store.SetStripeCustomer(ctx, ws.ID, id)
}

// returnURL is the return URL with query added; Stripe fills in {CHECKOUT_SESSION_ID}, so it is not escaped.
func (s *Service) returnURL(query string) string {
	sep := "?"
	if strings.Contains(s.cfg.ReturnURL, "?") {
		sep = "&"
	}
	return s.cfg.ReturnURL + sep + query
}

func orUnknown(p tenants.Plan) string {
	if p == "" {
		return "paid"
	}
	return string(p)
}

// ExpireGraces moves every workspace whose payment grace ended to free and
// publishes its new limit; it returns how many fell back.
func (s *Service) ExpireGraces(ctx context.Context) (int, error) {
	now := s.now()
	ids, err := s.store.GraceExpired(ctx, now)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		ws, ended, err := s.store.EndGrace(ctx, id, now, tenants.AuditEntry{Actor: "billing", Source: "billing", Action: "billing.grace_expired", CreatedAt: now})
		if err != nil {
			return n, err
		}
		if !ended {
			continue
		}
		n++
		s.tenants.PublishWorkspace(ctx, ws)
		s.cfg.Log.Info("payment grace ended", "workspace", id, "plan", ws.Plan)
	}
	return n, nil
}

// RunGraceExpiry calls ExpireGraces every interval until ctx ends. Every
// replica may run it: each workspace falls back once.
func (s *Service) RunGraceExpiry(ctx context.Context, every time.Duration) {
	s.repeat(ctx, every, "ending expired payment graces failed; will retry", func(ctx context.Context) error {
		_, err := s.ExpireGraces(ctx)
		return err
	})
}

// repeat runs job every interval until ctx ends, logging failure as a warning.
func (s *Service) repeat(ctx context.Context, every time.Duration, failure string, job func(context.Context) error) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := job(ctx); err != nil && ctx.Err() == nil {
				s.cfg.Log.Warn(failure, "err", err)
			}
		}
	}
}
