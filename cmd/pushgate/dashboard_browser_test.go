package main

import (
	"context"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// mustChromium finds a Chromium to drive; the test fails without one, since
// a dashboard nobody looked at in a browser is not tested.
func mustChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("the dashboard browser test needs Chromium: install Debian's chromium package (`make services` does)")
	return ""
}

// mustBrowser starts a headless Chromium and collects what its pages log as
// errors (script exceptions, Content-Security-Policy violations); the func
// it returns takes what was collected so far.
func mustBrowser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(mustChromium(t)), chromedp.NoSandbox, chromedp.WindowSize(1280, 900))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	var mu sync.Mutex
	var problems []string
	ctx, cancelCtx := chromedp.NewContext(alloc, chromedp.WithListener(func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+ev.ExceptionDetails.Text)
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				problems = append(problems, string(ev.Entry.Source)+": "+ev.Entry.Text)
			}
		}
	}))
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelTimeout)
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		taken := problems
		problems = nil
		return taken
	}
}

// mustServeDev starts serve --dev with env on a fresh SQLite database of its
// own and returns it once its banner (also returned) is out.
func mustServeDev(t *testing.T, env map[string]string) (*server, string) {
	t.Helper()
	dir := t.TempDir()
	all := map[string]string{"PUSHGATE_DATABASE_URL": "sqlite:" + filepath.Join(dir, "pushgate.db"), "PUSHGATE_DATA_DIR": dir}
	maps.Copy(all, env)
	s := mustServe(t, all, "--dev")
	return s, mustEventually(t, s.stdout, "Ctrl-C")
}

// page drives the browser of a test; a failed step fails the test with the server's log.
type page struct {
	t   *testing.T
	ctx context.Context
	s   *server
}

func (p page) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\nserver log:\n%s", what, err, p.s.stderr)
	}
}

// text is what the element sel shows, trimmed.
func (p page) text(sel chromedp.CSS) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Text(sel))
	if err != nil {
		p.t.Fatalf("reading %s: %v", sel, err)
	}
	return strings.TrimSpace(v)
}

// screenshot saves the whole page when PUSHGATE_SHOTS_DIR names a folder, for a person to look at.
func screenshot(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		dir := os.Getenv("PUSHGATE_SHOTS_DIR")
		if dir == "" {
			return nil
		}
		png, err := chromedp.FullScreenshot(100)(ctx, t)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	})
}

// mustPush sends one Mattermost push to a push server URL as a Mattermost server would.
func mustPush(t *testing.T, pushServerURL string) (int, string) {
	t.Helper()
	return mustPushTo(t, pushServerURL, "device-1")
}

// mustPushTo is mustPush to a given device token.
func mustPushTo(t *testing.T, pushServerURL, device string) (int, string) {
	t.Helper()
	body := `{"platform":"apple_rn","server_id":"browser-test","device_id":"` + device + `","type":"message","message":"hello","ack_id":"` +
		time.Now().Format("150405.000000000") + `"}`
	resp, err := http.Post(pushServerURL+"/api/v1/send_push", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("push to %s: %v", pushServerURL, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(out))
}

func TestDashboardInABrowser(t *testing.T) {
	ctx, problems := mustBrowser(t)
	s, banner := mustServeDev(t, nil)
	pg := page{t: t, ctx: ctx, s: s}
	run, text := pg.run, pg.text

	run("signing up",
		chromedp.Navigate(s.URL+"/signup"),
		chromedp.WaitVisible(chromedp.ID("create")),
		screenshot("signup"),
		chromedp.SendKeys(chromedp.ID("name"), "Browser Chat"),
		chromedp.SendKeys(chromedp.ID("contact_email"), "owner@browser.example"),
		chromedp.SendKeys(chromedp.ID("password"), "a long browser password"),
		chromedp.Click(chromedp.ID("create")), // the terms are not accepted yet
		chromedp.WaitVisible(chromedp.ID("accept_terms-error")),
		screenshot("signup-error"),
	)
	if p := problems(); len(p) != 1 || !strings.Contains(p[0], "400") {
		t.Fatalf("a sign-up without the terms accepted logged %q, want one 400", p)
	}
	run("signing up",
		chromedp.SendKeys(chromedp.ID("password"), "a long browser password"),
		chromedp.Click(chromedp.ID("accept_terms")),
		chromedp.Click(chromedp.ID("create")),
		chromedp.WaitVisible(chromedp.ID("token-once")),
		screenshot("connect"),
	)
	mattermostURL, token := text("#mattermost-url"), text("#token")
	if !strings.HasSuffix(mattermostURL, "/mm/"+token) || !strings.HasPrefix(token, "pgw_us_") {
		t.Fatalf("the connect page shows Mattermost URL %q and token %q", mattermostURL, token)
	}

	currentURL := mattermostURL // the push URL with the workspace's current token

	t.Run("a copy button runs under the page's policy and says it copied", func(t *testing.T) {
		run("copying the Mattermost URL",
			chromedp.Click(chromedp.CSS(`button[data-copy="mattermost-url"]`)),
			chromedp.WaitVisible(chromedp.Search(`//button[@data-copy="mattermost-url" and text()="Copied"]`)),
		)
	})

	t.Run("the Mattermost URL on the connect page takes a push", func(t *testing.T) {
		if status, body := mustPush(t, mattermostURL); status != 200 || body != `{"status":"OK"}` {
			t.Fatalf("push answered %d %s", status, body)
		}
	})

	t.Run("the overview shows the push on the quota bar and the daily chart", func(t *testing.T) {
		run("opening the overview",
			chromedp.Navigate(s.URL+"/overview"),
			chromedp.WaitVisible(chromedp.ID("quota-bar")),
			screenshot("overview"),
		)
		used := text("#used")
		sentBars, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#daily-chart rect.sent').length`))
		if err != nil {
			t.Fatal(err)
		}
		if used != "1" || sentBars != 1 {
			t.Fatalf("overview shows %q used and %d days with sent bars, want 1 and 1", used, sentBars)
		}
	})

	t.Run("the account page offers a password change", func(t *testing.T) {
		run("opening the account page",
			chromedp.Navigate(s.URL+"/account"),
			chromedp.WaitVisible(chromedp.ID("change-password")),
			screenshot("account"),
		)
	})

	t.Run("the pages fit a phone's width without scrolling sideways", func(t *testing.T) {
		defer run("widening the viewport again", chromedp.EmulateViewport(1280, 900))
		run("narrowing the viewport", chromedp.EmulateViewport(390, 844))
		for _, page := range []string{"overview", "connect", "account", "deliveries", "test-push"} {
			run("opening "+page, chromedp.Navigate(s.URL+"/"+page), chromedp.WaitVisible(chromedp.CSS("h1")), screenshot(page+"-phone"))
			fits, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
			if err != nil {
				t.Fatal(err)
			}
			if !fits {
				t.Errorf("the %s page is wider than a 390-pixel screen", page)
			}
		}
	})

	t.Run("a rotated token works at once and the old one is refused", func(t *testing.T) {
		run("rotating the token",
			chromedp.Navigate(s.URL+"/connect"),
			chromedp.WaitVisible(chromedp.ID("rotate")),
			chromedp.Click(chromedp.ID("rotate")),
			chromedp.WaitVisible(chromedp.ID("token-once")),
		)
		newURL := text("#mattermost-url")
		currentURL = newURL
		if newURL == mattermostURL || !strings.Contains(newURL, "/mm/pgw_us_") {
			t.Fatalf("after rotation the Mattermost URL is %q (before: %q)", newURL, mattermostURL)
		}
		if status, _ := mustPush(t, mattermostURL); status != http.StatusUnauthorized {
			t.Fatalf("the old token's push answered %d, want 401", status)
		}
		if status, body := mustPush(t, newURL); status != 200 || body != `{"status":"OK"}` {
			t.Fatalf("the new token's push answered %d %s", status, body)
		}
	})

	t.Run("an owner signs out and back in to the same workspace", func(t *testing.T) {
		run("signing out",
			chromedp.Click(chromedp.ID("signout")),
			chromedp.WaitVisible(chromedp.ID("signin")),
			screenshot("signin"),
			chromedp.Navigate(s.URL+"/overview"),
			chromedp.WaitVisible(chromedp.ID("signin")),
		)
		location, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		run("signing in",
			chromedp.SendKeys(chromedp.ID("email"), "owner@browser.example"),
			chromedp.SendKeys(chromedp.ID("password"), "a long browser password"),
			chromedp.Click(chromedp.ID("signin")),
			chromedp.WaitVisible(chromedp.ID("quota-bar")),
		)
		used := text("#used")
		if !strings.HasSuffix(location, "/signin") {
			t.Fatalf("a signed-out browser opening the overview is at %s, want the sign-in page", location)
		}
		if used != "2" {
			t.Fatalf("after signing in again the overview shows %q used, want 2", used)
		}
	})

	t.Run("the delivery log lists the pushes with a dead token marked", func(t *testing.T) {
		if status, body := mustPushTo(t, currentURL, "unregistered-browser"); status != 200 || body != `{"status":"REMOVE"}` {
			t.Fatalf("dead token push answered %d %s", status, body)
		}
		// The log is written within a second of the push.
		deadline := time.Now().Add(10 * time.Second)
		for {
			run("opening the delivery log", chromedp.Navigate(s.URL+"/deliveries"), chromedp.WaitVisible(chromedp.CSS("h1")))
			n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#deliveries tr.dead-token').length`))
			if err != nil {
				t.Fatal(err)
			}
			if n == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 10 s the delivery log shows %d dead-token rows, want 1", n)
			}
			time.Sleep(200 * time.Millisecond)
		}
		run("looking at it", screenshot("deliveries"))
		rows := text("#deliveries tbody")
		if !strings.Contains(rows, "unregi…") || !strings.Contains(rows, "Dead token") || !strings.Contains(rows, "Delivered") ||
			strings.Contains(rows, "unregistered-browser") {
			t.Fatalf("the delivery log shows:\n%s", rows)
		}
	})

	t.Run("a test push from the page is delivered and says so", func(t *testing.T) {
		run("sending a test push",
			chromedp.Navigate(s.URL+"/test-push"),
			chromedp.WaitVisible(chromedp.ID("send-test")),
			chromedp.SendKeys(chromedp.ID("token"), "browser-test-device"),
			chromedp.Click(chromedp.ID("send-test")),
			chromedp.WaitVisible(chromedp.ID("answer")),
			screenshot("test-push"),
		)
		if answer := text("#answer"); !strings.HasPrefix(answer, "Delivered") {
			t.Fatalf("the test push answered %q", answer)
		}
	})

	t.Run("an owner gets 404 for another workspace's page and 403 for a form without its CSRF token", func(t *testing.T) {
		demo := regexp.MustCompile(`demo workspace\s+(\S+)`).FindStringSubmatch(banner)
		if demo == nil {
			t.Fatalf("no demo workspace in the banner:\n%s", banner)
		}
		problems() // what was logged so far is checked at the end
		run("opening the demo workspace's page",
			chromedp.Navigate(s.URL+"/operator/workspaces/"+demo[1]),
			chromedp.WaitVisible(chromedp.CSS("h1")),
		)
		if h1 := text("h1"); h1 != "Not found" {
			t.Fatalf("an owner opening another workspace's page sees %q", h1)
		}
		if page := text("main"); strings.Contains(page, "Demo workspace") {
			t.Fatalf("the not-found page shows the other workspace:\n%s", page)
		}
		run("sending the password form without its CSRF token",
			chromedp.Navigate(s.URL+"/account"),
			chromedp.WaitVisible(chromedp.ID("change-password")),
		)
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('input[name="csrf"]').forEach(e => e.remove()), 0`)); err != nil {
			t.Fatal(err)
		}
		run("sending it",
			chromedp.SendKeys(chromedp.ID("current_password"), "a long browser password"),
			chromedp.SendKeys(chromedp.ID("new_password"), "another long password"),
			chromedp.Click(chromedp.ID("change-password")),
			chromedp.WaitVisible(chromedp.Search(`//h1[text()="Form expired"]`)),
		)
		if p := problems(); len(p) != 2 || !strings.Contains(p[0], "404") || !strings.Contains(p[1], "403") {
			t.Fatalf("the browser logged %q, want the 404 and then the 403", p)
		}
	})

	t.Run("the dev operator signs in and finds the new workspace", func(t *testing.T) {
		m := regexp.MustCompile(`operator account\s+(\S+) / (\S+)`).FindStringSubmatch(banner)
		if m == nil {
			t.Fatalf("no operator account in the banner:\n%s", banner)
		}
		run("signing in as the operator",
			chromedp.Click(chromedp.ID("signout")),
			chromedp.WaitVisible(chromedp.ID("signin")),
			chromedp.SendKeys(chromedp.ID("email"), m[1]),
			chromedp.SendKeys(chromedp.ID("password"), m[2]),
			chromedp.Click(chromedp.ID("signin")),
			chromedp.WaitVisible(chromedp.CSS(`input[name="q"]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name="q"]`), "browser\n"),
			chromedp.WaitVisible(chromedp.Search(`//p[contains(., "matching")]`)),
			screenshot("operator"),
		)
		listed := text("table.list tbody")
		if !strings.Contains(listed, "Browser Chat") || strings.Contains(listed, "Demo workspace") {
			t.Fatalf("the operator's search for browser lists:\n%s", listed)
		}
	})

	if p := problems(); len(p) > 0 {
		t.Fatalf("the pages logged errors in the browser:\n%s", strings.Join(p, "\n"))
	}
}
