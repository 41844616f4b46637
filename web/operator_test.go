package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/web"
)

const opEmail, opPassword = "ops@pushgate.example", "operator password"

// mustOperator creates the site's operator account and signs it in.
func mustOperator(t *testing.T, site *testSite) *browser {
	t.Helper()
	if _, err := site.svc.OperatorByEmail(context.Background(), opEmail); err != nil {
		if _, err := site.svc.CreateOperator(context.Background(), opEmail, opPassword); err != nil {
			t.Fatal(err)
		}
	}
	b := site.newBrowser(t)
	b.mustSignIn(opEmail, opPassword)
	return b
}

func mustRegister(t *testing.T, site *testSite, name, email string, accept bool) (string, string) {
	t.Helper()
	req := tenants.RegisterRequest{Name: name, ContactEmail: email}
	if accept {
		req.AcceptTermsVersion = termsVersion
	}
	reg, err := site.svc.Register(context.Background(), req, "test", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return reg.Workspace.ID, reg.Token
}

// mustAdmit counts n pushes in the quota store and copies the month's usage onto the list.
func mustAdmit(t *testing.T, site *testSite, id string, n int) {
	t.Helper()
	for range n {
		if _, err := site.quotas.Admit(context.Background(), tenants.Admission{WorkspaceID: id, Limit: tenants.Unlimited, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	mustRefresh(t, site)
}

// mustRollUp archives n pushes this month, as the Redis rollup does, and copies them onto the list.
func mustRollUp(t *testing.T, site *testSite, id string, n int64) {
	t.Helper()
	if err := site.db.SaveUsage(context.Background(), id, tenants.Usage{Period: tenants.PeriodOf(time.Now()), Used: n}); err != nil {
		t.Fatal(err)
	}
	mustRefresh(t, site)
}

func mustRefresh(t *testing.T, site *testSite) {
	t.Helper()
	if _, err := site.db.RefreshWorkspaceUsage(context.Background(), tenants.PeriodOf(time.Now())); err != nil {
		t.Fatal(err)
	}
}

var workspaceLink = regexp.MustCompile(`href="/operator/workspaces/(ws_[a-z2-7]+)"`)

func listed(body string) []string {
	var out []string
	for _, m := range workspaceLink.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestOperatorWorkspaceList(t *testing.T) {
	site := mustSite(t, "http://gw.test")
	b := mustOperator(t, site)

	t.Run("an empty region says how workspaces arrive", func(t *testing.T) {
		status, body := b.get("/operator")
		if status != http.StatusOK {
			t.Fatalf("%d", status)
		}
		mustContain(t, body, `id="no-workspaces"`, "pushgate workspace create")
	})

	acme, _ := mustRegister(t, site, "Acme", "owner@acme.example", true)
	beta, _ := mustRegister(t, site, "Beta", "admin@beta.example", false)
	gamma, _ := mustRegister(t, site, "Gamma", "it@gamma.example", true)
	mustRollUp(t, site, beta, 8_000)
	mustAdmit(t, site, acme, 30)
	suspended := tenants.StatusSuspended
	if _, err := site.svc.Update(context.Background(), gamma, "test", "test", tenants.WorkspaceChange{Status: &suspended}); err != nil {
		t.Fatal(err)
	}

	t.Run("the most used workspace comes first, with its share of the limit", func(t *testing.T) {
		_, body := b.get("/operator")
		if got := listed(body); len(got) != 3 || got[0] != beta || got[1] != acme || got[2] != gamma {
			t.Fatalf("order %v, want beta, acme, gamma", got)
		}
		mustContain(t, body, "8,000", "80% of 10,000", "3 workspaces.")
	})
	for name, c := range map[string]struct {
		query string
		want  []string
	}{
		"a search by the start of an email":      {"?q=IT@gam", []string{gamma}},
		"a search by the start of a name":        {"?q=acm", []string{acme}},
		"a search by the whole id":               {"?q=" + beta, []string{beta}},
		"the status filter":                      {"?status=suspended", []string{gamma}},
		"the 80% filter":                         {"?near_limit=1", []string{beta}},
		"the terms filter":                       {"?terms_pending=1", []string{beta}},
		"filters together":                       {"?plan=free&status=active&sort=name", []string{acme, beta}},
		"a search in the middle of a name finds": {"?q=cme", nil},
	} {
		t.Run(name+" lists exactly its workspaces", func(t *testing.T) {
			status, body := b.get("/operator" + c.query)
			if got := listed(body); status != http.StatusOK || strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Fatalf("%d: %v, want %v", status, got, c.want)
			}
			if c.want == nil {
				mustContain(t, body, `id="no-workspaces"`, "No workspace matches")
			}
		})
	}
	t.Run("pages link to the next one and keep the filters", func(t *testing.T) {
		_, body := b.get("/operator?sort=name&limit=2")
		if got := listed(body); strings.Join(got, ",") != acme+","+beta {
			t.Fatalf("first page %v", got)
		}
		m := regexp.MustCompile(`href="(/operator\?[^"]+)" id="next-page"`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no next link:\n%s", body)
		}
		next := strings.ReplaceAll(m[1], "&amp;", "&")
		if !strings.Contains(next, "sort=name") {
			t.Fatalf("the next link loses the order: %s", next)
		}
		_, body = b.get(next + "&limit=2")
		if got := listed(body); strings.Join(got, ",") != gamma {
			t.Fatalf("second page %v", got)
		}
		mustContain(t, body, `id="first-page"`)
	})
	t.Run("the second page links back to the first, which links back nowhere", func(t *testing.T) {
		pageLink := func(body, id string) string {
			t.Helper()
			m := regexp.MustCompile(`href="(/operator\?[^"]+)" id="` + id + `"`).FindStringSubmatch(body)
			if m == nil {
				return ""
			}
			return strings.ReplaceAll(m[1], "&amp;", "&")
		}
		_, body := b.get("/operator?sort=name&limit=2")
		if prev := pageLink(body, "prev-page"); prev != "" {
			t.Fatalf("the first page links to a previous page %s", prev)
		}
		_, body = b.get(pageLink(body, "next-page") + "&limit=2")
		prev := pageLink(body, "prev-page")
		if !strings.Contains(prev, "before=") || !strings.Contains(prev, "sort=name") {
			t.Fatalf("the second page's previous link is %q, want a before cursor in the name order:\n%s", prev, body)
		}
		_, body = b.get(prev + "&limit=2")
		if got := listed(body); strings.Join(got, ",") != acme+","+beta {
			t.Fatalf("back on the first page: %v", got)
		}
		if again := pageLink(body, "prev-page"); again != "" {
			t.Fatalf("the first page, reached going back, links to a previous page %s", again)
		}
		if next := pageLink(body, "next-page"); next == "" {
			t.Fatalf("the first page, reached going back, has no next link:\n%s", body)
		}
		if status, _ := b.get("/operator?before=not-a-cursor"); status != http.StatusBadRequest {
			t.Fatalf("a bad before cursor: %d", status)
		}
	})
	t.Run("a bad filter is 400 with the reason on the page", func(t *testing.T) {
		status, body := b.get("/operator?plan=gold")
		if status != http.StatusBadRequest {
			t.Fatalf("%d", status)
		}
		mustContain(t, body, "must be free, pro or enterprise")
		if status, _ := b.get("/operator?after=not-a-cursor"); status != http.StatusBadRequest {
			t.Fatalf("a bad cursor: %d", status)
		}
	})
}

func TestOperatorPagesAreOnlyForOperators(t *testing.T) {
	site := mustSite(t, "http://gw.test")
	owner, id := mustOwner(t, site, "Acme", "owner@acme.example")
	for _, path := range []string{"/operator", "/operator/health", "/operator/workspaces/" + id} {
		t.Run("an owner gets 404 for "+path, func(t *testing.T) {
			if status, body := owner.get(path); status != http.StatusNotFound || strings.Contains(body, "owner@acme.example</td>") {
				t.Fatalf("%d", status)
			}
		})
		t.Run("a visitor is sent to sign in from "+path, func(t *testing.T) {
			if status, _ := site.newBrowser(t).get(path); status != http.StatusSeeOther {
				t.Fatalf("%d", status)
			}
		})
	}
	t.Run("an owner's post of an operator action is 404 and changes nothing", func(t *testing.T) {
		status, _, _ := owner.postForm("/overview", "/operator/workspaces/"+id+"/suspend", url.Values{"confirm": {"yes"}})
		if status != http.StatusNotFound {
			t.Fatalf("%d", status)
		}
		if ws, _ := site.svc.Workspace(context.Background(), id); ws.Status != tenants.StatusActive {
			t.Fatalf("the owner suspended the workspace")
		}
	})
	t.Run("an operator account is locked after five wrong passwords", func(t *testing.T) {
		mustOperator(t, site)
		b := site.newBrowser(t)
		for i := range 5 {
			if status, _, _ := b.postForm("/signin", "/signin", url.Values{"email": {opEmail}, "password": {fmt.Sprint("wrong ", i)}}); status != http.StatusUnauthorized {
				t.Fatalf("failure %d: %d", i+1, status)
			}
		}
		if status, _, _ := site.newBrowser(t).postForm("/signin", "/signin", url.Values{"email": {opEmail}, "password": {opPassword}}); status != http.StatusTooManyRequests {
			t.Fatalf("the right password after five failures: %d, want 429", status)
		}
	})
}

func TestOperatorActions(t *testing.T) {
	site := mustSite(t, "http://gw.test")
	ctx := context.Background()
	b := mustOperator(t, site)
	id, token := mustRegister(t, site, "Acme", "owner@acme.example", true)
	page := "/operator/workspaces/" + id
	lastAudit := func(t *testing.T) tenants.AuditEntry {
		t.Helper()
		entries, err := site.svc.AuditLog(ctx, id, 1)
		if err != nil || len(entries) == 0 {
			t.Fatalf("audit %v, %v", entries, err)
		}
		return entries[0]
	}

	t.Run("the page shows usage, terms, consents and the empty owners list", func(t *testing.T) {
		mustAdmit(t, site, id, 12)
		status, body := b.get(page)
		if status != http.StatusOK {
			t.Fatalf("%d", status)
		}
		mustContain(t, body, "<h1>Acme</h1>", `<strong id="used">12</strong> of 10,000`, `id="history"`, `id="consents"`, termsVersion,
			`id="no-owners"`, `id="audit"`, "workspace.create")
	})
	t.Run("suspend asks first, then suspends and audits the operator", func(t *testing.T) {
		status, body, _ := b.postForm(page, page+"/suspend", url.Values{})
		if status != http.StatusOK {
			t.Fatalf("%d", status)
		}
		mustContain(t, body, `id="confirm"`, "Suspend Acme?", `name="confirm" value="yes"`)
		if ws, _ := site.svc.Workspace(ctx, id); ws.Status != tenants.StatusActive {
			t.Fatalf("asking suspended it")
		}
		status, _, h := b.postForm(page, page+"/suspend", url.Values{"confirm": {"yes"}})
		if status != http.StatusSeeOther || h.Get("Location") != page+"?done=suspend" {
			t.Fatalf("%d to %q", status, h.Get("Location"))
		}
		p, _ := site.svc.PrincipalOf(ctx, id)
		if err := site.svc.CanSend(ctx, p); tenants.ErrorCode(err) != tenants.CodeForbidden {
			t.Fatalf("a suspended workspace may send: %v", err)
		}
		if a := lastAudit(t); a.Action != "workspace.suspend" || a.Actor != "operator:"+opEmail || a.Source != "operator" {
			t.Fatalf("audit %+v", a)
		}
		_, body = b.get(page + "?done=suspend")
		mustContain(t, body, "The workspace is suspended", `id="resume"`)
		if status, _, _ := b.postForm(page, page+"/resume", url.Values{"confirm": {"yes"}}); status != http.StatusSeeOther {
			t.Fatalf("resume: %d", status)
		}
	})
	t.Run("a plan with a custom limit, and a limit where the plan has its own is refused at the field", func(t *testing.T) {
		status, body, _ := b.postForm(page, page+"/plan", url.Values{"plan": {"pro"}, "limit": {"5000"}})
		if status != http.StatusBadRequest {
			t.Fatalf("%d", status)
		}
		mustContain(t, body, `id="limit-error"`, "only for the enterprise plan")
		status, body, _ = b.postForm(page, page+"/plan", url.Values{"plan": {"enterprise"}, "limit": {"5000"}})
		mustContain(t, body, "Move Acme to enterprise?", "5,000 pushes", `name="limit" value="5000"`)
		if status, _, _ = b.postForm(page, page+"/plan", url.Values{"plan": {"enterprise"}, "limit": {"5000"}, "confirm": {"yes"}}); status != http.StatusSeeOther {
			t.Fatalf("%d", status)
		}
		ws, _ := site.svc.Workspace(ctx, id)
		if ws.Plan != tenants.PlanEnterprise || ws.MonthlyLimit() != 5000 {
			t.Fatalf("plan %s limit %d", ws.Plan, ws.MonthlyLimit())
		}
	})
	t.Run("added pushes raise this month's limit once confirmed", func(t *testing.T) {
		status, body, _ := b.postForm(page, page+"/pushes", url.Values{"pushes": {"0"}})
		if status != http.StatusBadRequest {
			t.Fatalf("zero pushes: %d", status)
		}
		mustContain(t, body, `id="pushes-error"`)
		_, body, _ = b.postForm(page, page+"/pushes", url.Values{"pushes": {"1,500"}, "note": {"ticket 42"}})
		mustContain(t, body, "Add 1,500 pushes to Acme?", "from 5,000 to 6,500")
		if status, _, _ := b.postForm(page, page+"/pushes", url.Values{"pushes": {"1500"}, "note": {"ticket 42"}, "confirm": {"yes"}}); status != http.StatusSeeOther {
			t.Fatalf("%d", status)
		}
		if ws, _ := site.svc.Workspace(ctx, id); ws.MonthlyLimit() != 6500 {
			t.Fatalf("limit %d", ws.MonthlyLimit())
		}
		if a := lastAudit(t); a.Action != "workspace.add_pushes" || !strings.Contains(a.Detail, "ticket 42") {
			t.Fatalf("audit %+v", a)
		}
	})
	t.Run("a rotated token is shown once and the old one stops", func(t *testing.T) {
		status, body, _ := b.postForm(page, page+"/token", url.Values{"grace_minutes": {"0"}, "confirm": {"yes"}})
		m := tokenOnPage.FindStringSubmatch(body)
		if status != http.StatusOK || m == nil {
			t.Fatalf("%d\n%s", status, body)
		}
		if _, err := site.svc.Authenticate(ctx, m[1]); err != nil {
			t.Fatalf("the new token: %v", err)
		}
		if _, err := site.svc.Authenticate(ctx, token); tenants.ErrorCode(err) != tenants.CodeUnauthorized {
			t.Fatalf("the old token: %v", err)
		}
		if _, body := b.get(page); strings.Contains(body, m[1]) {
			t.Fatalf("the token shows again")
		}
		if status, _, _ := b.postForm(page, page+"/token", url.Values{"grace_minutes": {"99999"}}); status != http.StatusBadRequest {
			t.Fatalf("a grace of 69 days: %d", status)
		}
	})
	t.Run("a form without its CSRF token is 403 and changes nothing", func(t *testing.T) {
		status, _, _ := b.post(page+"/suspend", url.Values{"confirm": {"yes"}})
		if status != http.StatusForbidden {
			t.Fatalf("%d", status)
		}
		if ws, _ := site.svc.Workspace(ctx, id); ws.Status != tenants.StatusActive {
			t.Fatalf("suspended without a CSRF token")
		}
	})
	t.Run("an unknown or malformed workspace is 404", func(t *testing.T) {
		for _, path := range []string{"/operator/workspaces/ws_zzzzzzzzzzzzzzzzzzzz", "/operator/workspaces/nonsense"} {
			if status, _ := b.get(path); status != http.StatusNotFound {
				t.Errorf("%s: %d", path, status)
			}
		}
	})
}

// sendsCounter is the delivery counter the gateway registers, for tests.
func sendsCounter(reg *prometheus.Registry) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushgate_provider_sends_total", Help: "test"},
		[]string{"app", "provider", "outcome", "reason"})
	reg.MustRegister(c)
	return c
}

func TestPushRates(t *testing.T) {
	t.Run("counts per minute are exact while many goroutines send", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		sends := sendsCounter(reg)
		now := time.Date(2026, 12, 7, 10, 0, 30, 0, time.UTC)
		var mu sync.Mutex
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		rates := web.NewPushRates(reg, clock)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			for {
				select {
				case <-stop:
					return
				default:
					_ = rates.Sample()
				}
			}
		}()
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 500 {
					switch {
					case i%10 == 0:
						sends.WithLabelValues("apple", "apns", "dead_token", "Unregistered").Inc()
					case g%4 == 0 && i%25 == 1:
						sends.WithLabelValues("android", "fcm", "failed", "INVALID_ARGUMENT").Inc()
					default:
						sends.WithLabelValues("apple", "apns", "delivered", "none").Inc()
					}
				}
			}()
		}
		wg.Wait()
		close(stop)
		<-sampled
		if err := rates.Sample(); err != nil {
			t.Fatal(err)
		}
		minutes, reasons := rates.LastHour()
		last := minutes[len(minutes)-1]
		if last.Outcomes != [4]int64{16*500 - 16*50 - 4*20, 16 * 50, 0, 4 * 20} {
			t.Fatalf("this minute %v", last.Outcomes)
		}
		if len(reasons) != 2 || reasons[0] != (web.ReasonCount{Reason: "Unregistered", Count: 800}) || reasons[1].Count != 80 {
			t.Fatalf("reasons %v", reasons)
		}
	})
	t.Run("minutes move on and an hour-old minute is forgotten", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		sends := sendsCounter(reg)
		now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
		rates := web.NewPushRates(reg, func() time.Time { return now })
		sends.WithLabelValues("apple", "apns", "delivered", "none").Add(7)
		_ = rates.Sample()
		now = now.Add(time.Minute)
		sends.WithLabelValues("apple", "apns", "delivered", "none").Add(3)
		_ = rates.Sample()
		minutes, _ := rates.LastHour()
		if minutes[58].Outcomes[0] != 7 || minutes[59].Outcomes[0] != 3 || minutes[59].At != now {
			t.Fatalf("the last two minutes: %+v %+v", minutes[58], minutes[59])
		}
		now = now.Add(59 * time.Minute)
		_ = rates.Sample()
		minutes, _ = rates.LastHour()
		var total int64
		for _, m := range minutes {
			total += m.Total()
		}
		if total != 3 {
			t.Fatalf("an hour later the ring holds %d, want only the 3 of 59 minutes ago", total)
		}
	})
}

func TestOperatorHealth(t *testing.T) {
	reg := prometheus.NewRegistry()
	sends := sendsCounter(reg)
	expiry := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pushgate_provider_certificate_expiry_timestamp_seconds", Help: "test"}, []string{"app"})
	reg.MustRegister(expiry)
	expiry.WithLabelValues("apple_voip").Set(float64(time.Now().Add(10 * 24 * time.Hour).Unix()))
	rates := web.NewPushRates(reg, nil)
	sends.WithLabelValues("apple", "apns", "delivered", "none").Add(40)
	sends.WithLabelValues("apple", "apns", "failed", "BadTopic").Add(2)
	_ = rates.Sample()
	site := mustSite(t, "http://gw.test", func(d *web.Deps) {
		d.Health = web.Health{Rates: rates, Metrics: reg, Version: "1.2.3 (abc123)",
			QuotaStore: "Redis, shared by every replica", OutagePolicy: "fail_open: count locally",
			Checks: []web.HealthCheck{
				{Name: "database", Ping: func(context.Context) error { return nil }},
				{Name: "redis", Ping: func(context.Context) error { return fmt.Errorf("dial tcp 127.0.0.1:6390: connection refused") }},
			},
			Apps: []web.AppCredential{{ID: "apple", Kind: "apns", Topic: "com.example.app"}, {ID: "apple_voip", Kind: "apns", Topic: "com.example.app.voip"}, {ID: "android", Kind: "fcm"}},
		}
	})
	_, body := mustOperator(t, site).get("/operator/health")
	mustContain(t, body, "1.2.3 (abc123)", `<span class="status-ok">reachable</span>`, "connection refused",
		"fail_open: count locally", `id="rate-chart"`, "Delivered 40", "Failed 2", "<code>BadTopic</code>",
		"client certificate", "in 9 days: renew it now", "does not expire", "service account")
}
