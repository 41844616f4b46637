// Package mail sends the dashboard's one-time links: through an SMTP server
// (smtp_url), or into the log where no server is set (dev mode).
package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"strings"
	"time"
)

// Message is a plain-text mail to one person.
type Message struct {
	To      string
	Subject string
	Body    string
}

// Sender delivers a message or says why it could not.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Log stands in for a mail server where none is set. In dev mode (Reveal)
// it writes each message in full, link included, for the developer to
// open; otherwise only that a mail was not sent, since a one-time link is a
// secret and secrets never appear in a production log in full.
type Log struct {
	Log    *slog.Logger
	Reveal bool
}

// Delivers reports whether a message reaches anybody: a dropped one does not.
func (l Log) Delivers() bool { return l.Reveal }

// Send logs m, or that it was dropped.
func (l Log) Send(_ context.Context, m Message) error {
	if l.Reveal {
		l.Log.Info("mail not sent (no smtp_url): it is written here instead", "to", m.To, "subject", m.Subject, "body", m.Body)
		return nil
	}
	l.Log.Warn("mail not sent: no smtp_url is set", "subject", m.Subject)
	return nil
}

// SMTP sends through one server, with STARTTLS when the server offers it
// (smtp://) or TLS from the start (smtps://), and PLAIN auth when the URL
// has a user.
type SMTP struct {
	addr, host  string
	implicitTLS bool
	auth        smtp.Auth
	from        string
	requireTLS  bool
	// TLS configures the connection's TLS; nil trusts the system's roots.
	TLS *tls.Config
	// Timeout bounds one whole send (default 30 seconds).
	Timeout time.Duration
}

// ParseURL reads smtp://user:pass@host:587?from=pushgate@example.com.
// Options: from (required), and starttls=required to refuse a server that
// does not offer STARTTLS.
func ParseURL(raw string) (*SMTP, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%v", err)
	}
	s := &SMTP{host: u.Hostname()}
	port := u.Port()
	switch u.Scheme {
	case "smtp":
		if port == "" {
			port = "587"
		}
	case "smtps":
		s.implicitTLS = true
		if port == "" {
			port = "465"
		}
	default:
		return nil, fmt.Errorf("the scheme must be smtp:// or smtps://, got %q", u.Scheme)
	}
	if s.host == "" {
		return nil, errors.New("no host, as in smtp://user:pass@mail.example.com:587?from=pushgate@example.com")
	}
	s.addr = net.JoinHostPort(s.host, port)
	q := u.Query()
	from, err := mail.ParseAddress(q.Get("from"))
	if err != nil {
		return nil, fmt.Errorf("the from parameter must be the sender's address (?from=pushgate@example.com): %v", err)
	}
	s.from = from.Address
	switch q.Get("starttls") {
	case "", "auto":
	case "required":
		s.requireTLS = true
	default:
		return nil, fmt.Errorf("starttls must be auto or required, got %q", q.Get("starttls"))
	}
	if u.User != nil {
		pass, _ := u.User.Password()
		s.auth = smtp.PlainAuth("", u.User.Username(), pass, s.host)
	}
	return s, nil
}

// String names the server without its password, for the start-up log.
func (s *SMTP) String() string { return s.addr + " from " + s.from }

// Send delivers m within the timeout.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return fmt.Errorf("mail to %q: %v", m.To, err)
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("connecting to the SMTP server %s: %w", s.addr, err)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	tlsConf := s.tlsConfig()
	if s.implicitTLS {
		conn = tls.Client(conn, tlsConf)
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("greeting the SMTP server %s: %w", s.addr, err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return fmt.Errorf("SMTP EHLO: %w", err)
	}
	if !s.implicitTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsConf); err != nil {
				return fmt.Errorf("SMTP STARTTLS with %s: %w", s.addr, err)
			}
		} else if s.requireTLS {
			return fmt.Errorf("the SMTP server %s does not offer STARTTLS, and the smtp_url requires it", s.addr)
		}
	}
	if s.auth != nil {
		if err := c.Auth(s.auth); err != nil {
			return fmt.Errorf("SMTP authentication: %w", err)
		}
	}
	if err := c.Mail(s.from); err != nil {
		return fmt.Errorf("SMTP MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to.Address); err != nil {
		return fmt.Errorf("SMTP RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	if _, err := w.Write(s.render(to.Address, m)); err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("the SMTP server refused the message: %w", err)
	}
	return c.Quit()
}

func (s *SMTP) tlsConfig() *tls.Config {
	if s.TLS != nil {
		c := s.TLS.Clone()
		if c.ServerName == "" {
			c.ServerName = s.host
		}
		return c
	}
	return &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}
}

// render writes the message with CRLF line ends, as SMTP wants.
func (s *SMTP) render(to string, m Message) []byte {
	var b strings.Builder
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", s.from)
	header("To", to)
	header("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	header("Date", time.Now().UTC().Format(time.RFC1123Z))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	body := strings.ReplaceAll(strings.ReplaceAll(m.Body, "\r\n", "\n"), "\n", "\r\n")
	b.WriteString(body)
	if !strings.HasSuffix(body, "\r\n") {
		b.WriteString("\r\n")
	}
	return []byte(b.String())
}
