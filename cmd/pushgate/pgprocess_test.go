package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ownPostgres is a PostgreSQL server of the test's own, in a temporary
// directory on a spare loopback port, so a test can stop it without
// touching the shared one.
type ownPostgres struct {
	URL  string
	bin  string
	dir  string
	port int
	cred *syscall.Credential // the postgres user when the test runs as root
	cmd  *exec.Cmd
	done chan struct{}
}

// postgresBin finds the directory of initdb and postgres: Debian keeps them
// under /usr/lib/postgresql/VERSION/bin, off the PATH.
func postgresBin(t *testing.T) string {
	t.Helper()
	if dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin"); len(dirs) > 0 {
		sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) < pgVersion(dirs[j]) })
		return dirs[len(dirs)-1]
	}
	p, err := exec.LookPath("initdb")
	if err != nil {
		t.Fatalf("PostgreSQL's initdb is required for this test and was not found (make services installs PostgreSQL): %v", err)
	}
	return filepath.Dir(p)
}

func pgVersion(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// mustOwnPostgres initialises and starts a PostgreSQL server; it is stopped
// and its directory removed when the test ends.
func mustOwnPostgres(t *testing.T) *ownPostgres {
	t.Helper()
	pg := &ownPostgres{bin: postgresBin(t), port: spareLoopbackPort(t)}
	dir, err := os.MkdirTemp("", "pushgate-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	pg.dir = dir
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs a postgres user to run the test's own PostgreSQL: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		pg.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := pg.command(filepath.Join(pg.bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	pg.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
	pg.start(t)
	t.Cleanup(func() { pg.stop(t) })
	return pg
}

func (pg *ownPostgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = pg.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred, Setpgid: true}
	return cmd
}

// start runs the server and waits until it accepts queries.
func (pg *ownPostgres) start(t *testing.T) {
	t.Helper()
	pg.cmd = pg.command(filepath.Join(pg.bin, "postgres"), "-D", filepath.Join(pg.dir, "data"),
		"-p", strconv.Itoa(pg.port), "-k", pg.dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	log, err := os.OpenFile(filepath.Join(pg.dir, "postgres.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	pg.cmd.Stdout, pg.cmd.Stderr = log, log
	if err := pg.cmd.Start(); err != nil {
		log.Close()
		t.Fatalf("starting postgres: %v", err)
	}
	pg.done = make(chan struct{})
	go func() { _ = pg.cmd.Wait(); log.Close(); close(pg.done) }()
	for range 300 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, pg.URL)
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return
		}
		select {
		case <-pg.done:
			out, _ := os.ReadFile(filepath.Join(pg.dir, "postgres.log"))
			t.Fatalf("postgres exited at start:\n%s", out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatal("the test's own postgres did not accept connections")
}

// stop shuts the server down as `pg_ctl stop -m fast` does (SIGINT) and waits for it.
func (pg *ownPostgres) stop(t *testing.T) {
	t.Helper()
	if pg.cmd == nil {
		return
	}
	_ = pg.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-pg.done:
	case <-time.After(60 * time.Second):
		_ = pg.cmd.Process.Kill()
		<-pg.done
	}
	pg.cmd = nil
}

// freeze stops every process of the server (SIGSTOP to its process group):
// connections stay open and nothing answers, as with a hung host.
func (pg *ownPostgres) freeze(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(-pg.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.thaw() })
}

// thaw lets a frozen server run again.
func (pg *ownPostgres) thaw() {
	if pg.cmd != nil {
		_ = syscall.Kill(-pg.cmd.Process.Pid, syscall.SIGCONT)
	}
}

// spareLoopbackPort is a TCP port on 127.0.0.1 that nothing listens on now.
func spareLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
