package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/tenants"
)

// from sends method path with a token from the client address ip (through
// a trusted proxy's X-Forwarded-For) and returns the status, Retry-After and body.
func (g *floodGateway) from(t *testing.T, ip, method, path, bearer, body string) (int, string, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, g.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", ip)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, resp.Header.Get("Retry-After"), out
}

const mmBody = `{"platform":"apple_rn","server_id":"srv1","device_id":"device-1","type":"message","message":"hi"}`

// mustFailTimes sends n requests with unknown signed-looking tokens from ip and wants each one 401.
func (g *floodGateway) mustFailTimes(t *testing.T, ip string, n int) {
	t.Helper()
	for i := range n {
		if code, _, out := g.from(t, ip, "POST", "/mm/pgw_us_nope"+fmt.Sprint(i)+"/api/v1/send_push", "", mmBody); code != http.StatusUnauthorized {
			t.Fatalf("failure %d from %s: %d %v, want 401", i+1, ip, code, out)
		}
	}
}

func TestFailedAuthenticationLimit(t *testing.T) {
	g := mustFloodGateway(t, true)
	legacy, _ := tenants.NewToken("us")

	t.Run("Mattermost gets 429 FAIL with Retry-After after the limit", func(t *testing.T) {
		g.mustFailTimes(t, "192.0.2.1", 60)
		code, retry, out := g.from(t, "192.0.2.1", "POST", "/mm/"+legacy+"/api/v1/send_push", "", mmBody)
		if code != http.StatusTooManyRequests || retry == "" || out["status"] != "FAIL" || !strings.Contains(out["error"].(string), "wrong workspace token") {
			t.Fatalf("61st request: %d Retry-After %q %v", code, retry, out)
		}
	})
	t.Run("Rocket.Chat gets 429 with code 1010 after the limit", func(t *testing.T) {
		g.mustFailTimes(t, "192.0.2.2", 60)
		code, retry, out := g.from(t, "192.0.2.2", "POST", "/push/apn/send", legacy, `{"token":"d","options":{"topic":"app.pushgate.bench"}}`)
		if code != http.StatusTooManyRequests || retry == "" || out["code"] != float64(1010) {
			t.Fatalf("61st request: %d Retry-After %q %v", code, retry, out)
		}
	})
	t.Run("the workspace API gets 429 rate_limited after the limit", func(t *testing.T) {
		g.mustFailTimes(t, "192.0.2.3", 60)
		code, retry, out := g.from(t, "192.0.2.3", "GET", "/api/v1/workspace", legacy, "")
		if code != http.StatusTooManyRequests || retry == "" || out["code"] != "rate_limited" {
			t.Fatalf("61st request: %d Retry-After %q %v", code, retry, out)
		}
	})
	t.Run("another address is not throttled", func(t *testing.T) {
		if code, _, out := g.from(t, "192.0.2.99", "POST", "/mm/"+legacy+"/api/v1/send_push", "", mmBody); code != http.StatusUnauthorized {
			t.Fatalf("a fresh address got %d %v, want 401", code, out)
		}
	})
	t.Run("an IPv6 /64 is one client", func(t *testing.T) {
		for i := range 60 {
			ip := fmt.Sprintf("2001:db8:0:7::%x", i+1)
			if code, _, _ := g.from(t, ip, "POST", "/mm/"+legacy+"/api/v1/send_push", "", mmBody); code != http.StatusUnauthorized {
				t.Fatalf("failure %d: %d", i+1, code)
			}
		}
		if code, _, _ := g.from(t, "2001:db8:0:7::ffff", "POST", "/mm/"+legacy+"/api/v1/send_push", "", mmBody); code != http.StatusTooManyRequests {
			t.Fatalf("another address of the same /64 got %d, want 429", code)
		}
		if code, _, _ := g.from(t, "2001:db8:0:8::1", "POST", "/mm/"+legacy+"/api/v1/send_push", "", mmBody); code != http.StatusUnauthorized {
			t.Fatalf("an address of another /64 got %d, want 401", code)
		}
	})
	t.Run("a valid token from a throttled address is not throttled", func(t *testing.T) {
		code, _, out := g.from(t, "192.0.2.1", "POST", "/mm/"+g.token+"/api/v1/send_push", "", mmBody)
		if code != http.StatusOK {
			t.Fatalf("the real workspace from a throttled address: %d %v", code, out)
		}
		if code, _, out := g.from(t, "192.0.2.3", "GET", "/api/v1/workspace", g.token, ""); code != http.StatusOK {
			t.Fatalf("the workspace API with a valid token from a throttled address: %d %v", code, out)
		}
	})
	t.Run("throttled requests are counted", func(t *testing.T) {
		if n := gathered(t, g.reg, "pushgate_auth_throttled_total", "", ""); n != 4 {
			t.Fatalf("pushgate_auth_throttled_total = %v, want 4", n)
		}
	})
}
