package gateway

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sideshow/apns2"
)

// provider makes one request for a notification and classifies the answer.
type provider interface {
	send(ctx context.Context, n *notification) Result
	close()
}

// notification is one push ready for a provider; apps pool them.
type notification struct {
	token string
	limit int

	// APNs
	payload    []byte
	topic      string
	pushType   apns2.EPushType
	priority   int
	expiration time.Time

	// FCM
	data map[string]string

	answer  [512]byte // the provider's answer body, while it fits
	scratch bytes.Buffer
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

func (a *App) get() *notification {
	if n, ok := a.pool.Get().(*notification); ok {
		return n
	}
	n := &notification{payload: make([]byte, 0, 2048)}
	if a.kind == KindFCM {
		n.data = make(map[string]string, 24)
	}
	return n
}

func (a *App) put(n *notification) {
	if cap(n.payload) > 64<<10 || n.scratch.Cap() > 64<<10 {
		return
	}
	n.token, n.topic, n.pushType, n.priority, n.limit = "", "", "", 0, 0
	n.expiration = time.Time{}
	n.payload = n.payload[:0]
	clear(n.data)
	n.scratch.Reset()
	a.pool.Put(n)
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
func (a *App) checkSize(n *notification) (Result, bool) {
	var size int
	var what string
	switch {
	case a.kind == KindFCM:
		size, what = fcmDataSize(n.data), "FCM data payload"
	case n.pushType == apns2.PushTypeVOIP:
		size, what = len(n.payload), "APNs VoIP payload"
	default:
		size, what = len(n.payload), "APNs payload"
	}
	if size <= n.limit {
		return Result{}, true
	}
	return Result{Outcome: Failed, Reason: fmt.Sprintf("%s: %s is %d bytes, limit %d", ReasonPayloadTooLarge, what, size, n.limit)}, false
}

// attempt makes one provider request, waiting for a free slot first so a slow
// provider pushes back on callers instead of piling up requests.
func (a *App) attempt(ctx context.Context, n *notification) Result {
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
	res := a.prov.send(ctx, n)
	a.m.latency.Observe(time.Since(start).Seconds())
	a.m.inflight.Dec()
	<-a.sem
	return res
}

// finish records a send's result and logs anything that was not delivered,
// with the device token masked and never a secret.
func (a *App) finish(ctx context.Context, n *notification, res Result) Result {
	if res.Outcome != Delivered {
		res.Reason = truncateUTF8(scrub(res.Reason, n.token), 512)
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
			slog.String("token", MaskToken(n.token)),
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
