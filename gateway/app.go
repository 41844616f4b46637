package gateway

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// provider is one app's client for its kind of provider: it builds the
// kind's own message from a push, makes one request for it and classifies the
// answer. Each kind lives in its own file and is listed in providerKinds.
type provider interface {
	// newMessage returns an empty message of the provider's kind, for the app's pool.
	newMessage() providerMessage
	buildMattermost(m providerMessage, p *MattermostPush, idOnly bool)
	buildRocketChat(m providerMessage, p *RocketChatPush, voip bool, now time.Time) error
	send(ctx context.Context, m providerMessage) Result
	close()
}

// providerMessage is one push built by a provider for its own kind; apps pool them.
type providerMessage interface {
	common() *messageCommon
	// size is the payload size as the provider counts it, its limit, and what to call it.
	size() (n, limit int, what string)
	// reset clears the message for reuse; false when it grew too large to keep.
	reset() bool
}

// messageCommon is what every kind's message has: the device token and the
// buffers reused from one send to the next.
type messageCommon struct {
	app     *App // whose pool the message belongs to
	token   string
	answer  [512]byte // the provider's answer body, while it fits
	scratch bytes.Buffer
}

func (c *messageCommon) common() *messageCommon { return c }

// resetCommon clears the shared part; false when its buffer grew too large to keep.
func (c *messageCommon) resetCommon() bool {
	if c.scratch.Cap() > 64<<10 {
		return false
	}
	c.token = ""
	c.scratch.Reset()
	return true
}

// App is one push app: its credentials, its provider client and its limits.
type App struct {
	id, kind, topic string
	prov            provider
	sem             chan struct{}
	policy          retryPolicy
	now             func() time.Time
	log             *slog.Logger
	m               *appMetrics
	pool            sync.Pool
}

// ID is the app's id (the Mattermost platform name it serves).
func (a *App) ID() string { return a.id }

// Kind is KindAPNs or KindFCM.
func (a *App) Kind() string { return a.kind }

// Topic is the APNs bundle id ("" for FCM apps).
func (a *App) Topic() string { return a.topic }

func (a *App) get() providerMessage {
	if m, ok := a.pool.Get().(providerMessage); ok {
		return m
	}
	m := a.prov.newMessage()
	m.common().app = a
	return m
}

func (a *App) put(m providerMessage) {
	if m.reset() {
		a.pool.Put(m)
	}
}

// SendMattermost delivers a Mattermost push through this app. idOnly is the
// workspace's id-only privacy policy: content is stripped and the app fetches it.
func (a *App) SendMattermost(ctx context.Context, p *MattermostPush, idOnly bool) Result {
	prep, res := a.PrepareMattermost(p, idOnly)
	if prep == nil {
		return res
	}
	return prep.Send(ctx)
}

// SendRocketChat delivers a Rocket.Chat push through this app; voip (APNs
// only) sends it as a PushKit push on <topic>.voip.
func (a *App) SendRocketChat(ctx context.Context, p *RocketChatPush, voip bool) Result {
	prep, res := a.PrepareRocketChat(p, voip)
	if prep == nil {
		return res
	}
	return prep.Send(ctx)
}

// checkSize rejects what the provider would refuse anyway, before spending a request.
func checkSize(m providerMessage) (Result, bool) {
	size, limit, what := m.size()
	if size <= limit {
		return Result{}, true
	}
	return Result{Outcome: Failed, Reason: fmt.Sprintf("%s: %s is %d bytes, limit %d", ReasonPayloadTooLarge, what, size, limit)}, false
}

// attempt makes one provider request, waiting for a free slot first so a slow
// provider pushes back on callers instead of piling up requests.
func (a *App) attempt(ctx context.Context, m providerMessage) Result {
	select {
	case a.sem <- struct{}{}:
	default:
		select {
		case a.sem <- struct{}{}:
		case <-ctx.Done():
			return contextResult(ctx, nil)
		}
	}
	a.m.inflight.Inc()
	start := time.Now()
	res := a.prov.send(ctx, m)
	a.m.latency.Observe(time.Since(start).Seconds())
	a.m.inflight.Dec()
	<-a.sem
	return res
}

// finish records a send's result and logs anything that was not delivered,
// with the device token masked and never a secret.
func (a *App) finish(ctx context.Context, m providerMessage, res Result) Result {
	token := m.common().token
	if res.Outcome != Delivered {
		res.Reason = truncateUTF8(scrub(res.Reason, token), 512)
	}
	if res.Attempts > 1 {
		a.m.retries.Add(float64(res.Attempts - 1))
	}
	a.m.sent(res)
	if res.Outcome == Delivered {
		return res
	}
	level := slog.LevelWarn
	if res.Outcome == DeadToken {
		level = slog.LevelInfo
	}
	if a.log.Enabled(ctx, level) {
		attrs := []slog.Attr{
			slog.String("app", a.id),
			slog.String("provider", a.kind),
			slog.String("token", MaskToken(token)),
			slog.String("outcome", res.Outcome.String()),
			slog.String("reason", res.Reason),
			slog.Int("attempts", res.Attempts),
		}
		if res.RetryAfter > 0 {
			attrs = append(attrs, slog.String("retry_after", res.RetryAfter.String()))
		}
		a.log.LogAttrs(ctx, level, "push not delivered", attrs...)
	}
	return res
}
