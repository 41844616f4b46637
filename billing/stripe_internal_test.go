package billing

import (
	"errors"
	"net/http"
	"testing"

	"github.com/stripe/stripe-go/v76"

	"github.com/pushgate/pushgate/tenants"
)

func TestStripeErrorsAreClassified(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want tenants.Code
	}{
		{"an unreachable Stripe is unavailable", errors.New("dial tcp 127.0.0.1:1: connection refused"), tenants.CodeUnavailable},
		{"Stripe failing is unavailable", &stripe.Error{HTTPStatusCode: http.StatusBadGateway}, tenants.CodeUnavailable},
		{"Stripe rate limiting is unavailable", &stripe.Error{HTTPStatusCode: http.StatusTooManyRequests}, tenants.CodeUnavailable},
		{"a concurrent request under the same idempotency key is unavailable", &stripe.Error{HTTPStatusCode: http.StatusConflict, Code: stripe.ErrorCodeIdempotencyKeyInUse}, tenants.CodeUnavailable},
		{"an unknown price is not found", &stripe.Error{HTTPStatusCode: http.StatusNotFound, Code: stripe.ErrorCodeResourceMissing, Msg: "No such price: 'price_x'"}, tenants.CodeNotFound},
		{"a refused key is unauthorized", &stripe.Error{HTTPStatusCode: http.StatusUnauthorized}, tenants.CodeUnauthorized},
		{"a refused request is ours to fix", &stripe.Error{HTTPStatusCode: http.StatusBadRequest, Msg: "You specified payment mode but passed a recurring price"}, tenants.CodeInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tenants.ErrorCode(stripeError(tc.err, "testing")); got != tc.want {
				t.Fatalf("code = %s, want %s", got, tc.want)
			}
		})
	}
}
