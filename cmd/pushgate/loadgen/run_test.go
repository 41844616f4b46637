package loadgen

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushgate/pushgate/gateway"
)

// mustGateway builds a gateway target for the given server.
func mustGateway(t *testing.T, cfg GatewayConfig) *Gateway {
	t.Helper()
	g, err := NewGateway(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

func mustRun(t *testing.T, cfg Config) *Result {
	t.Helper()
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func okServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, `{"status":"OK"}`)
		}
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestOpenLoop(t *testing.T) {
	t.Run("a stall shows in the latency of every request scheduled behind it", func(t *testing.T) {
		var n atomic.Int64
		const stall = 300 * time.Millisecond
		srv := okServer(t, func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 10 {
				time.Sleep(stall)
			}
			io.WriteString(w, `{"status":"OK"}`)
		})
		g := mustGateway(t, GatewayConfig{URL: srv.URL, Protocol: ProtocolMattermost, Tokens: []string{"t1"}})
		// One connection, 100 requests/s: the 30 requests due during the stall queue up behind it.
		res := mustRun(t, Config{Concurrency: 1, Rate: 100, Duration: time.Second, NewSender: g.NewSender})
		// A slow machine may leave some unsent; the schedule still sets the count.
		if res.Requests+res.Unsent != 100 {
			t.Errorf("requests = %d + %d unsent, want exactly 100 (100/s for 1s)", res.Requests, res.Unsent)
		}
		if max := res.Latency.Max(); max < stall {
			t.Errorf("max = %v, want at least the stall, %v", max, stall)
		}
		if p99 := res.Latency.Quantile(0.99); p99 < stall*2/3 {
			t.Errorf("p99 = %v, want near the stall (%v): latency must count from the schedule", p99, stall)
		}
		if p90 := res.Latency.Quantile(0.90); p90 < 80*time.Millisecond {
			t.Errorf("p90 = %v: the requests due during the stall were not charged for waiting", p90)
		}
	})

	t.Run("the schedule sets the count, warm-up excluded", func(t *testing.T) {
		srv := okServer(t, nil)
		g := mustGateway(t, GatewayConfig{URL: srv.URL, Protocol: ProtocolMattermost, Tokens: []string{"t1", "t2"}})
		res := mustRun(t, Config{Concurrency: 8, Rate: 200, Warmup: 250 * time.Millisecond, Duration: 500 * time.Millisecond, NewSender: g.NewSender})
		if res.Requests+res.Unsent != 100 || res.Warmup > 50 {
			t.Errorf("requests = %d + %d unsent after %d warm-up, want 100 after at most 50", res.Requests, res.Unsent, res.Warmup)
		}
		if tp := res.Throughput(); tp > 205 {
			t.Errorf("throughput = %.1f/s, above the scheduled 200", tp)
		}
	})

	t.Run("a target that falls behind the rate leaves requests unsent, and the run still ends on time", func(t *testing.T) {
		srv := okServer(t, func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(50 * time.Millisecond)
			io.WriteString(w, `{"status":"OK"}`)
		})
		g := mustGateway(t, GatewayConfig{URL: srv.URL, Protocol: ProtocolMattermost, Tokens: []string{"t1"}})
		start := time.Now()
		// Two connections at 50 ms a request carry 40/s of the 200/s scheduled.
		// The warm-up's backlog is dropped at the start of the window, not carried into it.
		res := mustRun(t, Config{Concurrency: 2, Rate: 200, Warmup: 300 * time.Millisecond, Duration: 500 * time.Millisecond, NewSender: g.NewSender})
		// Sending the backlog would take over two seconds more.
		if took := time.Since(start); took > 1800*time.Millisecond {
			t.Errorf("the run took %v for a 300ms warm-up and a 500ms window", took)
		}
		if res.Warmup > 20 {
			t.Errorf("%d warm-up requests sent; at 40/s about 12 fit in 300ms", res.Warmup)
		}
		if res.Requests+res.Unsent != 100 || res.Unsent < 60 || res.Requests < 10 {
			t.Errorf("%d sent, %d unsent; want about 20 and 80, 100 in all", res.Requests, res.Unsent)
		}
	})

	t.Run("a count stops after exactly that many measured requests", func(t *testing.T) {
		srv := okServer(t, nil)
		g := mustGateway(t, GatewayConfig{URL: srv.URL, Protocol: ProtocolMattermost, Tokens: []string{"t1"}})
		res := mustRun(t, Config{Concurrency: 4, Rate: 1000, Count: 37, NewSender: g.NewSender})
		if res.Requests != 37 || res.Statuses[StatusOK] != 37 {
			t.Errorf("requests = %d (%d OK), want 37", res.Requests, res.Statuses[StatusOK])
		}
	})
}

func TestClosedLoop(t *testing.T) {
	t.Run("keeps every worker busy and reuses connections", func(t *testing.T) {
		var conns atomic.Int64
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"status":"OK"}`)
		}))
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		srv.Start()
		t.Cleanup(srv.Close)
		g := mustGateway(t, GatewayConfig{URL: srv.URL, Protocol: ProtocolMattermost, Tokens: []string{"t1"}})
		res := mustRun(t, Config{Concurrency: 4, Count: 400, Warmup: 50 * time.Millisecond, NewSender: g.NewSender})
		if res.Requests != 400 || res.Statuses[StatusOK] != 400 || res.Errors != 0 {
			t.Errorf("requests = %d, OK %d, errors %d; want 400 OK", res.Requests, res.Statuses[StatusOK], res.Errors)
		}
		if n := conns.Load(); n > 4 {
			t.Errorf("%d connections for 4 workers: keep-alive is not working", n)
		}
	})

	t.Run("a cancelled context ends the run without counting the cut requests", func(t *testing.T) {
		srv := okServer(t, func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(20 * time.Millisecond)
			io.WriteString(w, `{"status":"OK"}`)
		})
		g := mustGateway(t, GatewayConfig{URL: srv.URL, Protocol: ProtocolMattermost, Tokens: []string{"t1"}})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		res, err := Run(ctx, Config{Concurrency: 2, Duration: time.Hour, NewSender: g.NewSender})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Interrupted || res.Errors != 0 || res.Requests == 0 {
			t.Errorf("interrupted %v, %d requests, %d errors; want an interrupted run without errors", res.Interrupted, res.Requests, res.Errors)
		}
	})
}

func TestOutcomes(t *testing.T) {
	t.Run("mattermost answers are counted by status and body", func(t *testing.T) {
		answers := []struct {
			code int
			body string
		}{
			{200, `{"status":"OK"}`},
			{200, `{"status":"REMOVE"}`},
			{200, `{"status":"FAIL","error":"provider said no"}`},
			{429, `{"status":"FAIL","error":"quota exhausted"}`},
			{401, `{"status":"FAIL","error":"unknown token"}`},
			{502, `bad gateway`},
		}
		var (
			n    atomic.Int64
			mu   sync.Mutex
			acks = map[string]bool{}
			bad  []string
		)
		srv := okServer(t, func(w http.ResponseWriter, r *http.Request) {
			var p gateway.MattermostPush
			err := json.NewDecoder(r.Body).Decode(&p)
			mu.Lock()
			switch {
			case err != nil:
				bad = append(bad, "body: "+err.Error())
			case r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/mm/") || !strings.HasSuffix(r.URL.Path, "/api/v1/send_push"):
				bad = append(bad, r.Method+" "+r.URL.Path)
			case r.Header.Get("Content-Type") != "" || r.Header.Get("Authorization") != "":
				bad = append(bad, "Mattermost sends neither Content-Type nor credentials")
			case acks[p.AckID] || len(p.AckID) != 26 || len(p.PostID) != 26 || len(p.ServerID) != 26:
				bad = append(bad, "ids must be fresh 26-character ids: "+p.AckID)
			case len(p.DeviceID) != 64 || (p.Platform != DefaultIOSPlatform && p.Platform != DefaultAndroidPlatform):
				bad = append(bad, "device "+p.DeviceID+" platform "+p.Platform)
			}
			acks[p.AckID] = true
			mu.Unlock()
			a := answers[(n.Add(1)-1)%int64(len(answers))]
			w.WriteHeader(a.code)
			io.WriteString(w, a.body)
		})
		g := mustGateway(t, GatewayConfig{URL: srv.URL, Protocol: ProtocolMattermost, Tokens: []string{"a", "b", "c"},
			Mix: Mix{IOSShare: 0.5}})
		res := mustRun(t, Config{Concurrency: 3, Count: 600, NewSender: g.NewSender})
		for _, b := range bad[:min(len(bad), 5)] {
			t.Error(b)
		}
		want := map[int]int64{200: 300, 429: 100, 401: 100, 502: 100}
		for code, n := range want {
			if res.HTTPStatus[code] != n {
				t.Errorf("HTTP %d: %d, want %d (all: %v)", code, res.HTTPStatus[code], n, res.HTTPStatus)
			}
		}
		wantStatus := [numStatuses]int64{StatusOK: 100, StatusRemove: 100, StatusFail: 300, StatusOther: 100}
		if res.Statuses != wantStatus {
			t.Errorf("statuses %v, want %v", res.Statuses, wantStatus)
		}
		if res.FailSamples["quota exhausted"] != 100 || res.FailSamples["(no reason given)"] != 100 {
			t.Errorf("fail reasons %v", res.FailSamples)
		}
	})

	t.Run("rocket.chat answers are counted by status", func(t *testing.T) {
		var (
			mu  sync.Mutex
			bad []string
			ids = map[string]bool{}
		)
		srv := okServer(t, func(w http.ResponseWriter, r *http.Request) {
			var p gateway.RocketChatPush
			err := json.NewDecoder(r.Body).Decode(&p)
			mu.Lock()
			defer mu.Unlock()
			ref, _ := p.Options.MessageRef()
			switch {
			case err != nil:
				bad = append(bad, "body: "+err.Error())
			case r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Content-Type") != "application/json":
				bad = append(bad, "headers "+r.Header.Get("Authorization"))
			case p.Options.Topic != DefaultTopic || ids[ref] || len(ref) != 26:
				bad = append(bad, "topic "+p.Options.Topic+" message id "+ref)
			}
			ids[ref] = true
			switch {
			case strings.HasPrefix(p.Token, DeadTokenPrefix):
				w.WriteHeader(http.StatusNotAcceptable)
				io.WriteString(w, `{"code":406,"error":"dead","status":406}`)
			case r.URL.Path == "/push/apn/send":
				io.WriteString(w, `{"id":"x"}`)
			case r.URL.Path == "/push/gcm/send":
				w.WriteHeader(http.StatusUnprocessableEntity)
				io.WriteString(w, `{"code":422,"error":"no android","status":422}`)
			default:
				bad = append(bad, r.URL.Path)
			}
		})
		g := mustGateway(t, GatewayConfig{URL: srv.URL, Protocol: ProtocolRocketChat, Tokens: []string{"tok"},
			Mix: Mix{IOSShare: 0.7, DeadShare: 0.2}})
		res := mustRun(t, Config{Concurrency: 2, Count: 1000, NewSender: g.NewSender})
		for _, b := range bad[:min(len(bad), 5)] {
			t.Error(b)
		}
		ok, remove, fail := res.Statuses[StatusOK], res.Statuses[StatusRemove], res.Statuses[StatusFail]
		if ok+remove+fail != 1000 || res.HTTPStatus[200] != ok || res.HTTPStatus[406] != remove || res.HTTPStatus[422] != fail {
			t.Errorf("OK %d REMOVE %d FAIL %d, statuses %v", ok, remove, fail, res.HTTPStatus)
		}
		// 20% dead; of the rest 70% iOS (delivered) and 30% Android (422).
		if remove < 150 || remove > 250 || ok < 480 || ok > 640 {
			t.Errorf("OK %d REMOVE %d FAIL %d, want about 560/200/240", ok, remove, fail)
		}
	})

	t.Run("a dropped connection is an error, not an answer", func(t *testing.T) {
		var n atomic.Int64
		srv := okServer(t, func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1)%2 == 0 {
				c, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					c.Close()
				}
				return
			}
			io.WriteString(w, `{"status":"OK"}`)
		})
		g := mustGateway(t, GatewayConfig{URL: srv.URL, Protocol: ProtocolMattermost, Tokens: []string{"t"}})
		res := mustRun(t, Config{Concurrency: 1, Count: 20, NewSender: g.NewSender})
		if res.Errors != 10 || res.Statuses[StatusOK] != 10 || len(res.ErrorSamples) == 0 {
			t.Errorf("errors %d (%v), OK %d; want 10 and 10", res.Errors, res.ErrorSamples, res.Statuses[StatusOK])
		}
	})
}

func TestMix(t *testing.T) {
	m := Mix{Workspaces: 4, IOSShare: 0.25, DeadShare: 0.1, Seed: 42}
	m.init()
	var ios, dead int
	perWS := make([]int, 4)
	for seq := range uint64(40_000) {
		s := m.Shape(seq)
		perWS[s.Workspace]++
		if s.IOS {
			ios++
		}
		if s.Dead {
			dead++
			if tok := string(m.AppendDeviceToken(nil, s)); !strings.HasPrefix(tok, DeadTokenPrefix) || len(tok) != 64 {
				t.Fatalf("dead token %q", tok)
			}
		}
	}
	if ios < 9_500 || ios > 10_500 || dead < 3_600 || dead > 4_400 {
		t.Errorf("iOS %d, dead %d of 40000; want about 10000 and 4000", ios, dead)
	}
	for i, n := range perWS {
		if n != 10_000 {
			t.Errorf("workspace %d got %d requests, want 10000", i, n)
		}
	}
	other := Mix{Seed: 43}
	if a, b := string(m.AppendID(nil, 'a', 7)), string(other.AppendID(nil, 'a', 7)); a == b || len(a) != 26 {
		t.Errorf("ids %q and %q: two runs must not share ids", a, b)
	}
}
