package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/pushgate/pushgate/tenants/storetest"
)

// TestQuotaIsExactAcrossReplicas runs three gateways on one Redis and one
// Postgres and sends past a free workspace's limit from 64 senders.
func TestQuotaIsExactAcrossReplicas(t *testing.T) {
	const limit, extra, senders = 10_000, 100, 64
	rdb, _ := storetest.Redis(t)
	sb, _, appsFile := mustSandbox(t)
	env := map[string]string{
		"PUSHGATE_DATABASE_URL": storetest.Postgres(t),
		"PUSHGATE_REDIS_URL":    storetest.RedisURL(),
		"PUSHGATE_APPS_FILE":    appsFile,
	}
	mustRun(t, env, "migrate")
	ws := mustRunJSON(t, env, "workspace", "create", "--name", "Busy", "--email", "ops@busy.example", "--accept-terms", "--json")
	token, id := ws["token"].(string), ws["id"].(string)
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), "pg:{"+id+"}:*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	replicas := make([]*server, 3)
	for i := range replicas {
		replicas[i] = mustServe(t, copyEnv(env))
	}
	// Each replica authenticates the token once before the flood, so what
	// this test measures is the quota, not a cold auth cache on a busy machine.
	for _, r := range replicas {
		(&gatewayUnderTest{server: r, token: token}).usage(t)
	}
	sb.ResetStats()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	var next, ok, refused, other atomic.Int64
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > limit+extra {
					return
				}
				msg := mmPush("android_rn", fmt.Sprintf("device-%d", n))
				body := mustJSON(t, msg)
				url := replicas[n%3].URL + "/mm/" + token + "/api/v1/send_push"
				resp, err := client.Post(url, "", bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				var out model.PushResponse
				_ = decodeInto(resp, &out)
				switch {
				case resp.StatusCode == 200 && out[model.PushStatus] == model.PushStatusOk:
					ok.Add(1)
				case resp.StatusCode == 429:
					refused.Add(1)
				default:
					other.Add(1)
					t.Errorf("unexpected answer %d %v", resp.StatusCode, out)
				}
			}
		}()
	}
	wg.Wait()

	if ok.Load() != limit || refused.Load() != extra || other.Load() != 0 {
		t.Fatalf("%d pushes: %d OK, %d refused, %d other; want exactly %d OK and %d refused", limit+extra, ok.Load(), refused.Load(), other.Load(), limit, extra)
	}
	if got := sb.Stats().FCM.Accepted; got != limit {
		t.Fatalf("the provider received %d pushes, want exactly %d", got, limit)
	}
	for i, r := range replicas {
		g := &gatewayUnderTest{server: r, token: token}
		if used := g.usage(t)["used"].(float64); used != limit {
			t.Fatalf("replica %d reports %v used, want %d", i, used, limit)
		}
	}
}

func decodeInto(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return jsonDecode(resp, v)
}
