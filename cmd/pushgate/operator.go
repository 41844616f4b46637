package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/api"
	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/web"
)

// pushRateSampling is how often the region health page's push rates read the delivery counters.
const pushRateSampling = 10 * time.Second

// regionHealth is what the operator's region health page shows of this replica.
func regionHealth(cfg config, redis bool, ready []api.Checker, apps *gateway.Registry, reg *prometheus.Registry, rates *web.PushRates) web.Health {
	h := web.Health{Rates: rates, Metrics: reg}
	for _, c := range ready {
		h.Checks = append(h.Checks, web.HealthCheck{Name: c.Name, Ping: c.Ping})
	}
	for _, a := range apps.Apps() {
		h.Apps = append(h.Apps, web.AppCredential{ID: a.ID(), Kind: a.Kind(), Topic: a.Topic()})
	}
	v := buildInfo()
	h.Version = v.Version + " (" + v.Hash
	if v.Date != "" {
		h.Version += ", " + v.Date
	}
	h.Version += ")"
	switch {
	case !redis:
		h.QuotaStore = "the database: exact on this single node"
		h.OutagePolicy = "pushes wait for the database; while it is down they are answered \"retry later\""
	case cfg.QuotaPolicy == "fail_closed":
		h.QuotaStore = "Redis, shared by every replica: exact across replicas"
		h.OutagePolicy = "fail_closed: while Redis is unreachable, pushes are refused with \"retry later\""
	default:
		h.QuotaStore = "Redis, shared by every replica: exact across replicas"
		h.OutagePolicy = "fail_open: while Redis is unreachable, each replica counts locally and adds its counts to Redis when it is back"
	}
	return h
}

// refreshWorkspaceUsage copies this month's usage onto the workspaces for
// the operator's list, every tenants.UsageRefreshInterval.
func refreshWorkspaceUsage(ctx context.Context, db *sqlstore.DB, log *slog.Logger) {
	t := time.NewTicker(tenants.UsageRefreshInterval)
	defer t.Stop()
	for {
		if _, err := db.RefreshWorkspaceUsage(ctx, tenants.PeriodOf(time.Now())); err != nil && ctx.Err() == nil {
			log.Warn("copying this month's usage onto the workspace list failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
