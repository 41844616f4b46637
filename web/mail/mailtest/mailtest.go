// Package mailtest gives tests an SMTP server on loopback that records the
// messages it receives.
package mailtest

import (
	"crypto/tls"
	"encoding/base64"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
)

// Server is a tiny SMTP server on loopback that records what it receives:
// enough of the protocol for net/smtp (EHLO, STARTTLS, AUTH PLAIN, MAIL,
// RCPT, DATA, QUIT), so tests need no mail server.
type Server struct {
	// Addr is host:port to put in an smtp:// URL.
	Addr     string
	startTLS *tls.Config // offered when set
	mu       sync.Mutex
	auth     string // the decoded AUTH PLAIN answer
	from, to string
	data     string
	tls      bool
}

// NewServer listens on a free loopback port until the test ends; it offers
// STARTTLS when startTLS is set.
func NewServer(t testing.TB, startTLS *tls.Config) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &Server{Addr: ln.Addr().String(), startTLS: startTLS}
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

func (s *Server) serve(c net.Conn) {
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

// Received is the last message: the AUTH PLAIN answer, the envelope, the
// data and whether it came over TLS.
func (s *Server) Received() (auth, from, to, data string, tls bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auth, s.from, s.to, s.data, s.tls
}
