package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/billing/meterevent"
	portalsession "github.com/stripe/stripe-go/v76/billingportal/session"
	checkoutsession "github.com/stripe/stripe-go/v76/checkout/session"
	"github.com/stripe/stripe-go/v76/customer"
	"github.com/stripe/stripe-go/v76/price"

	"github.com/pushgate/pushgate/tenants"
)

// Stripe is the part of Stripe's API that billing uses. Errors are
// *tenants.Error: unavailable when Stripe cannot be reached or is failing,
// not found for an unknown object, internal when Stripe refused the request.
type Stripe interface {
	// CreateCustomer creates a workspace's customer; retries within a day return the same one.
	CreateCustomer(ctx context.Context, c CustomerRequest) (string, error)
	CreateCheckoutSession(ctx context.Context, r CheckoutRequest) (*CheckoutSession, error)
	// CreatePortalSession returns the URL of a customer portal session.
	CreatePortalSession(ctx context.Context, customerID, returnURL string) (string, error)
	Price(ctx context.Context, id string) (*Price, error)
	// ReportUsage sends one metered usage event; an identifier already reported is not counted again.
	ReportUsage(ctx context.Context, u UsageReport) error
}

// CustomerRequest is a new Stripe customer for a workspace.
type CustomerRequest struct {
	WorkspaceID string
	Name        string
	Email       string
}

// The Checkout modes billing uses.
const (
	ModeSubscription = "subscription"
	ModePayment      = "payment"
)

// CheckoutRequest is a Checkout Session for one workspace.
type CheckoutRequest struct {
	Mode        string
	CustomerID  string
	WorkspaceID string
	// Price is bought once (quantity 1); MeteredPrice, when set, is added without a quantity.
	Price        string
	MeteredPrice string
	SuccessURL   string
	CancelURL    string
	// Metadata goes on the session and on the subscription or payment it creates.
	Metadata map[string]string
}

// CheckoutSession is where the customer pays.
type CheckoutSession struct {
	ID  string
	URL string
}

// Price is what billing checks of a configured price.
type Price struct {
	ID        string
	Active    bool
	Recurring bool
}

// UsageReport is metered usage of one customer, sent as a billing meter event.
type UsageReport struct {
	EventName  string
	CustomerID string
	Value      int64
	At         time.Time
	// Identifier makes the report idempotent: Stripe counts an identifier once.
	Identifier string
}

// StripeClient is the Stripe interface over stripe-go, talking to the
// configured API URL (stripe-mock in tests).
type StripeClient struct {
	customers  customer.Client
	checkout   checkoutsession.Client
	portal     portalsession.Client
	prices     price.Client
	meterEvent meterevent.Client
}

var _ Stripe = (*StripeClient)(nil)

// NewStripeClient returns a client with secretKey against apiURL ("" for
// Stripe's own) over hc (nil: one that bounds each call to 20 s); stripe-go
// retries network failures twice with an idempotency key.
func NewStripeClient(secretKey, apiURL string, hc *http.Client, log *slog.Logger) *StripeClient {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 20 * time.Second}
	}
	cfg := &stripe.BackendConfig{
		HTTPClient:        hc,
		LeveledLogger:     stripeLogger{log},
		MaxNetworkRetries: stripe.Int64(2),
	}
	if apiURL != "" {
		cfg.URL = stripe.String(apiURL)
	}
	b := stripe.GetBackendWithConfig(stripe.APIBackend, cfg)
	return &StripeClient{
		customers:  customer.Client{B: b, Key: secretKey},
		checkout:   checkoutsession.Client{B: b, Key: secretKey},
		portal:     portalsession.Client{B: b, Key: secretKey},
		prices:     price.Client{B: b, Key: secretKey},
		meterEvent: meterevent.Client{B: b, Key: secretKey},
	}
}

func params(ctx context.Context) stripe.Params { return stripe.Params{Context: ctx} }

// CreateCustomer creates the customer under an idempotency key of the
// workspace, so that a retry after a lost answer does not make a second one.
func (c *StripeClient) CreateCustomer(ctx context.Context, r CustomerRequest) (string, error) {
	p := &stripe.CustomerParams{Params: params(ctx), Name: stripe.String(r.Name), Email: stripe.String(r.Email),
		Metadata: map[string]string{"workspace_id": r.WorkspaceID}}
	p.SetIdempotencyKey("pushgate-customer-" + r.WorkspaceID)
	cu, err := c.customers.New(p)
	if err != nil {
		return "", stripeError(err, "creating the Stripe customer")
	}
	return cu.ID, nil
}

// CreateCheckoutSession creates a Checkout Session in subscription or payment mode.
func (c *StripeClient) CreateCheckoutSession(ctx context.Context, r CheckoutRequest) (*CheckoutSession, error) {
	p := &stripe.CheckoutSessionParams{
		Params: params(ctx), Mode: stripe.String(r.Mode), Customer: stripe.String(r.CustomerID),
		ClientReferenceID: stripe.String(r.WorkspaceID), SuccessURL: stripe.String(r.SuccessURL),
		CancelURL: stripe.String(r.CancelURL), Metadata: r.Metadata,
		LineItems: []*stripe.CheckoutSessionLineItemParams{{Price: stripe.String(r.Price), Quantity: stripe.Int64(1)}},
	}
	if r.MeteredPrice != "" {
		p.LineItems = append(p.LineItems, &stripe.CheckoutSessionLineItemParams{Price: stripe.String(r.MeteredPrice)})
	}
	switch r.Mode {
	case ModeSubscription:
		p.SubscriptionData = &stripe.CheckoutSessionSubscriptionDataParams{Metadata: r.Metadata}
	case ModePayment:
		p.PaymentIntentData = &stripe.CheckoutSessionPaymentIntentDataParams{Metadata: r.Metadata}
	}
	s, err := c.checkout.New(p)
	if err != nil {
		return nil, stripeError(err, "creating the Checkout session")
	}
	return &CheckoutSession{ID: s.ID, URL: s.URL}, nil
}

// CreatePortalSession creates a customer portal session.
func (c *StripeClient) CreatePortalSession(ctx context.Context, customerID, returnURL string) (string, error) {
	s, err := c.portal.New(&stripe.BillingPortalSessionParams{Params: params(ctx),
		Customer: stripe.String(customerID), ReturnURL: stripe.String(returnURL)})
	if err != nil {
		return "", stripeError(err, "creating the customer portal session")
	}
	return s.URL, nil
}

// Price reads one price.
func (c *StripeClient) Price(ctx context.Context, id string) (*Price, error) {
	p, err := c.prices.Get(id, &stripe.PriceParams{Params: params(ctx)})
	if err != nil {
		return nil, stripeError(err, "reading price "+id)
	}
	return &Price{ID: p.ID, Active: p.Active, Recurring: p.Type == stripe.PriceTypeRecurring}, nil
}

// ReportUsage sends a billing meter event with the report's identifier,
// which also serves as the request's idempotency key.
func (c *StripeClient) ReportUsage(ctx context.Context, u UsageReport) error {
	p := &stripe.BillingMeterEventParams{Params: params(ctx), EventName: stripe.String(u.EventName),
		Identifier: stripe.String(u.Identifier), Timestamp: stripe.Int64(u.At.Unix()),
		Payload: map[string]string{"stripe_customer_id": u.CustomerID, "value": strconv.FormatInt(u.Value, 10)}}
	p.SetIdempotencyKey("pushgate-usage-" + u.Identifier)
	if _, err := c.meterEvent.New(p); err != nil {
		return stripeError(err, "reporting usage")
	}
	return nil
}

// stripeError classifies a stripe-go error: Stripe unreachable, rate
// limiting or failing is unavailable (try again), an unknown object is not
// found, and a refused request is ours to fix (internal, logged).
func stripeError(err error, what string) error {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return &tenants.Error{Code: tenants.CodeUnavailable, Reason: "stripe_unavailable",
			Message: "Stripe cannot be reached right now (" + what + "); nothing was bought: try again in a minute", Err: err}
	}
	switch {
	case se.HTTPStatusCode == http.StatusTooManyRequests || se.HTTPStatusCode >= 500 ||
		se.Code == stripe.ErrorCodeIdempotencyKeyInUse || se.Code == stripe.ErrorCodeLockTimeout:
		return &tenants.Error{Code: tenants.CodeUnavailable, Reason: "stripe_unavailable",
			Message: fmt.Sprintf("Stripe is not answering (%s: %d); nothing was bought: try again in a minute", what, se.HTTPStatusCode), Err: err}
	case se.HTTPStatusCode == http.StatusUnauthorized:
		return &tenants.Error{Code: tenants.CodeUnauthorized, Reason: "stripe_key_refused", Message: "Stripe refused the secret key: " + se.Msg, Err: err}
	case se.HTTPStatusCode == http.StatusNotFound:
		return &tenants.Error{Code: tenants.CodeNotFound, Reason: "stripe_not_found", Message: "Stripe has no such object: " + se.Msg, Err: err}
	}
	return tenants.Internal(fmt.Errorf("stripe refused %s: %s (%s, request %s)", what, se.Msg, se.Code, se.RequestID), what+" at Stripe")
}

// stripeLogger hands stripe-go's own log lines to slog at debug level:
// billing reports every failure itself, once.
type stripeLogger struct{ log *slog.Logger }

func (l stripeLogger) Debugf(format string, v ...any) {
	l.log.Debug("stripe: " + fmt.Sprintf(format, v...))
}
func (l stripeLogger) Infof(format string, v ...any) {
	l.log.Debug("stripe: " + fmt.Sprintf(format, v...))
}
func (l stripeLogger) Warnf(format string, v ...any) {
	l.log.Debug("stripe: " + fmt.Sprintf(format, v...))
}
func (l stripeLogger) Errorf(format string, v ...any) {
	l.log.Debug("stripe: " + fmt.Sprintf(format, v...))
}
