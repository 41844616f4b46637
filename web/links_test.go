package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/web"
	"github.com/pushgate/pushgate/web/mail"
)

// mailbox records the dashboard's mails instead of sending them.
type mailbox struct{ ch chan mail.Message }

func newMailbox() *mailbox { return &mailbox{ch: make(chan mail.Message, 100)} }

func (m *mailbox) Send(_ context.Context, msg mail.Message) error {
	m.ch <- msg
	return nil
}

// next waits for the next mail; mails leave in the background.
func (m *mailbox) next(t *testing.T) mail.Message {
	t.Helper()
	select {
	case msg := <-m.ch:
		return msg
	case <-time.After(5 * time.Second):
		t.Fatal("no mail was sent")
		return mail.Message{}
	}
}

func (m *mailbox) none(t *testing.T) {
	t.Helper()
	select {
	case msg := <-m.ch:
		t.Fatalf("a mail was sent to %s: %s", msg.To, msg.Subject)
	case <-time.After(300 * time.Millisecond):
	}
}

// testClock is the dashboard's time, moved by the test.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var linkInMail = regexp.MustCompile(`http://gw\.test(/(?:reset|claim|invite)/[A-Za-z0-9_-]{43})`)

// linkPath is the path of the one link in a mail or an answer.
func linkPath(t *testing.T, text string) string {
	t.Helper()
	m := linkInMail.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no link in:\n%s", text)
	}
	return m[1]
}

func mustLinkSite(t *testing.T) (*testSite, *mailbox, *testClock) {
	t.Helper()
	box, clk := newMailbox(), &testClock{t: time.Now().UTC()}
	site := mustSite(t, "http://gw.test", func(d *web.Deps) { d.Mail, d.Now = box, clk.Now })
	return site, box, clk
}

// mustAskReset posts the forgot-password form and checks its answer, which
// is the same whatever the email.
func mustAskReset(t *testing.T, b *browser, email string) {
	t.Helper()
	status, body, _ := b.postForm("/forgot", "/forgot", url.Values{"email": {email}})
	if status != http.StatusOK {
		t.Fatalf("forgot: %d\n%s", status, body)
	}
	mustContain(t, body, `id="reset-sent"`, "If <strong>"+strings.ToLower(email)+"</strong> belongs to an owner account")
}

func TestPasswordReset(t *testing.T) {
	site, box, clk := mustLinkSite(t)

	t.Run("a known email gets a link that sets a new password once and ends every session", func(t *testing.T) {
		owner, _ := mustOwner(t, site, "Reset", "owner@reset.example")
		b := site.newBrowser(t)
		mustAskReset(t, b, "Owner@Reset.example")
		msg := box.next(t)
		if msg.To != "owner@reset.example" || !strings.Contains(msg.Body, "works once, for an hour") {
			t.Fatalf("mail %+v", msg)
		}
		path := linkPath(t, msg.Body)
		status, body := b.get(path)
		if status != http.StatusOK {
			t.Fatalf("reset page: %d\n%s", status, body)
		}
		mustContain(t, body, "owner@reset.example", `name="new_password"`)
		status, body, h := b.postForm(path, path, url.Values{"new_password": {"a brand new password"}})
		if status != http.StatusSeeOther || h.Get("Location") != "/signin?reset=1" {
			t.Fatalf("reset: %d to %q\n%s", status, h.Get("Location"), body)
		}
		if status, _ := owner.get("/overview"); status != http.StatusSeeOther {
			t.Fatalf("the owner's old session still opens the overview: %d", status)
		}
		site.newBrowser(t).mustSignIn("owner@reset.example", "a brand new password")
		status, body, _ = b.postForm("/forgot", path, url.Values{"new_password": {"another new password"}})
		if status != http.StatusNotFound || !strings.Contains(body, "does not work any more") {
			t.Fatalf("a used link: %d\n%s", status, body)
		}
	})
	t.Run("an unknown email gets the same answer and no mail", func(t *testing.T) {
		mustAskReset(t, site.newBrowser(t), "nobody@reset.example")
		box.none(t)
	})
	t.Run("a link expires after an hour", func(t *testing.T) {
		mustOwner(t, site, "Expiry", "owner@expiry.example")
		b := site.newBrowser(t)
		mustAskReset(t, b, "owner@expiry.example")
		path := linkPath(t, box.next(t).Body)
		clk.Add(61 * time.Minute)
		defer clk.Add(-61 * time.Minute)
		if status, body := b.get(path); status != http.StatusNotFound || !strings.Contains(body, `href="/forgot"`) {
			t.Fatalf("an expired link: %d\n%s", status, body)
		}
	})
	t.Run("a newer link ends the older one", func(t *testing.T) {
		mustOwner(t, site, "Twice", "owner@twice.example")
		b := site.newBrowser(t)
		mustAskReset(t, b, "owner@twice.example")
		first := linkPath(t, box.next(t).Body)
		mustAskReset(t, b, "owner@twice.example")
		second := linkPath(t, box.next(t).Body)
		if status, _ := b.get(first); status != http.StatusNotFound {
			t.Fatalf("the older link still opens: %d", status)
		}
		if status, _ := b.get(second); status != http.StatusOK {
			t.Fatalf("the newer link: %d", status)
		}
	})
	t.Run("a password change ends the reset links", func(t *testing.T) {
		owner, _ := mustOwner(t, site, "Changed", "owner@changed.example")
		b := site.newBrowser(t)
		mustAskReset(t, b, "owner@changed.example")
		path := linkPath(t, box.next(t).Body)
		status, _, _ := owner.postForm("/account", "/account/password", url.Values{"current_password": {"owner password!"}, "new_password": {"changed in the meantime"}})
		if status != http.StatusSeeOther {
			t.Fatalf("change: %d", status)
		}
		if status, _ := b.get(path); status != http.StatusNotFound {
			t.Fatalf("the link outlived a password change: %d", status)
		}
	})
	t.Run("a short new password is 400 under its field and keeps the link", func(t *testing.T) {
		mustOwner(t, site, "Short", "owner@short.example")
		b := site.newBrowser(t)
		mustAskReset(t, b, "owner@short.example")
		path := linkPath(t, box.next(t).Body)
		status, body, _ := b.postForm(path, path, url.Values{"new_password": {"short"}})
		if status != http.StatusBadRequest {
			t.Fatalf("%d\n%s", status, body)
		}
		mustContain(t, body, `id="new_password-error"`)
		if status, _ := b.get(path); status != http.StatusOK {
			t.Fatalf("a refused password used the link: %d", status)
		}
	})
	t.Run("a malformed or unknown token is the same 404", func(t *testing.T) {
		b := site.newBrowser(t)
		for _, p := range []string{"/reset/short", "/reset/" + strings.Repeat("A", 43), "/reset/" + strings.Repeat("!", 43)} {
			if status, _ := b.get(p); status != http.StatusNotFound && status != http.StatusBadRequest {
				t.Errorf("%s: %d", p, status)
			}
		}
	})
	t.Run("past 3 requests an hour an email gets the same answer and no more mail", func(t *testing.T) {
		mustOwner(t, site, "Flooded", "owner@flooded.example")
		for i := range 5 {
			mustAskReset(t, site.newBrowser(t), "owner@flooded.example")
			if i < 3 {
				box.next(t)
			}
		}
		box.none(t)
	})
	t.Run("past 20 requests an hour from one address it is refused with 429", func(t *testing.T) {
		site, _, _ := mustLinkSite(t)
		b := site.newBrowser(t)
		for i := range 20 {
			mustAskReset(t, b, "x"+string(rune('a'+i))+"@flood.example")
		}
		status, body, _ := b.postForm("/forgot", "/forgot", url.Values{"email": {"y@flood.example"}})
		if status != http.StatusTooManyRequests || !strings.Contains(body, "Too many reset requests") {
			t.Fatalf("%d\n%s", status, body)
		}
	})
	t.Run("a bad email is 400 under its field", func(t *testing.T) {
		status, body, _ := site.newBrowser(t).postForm("/forgot", "/forgot", url.Values{"email": {"not an email"}})
		if status != http.StatusBadRequest {
			t.Fatalf("%d\n%s", status, body)
		}
		mustContain(t, body, `id="email-error"`)
	})
	t.Run("the form without its CSRF token is refused", func(t *testing.T) {
		status, _, _ := site.newBrowser(t).post("/forgot", url.Values{"email": {"owner@reset.example"}})
		if status != http.StatusForbidden {
			t.Fatalf("%d", status)
		}
	})
}

// mustRegisterUnclaimed registers a workspace through the API, with no owner yet, and returns its answer.
func mustRegisterUnclaimed(t *testing.T, site *testSite, name, email string) map[string]any {
	t.Helper()
	resp, err := http.Post(site.URL+"/api/v1/workspaces", "application/json",
		strings.NewReader(`{"name":"`+name+`","contact_email":"`+email+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("register: %d %v", resp.StatusCode, err)
	}
	return out
}

func postClaim(t *testing.T, site *testSite, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, site.URL+"/api/v1/workspace/claim", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestClaim(t *testing.T) {
	site, _, clk := mustLinkSite(t)
	ctx := context.Background()

	t.Run("the registration answer has a claim_url that creates the owner account once", func(t *testing.T) {
		reg := mustRegisterUnclaimed(t, site, "Claimed", "admin@claimed.example")
		for _, key := range []string{"id", "name", "region", "token", "plan", "push_urls", "terms", "claim_url", "claim_expires_at"} {
			if _, ok := reg[key]; !ok {
				t.Errorf("the registration answer lacks %q", key)
			}
		}
		path := linkPath(t, reg["claim_url"].(string))
		b := site.newBrowser(t)
		status, body := b.get(path)
		if status != http.StatusOK {
			t.Fatalf("claim page: %d\n%s", status, body)
		}
		mustContain(t, body, "Claim Claimed", `value="admin@claimed.example"`)
		status, body, h := b.postForm(path, path, url.Values{"email": {"boss@claimed.example"}, "password": {"claimed password"}})
		if status != http.StatusSeeOther || h.Get("Location") != "/overview" {
			t.Fatalf("claim: %d to %q\n%s", status, h.Get("Location"), body)
		}
		if _, body := b.get("/overview"); !strings.Contains(body, "Claimed") {
			t.Fatalf("the claimer is not signed in to the workspace:\n%s", body)
		}
		if status, _ := site.newBrowser(t).get(path); status != http.StatusNotFound {
			t.Fatalf("a used claim link opens again: %d", status)
		}
		log, err := site.db.AuditLog(ctx, reg["id"].(string), 10)
		if err != nil || !hasAudit(log, "workspace.claim", "boss@claimed.example") {
			t.Fatalf("audit %+v, %v", log, err)
		}
		if status, out := postClaim(t, site, reg["token"].(string)); status != http.StatusConflict {
			t.Fatalf("a new claim link of a claimed workspace: %d %v", status, out)
		}
	})
	t.Run("a new link issued with the workspace token ends the old one", func(t *testing.T) {
		reg := mustRegisterUnclaimed(t, site, "Reissued", "admin@reissued.example")
		old := linkPath(t, reg["claim_url"].(string))
		status, out := postClaim(t, site, reg["token"].(string))
		if status != http.StatusCreated {
			t.Fatalf("%d %v", status, out)
		}
		b := site.newBrowser(t)
		if status, _ := b.get(old); status != http.StatusNotFound {
			t.Fatalf("the old claim link still opens: %d", status)
		}
		if status, _ := b.get(linkPath(t, out["claim_url"].(string))); status != http.StatusOK {
			t.Fatalf("the new claim link: %d", status)
		}
	})
	t.Run("a claim link expires after 7 days", func(t *testing.T) {
		reg := mustRegisterUnclaimed(t, site, "Late", "admin@late.example")
		clk.Add(7*24*time.Hour + time.Minute)
		defer clk.Add(-(7*24*time.Hour + time.Minute))
		if status, _ := site.newBrowser(t).get(linkPath(t, reg["claim_url"].(string))); status != http.StatusNotFound {
			t.Fatalf("an expired claim link: %d", status)
		}
	})
	t.Run("an email that already has an account is 409 under its field", func(t *testing.T) {
		mustOwner(t, site, "Other", "taken@claim.example")
		reg := mustRegisterUnclaimed(t, site, "Taken", "admin@taken.example")
		path := linkPath(t, reg["claim_url"].(string))
		b := site.newBrowser(t)
		status, body, _ := b.postForm(path, path, url.Values{"email": {"taken@claim.example"}, "password": {"claimed password"}})
		if status != http.StatusConflict {
			t.Fatalf("%d\n%s", status, body)
		}
		mustContain(t, body, `id="email-error"`, "owns one workspace only")
		if status, _ := b.get(path); status != http.StatusOK {
			t.Fatalf("a refused claim used the link: %d", status)
		}
	})
	t.Run("concurrent claims with one link create exactly one owner", func(t *testing.T) {
		reg := mustRegisterUnclaimed(t, site, "Race", "admin@race.example")
		path := linkPath(t, reg["claim_url"].(string))
		codes := make([]int, 8)
		browsers, tokens := make([]*browser, len(codes)), make([]string, len(codes))
		for i := range codes {
			browsers[i] = site.newBrowser(t)
			tokens[i] = browsers[i].csrf(path)
		}
		var wg sync.WaitGroup
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], _, _ = browsers[i].post(path, url.Values{"csrf": {tokens[i]}, "email": {"racer" + string(rune('a'+i)) + "@race.example"}, "password": {"claimed password"}})
			}()
		}
		wg.Wait()
		created := 0
		for _, c := range codes {
			if c == http.StatusSeeOther {
				created++
			}
		}
		if created != 1 {
			t.Fatalf("%d claims succeeded, want 1 (answers %v)", created, codes)
		}
		owners, err := site.db.OwnerAccounts(ctx, reg["id"].(string))
		if err != nil || len(owners) != 1 {
			t.Fatalf("owners %+v, %v (answers %v)", owners, err, codes)
		}
	})
}

func hasAudit(log []tenants.AuditEntry, action, detail string) bool {
	for _, e := range log {
		if e.Action == action && e.Detail == detail {
			return true
		}
	}
	return false
}

func TestOwnerInvites(t *testing.T) {
	site, box, clk := mustLinkSite(t)
	ctx := context.Background()
	owner, id := mustOwner(t, site, "Team", "first@team.example")

	invite := func(t *testing.T, email string) string {
		t.Helper()
		status, body, h := owner.postForm("/account", "/account/invites", url.Values{"invite_email": {email}})
		if status != http.StatusSeeOther || h.Get("Location") != "/account?invited=1" {
			t.Fatalf("invite: %d\n%s", status, body)
		}
		msg := box.next(t)
		if msg.To != strings.ToLower(email) || !strings.Contains(msg.Body, "first@team.example invites you") {
			t.Fatalf("mail %+v", msg)
		}
		return linkPath(t, msg.Body)
	}

	t.Run("an invitation is listed, and accepting it makes a second owner of the same workspace", func(t *testing.T) {
		_, body := owner.get("/account")
		mustContain(t, body, `id="no-invites"`)
		path := invite(t, "second@team.example")
		_, body = owner.get("/account")
		mustContain(t, body, `id="invites"`, "second@team.example")
		b := site.newBrowser(t)
		status, body := b.get(path)
		if status != http.StatusOK {
			t.Fatalf("%d\n%s", status, body)
		}
		mustContain(t, body, "Join Team", `value="second@team.example" readonly`)
		status, body, _ = b.postForm(path, path, url.Values{"password": {"second owner pass"}})
		if status != http.StatusSeeOther {
			t.Fatalf("accept: %d\n%s", status, body)
		}
		_, body = b.get("/account")
		mustContain(t, body, "first@team.example", `second@team.example <span class="muted">(you)</span>`, `id="no-invites"`)
		if status, _ := site.newBrowser(t).get(path); status != http.StatusNotFound {
			t.Fatalf("a used invitation opens again: %d", status)
		}
		log, _ := site.db.AuditLog(ctx, id, 20)
		if !hasAudit(log, "owner.invite", "second@team.example") || !hasAudit(log, "owner.invite_accept", "second@team.example") {
			t.Fatalf("audit %+v", log)
		}
	})
	t.Run("an email that has an account is told it cannot join", func(t *testing.T) {
		mustOwner(t, site, "Elsewhere", "busy@elsewhere.example")
		path := invite(t, "busy@elsewhere.example")
		status, body := site.newBrowser(t).get(path)
		if status != http.StatusOK {
			t.Fatalf("%d", status)
		}
		mustContain(t, body, `id="email-taken"`, "owns one workspace only")
		mustNotContain(t, body, `name="password"`)
	})
	t.Run("a revoked invitation no longer works", func(t *testing.T) {
		path := invite(t, "revoked@team.example")
		invites, err := site.db.PendingInvites(ctx, id, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		var inviteID int64
		for _, l := range invites {
			if l.Email == "revoked@team.example" {
				inviteID = l.ID
			}
		}
		status, _, _ := owner.postForm("/account", "/account/invites/"+itoa(inviteID)+"/revoke", url.Values{})
		if status != http.StatusSeeOther {
			t.Fatalf("revoke: %d", status)
		}
		if status, _ := site.newBrowser(t).get(path); status != http.StatusNotFound {
			t.Fatalf("a revoked invitation opens: %d", status)
		}
		log, _ := site.db.AuditLog(ctx, id, 20)
		if !hasAudit(log, "owner.invite_revoke", "revoked@team.example") {
			t.Fatalf("audit %+v", log)
		}
	})
	t.Run("an invitation expires after 7 days", func(t *testing.T) {
		path := invite(t, "slow@team.example")
		clk.Add(7*24*time.Hour + time.Minute)
		defer clk.Add(-(7*24*time.Hour + time.Minute))
		if status, _ := site.newBrowser(t).get(path); status != http.StatusNotFound {
			t.Fatalf("an expired invitation: %d", status)
		}
	})
	t.Run("an owner of another workspace cannot revoke this one's invitations or remove its owners", func(t *testing.T) {
		invite(t, "guarded@team.example")
		invites, _ := site.db.PendingInvites(ctx, id, clk.Now())
		owners, _ := site.db.OwnerAccounts(ctx, id)
		stranger, _ := mustOwner(t, site, "Stranger", "someone@stranger.example")
		if status, _, _ := stranger.postForm("/account", "/account/invites/"+itoa(invites[0].ID)+"/revoke", url.Values{}); status != http.StatusNotFound {
			t.Fatalf("revoke across workspaces: %d", status)
		}
		if status, _, _ := stranger.postForm("/account", "/account/owners/"+itoa(owners[0].ID)+"/remove", url.Values{"confirm": {"yes"}}); status != http.StatusNotFound {
			t.Fatalf("remove across workspaces: %d", status)
		}
	})
	t.Run("another owner is removed and signed out; the last owner stays", func(t *testing.T) {
		owners, err := site.db.OwnerAccounts(ctx, id)
		if err != nil || len(owners) != 2 {
			t.Fatalf("owners %+v, %v", owners, err)
		}
		if owners[0].Email != "first@team.example" {
			owners[0], owners[1] = owners[1], owners[0]
		}
		second := site.newBrowser(t)
		second.mustSignIn("second@team.example", "second owner pass")
		status, body, _ := owner.postForm("/account", "/account/owners/"+itoa(owners[1].ID)+"/remove", url.Values{})
		if status != http.StatusOK {
			t.Fatalf("remove, unconfirmed: %d\n%s", status, body)
		}
		mustContain(t, body, `id="confirm-remove"`, "Remove second@team.example?", `name="confirm" value="yes"`)
		if owners, _ := site.db.OwnerAccounts(ctx, id); len(owners) != 2 {
			t.Fatalf("an unconfirmed removal removed: %+v", owners)
		}
		status, body, h := owner.postForm("/account", "/account/owners/"+itoa(owners[1].ID)+"/remove", url.Values{"confirm": {"yes"}})
		if status != http.StatusSeeOther || h.Get("Location") != "/account?removed=1" {
			t.Fatalf("remove: %d\n%s", status, body)
		}
		if status, _ := second.get("/overview"); status != http.StatusSeeOther {
			t.Fatalf("the removed owner's session still works: %d", status)
		}
		status, body, _ = owner.postForm("/account", "/account/owners/"+itoa(owners[0].ID)+"/remove", url.Values{"confirm": {"yes"}})
		if status != http.StatusConflict || !strings.Contains(body, "cannot remove yourself") {
			t.Fatalf("removing oneself: %d\n%s", status, body)
		}
		if err := site.db.RemoveOwner(ctx, id, owners[0].ID, tenants.AuditEntry{Actor: "test", Action: "owner.remove"}); tenants.ErrorCode(err) != tenants.CodeConflict {
			t.Fatalf("removing the last owner: %v", err)
		}
		log, _ := site.db.AuditLog(ctx, id, 30)
		if !hasAudit(log, "owner.remove", "second@team.example") {
			t.Fatalf("audit %+v", log)
		}
	})
	t.Run("inviting an owner of this workspace or a bad email is 400 under the field", func(t *testing.T) {
		for _, email := range []string{"first@team.example", "not an email"} {
			status, body, _ := owner.postForm("/account", "/account/invites", url.Values{"invite_email": {email}})
			if status != http.StatusBadRequest {
				t.Fatalf("%s: %d\n%s", email, status, body)
			}
			mustContain(t, body, `id="invite_email-error"`)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestInviteWithoutAMailServer(t *testing.T) {
	site := mustSite(t, "http://gw.test") // no Mail: the gateway sends none
	owner, _ := mustOwner(t, site, "Mailless", "first@mailless.example")
	status, body, _ := owner.postForm("/account", "/account/invites", url.Values{"invite_email": {"second@mailless.example"}})
	if status != http.StatusOK {
		t.Fatalf("%d\n%s", status, body)
	}
	mustContain(t, body, `id="invite-link-once"`, "Send this link to second@mailless.example")
	path := linkPath(t, body)
	if status, _ := site.newBrowser(t).get(path); status != http.StatusOK {
		t.Fatalf("the shown link: %d", status)
	}
	if _, body := owner.get("/account"); strings.Contains(body, path) {
		t.Fatal("the link is shown again")
	}
}
