package gateway

import "time"

// How often a provider's credentials may be rebuilt after the provider
// refused them: Apple answers TooManyProviderTokenUpdates to provider tokens
// replaced more often than every 20 minutes; for FCM a minute keeps a
// credential that stays revoked from costing a token exchange per push.
const (
	apnsRefreshInterval = 20 * time.Minute
	fcmRefreshInterval  = time.Minute
)

// refreshResult is what came of one request to rebuild a credential; its
// String is the result label of pushgate_provider_credential_refreshes_total.
type refreshResult int

const (
	// refreshDone: another push already rebuilt the credential it failed with.
	refreshDone refreshResult = iota
	refreshed
	refreshRateLimited
	refreshFailed
)

func (r refreshResult) String() string {
	switch r {
	case refreshed:
		return "refreshed"
	case refreshRateLimited:
		return "rate_limited"
	case refreshFailed:
		return "failed"
	}
	return "already_refreshed"
}

// refreshLimiter allows one rebuild per interval; the first is allowed at once.
// Callers hold the lock that guards the credential.
type refreshLimiter struct {
	interval time.Duration
	last     time.Time
}

func (l *refreshLimiter) allow(now time.Time) bool {
	if !l.last.IsZero() && now.Sub(l.last) < l.interval {
		return false
	}
	l.last = now
	return true
}
