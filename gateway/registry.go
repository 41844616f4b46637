package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options bound every delivery; zero fields take the defaults.
type Options struct {
	// Attempts is the most provider requests per notification (default 3).
	Attempts int
	// AttemptTimeout bounds one provider request, waiting for a slot included (default 8s).
	AttemptTimeout time.Duration
	// Deadline bounds a whole send, retries and backoff included (default 30s).
	Deadline time.Duration
	// MaxInFlightPerApp bounds concurrent provider requests per app (default 1024).
	MaxInFlightPerApp int
	// BackoffBase is the wait before the second attempt; it doubles after (default 100ms).
	BackoffBase time.Duration
	// BackoffMax caps the backoff (default 5s).
	BackoffMax time.Duration
	// Jitter turns a nominal backoff into the actual wait (default: uniform in [d/2, d]).
	Jitter func(time.Duration) time.Duration
	// Now is the clock for payload timestamps and credential refresh limits (default time.Now).
	Now func() time.Time
	// Proxy picks the HTTP CONNECT proxy for a provider URL, nil for none
	// (httpproxy.Config's ProxyFunc gives HTTPS_PROXY and NO_PROXY semantics).
	// Nil: every provider is dialled directly.
	Proxy func(*url.URL) (*url.URL, error)

	// dial opens the TCP connections to providers and proxies (tests map names to loopback).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (o Options) withDefaults() Options {
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = 8 * time.Second
	}
	if o.Deadline <= 0 {
		o.Deadline = 30 * time.Second
	}
	if o.MaxInFlightPerApp <= 0 {
		o.MaxInFlightPerApp = 1024
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = 100 * time.Millisecond
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 5 * time.Second
	}
	if o.BackoffMax < o.BackoffBase {
		o.BackoffMax = o.BackoffBase
	}
	if o.Jitter == nil {
		o.Jitter = equalJitter
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.dial == nil {
		o.dial = (&net.Dialer{Timeout: 20 * time.Second, KeepAlive: 15 * time.Second}).DialContext
	}
	return o
}

// Registry holds the push apps and their provider clients.
type Registry struct {
	apps       []*App
	byID       map[string]*App
	byTopic    map[string]*App
	defaultFCM *App
}

// NewRegistry validates the apps, loads every key, certificate and service
// account (failing here, naming the app, rather than at the first push) and
// builds one provider client per app. Metrics go to reg (nil: not exported).
func NewRegistry(ctx context.Context, apps []AppConfig, opts Options, log *slog.Logger, reg prometheus.Registerer) (*Registry, error) {
	if err := ValidateApps(apps); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	policy := retryPolicy{
		attempts:       opts.Attempts,
		attemptTimeout: opts.AttemptTimeout,
		deadline:       opts.Deadline,
		backoffBase:    opts.BackoffBase,
		backoffMax:     opts.BackoffMax,
		jitter:         opts.Jitter,
	}
	r := &Registry{byID: make(map[string]*App, len(apps)), byTopic: make(map[string]*App)}
	shared := map[string]any{}
	explicitDefault := hasExplicitDefault(apps)
	for _, cfg := range apps {
		am := m.forApp(cfg.ID, cfg.Kind)
		prov, err := providerKinds[cfg.Kind].open(cfg, providerEnv{opts: opts, log: log, m: am, shared: shared})
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("app %s: %w", cfg.ID, err)
		}
		a := &App{
			id:     cfg.ID,
			kind:   cfg.Kind,
			topic:  cfg.Topic,
			prov:   prov,
			sem:    make(chan struct{}, opts.MaxInFlightPerApp),
			policy: policy,
			now:    opts.Now,
			log:    log,
			m:      am,
		}
		log.Info("push app ready", "app", a.id, "kind", a.kind, "topic", a.topic, "endpoint", redactedURL(cfg.Endpoint))
		r.apps = append(r.apps, a)
		r.byID[a.id] = a
		if a.topic != "" {
			if _, taken := r.byTopic[a.topic]; !taken {
				r.byTopic[a.topic] = a // the first app with a topic answers for it
			}
		}
		if a.kind == KindFCM && r.defaultFCM == nil && (cfg.Default || !explicitDefault) {
			r.defaultFCM = a
		}
	}
	return r, nil
}

func hasExplicitDefault(apps []AppConfig) bool {
	for _, a := range apps {
		if a.Kind == KindFCM && a.Default {
			return true
		}
	}
	return false
}

// App finds the app for a Mattermost platform; an app-version suffix ("apple_rn-v2") is ignored.
func (r *Registry) App(platform string) (*App, bool) {
	a, ok := r.byID[PlatformName(platform)]
	return a, ok
}

// APNsByTopic finds the APNs app for a Rocket.Chat topic; "<topic>.voip" finds
// the same app and reports a VoIP push.
func (r *Registry) APNsByTopic(topic string) (app *App, voip bool, ok bool) {
	if a, found := r.byTopic[topic]; found {
		return a, false, true
	}
	if base, isVoIP := strings.CutSuffix(topic, ".voip"); isVoIP {
		if a, found := r.byTopic[base]; found {
			return a, true, true
		}
	}
	return nil, false, false
}

// DefaultFCM is the FCM app for Rocket.Chat's /push/gcm/send: the one marked
// default, else the first FCM app.
func (r *Registry) DefaultFCM() (*App, bool) {
	return r.defaultFCM, r.defaultFCM != nil
}

// Apps lists the apps in file order.
func (r *Registry) Apps() []*App {
	return append([]*App(nil), r.apps...)
}

// Close releases idle provider connections; sends still in flight finish.
func (r *Registry) Close() {
	for _, a := range r.apps {
		a.prov.close()
	}
}

// redactedURL hides a password an operator may have put in an endpoint URL.
func redactedURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return ""
}
