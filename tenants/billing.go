package tenants

import (
	"context"
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
	if err := s.cfg.Limits.PublishLimit(ctx, ws.ID, ws.MonthlyLimit(), ws.ChangedAt, s.cfg.Now().UTC()); err != nil {
		// The database has it; replicas pick it up within a second through WatchChanges.
		s.cfg.Log.Warn("publishing a new limit to the quota store failed; replicas apply it within a second", "workspace", ws.ID, "err", err)
	}
}
