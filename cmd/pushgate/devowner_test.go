package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/web/mail/mailtest"
)

var (
	demoOwnerLine = regexp.MustCompile(`demo owner\s+(\S+) / (\S+)`)
	csrfInForm    = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

func TestDevDemoOwnerKeepsItsPasswordAndSignsIn(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PUSHGATE_DATABASE_URL": "sqlite:" + filepath.Join(dir, "pushgate.db"), "PUSHGATE_DATA_DIR": dir}
	first := mustServe(t, env, "--dev")
	m1 := demoOwnerLine.FindStringSubmatch(mustEventually(t, first.stdout, "Ctrl-C"))
	if m1 == nil {
		t.Fatal("no demo owner in the banner")
	}
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	second := mustServe(t, env, "--dev")
	m2 := demoOwnerLine.FindStringSubmatch(mustEventually(t, second.stdout, "Ctrl-C"))
	if m2 == nil || m2[1] != m1[1] || m2[2] != m1[2] {
		t.Fatalf("the demo owner changed between starts: %v then %v", m1, m2)
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(second.URL + "/overview")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a fresh browser is signed in automatically: %d", resp.StatusCode)
	}
	resp, err = c.Get(second.URL + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csrf := csrfInForm.FindStringSubmatch(string(page))
	if csrf == nil {
		t.Fatalf("no CSRF token on the sign-in page:\n%s", page)
	}
	resp, err = c.PostForm(second.URL+"/signin", url.Values{"csrf": {csrf[1]}, "email": {m2[1]}, "password": {m2[2]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/overview" {
		t.Fatalf("the demo owner's sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = c.Get(second.URL + "/overview")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "Demo workspace") {
		t.Fatalf("the demo owner does not see the demo workspace:\n%s", body)
	}
}

func TestPasswordResetMailGoesThroughSMTP(t *testing.T) {
	smtpd := mailtest.NewServer(t, nil)
	dir := t.TempDir()
	s := mustServe(t, map[string]string{
		"PUSHGATE_DATABASE_URL": "sqlite:" + filepath.Join(dir, "pushgate.db"),
		"PUSHGATE_DATA_DIR":     dir,
		"PUSHGATE_SMTP_URL":     "smtp://mailer:s3cret@" + smtpd.Addr + "?from=pushgate@gw.example",
	}, "--dev")
	owner := demoOwnerLine.FindStringSubmatch(mustEventually(t, s.stdout, "Ctrl-C"))
	if owner == nil {
		t.Fatal("no demo owner in the banner")
	}
	if !strings.Contains(s.stderr.String(), "dashboard mails go through SMTP") || strings.Contains(s.stderr.String(), "s3cret") {
		t.Fatalf("the start names the SMTP server without its password?\n%s", s.stderr)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(s.URL + "/forgot")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csrf := csrfInForm.FindStringSubmatch(string(page))
	if csrf == nil {
		t.Fatalf("no CSRF token on the forgot page:\n%s", page)
	}
	resp, err = c.PostForm(s.URL+"/forgot", url.Values{"csrf": {csrf[1]}, "email": {owner[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var data, to string
	for range 250 {
		if _, _, to, data, _ = smtpd.Received(); data != "" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	link := regexp.MustCompile(`http://[^/\s]+/reset/[A-Za-z0-9_-]{43}`).FindString(data)
	if !strings.Contains(to, owner[1]) || link == "" {
		t.Fatalf("the SMTP server received to %q:\n%s", to, data)
	}
	resp, err = c.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the mailed link answered %d", resp.StatusCode)
	}
	if strings.Contains(s.stderr.String(), link[len(link)-43:]) {
		t.Fatal("the link reached the log although it was mailed")
	}
}
