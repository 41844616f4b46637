package gateway

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testClock is a clock that moves only when the test says so.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// recovery describes how one provider refuses our credential and how often we may rebuild it.
type recovery struct {
	app      string
	refuse   func(e *sandboxEnv) // the provider stops honouring what we hold
	reason   string              // what it answers then
	interval time.Duration       // how often we may rebuild the credential
	// exchanges counts the credential exchanges the sandbox saw (FCM's token endpoint; none for APNs).
	exchanges     func(e *sandboxEnv) int64
	wantExchanges int64
}

func TestAPNsRecoversFromExpiredProviderToken(t *testing.T) {
	testRecovery(t, recovery{
		app:       "apple_rn",
		refuse:    func(e *sandboxEnv) { e.srv.ExpireProviderTokens() },
		reason:    "ExpiredProviderToken",
		interval:  apnsRefreshInterval,
		exchanges: func(*sandboxEnv) int64 { return 0 },
	})
}

func TestFCMRecoversFromRevokedAccessToken(t *testing.T) {
	testRecovery(t, recovery{
		app:           "android_rn",
		refuse:        func(e *sandboxEnv) { e.srv.RevokeAccessTokens() },
		reason:        "UNAUTHENTICATED",
		interval:      fcmRefreshInterval,
		exchanges:     func(e *sandboxEnv) int64 { return e.srv.Stats().OAuth.Accepted },
		wantExchanges: 1,
	})
}

func testRecovery(t *testing.T, rc recovery) {
	const pushers = 50
	env := mustStartSandbox(t, 0)
	clock := &testClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	opts := fastOptions()
	opts.Attempts = 1 // one request per push, so every refusal is seen
	opts.Now = clock.Now
	r := mustRegistry(t, env.apps(t), opts, nil)
	a := mustApp(t, r, rc.app)
	refreshes := func(result string) float64 {
		return metricValue(t, a.m.refreshes.WithLabelValues(a.id, result))
	}
	mustSend := func(t *testing.T, want Outcome) {
		t.Helper()
		if res := sendTo(context.Background(), a, "ok0123456789"); res.Outcome != want || (want == RetryLater && res.Reason != rc.reason) {
			t.Fatalf("got %+v, want %v", res, want)
		}
	}
	mustSend(t, Delivered) // the provider has seen the credential that it will refuse

	t.Run("one refresh serves every push that met the refused credential", func(t *testing.T) {
		rc.refuse(env)
		env.srv.ResetStats()
		var delivered, retried atomic.Int64
		var wg sync.WaitGroup
		for range pushers {
			wg.Go(func() {
				switch res := sendTo(context.Background(), a, "ok0123456789"); {
				case res.Outcome == Delivered:
					delivered.Add(1)
				case res.Outcome == RetryLater && res.Reason == rc.reason:
					retried.Add(1)
				default:
					t.Errorf("got %+v, want delivered or retry later with %s", res, rc.reason)
				}
			})
		}
		wg.Wait()
		stats := mustStatsOf(t, env.srv.Stats(), a.Kind())
		if retried.Load() < 1 || retried.Load()+delivered.Load() != pushers {
			t.Errorf("%d retried later, %d delivered; want at least one retried and %d in all", retried.Load(), delivered.Load(), pushers)
		}
		if stats.ByReason[rc.reason] != retried.Load() || stats.Accepted != delivered.Load() {
			t.Errorf("the provider refused %d and accepted %d; we counted %d retried and %d delivered",
				stats.ByReason[rc.reason], stats.Accepted, retried.Load(), delivered.Load())
		}
		if got := refreshes("refreshed"); got != 1 {
			t.Errorf("%v refreshes, want exactly 1 however many pushes met the refused credential", got)
		}
		for range 10 {
			mustSend(t, Delivered)
		}
		if got := rc.exchanges(env); got != rc.wantExchanges {
			t.Errorf("%d credential exchanges, want %d", got, rc.wantExchanges)
		}
	})

	t.Run("a second refusal within the interval is retried later without a refresh", func(t *testing.T) {
		clock.advance(rc.interval - time.Second)
		rc.refuse(env)
		mustSend(t, RetryLater)
		mustSend(t, RetryLater)
		if got, limited := refreshes("refreshed"), refreshes("rate_limited"); got != 1 || limited != 2 {
			t.Errorf("%v refreshes, %v rate limited; want 1 and 2", got, limited)
		}
	})

	t.Run("once the interval has passed the credential is refreshed again", func(t *testing.T) {
		clock.advance(time.Second)
		mustSend(t, RetryLater)
		mustSend(t, Delivered)
		if got := refreshes("refreshed"); got != 2 {
			t.Errorf("%v refreshes, want 2", got)
		}
	})

	t.Run("with retries the push that meets a refused credential is delivered", func(t *testing.T) {
		opts := fastOptions()
		opts.Now = clock.Now
		r := mustRegistry(t, env.apps(t), opts, nil)
		a := mustApp(t, r, rc.app)
		if res := sendTo(context.Background(), a, "ok0123456789"); res.Outcome != Delivered {
			t.Fatalf("got %+v", res)
		}
		rc.refuse(env)
		if res := sendTo(context.Background(), a, "ok0123456789"); res.Outcome != Delivered || res.Attempts != 2 {
			t.Errorf("got %+v, want delivered on the second attempt", res)
		}
	})
}

func TestCertificateExpiryIsExportedAndWarnedAhead(t *testing.T) {
	env := mustStartSandbox(t, 0)
	var cert AppConfig
	for _, a := range env.apps(t) {
		if a.CertFile != "" {
			cert = a
		}
	}
	notAfter := mustCertNotAfter(t, cert.CertFile)
	tests := []struct {
		name string
		now  time.Time
		warn string // "" for no warning
	}{
		{"a certificate with months left is not warned about", notAfter.Add(-90 * 24 * time.Hour), ""},
		{"a certificate expiring within 30 days is warned about", notAfter.Add(-10 * 24 * time.Hour), "APNs certificate expires soon"},
		{"an expired certificate is warned about", notAfter.Add(time.Hour), "APNs certificate has expired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			opts := fastOptions()
			opts.Now = func() time.Time { return tc.now }
			r := mustRegistry(t, []AppConfig{cert}, opts, slog.New(slog.NewTextHandler(&logs, nil)))
			a := mustApp(t, r, cert.ID)
			if got := metricValue(t, a.m.certExpiryVec.WithLabelValues(cert.ID)); got != float64(notAfter.Unix()) {
				t.Errorf("expiry gauge %v, want %d", got, notAfter.Unix())
			}
			warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "app="+cert.ID)
			if tc.warn == "" && warned {
				t.Errorf("unexpected warning: %s", logs.String())
			}
			if tc.warn != "" && (!warned || !strings.Contains(logs.String(), tc.warn)) {
				t.Errorf("want a warning %q naming the app, logs: %s", tc.warn, logs.String())
			}
		})
	}
}

func mustCertNotAfter(t *testing.T, path string) time.Time {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatal("no PEM certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.NotAfter
}

func TestFCMPicksUpAServiceAccountFileFixedOnDisk(t *testing.T) {
	env := mustStartSandbox(t, 0)
	clock := &testClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	opts := fastOptions()
	opts.Attempts = 1
	opts.Now = clock.Now
	var fcm AppConfig
	for _, a := range env.apps(t) {
		if a.Kind == KindFCM {
			fcm = a
		}
	}
	good, err := os.ReadFile(fcm.ServiceAccountFile)
	if err != nil {
		t.Fatal(err)
	}
	// Another account of the same project, one the provider does not know.
	unknown := bytes.Replace(good, []byte(env.kit.ClientEmail), []byte("someone-else@"+testProject+".iam.gserviceaccount.com"), 1)
	r := mustRegistry(t, []AppConfig{fcm}, opts, nil)
	a := mustApp(t, r, fcm.ID)
	refreshes := func(result string) float64 { return metricValue(t, a.m.refreshes.WithLabelValues(a.id, result)) }
	send := func() Result { return sendTo(context.Background(), a, "ok0123456789") }
	if res := send(); res.Outcome != Delivered {
		t.Fatalf("got %+v", res)
	}

	mustWriteFile(t, filepath.Dir(fcm.ServiceAccountFile), filepath.Base(fcm.ServiceAccountFile), string(unknown))
	env.srv.RevokeAccessTokens()
	if res := send(); res.Outcome != RetryLater || res.Reason != "UNAUTHENTICATED" {
		t.Fatalf("after the revocation: %+v, want retry later", res)
	}
	if res := send(); res.Outcome != Failed || !strings.HasPrefix(res.Reason, ReasonAuth) {
		t.Fatalf("with the broken file: %+v, want an auth failure (the file was read again)", res)
	}

	mustWriteFile(t, filepath.Dir(fcm.ServiceAccountFile), filepath.Base(fcm.ServiceAccountFile), string(good))
	clock.advance(fcmRefreshInterval)
	if res := send(); res.Outcome != Failed {
		t.Fatalf("the push that finds the file fixed: %+v, want it to fail and drop the broken account", res)
	}
	if res := send(); res.Outcome != Delivered {
		t.Fatalf("with the fixed file: %+v, want delivered without a restart", res)
	}
	if got, limited := refreshes("refreshed"), refreshes("rate_limited"); got != 2 || limited != 1 {
		t.Errorf("%v refreshes, %v rate limited; want 2 and 1", got, limited)
	}
}
