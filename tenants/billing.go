package tenants

import (
	"context"
	"strconv"
	"time"
)

// Billing is a workspace's Stripe customer and subscription as the webhooks
// last reported them; the zero value is a workspace that never paid.
type Billing struct {
	CustomerID     string
	SubscriptionID string
	// Plan is the plan the subscription pays for, "" without one.
	Plan Plan
	// Status is the subscription's Stripe status (active, past_due, canceled, …), "" without one.
	Status           string
	CurrentPeriodEnd *time.Time
	// GraceUntil is set when a payment failed: the plan is kept until then.
	GraceUntil *time.Time
	// GraceEnded records that the grace ran out and the plan fell back to free; a paid invoice clears it.
	GraceEnded bool
	// SubscriptionCreated and StateAt (the Stripe time of the event last
	// applied) order subscription events, so late ones change nothing.
	SubscriptionCreated *time.Time
	StateAt             *time.Time
	// InvoiceID, InvoiceCreated and InvoicePaid order invoice events the same way.
	InvoiceID      string
	InvoiceCreated *time.Time
	InvoicePaid    bool
}

// Package is a number of pushes bought once and added to one month's limit.
type Package struct {
	CheckoutSessionID string
	Pushes            int64
	Period            Period
	EventID           string
	CreatedAt         time.Time
}

// BillingEvent names one Stripe event and the workspace it concerns.
type BillingEvent struct {
	ID   string
	Type string
	// CustomerID finds the workspace; WorkspaceID (from our own metadata) is
	// used when no workspace holds that customer yet.
	CustomerID  string
	WorkspaceID string
	At          time.Time
}

// BillingUpdate is what one event does to a workspace, decided from its current state.
type BillingUpdate struct {
	// Billing is the workspace's billing state afterwards.
	Billing Billing
	// Plan, when set, is the workspace's plan afterwards (a change clears a custom limit).
	Plan Plan
	// Package, when set, is recorded once per Checkout session and added to its month's limit.
	Package *Package
	Audit   AuditEntry
}

// BillingOutcome says what applying one event did.
type BillingOutcome string

// The outcomes of ApplyBillingEvent.
const (
	BillingApplied   BillingOutcome = "applied"
	BillingUnchanged BillingOutcome = "unchanged"    // recorded; older than what is stored, or nothing to do
	BillingReplayed  BillingOutcome = "replayed"     // this event id was applied before
	BillingNotHere   BillingOutcome = "no_workspace" // no workspace of this region holds it
)

// BillingStore keeps billing state beside the workspaces, so that each
// Stripe event and its effect commit together.
type BillingStore interface {
	// ApplyBillingEvent records ev.ID and the update decide returns for the
	// event's workspace in one transaction; a recorded id is BillingReplayed
	// and decide is not called. decide returning nil changes nothing.
	ApplyBillingEvent(ctx context.Context, ev BillingEvent, decide func(ws *Workspace) (*BillingUpdate, error)) (*Workspace, BillingOutcome, error)
	// SetStripeCustomer stores customerID unless the workspace has one, and returns the one it has.
	SetStripeCustomer(ctx context.Context, workspaceID, customerID string) (string, error)
	// GraceExpired lists the workspaces whose payment grace ended at or before now and did not fall back yet.
	GraceExpired(ctx context.Context, now time.Time) ([]string, error)
	// EndGrace moves a workspace whose grace ended to free (when its plan is
	// the one billing gave it) and marks the grace ended, with audit; false when it no longer qualifies.
	EndGrace(ctx context.Context, workspaceID string, now time.Time, audit AuditEntry) (*Workspace, bool, error)
	// Packages lists the packages a workspace bought, newest first.
	Packages(ctx context.Context, workspaceID string) ([]Package, error)
}

// PublishWorkspace makes a change written to the store apply at once: it
// drops the workspace from this replica's cache and publishes its limit
// with its new version, so every replica's next push uses it.
func (s *Service) PublishWorkspace(ctx context.Context, ws *Workspace) {
	s.cache.invalidateWorkspace(ws.ID)
	if s.cfg.Limits == nil {
		return
	}
	if err := s.cfg.Limits.PublishLimit(ctx, ws.ID, s.AdmissionLimit(ws), ws.ChangedAt, s.cfg.Now().UTC()); err != nil {
		// The database has it; replicas pick it up within a second through WatchChanges.
		s.cfg.Log.Warn("publishing a new limit to the quota store failed; replicas apply it within a second", "workspace", ws.ID, "err", err)
	}
}

// MeteredOverage says whether a workspace's pushes over its included amount
// are admitted and billed as overage: its plan has a metered price and a
// live subscription pays for that plan.
func (s *Service) MeteredOverage(ws *Workspace) bool {
	b := ws.Billing
	if !s.cfg.MeteredPlans[ws.Plan] || b.SubscriptionID == "" || b.Plan != ws.Plan || b.GraceEnded {
		return false
	}
	switch b.Status {
	case "active", "trialing", "past_due":
		return true
	}
	return false
}

// AdmissionLimit is the limit a workspace's pushes are admitted against:
// its monthly limit, or Unlimited while overage is billed. It is what the
// quota store is given and published, so one round trip decides overage too.
func (s *Service) AdmissionLimit(ws *Workspace) int64 {
	if s.MeteredOverage(ws) {
		return Unlimited
	}
	return ws.MonthlyLimit()
}

// OverageBatch is one report of metered overage to Stripe: Quantity pushes
// of a workspace's Period, numbered from 1 within the period.
type OverageBatch struct {
	WorkspaceID string
	Period      Period
	Seq         int
	Quantity    int64
	CustomerID  string
	CreatedAt   time.Time
	// ReportedAt is set once Stripe took the batch.
	ReportedAt *time.Time
}

// Identifier names the batch to Stripe, which counts an identifier once.
func (b OverageBatch) Identifier() string {
	return "pushgate-" + b.WorkspaceID + "-" + string(b.Period) + "-" + strconv.Itoa(b.Seq)
}

// OverageStore keeps the overage batches: each is written before it is
// sent, so a retry after any failure resends the same batch.
type OverageStore interface {
	// OverageBatches lists a workspace's batches of period p by Seq.
	OverageBatches(ctx context.Context, workspaceID string, p Period) ([]OverageBatch, error)
	// AddOverageBatch records a batch; false when that Seq is already recorded (another replica was first).
	AddOverageBatch(ctx context.Context, b OverageBatch) (bool, error)
	// MarkOverageReported records that Stripe took the batch.
	MarkOverageReported(ctx context.Context, workspaceID string, p Period, seq int, at time.Time) error
	// SubscribedWorkspaces lists the workspaces that have a Stripe subscription.
	SubscribedWorkspaces(ctx context.Context) ([]Workspace, error)
}

// OverageBatches lists a workspace's metered overage reports of period p,
// for operators; none where the store keeps no overage.
func (s *Service) OverageBatches(ctx context.Context, workspaceID string, p Period) ([]OverageBatch, error) {
	o, ok := s.store.(OverageStore)
	if !ok {
		return nil, nil
	}
	return o.OverageBatches(ctx, workspaceID, p)
}
