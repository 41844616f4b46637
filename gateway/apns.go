package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/certificate"
	"github.com/sideshow/apns2/token"
	"golang.org/x/net/http2"
)

// APNs payload limits in bytes.
const (
	apnsLimit     = 4096
	apnsVoIPLimit = 5120
)

// apnsMessage is one APNs request: its payload and the headers that vary.
type apnsMessage struct {
	messageCommon
	payload    []byte
	topic      string
	pushType   apns2.EPushType
	priority   int
	expiration time.Time
	limit      int
}

func (n *apnsMessage) size() (int, int, string) {
	if n.pushType == apns2.PushTypeVOIP {
		return len(n.payload), n.limit, "APNs VoIP payload"
	}
	return len(n.payload), n.limit, "APNs payload"
}

func (n *apnsMessage) reset() bool {
	if cap(n.payload) > 64<<10 || !n.resetCommon() {
		return false
	}
	n.topic, n.pushType, n.priority, n.limit = "", "", 0, 0
	n.expiration = time.Time{}
	n.payload = n.payload[:0]
	return true
}

// apnsProvider sends to APNs over one HTTP/2 connection pool per app: one
// POST /3/device/<token> per attempt, as sideshow/apns2 would send it, without
// its per-push JSON re-validation, URL parsing and response decoder. apns2
// still signs and refreshes the provider token and reads certificates.
type apnsProvider struct {
	topic     string      // the app's bundle id
	base      url.URL     // scheme://host[:port]
	signer    *apnsSigner // nil with certificate auth
	now       func() time.Time
	m         *appMetrics
	authz     atomic.Pointer[apnsAuthorization]
	rt        http.RoundTripper
	transport *http2.Transport
}

// apnsAuthorization is the Authorization header of one signed provider token.
type apnsAuthorization struct {
	bearer string
	header []string
}

// apnsSigner is one .p8 key's provider token, shared by the apps that use
// it. apns2 signs it again under the token's mutex after 50 minutes, before
// Apple's 60-minute limit; refresh signs it early when APNs expired it sooner.
type apnsSigner struct {
	token   *token.Token
	limiter refreshLimiter // guarded by token's mutex
}

// refresh signs a new provider token after APNs answered ExpiredProviderToken
// to bearer, unless another push already did or the last forced refresh is
// too recent for Apple.
func (s *apnsSigner) refresh(bearer string, now time.Time) refreshResult {
	s.token.Lock()
	defer s.token.Unlock()
	if s.token.Bearer != bearer {
		return refreshDone
	}
	if !s.limiter.allow(now) {
		return refreshRateLimited
	}
	if _, err := s.token.Generate(); err != nil {
		return refreshFailed
	}
	return refreshed
}

// apnsSigners shares one signer per .p8 key among the apps of a registry.
type apnsSigners map[string]*apnsSigner

func (ss apnsSigners) get(cfg AppConfig) (*apnsSigner, error) {
	id := cfg.KeyFile + "\x00" + cfg.KeyID + "\x00" + cfg.TeamID
	if s, ok := ss[id]; ok {
		return s, nil
	}
	key, err := token.AuthKeyFromFile(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("key_file %s: %w", cfg.KeyFile, keyError(err))
	}
	t := &token.Token{AuthKey: key, KeyID: cfg.KeyID, TeamID: cfg.TeamID}
	if _, err := t.Generate(); err != nil {
		return nil, fmt.Errorf("key_file %s: cannot sign a provider token: %w", cfg.KeyFile, err)
	}
	s := &apnsSigner{token: t, limiter: refreshLimiter{interval: apnsRefreshInterval}}
	ss[id] = s
	return s, nil
}

// keyError keeps parser errors generic: some quote the bytes they could not read.
func keyError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return err
	}
	return errors.New("not a PKCS#8 EC private key in PEM (an APNs .p8 key)")
}

func openAPNs(cfg AppConfig, env providerEnv) (provider, error) {
	signers, ok := env.shared[KindAPNs].(apnsSigners)
	if !ok {
		signers = apnsSigners{}
		env.shared[KindAPNs] = signers
	}
	p, err := newAPNs(cfg, signers, env)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func newAPNs(cfg AppConfig, signers apnsSigners, env providerEnv) (*apnsProvider, error) {
	tlsCfg, err := tlsConfig(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	host := apns2.HostProduction
	if cfg.Environment == EnvDevelopment {
		host = apns2.HostDevelopment
	}
	if cfg.Endpoint != "" {
		host = strings.TrimRight(cfg.Endpoint, "/")
	}
	u, err := url.Parse(host)
	if err != nil || u.Host == "" || u.Path != "" {
		return nil, fmt.Errorf("endpoint %q is not an https://host[:port] origin", cfg.Endpoint)
	}
	p := &apnsProvider{topic: cfg.Topic, base: *u, now: env.opts.Now, m: env.m}
	if cfg.CertFile != "" {
		cert, err := loadCertificate(cfg.CertFile, cfg.CertPassword)
		if err != nil {
			return nil, fmt.Errorf("cert_file %s: %w", cfg.CertFile, err)
		}
		if cert.Leaf != nil {
			warnCertificateExpiry(env, cfg.ID, cert.Leaf.NotAfter)
		}
		tlsCfg.Certificates = []tls.Certificate{cert}
	} else {
		if p.signer, err = signers.get(cfg); err != nil {
			return nil, err
		}
	}
	// x/net's HTTP/2 transport, although x/net marks it deprecated: net/http's
	// costs more per push (README, Benchmark), and APNs is HTTP/2 only anyway.
	target := &url.URL{Scheme: u.Scheme, Host: u.Host}
	p.transport = &http2.Transport{
		TLSClientConfig: tlsCfg,
		DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			conn, err := dialProvider(ctx, env.opts.dial, env.opts.Proxy, target, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(conn, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				return nil, err
			}
			return tc, nil
		},
		ReadIdleTimeout: pingAfter,
		PingTimeout:     pingTimeout,
		// Answers are at most a reason: no Accept-Encoding to encode, no gzip reader to set up.
		DisableCompression: true,
	}
	p.rt = p.transport
	return p, nil
}

// apnsFields are the apps-file keys of kind apns.
var apnsFields = []string{"topic", "key_file", "key_id", "team_id", "cert_file", "cert_password", "environment"}

func validateAPNs(a AppConfig, bad func(field, format string, args ...any)) {
	if a.Topic == "" {
		bad("topic", "is required for kind apns (the app's bundle id)")
	} else if strings.HasSuffix(a.Topic, ".voip") {
		bad("topic", "%q must be the bundle id; VoIP pushes use <topic>.voip automatically", a.Topic)
	}
	token := a.KeyFile != "" || a.KeyID != "" || a.TeamID != ""
	cert := a.CertFile != "" || a.CertPassword != ""
	switch {
	case token && cert:
		bad("key_file", "token auth (key_file, key_id, team_id) and certificate auth (cert_file) are exclusive; set one")
	case token:
		if a.KeyFile == "" {
			bad("key_file", "is required for token auth (the .p8 key)")
		}
		if a.KeyID == "" {
			bad("key_id", "is required for token auth")
		}
		if a.TeamID == "" {
			bad("team_id", "is required for token auth")
		}
	case cert:
		if a.CertFile == "" {
			bad("cert_file", "is required for certificate auth (PEM or .p12)")
		}
	default:
		bad("key_file", "set token auth (key_file, key_id, team_id) or certificate auth (cert_file)")
	}
	if a.Environment != EnvProduction && a.Environment != EnvDevelopment {
		bad("environment", "must be %q or %q, got %q", EnvProduction, EnvDevelopment, a.Environment)
	}
}

// loadCertificate reads a .p12 or a PEM file holding the certificate and its key.
func loadCertificate(path, password string) (tls.Certificate, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".p12", ".pfx":
		cert, err := certificate.FromP12File(path, password)
		if err != nil {
			var pe *os.PathError
			if !errors.As(err, &pe) {
				err = errors.New("cannot decode the PKCS#12 file (wrong cert_password?)")
			}
		}
		return cert, err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := certificate.FromPemBytes(raw, password)
	if errors.Is(err, certificate.ErrFailedToParsePrivateKey) {
		// apns2 does not read SEC1 ("EC PRIVATE KEY") keys; crypto/tls does.
		if c, e := tls.X509KeyPair(raw, raw); e == nil {
			return c, nil
		}
	}
	return cert, err
}

func (p *apnsProvider) newMessage() providerMessage {
	return &apnsMessage{payload: make([]byte, 0, 2048)}
}

func (p *apnsProvider) buildMattermost(m providerMessage, push *MattermostPush, idOnly bool) {
	buildMattermostAPNs(m.(*apnsMessage), p.topic, push, idOnly)
}

func (p *apnsProvider) buildRocketChat(m providerMessage, push *RocketChatPush, voip bool, now time.Time) error {
	return buildRocketChatAPNs(m.(*apnsMessage), p.topic, push, voip, now)
}

func (p *apnsProvider) send(ctx context.Context, m providerMessage) Result {
	n := m.(*apnsMessage)
	u := new(url.URL)
	*u = p.base
	// Device tokens are hex; escaping keeps anything else inside the path.
	u.Path = "/3/device/" + n.token
	if esc := url.PathEscape(n.token); esc != n.token {
		u.RawPath = "/3/device/" + esc
	}
	// One backing array for the header values: apns2 sets the same headers.
	vals := [5]string{"application/json; charset=utf-8", n.topic, strconv.Itoa(n.priority), string(n.pushType)}
	h := http.Header{
		"Content-Type":   vals[0:1:1],
		"Apns-Topic":     vals[1:2:2],
		"Apns-Priority":  vals[2:3:3],
		"Apns-Push-Type": vals[3:4:4],
	}
	if n.pushType == "" {
		vals[3] = string(apns2.PushTypeAlert)
	}
	if n.topic == "" {
		delete(h, "Apns-Topic")
	}
	if n.priority <= 0 {
		delete(h, "Apns-Priority")
	}
	if n.expiration.After(time.Unix(0, 0)) {
		vals[4] = strconv.FormatInt(n.expiration.Unix(), 10)
		h["Apns-Expiration"] = vals[4:5:5]
	}
	var authz *apnsAuthorization
	if p.signer != nil {
		authz = p.authorization()
		h["Authorization"] = authz.header
	}
	// A copy: the transport may still be writing the body after an early
	// answer, when the notification is already back in its pool.
	req := postRequest(ctx, u, h, bytes.Clone(n.payload))
	resp, err := p.rt.RoundTrip(req)
	if err != nil {
		return transportResult(ctx, err)
	}
	defer resp.Body.Close()
	answer, err := readAnswer(resp.Body, &n.answer)
	if err != nil {
		return transportResult(ctx, err)
	}
	id := resp.Header.Get("apns-id")
	if resp.StatusCode == http.StatusOK {
		return Result{Outcome: Delivered, ID: id}
	}
	var e struct {
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal(answer, &e)
	res := classifyAPNs(resp.StatusCode, e.Reason, id, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()))
	if e.Reason == apns2.ReasonExpiredProviderToken && authz != nil {
		p.m.refreshed(p.signer.refresh(authz.bearer, p.now()))
	}
	return res
}

// authorization is the Authorization header for the provider token, which
// apns2 signs again when it is 50 minutes old.
func (p *apnsProvider) authorization() *apnsAuthorization {
	bearer := p.signer.token.GenerateIfExpired()
	if a := p.authz.Load(); a != nil && a.bearer == bearer {
		return a
	}
	a := &apnsAuthorization{bearer: bearer, header: []string{"bearer " + bearer}}
	p.authz.Store(a)
	return a
}

// certificateWarning is how long before a certificate expires the start-up log warns.
const certificateWarning = 30 * 24 * time.Hour

// warnCertificateExpiry exports when an APNs certificate expires and warns at
// start when that is soon: Apple's certificates last a year and are renewed by hand.
func warnCertificateExpiry(env providerEnv, app string, notAfter time.Time) {
	env.m.certExpiry(notAfter)
	switch left := notAfter.Sub(env.opts.Now()); {
	case left <= 0:
		env.log.Warn("APNs certificate has expired", "app", app, "not_after", notAfter)
	case left < certificateWarning:
		env.log.Warn("APNs certificate expires soon", "app", app, "not_after", notAfter, "days_left", int(left.Hours()/24))
	}
}

func (p *apnsProvider) close() {
	p.transport.CloseIdleConnections()
}

// classifyAPNs turns an APNs answer into an Outcome.
func classifyAPNs(status int, reason, id string, retryAfter time.Duration) Result {
	if status == http.StatusOK {
		return Result{Outcome: Delivered, ID: id}
	}
	if reason == "" {
		reason = "HTTP " + strconv.Itoa(status)
	}
	switch reason {
	case apns2.ReasonBadDeviceToken, apns2.ReasonUnregistered, apns2.ReasonMissingDeviceToken,
		apns2.ReasonDeviceTokenNotForTopic, apns2.ReasonExpiredToken:
		return Result{Outcome: DeadToken, ID: id, Reason: reason}
	case apns2.ReasonIdleTimeout, apns2.ReasonExpiredProviderToken:
		// ExpiredProviderToken: the send signs a new provider token for the next attempt.
		return Result{Outcome: RetryLater, ID: id, Reason: reason, RetryAfter: retryAfter}
	}
	if status == http.StatusTooManyRequests || status >= 500 {
		return Result{Outcome: RetryLater, ID: id, Reason: reason, RetryAfter: retryAfter,
			Throttled: status == http.StatusTooManyRequests}
	}
	return Result{Outcome: Failed, ID: id, Reason: reason}
}
