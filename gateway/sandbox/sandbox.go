// Package sandbox is a protocol-faithful stand-in for APNs and FCM: one TLS
// listener that the real apns2 and Firebase clients talk to unmodified, with
// answers chosen by device-token prefix and counters for tests and benchmarks.
package sandbox

import (
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// defaultPayloadHistory is how many accepted payloads per kind LastPayloads can return by default.
const defaultPayloadHistory = 256

// Config configures a sandbox Server; the zero value accepts any well-formed request.
type Config struct {
	// Latency is added to every APNs and FCM send answer (not to /token or /sandbox/*).
	Latency time.Duration
	Logger  *slog.Logger
	// CACertFile and CAKeyFile, when set, hold the CA as PEM; both are created
	// (the key with mode 0600) when absent so that restarts keep the clients' trust.
	// Empty: a new in-memory CA per process.
	CACertFile, CAKeyFile string
	// Hosts are extra names or IPs for the server certificate, besides 127.0.0.1, ::1 and localhost.
	Hosts []string
	// APNsKeys are the provider token signing keys by key id (the JWT kid).
	// Empty: any well-formed ES256 JWT is accepted without checking its signature.
	APNsKeys map[string]*ecdsa.PublicKey
	// APNsTopics are the accepted apns-topic values (without push-type suffixes). Empty: any.
	APNsTopics []string
	// FCMAccounts are the service accounts allowed to obtain tokens: client_email → public key.
	// Empty: any well-formed RS256 assertion is accepted without checking its signature.
	FCMAccounts map[string]*rsa.PublicKey
	// FCMProjects are the accepted project ids. Empty: any.
	FCMProjects []string
	// PayloadHistory is how many accepted payloads per kind LastPayloads keeps:
	// 0 means 256, negative keeps none (for benchmarks).
	PayloadHistory int
}

// Server is the sandbox APNs and FCM provider.
type Server struct {
	log     *slog.Logger
	latency time.Duration
	hosts   []string

	ca        *authority
	clientCAs *x509.CertPool

	apnsKeys    map[string]*ecdsa.PublicKey
	apnsTopics  map[string]bool
	fcmAccounts map[string]*rsa.PublicKey
	fcmProjects map[string]bool

	providerTokens        *jwtCache
	providerTokensExpired atomic.Int64 // Unix nanoseconds; see ExpireProviderTokens
	accessTokenKey        []byte
	accessTokensRevoked   atomic.Int64 // Unix nanoseconds; see RevokeAccessTokens
	macs                  sync.Pool    // of hash.Hash keyed with accessTokenKey

	apns, fcm, oauth        counters
	apnsHistory, fcmHistory *history
	messageSeq              atomic.Uint64
	handler                 http.Handler

	mu  sync.Mutex // guards srv and ln; never taken on the request path
	srv *http.Server
	ln  net.Listener
}

// New builds the sandbox CA (loading or creating it as configured) and the handler.
func New(cfg Config) (*Server, error) {
	ca, err := loadOrCreateAuthority(cfg.CACertFile, cfg.CAKeyFile)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	history := cfg.PayloadHistory
	if history == 0 {
		history = defaultPayloadHistory
	}
	history = max(history, 0)

	s := &Server{
		log:            log,
		latency:        cfg.Latency,
		hosts:          append([]string{"127.0.0.1", "::1", "localhost"}, cfg.Hosts...),
		ca:             ca,
		clientCAs:      x509.NewCertPool(),
		apnsKeys:       make(map[string]*ecdsa.PublicKey, len(cfg.APNsKeys)),
		apnsTopics:     make(map[string]bool, len(cfg.APNsTopics)),
		fcmAccounts:    make(map[string]*rsa.PublicKey, len(cfg.FCMAccounts)),
		fcmProjects:    make(map[string]bool, len(cfg.FCMProjects)),
		providerTokens: newJWTCache(),
		apnsHistory:    newHistory(history),
		fcmHistory:     newHistory(history),
	}
	s.clientCAs.AddCert(ca.cert)
	for kid, k := range cfg.APNsKeys {
		if k == nil {
			return nil, fmt.Errorf("sandbox: APNs key %q is nil", kid)
		}
		s.apnsKeys[kid] = k
	}
	for _, t := range cfg.APNsTopics {
		s.apnsTopics[t] = true
	}
	for email, k := range cfg.FCMAccounts {
		if k == nil {
			return nil, fmt.Errorf("sandbox: FCM account %q has a nil key", email)
		}
		s.fcmAccounts[email] = k
	}
	for _, p := range cfg.FCMProjects {
		s.fcmProjects[p] = true
	}

	// Access tokens are HMAC-signed with a key derived from the CA key, so a
	// sandbox restarted on a persisted CA still honours the tokens it issued.
	caKey, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return nil, fmt.Errorf("sandbox: encode CA key: %w", err)
	}
	derive := hmac.New(sha256.New, caKey)
	derive.Write([]byte("pushgate sandbox access token key"))
	s.accessTokenKey = derive.Sum(nil)
	s.macs.New = func() any { return hmac.New(sha256.New, s.accessTokenKey) }

	s.handler = s.routes()
	return s, nil
}

// Listen binds addr (such as "127.0.0.1:0") and serves TLS with HTTP/2 and HTTP/1.1 in a goroutine.
func (s *Server) Listen(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("sandbox: already listening")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("sandbox: listen: %w", err)
	}
	hosts := s.hosts
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsUnspecified() && !ip.IsLoopback() {
		hosts = append(hosts[:len(hosts):len(hosts)], ip.String())
	}
	cert, err := s.ca.serverCert(hosts)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler: s.handler,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			NextProtos:   []string{"h2", "http/1.1"},
			// APNs certificate auth: a client certificate is optional, but one that
			// is presented must chain to the sandbox CA.
			ClientAuth: tls.VerifyClientCertIfGiven,
			ClientCAs:  s.clientCAs,
			MinVersion: tls.VersionTLS12,
		},
		// Apple advertises up to 1000 concurrent streams per connection.
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: 1000},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Hour,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.srv, s.ln = srv, ln
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("sandbox server stopped", "err", err)
		}
	}()
	s.log.Info("sandbox providers listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the host:port actually bound, or "" before Listen.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// URL returns the base URL clients use, with 127.0.0.1 for a wildcard bind.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	a := s.ln.Addr().(*net.TCPAddr)
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "https://" + net.JoinHostPort(host, strconv.Itoa(a.Port))
}

// CACertPEM returns the sandbox CA certificate that clients must trust.
func (s *Server) CACertPEM() []byte {
	return append([]byte(nil), s.ca.certPEM...)
}

// CertPool returns a pool holding the sandbox CA, for clients' tls.Config.RootCAs.
func (s *Server) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.ca.cert)
	return p
}

// IssueClientCert issues an APNs provider certificate for topic, signed by the sandbox CA.
func (s *Server) IssueClientCert(topic string) (certPEM, keyPEM []byte, err error) {
	return s.ca.clientCert(topic)
}

// Stats returns the counters since start or the last reset.
func (s *Server) Stats() Stats {
	return Stats{APNs: s.apns.snapshot(), FCM: s.fcm.snapshot(), OAuth: s.oauth.snapshot()}
}

// ResetStats zeroes the counters and forgets the payload history.
func (s *Server) ResetStats() {
	s.apns.reset()
	s.fcm.reset()
	s.oauth.reset()
	s.apnsHistory.reset()
	s.fcmHistory.reset()
}

// LastPayloads returns up to n of the latest accepted notifications of kind
// "apns" or "fcm", oldest first; callers must not modify them.
func (s *Server) LastPayloads(kind string, n int) []Received {
	switch kind {
	case "apns":
		return s.apnsHistory.last(n)
	case "fcm":
		return s.fcmHistory.last(n)
	}
	return nil
}

// Handler returns the sandbox's HTTP handler, for httptest servers and benchmarks.
func (s *Server) Handler() http.Handler { return s.handler }

// Shutdown stops the listener and waits for in-flight requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

// wait holds an answer back by the configured latency; false means the client went away.
func (s *Server) wait(ctx context.Context) bool {
	if s.latency <= 0 {
		return true
	}
	t := time.NewTimer(s.latency)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// mac returns a keyed HMAC from the pool; give it back with s.macs.Put.
func (s *Server) mac() hash.Hash {
	h := s.macs.Get().(hash.Hash)
	h.Reset()
	return h
}

// shortToken is how device tokens appear in logs: a prefix only.
func shortToken(t string) string {
	if len(t) > 8 {
		return t[:8] + "…"
	}
	return t
}
