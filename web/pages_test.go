package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/tenants"
)

// mustOwner registers a workspace without accepting the terms, gives it an
// owner account and signs that owner in.
func mustOwner(t *testing.T, site *testSite, name, email string) (*browser, string) {
	t.Helper()
	ctx := context.Background()
	reg, err := site.svc.Register(ctx, tenants.RegisterRequest{Name: name, ContactEmail: email}, "test", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	hash, err := site.svc.HashPassword("password", "owner password!")
	if err != nil {
		t.Fatal(err)
	}
	if err := site.db.CreateOwnerAccount(ctx, &tenants.OwnerAccount{WorkspaceID: reg.Workspace.ID, Email: email, PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	b := site.newBrowser(t)
	b.mustSignIn(email, "owner password!")
	return b, reg.Workspace.ID
}

func mustContain(t *testing.T, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Fatalf("the page lacks %q:\n%s", w, body)
		}
	}
}

func mustNotContain(t *testing.T, body string, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(body, w) {
			t.Fatalf("the page shows %q:\n%s", w, body)
		}
	}
}

func TestOverview(t *testing.T) {
	site := mustSite(t, "http://gw.test")
	ctx := context.Background()
	now := time.Now().UTC()

	t.Run("terms not yet accepted show a banner whose button accepts them", func(t *testing.T) {
		b, id := mustOwner(t, site, "No Terms", "owner@noterms.example")
		_, body := b.get("/overview")
		mustContain(t, body, `id="terms-banner"`, "Nothing is sent until you accept", `name="terms_version" value="`+termsVersion+`"`,
			`id="no-pushes"`)
		status, _, h := b.postForm("/overview", "/overview/terms", url.Values{"terms_version": {termsVersion}})
		if status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/overview") {
			t.Fatalf("accept: %d to %q", status, h.Get("Location"))
		}
		c, err := site.svc.LatestConsent(ctx, id)
		if err != nil || c == nil || c.TermsVersion != termsVersion || c.AcceptedBy != "owner@noterms.example" {
			t.Fatalf("consent %+v, %v", c, err)
		}
		_, body = b.get("/overview?accepted=1")
		mustNotContain(t, body, `id="terms-banner"`)
		mustContain(t, body, "are accepted")
	})
	t.Run("new terms in their grace period show the deadline and are accepted from the banner", func(t *testing.T) {
		site := mustSite(t, "http://gw.test") // its own, so that no earlier page cached the terms
		b, id := mustOwner(t, site, "Grace", "owner@grace.example")
		if err := site.db.RecordConsent(ctx, tenants.Consent{WorkspaceID: id, TermsVersion: termsVersion, AcceptedBy: "owner@grace.example", AcceptedAt: now.Add(-48 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		published := now.Add(-time.Hour)
		if err := site.db.PublishTerms(ctx, tenants.Terms{Version: "2026-12-01", URL: "http://gw.test/terms", PublishedAt: published}); err != nil {
			t.Fatal(err)
		}
		_, body := b.get("/overview")
		mustContain(t, body, `id="terms-banner"`, "New terms of service (version 2026-12-01) apply",
			published.Add(30*24*time.Hour).Format("2 January 2006"), `name="terms_version" value="2026-12-01"`)
		if status, _, _ := b.postForm("/overview", "/overview/terms", url.Values{"terms_version": {"2026-12-01"}}); status != http.StatusSeeOther {
			t.Fatalf("accept: %d", status)
		}
		_, body = b.get("/overview")
		mustNotContain(t, body, `id="terms-banner"`)
	})
	t.Run("accepting a version that is not current is a 409 page, not a consent", func(t *testing.T) {
		b, id := mustOwner(t, site, "Old Terms", "owner@oldterms.example")
		status, body, _ := b.postForm("/overview", "/overview/terms", url.Values{"terms_version": {"1999-01-01"}})
		if status != http.StatusConflict || !strings.Contains(body, "not the current terms") {
			t.Fatalf("%d\n%s", status, body)
		}
		if c, _ := site.svc.LatestConsent(ctx, id); c != nil {
			t.Fatalf("a refused acceptance recorded %+v", c)
		}
	})
	t.Run("a workspace over its quota sees a banner and a full red bar", func(t *testing.T) {
		b, id := mustOwner(t, site, "Busy", "owner@busy.example")
		limit := int64(2)
		plan := tenants.PlanEnterprise
		pl := &limit
		if _, err := site.svc.Update(ctx, id, "test", "test", tenants.WorkspaceChange{Plan: &plan, QuotaLimit: &pl}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := site.quotas.Admit(ctx, tenants.Admission{WorkspaceID: id, Limit: 2, At: now}); err != nil {
				t.Fatal(err)
			}
		}
		_, body := b.get("/overview")
		mustContain(t, body, `id="over-quota"`, `<strong id="used">2</strong> of 2 notifications`, `class="fill-bad" x="0" y="0" width="1000"`)
	})
	t.Run("a failed payment shows until when the plan is kept", func(t *testing.T) {
		b, id := mustOwner(t, site, "Late Payer", "owner@late.example")
		grace := now.Add(72 * time.Hour)
		_, _, err := site.db.ApplyBillingEvent(ctx, tenants.BillingEvent{ID: "evt_late", Type: "invoice.payment_failed", WorkspaceID: id, At: now},
			func(ws *tenants.Workspace) (*tenants.BillingUpdate, error) {
				return &tenants.BillingUpdate{Billing: tenants.Billing{Status: "past_due", GraceUntil: &grace},
					Audit: tenants.AuditEntry{Actor: "stripe", Action: "billing.payment_failed", WorkspaceID: id, CreatedAt: now}}, nil
			})
		if err != nil {
			t.Fatal(err)
		}
		_, body := b.get("/overview")
		mustContain(t, body, `id="payment-failed"`, grace.Format("2 January 2006"))
	})
	t.Run("the chart draws each kind of count and the history lists archived months", func(t *testing.T) {
		b, id := mustOwner(t, site, "Charted", "owner@charted.example")
		if _, err := site.quotas.Admit(ctx, tenants.Admission{WorkspaceID: id, Limit: 10_000, DedupeKey: "k1", At: now}); err != nil {
			t.Fatal(err)
		}
		if _, err := site.quotas.Admit(ctx, tenants.Admission{WorkspaceID: id, Limit: 10_000, DedupeKey: "k2", At: now}); err != nil {
			t.Fatal(err)
		}
		if err := site.quotas.Settle(ctx, id, "k2", tenants.OutcomeDeadToken, now); err != nil {
			t.Fatal(err)
		}
		if err := site.quotas.RecordAck(ctx, id, now); err != nil {
			t.Fatal(err)
		}
		earlier := tenants.PeriodOf(now.AddDate(0, -2, 0))
		if err := site.db.SaveUsage(ctx, id, tenants.Usage{Period: earlier, Used: 1234}); err != nil {
			t.Fatal(err)
		}
		_, body := b.get("/overview")
		for _, class := range []string{"sent", "dead", "acked"} {
			if strings.Count(body, `<rect class="`+class+`"`) != 1 {
				t.Errorf("the chart has %d %s bars, want 1", strings.Count(body, `<rect class="`+class+`"`), class)
			}
		}
		mustNotContain(t, body, `<rect class="failed"`)
		mustContain(t, body, earlier.Start().Format("January 2006"), "1,234")
	})
}

func TestConnectSettings(t *testing.T) {
	site := mustSite(t, "http://gw.test")
	ctx := context.Background()
	b, id := mustOwner(t, site, "Settings", "owner@settings.example")

	for _, tc := range []struct {
		name  string
		form  url.Values
		field string
	}{
		{"a server id with spaces is 400 naming the field", url.Values{"privacy": {"full"}, "server_id": {"not valid!"}}, "server_id"},
		{"a server id over 64 characters is 400 naming the field", url.Values{"privacy": {"full"}, "server_id": {strings.Repeat("a", 65)}}, "server_id"},
		{"an unknown privacy policy is 400 naming the field", url.Values{"privacy": {"everything"}}, "privacy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, _ := b.postForm("/connect", "/connect/settings", tc.form)
			if status != http.StatusBadRequest {
				t.Fatalf("%d\n%s", status, body)
			}
			mustContain(t, body, "Please correct the field marked below.", `class="field-error"`)
			if tc.field == "server_id" {
				mustContain(t, body, `id="server_id-error"`)
			}
		})
	}
	t.Run("valid settings are saved and shown", func(t *testing.T) {
		status, _, h := b.postForm("/connect", "/connect/settings", url.Values{"privacy": {"id_only"}, "server_id": {"abc123"}})
		if status != http.StatusSeeOther || h.Get("Location") != "/connect?saved=1" {
			t.Fatalf("%d to %q", status, h.Get("Location"))
		}
		ws, err := site.svc.Workspace(ctx, id)
		if err != nil || ws.Privacy != tenants.PrivacyIDOnly || ws.ServerID != "abc123" {
			t.Fatalf("workspace %+v, %v", ws, err)
		}
		_, body := b.get("/connect?saved=1")
		mustContain(t, body, "Settings saved.", `value="abc123"`, `value="id_only" checked`)
	})
	t.Run("the connect page names the exact settings and URLs", func(t *testing.T) {
		_, body := b.get("/connect")
		mustContain(t, body, "Environment &gt; Push Notification Server", "Administration &gt; Settings &gt; Push",
			`<code id="mattermost-url">http://gw.test/mm/&lt;TOKEN&gt;</code>`, `<code id="rocketchat-url">http://gw.test</code>`)
	})
}

func TestPagesAreHardened(t *testing.T) {
	t.Run("every page has a strict policy and session cookies are HttpOnly and Lax", func(t *testing.T) {
		site := mustSite(t, "http://gw.test")
		b := site.newBrowser(t)
		resp, err := b.c.Get(site.URL + "/signin")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for h, want := range map[string]string{
			"Content-Security-Policy": "default-src 'none'; script-src 'self'",
			"X-Frame-Options":         "DENY",
			"X-Content-Type-Options":  "nosniff",
			"Cache-Control":           "no-store",
		} {
			if !strings.HasPrefix(resp.Header.Get(h), want) {
				t.Errorf("%s: %q, want %q", h, resp.Header.Get(h), want)
			}
		}
		form := url.Values{"name": {"Hard"}, "contact_email": {"owner@hard.example"}, "password": {"correct horse battery"},
			"accept_terms": {termsVersion}, "csrf": {b.csrf("/signup")}}
		_, _, h := b.post("/signup", form)
		cookie := h.Get("Set-Cookie")
		if !strings.HasPrefix(cookie, "pushgate_session=") || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Lax") || strings.Contains(cookie, "Secure") {
			t.Fatalf("session cookie %q", cookie)
		}
	})
	t.Run("over https the cookies are Secure", func(t *testing.T) {
		site := mustSite(t, "https://gw.test")
		resp, err := site.newBrowser(t).c.Get(site.URL + "/signin")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if c := resp.Header.Get("Set-Cookie"); !strings.HasPrefix(c, "__Host-pushgate_csrf=") || !strings.Contains(c, "Secure") {
			t.Fatalf("CSRF cookie over https: %q", c)
		}
		if resp.Header.Get("Strict-Transport-Security") == "" {
			t.Fatal("no Strict-Transport-Security over https")
		}
	})
	t.Run("garbage in any form is answered below 500", func(t *testing.T) {
		site := mustSite(t, "http://gw.test")
		b, _ := mustOwner(t, site, "Garbage", "owner@garbage.example")
		junk := []string{"", "\x00", strings.Repeat("x", 5000), "<script>alert(1)</script>", "%ff%fe", "'; DROP TABLE workspaces; --"}
		for _, path := range []string{"/connect/settings", "/overview/terms", "/signup", "/signin"} {
			for _, v := range junk {
				form := url.Values{"name": {v}, "contact_email": {v}, "email": {v}, "password": {v}, "accept_terms": {v},
					"terms_version": {v}, "privacy": {v}, "server_id": {v}}
				status, body, _ := b.postForm("/connect", path, form)
				if status >= 500 {
					t.Fatalf("%s with %q: %d\n%s", path, v, status, body)
				}
				if strings.Contains(body, "<script>alert") {
					t.Fatalf("%s echoes a script unescaped", path)
				}
			}
		}
	})
}

func TestChangePassword(t *testing.T) {
	site := mustSite(t, "http://gw.test")
	b, _ := mustOwner(t, site, "Passwords", "owner@pw.example")
	other := site.newBrowser(t)
	other.mustSignIn("owner@pw.example", "owner password!")

	for _, tc := range []struct {
		name  string
		form  url.Values
		field string
	}{
		{"a wrong current password is 400 naming the field", url.Values{"current_password": {"not my password"}, "new_password": {"a brand new password"}}, "current_password"},
		{"a short new password is 400 naming the field", url.Values{"current_password": {"owner password!"}, "new_password": {"short"}}, "new_password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, _ := b.postForm("/account", "/account/password", tc.form)
			if status != http.StatusBadRequest {
				t.Fatalf("%d\n%s", status, body)
			}
			mustContain(t, body, `id="`+tc.field+`-error"`)
		})
	}
	t.Run("a changed password signs in, the old one does not, and other browsers are signed out", func(t *testing.T) {
		status, _, h := b.postForm("/account", "/account/password", url.Values{"current_password": {"owner password!"}, "new_password": {"a brand new password"}})
		if status != http.StatusSeeOther || h.Get("Location") != "/account?changed=1" {
			t.Fatalf("%d to %q", status, h.Get("Location"))
		}
		if status, _ := b.get("/overview"); status != http.StatusOK {
			t.Fatalf("the browser that changed the password was signed out: %d", status)
		}
		if status, _ := other.get("/overview"); status != http.StatusSeeOther {
			t.Fatalf("another browser is still signed in: %d", status)
		}
		if status, _, _ := site.newBrowser(t).postForm("/signin", "/signin", url.Values{"email": {"owner@pw.example"}, "password": {"owner password!"}}); status != http.StatusUnauthorized {
			t.Fatalf("the old password: %d, want 401", status)
		}
		site.newBrowser(t).mustSignIn("owner@pw.example", "a brand new password")
	})
	t.Run("guessing the current password from a session is limited like sign-in", func(t *testing.T) {
		s, _ := mustOwner(t, site, "Guessed", "owner@guessed.example")
		statuses := map[int]int{}
		for i := range 7 {
			status, _, _ := s.postForm("/account", "/account/password", url.Values{"current_password": {fmt.Sprint("guess ", i)}, "new_password": {"a brand new password"}})
			statuses[status]++
		}
		// mustOwner's own sign-in was cleared, so five guesses are wrong and the rest refused.
		if statuses[http.StatusBadRequest] != 5 || statuses[http.StatusTooManyRequests] != 2 {
			t.Fatalf("answers %v", statuses)
		}
	})
}
