package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/tenants/storetest"
)

// syncBuffer is an io.Writer that tests can read while the program writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testTokenKey signs the tokens of every test gateway whose env does not name PUSHGATE_TOKEN_KEY.
const testTokenKey = "tk:test-token-key-of-at-least-32-bytes-0123456789"

// envFrom returns a getenv over a fixed map, so tests never read the process
// environment; PUSHGATE_TOKEN_KEY is testTokenKey unless the map has it.
func envFrom(env map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if k == "PUSHGATE_TOKEN_KEY" {
			return testTokenKey
		}
		return ""
	}
}

// server is a pushgate started in-process through run.
type server struct {
	URL    string
	stdout *syncBuffer
	stderr *syncBuffer
	stop   func() error
}

var listeningAddr = regexp.MustCompile(`msg=listening addr=(\S+)`)

// mustServe starts `pushgate serve ARGS` through run on 127.0.0.1:0 and waits until it listens.
func mustServe(t *testing.T, env map[string]string, args ...string) *server {
	t.Helper()
	if _, ok := env["PUSHGATE_LISTEN"]; !ok {
		env["PUSHGATE_LISTEN"] = "127.0.0.1:0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	finished := make(chan struct{})
	var runErr error
	go func() {
		defer close(finished)
		runErr = run(ctx, append([]string{"serve"}, args...), envFrom(env), s.stdout, s.stderr)
	}()
	s.stop = func() error {
		cancel()
		<-finished
		return runErr
	}
	t.Cleanup(func() { s.stop() })
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if m := listeningAddr.FindStringSubmatch(s.stderr.String()); m != nil {
			s.URL = "http://" + m[1]
			return s
		}
		select {
		case <-finished:
			t.Fatalf("serve exited before listening: %v\nstderr:\n%s", runErr, s.stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not listen within 2 minutes; stderr:\n%s", s.stderr)
	return nil
}

func mustGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func mustRun(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), args, envFrom(env), &stdout, &stderr); err != nil {
		t.Fatalf("pushgate %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

func TestServe(t *testing.T) {
	for name, dbURL := range map[string]string{"sqlite": storetest.SQLite(t), "postgres": storetest.Postgres(t)} {
		t.Run(name, func(t *testing.T) {
			mustRun(t, map[string]string{"PUSHGATE_DATABASE_URL": dbURL}, "migrate")
			_, _, appsFile := mustSandbox(t)
			s := mustServe(t, map[string]string{
				"PUSHGATE_DATABASE_URL": dbURL,
				"PUSHGATE_REDIS_URL":    storetest.RedisURL(),
				"PUSHGATE_APPS_FILE":    appsFile,
			})

			t.Run("healthz answers ok", func(t *testing.T) {
				if code, body := mustGet(t, s.URL+"/healthz"); code != 200 || !strings.Contains(body, `"ok"`) {
					t.Fatalf("GET /healthz = %d %s", code, body)
				}
			})
			t.Run("readyz pings the database and redis", func(t *testing.T) {
				code, body := mustGet(t, s.URL+"/readyz")
				var got struct{ Checks map[string]string }
				_ = json.Unmarshal([]byte(body), &got)
				if code != 200 || got.Checks["database"] != "ok" || got.Checks["redis"] != "ok" {
					t.Fatalf("GET /readyz = %d %s", code, body)
				}
			})
			t.Run("version has version and hash", func(t *testing.T) {
				code, body := mustGet(t, s.URL+"/version")
				var v map[string]string
				if err := json.Unmarshal([]byte(body), &v); code != 200 || err != nil || v["version"] == "" || v["hash"] == "" {
					t.Fatalf("GET /version = %d %s", code, body)
				}
			})
			t.Run("metrics label routes by pattern, never by raw path", func(t *testing.T) {
				secret := "pgw_us_SECRETSECRETSECRET"
				mustGet(t, s.URL+"/mm/"+secret+"/api/v1/send_push")
				code, body := mustGet(t, s.URL+"/metrics")
				if code != 200 || !strings.Contains(body, `pushgate_http_requests_total{code="200",method="GET",route="/healthz"}`) {
					t.Fatalf("GET /metrics = %d, no healthz request counted:\n%s", code, body)
				}
				if strings.Contains(body, "SECRET") {
					t.Fatal("a raw request path reached the metrics")
				}
				if !strings.Contains(body, "go_goroutines") {
					t.Fatal("Go runtime metrics are missing")
				}
			})
			t.Run("stops cleanly on cancel and says so", func(t *testing.T) {
				if err := s.stop(); err != nil {
					t.Fatalf("serve returned %v", err)
				}
				if !strings.Contains(s.stderr.String(), "stopped cleanly") {
					t.Fatalf("no shutdown log line:\n%s", s.stderr)
				}
			})
		})
	}
}

func TestServeRefusesAnOldSchema(t *testing.T) {
	for name, dbURL := range map[string]string{"sqlite": storetest.SQLite(t), "postgres": storetest.Postgres(t)} {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), []string{"serve"}, envFrom(map[string]string{
				"PUSHGATE_DATABASE_URL": dbURL, "PUSHGATE_LISTEN": "127.0.0.1:0",
			}), io.Discard, &stderr)
			if err == nil || !strings.Contains(err.Error(), "run `pushgate migrate`") {
				t.Fatalf("serve on an un-migrated database returned %v, want an error naming `pushgate migrate`", err)
			}
			if strings.Contains(stderr.String(), "msg=listening") {
				t.Fatal("serve listened before refusing the schema")
			}
		})
	}
}

func TestMigrateTwiceIsANoOp(t *testing.T) {
	for name, dbURL := range map[string]string{"sqlite": storetest.SQLite(t), "postgres": storetest.Postgres(t)} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"PUSHGATE_DATABASE_URL": dbURL}
			if out := mustRun(t, env, "migrate"); !strings.Contains(out, "applied 0001_workspaces") {
				t.Fatalf("first migrate printed %q", out)
			}
			if out := mustRun(t, env, "migrate"); !strings.Contains(out, "up to date") {
				t.Fatalf("second migrate printed %q", out)
			}
		})
	}
}

func TestDevModeMigratesItself(t *testing.T) {
	mustNotCreateDataHere(t)
	dir := filepath.Join(t.TempDir(), "new")
	s := mustServe(t, map[string]string{"PUSHGATE_DATA_DIR": dir}, "--dev")
	if code, _ := mustGet(t, s.URL+"/readyz"); code != 200 {
		t.Fatalf("readyz = %d", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "pushgate.db")); err != nil {
		t.Fatalf("serve --dev did not create its database in data_dir: %v", err)
	}
	if !strings.Contains(s.stdout.String(), "Ctrl-C") {
		t.Fatalf("dev banner missing:\n%s", s.stdout)
	}
}

func TestDevBannerLinesWorkAsPrintedOnAnyPort(t *testing.T) {
	dir := t.TempDir()
	s := mustServe(t, map[string]string{
		"PUSHGATE_DATABASE_URL": "sqlite:" + filepath.Join(dir, "pushgate.db"),
		"PUSHGATE_DATA_DIR":     dir,
	}, "--dev")
	banner := mustEventually(t, s.stdout, "Ctrl-C")
	base := strings.Replace(s.URL, "127.0.0.1", "localhost", 1)

	for _, u := range regexp.MustCompile(`https?://localhost:\d+`).FindAllString(banner, -1) {
		if u != base {
			t.Errorf("banner names %s; the server listens on %s", u, base)
		}
	}
	if regexp.MustCompile(`demo owner\s+demo@pushgate\.localhost / \S{16}`).FindString(banner) == "" {
		t.Errorf("the banner lacks the demo owner's login:\n%s", banner)
	}
	push := regexp.MustCompile(`curl -s (\S+/api/v1/send_push) -d '([^']+)'`).FindStringSubmatch(banner)
	usage := regexp.MustCompile(`curl -s -H 'Authorization: Bearer (\S+)' (\S+/usage)`).FindStringSubmatch(banner)
	if push == nil || usage == nil {
		t.Fatalf("banner lacks the curl lines:\n%s", banner)
	}
	resp, err := http.Post(push[1], "application/x-www-form-urlencoded", strings.NewReader(push[2]))
	if err != nil {
		t.Fatalf("the banner's push line: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"status":"OK"}` {
		t.Fatalf("the banner's push line answered %d %s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodGet, usage[2], nil)
	req.Header.Set("Authorization", "Bearer "+usage[1])
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("the banner's usage line: %v", err)
	}
	var u struct {
		Used int64 `json:"used"`
	}
	err = json.NewDecoder(resp.Body).Decode(&u)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || u.Used != 1 {
		t.Fatalf("the banner's usage line answered %d, used %d (%v)", resp.StatusCode, u.Used, err)
	}
}

// mustEventually waits until w holds want and returns what it holds.
func mustEventually(t *testing.T, w *syncBuffer, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if out := w.String(); strings.Contains(out, want) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%q did not appear within 20s in:\n%s", want, w)
	return ""
}

func TestBadConfigurationExitsBeforeListening(t *testing.T) {
	dir := t.TempDir()
	unknownKey := filepath.Join(dir, "unknown.yaml")
	if err := os.WriteFile(unknownKey, []byte("listen: \":0\"\nlisten_adress: oops\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown key in the file", nil, []string{"--config", unknownKey}, "listen_adress"},
		{"missing config file", nil, []string{"--config", filepath.Join(dir, "nope.yaml")}, "config file"},
		{"malformed database URL", map[string]string{"PUSHGATE_DATABASE_URL": "mysql://x"}, nil, "PUSHGATE_DATABASE_URL"},
		{"malformed redis URL", map[string]string{"PUSHGATE_REDIS_URL": "http://x"}, nil, "PUSHGATE_REDIS_URL"},
		{"malformed public URL", map[string]string{"PUSHGATE_PUBLIC_URL": "localhost"}, nil, "PUSHGATE_PUBLIC_URL"},
		{"region other than us or de", map[string]string{"PUSHGATE_REGION": "eu"}, nil, "must be us or de"},
		{"region flag overrides env", map[string]string{"PUSHGATE_REGION": "us"}, []string{"--region", "fr"}, `got "fr"`},
		{"malformed region urls", map[string]string{"PUSHGATE_REGION_URLS": "us:https://x"}, nil, "PUSHGATE_REGION_URLS"},
		{"unreadable apps file", map[string]string{"PUSHGATE_APPS_FILE": filepath.Join(dir, "apps.yaml")}, nil, "PUSHGATE_APPS_FILE"},
		{"bad log format", map[string]string{"PUSHGATE_LOG_FORMAT": "xml"}, nil, "text or json"},
		{"bad shutdown timeout", map[string]string{"PUSHGATE_SHUTDOWN_TIMEOUT": "soon"}, nil, "PUSHGATE_SHUTDOWN_TIMEOUT"},
		{"no token key outside dev mode", map[string]string{"PUSHGATE_TOKEN_KEY": ""}, nil, "PUSHGATE_TOKEN_KEY"},
		{"a token key with a short secret", map[string]string{"PUSHGATE_TOKEN_KEY": "k1:short"}, nil, "PUSHGATE_TOKEN_KEY"},
		{"a previous token key with the current id", map[string]string{"PUSHGATE_TOKEN_KEYS_PREVIOUS": testTokenKey}, nil, "PUSHGATE_TOKEN_KEYS_PREVIOUS"},
		{"legacy tokens neither accepted nor refused", map[string]string{"PUSHGATE_LEGACY_TOKENS": "maybe"}, nil, "PUSHGATE_LEGACY_TOKENS"},
		{"an auth timeout that is not a duration", map[string]string{"PUSHGATE_AUTH_TIMEOUT": "2"}, nil, "PUSHGATE_AUTH_TIMEOUT"},
		{"a stale bound below the cache TTL", map[string]string{"PUSHGATE_AUTH_STALE_MAX": "1s"}, nil, "PUSHGATE_AUTH_STALE_MAX"},
		{"a delivery log neither on nor off", map[string]string{"PUSHGATE_DELIVERY_LOG": "maybe"}, nil, "PUSHGATE_DELIVERY_LOG"},
		{"no failed authentications allowed", map[string]string{"PUSHGATE_AUTH_FAILURES_PER_MINUTE": "0"}, nil, "PUSHGATE_AUTH_FAILURES_PER_MINUTE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"PUSHGATE_LISTEN": "127.0.0.1:0", "PUSHGATE_DATABASE_URL": storetest.SQLite(t)}
			for k, v := range tt.env {
				env[k] = v
			}
			var stderr bytes.Buffer
			err := run(context.Background(), append([]string{"serve"}, tt.args...), envFrom(env), io.Discard, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run = %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans several lines: %q", err)
			}
			if strings.Contains(stderr.String(), "msg=listening") {
				t.Fatal("listened despite bad configuration")
			}
		})
	}
}

func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pushgate.yaml")
	if err := os.WriteFile(file, []byte("region: de\nlog_format: json\npublic_url: https://file.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := newFlagSet("serve", io.Discard)
	load := configFlags(fs, envFrom(map[string]string{"PUSHGATE_LOG_FORMAT": "text", "PUSHGATE_PUBLIC_URL": "https://env.example"}))
	if err := parseFlags(fs, []string{"--config", file, "--public-url", "https://flag.example"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "de" || cfg.LogFormat != "text" || cfg.PublicURL != "https://flag.example" {
		t.Fatalf("file < env < flag precedence broken: region=%s log_format=%s public_url=%s", cfg.Region, cfg.LogFormat, cfg.PublicURL)
	}
}

func TestUnknownCommandIsAUsageError(t *testing.T) {
	err := run(context.Background(), []string{"frobnicate"}, envFrom(nil), io.Discard, io.Discard)
	if err == nil || exitCode(err) != 2 {
		t.Fatalf("run(frobnicate) = %v (exit %d), want a usage error", err, exitCode(err))
	}
}

func TestShutdownSaysHowManyRequestsItCutOff(t *testing.T) {
	dbURL := storetest.SQLite(t)
	mustRun(t, map[string]string{"PUSHGATE_DATABASE_URL": dbURL}, "migrate")
	_, _, appsFile := mustSandbox(t)
	s := mustServe(t, map[string]string{"PUSHGATE_DATABASE_URL": dbURL, "PUSHGATE_APPS_FILE": appsFile, "PUSHGATE_SHUTDOWN_TIMEOUT": "100ms"})

	// A registration whose body never finishes keeps its handler waiting.
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /api/v1/workspaces HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		// The scrape itself is one request in flight.
		if _, body := mustGet(t, s.URL+"/metrics"); strings.Contains(body, "pushgate_http_requests_in_flight 2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow request never reached its handler")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.stop(); err != nil {
		t.Fatalf("serve returned %v", err)
	}
	logs := s.stderr.String()
	if strings.Contains(logs, "stopped cleanly") || !strings.Contains(logs, "1 in-flight request(s) were cut off") {
		t.Fatalf("shutdown that cut off a request did not say so:\n%s", logs)
	}
}

// mustNotCreateDataHere fails t if a command put a database in ./data of
// the package directory, where the old default created one.
func mustNotCreateDataHere(t *testing.T) {
	t.Helper()
	const stray = "data/pushgate.db"
	if _, err := os.Stat(stray); err == nil {
		t.Fatalf("%s exists beside the tests; remove it", stray)
	}
	t.Cleanup(func() {
		if _, err := os.Stat(stray); err == nil {
			os.RemoveAll("data")
			t.Errorf("a command created %s in the current directory", stray)
		}
	})
}

func TestDataDirHoldsTheDefaultDatabase(t *testing.T) {
	mustNotCreateDataHere(t)
	dir := t.TempDir()
	env := map[string]string{"PUSHGATE_DATA_DIR": dir}
	want := filepath.Join(dir, "pushgate.db")
	if out := mustRun(t, env, "migrate"); !strings.Contains(out, "applied 0001_workspaces") {
		t.Fatalf("migrate printed %q", out)
	}
	if _, err := os.Stat(want); err != nil {
		t.Fatalf("migrate with PUSHGATE_DATA_DIR=%s did not create %s: %v", dir, want, err)
	}
	created := mustRunJSON(t, env, "workspace", "create", "--name", "Acme", "--email", "ops@acme.example", "--json")
	if out := mustRun(t, env, "workspace", "list"); !strings.Contains(out, created["id"].(string)) {
		t.Fatalf("list in the same data_dir = %q", out)
	}
}

func TestOnlyMigrateAndDevCreateADatabase(t *testing.T) {
	mustNotCreateDataHere(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "nowhere", "pushgate.db")
	env := map[string]string{"PUSHGATE_DATABASE_URL": "sqlite:" + missing, "PUSHGATE_LISTEN": "127.0.0.1:0"}
	for _, args := range [][]string{
		{"workspace", "list"},
		{"workspace", "create", "--name", "Acme", "--email", "ops@acme.example"},
		{"workspace", "show", "ws_prbyzqk67yqqqoyjus7z"},
		{"serve"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			err := run(context.Background(), args, envFrom(env), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "pushgate migrate") {
				t.Fatalf("pushgate %s = %v, want an error naming %s and `pushgate migrate`", strings.Join(args, " "), err, missing)
			}
			if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("pushgate %s created %s", strings.Join(args, " "), filepath.Dir(missing))
			}
		})
	}
	t.Run("admin create", func(t *testing.T) {
		err := runWithInput(context.Background(), []string{"admin", "create", "--email", "root@pushgate.example"}, envFrom(env),
			strings.NewReader("correct horse battery\n"), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), missing) {
			t.Fatalf("admin create = %v, want an error naming %s", err, missing)
		}
	})
}
