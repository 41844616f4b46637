package billing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/pushgate/pushgate/tenants"
)

// MaxWebhookBytes bounds a webhook body; Stripe's events are a few KiB.
const MaxWebhookBytes = 64 << 10

// The event types billing acts on; Stripe's webhook endpoint should send these.
var EventTypes = []string{
	"checkout.session.completed",
	"checkout.session.async_payment_succeeded",
	"customer.subscription.created",
	"customer.subscription.updated",
	"customer.subscription.deleted",
	"invoice.paid",
	"invoice.payment_failed",
}

// HandleWebhook verifies a Stripe webhook and applies its event exactly
// once. It returns nil once the effect is committed (or the event is a
// replay, or of a type billing ignores); an invalid error for a body that
// is not a well-signed, fresh event; any other error when the event could
// not be applied, so Stripe delivers it again.
func (s *Service) HandleWebhook(ctx context.Context, payload []byte, signature string) error {
	if len(payload) > MaxWebhookBytes {
		return s.refuse("", "too_large", fmt.Sprintf("webhook body is %d bytes; the limit is %d", len(payload), MaxWebhookBytes))
	}
	// Stripe's default tolerance of five minutes; the API version of the
	// endpoint may differ from stripe-go's, since events are read field by field below.
	ev, err := webhook.ConstructEventWithOptions(payload, signature, s.cfg.WebhookSecret,
		webhook.ConstructEventOptions{Tolerance: webhook.DefaultTolerance, IgnoreAPIVersionMismatch: true})
	switch {
	case errors.Is(err, webhook.ErrNotSigned):
		return s.refuse("", "unsigned", "the request has no Stripe-Signature header")
	case errors.Is(err, webhook.ErrInvalidHeader), errors.Is(err, webhook.ErrNoValidSignature):
		return s.refuse("", "bad_signature", "the Stripe-Signature does not match this endpoint's signing secret")
	case errors.Is(err, webhook.ErrTooOld):
		return s.refuse("", "stale_timestamp", "the Stripe-Signature timestamp is older than five minutes")
	case err != nil:
		return s.refuse("", "unparseable", "the body is not a Stripe event")
	case ev.ID == "" || ev.Type == "" || ev.Data == nil || len(ev.Data.Raw) == 0:
		return s.refuse(string(ev.Type), "unparseable", "the event has no id, type or object")
	}
	typ := string(ev.Type)
	be := tenants.BillingEvent{ID: ev.ID, Type: typ, At: time.Unix(ev.Created, 0).UTC()}
	var decide func(ws *tenants.Workspace) (*tenants.BillingUpdate, error)
	switch typ {
	case "checkout.session.completed", "checkout.session.async_payment_succeeded":
		var o checkoutObject
		if err := decodeObject(ev.Data.Raw, &o); err != nil {
			return s.refuse(typ, "unparseable", err.Error())
		}
		be.CustomerID, be.WorkspaceID = string(o.Customer), o.workspaceID()
		decide = s.decideCheckout(be, o)
	case "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted":
		var o subscriptionObject
		if err := decodeObject(ev.Data.Raw, &o); err != nil {
			return s.refuse(typ, "unparseable", err.Error())
		}
		be.CustomerID, be.WorkspaceID = string(o.Customer), o.Metadata["workspace_id"]
		decide = s.decideSubscription(be, o)
	case "invoice.paid", "invoice.payment_failed":
		var o invoiceObject
		if err := decodeObject(ev.Data.Raw, &o); err != nil {
			return s.refuse(typ, "unparseable", err.Error())
		}
		be.CustomerID = string(o.Customer)
		decide = s.decideInvoice(be, o, typ == "invoice.paid")
	default:
		s.events.WithLabelValues("other", "ignored").Inc()
		s.cfg.Log.Info("Stripe event ignored: billing does not use its type", "event", ev.ID, "type", typ)
		return nil
	}
	ws, outcome, err := s.store.ApplyBillingEvent(ctx, be, decide)
	if err != nil {
		if e := tenants.AsError(err); e.Code == tenants.CodeInvalid {
			return s.refuse(typ, e.Reason, e.Message)
		}
		s.events.WithLabelValues(typ, "failed").Inc()
		return err
	}
	s.events.WithLabelValues(typ, string(outcome)).Inc()
	switch outcome {
	case tenants.BillingApplied:
		s.tenants.PublishWorkspace(ctx, ws)
		s.cfg.Log.Info("Stripe event applied", "event", ev.ID, "type", typ, "workspace", ws.ID, "plan", ws.Plan, "status", ws.Billing.Status)
	case tenants.BillingNotHere:
		s.cfg.Log.Info("Stripe event is of no workspace in this region", "event", ev.ID, "type", typ, "customer", be.CustomerID)
	default:
		s.cfg.Log.Debug("Stripe event changed nothing", "event", ev.ID, "type", typ, "outcome", outcome)
	}
	return nil
}

// refuse logs a refused webhook once and returns the invalid error the API answers 400 with.
func (s *Service) refuse(typ, reason, msg string) error {
	if typ == "" {
		typ = "unknown"
	}
	s.events.WithLabelValues("refused", reason).Inc()
	s.cfg.Log.Warn("Stripe webhook refused", "reason", reason, "type", typ, "why", msg)
	return &tenants.Error{Code: tenants.CodeInvalid, Reason: reason, Message: "Stripe webhook refused: " + msg}
}

// stripeID is an object reference: an id, or the expanded object with one.
type stripeID string

func (s *stripeID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*s = ""
		return nil
	case len(b) > 0 && b[0] == '{':
		var o struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		*s = stripeID(o.ID)
		return nil
	}
	var id string
	if err := json.Unmarshal(b, &id); err != nil {
		return err
	}
	*s = stripeID(id)
	return nil
}

func decodeObject(raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("the event's object does not decode: %v", err)
	}
	return nil
}

// checkoutObject is the part of a Checkout Session billing reads.
type checkoutObject struct {
	ID                string            `json:"id"`
	Mode              string            `json:"mode"`
	PaymentStatus     string            `json:"payment_status"`
	ClientReferenceID string            `json:"client_reference_id"`
	Customer          stripeID          `json:"customer"`
	Metadata          map[string]string `json:"metadata"`
}

func (o checkoutObject) workspaceID() string {
	if id := o.Metadata["workspace_id"]; id != "" {
		return id
	}
	return o.ClientReferenceID
}

// subscriptionObject is the part of a Subscription billing reads; the
// period end sits on the subscription in older API versions and on its
// items in newer ones.
type subscriptionObject struct {
	ID               string            `json:"id"`
	Customer         stripeID          `json:"customer"`
	Status           string            `json:"status"`
	Created          int64             `json:"created"`
	CurrentPeriodEnd int64             `json:"current_period_end"`
	Metadata         map[string]string `json:"metadata"`
	Items            struct {
		Data []struct {
			CurrentPeriodEnd int64 `json:"current_period_end"`
			Price            struct {
				ID string `json:"id"`
			} `json:"price"`
		} `json:"data"`
	} `json:"items"`
}

func (o subscriptionObject) prices() []string {
	out := make([]string, 0, len(o.Items.Data))
	for _, it := range o.Items.Data {
		out = append(out, it.Price.ID)
	}
	return out
}

func (o subscriptionObject) periodEnd() *time.Time {
	end := o.CurrentPeriodEnd
	for _, it := range o.Items.Data {
		end = max(end, it.CurrentPeriodEnd)
	}
	if end == 0 {
		return nil
	}
	t := time.Unix(end, 0).UTC()
	return &t
}

// invoiceObject is the part of an Invoice billing reads; its subscription
// sits at the top in older API versions and under parent in newer ones.
type invoiceObject struct {
	ID           string   `json:"id"`
	Customer     stripeID `json:"customer"`
	Subscription stripeID `json:"subscription"`
	Created      int64    `json:"created"`
	Parent       *struct {
		SubscriptionDetails *struct {
			Subscription stripeID `json:"subscription"`
		} `json:"subscription_details"`
	} `json:"parent"`
}

func (o invoiceObject) subscription() string {
	if o.Subscription != "" {
		return string(o.Subscription)
	}
	if o.Parent != nil && o.Parent.SubscriptionDetails != nil {
		return string(o.Parent.SubscriptionDetails.Subscription)
	}
	return ""
}

func stripeAudit(ev tenants.BillingEvent, detail string) tenants.AuditEntry {
	return tenants.AuditEntry{Actor: "stripe", Source: "stripe", Action: "billing." + ev.Type,
		Detail: "event=" + ev.ID + " " + detail}
}

// ended says whether a subscription status is final: Stripe never revives such a subscription.
func ended(status string) bool {
	return status == "canceled" || status == "incomplete_expired"
}

// planFor is the plan a workspace should have under billing state b, or ""
// to leave it. Billing moves only the plans it gave (free, or a plan a
// subscription paid for), never an operator's own choice such as an
// enterprise deal.
func (s *Service) planFor(ws *tenants.Workspace, b tenants.Billing) tenants.Plan {
	if ws.Plan != tenants.PlanFree && ws.Plan != ws.Billing.Plan && ws.Plan != b.Plan {
		return ""
	}
	want := tenants.PlanFree
	switch b.Status {
	case "active", "trialing":
		want = b.Plan
	case "past_due":
		// A failed payment keeps the plan until the grace ends.
		if !b.GraceEnded && (b.GraceUntil == nil || s.now().Before(*b.GraceUntil)) {
			want = b.Plan
		}
	case "incomplete":
		return "" // the first payment is still open
	}
	if want == "" || want == ws.Plan {
		return ""
	}
	return want
}

// decideSubscription orders subscription events by the subscriptions' own
// state: an event of a subscription created before the stored one, a state
// of a subscription that already ended, or an event Stripe made before the
// one applied last changes nothing, whatever order they arrive in.
func (s *Service) decideSubscription(ev tenants.BillingEvent, o subscriptionObject) func(*tenants.Workspace) (*tenants.BillingUpdate, error) {
	return func(ws *tenants.Workspace) (*tenants.BillingUpdate, error) {
		cur := ws.Billing
		if cur.CustomerID != "" && o.Customer != "" && cur.CustomerID != string(o.Customer) {
			s.cfg.Log.Warn("Stripe subscription of another customer than the workspace's; ignored", "event", ev.ID, "workspace", ws.ID, "customer", o.Customer)
			return nil, nil
		}
		created := time.Unix(o.Created, 0).UTC()
		b := cur
		if cur.SubscriptionID != o.ID {
			if cur.SubscriptionID != "" && cur.SubscriptionCreated != nil && created.Before(*cur.SubscriptionCreated) {
				return nil, nil // an older subscription than the one stored
			}
			// A newer subscription replaces the old one, its invoices and its grace.
			b = tenants.Billing{CustomerID: cur.CustomerID, Plan: cur.Plan}
		} else {
			switch {
			case ended(cur.Status):
				return nil, nil // ended for good; later states are older news
			case !ended(o.Status) && cur.StateAt != nil && ev.At.Before(*cur.StateAt):
				return nil, nil // an older state of the same subscription
			}
		}
		if b.CustomerID == "" {
			b.CustomerID = string(o.Customer)
		}
		b.SubscriptionID, b.Status, b.SubscriptionCreated = o.ID, o.Status, &created
		at := ev.At
		if cur.StateAt != nil && cur.SubscriptionID == o.ID && cur.StateAt.After(at) {
			at = *cur.StateAt
		}
		b.StateAt = &at
		if end := o.periodEnd(); end != nil {
			b.CurrentPeriodEnd = end
		}
		if p := s.cfg.planOfPrice(o.prices()); p != "" {
			b.Plan = p
		} else if !ended(o.Status) {
			s.cfg.Log.Warn("Stripe subscription has no price of a configured plan; its plan is kept", "event", ev.ID, "workspace", ws.ID, "prices", o.prices())
		}
		plan := s.planFor(ws, b)
		return &tenants.BillingUpdate{Billing: b, Plan: plan,
			Audit: stripeAudit(ev, fmt.Sprintf("subscription=%s status=%s %s", o.ID, o.Status, planChange(ws.Plan, plan)))}, nil
	}
}

// decideInvoice applies a paid or failed invoice of the workspace's
// subscription: a newer invoice wins over an older one, and a paid one is
// final; a failure starts the grace (a repeated failure does not extend it),
// a payment ends it.
func (s *Service) decideInvoice(ev tenants.BillingEvent, o invoiceObject, paid bool) func(*tenants.Workspace) (*tenants.BillingUpdate, error) {
	return func(ws *tenants.Workspace) (*tenants.BillingUpdate, error) {
		cur := ws.Billing
		sub := o.subscription()
		if sub == "" || (cur.SubscriptionID != "" && sub != cur.SubscriptionID) {
			return nil, nil // not an invoice of the current subscription
		}
		created := time.Unix(o.Created, 0).UTC()
		if cur.InvoiceID == o.ID && (cur.InvoicePaid || !paid) {
			return nil, nil
		}
		if cur.InvoiceID != o.ID && cur.InvoiceCreated != nil && created.Before(*cur.InvoiceCreated) {
			return nil, nil // an older invoice
		}
		b := cur
		b.InvoiceID, b.InvoiceCreated, b.InvoicePaid = o.ID, &created, paid
		detail := "invoice=" + o.ID
		if paid {
			b.GraceUntil, b.GraceEnded = nil, false
		} else if b.GraceUntil == nil {
			until := ev.At.Add(s.cfg.Grace)
			b.GraceUntil, b.GraceEnded = &until, false
			detail += " grace_until=" + until.Format(time.RFC3339)
		}
		plan := s.planFor(ws, b)
		return &tenants.BillingUpdate{Billing: b, Plan: plan, Audit: stripeAudit(ev, detail+" "+planChange(ws.Plan, plan))}, nil
	}
}

// decideCheckout links the customer of a completed subscription Checkout
// (the subscription's own events change the plan) and adds a paid push
// package to the month of the event, once per Checkout session.
func (s *Service) decideCheckout(ev tenants.BillingEvent, o checkoutObject) func(*tenants.Workspace) (*tenants.BillingUpdate, error) {
	return func(ws *tenants.Workspace) (*tenants.BillingUpdate, error) {
		b := ws.Billing
		linked := false
		if b.CustomerID == "" && o.Customer != "" {
			b.CustomerID, linked = string(o.Customer), true
		}
		if o.Mode != ModePayment || o.Metadata["kind"] != "package" {
			if !linked {
				return nil, nil
			}
			return &tenants.BillingUpdate{Billing: b, Audit: stripeAudit(ev, "customer="+b.CustomerID)}, nil
		}
		if o.PaymentStatus != "paid" {
			s.cfg.Log.Info("push package not paid yet; it is added when Stripe reports the payment", "event", ev.ID, "workspace", ws.ID, "session", o.ID)
			return nil, nil
		}
		pushes, err := strconv.ParseInt(o.Metadata["pushes"], 10, 64)
		if err != nil || pushes < 1 || o.ID == "" {
			return nil, &tenants.Error{Code: tenants.CodeInvalid, Reason: "unparseable",
				Message: fmt.Sprintf("package session %q has no number of pushes", o.ID)}
		}
		p := &tenants.Package{CheckoutSessionID: o.ID, Pushes: pushes, Period: tenants.PeriodOf(ev.At), EventID: ev.ID}
		return &tenants.BillingUpdate{Billing: b, Package: p,
			Audit: stripeAudit(ev, fmt.Sprintf("package pushes=%d period=%s session=%s", pushes, p.Period, o.ID))}, nil
	}
}

func planChange(from, to tenants.Plan) string {
	if to == "" || to == from {
		return "plan=" + string(from)
	}
	return "plan=" + string(from) + "->" + string(to)
}
