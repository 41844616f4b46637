package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/api"
	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/storetest"
)

// fuzzAPI is a gateway on SQLite and the sandbox with one unlimited,
// terms-accepted workspace, for feeding arbitrary client input.
type fuzzAPI struct {
	*testAPI
	token string
}

func mustFuzzAPI(f *testing.F) *fuzzAPI {
	f.Helper()
	// One short attempt per push: an "unavailable…" device token must not
	// hold an input for the whole retry deadline.
	apps, _ := mustSandboxApps(f, gateway.Options{Attempts: 1, Deadline: 5 * time.Second})
	a := mustAPI(f, storetest.SQLite(f), apiOptions{registrationOpen: true, perHour: 1 << 30, apps: apps,
		rateLimits: map[tenants.Plan]api.RateLimit{}})
	id, tok := a.mustRegister(f, "Fuzz", true)
	enterprise := tenants.PlanEnterprise
	if _, err := a.svc.Update(context.Background(), id, "fuzz", "set-plan", tenants.WorkspaceChange{Plan: &enterprise}); err != nil {
		f.Fatal(err)
	}
	return &fuzzAPI{testAPI: a, token: tok}
}

// serve sends one request and checks what must hold for any input: an
// answer within the deadline, never a 500, and a JSON body.
func (a *fuzzAPI) serve(t *testing.T, method, path, token string, body []byte) (int, map[string]any) {
	req := httptest.NewRequest(method, path, strings.NewReader(string(body)))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.handler.ServeHTTP(rec, req)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s %s did not answer within 20s for body %q", method, path, body)
	}
	if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("%s %s answered %d %q for body %q", method, path, rec.Code, rec.Body, body)
	}
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s answered %d with non-JSON %q for body %q", method, path, rec.Code, rec.Body, body)
	}
	return rec.Code, out
}

func FuzzMattermostPush(f *testing.F) {
	a := mustFuzzAPI(f)
	for _, seed := range []string{
		`{"platform":"apple_rn","server_id":"s1","device_id":"tok1","ack_id":"a1","type":"message","message":"hi","post_id":"p","channel_id":"c"}`,
		`{"platform":"android_rn-v2","server_id":"s1","device_id":"unregistered1","type":"clear","channel_id":"c","badge":3}`,
		`{"platform":"apple","server_id":"s1","device_id":"baddevice","type":"id_loaded","is_id_loaded":true,"post_id":"p"}`,
		`{"platform":"apple_rn","server_id":"s1","device_id":"unavailable","message":"\u0000\ud800"}`,
		`{"platform":"nope"}`, `[]`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		code, out := a.serve(t, "POST", "/api/v1/send_push", a.token, body)
		if _, ok := out["status"].(string); !ok {
			t.Fatalf("answer %d %v has no Mattermost status for body %q", code, out, body)
		}
	})
}

func FuzzRocketChatPush(f *testing.F) {
	a := mustFuzzAPI(f)
	for _, seed := range []struct {
		gcm  bool
		body string
	}{
		{false, `{"token":"tok1","options":{"title":"t","text":"x","topic":"app.pushgate.bench","notId":1,"payload":{"messageId":"m1","type":"d"}}}`},
		{false, `{"token":"tok2","options":{"topic":"app.pushgate.bench.voip","apn":{"category":"MESSAGE"}}}`},
		{true, `{"token":"unregistered","options":{"gcm":{"style":"inbox","image":"x"},"payload":{"ejson":1}}}`},
		{true, `{"token":"","options":null}`},
		{false, `{"token":"t","options":{"topic":"other"}}`},
		{true, `{`},
	} {
		f.Add(seed.gcm, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, gcm bool, body []byte) {
		path := "/push/apn/send"
		if gcm {
			path = "/push/gcm/send"
		}
		code, out := a.serve(t, "POST", path, a.token, body)
		if code != http.StatusOK {
			if status, _ := out["status"].(float64); int(status) != code {
				t.Fatalf("error answer %d %v does not carry its status for body %q", code, out, body)
			}
		}
	})
}

func FuzzRegister(f *testing.F) {
	a := mustFuzzAPI(f)
	for _, seed := range []string{
		`{"name":"Acme","contact_email":"ops@acme.example"}`,
		`{"name":"Acme","contact_email":"ops@acme.example","server_id":"abcdefghijklmnopqrstuvwxyz","accept_terms_version":"2026-11-01"}`,
		`{"name":"\u202eemca","contact_email":"a@b"}`,
		`{"name":1}`, `null`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		code, out := a.serve(t, "POST", "/api/v1/workspaces", "", body)
		if code == http.StatusCreated {
			if tok, _ := out["token"].(string); !strings.HasPrefix(tok, "pgw_us_") {
				t.Fatalf("registration answered 201 without a token: %v", out)
			}
		} else if _, ok := out["error"]; !ok {
			t.Fatalf("refusal %d %v names no error for body %q", code, out, body)
		}
	})
}

func FuzzWorkspaceAPI(f *testing.F) {
	a := mustFuzzAPI(f)
	for _, seed := range []struct {
		patch bool
		body  string
	}{
		{false, `{"terms_version":"2026-11-01"}`},
		{false, `{"terms_version":"2020-01-01","accepted_by":"x\u0000"}`},
		{true, `{"privacy":"id_only"}`},
		{true, `{"privacy":"full","server_id":""}`},
		{true, `{"status":"suspended"}`},
		{true, `{"server_id":12}`},
	} {
		f.Add(seed.patch, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, patch bool, body []byte) {
		method, path := "POST", "/api/v1/workspace/consent"
		if patch {
			method, path = "PATCH", "/api/v1/workspace"
		}
		a.serve(t, method, path, a.token, body)
	})
}
