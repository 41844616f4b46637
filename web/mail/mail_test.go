package mail_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/web/mail"
)

// smtpServer is a tiny SMTP server on loopback that records what it receives.
type smtpServer struct {
	addr     string
	startTLS *tls.Config // offered when set
	mu       sync.Mutex
	auth     string // the decoded AUTH PLAIN answer
	from, to string
	data     string
	tls      bool
}

func newSMTPServer(t *testing.T, startTLS *tls.Config) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &smtpServer{addr: ln.Addr().String(), startTLS: startTLS}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	tp := textproto.NewConn(c)
	_ = tp.PrintfLine("220 test ESMTP")
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			ext := []string{"250-test", "250-AUTH PLAIN"}
			if s.startTLS != nil {
				ext = append(ext, "250-STARTTLS")
			}
			for _, l := range ext {
				_ = tp.PrintfLine("%s", l)
			}
			_ = tp.PrintfLine("250 8BITMIME")
		case "STARTTLS":
			_ = tp.PrintfLine("220 go ahead")
			tc := tls.Server(c, s.startTLS)
			if tc.Handshake() != nil {
				return
			}
			s.mu.Lock()
			s.tls = true
			s.mu.Unlock()
			c, tp = tc, textproto.NewConn(tc)
			defer tc.Close()
		case "AUTH":
			_, resp, _ := strings.Cut(arg, " ")
			raw, _ := base64.StdEncoding.DecodeString(resp)
			s.mu.Lock()
			s.auth = string(raw)
			s.mu.Unlock()
			_ = tp.PrintfLine("235 ok")
		case "MAIL":
			s.mu.Lock()
			s.from = arg
			s.mu.Unlock()
			_ = tp.PrintfLine("250 ok")
		case "RCPT":
			s.mu.Lock()
			s.to = arg
			s.mu.Unlock()
			_ = tp.PrintfLine("250 ok")
		case "DATA":
			_ = tp.PrintfLine("354 go on")
			lines, err := tp.ReadDotLines()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.data = strings.Join(lines, "\n")
			s.mu.Unlock()
			_ = tp.PrintfLine("250 queued")
		case "QUIT":
			_ = tp.PrintfLine("221 bye")
			return
		default:
			_ = tp.PrintfLine("502 unknown")
		}
	}
}

func (s *smtpServer) received() (auth, from, to, data string, tls bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auth, s.from, s.to, s.data, s.tls
}

func TestSMTPSendsTheMessageWithPlainAuth(t *testing.T) {
	srv := newSMTPServer(t, nil)
	s, err := mail.ParseURL("smtp://mailer:s3cret@" + srv.addr + "?from=pushgate@gw.example")
	if err != nil {
		t.Fatal(err)
	}
	body := "Choose a new password here:\nhttps://gw.example/reset/abc\n.\nA line with a dot alone above."
	if err := s.Send(context.Background(), mail.Message{To: "Owner <owner@acme.example>", Subject: "Reset your pushgate password", Body: body}); err != nil {
		t.Fatal(err)
	}
	auth, from, to, data, _ := srv.received()
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
	srv := newSMTPServer(t, &tls.Config{Certificates: hs.TLS.Certificates})
	s, err := mail.ParseURL("smtp://mailer:s3cret@" + srv.addr + "?from=pushgate@gw.example&starttls=required")
	if err != nil {
		t.Fatal(err)
	}
	s.TLS = &tls.Config{RootCAs: hs.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	if err := s.Send(context.Background(), mail.Message{To: "owner@acme.example", Subject: "Hi", Body: "over TLS"}); err != nil {
		t.Fatal(err)
	}
	auth, _, _, data, overTLS := srv.received()
	if !overTLS || auth != "\x00mailer\x00s3cret" || !strings.Contains(data, "over TLS") {
		t.Fatalf("tls %v auth %q data %q", overTLS, auth, data)
	}
}

func TestSMTPRefusals(t *testing.T) {
	t.Run("a server without STARTTLS is refused when the URL requires it", func(t *testing.T) {
		srv := newSMTPServer(t, nil)
		s, err := mail.ParseURL("smtp://" + srv.addr + "?from=pushgate@gw.example&starttls=required")
		if err != nil {
			t.Fatal(err)
		}
		err = s.Send(context.Background(), mail.Message{To: "owner@acme.example", Subject: "Hi", Body: "x"})
		if err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS") {
			t.Fatalf("%v", err)
		}
		if _, _, _, data, _ := srv.received(); data != "" {
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
