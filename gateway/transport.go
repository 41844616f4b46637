package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"
)

// Health checks of a provider connection: a connection that has received
// nothing for pingAfter is pinged, and closed when no answer comes within
// pingTimeout, so a connection that died silently (a NAT or load balancer
// that dropped it) fails its streams and is replaced instead of stalling
// each push until its attempt times out.
const (
	pingAfter   = 15 * time.Second
	pingTimeout = 15 * time.Second
)

// dialProvider opens a TCP connection to addr (host:port of target), through
// an HTTP CONNECT tunnel when proxy names a proxy for target.
func dialProvider(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error),
	proxy func(*url.URL) (*url.URL, error), target *url.URL, addr string) (net.Conn, error) {
	var via *url.URL
	if proxy != nil {
		var err error
		if via, err = proxy(target); err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
	}
	if via == nil {
		return dial(ctx, "tcp", addr)
	}
	return dialConnect(ctx, dial, via, addr)
}

// dialConnect opens a tunnel to addr through the HTTP (or HTTPS) proxy at via.
func dialConnect(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), via *url.URL, addr string) (net.Conn, error) {
	proxyAddr := via.Host
	if via.Port() == "" {
		port := "80"
		if via.Scheme == "https" {
			port = "443"
		}
		proxyAddr = net.JoinHostPort(via.Hostname(), port)
	}
	conn, err := dial(ctx, "tcp", proxyAddr)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", via.Redacted(), err)
	}
	// The tunnel is set up under ctx: a cancelled dial closes the connection.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	fail := func(err error) (net.Conn, error) {
		stop()
		conn.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("proxy %s: %w", via.Redacted(), err)
	}
	switch via.Scheme {
	case "http":
	case "https":
		tc := tls.Client(conn, &tls.Config{ServerName: via.Hostname(), MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(err)
		}
		conn = tc
	default:
		return fail(fmt.Errorf("scheme %q is not http or https", via.Scheme))
	}
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: addr}, Host: addr, Header: http.Header{}}
	if u := via.User; u != nil {
		pass, _ := u.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pass)))
	}
	if err := req.Write(conn); err != nil {
		return fail(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return fail(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return fail(fmt.Errorf("CONNECT %s: %s", addr, resp.Status))
	}
	// A 200 to CONNECT has no body, whatever its headers say; the tunnel follows.
	if !stop() {
		return fail(ctx.Err())
	}
	if br.Buffered() > 0 {
		// the proxy sent bytes of the tunnel along with its answer
		return &bufferedConn{Conn: conn, r: br}, nil
	}
	return conn, nil
}

// bufferedConn is a connection whose first bytes were already read into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// postRequest is a POST of body for a provider's HTTP/2 round tripper, built
// without parsing the URL again or canonicalising header names; GetBody lets
// the transport resend it on a fresh connection after a GOAWAY.
func postRequest(ctx context.Context, u *url.URL, h http.Header, body []byte) *http.Request {
	req := &http.Request{
		Method:        http.MethodPost,
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Host:          u.Host,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		GetBody:       func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil },
		ContentLength: int64(len(body)),
	}
	return req.WithContext(ctx)
}

// readAnswer reads an answer body of up to 64 KiB, into buf while it fits.
func readAnswer(r io.Reader, buf *[512]byte) ([]byte, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return buf[:n], nil
		}
		if err != nil {
			return nil, err
		}
	}
	rest, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if err != nil {
		return nil, err
	}
	return append(buf[:n:n], rest...), nil
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
