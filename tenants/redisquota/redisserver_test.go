package redisquota_test

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server of the test's own on a spare loopback port,
// without persistence, so a test can kill and restart it: the shared Redis is
// never stopped.
type redisServer struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

// mustStartRedis starts a redis-server that the test's cleanup kills.
func mustStartRedis(t *testing.T) *redisServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &redisServer{t: t, port: port, dir: t.TempDir()}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// client returns a go-redis client of this server, closed at the end of the test.
func (r *redisServer) client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.addr(), ContextTimeoutEnabled: true})
	r.t.Cleanup(func() { c.Close() })
	return c
}

func (r *redisServer) start() {
	r.t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		r.t.Fatalf("redis-server is required for this test: %v (run `make test`, which installs it)", err)
	}
	r.cmd = exec.Command(path, "--bind", "127.0.0.1", "--port", strconv.Itoa(r.port),
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--logfile", "")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s does not answer", r.addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops the server at once, losing everything it held.
func (r *redisServer) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// restart kills the server and starts an empty one on the same port.
func (r *redisServer) restart() {
	r.t.Helper()
	r.kill()
	r.start()
}

// freeze stops the server's process (SIGSTOP) until thaw: it holds its
// connections and answers nothing, then runs what it received.
func (r *redisServer) freeze() { _ = r.cmd.Process.Signal(syscall.SIGSTOP) }

func (r *redisServer) thaw() { _ = r.cmd.Process.Signal(syscall.SIGCONT) }
