package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// serveForm posts a form body as Rocket.Chat's token request does.
func (a *fuzzAPI) serveForm(t *testing.T, path string, body []byte) (int, map[string]any) {
	req := httptest.NewRequest("POST", path, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("POST %s answered %d %q for body %q", path, rec.Code, rec.Body, body)
	}
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("POST %s answered %d with non-JSON %q for body %q", path, rec.Code, rec.Body, body)
	}
	return rec.Code, out
}

// FuzzRocketChatCloud feeds arbitrary bodies to the registration intent and
// the token endpoint: a 4xx naming the error, never a 500, never a token
// for a client that was not registered.
func FuzzRocketChatCloud(f *testing.F) {
	a := mustFuzzAPI(f)
	for _, seed := range []struct {
		token bool
		body  string
	}{
		{false, `{"uniqueId":"u1","address":"https://chat.example.org","siteName":"S","seats":3,"agreePrivacyTerms":true}`},
		{false, `{"uniqueId":"","address":"javascript:x"}`},
		{false, `{"uniqueId":"u","address":"https://x","seats":-1,"contactEmail":"\u202e"}`},
		{false, `{"seats":"many"}`},
		{true, `client_id=rcc_x&client_secret=s&grant_type=client_credentials&scope=workspace%3Apush%3Asend`},
		{true, `grant_type=password&client_id=a`},
		{true, `client_id=%zz`},
		{true, ``},
	} {
		f.Add(seed.token, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, token bool, body []byte) {
		if !token {
			code, out := a.serve(t, "POST", "/api/v2/register/workspace/intent", "", body)
			if code == http.StatusOK {
				if dc, _ := out["device_code"].(string); dc == "" {
					t.Fatalf("an intent answered 200 without a device code: %v", out)
				}
			} else if e, _ := out["error"].(string); e == "" {
				t.Fatalf("refusal %d %v names no error for body %q", code, out, body)
			}
			return
		}
		code, out := a.serveForm(t, "/api/oauth/token", body)
		if code == http.StatusOK {
			t.Fatalf("a token for body %q: %v", body, out)
		}
		if e, _ := out["error"].(string); e == "" || e == "oauth_invalid_client_credentials" {
			t.Fatalf("refusal %d %v for body %q: want an error other than the one that drops a registration", code, out, body)
		}
	})
}
