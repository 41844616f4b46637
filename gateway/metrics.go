package gateway

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the delivery metrics shared by every app of a registry.
type metrics struct {
	sends    *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inflight *prometheus.GaugeVec
	retries  *prometheus.CounterVec
	// refreshes counts credentials rebuilt after a provider refused them, by result.
	refreshes  *prometheus.CounterVec
	certExpiry *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_provider_sends_total",
			Help: "Notifications handed to a provider, by app, provider, final outcome and reason.",
		}, []string{"app", "provider", "outcome", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pushgate_provider_request_duration_seconds",
			Help:    "Duration of one provider request (one attempt).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"app", "provider"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pushgate_provider_inflight",
			Help: "Provider requests in flight per app.",
		}, []string{"app"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_provider_retries_total",
			Help: "Provider requests repeated after a transient failure.",
		}, []string{"app", "provider"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_provider_credential_refreshes_total",
			Help: "Requests to rebuild an app's provider credential after the provider refused it (APNs ExpiredProviderToken, FCM 401), by result.",
		}, []string{"app", "result"}),
		certExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pushgate_provider_certificate_expiry_timestamp_seconds",
			Help: "When the client certificate of a certificate-auth APNs app expires, in Unix seconds.",
		}, []string{"app"}),
	}
	var err error
	if m.sends, err = register(reg, m.sends); err != nil {
		return nil, err
	}
	if m.latency, err = register(reg, m.latency); err != nil {
		return nil, err
	}
	if m.inflight, err = register(reg, m.inflight); err != nil {
		return nil, err
	}
	if m.retries, err = register(reg, m.retries); err != nil {
		return nil, err
	}
	if m.refreshes, err = register(reg, m.refreshes); err != nil {
		return nil, err
	}
	if m.certExpiry, err = register(reg, m.certExpiry); err != nil {
		return nil, err
	}
	return m, nil
}

// register adds c to reg, reusing an identical collector already registered there.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

// appMetrics are one app's children, resolved once so the hot path does no label lookups.
type appMetrics struct {
	app, provider string
	vec           *prometheus.CounterVec
	sends         [4][]atomic.Pointer[prometheus.Counter]
	latency       prometheus.Observer
	inflight      prometheus.Gauge
	retries       prometheus.Counter
	refreshes     *prometheus.CounterVec
	certExpiryVec *prometheus.GaugeVec
}

func (m *metrics) forApp(app, provider string) *appMetrics {
	am := &appMetrics{
		app:      app,
		provider: provider,
		vec:      m.sends,
		latency:  m.latency.WithLabelValues(app, provider),
		inflight: m.inflight.WithLabelValues(app),
		retries:  m.retries.WithLabelValues(app, provider),

		refreshes:     m.refreshes,
		certExpiryVec: m.certExpiry,
	}
	for i := range am.sends {
		am.sends[i] = make([]atomic.Pointer[prometheus.Counter], len(knownReasons))
	}
	return am
}

// sent counts one finished send; the reason label comes from a fixed set.
func (am *appMetrics) sent(res Result) {
	o := int(res.Outcome)
	if o < 0 || o >= len(am.sends) {
		return
	}
	ri := 0
	if res.Outcome != Delivered {
		ri = reasonIndex(res.Code())
	}
	slot := &am.sends[o][ri]
	c := slot.Load()
	if c == nil {
		counter := am.vec.WithLabelValues(am.app, am.provider, res.Outcome.String(), knownReasons[ri])
		slot.CompareAndSwap(nil, &counter)
		c = slot.Load()
	}
	(*c).Inc()
}

// refreshed counts one request to rebuild the app's credential; one that
// another push already served is not counted.
func (am *appMetrics) refreshed(r refreshResult) {
	if r != refreshDone {
		am.refreshes.WithLabelValues(am.app, r.String()).Inc()
	}
}

func (am *appMetrics) certExpiry(notAfter time.Time) {
	am.certExpiryVec.WithLabelValues(am.app).Set(float64(notAfter.Unix()))
}
