package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/api"
)

// readyz asks GET /readyz as if over TCP from peer, with extra headers.
func readyz(t *testing.T, h http.Handler, peer string, header http.Header) (int, map[string]any, string) {
	t.Helper()
	req := httptest.NewRequest("GET", "/readyz", nil)
	req.RemoteAddr = peer
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("readyz answered %d with non-JSON %q", rec.Code, rec.Body)
	}
	return rec.Code, out, strings.TrimSpace(rec.Body.String())
}

func TestReadyz(t *testing.T) {
	hungDatabase := api.Checker{Name: "database", Timeout: 50 * time.Millisecond, Ping: func(ctx context.Context) error {
		<-ctx.Done() // a database that accepted the connection and never answers
		return ctx.Err()
	}}
	redisUp := api.Checker{Name: "redis", Ping: func(ctx context.Context) error { return ctx.Err() }}
	leaky := api.Checker{Name: "database", Ping: func(context.Context) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("failed to connect to `user=pushgate database=prod`: 10.1.2.3:5432")}
	}}
	newHandler := func(operator func(*http.Request) bool, checks ...api.Checker) http.Handler {
		return api.NewHandler(api.Deps{Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), Ready: checks, Operator: operator})
	}

	t.Run("a hung database does not make redis look unreachable", func(t *testing.T) {
		code, out, _ := readyz(t, newHandler(nil, hungDatabase, redisUp), "127.0.0.1:5000", nil)
		checks, _ := out["checks"].(map[string]any)
		if code != 503 || out["status"] != "unavailable" || checks["redis"] != "ok" ||
			!strings.HasPrefix(checks["database"].(string), "unreachable") {
			t.Fatalf("readyz = %d %v", code, out)
		}
	})
	t.Run("other callers learn only the status", func(t *testing.T) {
		h := newHandler(nil, leaky, redisUp)
		for _, tc := range []struct {
			name, peer string
			header     http.Header
		}{
			{"a remote caller", "203.0.113.9:5000", nil},
			{"a remote IPv6 caller", "[2001:db8::9]:5000", nil},
			{"a caller forwarded by a proxy on loopback", "127.0.0.1:5000", http.Header{"X-Forwarded-For": {"203.0.113.9"}}},
			{"a caller forwarded with Forwarded", "[::1]:5000", http.Header{"Forwarded": {"for=203.0.113.9"}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, _, body := readyz(t, h, tc.peer, tc.header)
				if code != 503 || body != `{"status":"unavailable"}` {
					t.Fatalf("readyz = %d %s, want 503 with the status alone", code, body)
				}
			})
		}
		if code, _, body := readyz(t, newHandler(nil, redisUp), "203.0.113.9:5000", nil); code != 200 || body != `{"status":"ok"}` {
			t.Fatalf("readyz when ready = %d %s", code, body)
		}
	})
	t.Run("loopback and operators see which dependency failed and why", func(t *testing.T) {
		operator := func(r *http.Request) bool { return r.Header.Get("X-Test-Operator") == "yes" }
		h := newHandler(operator, leaky, redisUp)
		for _, tc := range []struct {
			name, peer string
			header     http.Header
		}{
			{"IPv4 loopback", "127.0.0.1:5000", nil},
			{"IPv6 loopback", "[::1]:5000", nil},
			{"an operator anywhere", "203.0.113.9:5000", http.Header{"X-Test-Operator": {"yes"}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, out, _ := readyz(t, h, tc.peer, tc.header)
				checks, _ := out["checks"].(map[string]any)
				if code != 503 || !strings.Contains(checks["database"].(string), "10.1.2.3:5432") || checks["redis"] != "ok" {
					t.Fatalf("readyz = %d %v", code, out)
				}
			})
		}
	})
}

func TestReadyzLooksAtTheTCPPeerBehindATrustedProxy(t *testing.T) {
	h := api.NewHandler(api.Deps{Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), TrustProxy: true,
		Ready: []api.Checker{{Name: "database", Ping: func(context.Context) error { return errors.New("down at 10.1.2.3:5432") }}}})
	if _, _, body := readyz(t, h, "203.0.113.9:5000", http.Header{"X-Forwarded-For": {"127.0.0.1"}}); body != `{"status":"unavailable"}` {
		t.Fatalf("a remote caller claiming to be loopback got %s", body)
	}
}
