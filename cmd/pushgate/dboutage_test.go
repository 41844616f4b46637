package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/storetest"
)

// answer is one push's status and decoded body.
type answer struct {
	code int
	body map[string]any
}

// sendAll posts body(i) to path for i in [0, n) from workers goroutines, with
// bearer as the token when set, and returns every answer.
func sendAll(g *gatewayUnderTest, path, bearer string, n, workers int, body func(i int) []byte) []answer {
	out := make([]answer, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				req, _ := http.NewRequest(http.MethodPost, g.URL+path, bytes.NewReader(body(i)))
				if bearer != "" {
					req.Header.Set("Authorization", "Bearer "+bearer)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					out[i] = answer{code: -1, body: map[string]any{"error": err.Error()}}
					continue
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				out[i].code = resp.StatusCode
				_ = json.Unmarshal(raw, &out[i].body)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// tally counts answers by status code.
func tally(as []answer) map[int]int {
	m := map[int]int{}
	for _, a := range as {
		m[a.code]++
	}
	return m
}

// TestPushesSurviveADatabaseOutage stops the gateway's PostgreSQL (its own
// instance, never the shared one) under pushes in Redis mode: a workspace
// authenticated before keeps sending, unknown tokens get a transient 503,
// the outage is logged once, and a suspension made once the database is
// back wins.
func TestPushesSurviveADatabaseOutage(t *testing.T) {
	pg := mustOwnPostgres(t)
	sb, _, appsFile := mustSandbox(t)
	env := map[string]string{
		"PUSHGATE_DATABASE_URL": pg.URL,
		"PUSHGATE_REDIS_URL":    storetest.RedisURL(),
		"PUSHGATE_APPS_FILE":    appsFile,
		"PUSHGATE_PUBLIC_URL":   "https://us.gw.example",
		// Short, so that every entry is stale during the outage.
		"PUSHGATE_AUTH_CACHE_TTL": "50ms",
		"PUSHGATE_AUTH_TIMEOUT":   "1s",
	}
	mustRun(t, env, "migrate")
	created := time.Now()
	ws := mustRunJSON(t, env, "workspace", "create", "--name", "Alpha", "--email", "ops@alpha.example", "--plan", "enterprise", "--accept-terms", "--json")
	g := &gatewayUnderTest{sb: sb, env: env, token: ws["token"].(string), id: ws["id"].(string)}
	g.server = mustServe(t, copyEnv(env))

	mm := func(i int) []byte {
		return mustJSON(t, mmPush("apple_rn", fmt.Sprintf("device-%d", i)))
	}
	rc := func(i int) []byte { return rcBody(t, fmt.Sprintf("rc-device-%d", i), rcTopic, fmt.Sprintf("m-%d", i)) }
	if got := tally(sendAll(g, "/mm/"+g.token+"/api/v1/send_push", "", 20, 4, mm)); got[200] != 20 {
		t.Fatalf("pushes before the outage: %v", got)
	}
	if got := tally(sendAll(g, "/push/apn/send", g.token, 5, 1, rc)); got[200] != 5 {
		t.Fatalf("Rocket.Chat pushes before the outage: %v", got)
	}

	pg.stop(t)
	key, err := tenants.ParseTokenKey(testTokenKey)
	if err != nil {
		t.Fatal(err)
	}
	unknown, _ := (&tenants.TokenKeys{Current: key}).NewToken("us")

	const pushes = 2000
	start := time.Now()
	answers := sendAll(g, "/mm/"+g.token+"/api/v1/send_push", "", pushes, 8, mm)
	elapsed := time.Since(start)
	t.Logf("PostgreSQL stopped: %d pushes of a known workspace answered %v in %s", pushes, tally(answers), elapsed.Round(time.Millisecond))

	t.Run("every push of the known workspace is answered OK", func(t *testing.T) {
		for i, a := range answers {
			if a.code != 200 || a.body[model.PushStatus] != model.PushStatusOk {
				t.Fatalf("push %d during the outage: %d %v (all: %v)", i, a.code, a.body, tally(answers))
			}
		}
		if got := tally(sendAll(g, "/push/apn/send", g.token, 100, 4, rc)); got[200] != 100 {
			t.Fatalf("Rocket.Chat pushes during the outage: %v", got)
		}
	})
	t.Run("unknown tokens get a transient 503, never 401", func(t *testing.T) {
		for _, a := range sendAll(g, "/mm/"+unknown+"/api/v1/send_push", "", 50, 4, mm) {
			if a.code != http.StatusServiceUnavailable || a.body["status"] != "FAIL" {
				t.Fatalf("Mattermost push with an unknown token during the outage: %d %v", a.code, a.body)
			}
		}
		for _, a := range sendAll(g, "/push/apn/send", unknown, 50, 4, rc) {
			if a.code != http.StatusServiceUnavailable || a.body["code"] != float64(1011) {
				t.Fatalf("Rocket.Chat push with an unknown token during the outage: %d %v", a.code, a.body)
			}
		}
	})
	t.Run("the outage is logged once, not per push", func(t *testing.T) {
		logs := g.stderr.String()
		// The shared Redis may be slow under a loaded machine: the quota's
		// own outage lines are not the database's.
		// The delivery log says once that its entries wait for the database.
		n, dlog := 0, 0
		for _, line := range strings.Split(logs, "\n") {
			switch {
			case !strings.Contains(line, "level=WARN") || strings.Contains(line, "component=quota"):
			case strings.Contains(line, "component=delivery_log"):
				dlog++
			default:
				n++
			}
		}
		if dlog > 1 {
			t.Fatalf("%d delivery log WARN lines during the outage, want at most 1:\n%s", dlog, logs)
		}
		if n > 1 {
			t.Fatalf("%d WARN lines during the outage, want at most 1:\n%s", n, logs)
		}
		if n := strings.Count(logs, "level=ERROR"); n > 0 {
			t.Fatalf("%d ERROR lines during the outage:\n%s", n, logs)
		}
		if !strings.Contains(logs, "does not answer authentication queries") {
			t.Fatalf("the outage was not logged:\n%s", logs)
		}
	})

	pg.start(t)
	t.Run("a frozen database costs at most auth_timeout, then pushes flow from the cache", func(t *testing.T) {
		// Once the database answers again, a push refreshes the cache.
		for range 600 {
			if strings.Contains(g.stderr.String(), "answers authentication queries again") {
				break
			}
			sendAll(g, "/mm/"+g.token+"/api/v1/send_push", "", 1, 1, mm)
			time.Sleep(50 * time.Millisecond)
		}
		// The change poll's first runs after an outage look back to before
		// it, past the workspace's creation, and drop its entry; wait until
		// they no longer reach back that far, then warm the cache.
		time.Sleep(time.Until(created.Add(14 * time.Second)))
		if got := tally(sendAll(g, "/mm/"+g.token+"/api/v1/send_push", "", 1, 1, mm)); got[200] != 1 {
			t.Fatalf("a push with the database back: %v", got)
		}
		pg.freeze(t)
		defer pg.thaw()
		frozen := sendAll(g, "/mm/"+g.token+"/api/v1/send_push", "", 500, 8, mm)
		for _, a := range frozen {
			if a.code != 200 {
				t.Fatalf("a push with the database frozen: %d %v (all: %v)", a.code, a.body, tally(frozen))
			}
		}
	})
	t.Run("a suspension made once the database is back wins", func(t *testing.T) {
		mustRun(t, env, "workspace", "suspend", g.id)
		for range 600 {
			code, _, resp := g.mmSend(t, g.token, mmPush("apple_rn", "device-after"))
			if code == http.StatusForbidden {
				if !strings.Contains(resp[model.PushStatusErrorMsg], "suspended") {
					t.Fatalf("403 without saying why: %v", resp)
				}
				if !strings.Contains(g.stderr.String(), "answers authentication queries again") {
					t.Fatalf("the end of the outage was not logged:\n%s", g.stderr)
				}
				return
			}
			if code != 200 {
				t.Fatalf("push after the database came back: %d %v", code, resp)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("the suspension never applied after the database came back")
	})
}
