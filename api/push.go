package api

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/tenants"
)

// RateLimit is a per-workspace token bucket: Burst pushes at once, refilled at PerSecond.
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// DefaultRateLimits let a real burst through (a message to a 10,000-member
// channel is 10,000 pushes at once) while stopping a runaway client.
func DefaultRateLimits() map[tenants.Plan]RateLimit {
	return map[tenants.Plan]RateLimit{
		tenants.PlanFree:       {PerSecond: 500, Burst: 20_000},
		tenants.PlanPro:        {PerSecond: 2_000, Burst: 50_000},
		tenants.PlanEnterprise: {PerSecond: 5_000, Burst: 100_000},
	}
}

// ThresholdRecorder is told when a workspace's count reaches 80% or 100% of its limit.
type ThresholdRecorder interface {
	RecordThreshold(ctx context.Context, ws *tenants.Workspace, p tenants.Period, threshold int, used, limit int64)
}

// pusher runs what both push protocols share after decoding: who may send,
// the burst limit, the quota and duplicate check, delivery, and settling.
type pusher struct {
	tenants    *tenants.Service
	quotas     tenants.QuotaStore
	apps       *gateway.Registry
	limits     map[tenants.Plan]RateLimit
	thresholds ThresholdRecorder
	upgradeURL string
	log        *slog.Logger
	now        func() time.Time
	metrics    *pushMetrics
	// deliveries is the delivery log's buffer; nil when the log is off.
	deliveries *tenants.DeliveryLog

	mu       sync.Mutex
	limiters map[string]*workspaceLimiter
}

type workspaceLimiter struct {
	plan tenants.Plan
	lim  *rate.Limiter
}

// sent is what became of a push that passed admission: a duplicate of one
// already forwarded (nothing sent) or the provider's answer.
type sent struct {
	duplicate bool
	res       gateway.Result
}

// deliveryNote names a push for the delivery log, never its content.
type deliveryNote struct {
	protocol string
	ref      string // Mattermost ack_id, Rocket.Chat messageId
	app      string
	token    string // the device token; the log keeps its first characters
}

// push runs a prepared notification through what every protocol shares:
// admission, delivery and settlement. An error means it was refused and
// nothing was sent; prep is released either way.
func (ps *pusher) push(ctx context.Context, p *tenants.Principal, dedupeKey string, note deliveryNote, prep *gateway.Prepared) (sent, error) {
	v, err := ps.admit(ctx, p, dedupeKey)
	if err != nil {
		prep.Release()
		ps.logRefused(p, note, err)
		return sent{}, err
	}
	if v.Decision == tenants.Duplicate {
		prep.Release()
		ps.logDelivery(p, note, tenants.DeliveryDuplicate, "")
		return sent{duplicate: true}, nil
	}
	// An admitted push is counted, so it is forwarded and settled even when
	// the client goes away meanwhile; the gateway's deadline bounds the send.
	ctx = context.WithoutCancel(ctx)
	res := prep.Send(ctx)
	ps.settle(ctx, p, dedupeKey, res)
	ps.logDelivery(p, note, deliveryResult(res.Outcome), res.Reason)
	return sent{res: res}, nil
}

// logDelivery hands an entry to the delivery log's buffer: memory only.
func (ps *pusher) logDelivery(p *tenants.Principal, note deliveryNote, result tenants.DeliveryResult, reason string) {
	if ps.deliveries == nil {
		return
	}
	ps.deliveries.Record(tenants.Delivery{WorkspaceID: p.Workspace.ID, At: ps.now().UTC(), Protocol: note.protocol,
		Ref: note.ref, App: note.app, Result: result, Reason: reason, TokenPrefix: tenants.TokenPrefixOf(note.token)})
}

// logRefused logs a push refused before sending, with the refusal's reason.
func (ps *pusher) logRefused(p *tenants.Principal, note deliveryNote, err error) {
	if ps.deliveries == nil {
		return
	}
	e := tenants.AsError(err)
	reason := e.Reason
	if reason == "" {
		reason = string(e.Code)
	}
	ps.logDelivery(p, note, tenants.DeliveryRefused, reason)
}

// deliveryResult is the log's word for a provider's answer.
func deliveryResult(o gateway.Outcome) tenants.DeliveryResult {
	switch o {
	case gateway.Delivered:
		return tenants.DeliveryDelivered
	case gateway.DeadToken:
		return tenants.DeliveryDeadToken
	case gateway.RetryLater:
		return tenants.DeliveryRetryLater
	}
	return tenants.DeliveryFailed
}

// admit applies the rules that hold on every protocol before anything is
// sent: workspace standing and terms, the burst limit, and the monthly quota
// with duplicate suppression. A Duplicate verdict means "already
// delivered: answer as delivered, send nothing".
func (ps *pusher) admit(ctx context.Context, p *tenants.Principal, dedupeKey string) (v tenants.Verdict, err error) {
	if err := ps.tenants.CanSend(ctx, p); err != nil {
		return v, err
	}
	now := ps.now().UTC()
	burst, wait, ok := ps.reserve(&p.Workspace, now)
	if !ok {
		return v, &tenants.Error{Code: tenants.CodeRateLimited, Reason: "rate_limit",
			RetryAfterSeconds: int(wait/time.Second) + 1,
			Message:           "rate limit: this workspace is sending faster than its plan allows in a burst; retry in a few seconds"}
	}
	// With metered overage the admission limit is Unlimited and the pushes
	// over the included amount are billed; the thresholds still watch it.
	limit := ps.tenants.AdmissionLimit(&p.Workspace)
	v, err = ps.quotas.Admit(ctx, tenants.Admission{WorkspaceID: p.Workspace.ID, Limit: limit,
		LimitVersion: p.Workspace.ChangedAt, DedupeKey: dedupeKey, At: now})
	if err != nil || v.Decision != tenants.Admitted {
		// Only a push that is sent spends the burst allowance: refusals
		// must not turn into rate-limit errors that blame the wrong cause.
		burst.cancel(now)
	}
	if err != nil {
		return v, err
	}
	switch v.Decision {
	case tenants.Exhausted:
		period := tenants.PeriodOf(now)
		reset := period.End()
		return v, &tenants.Error{Code: tenants.CodeQuotaExceeded, Reason: "quota_exhausted",
			RetryAfterSeconds: int(reset.Sub(now).Seconds()) + 1,
			Message: fmt.Sprintf("monthly quota exhausted: this workspace used all %d notifications of its plan for %s; it resets %s; upgrade at %s",
				v.Limit, period, reset.Format(time.RFC3339), ps.upgradeURL)}
	case tenants.Admitted:
		ps.checkThresholds(ctx, &p.Workspace, now, v.Used, p.Workspace.MonthlyLimit())
	}
	return v, nil
}

// checkThresholds records the admission that reached 80% or 100% of the
// included limit; used grows by exactly one per admission, so one request sees each.
func (ps *pusher) checkThresholds(ctx context.Context, ws *tenants.Workspace, now time.Time, used, limit int64) {
	if ps.thresholds == nil || limit <= 0 {
		return
	}
	for _, pct := range [...]int{80, 100} {
		if used == (limit*int64(pct)+99)/100 {
			ps.thresholds.RecordThreshold(ctx, ws, tenants.PeriodOf(now), pct, used, limit)
		}
	}
}

// reservation is one token taken from a workspace's burst bucket.
type reservation struct{ r *rate.Reservation }

// cancel gives the token back.
func (b reservation) cancel(now time.Time) {
	if b.r != nil {
		b.r.CancelAt(now)
	}
}

// reserve takes one token from the workspace's burst bucket, or says how
// long until one is free.
func (ps *pusher) reserve(ws *tenants.Workspace, now time.Time) (reservation, time.Duration, bool) {
	ps.mu.Lock()
	l, ok := ps.limiters[ws.ID]
	if !ok || l.plan != ws.Plan {
		rl := ps.limits[ws.Plan]
		if rl.Burst <= 0 {
			ps.mu.Unlock()
			return reservation{}, 0, true
		}
		l = &workspaceLimiter{plan: ws.Plan, lim: rate.NewLimiter(rate.Limit(rl.PerSecond), rl.Burst)}
		ps.limiters[ws.ID] = l
	}
	ps.mu.Unlock()
	r := l.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return reservation{}, d, false
	}
	return reservation{r}, 0, true
}

// settle records what became of an admitted notification that was not delivered.
func (ps *pusher) settle(ctx context.Context, p *tenants.Principal, dedupeKey string, res gateway.Result) {
	var outcome tenants.Outcome
	switch res.Outcome {
	case gateway.Delivered:
		return
	case gateway.DeadToken:
		outcome = tenants.OutcomeDeadToken
	case gateway.RetryLater:
		outcome = tenants.OutcomeRetryLater
	default:
		outcome = tenants.OutcomeFailed
	}
	if err := ps.quotas.Settle(ctx, p.Workspace.ID, dedupeKey, outcome, ps.now().UTC()); err != nil {
		ps.log.Warn("recording a push outcome failed", "workspace", p.Workspace.ID, "outcome", outcome, "err", err)
	}
}

// dedupeKey hashes the parts that identify one notification of a workspace
// into 16 characters: what the duplicate window stores, never the payload.
func dedupeKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

type pushMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newPushMetrics(reg prometheus.Registerer) *pushMetrics {
	m := &pushMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_push_requests_total",
			Help: "Push requests by protocol, outcome and HTTP status.",
		}, []string{"protocol", "outcome", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pushgate_push_request_duration_seconds",
			Help:    "Latency of whole push requests by protocol.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"protocol"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

func (m *pushMetrics) observe(protocol, outcome string, status int, start time.Time) {
	m.requests.WithLabelValues(protocol, outcome, statusLabel(status)).Inc()
	m.duration.WithLabelValues(protocol).Observe(time.Since(start).Seconds())
}
