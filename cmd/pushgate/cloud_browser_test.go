package main

import (
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestRocketChatCloudPagesInABrowser walks the pages a person sees when a
// Rocket.Chat server registers: the verification URL, sign-up, the
// confirmation, and the list of registered servers with the manual token.
func TestRocketChatCloudPagesInABrowser(t *testing.T) {
	ctx, problems := mustBrowser(t)
	s, _ := mustServeDev(t, nil)
	pg := page{t: t, ctx: ctx, s: s}
	run, text := pg.run, pg.text
	rc := &rcServer{t: t, url: s.URL}
	intent := rc.intent()
	u, err := url.Parse(intent["verification_url"].(string))
	if err != nil {
		t.Fatal(err)
	}

	run("following the verification URL to sign up and back",
		chromedp.Navigate(s.URL+u.RequestURI()),
		chromedp.WaitVisible(chromedp.ID("confirm-signin")),
		screenshot("cloud-confirm-visitor"),
		chromedp.Click(chromedp.Search(`//a[text()="Create a workspace" and contains(@href, "next=")]`)),
		chromedp.WaitVisible(chromedp.ID("create")),
		chromedp.SendKeys(chromedp.ID("name"), "Rocket Org"),
		chromedp.SendKeys(chromedp.ID("contact_email"), "ada@rocket.example"),
		chromedp.SendKeys(chromedp.ID("password"), "a long browser password"),
		chromedp.Click(chromedp.ID("accept_terms")),
		chromedp.Click(chromedp.ID("create")),
		chromedp.WaitVisible(chromedp.ID("server-address")),
		screenshot("cloud-confirm"),
	)
	if got := text("#server-address"); got != "https://chat.example.org" {
		t.Fatalf("the confirmation page shows server %q", got)
	}
	// The sign-up accepted the current terms, so the box comes ticked.
	ticked, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('input[name="accept_terms"]').checked`))
	if err != nil || !ticked {
		t.Fatalf("the terms box of a workspace that accepted them is not ticked (%v)", err)
	}
	run("confirming",
		chromedp.Click(chromedp.ID("confirm")),
		chromedp.WaitVisible(chromedp.Search(`//h2[contains(., "is connected")]`)),
		screenshot("cloud-confirmed"),
	)
	if code, out := rc.poll(intent["device_code"].(string)); code != 200 || out["successful"] != true {
		t.Fatalf("the poll after confirming = %d %v", code, out)
	}
	run("listing the servers and making a manual token",
		chromedp.Navigate(s.URL+"/cloud"),
		chromedp.WaitVisible(chromedp.CSS("table.list")),
		chromedp.SendKeys(chromedp.ID("name"), "Backup"),
		chromedp.Click(chromedp.ID("manual")),
		chromedp.WaitVisible(chromedp.ID("manual-once")),
		screenshot("cloud"),
		chromedp.Click(chromedp.CSS(`button[data-copy="manual-token"]`)),
		chromedp.WaitVisible(chromedp.Search(`//button[@data-copy="manual-token" and text()="Copied"]`)),
	)
	if rows := text("table.list tbody"); !strings.Contains(rows, "Example Chat") || !strings.Contains(rows, "Backup") {
		t.Fatalf("the servers listed are:\n%s", rows)
	}
	t.Run("the pages fit a phone's width", func(t *testing.T) {
		defer run("widening the viewport again", chromedp.EmulateViewport(1280, 900))
		run("narrowing the viewport", chromedp.EmulateViewport(390, 844))
		for name, page := range map[string]string{"cloud-phone": "/cloud", "cloud-confirm-phone": u.RequestURI()} {
			run("opening "+page, chromedp.Navigate(s.URL+page), chromedp.WaitVisible(chromedp.CSS("h1")), screenshot(name))
			fits, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
			if err != nil {
				t.Fatal(err)
			}
			if !fits {
				t.Errorf("%s is wider than a 390-pixel screen", page)
			}
		}
	})
	t.Run("a revoked server is marked revoked", func(t *testing.T) {
		run("revoking",
			chromedp.Navigate(s.URL+"/cloud"),
			chromedp.Click(chromedp.CSS(`table.list button.danger`)),
			chromedp.WaitVisible(chromedp.Search(`//span[contains(., "revoked")]`)),
			screenshot("cloud-revoked"),
		)
	})
	if p := problems(); len(p) > 0 {
		t.Fatalf("the pages logged errors in the browser:\n%s", strings.Join(p, "\n"))
	}
}
