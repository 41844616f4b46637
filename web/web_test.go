package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/pushgate/pushgate/api"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/storetest"
	"github.com/pushgate/pushgate/web"
)

const termsVersion = "2026-11-01"

// testSite is the whole HTTP surface with the dashboard, over a fresh SQLite database.
type testSite struct {
	URL    string
	svc    *tenants.Service
	db     *sqlstore.DB
	quotas tenants.QuotaStore
}

func mustSite(t *testing.T, publicURL string, opts ...func(*web.Deps)) *testSite {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, storetest.SQLite(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	svc := tenants.NewService(db, tenants.Config{
		Region: "us", PublicURL: publicURL, PasswordCost: bcrypt.MinCost, Log: log,
		Terms: tenants.Terms{Version: termsVersion, URL: publicURL + "/terms", PublishedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
	})
	if err := svc.PublishConfiguredTerms(ctx); err != nil {
		t.Fatal(err)
	}
	quotas := sqlstore.NewQuotaStore(db)
	deps := web.Deps{Tenants: svc, Accounts: db, Quotas: quotas, History: db,
		Region: "us", PublicURL: publicURL, RegistrationOpen: true, SignUpsPerHour: 1000, Log: log}
	for _, o := range opts {
		o(&deps)
	}
	dash, err := web.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	h := api.NewHandler(api.Deps{Log: log, Registry: prometheus.NewRegistry(), Tenants: svc, PublicURL: publicURL,
		Quotas: quotas, History: db, Dashboard: dash, RegistrationOpen: deps.RegistrationOpen, RegistrationsPerHour: 1000, Billing: deps.Billing})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testSite{URL: srv.URL, svc: svc, db: db, quotas: quotas}
}

// browser is a client with its own cookies that does not follow redirects.
type browser struct {
	t    *testing.T
	site *testSite
	c    *http.Client
}

func (s *testSite) newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, site: s, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.site.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// csrf reads the CSRF token from a form of the page at path.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	_, body := b.get(path)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no CSRF field on %s:\n%s", path, body)
	}
	return m[1]
}

func (b *browser) post(path string, form url.Values) (int, string, http.Header) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.site.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// postForm posts form with the CSRF token of the page at from.
func (b *browser) postForm(from, path string, form url.Values) (int, string, http.Header) {
	b.t.Helper()
	form.Set("csrf", b.csrf(from))
	return b.post(path, form)
}

var tokenOnPage = regexp.MustCompile(`<code id="token">(pgw_[A-Za-z0-9_]+)</code>`)

// mustSignUp creates a workspace through the sign-up page and returns its token.
func (b *browser) mustSignUp(name, email string) string {
	b.t.Helper()
	status, body, _ := b.postForm("/signup", "/signup", url.Values{"name": {name}, "contact_email": {email},
		"password": {"correct horse battery"}, "accept_terms": {termsVersion}})
	if status != http.StatusOK {
		b.t.Fatalf("sign-up: %d\n%s", status, body)
	}
	m := tokenOnPage.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("sign-up shows no token:\n%s", body)
	}
	return m[1]
}

func (b *browser) mustSignIn(email, password string) {
	b.t.Helper()
	status, body, _ := b.postForm("/signin", "/signin", url.Values{"email": {email}, "password": {password}})
	if status != http.StatusSeeOther {
		b.t.Fatalf("sign-in: %d\n%s", status, body)
	}
}

func TestSignUp(t *testing.T) {
	site := mustSite(t, "http://gw.test")
	ctx := context.Background()

	t.Run("a new owner gets a workspace like an API-registered one and its token once", func(t *testing.T) {
		b := site.newBrowser(t)
		token := b.mustSignUp("Acme Chat", "owner@acme.example")
		p, err := site.svc.Authenticate(ctx, token)
		if err != nil {
			t.Fatalf("the token shown does not authenticate: %v", err)
		}
		if p.Workspace.Name != "Acme Chat" || p.Workspace.Plan != tenants.PlanFree || p.Consent == nil || p.Consent.TermsVersion != termsVersion {
			t.Fatalf("workspace %+v consent %+v", p.Workspace, p.Consent)
		}
		if err := site.svc.CanSend(ctx, p); err != nil {
			t.Fatalf("a signed-up workspace cannot send: %v", err)
		}
		status, body := b.get("/overview")
		if status != http.StatusOK || !strings.Contains(body, "Acme Chat") {
			t.Fatalf("overview after sign-up: %d\n%s", status, body)
		}
		if _, body := b.get("/connect"); strings.Contains(body, token) {
			t.Fatal("the connect page shows the token again; it is shown once")
		}
	})

	t.Run("the sign-up page names the region and links the current terms", func(t *testing.T) {
		_, body := site.newBrowser(t).get("/signup")
		for _, want := range []string{"United States (us)", `href="http://gw.test/terms"`, `value="` + termsVersion + `"`} {
			if !strings.Contains(body, want) {
				t.Errorf("sign-up page lacks %q", want)
			}
		}
	})

	for _, tc := range []struct {
		name      string
		form      url.Values
		status    int
		field     string
		inMessage string
	}{
		{"a missing name is 400 naming the field", url.Values{"contact_email": {"a@b.example"}, "password": {"long enough password"}, "accept_terms": {termsVersion}}, 400, "name", "name"},
		{"a bad email is 400 naming the field", url.Values{"name": {"X"}, "contact_email": {"not-an-email"}, "password": {"long enough password"}, "accept_terms": {termsVersion}}, 400, "contact_email", "not an email address"},
		{"a short password is 400 naming the field", url.Values{"name": {"X"}, "contact_email": {"a@b.example"}, "password": {"short"}, "accept_terms": {termsVersion}}, 400, "password", "at least 12"},
		{"a password over bcrypt's limit is 400", url.Values{"name": {"X"}, "contact_email": {"a@b.example"}, "password": {strings.Repeat("p", 73)}, "accept_terms": {termsVersion}}, 400, "password", "at most 72"},
		{"terms not accepted is 400 naming the checkbox", url.Values{"name": {"X"}, "contact_email": {"a@b.example"}, "password": {"long enough password"}}, 400, "accept_terms", "accept the terms"},
		{"an outdated terms version is refused on the checkbox", url.Values{"name": {"X"}, "contact_email": {"a@b.example"}, "password": {"long enough password"}, "accept_terms": {"2020-01-01"}}, 409, "accept_terms", "not the current terms"},
		{"a control character in the name is 400", url.Values{"name": {"X\x00Y"}, "contact_email": {"a@b.example"}, "password": {"long enough password"}, "accept_terms": {termsVersion}}, 400, "name", "name"},
		{"an email already signed up is a conflict naming the field", url.Values{"name": {"Again"}, "contact_email": {"OWNER@acme.example"}, "password": {"long enough password"}, "accept_terms": {termsVersion}}, 409, "contact_email", "sign in instead"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := site.svc.Workspaces(ctx)
			status, body, _ := site.newBrowser(t).postForm("/signup", "/signup", tc.form)
			if status != tc.status {
				t.Fatalf("status %d, want %d\n%s", status, tc.status, body)
			}
			if !strings.Contains(body, `id="`+tc.field+`-error"`) || !strings.Contains(body, tc.inMessage) {
				t.Fatalf("the page does not name %s with %q:\n%s", tc.field, tc.inMessage, body)
			}
			if after, _ := site.svc.Workspaces(ctx); len(after) != len(before) {
				t.Fatalf("a refused sign-up created a workspace: %d -> %d", len(before), len(after))
			}
		})
	}
}

func TestCSRF(t *testing.T) {
	site := mustSite(t, "http://gw.test")
	owner := site.newBrowser(t)
	token := owner.mustSignUp("Acme", "owner@acme.example")

	for _, tc := range []struct {
		name string
		b    *browser
		path string
		form url.Values
	}{
		{"a sign-in without the token is refused", site.newBrowser(t), "/signin", url.Values{"email": {"owner@acme.example"}, "password": {"correct horse battery"}}},
		{"a sign-in with a made-up token is refused", site.newBrowser(t), "/signin", url.Values{"email": {"owner@acme.example"}, "password": {"correct horse battery"}, "csrf": {strings.Repeat("A", 43)}}},
		{"a token rotation without the session's token is refused", owner, "/connect/token", url.Values{}},
		{"a settings change with the pre-sign-in token is refused", owner, "/connect/settings", url.Values{"privacy": {"id_only"}, "csrf": {site.newBrowser(t).csrf("/signin")}}},
		{"a sign-out without the token is refused", owner, "/signout", url.Values{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.b.get("/signin") // the pre-sign-in CSRF cookie is set
			status, body, _ := tc.b.post(tc.path, tc.form)
			if status != http.StatusForbidden || !strings.Contains(body, "reload the page") {
				t.Fatalf("status %d, want 403\n%s", status, body)
			}
		})
	}
	t.Run("a post a browser marks cross-site is refused even with the token", func(t *testing.T) {
		form := url.Values{"csrf": {owner.csrf("/connect")}}
		req, _ := http.NewRequest(http.MethodPost, site.URL+"/connect/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := owner.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.StatusCode)
		}
	})
	if _, err := site.svc.Authenticate(context.Background(), token); err != nil {
		t.Fatalf("a refused post rotated the token: %v", err)
	}
	if status, _ := owner.get("/overview"); status != http.StatusOK {
		t.Fatalf("a refused sign-out ended the session: %d", status)
	}
}

func TestEachSessionSeesOnlyItsOwnWorkspace(t *testing.T) {
	site := mustSite(t, "http://gw.test")
	ctx := context.Background()
	a, b := site.newBrowser(t), site.newBrowser(t)
	tokenA := a.mustSignUp("Alpha Chat", "a@alpha.example")
	tokenB := b.mustSignUp("Beta Chat", "b@beta.example")
	pa, _ := site.svc.Authenticate(ctx, tokenA)
	for range 3 {
		if _, err := site.quotas.Admit(ctx, tenants.Admission{WorkspaceID: pa.Workspace.ID, Limit: 10_000, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("each overview shows its own workspace and count", func(t *testing.T) {
		_, bodyA := a.get("/overview")
		_, bodyB := b.get("/overview")
		if !strings.Contains(bodyA, "Alpha Chat") || strings.Contains(bodyA, "Beta Chat") || !strings.Contains(bodyA, `<strong id="used">3</strong>`) {
			t.Fatalf("A's overview:\n%s", bodyA)
		}
		if !strings.Contains(bodyB, "Beta Chat") || strings.Contains(bodyB, "Alpha Chat") || !strings.Contains(bodyB, `<strong id="used">0</strong>`) {
			t.Fatalf("B's overview:\n%s", bodyB)
		}
	})
	t.Run("a rotation rotates only the session's own token", func(t *testing.T) {
		status, body, _ := a.postForm("/connect", "/connect/token", url.Values{})
		m := tokenOnPage.FindStringSubmatch(body)
		if status != http.StatusOK || m == nil {
			t.Fatalf("rotation: %d\n%s", status, body)
		}
		if _, err := site.svc.Authenticate(ctx, tokenA); tenants.ErrorCode(err) != tenants.CodeUnauthorized {
			t.Fatalf("A's old token still works: %v", err)
		}
		if _, err := site.svc.Authenticate(ctx, m[1]); err != nil {
			t.Fatalf("A's new token: %v", err)
		}
		if _, err := site.svc.Authenticate(ctx, tokenB); err != nil {
			t.Fatalf("B's token stopped working: %v", err)
		}
	})
	t.Run("a signed-out session cookie no longer opens the dashboard", func(t *testing.T) {
		u, _ := url.Parse(site.URL)
		cookies := a.c.Jar.Cookies(u)
		if status, _, _ := a.postForm("/overview", "/signout", url.Values{}); status != http.StatusSeeOther {
			t.Fatalf("sign-out: %d", status)
		}
		replay := site.newBrowser(t)
		replay.c.Jar.SetCookies(u, cookies)
		if status, _ := replay.get("/overview"); status != http.StatusSeeOther {
			t.Fatalf("the old cookie still opens the overview: %d", status)
		}
	})
	t.Run("without a session the pages send to sign-in", func(t *testing.T) {
		for _, path := range []string{"/", "/overview", "/connect", "/operator"} {
			resp, err := site.newBrowser(t).c.Get(site.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" {
				t.Errorf("%s: %d to %q, want 303 to /signin", path, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
	})
}

func TestSignIn(t *testing.T) {
	site := mustSite(t, "http://gw.test")
	site.newBrowser(t).mustSignUp("Acme", "owner@acme.example")
	if _, err := site.svc.CreateOperator(context.Background(), "ops@pushgate.example", "operator password"); err != nil {
		t.Fatal(err)
	}

	t.Run("an owner signs in to the overview", func(t *testing.T) {
		b := site.newBrowser(t)
		status, _, h := b.postForm("/signin", "/signin", url.Values{"email": {"Owner@Acme.example"}, "password": {"correct horse battery"}})
		if status != http.StatusSeeOther || h.Get("Location") != "/overview" {
			t.Fatalf("%d to %q", status, h.Get("Location"))
		}
		if status, body := b.get("/overview"); status != http.StatusOK || !strings.Contains(body, "Acme") {
			t.Fatalf("overview: %d", status)
		}
	})
	t.Run("an operator signs in to the workspace list and searches it", func(t *testing.T) {
		b := site.newBrowser(t)
		status, _, h := b.postForm("/signin", "/signin", url.Values{"email": {"ops@pushgate.example"}, "password": {"operator password"}})
		if status != http.StatusSeeOther || h.Get("Location") != "/operator" {
			t.Fatalf("%d to %q", status, h.Get("Location"))
		}
		if _, body := b.get("/operator?q=ACME"); !strings.Contains(body, "owner@acme.example") || !strings.Contains(body, "1 workspace matching") {
			t.Fatalf("search for acme:\n%s", body)
		}
		if _, body := b.get("/operator?q=nothing-like-this"); strings.Contains(body, "owner@acme.example") {
			t.Fatalf("a search that matches nothing lists acme")
		}
		if status, _ := b.get("/overview"); status != http.StatusSeeOther {
			t.Fatalf("an operator session opens an owner's overview: %d", status)
		}
	})
	t.Run("a wrong password is 401 and says nothing about the email", func(t *testing.T) {
		for _, email := range []string{"owner@acme.example", "nobody@acme.example"} {
			status, body, _ := site.newBrowser(t).postForm("/signin", "/signin", url.Values{"email": {email}, "password": {"wrong password!"}})
			if status != http.StatusUnauthorized || !strings.Contains(body, "Wrong email or password.") {
				t.Fatalf("%s: %d\n%s", email, status, body)
			}
		}
	})
	t.Run("an empty email is 400 naming the field", func(t *testing.T) {
		status, body, _ := site.newBrowser(t).postForm("/signin", "/signin", url.Values{"password": {"x"}})
		if status != http.StatusBadRequest || !strings.Contains(body, "enter the email") {
			t.Fatalf("%d\n%s", status, body)
		}
	})
}

func TestFailedSignInsAreLimited(t *testing.T) {
	t.Run("an account is locked after five failures, even for the right password", func(t *testing.T) {
		site := mustSite(t, "http://gw.test")
		site.newBrowser(t).mustSignUp("Acme", "owner@acme.example")
		b := site.newBrowser(t)
		for i := range 5 {
			if status, _, _ := b.postForm("/signin", "/signin", url.Values{"email": {"owner@acme.example"}, "password": {fmt.Sprint("wrong ", i)}}); status != http.StatusUnauthorized {
				t.Fatalf("failure %d: %d", i+1, status)
			}
		}
		status, body, _ := b.postForm("/signin", "/signin", url.Values{"email": {"owner@acme.example"}, "password": {"correct horse battery"}})
		if status != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed sign-ins") {
			t.Fatalf("after five failures: %d\n%s", status, body)
		}
	})
	t.Run("an address is refused after twenty failures, whatever account it tries", func(t *testing.T) {
		site := mustSite(t, "http://gw.test")
		site.newBrowser(t).mustSignUp("Acme", "owner@acme.example")
		var wg sync.WaitGroup
		statuses := make(chan int, 30)
		for i := range 30 {
			b := site.newBrowser(t)
			csrf := b.csrf("/signin")
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, _, _ := b.post("/signin", url.Values{"csrf": {csrf}, "email": {fmt.Sprintf("guess%d@acme.example", i)}, "password": {"wrong password"}})
				statuses <- status
			}()
		}
		wg.Wait()
		close(statuses)
		counts := map[int]int{}
		for s := range statuses {
			counts[s]++
		}
		if counts[http.StatusUnauthorized] != 20 || counts[http.StatusTooManyRequests] != 10 {
			t.Fatalf("answers %v", counts)
		}
		status, _, _ := site.newBrowser(t).postForm("/signin", "/signin", url.Values{"email": {"owner@acme.example"}, "password": {"correct horse battery"}})
		if status != http.StatusTooManyRequests {
			t.Fatalf("the right password from a refused address: %d, want 429", status)
		}
	})
}

func TestSignUpLimits(t *testing.T) {
	t.Run("an address creates at most its hourly number of workspaces", func(t *testing.T) {
		site := mustSite(t, "http://gw.test", func(d *web.Deps) { d.SignUpsPerHour = 2 })
		site.newBrowser(t).mustSignUp("One", "one@limit.example")
		site.newBrowser(t).mustSignUp("Two", "two@limit.example")
		status, body, _ := site.newBrowser(t).postForm("/signup", "/signup", url.Values{"name": {"Three"}, "contact_email": {"three@limit.example"},
			"password": {"correct horse battery"}, "accept_terms": {termsVersion}})
		if status != http.StatusTooManyRequests || !strings.Contains(body, "Too many workspaces") {
			t.Fatalf("third sign-up: %d\n%s", status, body)
		}
		if list, _ := site.svc.Workspaces(context.Background()); len(list) != 2 {
			t.Fatalf("%d workspaces, want 2", len(list))
		}
	})
	t.Run("a closed gateway refuses sign-up with 403 and says so", func(t *testing.T) {
		site := mustSite(t, "http://gw.test", func(d *web.Deps) { d.RegistrationOpen = false })
		b := site.newBrowser(t)
		if _, body := b.get("/signup"); !strings.Contains(body, "Sign-up is closed") {
			t.Fatalf("sign-up page:\n%s", body)
		}
		status, _, _ := b.postForm("/signin", "/signup", url.Values{"name": {"X"}, "contact_email": {"x@closed.example"},
			"password": {"correct horse battery"}, "accept_terms": {termsVersion}})
		if status != http.StatusForbidden {
			t.Fatalf("sign-up on a closed gateway: %d", status)
		}
	})
}

func TestSigningInAgainReplacesTheSession(t *testing.T) {
	site := mustSite(t, "http://gw.test")
	b := site.newBrowser(t)
	b.mustSignUp("Again", "owner@again.example")
	u, _ := url.Parse(site.URL)
	first := b.c.Jar.Cookies(u)
	// A sign-in form left open in another tab, sent while signed in.
	if status, _, _ := b.postForm("/overview", "/signin", url.Values{"email": {"owner@again.example"}, "password": {"correct horse battery"}}); status != http.StatusSeeOther {
		t.Fatalf("signing in again: %d", status)
	}
	replay := site.newBrowser(t)
	replay.c.Jar.SetCookies(u, first)
	if status, _ := replay.get("/overview"); status != http.StatusSeeOther {
		t.Fatalf("the session from before signing in again still opens the overview: %d", status)
	}
	if status, _ := b.get("/overview"); status != http.StatusOK {
		t.Fatalf("the new session: %d", status)
	}
}

func TestConcurrentSignUpsWithOneEmailCreateOneWorkspace(t *testing.T) {
	site := mustSite(t, "http://gw.test")
	const n = 12
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for i := range n {
		b := site.newBrowser(t)
		csrf := b.csrf("/signup")
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _, _ := b.post("/signup", url.Values{"csrf": {csrf}, "name": {fmt.Sprint("Racer ", i)},
				"contact_email": {"race@race.example"}, "password": {"correct horse battery"}, "accept_terms": {termsVersion}})
			statuses <- status
		}()
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	if counts[http.StatusOK] != 1 || counts[http.StatusConflict] != n-1 {
		t.Fatalf("answers %v, want one 200 and %d 409", counts, n-1)
	}
	if list, _ := site.svc.Workspaces(context.Background()); len(list) != 1 {
		t.Fatalf("%d workspaces, want 1", len(list))
	}
}
