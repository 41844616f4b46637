package api_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/tenants/storetest"
)

// dbProxy is a TCP proxy of our own in front of the test PostgreSQL, so a
// test can take "the database" down or hang it without touching the shared one.
type dbProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	hung  bool
	conns []net.Conn
}

// mustPostgresBehindProxy returns a fresh Postgres database's URL through a new proxy.
func mustPostgresBehindProxy(t *testing.T) (string, *dbProxy) {
	t.Helper()
	u, err := url.Parse(storetest.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dbProxy{ln: ln, target: u.Host}
	go p.serve()
	t.Cleanup(p.down)
	u.Host = ln.Addr().String()
	return u.String(), p
}

func (p *dbProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		hung := p.hung
		p.mu.Unlock()
		if hung {
			go io.Copy(io.Discard, c) // hold it and never answer
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, up)
		p.mu.Unlock()
		go p.pipe(up, c)
		go p.pipe(c, up)
	}
}

// pipe copies src to dst until either ends; once hung, what arrives is swallowed.
func (p *dbProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			hung := p.hung
			p.mu.Unlock()
			if hung {
				_, _ = io.Copy(io.Discard, src)
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *dbProxy) closeConns() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// down drops every connection and refuses new ones: a database that is down.
func (p *dbProxy) down() {
	p.ln.Close()
	p.closeConns()
}

// hang keeps every connection open and answers nothing any more: a database
// that froze.
func (p *dbProxy) hang() {
	p.mu.Lock()
	p.hung = true
	p.mu.Unlock()
}

func TestUsageWhileTheDatabaseIsDownIs503(t *testing.T) {
	dbURL, proxy := mustPostgresBehindProxy(t)
	a := mustAPI(t, dbURL, apiOptions{registrationOpen: true})
	_, tok := a.mustRegister(t, "Alpha", true)
	if code, out := a.call(t, "GET", "/api/v1/workspace/usage", tok, ""); code != 200 {
		t.Fatalf("usage = %d %v", code, out)
	}
	proxy.down()
	code, out := a.call(t, "GET", "/api/v1/workspace/usage", tok, "")
	if code != http.StatusServiceUnavailable || out["code"] != "unavailable" {
		t.Fatalf("usage with the database down = %d %v, want 503 unavailable", code, out)
	}
	if strings.Contains(a.logs.String(), "level=ERROR") {
		t.Fatalf("an unreachable database was logged as the server's error:\n%s", a.logs)
	}
}

func TestAClientThatGoesAwayIsNotAnError(t *testing.T) {
	dbURL, proxy := mustPostgresBehindProxy(t)
	a := mustAPI(t, dbURL, apiOptions{registrationOpen: true})
	_, tok := a.mustRegister(t, "Alpha", true)
	if code, out := a.call(t, "GET", "/api/v1/workspace/usage", tok, ""); code != 200 {
		t.Fatalf("usage = %d %v", code, out)
	}
	proxy.hang()

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", a.URL+"/api/v1/workspace/usage", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	// Wait until the request is inside the handler, waiting on the hung database.
	for deadline := time.Now().Add(20 * time.Second); inFlight(t, a) < 1; {
		if time.Now().After(deadline) {
			t.Fatalf("the request never reached the handler; logs:\n%s", a.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	for deadline := time.Now().Add(20 * time.Second); inFlight(t, a) > 0; {
		if time.Now().After(deadline) {
			t.Fatal("the handler never finished after the client left")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Contains(a.logs.String(), "level=ERROR") {
		t.Fatalf("a client going away was logged as an error:\n%s", a.logs)
	}
	if n := requestsCounted(t, a, "/api/v1/workspace/usage", "499"); n != 1 {
		t.Fatalf("%v requests counted with code 499, want 1", n)
	}
}

// inFlight reads pushgate_http_requests_in_flight.
func inFlight(t *testing.T, a *testAPI) float64 {
	t.Helper()
	mfs, err := a.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "pushgate_http_requests_in_flight" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}

// requestsCounted reads pushgate_http_requests_total for a route and code.
func requestsCounted(t *testing.T, a *testAPI, route, code string) float64 {
	t.Helper()
	mfs, err := a.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "pushgate_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == route && labels["code"] == code {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}
