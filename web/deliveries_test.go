package web_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/pushgate/pushgate/api"
	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/gateway/sandbox"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/storetest"
	"github.com/pushgate/pushgate/web"
)

const sandboxTopic = "app.pushgate.webtest"

// mustSandboxApps starts in-process sandbox providers and returns apps
// apple_rn (APNs) and android_rn (FCM) that send to them.
func mustSandboxApps(tb testing.TB) *gateway.Registry {
	tb.Helper()
	dir := tb.TempDir()
	kit, err := sandbox.EnsureDevKit(dir, "", "pushgate-webtest")
	if err != nil {
		tb.Fatal(err)
	}
	sb, err := sandbox.New(sandbox.Config{
		Logger:   slog.New(slog.DiscardHandler),
		APNsKeys: map[string]*ecdsa.PublicKey{kit.APNsKeyID: kit.APNsKey}, APNsTopics: []string{sandboxTopic},
		FCMAccounts: map[string]*rsa.PublicKey{kit.ClientEmail: kit.FCMKey}, FCMProjects: []string{"pushgate-webtest"},
		PayloadHistory: -1,
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := sb.Listen("127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = sb.Shutdown(context.Background()) })
	if kit, err = sandbox.EnsureDevKit(dir, sb.URL()+"/token", "pushgate-webtest"); err != nil {
		tb.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, sb.CACertPEM(), 0o600); err != nil {
		tb.Fatal(err)
	}
	apps := []gateway.AppConfig{
		{ID: "apple_rn", Kind: gateway.KindAPNs, Topic: sandboxTopic, KeyFile: kit.APNsKeyFile, KeyID: kit.APNsKeyID,
			TeamID: kit.APNsTeamID, Environment: gateway.EnvDevelopment, Endpoint: sb.URL(), CAFile: caFile},
		{ID: "android_rn", Kind: gateway.KindFCM, ServiceAccountFile: kit.ServiceAccountFile, Endpoint: sb.URL(), CAFile: caFile},
	}
	r, err := gateway.NewRegistry(context.Background(), apps, gateway.Options{}, nil, prometheus.NewRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Close)
	return r
}

// logSite is a test site with push apps and a delivery log, flushed by flush.
type logSite struct {
	*testSite
	log *tenants.DeliveryLog
}

func (s *logSite) flush() { s.log.WriteAll(context.Background()) }

func mustLogSite(tb testing.TB) *logSite {
	tb.Helper()
	return mustLogSiteOn(tb, storetest.SQLite(tb))
}

// mustLogSiteOn is mustLogSite on the database at dbURL.
func mustLogSiteOn(tb testing.TB, dbURL string) *logSite {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, dbURL, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	publicURL := "http://gw.test"
	svc := tenants.NewService(db, tenants.Config{
		Region: "us", PublicURL: publicURL, PasswordCost: bcrypt.MinCost, Log: log,
		Terms: tenants.Terms{Version: termsVersion, URL: publicURL + "/terms", PublishedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
	})
	if err := svc.PublishConfiguredTerms(ctx); err != nil {
		tb.Fatal(err)
	}
	apps := mustSandboxApps(tb)
	quotas := sqlstore.NewQuotaStore(db)
	dlog := tenants.NewDeliveryLog(tenants.DeliveryLogOptions{Store: db, FlushInterval: time.Hour})
	dash, err := web.New(web.Deps{Tenants: svc, Accounts: db, Quotas: quotas, History: db, Deliveries: db, QuotaEvents: db,
		Apps: []string{"apple_rn", "android_rn"}, Region: "us", PublicURL: publicURL, RegistrationOpen: true, SignUpsPerHour: 1000, Log: log})
	if err != nil {
		tb.Fatal(err)
	}
	h := api.NewHandler(api.Deps{Log: log, Registry: prometheus.NewRegistry(), Tenants: svc, PublicURL: publicURL,
		Apps: apps, Quotas: quotas, History: db, Thresholds: tenants.ThresholdLog{Store: db, Log: log, Now: time.Now},
		Deliveries: dlog, Dashboard: dash})
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return &logSite{testSite: &testSite{URL: srv.URL, svc: svc, db: db, quotas: quotas}, log: dlog}
}

// mmPush sends a Mattermost push with the workspace token and returns the status and body.
func (s *logSite) mmPush(t *testing.T, token, platform, device, ackID string) (int, string) {
	t.Helper()
	body := fmt.Sprintf(`{"platform":%q,"server_id":"srv1","device_id":%q,"ack_id":%q,"type":"message","message":"secret words","channel_id":"c1","post_id":"p1"}`,
		platform, device, ackID)
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/v1/send_push", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

var deliveryRow = regexp.MustCompile(`<tr class="result-[a-z_]+[^"]*">`)

func TestDeliveriesPage(t *testing.T) {
	site := mustLogSite(t)
	ctx := context.Background()

	t.Run("a new workspace sees an empty log that says what to do", func(t *testing.T) {
		b := site.newBrowser(t)
		b.mustSignUp("Empty Log", "owner@emptylog.example")
		status, body := b.get("/deliveries")
		if status != http.StatusOK {
			t.Fatalf("%d\n%s", status, body)
		}
		mustContain(t, body, `id="no-deliveries"`, "No notifications in the last 7 days", `href="/test-push"`, `aria-current="page">Deliveries`)
	})

	t.Run("pushes through the Mattermost API are listed newest first, a dead token marked, no content kept", func(t *testing.T) {
		b := site.newBrowser(t)
		token := b.mustSignUp("Pushing", "owner@pushing.example")
		if status, body := site.mmPush(t, token, "apple_rn", "a1b2c3d4e5f6g7h8", "ack-ok-1"); status != http.StatusOK || !strings.Contains(body, `"OK"`) {
			t.Fatalf("push: %d %s", status, body)
		}
		if status, body := site.mmPush(t, token, "android_rn", "unregistered-device-42", "ack-dead-2"); status != http.StatusOK || !strings.Contains(body, "REMOVE") {
			t.Fatalf("dead push: %d %s", status, body)
		}
		site.flush()
		_, body := b.get("/deliveries")
		mustContain(t, body, `class="result-dead_token dead-token"`, "Dead token", "unregi…", "UNREGISTERED", "ack-dead-2",
			`class="result-delivered"`, "a1b2c3…", "ack-ok-1", "apple_rn", "android_rn", "Mattermost")
		mustNotContain(t, body, "a1b2c3d4", "unregistered-device", "secret words")
		if strings.Index(body, "ack-dead-2") > strings.Index(body, "ack-ok-1") {
			t.Fatal("the older push is listed first")
		}

		_, body = b.get("/deliveries?result=dead_token")
		mustContain(t, body, "ack-dead-2", `<option value="dead_token" selected>`, `href="/deliveries">Clear`)
		mustNotContain(t, body, "ack-ok-1")
		_, body = b.get("/deliveries?app=apple_rn")
		mustContain(t, body, "ack-ok-1")
		mustNotContain(t, body, "ack-dead-2")
		_, body = b.get("/deliveries?app=apple_rn&result=refused")
		mustContain(t, body, "No notifications match these filters")
	})

	t.Run("an owner sees only their own workspace's log", func(t *testing.T) {
		other := site.newBrowser(t)
		other.mustSignUp("Other", "owner@other.example")
		_, body := other.get("/deliveries")
		mustNotContain(t, body, "ack-ok-1", "ack-dead-2")
		mustContain(t, body, `id="no-deliveries"`)
	})

	t.Run("a long log pages older and back newer without repeating an entry", func(t *testing.T) {
		b := site.newBrowser(t)
		b.mustSignUp("Long Log", "owner@longlog.example")
		id := mustWorkspaceID(t, site, "owner@longlog.example")
		now := time.Now().UTC()
		batch := make([]tenants.Delivery, 120)
		for i := range batch {
			batch[i] = tenants.Delivery{WorkspaceID: id, At: now.Add(-time.Duration(120-i) * time.Second), Protocol: tenants.ProtocolRocketChat,
				Ref: fmt.Sprintf("msg-%03d", i), App: "apple_rn", Result: tenants.DeliveryDelivered, TokenPrefix: "zzzzzz"}
		}
		if err := site.db.SaveDeliveries(ctx, batch); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		path := "/deliveries"
		pages := 0
		for path != "" {
			status, body := b.get(path)
			if status != http.StatusOK {
				t.Fatalf("%s: %d\n%s", path, status, body)
			}
			pages++
			rows := deliveryRow.FindAllStringIndex(body, -1)
			if len(rows) == 0 || len(rows) > 50 {
				t.Fatalf("%s shows %d rows", path, len(rows))
			}
			for _, m := range regexp.MustCompile(`msg-\d{3}`).FindAllString(body, -1) {
				if seen[m] {
					t.Fatalf("%s repeats %s", path, m)
				}
				seen[m] = true
			}
			path = ""
			if m := regexp.MustCompile(`href="(/deliveries\?before=[^"]+)" id="older"`).FindStringSubmatch(body); m != nil {
				path = strings.ReplaceAll(m[1], "&amp;", "&")
				mustContain(t, body, `id="older"`)
			}
			if pages == 2 {
				mustContain(t, body, `id="newer"`, `id="newest"`)
				m := regexp.MustCompile(`href="(/deliveries\?after=[^"]+)" id="newer"`).FindStringSubmatch(body)
				_, back := b.get(strings.ReplaceAll(m[1], "&amp;", "&"))
				mustContain(t, back, "msg-119", "msg-070")
				mustNotContain(t, back, "msg-069", `id="newer"`)
			}
		}
		if pages != 3 || len(seen) != 120 {
			t.Fatalf("%d pages showed %d entries, want 3 pages of all 120", pages, len(seen))
		}
	})

	t.Run("bad filters are a 400 with the error next to the field", func(t *testing.T) {
		b := site.newBrowser(t)
		b.mustSignUp("Bad Filter", "owner@badfilter.example")
		status, body := b.get("/deliveries?result=exploded")
		if status != http.StatusBadRequest {
			t.Fatalf("%d", status)
		}
		mustContain(t, body, `id="result-error"`, `aria-invalid="true"`)
		status, body = b.get("/deliveries?before=yesterday")
		if status != http.StatusBadRequest || !strings.Contains(body, `id="page-error"`) {
			t.Fatalf("bad cursor: %d", status)
		}
		status, _ = b.get("/deliveries?app=" + url.QueryEscape("<script>"))
		if status != http.StatusBadRequest {
			t.Fatalf("bad app: %d", status)
		}
	})

	t.Run("signed out, the page sends to sign-in", func(t *testing.T) {
		status, _ := site.newBrowser(t).get("/deliveries")
		if status != http.StatusSeeOther {
			t.Fatalf("%d", status)
		}
	})
}

func mustWorkspaceID(t *testing.T, site *logSite, email string) string {
	t.Helper()
	list, err := site.svc.Workspaces(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, ws := range list {
		if ws.ContactEmail == email {
			return ws.ID
		}
	}
	t.Fatalf("no workspace of %s", email)
	return ""
}

func TestDeliveryLogOff(t *testing.T) {
	site := mustSite(t, "http://gw.test")
	b := site.newBrowser(t)
	b.mustSignUp("No Log", "owner@nolog.example")
	status, body := b.get("/deliveries")
	if status != http.StatusOK {
		t.Fatalf("%d", status)
	}
	mustContain(t, body, `id="log-off"`, "delivery_log: off")
}

func TestTestPushPage(t *testing.T) {
	site := mustLogSite(t)
	ctx := context.Background()
	b := site.newBrowser(t)
	b.mustSignUp("Tester", "owner@tester.example")
	id := mustWorkspaceID(t, site, "owner@tester.example")

	send := func(app, token string) (int, string) {
		t.Helper()
		status, body, _ := b.postForm("/test-push", "/test-push", url.Values{"app": {app}, "token": {token}})
		return status, body
	}

	t.Run("the form offers the gateway's apps and says a test push counts", func(t *testing.T) {
		_, body := b.get("/test-push")
		mustContain(t, body, `<option value="apple_rn">apple_rn (Apple)</option>`, `<option value="android_rn">android_rn (Google)</option>`,
			"counts against this month's quota", `name="csrf"`)
	})
	t.Run("a live token is delivered, counted and logged", func(t *testing.T) {
		status, body := send("apple_rn", "livetoken123456")
		if status != http.StatusOK {
			t.Fatalf("%d\n%s", status, body)
		}
		mustContain(t, body, `id="answer"`, "<strong>Delivered</strong> —", "Apple accepted the notification")
		u, err := site.quotas.Usage(ctx, id, tenants.PeriodOf(time.Now()))
		if err != nil || u.Used != 1 {
			t.Fatalf("usage after a test push = %d, %v; want 1", u.Used, err)
		}
		site.flush()
		page, err := site.db.Deliveries(ctx, tenants.DeliveryQuery{WorkspaceID: id, Limit: 10})
		if err != nil || len(page.Entries) != 1 {
			t.Fatalf("log = %+v, %v", page.Entries, err)
		}
		if e := page.Entries[0]; e.Protocol != tenants.ProtocolTest || e.TokenPrefix != "liveto" || e.Result != tenants.DeliveryDelivered || e.App != "apple_rn" {
			t.Fatalf("logged %+v", e)
		}
	})
	t.Run("a dead token is explained in plain words", func(t *testing.T) {
		_, body := send("android_rn", "unregistered-abc")
		mustContain(t, body, "The device token is dead", "the app was uninstalled or the token belongs to another app", "Google said: UNREGISTERED")
	})
	t.Run("an unavailable provider says to try again", func(t *testing.T) {
		_, body := send("apple_rn", "unavailable-abc")
		mustContain(t, body, "Apple is unavailable, try again", `class="banner warn answer"`)
	})
	t.Run("a missing token or app is an error next to the field", func(t *testing.T) {
		status, body := send("apple_rn", "")
		if status != http.StatusBadRequest {
			t.Fatalf("%d", status)
		}
		mustContain(t, body, `id="token-error"`, "Paste the device token")
		status, body = send("windows_phone", "abc")
		if status != http.StatusBadRequest {
			t.Fatalf("%d", status)
		}
		mustContain(t, body, `id="app-error"`)
		status, body = send("apple_rn", "two words")
		if status != http.StatusBadRequest || !strings.Contains(body, "no spaces") {
			t.Fatalf("%d", status)
		}
	})
	t.Run("without the CSRF token nothing is sent", func(t *testing.T) {
		status, _, _ := b.post("/test-push", url.Values{"app": {"apple_rn"}, "token": {"livetoken"}})
		if status != http.StatusForbidden {
			t.Fatalf("%d", status)
		}
	})
	t.Run("more than a few a minute are refused with 429", func(t *testing.T) {
		// Three sent above, so two more fill the burst of five.
		for range 2 {
			if status, body := send("apple_rn", "livetoken"); status != http.StatusOK {
				t.Fatalf("%d\n%s", status, body)
			}
		}
		status, body := send("apple_rn", "livetoken")
		if status != http.StatusTooManyRequests || !strings.Contains(body, "Wait a minute") {
			t.Fatalf("%d\n%s", status, body)
		}
	})
	t.Run("a workspace without accepted terms is told why nothing was sent", func(t *testing.T) {
		b2, _ := mustOwner(t, site.testSite, "No Terms", "owner@tp-noterms.example")
		status, body, _ := b2.postForm("/test-push", "/test-push", url.Values{"app": {"apple_rn"}, "token": {"livetoken"}})
		if status != http.StatusForbidden {
			t.Fatalf("%d\n%s", status, body)
		}
		mustContain(t, body, "<strong>Not sent</strong> —", "terms")
	})
}

func TestOverviewRatesAndQuotaEvents(t *testing.T) {
	site := mustLogSite(t)
	ctx := context.Background()
	b := site.newBrowser(t)
	b.mustSignUp("Rates", "owner@rates.example")
	id := mustWorkspaceID(t, site, "owner@rates.example")

	_, body := b.get("/overview")
	mustContain(t, body, `<strong id="delivery-rate">—</strong>`, `id="no-quota-events"`)

	now := time.Now().UTC()
	for range 8 {
		if _, err := site.quotas.Admit(ctx, tenants.Admission{WorkspaceID: id, Limit: 10, At: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := site.quotas.Settle(ctx, id, "", tenants.OutcomeDeadToken, now); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := site.quotas.RecordAck(ctx, id, now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := site.db.RecordQuotaEvent(ctx, id, tenants.PeriodOf(now), 80, 8000, 10000, now); err != nil {
		t.Fatal(err)
	}
	_, body = b.get("/overview")
	// 7 of 8 delivered; 3 of those 7 acked.
	mustContain(t, body, `<strong id="delivery-rate">87.5%</strong>`, "7 of 8 notifications", `<strong id="ack-rate">42.8%</strong>`,
		`id="quota-events"`, "80% of the quota", "8,000 of 10,000")
}
