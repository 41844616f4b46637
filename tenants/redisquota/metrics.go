package redisquota

import (
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	redisErrors       prometheus.Counter
	failOpenAdmitted  prometheus.Counter
	pendingReconciles prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, log *slog.Logger) *metrics {
	m := &metrics{
		redisErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_quota_redis_errors_total",
			Help: "Quota store calls to Redis that failed or timed out.",
		}),
		failOpenAdmitted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_quota_fail_open_admissions_total",
			Help: "Notifications admitted against the local count while Redis was unreachable.",
		}),
		pendingReconciles: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pushgate_quota_pending_reconcile",
			Help: "Batches of counts made while Redis was unreachable, not yet written to it.",
		}),
	}
	if reg == nil {
		return m
	}
	m.redisErrors = register(reg, m.redisErrors, log)
	m.failOpenAdmitted = register(reg, m.failOpenAdmitted, log)
	m.pendingReconciles = register(reg, m.pendingReconciles, log)
	return m
}

// register adds c to reg, reusing an identical collector already there (a
// second store on one registry); a conflict is logged, and c stays unexported.
func register[C prometheus.Collector](reg prometheus.Registerer, c C, log *slog.Logger) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	log.Warn("quota store metric not registered", "err", err)
	return c
}
