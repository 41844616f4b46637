package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushgate/pushgate/api"
	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/storetest"
)

// faultyQuotas is a real quota store with faults switched in by the test.
type faultyQuotas struct {
	tenants.QuotaStore
	down atomic.Bool
	// afterAdmit, when set, runs once a push has been admitted.
	afterAdmit func(ctx context.Context)
}

func (q *faultyQuotas) Admit(ctx context.Context, a tenants.Admission) (tenants.Verdict, error) {
	if q.down.Load() {
		return tenants.Verdict{}, tenants.Errorf(tenants.CodeUnavailable, "quota store unreachable; retry later")
	}
	v, err := q.QuotaStore.Admit(ctx, a)
	if err == nil && q.afterAdmit != nil {
		q.afterAdmit(ctx)
	}
	return v, err
}

// mmPush sends one Mattermost push and returns its status and body.
func (a *testAPI) mmPush(t *testing.T, ctx context.Context, token, ackID string) (int, string) {
	t.Helper()
	body := `{"platform":"apple_rn","server_id":"srv1","device_id":"devtoken` + ackID + `","ack_id":"` + ackID +
		`","type":"message","message":"hi","post_id":"p1","channel_id":"c1"}`
	req, err := http.NewRequestWithContext(ctx, "POST", a.URL+"/api/v1/send_push", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestRefusedPushesLeaveTheBurstAllowanceAlone(t *testing.T) {
	apps, _ := mustSandboxApps(t, gateway.Options{})
	var quotas *faultyQuotas
	a := mustAPI(t, storetest.SQLite(t), apiOptions{registrationOpen: true, apps: apps,
		rateLimits: map[tenants.Plan]api.RateLimit{tenants.PlanFree: {PerSecond: 0.001, Burst: 5}},
		quotas: func(q tenants.QuotaStore) tenants.QuotaStore {
			quotas = &faultyQuotas{QuotaStore: q}
			return quotas
		}})
	_, tok := a.mustRegister(t, "Alpha", true)

	quotas.down.Store(true)
	codes := map[int]int{}
	for i := range 20 {
		code, _ := a.mmPush(t, context.Background(), tok, "down"+string(rune('a'+i)))
		codes[code]++
	}
	if codes[http.StatusServiceUnavailable] != 20 {
		t.Fatalf("with the quota store down: %v, want 20 × 503 and no rate-limit 429", codes)
	}

	quotas.down.Store(false)
	codes = map[int]int{}
	for i := range 6 {
		code, _ := a.mmPush(t, context.Background(), tok, "up"+string(rune('a'+i)))
		codes[code]++
	}
	if codes[http.StatusOK] != 5 || codes[http.StatusTooManyRequests] != 1 {
		t.Fatalf("after the store came back: %v, want the whole burst of 5 × 200, then 1 × 429", codes)
	}
}

func TestAnAdmittedPushIsForwardedWhenTheClientLeaves(t *testing.T) {
	apps, sb := mustSandboxApps(t, gateway.Options{})
	var (
		mu     sync.Mutex
		cancel context.CancelFunc
		store  tenants.QuotaStore
	)
	a := mustAPI(t, storetest.SQLite(t), apiOptions{registrationOpen: true, apps: apps,
		quotas: func(q tenants.QuotaStore) tenants.QuotaStore {
			store = q
			// The client hangs up right after its push was admitted and counted.
			return &faultyQuotas{QuotaStore: q, afterAdmit: func(context.Context) {
				mu.Lock()
				defer mu.Unlock()
				if cancel != nil {
					cancel()
				}
			}}
		}})
	id, tok := a.mustRegister(t, "Alpha", true)

	const n = 10
	for i := range n {
		ctx, c := context.WithCancel(context.Background())
		mu.Lock()
		cancel = c
		mu.Unlock()
		a.mmPush(t, ctx, tok, "gone"+string(rune('a'+i)))
		c()
	}
	if got := sb.Stats().APNs.ByReason["delivered"]; got != n {
		t.Fatalf("the sandbox delivered %d of %d admitted pushes whose clients left", got, n)
	}
	u, err := store.Usage(context.Background(), id, tenants.PeriodOf(time.Now().UTC()))
	if err != nil {
		t.Fatal(err)
	}
	var failed int64
	for _, d := range u.Daily {
		failed += d.Failed
	}
	if u.Used != n || failed != 0 {
		t.Fatalf("usage after %d forwarded pushes: used %d, failed %d", n, u.Used, failed)
	}
}
