package redisquota

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushgate/pushgate/tenants"
)

// respConn is one connection to Redis that speaks just enough RESP for the
// admission pipeline: commands are written from their parts into one buffer
// and integer-array replies are read into fixed slots, so a pipelined
// admission allocates nothing. One goroutine uses it at a time.
type respConn struct {
	c   net.Conn
	r   *bufio.Reader
	out []byte
}

// errProtocol marks a reply this connection cannot parse; the connection is
// dropped, since the stream is out of step.
var errProtocol = errors.New("unexpected reply from Redis")

// redisError is an error reply ("-ERR ...", "-NOSCRIPT ...").
type redisError string

func (e redisError) Error() string { return string(e) }

func (e redisError) noScript() bool { return len(e) >= 8 && e[:8] == "NOSCRIPT" }

// dialRESP connects the way rdb does (its dialer, TLS, credentials and
// database), within timeout.
func dialRESP(ctx context.Context, opt *redis.Options, timeout time.Duration) (*respConn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	network := opt.Network
	if network == "" {
		network = "tcp"
	}
	var c net.Conn
	var err error
	if opt.Dialer != nil {
		c, err = opt.Dialer(ctx, network, opt.Addr)
	} else {
		c, err = (&net.Dialer{}).DialContext(ctx, network, opt.Addr)
	}
	if err != nil {
		return nil, err
	}
	conn := &respConn{c: c, r: bufio.NewReaderSize(c, 16<<10), out: make([]byte, 0, 16<<10)}
	user, pass := opt.Username, opt.Password
	switch {
	case opt.CredentialsProviderContext != nil:
		if user, pass, err = opt.CredentialsProviderContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
	case opt.CredentialsProvider != nil:
		user, pass = opt.CredentialsProvider()
	}
	var setup [][]string
	if pass != "" {
		if user != "" {
			setup = append(setup, []string{"AUTH", user, pass})
		} else {
			setup = append(setup, []string{"AUTH", pass})
		}
	}
	if opt.DB != 0 {
		setup = append(setup, []string{"SELECT", strconv.Itoa(opt.DB)})
	}
	// Named, so that CLIENT LIST tells an operator what the connection is for.
	setup = append(setup, []string{"CLIENT", "SETNAME", "pushgate-quota"})
	deadline, _ := ctx.Deadline()
	if err := conn.do(deadline, setup); err != nil {
		c.Close()
		return nil, fmt.Errorf("setting up the quota connection: %w", err)
	}
	return conn, nil
}

// do sends setup commands and requires an OK (or, for a name, any simple) answer to each.
func (conn *respConn) do(deadline time.Time, cmds [][]string) error {
	if err := conn.c.SetDeadline(deadline); err != nil {
		return err
	}
	conn.out = conn.out[:0]
	for _, cmd := range cmds {
		conn.out = appendArrayHeader(conn.out, len(cmd))
		for _, a := range cmd {
			conn.out = appendBulk(conn.out, a)
		}
	}
	if err := conn.flush(); err != nil {
		return err
	}
	for range cmds {
		line, err := conn.line()
		if err != nil {
			return err
		}
		switch line[0] {
		case '+':
		case '-':
			return redisError(line[1:])
		default:
			return errProtocol
		}
	}
	return nil
}

func (conn *respConn) flush() error {
	_, err := conn.c.Write(conn.out)
	if cap(conn.out) > 1<<20 {
		conn.out = make([]byte, 0, 16<<10) // a rare huge batch does not pin its buffer
	}
	return err
}

// line reads one reply line without its CRLF; it stays valid until the next read.
func (conn *respConn) line() ([]byte, error) {
	line, err := conn.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, errProtocol
	}
	return line[:len(line)-2], nil
}

// readInts reads one reply that must be an array of integers into dst. An
// error reply comes back as a redisError with the stream still in step; any
// other error means the connection must be dropped.
func (conn *respConn) readInts(dst []int64) (int, error) {
	line, err := conn.line()
	if err != nil {
		return 0, err
	}
	switch line[0] {
	case '-':
		return 0, redisError(line[1:])
	case '*':
	default:
		return 0, errProtocol
	}
	n, ok := parseInt(line[1:])
	if !ok || n < 0 || n > int64(len(dst)) {
		return 0, errProtocol
	}
	for i := range int(n) {
		line, err := conn.line()
		if err != nil {
			return 0, err
		}
		v, ok := parseInt(line[1:])
		if line[0] != ':' || !ok {
			return 0, errProtocol
		}
		dst[i] = v
	}
	return int(n), nil
}

func (conn *respConn) close() { _ = conn.c.Close() }

func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' || n > (math.MaxInt64-9)/10 {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func appendArrayHeader(b []byte, n int) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

func appendBulk(b []byte, s string) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, '\r', '\n')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

func appendBulkBytes(b []byte, s []byte) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, '\r', '\n')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

func appendBulkInt(b []byte, n int64) []byte {
	var digits [20]byte
	return appendBulkBytes(b, strconv.AppendInt(digits[:0], n, 10))
}

// appendKey appends one of a workspace's keys, base + kind + suffix, as a bulk string.
func (s *Store) appendKey(b []byte, ws, kind string, suffix []byte) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s.prefix)+len(ws)+3+len(kind)+len(suffix)), 10)
	b = append(b, '\r', '\n')
	b = append(b, s.prefix...)
	b = append(b, '{')
	b = append(b, ws...)
	b = append(b, '}', ':')
	b = append(b, kind...)
	b = append(b, suffix...)
	return append(b, '\r', '\n')
}

// appendAdmit appends the EVALSHA of the admit script for a: the one
// encoding of its keys and arguments, sent as it is on the pipelined
// connection and split by admitArgs for go-redis.
func (s *Store) appendAdmit(b []byte, a *tenants.Admission, at time.Time, p tenants.Period, seed byte, tag int64) []byte {
	nk := 1
	if a.DedupeKey != "" {
		nk += bucketsChecked
	}
	bucket, off := bucketOf(at)
	b = appendArrayHeader(b, 3+nk+admitArgc)
	b = appendBulk(b, "EVALSHA")
	b = appendBulk(b, admitScript.Hash())
	b = appendBulkInt(b, int64(nk))
	b = s.appendKey(b, a.WorkspaceID, "m:", []byte(p))
	var num [20]byte
	for i := 1; i < nk; i++ {
		b = s.appendKey(b, a.WorkspaceID, "k:", strconv.AppendInt(num[:0], bucket-int64(i-1), 10))
	}
	b = appendBulkInt(b, a.Limit)
	day := dayFieldBytes(at, 's')
	b = appendBulkBytes(b, day[:])
	b = appendBulkInt(b, monthTTL(p, at).Milliseconds())
	var field [8]byte
	if a.DedupeKey != "" {
		b = appendBulkBytes(b, appendField(field[:0], a.DedupeKey))
	} else {
		b = appendBulk(b, "")
	}
	b = appendBulkInt(b, off)
	b = appendBulkInt(b, bucketTTL(off))
	b = appendBulkInt(b, versionMillis(a.LimitVersion))
	b = appendBulkBytes(b, []byte{seed})
	return appendBulkInt(b, tag)
}

// splitArgs splits one RESP array of bulk strings off the front of b into
// go-redis arguments that share b's bytes.
func splitArgs(b []byte) (args []any, rest []byte, ok bool) {
	line, b, ok := bytes.Cut(b, []byte("\r\n"))
	if !ok || len(line) < 2 || line[0] != '*' {
		return nil, nil, false
	}
	n, ok := parseInt(line[1:])
	if !ok || n < 0 || n > int64(len(b)) {
		return nil, nil, false
	}
	args = make([]any, 0, n)
	for range n {
		line, b, ok = bytes.Cut(b, []byte("\r\n"))
		if !ok || len(line) < 2 || line[0] != '$' {
			return nil, nil, false
		}
		size, ok := parseInt(line[1:])
		if !ok || size < 0 || int64(len(b)) < size+2 {
			return nil, nil, false
		}
		args = append(args, b[:size:size])
		b = b[size+2:]
	}
	return args, b, true
}
