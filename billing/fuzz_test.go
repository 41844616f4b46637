package billing_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pushgate/pushgate/billing/stripetest"
	"github.com/pushgate/pushgate/tenants"
)

// FuzzWebhook feeds correctly signed but arbitrary payloads to the webhook:
// whatever Stripe (or someone holding the secret) sends is applied or
// refused as invalid, never a panic or an internal error.
func FuzzWebhook(f *testing.F) {
	b := mustService(f, "http://127.0.0.1:1") // events never call Stripe
	now := time.Now()
	for _, seed := range [][]byte{
		stripetest.Event(f, "evt_1", "customer.subscription.updated", now,
			stripetest.Subscription("sub_1", "cus_1", "ws_1", "active", "price_pro", now, now.Add(720*time.Hour))),
		stripetest.Event(f, "evt_2", "invoice.payment_failed", now, stripetest.Invoice("in_1", "cus_1", "sub_1", now)),
		stripetest.Event(f, "evt_3", "checkout.session.completed", now,
			stripetest.CheckoutSession("cs_1", "cus_1", "payment", "paid", map[string]string{"workspace_id": "ws_1", "pushes": "100000"})),
		[]byte(`{"id":"evt_4","type":"customer.subscription.deleted","data":{"object":{"id":7}}}`),
		[]byte(`{}`), []byte(`[`),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		err := b.HandleWebhook(context.Background(), payload, stripetest.Sign(payload, stripetest.WebhookSecret, time.Now()))
		var e *tenants.Error
		if err != nil && (!errors.As(err, &e) || e.Code != tenants.CodeInvalid && e.Code != tenants.CodeNotFound) {
			t.Fatalf("payload %q: %v, want success or an invalid-event error", payload, err)
		}
	})
}
