package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/api/clientaddr"
	"github.com/pushgate/pushgate/tenants"
)

// defaultAuthFailuresPerMinute is the per-client limit when Deps leaves it unset.
const defaultAuthFailuresPerMinute = 60

// authFailureLimit counts failed authentications (401s) per client address
// (an IPv4 address or an IPv6 /64) and, once a client is over its limit,
// answers 429 before any lookup, so a client guessing tokens cannot make the
// database work for it. A token the gateway vouches for (cached as a
// workspace's, or signed with its key) still passes: a workspace behind the
// same address as a misconfigured one keeps sending.
type authFailureLimit struct {
	clients   *ipLimiter
	vouch     func(token string) bool
	now       func() time.Time
	throttled prometheus.Counter
}

func newAuthFailureLimit(perMinute int, vouch func(string) bool, now func() time.Time, reg prometheus.Registerer) *authFailureLimit {
	if perMinute <= 0 {
		perMinute = defaultAuthFailuresPerMinute
	}
	l := &authFailureLimit{
		clients: newIPLimiter(perMinute*60, perMinute),
		vouch:   vouch,
		now:     now,
		throttled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_auth_throttled_total",
			Help: "Requests answered 429 because their client address had too many failed authentications in the last minute.",
		}),
	}
	reg.MustRegister(l.throttled)
	return l
}

// middleware limits one protocol: token reads the request's workspace token
// and refuse answers in the protocol's own error shape.
func (l *authFailureLimit) middleware(token func(*http.Request) string, refuse func(http.ResponseWriter, *http.Request, error)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b := l.clients.bucket(clientaddr.Of(r))
			if now := l.now(); b.TokensAt(now) < 1 && !l.vouch(token(r)) {
				l.throttled.Inc()
				wait := int((1-b.TokensAt(now))*float64(l.clients.every)/float64(time.Second)) + 1
				refuse(w, r, &tenants.Error{Code: tenants.CodeRateLimited, Reason: "auth_failures", RetryAfterSeconds: wait,
					Message: fmt.Sprintf("too many requests with a wrong workspace token from your address; retry in %d s with the current token of your workspace", wait)})
				return
			}
			sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
			next.ServeHTTP(sw, r)
			if sw.code == http.StatusUnauthorized {
				b.AllowN(l.now(), 1)
			}
		})
	}
}
