package gateway

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/gateway/sandbox"
)

// These tests drive the gateway's own APNs and FCM clients through a Registry
// against the sandbox providers, over TLS and HTTP/2.

const testProject = "pushgate-test"

var (
	devKitOnce sync.Once
	devKitDir  string
	devKitErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if devKitDir != "" {
		_ = os.RemoveAll(devKitDir)
	}
	os.Exit(code)
}

// sandboxEnv is a running sandbox and the files an apps list needs to reach it.
type sandboxEnv struct {
	srv    *sandbox.Server
	kit    sandbox.DevKit
	caFile string
	dir    string
}

// mustCopyDevKit puts the test binary's dev kit keys into dir (generated once:
// RSA generation is slow under -race) and points its service account at tokenURI.
func mustCopyDevKit(t testing.TB, dir, tokenURI string) sandbox.DevKit {
	t.Helper()
	devKitOnce.Do(func() {
		if devKitDir, devKitErr = os.MkdirTemp("", "pushgate-devkit-"); devKitErr == nil {
			_, devKitErr = sandbox.EnsureDevKit(devKitDir, "", testProject)
		}
	})
	if devKitErr != nil {
		t.Fatal(devKitErr)
	}
	for _, name := range []string{"apns-dev.p8", "fcm-dev-service-account.json"} {
		b, err := os.ReadFile(filepath.Join(devKitDir, name))
		if err != nil {
			t.Fatal(err)
		}
		mustWriteFile(t, dir, name, string(b))
	}
	kit, err := sandbox.EnsureDevKit(dir, tokenURI, testProject)
	if err != nil {
		t.Fatal(err)
	}
	return kit
}

// mustStartSandbox starts a sandbox that knows the dev kit's keys.
func mustStartSandbox(t testing.TB, latency time.Duration) *sandboxEnv {
	t.Helper()
	return mustStartSandboxAs(t, sandbox.Config{Latency: latency}, "")
}

// mustStartSandboxAs starts a sandbox with cfg and the dev kit's keys; the
// kit's token URI names tokenHost at the sandbox's port, or its own address
// when tokenHost is empty.
func mustStartSandboxAs(t testing.TB, cfg sandbox.Config, tokenHost string) *sandboxEnv {
	t.Helper()
	dir := t.TempDir()
	kit := mustCopyDevKit(t, dir, "")
	cfg.APNsKeys = map[string]*ecdsa.PublicKey{kit.APNsKeyID: kit.APNsKey}
	cfg.APNsTopics = []string{testTopic}
	cfg.FCMAccounts = map[string]*rsa.PublicKey{kit.ClientEmail: kit.FCMKey}
	cfg.FCMProjects = []string{kit.ProjectID}
	srv, err := sandbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	tokenURL := srv.URL() + "/token"
	if tokenHost != "" {
		_, port, _ := net.SplitHostPort(srv.Addr())
		tokenURL = "https://" + tokenHost + ":" + port + "/token"
	}
	if kit, err = sandbox.EnsureDevKit(dir, tokenURL, testProject); err != nil {
		t.Fatal(err)
	}
	return &sandboxEnv{srv: srv, kit: kit, caFile: mustWriteFile(t, dir, "sandbox-ca.pem", string(srv.CACertPEM())), dir: dir}
}

// apps lists one app per way of authenticating: APNs token, APNs certificate, FCM.
func (e *sandboxEnv) apps(t testing.TB) []AppConfig {
	t.Helper()
	certPEM, keyPEM, err := e.srv.IssueClientCert(testTopic)
	if err != nil {
		t.Fatal(err)
	}
	certFile := mustWriteFile(t, e.dir, "apns-cert.pem", string(certPEM)+string(keyPEM))
	return []AppConfig{
		{ID: "apple_rn", Kind: KindAPNs, Topic: testTopic, KeyFile: e.kit.APNsKeyFile, KeyID: e.kit.APNsKeyID, TeamID: e.kit.APNsTeamID,
			Environment: EnvDevelopment, Endpoint: e.srv.URL(), CAFile: e.caFile},
		{ID: "apple_cert", Kind: KindAPNs, Topic: testTopic, CertFile: certFile,
			Environment: EnvDevelopment, Endpoint: e.srv.URL(), CAFile: e.caFile},
		{ID: "android_rn", Kind: KindFCM, ServiceAccountFile: e.kit.ServiceAccountFile, Endpoint: e.srv.URL(), CAFile: e.caFile},
	}
}

func fastOptions() Options {
	return Options{Attempts: 3, AttemptTimeout: 5 * time.Second, Deadline: 10 * time.Second, BackoffBase: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond}
}

func mustRegistry(t *testing.T, apps []AppConfig, opts Options, log *slog.Logger) *Registry {
	t.Helper()
	r, err := NewRegistry(context.Background(), apps, opts, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func mustApp(t *testing.T, r *Registry, id string) *App {
	t.Helper()
	a, ok := r.App(id)
	if !ok {
		t.Fatalf("no app %q", id)
	}
	return a
}

func mustStatsOf(t *testing.T, s sandbox.Stats, kind string) sandbox.KindStats {
	t.Helper()
	if kind == KindAPNs {
		return s.APNs
	}
	return s.FCM
}

// sendTo sends a minimal Mattermost message to token through app.
func sendTo(ctx context.Context, a *App, token string) Result {
	return a.SendMattermost(ctx, &MattermostPush{Platform: a.ID(), DeviceID: token, ServerID: "s1", Type: MattermostTypeMessage, Message: "hi", ChannelID: "c1", Version: "v2"}, false)
}

func TestDeliveryOutcomesByDeviceToken(t *testing.T) {
	env := mustStartSandbox(t, 0)
	opts := fastOptions()
	opts.Attempts = 1
	r := mustRegistry(t, env.apps(t), opts, nil)

	tests := []struct {
		name       string
		prefix     string
		outcome    Outcome
		apnsReason string
		fcmReason  string
		retryAfter time.Duration
		throttled  bool
	}{
		{"accepted token is delivered", "a1b2c3", Delivered, "", "", 0, false},
		{"unregistered token is dead", "unregistered", DeadToken, "Unregistered", "UNREGISTERED", 0, false},
		{"bad device token is dead", "baddevice", DeadToken, "BadDeviceToken", "INVALID_ARGUMENT", 0, false},
		{"unavailable provider is retry later, not throttled", "unavailable", RetryLater, "ServiceUnavailable", "UNAVAILABLE", time.Second, false},
		{"throttled sender is retry later and throttled", "toomany", RetryLater, "TooManyRequests", "QUOTA_EXCEEDED", time.Second, true},
	}
	for _, appID := range []string{"apple_rn", "apple_cert", "android_rn"} {
		a := mustApp(t, r, appID)
		for _, tc := range tests {
			t.Run(appID+"/"+tc.name, func(t *testing.T) {
				env.srv.ResetStats()
				res := sendTo(context.Background(), a, tc.prefix+"0123456789abcdef0123456789abcdef")
				want := tc.apnsReason
				if a.Kind() == KindFCM {
					want = tc.fcmReason
				}
				if res.Outcome != tc.outcome || res.Code() != want || res.Attempts != 1 || res.RetryAfter != tc.retryAfter || res.Throttled != tc.throttled {
					t.Errorf("got %+v, want %v %q after 1 attempt, RetryAfter %v, Throttled %v", res, tc.outcome, want, tc.retryAfter, tc.throttled)
				}
				if tc.outcome == Delivered && res.ID == "" {
					t.Error("delivered without a provider id")
				}
				if st := mustStatsOf(t, env.srv.Stats(), a.Kind()); st.Received != 1 {
					t.Errorf("sandbox received %d requests, want 1", st.Received)
				}
			})
		}
	}
}

func TestMattermostPushReachesTheProviderAsBuilt(t *testing.T) {
	env := mustStartSandbox(t, 0)
	r := mustRegistry(t, env.apps(t), fastOptions(), nil)
	message := mustDecodeSample[MattermostPush](t, "mattermost-message.json")

	t.Run("apns", func(t *testing.T) {
		a, ok := r.App(message.Platform)
		if !ok || a.ID() != "apple_rn" {
			t.Fatalf("App(%q) = %v", message.Platform, a)
		}
		if res := a.SendMattermost(context.Background(), &message, false); res.Outcome != Delivered {
			t.Fatalf("got %+v", res)
		}
		got := env.srv.LastPayloads("apns", 1)
		if len(got) != 1 {
			t.Fatalf("sandbox kept %d payloads", len(got))
		}
		mustMatchGolden(t, "mm_apns_message.json", got[0].Body)
		if got[0].Token != message.DeviceID || got[0].Topic != testTopic || got[0].PushType != "alert" || got[0].Headers["apns-priority"] != "10" {
			t.Errorf("token %q topic %q push type %q headers %v", got[0].Token, got[0].Topic, got[0].PushType, got[0].Headers)
		}
	})
	t.Run("apns voip", func(t *testing.T) {
		voip := message
		voip.Transport, voip.SubType = MattermostTransportVoIP, "calls"
		if res := mustApp(t, r, "apple_rn").SendMattermost(context.Background(), &voip, false); res.Outcome != Delivered {
			t.Fatalf("got %+v", res)
		}
		got := env.srv.LastPayloads("apns", 1)[0]
		if got.Topic != testTopic+".voip" || got.PushType != "voip" {
			t.Errorf("topic %q push type %q, want the VoIP topic and push type", got.Topic, got.PushType)
		}
	})
	t.Run("fcm", func(t *testing.T) {
		if res := mustApp(t, r, "android_rn").SendMattermost(context.Background(), &message, true); res.Outcome != Delivered {
			t.Fatalf("got %+v", res)
		}
		got := env.srv.LastPayloads("fcm", 1)
		if len(got) != 1 {
			t.Fatalf("sandbox kept %d payloads", len(got))
		}
		var body struct {
			Message json.RawMessage `json:"message"`
		}
		if err := json.Unmarshal(got[0].Body, &body); err != nil {
			t.Fatal(err)
		}
		mustMatchGolden(t, "mm_fcm_id_only.json", body.Message)
		if got[0].Project != testProject {
			t.Errorf("project %q, want %q", got[0].Project, testProject)
		}
	})
}

func TestRocketChatPushReachesTheProviderAsBuilt(t *testing.T) {
	env := mustStartSandbox(t, 0)
	r := mustRegistry(t, env.apps(t), fastOptions(), nil)
	message := mustDecodeSample[RocketChatPush](t, "rocketchat-message.json")
	testPush := mustDecodeSample[RocketChatPush](t, "rocketchat-test-push.json")

	for _, tc := range []struct {
		name, topic, pushType string
	}{{"alert topic", testTopic, "alert"}, {"voip topic", testTopic + ".voip", "voip"}} {
		t.Run("apns "+tc.name, func(t *testing.T) {
			a, voip, ok := r.APNsByTopic(tc.topic)
			if !ok {
				t.Fatalf("no app for %q", tc.topic)
			}
			p := message
			p.Options.Topic = tc.topic
			if res := a.SendRocketChat(context.Background(), &p, voip); res.Outcome != Delivered {
				t.Fatalf("got %+v", res)
			}
			got := env.srv.LastPayloads("apns", 1)[0]
			if got.Topic != tc.topic || got.PushType != tc.pushType || got.Headers["apns-expiration"] == "" {
				t.Errorf("topic %q push type %q expiration %q", got.Topic, got.PushType, got.Headers["apns-expiration"])
			}
			var aps struct {
				APS struct {
					Mutable int `json:"mutable-content"`
				} `json:"aps"`
				EJSON string `json:"ejson"`
			}
			if err := json.Unmarshal(got.Body, &aps); err != nil || aps.APS.Mutable != 1 || aps.EJSON == "" {
				t.Errorf("payload %s lacks mutable-content or ejson (%v)", got.Body, err)
			}
		})
	}
	t.Run("fcm default app", func(t *testing.T) {
		a, ok := r.DefaultFCM()
		if !ok || a.ID() != "android_rn" {
			t.Fatalf("DefaultFCM() = %v, %v", a, ok)
		}
		for _, p := range []RocketChatPush{message, testPush} {
			if res := a.SendRocketChat(context.Background(), &p, false); res.Outcome != Delivered {
				t.Fatalf("got %+v", res)
			}
		}
		got := env.srv.LastPayloads("fcm", 2)
		var first, second struct {
			Message struct {
				Data map[string]string `json:"data"`
			} `json:"message"`
		}
		_ = json.Unmarshal(got[0].Body, &first)
		_ = json.Unmarshal(got[1].Body, &second)
		if first.Message.Data["title"] != "general" || first.Message.Data["message"] != "bob: deploy at 5?" || first.Message.Data["ejson"] == "" || first.Message.Data["notId"] != "-1398311196" {
			t.Errorf("message data %v", first.Message.Data)
		}
		if _, has := second.Message.Data["ejson"]; has || second.Message.Data["title"] != "@admin" {
			t.Errorf("test push data %v", second.Message.Data)
		}
	})
}

func TestRetriesAgainstTheSandbox(t *testing.T) {
	env := mustStartSandbox(t, 0)
	apps := env.apps(t)
	for _, appID := range []string{"apple_rn", "android_rn"} {
		t.Run(appID+"/unavailable is retried up to the limit then retry later", func(t *testing.T) {
			opts := fastOptions()
			opts.Attempts = 2
			a := mustApp(t, mustRegistry(t, apps, opts, nil), appID)
			env.srv.ResetStats()
			start := time.Now()
			res := sendTo(context.Background(), a, "unavailable-1")
			if res.Outcome != RetryLater || res.Attempts != 2 {
				t.Errorf("got %+v, want RetryLater after 2 attempts", res)
			}
			if st := mustStatsOf(t, env.srv.Stats(), a.Kind()); st.Received != 2 {
				t.Errorf("sandbox received %d requests, want exactly 2 (the SDK must not retry on its own)", st.Received)
			}
			if took := time.Since(start); took < time.Second {
				t.Errorf("took %v, want the 1s Retry-After honoured between attempts", took)
			}
		})
		t.Run(appID+"/retry-after beyond the deadline stops at once", func(t *testing.T) {
			opts := fastOptions()
			opts.Deadline = 500 * time.Millisecond
			a := mustApp(t, mustRegistry(t, apps, opts, nil), appID)
			env.srv.ResetStats()
			start := time.Now()
			res := sendTo(context.Background(), a, "toomany-1")
			if res.Outcome != RetryLater || res.Attempts != 1 || res.RetryAfter != time.Second {
				t.Errorf("got %+v, want RetryLater after 1 attempt with RetryAfter 1s", res)
			}
			if took := time.Since(start); took > 400*time.Millisecond {
				t.Errorf("took %v, want no waiting past the deadline", took)
			}
			if st := mustStatsOf(t, env.srv.Stats(), a.Kind()); st.Received != 1 {
				t.Errorf("sandbox received %d requests, want 1", st.Received)
			}
		})
		for _, prefix := range []string{"unregistered", "baddevice"} {
			t.Run(appID+"/"+prefix+" token is never retried", func(t *testing.T) {
				a := mustApp(t, mustRegistry(t, apps, fastOptions(), nil), appID)
				env.srv.ResetStats()
				if res := sendTo(context.Background(), a, prefix+"-1"); res.Outcome != DeadToken || res.Attempts != 1 {
					t.Errorf("got %+v, want DeadToken after 1 attempt", res)
				}
				if st := mustStatsOf(t, env.srv.Stats(), a.Kind()); st.Received != 1 {
					t.Errorf("sandbox received %d requests, want 1", st.Received)
				}
			})
		}
	}
}

// concurrencyProbe counts requests in flight at the transport.
type concurrencyProbe struct {
	base       http.RoundTripper
	now, peak  atomic.Int32
	roundTrips atomic.Int32
}

func (c *concurrencyProbe) RoundTrip(req *http.Request) (*http.Response, error) {
	n := c.now.Add(1)
	defer c.now.Add(-1)
	c.roundTrips.Add(1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	resp, err := c.base.RoundTrip(req)
	if err == nil {
		// hold the slot until the answer is read, like the client does
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body, err = io.NopCloser(bytes.NewReader(body)), rerr
	}
	return resp, err
}

func TestConcurrentSendsAreBoundedAndCountedExactly(t *testing.T) {
	const sends, limit = 300, 8
	env := mustStartSandbox(t, 5*time.Millisecond)
	opts := fastOptions()
	opts.MaxInFlightPerApp = limit
	r := mustRegistry(t, env.apps(t), opts, nil)
	for _, appID := range []string{"apple_rn", "android_rn"} {
		t.Run(appID, func(t *testing.T) {
			a := mustApp(t, r, appID)
			var probe *concurrencyProbe
			switch p := a.prov.(type) {
			case *apnsProvider:
				probe = &concurrencyProbe{base: p.rt}
				p.rt = probe
			case *fcmProvider:
				probe = &concurrencyProbe{base: p.rt}
				p.rt = probe
			}
			env.srv.ResetStats()

			var delivered, dead atomic.Int32
			var wg sync.WaitGroup
			for i := range sends {
				wg.Go(func() {
					token := "ok" + strings.Repeat("0", 30)
					if i%10 == 0 {
						token = "unregistered" + strings.Repeat("0", 20)
					}
					switch res := sendTo(context.Background(), a, token); res.Outcome {
					case Delivered:
						delivered.Add(1)
					case DeadToken:
						dead.Add(1)
					default:
						t.Errorf("got %+v", res)
					}
				})
			}
			wg.Wait()
			if p := probe.peak.Load(); p > limit {
				t.Errorf("%d requests were in flight at once, limit %d", p, limit)
			}
			if delivered.Load() != 270 || dead.Load() != 30 {
				t.Errorf("delivered %d, dead %d; want 270 and 30", delivered.Load(), dead.Load())
			}
			st := mustStatsOf(t, env.srv.Stats(), a.Kind())
			if st.Received != sends || st.Accepted != 270 || st.Rejected != 30 {
				t.Errorf("sandbox received %d, accepted %d, rejected %d; want %d, 270, 30", st.Received, st.Accepted, st.Rejected, sends)
			}
			if got := metricValue(t, a.m.inflight); got != 0 {
				t.Errorf("inflight gauge %v after all sends, want 0", got)
			}
		})
	}
}

func TestLogsOfFailingSendsHoldNoSecrets(t *testing.T) {
	env := mustStartSandbox(t, 0)
	apps := env.apps(t)
	// Credentials the sandbox does not know: an unregistered .p8 and service account.
	strangerDir := t.TempDir()
	stranger, err := sandbox.EnsureDevKit(strangerDir, env.srv.URL()+"/token", testProject)
	if err != nil {
		t.Fatal(err)
	}
	apps = append(apps,
		AppConfig{ID: "apple_stranger", Kind: KindAPNs, Topic: testTopic, KeyFile: stranger.APNsKeyFile, KeyID: stranger.APNsKeyID + "X", TeamID: stranger.APNsTeamID,
			Environment: EnvDevelopment, Endpoint: env.srv.URL(), CAFile: env.caFile},
		AppConfig{ID: "android_stranger", Kind: KindFCM, ServiceAccountFile: stranger.ServiceAccountFile, Endpoint: env.srv.URL(), CAFile: env.caFile},
		AppConfig{ID: "apple_down", Kind: KindAPNs, Topic: testTopic, KeyFile: env.kit.APNsKeyFile, KeyID: env.kit.APNsKeyID, TeamID: env.kit.APNsTeamID,
			Environment: EnvDevelopment, Endpoint: "https://127.0.0.1:1", CAFile: env.caFile},
	)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := fastOptions()
	opts.Attempts = 1
	r := mustRegistry(t, apps, opts, log)

	const token = "baddevice" + "5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a392817"
	tests := []struct {
		app     string
		token   string
		outcome Outcome
		code    string
	}{
		{"apple_rn", token, DeadToken, "BadDeviceToken"},
		{"android_rn", token, DeadToken, "INVALID_ARGUMENT"},
		{"apple_rn", "unavailable" + token, RetryLater, "ServiceUnavailable"},
		{"apple_stranger", token, Failed, "InvalidProviderToken"},
		{"android_stranger", token, Failed, ReasonAuth},
		{"apple_down", token, RetryLater, ReasonTransport},
	}
	for _, tc := range tests {
		res := sendTo(context.Background(), mustApp(t, r, tc.app), tc.token)
		if res.Outcome != tc.outcome || res.Code() != tc.code {
			t.Errorf("%s: got %+v, want %v %s", tc.app, res, tc.outcome, tc.code)
		}
		if strings.Contains(res.Reason, tc.token) {
			t.Errorf("%s: reason quotes the device token: %q", tc.app, res.Reason)
		}
	}

	out := logs.String()
	if strings.Count(out, "push not delivered") != len(tests) {
		t.Errorf("want one log line per failed send, got:\n%s", out)
	}
	secrets := []string{token, "bearer", "Bearer", "eyJ"}
	for _, f := range []string{env.kit.APNsKeyFile, stranger.APNsKeyFile} {
		secrets = append(secrets, mustKeyLines(t, f)...)
	}
	for _, f := range []string{env.kit.ServiceAccountFile, stranger.ServiceAccountFile} {
		var sa struct {
			PrivateKey string `json:"private_key"`
		}
		b, _ := os.ReadFile(f)
		_ = json.Unmarshal(b, &sa)
		secrets = append(secrets, keyLines(sa.PrivateKey)...)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("logs contain %q:\n%s", s, out)
		}
	}
	if !strings.Contains(out, MaskToken(token)) {
		t.Errorf("logs should name the masked token %q:\n%s", MaskToken(token), out)
	}
}

// mustKeyLines returns the base64 lines of a PEM key file: what a leak would show.
func mustKeyLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return keyLines(string(b))
}

func keyLines(pem string) []string {
	var lines []string
	for _, l := range strings.Split(pem, "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			lines = append(lines, l)
		}
	}
	return lines
}

// BenchmarkSendThroughSandbox measures the whole path, provider clients and
// the loopback sandbox included.
func BenchmarkSendThroughSandbox(b *testing.B) {
	for _, appID := range []string{"apple_rn", "android_rn"} {
		b.Run(appID, func(b *testing.B) {
			env := mustStartSandbox(b, 0)
			r, err := NewRegistry(context.Background(), env.apps(b), fastOptions(), nil, prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			a, _ := r.App(appID)
			message := mustDecodeSample[MattermostPush](b, "mattermost-message.json")
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if res := a.SendMattermost(context.Background(), &message, false); res.Outcome != Delivered {
						b.Errorf("got %+v", res)
						return
					}
				}
			})
		})
	}
}
