package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// apnsProvider sends through one apns2 client: one HTTP/2 connection pool per app.
type apnsProvider struct {
	client    *apns2.Client
	transport *http2.Transport
	rt        *probeTransport
}

// apnsTokens shares one signing token per .p8 key among the apps that use it;
// apns2 refreshes it under a mutex after 50 minutes, before Apple's 60-minute limit.
type apnsTokens map[string]*token.Token

func (ts apnsTokens) get(cfg AppConfig) (*token.Token, error) {
	id := cfg.KeyFile + "\x00" + cfg.KeyID + "\x00" + cfg.TeamID
	if t, ok := ts[id]; ok {
		return t, nil
	}
	key, err := token.AuthKeyFromFile(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("key_file %s: %w", cfg.KeyFile, keyError(err))
	}
	t := &token.Token{AuthKey: key, KeyID: cfg.KeyID, TeamID: cfg.TeamID}
	if _, err := t.Generate(); err != nil {
		return nil, fmt.Errorf("key_file %s: cannot sign a provider token: %w", cfg.KeyFile, err)
	}
	ts[id] = t
	return t, nil
}

// keyError keeps parser errors generic: some quote the bytes they could not read.
func keyError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return err
	}
	return errors.New("not a PKCS#8 EC private key in PEM (an APNs .p8 key)")
}

func newAPNs(cfg AppConfig, tokens apnsTokens, log *slog.Logger) (*apnsProvider, error) {
	tlsCfg, err := tlsConfig(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	client := &apns2.Client{Host: apns2.HostProduction}
	if cfg.Environment == EnvDevelopment {
		client.Host = apns2.HostDevelopment
	}
	if cfg.Endpoint != "" {
		client.Host = strings.TrimRight(cfg.Endpoint, "/")
	}
	if cfg.CertFile != "" {
		cert, err := loadCertificate(cfg.CertFile, cfg.CertPassword)
		if err != nil {
			return nil, fmt.Errorf("cert_file %s: %w", cfg.CertFile, err)
		}
		if cert.Leaf != nil && time.Now().After(cert.Leaf.NotAfter) {
			log.Warn("APNs certificate has expired", "app", cfg.ID, "not_after", cert.Leaf.NotAfter)
		}
		client.Certificate = cert
		tlsCfg.Certificates = []tls.Certificate{cert}
	} else {
		if client.Token, err = tokens.get(cfg); err != nil {
			return nil, err
		}
	}
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 20 * time.Second, KeepAlive: 15 * time.Second}}
	tr := &http2.Transport{
		TLSClientConfig: tlsCfg,
		DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			d := *dialer
			d.Config = cfg
			return d.DialContext(ctx, network, addr)
		},
		ReadIdleTimeout: 15 * time.Second,
		PingTimeout:     15 * time.Second,
	}
	rt := &probeTransport{base: tr}
	client.HTTPClient = &http.Client{Transport: rt, Timeout: 60 * time.Second}
	return &apnsProvider{client: client, transport: tr, rt: rt}, nil
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

func (p *apnsProvider) send(ctx context.Context, n *notification) Result {
	n.apns = apns2.Notification{
		DeviceToken: n.token,
		Topic:       n.topic,
		Payload:     n.payload,
		PushType:    n.pushType,
		Priority:    n.priority,
		Expiration:  n.expiration,
	}
	n.probe = attemptProbe{}
	ctx = context.WithValue(ctx, probeKey{}, &n.probe)
	resp, err := p.client.PushWithContext(ctx, &n.apns)
	if err != nil {
		return transportResult(ctx, err)
	}
	return classifyAPNs(resp.StatusCode, resp.Reason, resp.ApnsID, n.probe.retryAfter)
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
	case apns2.ReasonIdleTimeout:
		return Result{Outcome: RetryLater, ID: id, Reason: reason, RetryAfter: retryAfter}
	}
	if status == http.StatusTooManyRequests || status >= 500 {
		return Result{Outcome: RetryLater, ID: id, Reason: reason, RetryAfter: retryAfter}
	}
	return Result{Outcome: Failed, ID: id, Reason: reason}
}
