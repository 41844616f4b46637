package api_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/api"
	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/gateway/sandbox"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/redisquota"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/storetest"
)

const benchTopic = "app.pushgate.bench"

// mustSandboxApps starts in-process sandbox providers and returns a registry
// of apps that send to them.
func mustSandboxApps(b testing.TB, opts gateway.Options) (*gateway.Registry, *sandbox.Server) {
	b.Helper()
	dir := b.TempDir()
	kit, err := sandbox.EnsureDevKit(dir, "", "pushgate-bench")
	if err != nil {
		b.Fatal(err)
	}
	sb, err := sandbox.New(sandbox.Config{
		Logger:         slog.New(slog.DiscardHandler),
		APNsKeys:       map[string]*ecdsa.PublicKey{kit.APNsKeyID: kit.APNsKey},
		APNsTopics:     []string{benchTopic},
		FCMAccounts:    map[string]*rsa.PublicKey{kit.ClientEmail: kit.FCMKey},
		FCMProjects:    []string{"pushgate-bench"},
		PayloadHistory: -1,
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := sb.Listen("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sb.Shutdown(context.Background()) })
	if kit, err = sandbox.EnsureDevKit(dir, sb.URL()+"/token", "pushgate-bench"); err != nil {
		b.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, sb.CACertPEM(), 0o600); err != nil {
		b.Fatal(err)
	}
	apps := []gateway.AppConfig{
		{ID: "apple_rn", Kind: gateway.KindAPNs, Topic: benchTopic, KeyFile: kit.APNsKeyFile, KeyID: kit.APNsKeyID,
			TeamID: kit.APNsTeamID, Environment: gateway.EnvDevelopment, Endpoint: sb.URL(), CAFile: caFile},
		{ID: "android_rn", Kind: gateway.KindFCM, ServiceAccountFile: kit.ServiceAccountFile, Endpoint: sb.URL(), CAFile: caFile},
	}
	r, err := gateway.NewRegistry(context.Background(), apps, opts, nil, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.Close)
	return r, sb
}

// discardWriter is a reusable http.ResponseWriter, as net/http's own is pooled.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }

// rewindBody is a request body that can be read again.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

// BenchmarkMattermostPush runs the whole Mattermost send path in process —
// middleware, decode, auth, quota in Redis, payload, the provider client and
// the loopback sandbox — and reports, besides allocs/op, "own-allocs/op": the
// allocations of the path minus those of the provider client and sandbox
// alone (measured in the same benchmark by sending the same prepared
// notification), which is what the design's budget of 40 counts.
func BenchmarkMattermostPush(b *testing.B) {
	for _, platform := range []string{"apple_rn", "android_rn"} {
		b.Run(platform, func(b *testing.B) { benchMattermostPush(b, platform, false) })
	}
}

// BenchmarkMattermostPushDeliveryLog is the same path with the delivery log
// off and on (its writer storing batches in the background): what the log
// costs a push.
func BenchmarkMattermostPushDeliveryLog(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("log=%v", on), func(b *testing.B) { benchMattermostPush(b, "apple_rn", on) })
	}
}

func benchMattermostPush(b *testing.B, platform string, deliveryLog bool) {
	ctx := context.Background()
	apps, _ := mustSandboxApps(b, gateway.Options{})
	db, err := sqlstore.Open(ctx, storetest.SQLite(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	svc := tenants.NewService(db, tenants.Config{Region: "us", PublicURL: "https://us.gw.example",
		Terms: tenants.Terms{Version: "2026-11-01", URL: "https://gw.example/terms", PublishedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		// Longer than the benchmark: a refresh would count a database read.
		AuthCacheTTL: time.Hour})
	if err := svc.PublishConfiguredTerms(ctx); err != nil {
		b.Fatal(err)
	}
	reg, err := svc.Register(ctx, tenants.RegisterRequest{Name: "Bench", ContactEmail: "ops@bench.example",
		AcceptTermsVersion: "2026-11-01", Plan: tenants.PlanEnterprise}, "bench", "127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	rdb, prefix := storetest.Redis(b)
	quotas := redisquota.New(rdb, redisquota.Options{Prefix: prefix})
	b.Cleanup(quotas.Close)
	var dl *tenants.DeliveryLog
	if deliveryLog {
		dl = tenants.NewDeliveryLog(tenants.DeliveryLogOptions{Store: db})
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { dl.Run(runCtx); close(done) }()
		b.Cleanup(func() { stop(); <-done })
	}
	h := api.NewHandler(api.Deps{Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
		Tenants: svc, Apps: apps, Quotas: quotas, RateLimits: map[tenants.Plan]api.RateLimit{}, Deliveries: dl})

	app, _ := apps.App(platform)
	// The body of a real Mattermost server, for this platform.
	sample, err := os.ReadFile(filepath.Join("..", "gateway", "testdata", "samples", "mattermost-message.json"))
	if err != nil {
		b.Fatal(err)
	}
	var msg gateway.MattermostPush
	if err := json.Unmarshal(sample, &msg); err != nil {
		b.Fatal(err)
	}
	// Every push is a new notification, so each one is counted: the last ten
	// characters of its ack_id are the push's number, written in place.
	body := bytes.Replace(sample, []byte(`"platform":"`+msg.Platform+`"`), []byte(`"platform":"`+platform+`"`), 1)
	msg.Platform = platform
	ackEnd := bytes.Index(body, []byte(`"ack_id":"`+msg.AckID+`"`)) + len(`"ack_id":"`+msg.AckID)
	number := func(n int) {
		for i := ackEnd - 1; i >= ackEnd-10; i-- {
			body[i] = byte('0' + n%10)
			n /= 10
		}
	}

	// The provider client and the sandbox alone, sending the same notification.
	provider := allocsPerOp(200, 2000, func() {
		p, res := app.PrepareMattermost(&msg, false)
		if p == nil {
			b.Fatalf("prepare: %+v", res)
		}
		if res := p.Send(ctx); res.Outcome != gateway.Delivered {
			b.Fatalf("send: %+v", res)
		}
		p.Release()
	}) - allocsPerOp(200, 2000, func() {
		p, _ := app.PrepareMattermost(&msg, false)
		p.Release()
	})

	w := &discardWriter{h: http.Header{}}
	rb := &rewindBody{}
	req, err := http.NewRequest(http.MethodPost, "/mm/"+reg.Token+"/api/v1/send_push", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Body = rb
	n := 0
	push := func() {
		n++
		number(n)
		rb.Reset(body)
		req.ContentLength = int64(rb.Len())
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("push %d answered %d", n, w.status)
		}
	}
	for range 200 {
		push()
	}
	var before, after runtime.MemStats
	b.ReportAllocs()
	b.ResetTimer()
	runtime.ReadMemStats(&before)
	for range b.N {
		push()
	}
	runtime.ReadMemStats(&after)
	b.StopTimer()
	total := float64(after.Mallocs-before.Mallocs) / float64(b.N)
	b.ReportMetric(provider, "provider-allocs/op")
	b.ReportMetric(total-provider, "own-allocs/op")
}

// allocsPerOp is the average allocation count of f over runs after warm-up
// calls; unlike testing.AllocsPerRun it leaves GOMAXPROCS alone, so the
// provider client's HTTP/2 goroutines run as they do in the benchmark.
func allocsPerOp(warmup, runs int, f func()) float64 {
	for range warmup {
		f()
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(runs)
}
