package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"
)

// attemptProbe records what the SDK under one attempt does not tell us: the
// Retry-After header and, for FCM, the first answer that the SDK would retry
// on its own.
type attemptProbe struct {
	retryAfter time.Duration
	// oneShot ends the SDK call after a retryable answer so our loop is the only retry loop.
	oneShot  bool
	stop     context.CancelFunc
	captured bool
	status   int
	body     []byte
	err      error
}

type probeKey struct{}

// probeTransport fills the attemptProbe found in the request context.
type probeTransport struct {
	base http.RoundTripper
}

func (t *probeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	p, _ := req.Context().Value(probeKey{}).(*attemptProbe)
	if p == nil {
		return resp, err
	}
	if err != nil {
		if p.oneShot {
			p.captured, p.err = true, err
			p.stop()
		}
		return resp, err
	}
	if resp.StatusCode >= 400 {
		p.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	// The Firebase SDK retries 503 answers itself (and sleeps Retry-After);
	// keep the answer and cancel the call instead.
	if p.oneShot && resp.StatusCode == http.StatusServiceUnavailable {
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		p.captured, p.status, p.body, p.err = true, resp.StatusCode, body, rerr
		p.stop()
	}
	return resp, nil
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or invalid.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// tlsConfig trusts the system roots plus caFile's certificates, if given.
func tlsConfig(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// transportResult classifies an error that kept a request from getting an answer.
func transportResult(ctx context.Context, err error) Result {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return contextResult(ctx, err)
	}
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return Result{Outcome: RetryLater, Reason: ReasonTimeout}
	}
	return Result{Outcome: RetryLater, Reason: ReasonTransport + ": " + describeError(err)}
}

// describeError drops the request URL from url.Errors: an APNs URL carries the device token.
func describeError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}
