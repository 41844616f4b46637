package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestOperatorPagesInABrowser: the dev operator suspends the demo workspace
// from its page, its next push is refused with 403 FAIL, and resuming lets
// pushes through again; the health page draws without a browser error.
func TestOperatorPagesInABrowser(t *testing.T) {
	ctx, problems := mustBrowser(t)
	s, banner := mustServeDev(t, nil)
	login := regexp.MustCompile(`operator account\s+(\S+) / (\S+)`).FindStringSubmatch(banner)
	pushURL := regexp.MustCompile(`Mattermost\s+System Console > Push Notification Server: (\S+)`).FindStringSubmatch(banner)
	if login == nil || pushURL == nil {
		t.Fatalf("the banner lacks the operator login or the push URL:\n%s", banner)
	}
	pg := page{t: t, ctx: ctx, s: s}
	run := pg.run
	run("signing in as the operator and opening the demo workspace",
		chromedp.Navigate(s.URL+"/signin"),
		chromedp.WaitVisible(chromedp.ID("signin")),
		chromedp.SendKeys(chromedp.ID("email"), login[1]),
		chromedp.SendKeys(chromedp.ID("password"), login[2]),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("workspaces")),
		screenshot("operator-list"),
		chromedp.Click(chromedp.Search(`//a[strong[text()="Demo workspace"]]`)),
		chromedp.WaitVisible(chromedp.ID("suspend")),
		screenshot("operator-workspace"),
	)
	t.Run("a suspension asks first and then refuses the workspace's next push with 403 FAIL", func(t *testing.T) {
		run("suspending",
			chromedp.Click(chromedp.ID("suspend")),
			chromedp.WaitVisible(chromedp.ID("confirm-action")),
			screenshot("operator-confirm"),
			chromedp.Click(chromedp.ID("confirm-action")),
			chromedp.WaitVisible(chromedp.ID("resume")),
		)
		status, body := mustPush(t, pushURL[1])
		if status != http.StatusForbidden || !strings.Contains(body, `"status":"FAIL"`) || !strings.Contains(body, "suspended") {
			t.Fatalf("a push of the suspended workspace answered %d %s", status, body)
		}
		run("resuming",
			chromedp.Click(chromedp.ID("resume")),
			chromedp.WaitVisible(chromedp.ID("confirm-action")),
			chromedp.Click(chromedp.ID("confirm-action")),
			chromedp.WaitVisible(chromedp.ID("suspend")),
		)
		if status, body := mustPush(t, pushURL[1]); status != http.StatusOK || body != `{"status":"OK"}` {
			t.Fatalf("a push after resuming answered %d %s", status, body)
		}
	})
	t.Run("the region health page lists the sandbox apps and the database", func(t *testing.T) {
		run("opening region health",
			chromedp.Navigate(s.URL+"/operator/health"),
			chromedp.WaitVisible(chromedp.ID("rate-chart")),
			screenshot("operator-health"),
		)
		got, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("credentials")))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got, "apple_rn") || !strings.Contains(got, "android") {
			t.Fatalf("credentials table:\n%s", got)
		}
	})
	if p := problems(); len(p) > 0 {
		t.Fatalf("the operator pages logged errors in the browser:\n%s", strings.Join(p, "\n"))
	}
}
