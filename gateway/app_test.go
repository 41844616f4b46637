package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// funcProvider is a provider whose one request is a function; the real
// provider clients are tested against the sandbox.
type funcProvider func(ctx context.Context, m providerMessage) Result

// fakeSender builds messages as its kind does and sends them with a function.
type fakeSender struct {
	provider
	send_ funcProvider
}

func (f fakeSender) send(ctx context.Context, m providerMessage) Result { return f.send_(ctx, m) }
func (f fakeSender) close()                                             {}

// kindBuilder is a provider of kind that builds messages but has no client.
func kindBuilder(kind string) provider {
	if kind == KindAPNs {
		return &apnsProvider{topic: testTopic}
	}
	return &fcmProvider{}
}

func mustTestApp(t testing.TB, kind string, send funcProvider, opts Options, log *slog.Logger) (*App, *prometheus.Registry) {
	t.Helper()
	opts = opts.withDefaults()
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	topic := ""
	if kind == KindAPNs {
		topic = testTopic
	}
	return &App{
		id: "test_" + kind, kind: kind, topic: topic, prov: fakeSender{provider: kindBuilder(kind), send_: send},
		sem: make(chan struct{}, opts.MaxInFlightPerApp),
		policy: retryPolicy{attempts: opts.Attempts, attemptTimeout: opts.AttemptTimeout, deadline: opts.Deadline,
			backoffBase: opts.BackoffBase, backoffMax: opts.BackoffMax, jitter: opts.Jitter},
		now: opts.Now, log: log, m: m.forApp("test_"+kind, kind),
	}, reg
}

func TestSendRejectsOversizedPayloadsBeforeSending(t *testing.T) {
	huge := strings.Repeat("x", 3000)
	tests := []struct {
		name   string
		kind   string
		send   func(*App) Result
		reason string
	}{
		{"APNs alert over 4096 bytes", KindAPNs, func(a *App) Result {
			return a.SendRocketChat(context.Background(), &RocketChatPush{Token: "t", Options: RocketChatOptions{Title: huge, Text: huge}}, false)
		}, "PayloadTooLarge: APNs payload is 6060 bytes, limit 4096"},
		{"APNs VoIP over 5120 bytes", KindAPNs, func(a *App) Result {
			return a.SendRocketChat(context.Background(), &RocketChatPush{Token: "t", Options: RocketChatOptions{Title: huge, Text: huge}}, true)
		}, "PayloadTooLarge: APNs VoIP payload is 6060 bytes, limit 5120"},
		{"FCM data over 4096 bytes", KindFCM, func(a *App) Result {
			return a.SendRocketChat(context.Background(), &RocketChatPush{Token: "t", Options: RocketChatOptions{Title: huge, Text: huge}}, false)
		}, "PayloadTooLarge: FCM data payload is 6012 bytes, limit 4096"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			a, reg := mustTestApp(t, tc.kind, funcProvider(func(context.Context, providerMessage) Result { calls.Add(1); return delivered }), Options{}, nil)
			res := tc.send(a)
			if res.Outcome != Failed || res.Reason != tc.reason || res.Attempts != 0 || calls.Load() != 0 {
				t.Errorf("got %+v after %d requests, want Failed %q without a request", res, calls.Load(), tc.reason)
			}
			if got := metricValue(t, a.m.vec.WithLabelValues(a.id, tc.kind, "failed", "PayloadTooLarge")); got != 1 {
				t.Errorf("sends_total{reason=PayloadTooLarge} = %v, want 1", got)
			}
			_ = reg
		})
	}
}

func TestSendBoundsRequestsInFlight(t *testing.T) {
	const limit, sends = 4, 64
	var now, peak atomic.Int32
	prov := funcProvider(func(ctx context.Context, m providerMessage) Result {
		c := now.Add(1)
		for {
			p := peak.Load()
			if c <= p || peak.CompareAndSwap(p, c) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		now.Add(-1)
		return delivered
	})
	a, _ := mustTestApp(t, KindAPNs, prov, Options{MaxInFlightPerApp: limit}, nil)
	var wg sync.WaitGroup
	for range sends {
		wg.Go(func() {
			if res := a.SendMattermost(context.Background(), &MattermostPush{DeviceID: "d", Type: "message"}, false); res.Outcome != Delivered {
				t.Errorf("got %+v", res)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > limit || p < 2 {
		t.Errorf("peak requests in flight %d, want between 2 and the limit %d", p, limit)
	}
}

func TestWaitingForASlotRespectsTheContext(t *testing.T) {
	release := make(chan struct{})
	prov := funcProvider(func(ctx context.Context, m providerMessage) Result { <-release; return delivered })
	a, _ := mustTestApp(t, KindAPNs, prov, Options{MaxInFlightPerApp: 1, Attempts: 1}, nil)
	go a.SendMattermost(context.Background(), &MattermostPush{DeviceID: "first"}, false)
	for len(a.sem) == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res := a.SendMattermost(ctx, &MattermostPush{DeviceID: "second"}, false)
	close(release)
	if res.Outcome != RetryLater || res.Reason != ReasonTimeout {
		t.Errorf("got %+v, want RetryLater Timeout while the only slot is taken", res)
	}
}

func TestSendCountsOutcomesAndRetries(t *testing.T) {
	var calls atomic.Int32
	prov := funcProvider(func(ctx context.Context, m providerMessage) Result {
		switch m.common().token {
		case "dead":
			return Result{Outcome: DeadToken, Reason: "Unregistered"}
		case "flaky":
			if calls.Add(1)%2 == 1 {
				return Result{Outcome: RetryLater, Reason: "ServiceUnavailable"}
			}
		case "weird":
			return Result{Outcome: Failed, Reason: "SomethingNew: detail"}
		}
		return delivered
	})
	a, _ := mustTestApp(t, KindAPNs, prov, Options{BackoffBase: time.Millisecond}, nil)
	for _, tok := range []string{"ok", "dead", "flaky", "weird"} {
		a.SendMattermost(context.Background(), &MattermostPush{DeviceID: tok}, false)
	}
	for _, c := range []struct {
		outcome, reason string
		want            float64
	}{{"delivered", "none", 2}, {"dead_token", "Unregistered", 1}, {"failed", "other", 1}} {
		if got := metricValue(t, a.m.vec.WithLabelValues(a.id, KindAPNs, c.outcome, c.reason)); got != c.want {
			t.Errorf("sends_total{outcome=%s,reason=%s} = %v, want %v", c.outcome, c.reason, got, c.want)
		}
	}
	if got := metricValue(t, a.m.retries); got != 1 {
		t.Errorf("retries_total = %v, want 1", got)
	}
}

func TestFailedSendLogsNoDeviceToken(t *testing.T) {
	token := "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0"
	prov := funcProvider(func(ctx context.Context, m providerMessage) Result {
		// a provider error that quotes the URL, token included
		return Result{Outcome: Failed, Reason: "BadPath: POST /3/device/" + m.common().token}
	})
	var logs bytes.Buffer
	a, _ := mustTestApp(t, KindAPNs, prov, Options{}, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	res := a.SendMattermost(context.Background(), &MattermostPush{DeviceID: token}, false)
	if strings.Contains(res.Reason, token) || strings.Contains(logs.String(), token) {
		t.Errorf("device token leaked: reason %q, logs %s", res.Reason, logs.String())
	}
	if !strings.Contains(logs.String(), MaskToken(token)) {
		t.Errorf("logs should name the masked token %s: %s", MaskToken(token), logs.String())
	}
}

func TestSuccessfulSendLogsNothingAtInfo(t *testing.T) {
	var logs bytes.Buffer
	a, _ := mustTestApp(t, KindAPNs, funcProvider(func(context.Context, providerMessage) Result { return delivered }),
		Options{}, slog.New(slog.NewTextHandler(&logs, nil)))
	a.SendMattermost(context.Background(), &MattermostPush{DeviceID: "d"}, false)
	if logs.Len() != 0 {
		t.Errorf("a delivered push logged: %s", logs.String())
	}
}

func TestMaskToken(t *testing.T) {
	tests := []struct{ in, want string }{
		{"9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0", "9f8e7d…64"},
		{"fMx2:APA91bEk2xYzq", "fMx2…18"},
		{"short", "s…5"},
		{"", "…0"},
	}
	for _, tc := range tests {
		if got := MaskToken(tc.in); got != tc.want {
			t.Errorf("MaskToken(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The whole send path, the provider client excluded, must stay within the
// allocation budget of DESIGN.md's performance section.
func TestSendPathAllocations(t *testing.T) {
	const budget = 40
	message := mustDecodeSample[MattermostPush](t, "mattermost-message.json")
	rc := mustDecodeSample[RocketChatPush](t, "rocketchat-message.json")
	for _, kind := range []string{KindAPNs, KindFCM} {
		a, _ := mustTestApp(t, kind, funcProvider(func(context.Context, providerMessage) Result { return delivered }), Options{}, nil)
		ctx := context.Background()
		if got := testing.AllocsPerRun(200, func() { a.SendMattermost(ctx, &message, false) }); got > budget {
			t.Errorf("%s Mattermost send: %.0f allocs, budget %d", kind, got, budget)
		}
		if got := testing.AllocsPerRun(200, func() { a.SendRocketChat(ctx, &rc, false) }); got > budget {
			t.Errorf("%s Rocket.Chat send: %.0f allocs, budget %d", kind, got, budget)
		}
	}
}

func BenchmarkSendMattermost(b *testing.B) {
	message := mustDecodeSample[MattermostPush](b, "mattermost-message.json")
	for _, kind := range []string{KindAPNs, KindFCM} {
		b.Run(kind, func(b *testing.B) {
			a, _ := mustTestApp(b, kind, funcProvider(func(context.Context, providerMessage) Result { return delivered }), Options{}, nil)
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					a.SendMattermost(ctx, &message, false)
				}
			})
		})
	}
}

func BenchmarkSendRocketChat(b *testing.B) {
	message := mustDecodeSample[RocketChatPush](b, "rocketchat-message.json")
	for _, kind := range []string{KindAPNs, KindFCM} {
		b.Run(kind, func(b *testing.B) {
			a, _ := mustTestApp(b, kind, funcProvider(func(context.Context, providerMessage) Result { return delivered }), Options{}, nil)
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if res := a.SendRocketChat(ctx, &message, false); res.Outcome != Delivered {
						b.Errorf("got %+v", res)
						return
					}
				}
			})
		})
	}
}

// BenchmarkPrepare measures building a payload alone, as the API does before
// the quota check: no retry loop, no metrics, no provider.
func BenchmarkPrepare(b *testing.B) {
	mm := mustDecodeSample[MattermostPush](b, "mattermost-message.json")
	rc := mustDecodeSample[RocketChatPush](b, "rocketchat-message.json")
	dialects := []struct {
		name    string
		prepare func(*App) (*Prepared, Result)
	}{
		{"mattermost", func(a *App) (*Prepared, Result) { return a.PrepareMattermost(&mm, false) }},
		{"rocketchat", func(a *App) (*Prepared, Result) { return a.PrepareRocketChat(&rc, false) }},
	}
	for _, d := range dialects {
		for _, kind := range []string{KindAPNs, KindFCM} {
			b.Run(d.name+"/"+kind, func(b *testing.B) {
				a, _ := mustTestApp(b, kind, funcProvider(func(context.Context, providerMessage) Result { return delivered }), Options{}, nil)
				b.ReportAllocs()
				for b.Loop() {
					prep, res := d.prepare(a)
					if prep == nil {
						b.Fatalf("not prepared: %+v", res)
					}
					prep.Release()
				}
			})
		}
	}
}

// metricValue reads a counter or gauge.
func metricValue(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatalf("not a counter or gauge: %v", m.Desc())
	return 0
}
