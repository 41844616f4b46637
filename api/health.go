package api

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/pushgate/pushgate/tenants"
)

// handleHealthz answers as long as the process serves HTTP; it has no dependencies.
func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// defaultCheckTimeout bounds one readiness check that sets no Timeout of its own.
const defaultCheckTimeout = 2 * time.Second

// handleReadyz pings every dependency at once, each within its own deadline
// so that a hung one is reported alone. Which one failed and why (errors name
// database users and hosts) is shown only to callers that detail accepts.
func handleReadyz(checks []Checker, detail func(*http.Request) bool, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		results := make([]error, len(checks))
		var wg sync.WaitGroup
		for i, c := range checks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = runCheck(r.Context(), c)
			}()
		}
		wg.Wait()
		status, state := http.StatusOK, map[string]string{}
		for i, c := range checks {
			state[c.Name] = "ok"
			if err := results[i]; err != nil {
				status = http.StatusServiceUnavailable
				state[c.Name] = "unreachable: " + err.Error()
				log.Warn("readiness check failed", "dependency", c.Name, "err", err)
			}
		}
		body := map[string]any{"status": "ok"}
		if status != http.StatusOK {
			body["status"] = "unavailable"
		}
		if detail(r) {
			body["checks"] = state
		}
		writeJSON(w, status, body)
	})
}

// runCheck pings one dependency within its own deadline.
func runCheck(ctx context.Context, c Checker) error {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = defaultCheckTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := c.Ping(ctx)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %s", timeout)
	}
	return err
}

// readyzDetail accepts a caller on this machine, or one that operator (the
// operator-key check, when there is one) accepts.
func readyzDetail(operator func(*http.Request) bool) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return localCaller(r) || (operator != nil && operator(r))
	}
}

// localCaller says whether the TCP peer is loopback and no proxy forwarded
// the request: a sidecar proxy reaches us from loopback too, but says whom
// it forwards in one of these headers.
func localCaller(r *http.Request) bool {
	ip, err := netip.ParseAddr(peerIP(r))
	if err != nil || !ip.Unmap().IsLoopback() {
		return false
	}
	for _, h := range [...]string{"X-Forwarded-For", "Forwarded", "X-Real-Ip"} {
		if _, ok := r.Header[h]; ok {
			return false
		}
	}
	return true
}

func handleVersion(v VersionInfo) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, v)
	})
}

func handleNotFound() http.HandlerFunc {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such endpoint: " + r.Method + " " + tenants.RedactTokens(r.URL.Path)})
	})
}

func handleMethodNotAllowed() http.HandlerFunc {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method " + r.Method + " is not allowed here"})
	})
}

//go:embed terms.txt
var defaultTerms string

// handleTermsPage serves the built-in terms text at the default terms_url.
func handleTermsPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(defaultTerms))
	})
}
