package mail_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/web/mail"
	"github.com/pushgate/pushgate/web/mail/mailtest"
)

func TestSMTPSendsTheMessageWithPlainAuth(t *testing.T) {
	srv := mailtest.NewServer(t, nil)
	s, err := mail.ParseURL("smtp://mailer:s3cret@" + srv.Addr + "?from=pushgate@gw.example")
	if err != nil {
		t.Fatal(err)
	}
	body := "Choose a new password here:\nhttps://gw.example/reset/abc\n.\nA line with a dot alone above."
	if err := s.Send(context.Background(), mail.Message{To: "Owner <owner@acme.example>", Subject: "Reset your pushgate password", Body: body}); err != nil {
		t.Fatal(err)
	}
	auth, from, to, data, _ := srv.Received()
	if auth != "\x00mailer\x00s3cret" {
		t.Errorf("AUTH PLAIN %q", auth)
	}
	if !strings.HasPrefix(from, "FROM:<pushgate@gw.example>") || !strings.HasPrefix(to, "TO:<owner@acme.example>") {
		t.Errorf("envelope %q %q", from, to)
	}
	for _, want := range []string{"From: pushgate@gw.example", "To: owner@acme.example", "Subject: Reset your pushgate password",
		"Content-Type: text/plain; charset=utf-8", "https://gw.example/reset/abc", "\n.\nA line with a dot alone above."} {
		if !strings.Contains(data, want) {
			t.Errorf("the message lacks %q:\n%s", want, data)
		}
	}
	if strings.Contains(s.String(), "s3cret") {
		t.Errorf("the server's description shows the password: %s", s)
	}
}

func TestSMTPUsesSTARTTLSWhenOffered(t *testing.T) {
	// httptest's certificate is valid for 127.0.0.1, and its client trusts it.
	hs := httptest.NewTLSServer(nil)
	defer hs.Close()
	srv := mailtest.NewServer(t, &tls.Config{Certificates: hs.TLS.Certificates})
	s, err := mail.ParseURL("smtp://mailer:s3cret@" + srv.Addr + "?from=pushgate@gw.example&starttls=required")
	if err != nil {
		t.Fatal(err)
	}
	s.TLS = &tls.Config{RootCAs: hs.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	if err := s.Send(context.Background(), mail.Message{To: "owner@acme.example", Subject: "Hi", Body: "over TLS"}); err != nil {
		t.Fatal(err)
	}
	auth, _, _, data, overTLS := srv.Received()
	if !overTLS || auth != "\x00mailer\x00s3cret" || !strings.Contains(data, "over TLS") {
		t.Fatalf("tls %v auth %q data %q", overTLS, auth, data)
	}
}

func TestSMTPRefusals(t *testing.T) {
	t.Run("a server without STARTTLS is refused when the URL requires it", func(t *testing.T) {
		srv := mailtest.NewServer(t, nil)
		s, err := mail.ParseURL("smtp://" + srv.Addr + "?from=pushgate@gw.example&starttls=required")
		if err != nil {
			t.Fatal(err)
		}
		err = s.Send(context.Background(), mail.Message{To: "owner@acme.example", Subject: "Hi", Body: "x"})
		if err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS") {
			t.Fatalf("%v", err)
		}
		if _, _, _, data, _ := srv.Received(); data != "" {
			t.Fatal("the message went out in the clear")
		}
	})
	t.Run("a server that does not answer fails within the timeout", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		s, _ := mail.ParseURL("smtp://" + ln.Addr().String() + "?from=pushgate@gw.example")
		s.Timeout = 200 * time.Millisecond
		start := time.Now()
		if err := s.Send(context.Background(), mail.Message{To: "owner@acme.example", Subject: "Hi", Body: "x"}); err == nil {
			t.Fatal("no error from a silent server")
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("took %v", time.Since(start))
		}
	})
	for _, tc := range []struct{ name, url, inError string }{
		{"another scheme", "http://mail.example?from=a@b.example", "smtp:// or smtps://"},
		{"no host", "smtp://?from=a@b.example", "no host"},
		{"no sender", "smtp://mail.example:587", "from parameter"},
		{"an unknown starttls mode", "smtp://mail.example?from=a@b.example&starttls=never", "starttls"},
	} {
		t.Run("a URL with "+tc.name+" is refused", func(t *testing.T) {
			if _, err := mail.ParseURL(tc.url); err == nil || !strings.Contains(err.Error(), tc.inError) {
				t.Fatalf("%v", err)
			}
		})
	}
}
