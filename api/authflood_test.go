package api_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/api"
	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/redisquota"
	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
	"github.com/pushgate/pushgate/tenants/storetest"
)

// countingStore counts the queries authentication makes.
type countingStore struct {
	tenants.Store
	lookups atomic.Int64
}

func (s *countingStore) Authenticate(ctx context.Context, hash string, now time.Time) (*tenants.Workspace, error) {
	s.lookups.Add(1)
	return s.Store.Authenticate(ctx, hash, now)
}

func (s *countingStore) LatestConsent(ctx context.Context, id string) (*tenants.Consent, error) {
	s.lookups.Add(1)
	return s.Store.LatestConsent(ctx, id)
}

type floodGateway struct {
	URL   string
	store *countingStore
	reg   *prometheus.Registry
	token string
}

// mustFloodGateway is a gateway on PostgreSQL and Redis with sandbox
// providers, a signing key, one enterprise workspace, and a clock that stands
// still (so the failure limit refills by no timing).
func mustFloodGateway(t *testing.T, trustProxy bool) *floodGateway {
	t.Helper()
	ctx := context.Background()
	db := sqltest.Migrated(t, storetest.Postgres(t))
	key, err := tenants.NewTokenKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	store := &countingStore{Store: db}
	reg := prometheus.NewRegistry()
	svc := tenants.NewService(store, tenants.Config{Region: "us", PublicURL: "https://us.gw.example",
		Terms:        tenants.Terms{Version: "2026-11-01", URL: "https://gw.example/terms", PublishedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		AuthCacheTTL: time.Hour, TokenKeys: &tenants.TokenKeys{Current: key}, Registerer: reg})
	if err := svc.PublishConfiguredTerms(ctx); err != nil {
		t.Fatal(err)
	}
	ws, err := svc.Register(ctx, tenants.RegisterRequest{Name: "Real", ContactEmail: "ops@real.example",
		AcceptTermsVersion: "2026-11-01", Plan: tenants.PlanEnterprise}, "test", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	rdb, prefix := storetest.Redis(t)
	quotas := redisquota.New(rdb, redisquota.Options{Prefix: prefix})
	t.Cleanup(quotas.Close)
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	h := api.NewHandler(api.Deps{Log: slog.New(slog.DiscardHandler), Registry: reg, Tenants: svc,
		Apps: mustFloodApps(t), Quotas: quotas, Now: func() time.Time { return now }, AuthFailuresPerMinute: 60, TrustProxy: trustProxy,
		RateLimits: map[tenants.Plan]api.RateLimit{tenants.PlanEnterprise: {PerSecond: 1e6, Burst: 1e6}}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &floodGateway{URL: srv.URL, store: store, reg: reg, token: ws.Token}
}

// push sends a Mattermost push with token in the path and returns the status.
func (g *floodGateway) push(t *testing.T, c *http.Client, token, ackID string) (int, http.Header) {
	body := fmt.Sprintf(`{"platform":"apple_rn","server_id":"srv1","device_id":"device-%s","type":"message","message":"hi","ack_id":%q}`, ackID, ackID)
	resp, err := c.Post(g.URL+"/mm/"+token+"/api/v1/send_push", "application/json", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// rcPush sends a Rocket.Chat push with token as Bearer and returns the status.
func (g *floodGateway) rcPush(t *testing.T, c *http.Client, token string) int {
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/push/apn/send", strings.NewReader(`{"token":"device-rc","options":{"topic":"app.pushgate.bench","text":"hi"}}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func gathered(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				match = match || l.GetName() == label && l.GetValue() == value
			}
			if match {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

func TestForgedTokenFlood(t *testing.T) {
	g := mustFloodGateway(t, false)
	other, err := tenants.NewTokenKey("k1") // same id, another secret: tokens that look exactly like ours
	if err != nil {
		t.Fatal(err)
	}
	forger := &tenants.TokenKeys{Current: other}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(client.CloseIdleConnections)

	// The real workspace's first push fills the cache: its only lookups.
	if code, _ := g.push(t, client, g.token, "warmup"); code != http.StatusOK {
		t.Fatalf("first push of the real workspace = %d", code)
	}
	lookupsBefore := g.store.lookups.Load()

	const forged, pushers, pushesEach = 3000, 8, 100
	var wg sync.WaitGroup
	var realOK atomic.Int64
	realCodes := make(chan int, pushers*pushesEach)
	start := time.Now()
	for p := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range pushesEach {
				code, _ := g.push(t, client, g.token, fmt.Sprintf("real-%d-%d", p, i))
				if code == http.StatusOK {
					realOK.Add(1)
				} else {
					realCodes <- code
				}
			}
		}()
	}
	// The flood comes from the same address as the real workspace, one
	// request after another, so the failure limit's counts are exact.
	codes := map[int]int{}
	retryAfter := 0
	for i := range forged {
		tok, err := forger.NewToken("us")
		if err != nil {
			t.Fatal(err)
		}
		var code int
		if i%2 == 0 {
			var h http.Header
			code, h = g.push(t, client, tok, fmt.Sprintf("forged-%d", i))
			if code == http.StatusTooManyRequests && h.Get("Retry-After") != "" {
				retryAfter++
			}
		} else {
			code = g.rcPush(t, client, tok)
			if code == http.StatusTooManyRequests {
				retryAfter++ // checked on the Mattermost half
			}
		}
		codes[code]++
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(realCodes)
	for code := range realCodes {
		t.Errorf("a push of the real workspace got %d during the flood", code)
	}

	t.Logf("%d forged tokens and %d real pushes in %s: real workspace %.0f OK/s; %d authentication queries during the flood",
		forged, pushers*pushesEach, elapsed.Round(time.Millisecond), float64(realOK.Load())/elapsed.Seconds(), g.store.lookups.Load()-lookupsBefore)
	t.Run("every push of the real workspace succeeds", func(t *testing.T) {
		if n := realOK.Load(); n != pushers*pushesEach {
			t.Fatalf("%d of %d real pushes OK", n, pushers*pushesEach)
		}
	})
	t.Run("forged tokens cost no database query", func(t *testing.T) {
		if n := g.store.lookups.Load() - lookupsBefore; n != 0 {
			t.Fatalf("%d authentication queries during the flood, want 0", n)
		}
	})
	t.Run("the client gets 401 up to the limit, then 429 with Retry-After", func(t *testing.T) {
		if codes[http.StatusUnauthorized] != 60 || codes[http.StatusTooManyRequests] != forged-60 || retryAfter != forged-60 {
			t.Fatalf("forged tokens answered %v (%d with Retry-After), want 60 × 401 and %d × 429", codes, retryAfter, forged-60)
		}
		if n := gathered(t, g.reg, "pushgate_auth_throttled_total", "", ""); n != forged-60 {
			t.Fatalf("pushgate_auth_throttled_total = %v, want %d", n, forged-60)
		}
		if n := gathered(t, g.reg, "pushgate_auth_rejected_total", "reason", "forged"); n != 60 {
			t.Fatalf("pushgate_auth_rejected_total{reason=forged} = %v, want 60", n)
		}
	})
}

func TestLegacyFormatForgeriesCostAtMostTheLimitInQueries(t *testing.T) {
	g := mustFloodGateway(t, false)
	client := &http.Client{}
	const n = 500
	codes := map[int]int{}
	for i := range n {
		tok, _ := tenants.NewToken("us") // a valid public checksum: only the database can tell
		code, _ := g.push(t, client, tok, fmt.Sprintf("legacy-%d", i))
		codes[code]++
	}
	if codes[http.StatusUnauthorized] != 60 || codes[http.StatusTooManyRequests] != n-60 {
		t.Fatalf("legacy-format forgeries answered %v, want 60 × 401 and %d × 429", codes, n-60)
	}
	if q := g.store.lookups.Load(); q != 60 {
		t.Fatalf("%d legacy-format forgeries cost %d queries, want 60 (the limit)", n, q)
	}
}

func mustFloodApps(t *testing.T) *gateway.Registry {
	apps, _ := mustSandboxApps(t, gateway.Options{})
	return apps
}
