package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"
	"time"
)

// h1conn is one worker's keep-alive HTTP/1.1 connection, without net/http's
// per-connection reader and writer goroutines: a request is one write of
// pre-built bytes and its answer is parsed in place. A chat server's client
// sends the same bytes; the gateway cannot tell the difference, and the
// generator, sharing the machine with the gateway, spends a fraction of the CPU.
type h1conn struct {
	addr    string
	tlsConf *tls.Config // nil for http
	timeout time.Duration

	c    net.Conn
	br   *bufio.Reader
	stop func() bool // ends the context watch of c
}

// dialErrorPause is how long a worker waits after failing to connect.
const dialErrorPause = 10 * time.Millisecond

var errClosedByPeer = errors.New("connection closed before an answer")

func newH1Conn(u *url.URL, timeout time.Duration) *h1conn {
	h := &h1conn{addr: u.Host, timeout: timeout}
	if u.Port() == "" {
		h.addr = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	if u.Scheme == "https" {
		h.tlsConf = &tls.Config{ServerName: u.Hostname(), NextProtos: []string{"http/1.1"}}
	}
	return h
}

func (h *h1conn) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", h.addr)
	if err != nil {
		return err
	}
	if h.tlsConf != nil {
		tc := tls.Client(c, h.tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return err
		}
		c = tc
	}
	h.c = c
	if h.br == nil {
		h.br = bufio.NewReaderSize(c, 4096)
	} else {
		h.br.Reset(c)
	}
	// A cancelled run unblocks a request in flight at once.
	h.stop = context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	return nil
}

func (h *h1conn) close() {
	if h.c != nil {
		h.stop()
		h.c.Close()
		h.c = nil
	}
}

// do writes req (a whole HTTP/1.1 request) and reads the answer; up to
// len(buf) bytes of the answer's body are copied into buf. A request is never
// sent twice: like net/http with a POST, a connection lost mid-request is an
// error, not a retry (under load connections are never idle long enough for a
// server to close them).
func (h *h1conn) do(ctx context.Context, req, buf []byte) (status, n int, err error) {
	if h.c == nil {
		if err := h.dial(ctx); err != nil {
			// A gateway that is down would otherwise be flooded with connection attempts.
			sleepUntil(ctx, time.Now().Add(dialErrorPause))
			return 0, 0, err
		}
	}
	status, n, err = h.exchange(req, buf)
	if err != nil {
		h.close()
	}
	return status, n, err
}

func (h *h1conn) exchange(req, buf []byte) (status, n int, err error) {
	if h.timeout > 0 {
		if err := h.c.SetDeadline(time.Now().Add(h.timeout)); err != nil {
			return 0, 0, err
		}
	}
	if _, err := h.c.Write(req); err != nil {
		return 0, 0, err
	}
	for {
		var keepAlive bool
		status, n, keepAlive, err = h.readResponse(buf)
		if err != nil {
			return status, n, err
		}
		if status >= 200 {
			if !keepAlive {
				h.close()
			}
			return status, n, nil
		}
		// 1xx: the real answer follows.
	}
}

// readResponse parses one response: the status line, the headers that frame
// the body, and the body (Content-Length, chunked, or until the connection closes).
func (h *h1conn) readResponse(buf []byte) (status, n int, keepAlive bool, err error) {
	line, err := h.br.ReadSlice('\n')
	if err != nil {
		if len(line) == 0 && (err == io.EOF || errors.Is(err, net.ErrClosed) || isReset(err)) {
			return 0, 0, false, errClosedByPeer
		}
		return 0, 0, false, fmt.Errorf("reading the status line: %w", err)
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, 0, false, fmt.Errorf("malformed status line %q", bytes.TrimSpace(line))
	}
	code, ok := parseUint(line[9:12], 10)
	if !ok || len(line) > 12 && line[12] != ' ' && line[12] != '\r' {
		return 0, 0, false, fmt.Errorf("malformed status line %q", bytes.TrimSpace(line))
	}
	status = int(code)
	keepAlive = line[7] == '1'
	length, chunked := int64(-1), false
	for {
		line, err = h.br.ReadSlice('\n')
		if err != nil {
			return status, 0, false, fmt.Errorf("reading headers: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return status, 0, false, fmt.Errorf("malformed header %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			l, ok := parseUint(value, 10)
			if !ok {
				return status, 0, false, fmt.Errorf("malformed Content-Length %q", value)
			}
			length = l
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				keepAlive = false
			} else if bytes.EqualFold(value, []byte("keep-alive")) {
				keepAlive = true
			}
		}
	}
	switch {
	case status < 200 || status == 204 || status == 304:
		return status, 0, keepAlive, nil
	case chunked:
		n, err = h.readChunked(buf)
	case length >= 0:
		n, err = h.readN(buf, length)
	default: // until the server closes the connection
		n, err = io.ReadFull(h.br, buf)
		if err == nil {
			_, err = io.Copy(io.Discard, h.br)
		} else if err == io.ErrUnexpectedEOF || err == io.EOF {
			err = nil
		}
		keepAlive = false
	}
	if err != nil {
		return status, n, false, fmt.Errorf("reading the body: %w", err)
	}
	return status, n, keepAlive, nil
}

// readN reads a body of length bytes, keeping the first len(buf).
func (h *h1conn) readN(buf []byte, length int64) (int, error) {
	n, err := io.ReadFull(h.br, buf[:min(int64(len(buf)), length)])
	if err != nil {
		return n, err
	}
	if rest := int(length) - n; rest > 0 {
		if _, err := h.br.Discard(rest); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (h *h1conn) readChunked(buf []byte) (int, error) {
	n := 0
	for {
		line, err := h.br.ReadSlice('\n')
		if err != nil {
			return n, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions
		}
		size, ok := parseUint(bytes.TrimSpace(line), 16)
		if !ok {
			return n, fmt.Errorf("malformed chunk size %q", line)
		}
		if size == 0 {
			for { // trailers, then the empty line
				line, err := h.br.ReadSlice('\n')
				if err != nil {
					return n, err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return n, nil
				}
			}
		}
		got, err := h.readN(buf[n:], size)
		n += got
		if err != nil {
			return n, err
		}
		if _, err := h.br.Discard(2); err != nil { // CRLF after the data
			return n, err
		}
	}
}

// isReset reports a connection reset by the peer, which is how a closed keep-alive connection often shows.
func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// parseUint parses a non-empty decimal or hex number of at most 15 digits without allocating.
func parseUint(b []byte, base int64) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		var d int64
		switch {
		case c >= '0' && c <= '9':
			d = int64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = int64(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = int64(c-'A') + 10
		default:
			return 0, false
		}
		v = v*base + d
	}
	return v, true
}
