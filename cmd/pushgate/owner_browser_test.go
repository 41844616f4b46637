package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// linkInLog finds the last one-time link of kind the dev gateway wrote to its log (no smtp_url).
func linkInLog(t *testing.T, s *server, kind string) string {
	t.Helper()
	re := regexp.MustCompile(`https?://[^\s"\\]+/` + kind + `/[A-Za-z0-9_-]{43}`)
	var found []string
	for range 100 {
		if found = re.FindAllString(s.stderr.String(), -1); len(found) > 0 {
			return found[len(found)-1]
		}
		mustEventually(t, s.stderr, "mail not sent")
	}
	t.Fatalf("no %s link in the log:\n%s", kind, s.stderr)
	return ""
}

func TestOwnerFlowsInABrowser(t *testing.T) {
	ctx, problems := mustBrowser(t)
	s, banner := mustServeDev(t, billingEnv(t))
	owner := demoOwnerLine.FindStringSubmatch(banner)
	if owner == nil {
		t.Fatalf("no demo owner in the banner:\n%s", banner)
	}
	if !strings.Contains(s.stderr.String(), "no smtp_url is set") {
		t.Errorf("the start does not say that mails go to the log:\n%s", s.stderr)
	}
	pg := page{t: t, ctx: ctx, s: s}
	run := pg.run
	type steps = []chromedp.Action[chromedp.Void]
	signIn := func(email, password string) steps {
		return steps{
			chromedp.Navigate(s.URL + "/signin"),
			chromedp.WaitVisible(chromedp.ID("signin")),
			chromedp.SendKeys(chromedp.ID("email"), email),
			chromedp.SendKeys(chromedp.ID("password"), password),
			chromedp.Click(chromedp.ID("signin")),
			chromedp.WaitVisible(chromedp.ID("quota-bar")),
		}
	}
	signOut := steps{chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("signin"))}
	then := func(parts ...steps) steps {
		var all steps
		for _, p := range parts {
			all = append(all, p...)
		}
		return all
	}

	run("signing in as the demo owner", signIn(owner[1], owner[2])...)

	t.Run("the billing page shows the plan and the ways to pay", func(t *testing.T) {
		run("opening the billing page",
			chromedp.Navigate(s.URL+"/billing"),
			chromedp.WaitVisible(chromedp.ID("upgrade-pro")),
			chromedp.WaitVisible(chromedp.ID("buy-package")),
			screenshot("billing"),
		)
	})

	t.Run("an owner invites another, who joins the same workspace", func(t *testing.T) {
		run("inviting",
			chromedp.Navigate(s.URL+"/account"),
			chromedp.WaitVisible(chromedp.ID("invite")),
			chromedp.SendKeys(chromedp.ID("invite_email"), "friend@browser.example"),
			chromedp.Click(chromedp.ID("invite")),
			chromedp.WaitVisible(chromedp.ID("invites")),
			screenshot("account-owners"),
		)
		link := linkInLog(t, s, "invite")
		run("accepting the invitation", then(signOut, steps{
			chromedp.Navigate(link),
			chromedp.WaitVisible(chromedp.ID("accept")),
			screenshot("invite"),
			chromedp.SendKeys(chromedp.ID("password"), "the friend's password"),
			chromedp.Click(chromedp.ID("accept")),
			chromedp.WaitVisible(chromedp.ID("quota-bar")),
			chromedp.Navigate(s.URL + "/account"),
			chromedp.WaitVisible(chromedp.ID("no-invites")),
			chromedp.WaitVisible(chromedp.CSS(`button[aria-label="Remove ` + owner[1] + `"]`)),
			screenshot("account-two-owners"),
			chromedp.Click(chromedp.CSS(`button[aria-label="Remove ` + owner[1] + `"]`)),
			chromedp.WaitVisible(chromedp.ID("confirm-remove-button")),
			screenshot("account-confirm-remove"),
			chromedp.Click(chromedp.Search(`//section[@id="confirm-remove"]//a[text()="Cancel"]`)),
			chromedp.WaitVisible(chromedp.ID("no-invites")),
		})...)
	})

	t.Run("a forgotten password is reset through the mailed link", func(t *testing.T) {
		run("asking for a link", then(signOut, steps{
			chromedp.Click(chromedp.ID("forgot")),
			chromedp.WaitVisible(chromedp.ID("send-reset")),
			chromedp.SendKeys(chromedp.ID("email"), owner[1]),
			chromedp.Click(chromedp.ID("send-reset")),
			chromedp.WaitVisible(chromedp.ID("reset-sent")),
		})...)
		link := linkInLog(t, s, "reset")
		run("choosing a new password", then(steps{
			chromedp.Navigate(link),
			chromedp.WaitVisible(chromedp.ID("reset")),
			screenshot("reset"),
			chromedp.SendKeys(chromedp.ID("new_password"), "a new demo password"),
			chromedp.Click(chromedp.ID("reset")),
			chromedp.WaitVisible(chromedp.ID("signin")),
			screenshot("signin-after-reset"),
		}, signIn(owner[1], "a new demo password"))...)
	})

	t.Run("a workspace registered through the API is claimed with its claim_url", func(t *testing.T) {
		resp, err := http.Post(s.URL+"/api/v1/workspaces", "application/json", strings.NewReader(`{"name":"API Chat","contact_email":"ops@api.example"}`))
		if err != nil {
			t.Fatal(err)
		}
		var reg struct {
			ClaimURL string `json:"claim_url"`
		}
		err = json.NewDecoder(resp.Body).Decode(&reg)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusCreated || reg.ClaimURL == "" {
			t.Fatalf("registration: %d %+v %v", resp.StatusCode, reg, err)
		}
		run("claiming", then(signOut, steps{
			chromedp.Navigate(reg.ClaimURL),
			chromedp.WaitVisible(chromedp.ID("accept")),
			screenshot("claim"),
			chromedp.SendKeys(chromedp.ID("password"), "the API owner's password"),
			chromedp.Click(chromedp.ID("accept")),
			chromedp.WaitVisible(chromedp.ID("quota-bar")),
		})...)
	})

	t.Run("the new pages fit a phone's width", func(t *testing.T) {
		defer run("widening the viewport again", chromedp.EmulateViewport(1280, 900))
		run("narrowing the viewport", chromedp.EmulateViewport(390, 844))
		for _, page := range []string{"billing", "account"} {
			run("opening "+page, chromedp.Navigate(s.URL+"/"+page), chromedp.WaitVisible(chromedp.CSS("h1")), screenshot(page+"-owner-phone"))
			fits, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
			if err != nil {
				t.Fatal(err)
			}
			if !fits {
				t.Errorf("the %s page is wider than a 390-pixel screen", page)
			}
		}
	})

	if p := problems(); len(p) > 0 {
		t.Fatalf("the pages logged errors in the browser:\n%s", strings.Join(p, "\n"))
	}
}
