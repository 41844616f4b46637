package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/pushgate/pushgate/billing/stripetest"
	"github.com/pushgate/pushgate/tenants/storetest"
)

const testProPrice = "price_pro_monthly"

// billingEnv is the Stripe settings of a gateway billing through stripe-mock.
func billingEnv(t *testing.T) map[string]string {
	return map[string]string{
		"PUSHGATE_STRIPE_SECRET_KEY":     stripetest.SecretKey,
		"PUSHGATE_STRIPE_WEBHOOK_SECRET": stripetest.WebhookSecret,
		"PUSHGATE_STRIPE_API_URL":        stripetest.URL(t),
		"PUSHGATE_STRIPE_PRICES":         "pro=" + testProPrice,
		"PUSHGATE_STRIPE_PACKAGES":       "100000=price_pushes_100k",
	}
}

func TestBillingSettingsStopServeNamingTheSetting(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"a webhook secret without a secret key", map[string]string{"PUSHGATE_STRIPE_WEBHOOK_SECRET": "whsec_x"}, "PUSHGATE_STRIPE_SECRET_KEY"},
		{"prices without a secret key", map[string]string{"PUSHGATE_STRIPE_PRICES": "pro=price_1"}, "PUSHGATE_STRIPE_SECRET_KEY"},
		{"a secret key that is not one", map[string]string{"PUSHGATE_STRIPE_SECRET_KEY": "pk_test_1"}, "PUSHGATE_STRIPE_SECRET_KEY"},
		{"a secret key without the webhook secret", map[string]string{"PUSHGATE_STRIPE_SECRET_KEY": "sk_test_1", "PUSHGATE_STRIPE_PRICES": "pro=price_1"}, "PUSHGATE_STRIPE_WEBHOOK_SECRET"},
		{"no price for pro", map[string]string{"PUSHGATE_STRIPE_SECRET_KEY": "sk_test_1", "PUSHGATE_STRIPE_WEBHOOK_SECRET": "whsec_x"}, "PUSHGATE_STRIPE_PRICES"},
		{"a price id that is not one", map[string]string{"PUSHGATE_STRIPE_PRICES": "pro=prod_123"}, "PUSHGATE_STRIPE_PRICES"},
		{"a price for an unknown plan", map[string]string{"PUSHGATE_STRIPE_PRICES": "pro=price_1,gold=price_2"}, "PUSHGATE_STRIPE_PRICES"},
		{"a price for free", map[string]string{"PUSHGATE_STRIPE_PRICES": "free=price_1"}, "PUSHGATE_STRIPE_PRICES"},
		{"a metered price of a plan without a price", map[string]string{"PUSHGATE_STRIPE_PRICES": "pro=price_1", "PUSHGATE_STRIPE_METERED_PRICES": "enterprise=price_2"}, "PUSHGATE_STRIPE_METERED_PRICES"},
		{"a package without a size", map[string]string{"PUSHGATE_STRIPE_PACKAGES": "lots=price_1"}, "PUSHGATE_STRIPE_PACKAGES"},
		{"a grace that is not a duration", map[string]string{"PUSHGATE_BILLING_GRACE": "a week"}, "PUSHGATE_BILLING_GRACE"},
		{"a return URL that is not one", map[string]string{"PUSHGATE_BILLING_RETURN_URL": "dashboard"}, "PUSHGATE_BILLING_RETURN_URL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"PUSHGATE_LISTEN": "127.0.0.1:0", "PUSHGATE_DATABASE_URL": storetest.SQLite(t)}
			for k, v := range tt.env {
				env[k] = v
			}
			var stderr bytes.Buffer
			err := run(context.Background(), []string{"serve"}, envFrom(env), io.Discard, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run = %v, want an error naming %s", err, tt.want)
			}
			if strings.Contains(stderr.String(), "msg=listening") {
				t.Fatal("listened despite bad billing settings")
			}
		})
	}
}

// TestStripeUpgradeReachesTheNextPushOnAnotherReplica takes a free
// workspace to exactly 10,000 used on two replicas sharing Redis,
// applies a signed customer.subscription.updated to pro on one of them, and
// sends the very next push through the other, whose auth cache still holds
// the workspace on the free plan.
func TestStripeUpgradeReachesTheNextPushOnAnotherReplica(t *testing.T) {
	const limit, senders = 10_000, 16
	rdb, _ := storetest.Redis(t)
	sb, _, appsFile := mustSandbox(t)
	env := billingEnv(t)
	env["PUSHGATE_DATABASE_URL"] = storetest.Postgres(t)
	env["PUSHGATE_REDIS_URL"] = storetest.RedisURL()
	env["PUSHGATE_APPS_FILE"] = appsFile
	env["PUSHGATE_AUTH_CACHE_TTL"] = "1m"
	// A Redis call that times out on a loaded machine refuses the push
	// instead of counting it locally, so Redis's count stays the exact one.
	env["PUSHGATE_QUOTA_REDIS_POLICY"] = "fail_closed"
	mustRun(t, env, "migrate")
	ws := mustRunJSON(t, env, "workspace", "create", "--name", "Growing", "--email", "ops@growing.example", "--accept-terms", "--json")
	token, id := ws["token"].(string), ws["id"].(string)
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), "pg:{"+id+"}:*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	replicas := []*server{mustServe(t, copyEnv(env)), mustServe(t, copyEnv(env))}
	sb.ResetStats()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	push := func(r *server, device string) (int, model.PushResponse) {
		resp, err := client.Post(r.URL+"/mm/"+token+"/api/v1/send_push", "", bytes.NewReader(mustJSON(t, mmPush("android_rn", device))))
		if err != nil {
			t.Error(err)
			return 0, nil
		}
		var out model.PushResponse
		_ = decodeInto(resp, &out)
		return resp.StatusCode, out
	}
	delivered := func(code int, out model.PushResponse) bool {
		return code == 200 && out[model.PushStatus] == model.PushStatusOk
	}
	exhausted := func(code int, out model.PushResponse) bool {
		return code == 429 && strings.Contains(out[model.PushStatusErrorMsg], "monthly quota exhausted")
	}
	// decided sends until the answer is delivered or quota-exhausted: a
	// transient refusal (Redis slow under load) is not what is tested.
	decided := func(r *server, device string) (int, model.PushResponse) {
		for range 10 {
			if code, out := push(r, device); delivered(code, out) || exhausted(code, out) {
				return code, out
			}
		}
		t.Fatalf("push %s was refused transiently ten times", device)
		return 0, nil
	}

	var next, ok atomic.Int64
	var full atomic.Bool
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !full.Load() {
				n := next.Add(1)
				if n > 2*limit {
					t.Errorf("no push was refused for the quota after %d", n)
					return
				}
				code, out := push(replicas[n%2], fmt.Sprintf("device-%d", n))
				switch {
				case delivered(code, out):
					ok.Add(1)
				case exhausted(code, out):
					full.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	g := &gatewayUnderTest{server: replicas[1], token: token}
	if used := g.usage(t)["used"].(float64); used != limit {
		t.Fatalf("the second replica reports %v used, want exactly %d (%d delivered)", used, limit, ok.Load())
	}
	if code, out := decided(replicas[1], "device-over"); !exhausted(code, out) {
		t.Fatalf("the push over the limit on the second replica = %d %v, want 429", code, out)
	}
	before := sb.Stats().FCM.Accepted

	now := time.Now()
	event := stripetest.Event(t, "evt_upgrade", "customer.subscription.updated", now,
		stripetest.Subscription("sub_growing", "cus_growing", id, "active", testProPrice, now.Add(-time.Minute), now.AddDate(0, 1, 0)))
	req, _ := http.NewRequest(http.MethodPost, replicas[0].URL+"/webhooks/stripe", bytes.NewReader(event))
	req.Header.Set("Stripe-Signature", stripetest.Sign(event, stripetest.WebhookSecret, now))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the webhook answered %d; logs:\n%s", resp.StatusCode, replicas[0].stderr)
	}

	if code, out := decided(replicas[1], "device-after-upgrade"); !delivered(code, out) {
		t.Fatalf("the first push after the upgrade, on the other replica = %d %v, want it delivered", code, out)
	}
	if got := sb.Stats().FCM.Accepted; got != before+1 {
		t.Fatalf("the provider accepted %d pushes after the upgrade, want 1", got-before)
	}

	t.Run("workspace show tells the operator the subscription", func(t *testing.T) {
		out := mustRun(t, env, "workspace", "show", id)
		if !strings.Contains(out, "plan      pro (1000000 a month)") || !strings.Contains(out, "billing   pro subscription active") ||
			!strings.Contains(out, "subscription sub_growing") {
			t.Fatalf("workspace show:\n%s", out)
		}
		shown := mustRunJSON(t, env, "workspace", "show", id, "--json")
		b, _ := shown["billing"].(map[string]any)
		if b["plan"] != "pro" || b["status"] != "active" || b["customer_id"] != "cus_growing" || b["subscription_id"] != "sub_growing" {
			t.Fatalf("workspace show --json billing = %v", b)
		}
	})
	t.Run("the replica that applied the event logged it", func(t *testing.T) {
		if log := replicas[0].stderr.String(); !strings.Contains(log, "Stripe event applied") {
			t.Fatalf("no log line of the applied event:\n%s", log)
		}
	})
}

func TestServeWithBillingCheckoutAnswers(t *testing.T) {
	_, _, appsFile := mustSandbox(t)
	env := billingEnv(t)
	env["PUSHGATE_DATABASE_URL"] = storetest.SQLite(t)
	env["PUSHGATE_APPS_FILE"] = appsFile
	mustRun(t, env, "migrate")
	ws := mustRunJSON(t, env, "workspace", "create", "--name", "Buyer", "--email", "ops@buyer.example", "--accept-terms", "--json")
	s := mustServe(t, copyEnv(env))
	for _, tc := range []struct{ path, body string }{
		{"/api/v1/workspace/billing/checkout", `{"plan":"pro"}`},
		{"/api/v1/workspace/billing/package", `{"pushes":100000}`},
		{"/api/v1/workspace/billing/portal", ``},
	} {
		req, _ := http.NewRequest(http.MethodPost, s.URL+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+ws["token"].(string))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		_ = decodeInto(resp, &out)
		if resp.StatusCode != 200 || !strings.HasPrefix(fmt.Sprint(out["url"]), "https://") {
			t.Fatalf("POST %s = %d %v", tc.path, resp.StatusCode, out)
		}
	}
	resp, err := http.Post(s.URL+"/webhooks/stripe", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("an unsigned webhook = %d, want 400", resp.StatusCode)
	}
}

// TestPushPackageRaisesTheLimitOnTheNextPush buys a package for a workspace
// whose limit is used up and sends the next push, on both quota stores.
func TestPushPackageRaisesTheLimitOnTheNextPush(t *testing.T) {
	for name, stores := range map[string][2]string{
		"sqlite":         {storetest.SQLite(t), ""},
		"postgres+redis": {storetest.Postgres(t), storetest.RedisURL()},
	} {
		t.Run(name, func(t *testing.T) {
			sb, _, appsFile := mustSandbox(t)
			env := billingEnv(t)
			env["PUSHGATE_DATABASE_URL"], env["PUSHGATE_APPS_FILE"] = stores[0], appsFile
			if stores[1] != "" {
				env["PUSHGATE_REDIS_URL"] = stores[1]
			}
			mustRun(t, env, "migrate")
			g := &gatewayUnderTest{sb: sb, env: env}
			g.server = mustServe(t, copyEnv(env))
			id, tok := g.newWorkspace(t, true, "--plan", "enterprise", "--limit", "2")
			for i := range 2 {
				if code, _, resp := g.mmSend(t, tok, mmPush("android", fmt.Sprintf("pkg%d", i))); code != 200 {
					t.Fatalf("push %d = %d %v", i, code, resp)
				}
			}
			if code, _, _ := g.mmSend(t, tok, mmPush("android", "pkg-over")); code != 429 {
				t.Fatalf("the push over the limit = %d, want 429", code)
			}
			now := time.Now()
			session := stripetest.CheckoutSession("cs_"+id, "cus_"+id, "payment", "paid",
				map[string]string{"workspace_id": id, "kind": "package", "pushes": "100000"})
			event := stripetest.Event(t, "evt_pkg_"+id, "checkout.session.completed", now, session)
			for range 2 { // a redelivery adds nothing
				req, _ := http.NewRequest(http.MethodPost, g.URL+"/webhooks/stripe", bytes.NewReader(event))
				req.Header.Set("Stripe-Signature", stripetest.Sign(event, stripetest.WebhookSecret, now))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("the webhook answered %d", resp.StatusCode)
				}
			}
			if code, _, resp := g.mmSend(t, tok, mmPush("android", "pkg-after")); code != 200 {
				t.Fatalf("the push after the package = %d %v, want it delivered", code, resp)
			}
			if limit := g.usageOf(t, tok)["limit"]; limit != float64(100_002) {
				t.Fatalf("usage limit = %v, want 100002", limit)
			}
		})
	}
}

// usageOf is GET /api/v1/workspace/usage of the workspace with token.
func (g *gatewayUnderTest) usageOf(t *testing.T, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/api/v1/workspace/usage", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	_ = decodeInto(resp, &out)
	return out
}
