package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/pushgate/pushgate/api"
	"github.com/pushgate/pushgate/billing"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/redisquota"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/web"
)

// closers runs cleanup functions in reverse order of registration, so
// clients close in the reverse order they were started.
type closers []func()

func (c *closers) add(f func()) { *c = append(*c, f) }

func (c closers) closeAll() {
	for i := len(c) - 1; i >= 0; i-- {
		c[i]()
	}
}

func cmdServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	dev := fs.Bool("dev", false, "run on embedded defaults: SQLite under data_dir (./data), created if missing, in-process sandbox providers, a demo workspace")
	load := configFlags(fs, getenv)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	if *dev {
		err = resolveTokenKey(&cfg, true)
	} else if cfg.tokenKeys == nil {
		err = errNoTokenKey
	}
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if getenv("GOGC") == "" {
		// The live heap is small and every push leaves garbage, so collecting
		// less often buys CPU for a little memory (README, Benchmark).
		debug.SetGCPercent(400)
	}

	var cleanup closers
	defer cleanup.closeAll()

	// Listening first lets every URL printed or handed out name the real
	// port; connections wait in the backlog until the server is ready.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	cleanup.add(func() { _ = ln.Close() })
	cfg.listeningOn(ln.Addr())

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// With Redis, quotas live there and plan changes are published to it.
	var rq *redisquota.Store
	var ready []api.Checker
	var limits tenants.LimitPublisher
	if cfg.RedisURL != "" {
		rdb, err := openRedis(ctx, cfg.RedisURL)
		if err != nil {
			return err
		}
		cleanup.add(func() { _ = rdb.Close() })
		ready = append(ready, api.Checker{Name: "redis", Ping: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }})
		rq = redisquota.New(rdb, redisquota.Options{Policy: cfg.quotaPolicy, Log: log.With("component", "quota"), Registerer: reg})
		cleanup.add(rq.Close)
		limits = rq
	}

	db, svc, err := openTenancy(ctx, cfg, log, *dev, limits, reg)
	if err != nil {
		return err
	}
	cleanup.add(func() { _ = db.Close() })
	if rq != nil {
		rq.SeedFrom(db) // a month Redis lost starts from its rolled-up count
	}
	ready = append([]api.Checker{{Name: "database", Ping: db.Ping}}, ready...)
	var devSt *devState
	if *dev {
		if devSt, err = ensureDevSetup(ctx, svc, db, cfg.DataDir); err != nil {
			return err
		}
	}

	// Background jobs stop before the clients they use are closed.
	jobsCtx, stopJobs := context.WithCancel(context.Background())
	defer stopJobs()
	var jobs sync.WaitGroup
	jobs.Add(1)
	go func() { defer jobs.Done(); svc.WatchChanges(jobsCtx, time.Second) }()
	var quotas tenants.QuotaStore = sqlstore.NewQuotaStore(db)
	if rq != nil {
		quotas = rq
	}
	bill, err := openBilling(ctx, cfg, db, svc, quotas, log, reg)
	if err != nil {
		return err
	}
	if rq != nil {
		jobs.Add(2)
		go func() { defer jobs.Done(); rq.Run(jobsCtx) }()
		go func() { defer jobs.Done(); rollupUsage(jobsCtx, svc, rq, db, log) }()
	} else {
		jobs.Add(1)
		go func() { defer jobs.Done(); purgeDedupe(jobsCtx, db, log) }()
	}

	if bill != nil {
		jobs.Add(1)
		go func() { defer jobs.Done(); bill.RunGraceExpiry(jobsCtx, time.Minute) }()
		if cfg.billing.metered {
			jobs.Add(1)
			go func() { defer jobs.Done(); bill.RunOverageReports(jobsCtx, billing.OverageInterval) }()
		}
	}

	// The delivery log's writer flushes what is left when the jobs stop, after
	// the server has stopped taking pushes and before the database closes.
	var deliveries *tenants.DeliveryLog
	if cfg.deliveryLogOn {
		deliveries = tenants.NewDeliveryLog(tenants.DeliveryLogOptions{Store: db, Log: log.With("component", "delivery_log"), Registerer: reg})
		jobs.Add(1)
		go func() { defer jobs.Done(); deliveries.Run(jobsCtx) }()
	}
	jobs.Add(1)
	go func() {
		defer jobs.Done()
		tenants.RunDeliveryRetention(jobsCtx, db, time.Hour, time.Now, log.With("component", "delivery_log"))
	}()

	cleanup.add(func() { stopJobs(); jobs.Wait() })

	apps, sb, err := openRegistry(ctx, cfg, *dev, getenv, log, reg, &cleanup)
	if err != nil {
		return err
	}
	rates := web.NewPushRates(reg, nil)
	jobs.Add(2)
	go func() { defer jobs.Done(); rates.Run(jobsCtx, pushRateSampling) }()
	go func() { defer jobs.Done(); refreshWorkspaceUsage(jobsCtx, db, log) }()
	webDeps := web.Deps{Tenants: svc, Accounts: db, Quotas: quotas, History: db,
		Region: cfg.Region, PublicURL: cfg.PublicURL, RegistrationOpen: cfg.registrationOpen, SignUpsPerHour: cfg.registrationsPH, Log: log.With("component", "dashboard")}
	webDeps.QuotaEvents, webDeps.Apps = db, appIDs(apps)
	if deliveries != nil {
		webDeps.Deliveries = db
	}
	mailer, err := newMailer(cfg, *dev, log)
	if err != nil {
		return err
	}
	webDeps.Mail, webDeps.Billing, webDeps.Health = mailer, bill, regionHealth(cfg, rq != nil, ready, apps, reg, rates)
	dash, err := web.New(webDeps)
	if err != nil {
		return err
	}
	cleanup.add(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		dash.WaitMails(ctx)
	})
	handler := api.NewHandler(api.Deps{
		Log:      log,
		Registry: reg,
		Version:  buildInfo(),
		Ready:    ready,

		Tenants:               svc,
		PublicURL:             cfg.PublicURL,
		RegistrationOpen:      cfg.registrationOpen,
		RegistrationsPerHour:  cfg.registrationsPH,
		TrustProxy:            cfg.trustProxy,
		AuthFailuresPerMinute: cfg.authFailuresPM,

		Apps:       apps,
		Quotas:     quotas,
		History:    db,
		Thresholds: tenants.ThresholdLog{Store: db, Log: log, Now: time.Now},
		Deliveries: deliveries,
		UpgradeURL: cfg.upgradeURL,
		RateLimits: cfg.rateLimits,
		Billing:    bill,
		Dashboard:  dash,
		Owners:     db,
	})
	if cfg.PprofListen != "" {
		stopPprof, err := servePprof(cfg.PprofListen, log)
		if err != nil {
			return err
		}
		cleanup.add(stopPprof)
	}

	var inFlight atomic.Int64 // requests inside the handler, to say how many a shutdown cut off
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inFlight.Add(1)
			defer inFlight.Add(-1)
			handler.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "region", cfg.Region, "database", db.String(), "dev", *dev)
	if *dev {
		sandboxURL := "(apps from " + cfg.AppsFile + ")"
		if sb != nil {
			sandboxURL = sb.URL()
		}
		printDevBanner(stdout, cfg, ln.Addr().String(), devSt, sandboxURL)
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: no new connections; waiting for in-flight requests", "timeout", cfg.shutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	var cutOff int64
	if err := srv.Shutdown(shutdownCtx); err != nil {
		cutOff = inFlight.Load()
		log.Warn("in-flight requests did not finish within shutdown_timeout; closing their connections",
			"requests", cutOff, "timeout", cfg.shutdownTimeout)
		_ = srv.Close()
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("HTTP server stopped with an error", "err", err)
	}
	cleanup.closeAll()
	cleanup = nil
	if cutOff > 0 {
		log.Warn(fmt.Sprintf("stopped; %d in-flight request(s) were cut off at shutdown_timeout", cutOff), "requests", cutOff)
		return nil
	}
	log.Info("stopped cleanly")
	return nil
}

// openRedis connects with short timeouts, so a Redis outage costs a request
// milliseconds rather than hanging it, and checks that Redis answers.
func openRedis(ctx context.Context, rawURL string) (*redis.Client, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	opt.DialTimeout = 2 * time.Second
	opt.ReadTimeout = 500 * time.Millisecond
	opt.WriteTimeout = 500 * time.Millisecond
	opt.PoolTimeout = time.Second
	opt.MaxRetries = 1
	opt.ContextTimeoutEnabled = true
	rdb := redis.NewClient(opt)
	pingCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := rdb.Ping(pingCtx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis at %s does not answer: %w", opt.Addr, err)
	}
	return rdb, nil
}

// purgeDedupe deletes expired duplicate-suppression rows of the SQL quota
// store every minute, so the table holds about one hour of pushes.
func purgeDedupe(ctx context.Context, db *sqlstore.DB, log *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if _, err := db.PurgeExpiredDedupe(ctx, now.UTC()); err != nil && ctx.Err() == nil {
				log.Warn("purging expired duplicate entries failed", "err", err)
			}
		}
	}
}

// rollupUsage copies Redis usage into the database every minute and once
// more on shutdown, so the history survives a Redis loss.
func rollupUsage(ctx context.Context, svc *tenants.Service, quotas tenants.QuotaStore, db *sqlstore.DB, log *slog.Logger) {
	run := func(ctx context.Context) {
		if _, err := tenants.RollupUsage(ctx, svc, quotas, db, time.Now().UTC()); err != nil {
			log.Warn("usage rollup into the database failed; will retry", "err", err)
		}
	}
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			run(final)
			cancel()
			return
		case <-t.C:
			run(ctx)
		}
	}
}

// servePprof serves Go's profiler on its own listener (keep it on loopback).
func servePprof(addr string, log *slog.Logger) (func(), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof listener: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("pprof listening", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}
