package redisquota_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/quotatest"
	"github.com/pushgate/pushgate/tenants/redisquota"
	"github.com/pushgate/pushgate/tenants/storetest"
)

func TestConformance(t *testing.T) {
	// A *redis.Client: admissions are pipelined on the store's own connection.
	t.Run("pipelined admissions", func(t *testing.T) {
		quotatest.Run(t, func(t *testing.T) tenants.QuotaStore {
			rdb, prefix := storetest.Redis(t)
			s := redisquota.New(rdb, redisquota.Options{Prefix: prefix, Timeout: exactTimeout})
			t.Cleanup(s.Close)
			return s
		})
	})
	// A three-master Redis Cluster: go-redis routes each admission to its
	// workspace's slot, one call each.
	t.Run("redis cluster", func(t *testing.T) {
		quotatest.Run(t, func(t *testing.T) tenants.QuotaStore {
			rdb, prefix := storetest.RedisCluster(t)
			return redisquota.New(rdb, redisquota.Options{Prefix: prefix, Timeout: exactTimeout})
		})
	})
	// Any other client (a ring, a wrapper): one go-redis call per admission.
	t.Run("one call per admission", func(t *testing.T) {
		quotatest.Run(t, func(t *testing.T) tenants.QuotaStore {
			rdb, prefix := storetest.Redis(t)
			return redisquota.New(otherClient{rdb}, redisquota.Options{Prefix: prefix, Timeout: exactTimeout})
		})
	})
}

// exactTimeout is long enough that a loaded test machine never makes the
// exactness suite fall back to the outage policy, which is tested on its own.
const exactTimeout = 10 * time.Second

// otherClient is a client that is not a *redis.Client.
type otherClient struct{ *redis.Client }

// pushKey is a dedupe key as the push handlers make it: 16 characters of a hash.
func pushKey(i int) string {
	sum := sha256.Sum256([]byte(strconv.Itoa(i)))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// commandCounter counts the EVALSHA commands written on the connections of
// a client (its pool and the store's own), pipelines included.
type commandCounter struct {
	n atomic.Int64
}

// dialer wraps dial so that every connection counts what it writes.
func (c *commandCounter) dialer(dial func(context.Context, string, string) (net.Conn, error)) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: conn, counter: c}, nil
	}
}

type countingConn struct {
	net.Conn
	counter *commandCounter
	mu      sync.Mutex
	pending []byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.pending = append(c.pending, p...)
	for {
		args, rest, ok := redisquota.ScanCommand(c.pending)
		if !ok {
			break
		}
		if strings.EqualFold(args[0], "EVALSHA") {
			c.counter.n.Add(1)
		}
		c.pending = rest
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func TestAdmitIsOneRoundTrip(t *testing.T) {
	for name, wrap := range map[string]func(*redis.Client) redis.UniversalClient{
		"pipelined":    func(c *redis.Client) redis.UniversalClient { return c },
		"one per call": func(c *redis.Client) redis.UniversalClient { return otherClient{c} },
	} {
		t.Run(name, func(t *testing.T) {
			_, prefix := storetest.Redis(t)
			opt, err := redis.ParseURL(storetest.RedisURL())
			if err != nil {
				t.Fatal(err)
			}
			var counter commandCounter
			opt.Dialer = counter.dialer((&net.Dialer{}).DialContext)
			rdb := redis.NewClient(opt)
			t.Cleanup(func() { rdb.Close() })
			s := redisquota.New(wrap(rdb), redisquota.Options{Prefix: prefix})
			t.Cleanup(s.Close)
			ctx := context.Background()
			at := time.Now().UTC()
			// The first call may load the script (EVALSHA, SCRIPT LOAD, EVALSHA).
			if _, err := s.Admit(ctx, tenants.Admission{WorkspaceID: "ws-rt", Limit: 1000, DedupeKey: pushKey(0), At: at}); err != nil {
				t.Fatal(err)
			}
			before := counter.n.Load()
			const n = 50
			for i := 1; i <= n; i++ {
				if _, err := s.Admit(ctx, tenants.Admission{WorkspaceID: "ws-rt", Limit: 1000, DedupeKey: pushKey(i % 10), At: at}); err != nil {
					t.Fatal(err)
				}
			}
			if got := counter.n.Load() - before; got != n {
				t.Fatalf("%d admissions sent %d EVALSHA, want one each", n, got)
			}
		})
	}
}

// TestPipelineRecovers: a flushed script is loaded again and a dropped
// connection is dialled again, and neither runs an admission twice.
func TestPipelineRecovers(t *testing.T) {
	rdb, prefix := storetest.Redis(t)
	clock := time.Now()
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	s := redisquota.New(rdb, redisquota.Options{Prefix: prefix, Now: now})
	t.Cleanup(s.Close)
	ctx := context.Background()
	at := time.Now().UTC()
	admitMany := func(from, n int) {
		t.Helper()
		var wg sync.WaitGroup
		for i := from; i < from+n; i++ {
			wg.Go(func() {
				v, err := s.Admit(ctx, tenants.Admission{WorkspaceID: "ws-rec", Limit: 1000, DedupeKey: pushKey(i), At: at})
				if err != nil || v.Decision != tenants.Admitted {
					t.Errorf("Admit %d = %v, %v", i, v.Decision, err)
				}
			})
		}
		wg.Wait()
	}
	admitMany(0, 10)

	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	admitMany(10, 40)
	if u, err := s.Usage(ctx, "ws-rec", tenants.PeriodOf(at)); err != nil || u.Used != 50 {
		t.Fatalf("used = %d (%v) after the script was flushed, want 50", u.Used, err)
	}

	// Kill the store's connection (it names itself), then let the breaker close.
	list, err := rdb.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " name=pushgate-quota ") {
			for _, f := range strings.Fields(line) {
				if id, ok := strings.CutPrefix(f, "id="); ok {
					if err := rdb.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err == nil {
						killed++
					}
				}
			}
		}
	}
	if killed == 0 {
		t.Fatalf("no connection named pushgate-quota in CLIENT LIST:\n%s", list)
	}
	// The first admission may find the connection dead and count locally.
	_, _ = s.Admit(ctx, tenants.Admission{WorkspaceID: "ws-other", Limit: 1000, At: at})
	mu.Lock()
	clock = clock.Add(2 * time.Second)
	mu.Unlock()
	admitMany(50, 10)
	if u, err := s.Usage(ctx, "ws-rec", tenants.PeriodOf(at)); err != nil || u.Used != 60 {
		t.Fatalf("used = %d (%v) after the connection was dropped, want 60", u.Used, err)
	}
}

// deadAddr is a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// within fails the test when call takes longer than bound.
func within[T any](t *testing.T, bound time.Duration, what string, call func() (T, error)) (T, error) {
	t.Helper()
	start := time.Now()
	v, err := call()
	if d := time.Since(start); d > bound {
		t.Errorf("%s took %v, want under %v", what, d, bound)
	}
	return v, err
}

func wantDecision(t *testing.T, s *redisquota.Store, ws string, limit int64, key string, at time.Time, want tenants.Decision, used int64) {
	t.Helper()
	v, err := within(t, time.Second, "Admit "+key, func() (tenants.Verdict, error) {
		return s.Admit(context.Background(), tenants.Admission{WorkspaceID: ws, Limit: limit, DedupeKey: key, At: at})
	})
	if err != nil {
		t.Fatalf("Admit(%q): %v", key, err)
	}
	if v.Decision != want || v.Used != used {
		t.Fatalf("Admit(%q) = %s with used %d, want %s with used %d", key, v.Decision, v.Used, want, used)
	}
}

func TestUnreachableRedis(t *testing.T) {
	at := time.Now().UTC()
	newStore := func(t *testing.T, policy redisquota.Policy) (*redisquota.Store, *prometheus.Registry) {
		rdb := redis.NewClient(&redis.Options{Addr: deadAddr(t)})
		t.Cleanup(func() { rdb.Close() })
		reg := prometheus.NewRegistry()
		return redisquota.New(rdb, redisquota.Options{Policy: policy, Registerer: reg}), reg
	}

	t.Run("fail_open admits against a local count, exactly, and answers fast", func(t *testing.T) {
		s, reg := newStore(t, redisquota.FailOpen)
		wantDecision(t, s, "ws-a", 2, "k1", at, tenants.Admitted, 1)
		wantDecision(t, s, "ws-a", 2, "k1", at, tenants.Duplicate, 1)
		wantDecision(t, s, "ws-a", 2, "k2", at, tenants.Admitted, 2)
		wantDecision(t, s, "ws-a", 2, "k3", at, tenants.Exhausted, 2)
		if err := s.Settle(context.Background(), "ws-a", "k2", tenants.OutcomeRetryLater, at); err != nil {
			t.Fatal(err)
		}
		wantDecision(t, s, "ws-a", 2, "k2", at.Add(time.Minute), tenants.Readmitted, 2)
		wantDecision(t, s, "ws-b", 2, "k1", at, tenants.Admitted, 1)

		const limit = 200
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for w := range 64 {
			wg.Go(func() {
				for i := w; i < 2*limit; i += 64 {
					v, err := s.Admit(context.Background(), tenants.Admission{WorkspaceID: "ws-c", Limit: limit, DedupeKey: pushKey(i), At: at})
					if err != nil {
						t.Error(err)
						return
					}
					if v.Decision == tenants.Admitted {
						admitted.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if admitted.Load() != limit {
			t.Errorf("%d of %d admitted locally, want exactly %d", admitted.Load(), 2*limit, limit)
		}
		if got := metric(t, reg, "pushgate_quota_fail_open_admissions_total"); got != limit+3 {
			t.Errorf("fail-open admissions metric = %v, want %d", got, limit+3)
		}
	})

	t.Run("fail_closed refuses admissions as unavailable, fast", func(t *testing.T) {
		s, reg := newStore(t, redisquota.FailClosed)
		for range 3 {
			_, err := within(t, time.Second, "Admit", func() (tenants.Verdict, error) {
				return s.Admit(context.Background(), tenants.Admission{WorkspaceID: "ws-a", Limit: 10, DedupeKey: "k", At: at})
			})
			var te *tenants.Error
			if !errors.As(err, &te) || te.Code != tenants.CodeUnavailable || !strings.Contains(te.Message, "retry later") {
				t.Fatalf("Admit = %v, want a %s error that says to retry later", err, tenants.CodeUnavailable)
			}
		}
		_, err := within(t, time.Second, "Usage", func() (tenants.Usage, error) {
			return s.Usage(context.Background(), "ws-a", tenants.PeriodOf(at))
		})
		if tenants.ErrorCode(err) != tenants.CodeUnavailable {
			t.Fatalf("Usage = %v, want %s", err, tenants.CodeUnavailable)
		}
		// Outcomes and acks admit nothing: they are kept for the reconciler under either policy.
		if err := s.RecordAck(context.Background(), "ws-a", at); err != nil {
			t.Fatalf("RecordAck = %v, want it buffered", err)
		}
		if got := metric(t, reg, "pushgate_quota_redis_errors_total"); got < 1 {
			t.Errorf("redis errors metric = %v, want at least 1", got)
		}
	})

	t.Run("a caller that gives up gets its own error, not an outage", func(t *testing.T) {
		s, reg := newStore(t, redisquota.FailOpen)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := s.Admit(ctx, tenants.Admission{WorkspaceID: "ws-a", Limit: 10, At: at})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Admit with a canceled context = %v, want context.Canceled", err)
		}
		if got := metric(t, reg, "pushgate_quota_fail_open_admissions_total"); got != 0 {
			t.Errorf("fail-open admissions = %v, want 0", got)
		}
	})
}

// metric reads a counter or gauge without labels from reg.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) != 1 {
			continue
		}
		m := mf.GetMetric()[0]
		if m.Counter != nil {
			return m.Counter.GetValue()
		}
		return m.Gauge.GetValue()
	}
	t.Fatalf("metric %s is not registered", name)
	return 0
}

// proxy is a TCP proxy to Redis that a test can cut: then it accepts
// connections and never answers, like a Redis that hangs.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.closeAll()
	})
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		cut := p.cut
		p.mu.Unlock()
		if cut {
			go io.Copy(io.Discard, c) // hold it and never answer
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, up)
		p.mu.Unlock()
		go func() { io.Copy(up, c); up.Close() }()
		go func() { io.Copy(c, up); c.Close() }()
	}
}

func (p *proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// setCut drops every connection and hangs new ones (true) or forwards again (false).
func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	p.cut = cut
	p.mu.Unlock()
	p.closeAll()
}

// syncBuffer is a log destination that tests read while the store writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestOutageIsReconciled(t *testing.T) {
	for _, deadlines := range []bool{true, false} {
		t.Run(fmt.Sprintf("ContextTimeoutEnabled=%v", deadlines), func(t *testing.T) {
			t.Parallel()
			testOutage(t, deadlines)
		})
	}
}

func testOutage(t *testing.T, deadlines bool) {
	direct, prefix := storetest.Redis(t)
	px := startProxy(t, direct.Options().Addr)
	opt := *direct.Options()
	opt.Addr = px.ln.Addr().String()
	opt.ContextTimeoutEnabled = deadlines
	viaProxy := redis.NewClient(&opt)
	t.Cleanup(func() { viaProxy.Close() })

	var logs syncBuffer
	reg := prometheus.NewRegistry()
	s := redisquota.New(viaProxy, redisquota.Options{
		Prefix: prefix, Timeout: 150 * time.Millisecond, Registerer: reg,
		Log: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { s.Run(ctx); close(ran) }()
	t.Cleanup(func() { stop(); <-ran })

	const ws, limit = "ws-outage", 10
	now := time.Now().UTC()
	p := tenants.PeriodOf(now)
	for i := range 3 {
		wantDecision(t, s, ws, limit, fmt.Sprintf("before%d", i), now, tenants.Admitted, int64(i+1))
	}

	px.setCut(true)
	// During the outage: the local count starts from Redis's last answer.
	for i := range 7 {
		wantDecision(t, s, ws, limit, fmt.Sprintf("during%d", i), now, tenants.Admitted, int64(4+i))
		time.Sleep(150 * time.Millisecond) // spread over the breaker's pauses, so some calls try Redis again
	}
	wantDecision(t, s, ws, limit, "during0", now, tenants.Duplicate, limit)
	wantDecision(t, s, ws, limit, "over", now, tenants.Exhausted, limit)
	for _, call := range []func() error{
		func() error { return s.Settle(context.Background(), ws, "during1", tenants.OutcomeRetryLater, now) },
		func() error { return s.Settle(context.Background(), ws, "during2", tenants.OutcomeDeadToken, now) },
		func() error { return s.RecordAck(context.Background(), ws, now) },
	} {
		if _, err := within(t, time.Second, "Settle or RecordAck", func() (int, error) { return 0, call() }); err != nil {
			t.Fatal(err)
		}
	}
	wantDecision(t, s, ws, limit, "during1", now, tenants.Readmitted, limit)
	if _, err := s.Usage(context.Background(), ws, p); tenants.ErrorCode(err) != tenants.CodeUnavailable {
		t.Fatalf("Usage during the outage = %v, want %s", err, tenants.CodeUnavailable)
	}
	if got := metric(t, reg, "pushgate_quota_fail_open_admissions_total"); got != 7 {
		t.Errorf("fail-open admissions = %v, want 7", got)
	}
	if got := metric(t, reg, "pushgate_quota_pending_reconcile"); got < 1 {
		t.Errorf("pending reconcile = %v, want at least 1 batch", got)
	}

	px.setCut(false)
	deadline := time.Now().Add(10 * time.Second)
	for metric(t, reg, "pushgate_quota_pending_reconcile") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the counts of the outage were not written to Redis within 10s of its return")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Redis now holds what this replica admitted, and remembers the outage's keys.
	fresh := redisquota.New(direct, redisquota.Options{Prefix: prefix})
	u, err := fresh.Usage(context.Background(), ws, p)
	if err != nil {
		t.Fatal(err)
	}
	if u.Used != limit || len(u.Daily) != 1 || u.Daily[0].Sent != limit || u.Daily[0].DeadTokens != 1 || u.Daily[0].Acked != 1 {
		t.Fatalf("Usage after the outage = %+v, want %d used and sent, 1 dead token, 1 ack", u, limit)
	}
	wantDecision(t, fresh, ws, limit+5, "during3", now, tenants.Duplicate, limit)
	wantDecision(t, fresh, ws, limit+5, "during2", now, tenants.Readmitted, limit)
	wantDecision(t, fresh, ws, limit+5, "after", now, tenants.Admitted, limit+1)

	if n := strings.Count(logs.String(), "Redis is unreachable"); n != 1 {
		t.Errorf("the outage was logged %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "Redis answers again") {
		t.Errorf("the end of the outage was not logged:\n%s", logs.String())
	}
}

// BenchmarkAdmit admits distinct notifications (the common case) against
// the test Redis: pipelined on the store's own connection (a *redis.Client,
// as serve uses) and through go-redis one call each (any other client).
func BenchmarkAdmit(b *testing.B) {
	keys := make([]string, 1<<18)
	for i := range keys {
		keys[i] = pushKey(i)
	}
	at := time.Now().UTC()
	ctx := context.Background()
	for _, path := range []string{"pipelined", "go-redis"} {
		rdb, prefix := storetest.Redis(b)
		var client redis.UniversalClient = rdb
		if path == "go-redis" {
			client = otherClient{rdb}
		}
		s := redisquota.New(client, redisquota.Options{Prefix: prefix})
		b.Cleanup(s.Close)
		var n atomic.Int64
		admit := func(b *testing.B, ws string) {
			i := int(n.Add(1))
			v, err := s.Admit(ctx, tenants.Admission{WorkspaceID: ws, Limit: tenants.Unlimited, DedupeKey: keys[i%len(keys)], At: at.Add(time.Duration(i) * time.Millisecond)})
			if err != nil {
				b.Fatal(err)
			}
			if v.Decision != tenants.Admitted {
				b.Fatalf("a distinct notification was %s", v.Decision)
			}
		}
		b.Run("serial/"+path, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				admit(b, "ws-bench")
			}
		})
		b.Run("parallel/"+path, func(b *testing.B) {
			b.ReportAllocs()
			var w atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				ws := "ws-bench-" + strconv.Itoa(int(w.Add(1)))
				for pb.Next() {
					admit(b, ws)
				}
			})
		})
	}
}

func TestPublishedLimitWinsOverAnOlderCachedOne(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := storetest.Redis(t)
	s := redisquota.New(rdb, redisquota.Options{Prefix: prefix})
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	cached := at.Add(-time.Hour) // the version a replica read the workspace with
	admit := func(limit int64, version time.Time) tenants.Verdict {
		t.Helper()
		v, err := s.Admit(ctx, tenants.Admission{WorkspaceID: "ws_pub", Limit: limit, LimitVersion: version, At: at})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for range 3 {
		if v := admit(100, cached); v.Decision != tenants.Admitted {
			t.Fatalf("admission under the cached limit = %v", v.Decision)
		}
	}
	if err := s.PublishLimit(ctx, "ws_pub", 3, at.Add(-time.Minute), at); err != nil {
		t.Fatal(err)
	}
	t.Run("a newer published limit applies to a replica with an older copy", func(t *testing.T) {
		if v := admit(100, cached); v.Decision != tenants.Exhausted || v.Limit != 3 {
			t.Fatalf("verdict = %+v, want exhausted at the published limit 3", v)
		}
	})
	t.Run("a replica whose copy is newer than the published one keeps its own", func(t *testing.T) {
		if v := admit(10, at); v.Decision != tenants.Admitted || v.Limit != 10 {
			t.Fatalf("verdict = %+v, want admitted under the newer limit 10", v)
		}
	})
	t.Run("an older publication never replaces a newer one", func(t *testing.T) {
		if err := s.PublishLimit(ctx, "ws_pub", 1000, at.Add(-30*time.Minute), at); err != nil {
			t.Fatal(err)
		}
		if v := admit(100, cached); v.Decision != tenants.Exhausted || v.Limit != 3 {
			t.Fatalf("verdict = %+v, want the limit 3 published later to stand", v)
		}
	})
	t.Run("the usage ignores the published fields", func(t *testing.T) {
		u, err := s.Usage(ctx, "ws_pub", tenants.PeriodOf(at))
		if err != nil || u.Used != 4 || len(u.Daily) != 1 || u.Daily[0].Sent != 4 {
			t.Fatalf("usage = %+v, %v; want 4 used on one day", u, err)
		}
	})
}

func TestClusterSpreadsWorkspacesOverItsMasters(t *testing.T) {
	rdb, prefix := storetest.RedisCluster(t)
	s := redisquota.New(rdb, redisquota.Options{Prefix: prefix, Timeout: exactTimeout})
	ctx := context.Background()
	at := time.Now().UTC()
	const workspaces = 30
	for i := range workspaces {
		ws := fmt.Sprintf("ws-spread-%d", i)
		wantDecision(t, s, ws, 10, "k", at, tenants.Admitted, 1)
		if err := s.Settle(ctx, ws, "k", tenants.OutcomeFailed, at.Add(11*time.Minute)); err != nil {
			t.Fatal(err) // moves the key to a later bucket: a script over several hashes of one slot
		}
	}
	var mu sync.Mutex
	var masters, keys int
	err := rdb.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		n, err := c.Eval(ctx, "return #redis.call('KEYS', ARGV[1])", nil, prefix+"*").Int()
		mu.Lock()
		defer mu.Unlock()
		if n > 0 {
			masters++
		}
		keys += n
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if masters < 2 || keys != 2*workspaces {
		t.Fatalf("%d keys on %d masters, want %d (a month and a bucket each) spread over at least 2", keys, masters, 2*workspaces)
	}
}
