// Package stripetest gives tests stripe-mock, Stripe's protocol-faithful
// local API, and signed webhook events. It fails the test, never skips it,
// when stripe-mock is not running: `make test` starts it.
package stripetest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// Keys tests use; stripe-mock accepts any secret key of this shape.
const (
	SecretKey     = "sk_test_pushgate"
	WebhookSecret = "whsec_pushgate_test"
)

// URL is stripe-mock's address: PUSHGATE_TEST_STRIPE_MOCK_URL, or the port
// scripts/stripe-mock.sh starts it on. The test fails when it does not answer.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("PUSHGATE_TEST_STRIPE_MOCK_URL")
	if u == "" {
		u = "http://127.0.0.1:12111"
	}
	req, err := http.NewRequest(http.MethodGet, u+"/v1/prices/price_probe", nil)
	if err != nil {
		t.Fatalf("PUSHGATE_TEST_STRIPE_MOCK_URL: %v", err)
	}
	req.SetBasicAuth(SecretKey, "")
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("stripe-mock is required for this test and is not reachable at %s: %v (run `make test`, which starts it)", u, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stripe-mock at %s answered %s to a price lookup", u, resp.Status)
	}
	return u
}

// Event is the JSON of a Stripe event of type typ about object, made by Stripe at created.
func Event(t testing.TB, id, typ string, created time.Time, object any) []byte {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "created": created.Unix(),
		"api_version": "2023-10-16", "livemode": false, "pending_webhooks": 1,
		"data": map[string]any{"object": object},
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// Sign returns the Stripe-Signature header of payload signed with secret at time at.
func Sign(payload []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
}

// Subscription is a subscription object as Stripe sends it in events.
func Subscription(id, customer, workspaceID, status, price string, created, periodEnd time.Time) map[string]any {
	return map[string]any{
		"id": id, "object": "subscription", "customer": customer, "status": status,
		"created": created.Unix(), "current_period_end": periodEnd.Unix(),
		"metadata": map[string]string{"workspace_id": workspaceID},
		"items": map[string]any{"object": "list", "data": []map[string]any{{
			"id": "si_" + id, "object": "subscription_item", "price": map[string]any{"id": price, "object": "price"},
		}}},
	}
}

// Invoice is an invoice object of a subscription as Stripe sends it in events.
func Invoice(id, customer, subscription string, created time.Time) map[string]any {
	return map[string]any{"id": id, "object": "invoice", "customer": customer, "subscription": subscription, "created": created.Unix()}
}

// CheckoutSession is a completed Checkout Session as Stripe sends it in events.
func CheckoutSession(id, customer, mode, paymentStatus string, metadata map[string]string) map[string]any {
	return map[string]any{"id": id, "object": "checkout.session", "customer": customer, "mode": mode,
		"status": "complete", "payment_status": paymentStatus, "client_reference_id": metadata["workspace_id"], "metadata": metadata}
}

// Request is one request a Recorder passed on.
type Request struct {
	Method, Path string
	Form         url.Values
}

// Recorder passes requests on to stripe-mock and keeps what was asked, so
// tests can check what billing sent (stripe-mock does not echo everything).
type Recorder struct {
	mu   sync.Mutex
	reqs []Request
}

// Client is an HTTP client whose requests r records.
func (r *Recorder) Client() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: r}
}

// RoundTrip records req and sends it.
func (r *Recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := Request{Method: req.Method, Path: req.URL.Path, Form: req.URL.Query()}
	if req.Body != nil {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		if rec.Form, err = url.ParseQuery(string(body)); err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, rec)
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// Requests returns the recorded requests with this method and path.
func (r *Recorder) Requests(method, path string) []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Request
	for _, q := range r.reqs {
		if q.Method == method && q.Path == path {
			out = append(out, q)
		}
	}
	return out
}
