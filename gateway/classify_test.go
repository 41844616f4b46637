package gateway

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestClassifyAPNs(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		reason  string
		outcome Outcome
	}{
		{"200 is delivered", 200, "", Delivered},
		{"bad device token is dead", 400, "BadDeviceToken", DeadToken},
		{"unregistered is dead", 410, "Unregistered", DeadToken},
		{"missing device token is dead", 400, "MissingDeviceToken", DeadToken},
		{"token for another topic is dead", 400, "DeviceTokenNotForTopic", DeadToken},
		{"expired device token is dead", 410, "ExpiredToken", DeadToken},
		{"too many requests is retry later", 429, "TooManyRequests", RetryLater},
		{"service unavailable is retry later", 503, "ServiceUnavailable", RetryLater},
		{"internal server error is retry later", 500, "InternalServerError", RetryLater},
		{"shutdown is retry later", 503, "Shutdown", RetryLater},
		{"idle timeout is retry later", 400, "IdleTimeout", RetryLater},
		{"payload too large is failed", 413, "PayloadTooLarge", Failed},
		{"bad topic is failed", 400, "BadTopic", Failed},
		{"topic disallowed is failed", 400, "TopicDisallowed", Failed},
		{"invalid provider token is failed", 403, "InvalidProviderToken", Failed},
		{"expired provider token is retry later (a new one is signed)", 403, "ExpiredProviderToken", RetryLater},
		{"bad certificate environment is failed", 403, "BadCertificateEnvironment", Failed},
		{"unknown 4xx is failed", 400, "SomethingNew", Failed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := classifyAPNs(tc.status, tc.reason, "apns-id-1", 2*time.Second)
			if res.Outcome != tc.outcome || res.Reason != tc.reason {
				t.Errorf("got %+v, want %v %q", res, tc.outcome, tc.reason)
			}
			if want := time.Duration(0); tc.outcome == RetryLater {
				if res.RetryAfter != 2*time.Second {
					t.Errorf("RetryAfter %v, want the provider's 2s", res.RetryAfter)
				}
			} else if res.RetryAfter != want {
				t.Errorf("RetryAfter %v on a final outcome", res.RetryAfter)
			}
		})
	}
	if res := classifyAPNs(500, "", "", 0); res.Reason != "HTTP 500" || res.Outcome != RetryLater {
		t.Errorf("answer without a reason: %+v", res)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Sat, 21 Nov 2026 12:00:10 GMT": 10 * time.Second,
		"Sat, 21 Nov 2026 11:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestReasonLabelsAreBounded(t *testing.T) {
	for code, want := range map[string]string{"": "none", "Unregistered": "Unregistered", "UNREGISTERED": "UNREGISTERED",
		"PayloadTooLarge": "PayloadTooLarge", "TransportError": "TransportError", "HTTP 502": "other", "made-up": "other"} {
		if got := knownReasons[reasonIndex(code)]; got != want {
			t.Errorf("reason label for %q = %q, want %q", code, got, want)
		}
	}
}

// fakeFCM is a minimal FCM peer for the error answers the sandbox does not
// produce.
type fakeFCM struct {
	mu       sync.Mutex
	requests map[string]int
	answers  map[string]fcmAnswer
}

type fcmAnswer struct {
	status     int
	body       string
	retryAfter string
}

func fcmErrorBody(status int, apiStatus, message, fcmCode, field string) string {
	var details []any
	if fcmCode != "" {
		details = append(details, map[string]string{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcmCode})
	}
	if field != "" {
		details = append(details, map[string]any{"@type": "type.googleapis.com/google.rpc.BadRequest",
			"fieldViolations": []map[string]string{{"field": field, "description": message}}})
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": status, "message": message, "status": apiStatus, "details": details}})
	return string(b)
}

func (f *fakeFCM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/token":
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"fake-access","token_type":"Bearer","expires_in":3600}`))
	case r.URL.Path == "/token-down":
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"temporarily_unavailable"}`))
	case strings.HasSuffix(r.URL.Path, "/messages:send") && r.Header.Get("Authorization") != "Bearer fake-access":
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(fcmErrorBody(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", "", "")))
	case strings.HasSuffix(r.URL.Path, "/messages:send"):
		var req struct {
			Message struct{ Token string } `json:"message"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		f.requests[req.Message.Token]++
		a, ok := f.answers[req.Message.Token]
		f.mu.Unlock()
		if !ok {
			_, _ = w.Write([]byte(`{"name":"projects/p/messages/1"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if a.retryAfter != "" {
			w.Header().Set("Retry-After", a.retryAfter)
		}
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	default:
		http.NotFound(w, r)
	}
}

func TestFCMErrorAnswers(t *testing.T) {
	fake := &fakeFCM{requests: map[string]int{}, answers: map[string]fcmAnswer{
		"mismatch":     {status: 403, body: fcmErrorBody(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH", "")},
		"apnsauth":     {status: 401, body: fcmErrorBody(401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service", "THIRD_PARTY_AUTH_ERROR", "")},
		"internal":     {status: 500, body: fcmErrorBody(500, "INTERNAL", "Internal error encountered.", "INTERNAL", "")},
		"badmessage":   {status: 400, body: fcmErrorBody(400, "INVALID_ARGUMENT", "Invalid data payload key: from", "INVALID_ARGUMENT", "message.data")},
		"badtoken":     {status: 400, body: fcmErrorBody(400, "INVALID_ARGUMENT", "Invalid value", "INVALID_ARGUMENT", "message.token")},
		"unavailable":  {status: 503, body: fcmErrorBody(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE", "")},
		"gateway":      {status: 502, body: "<html>bad gateway</html>"},
		"denied":       {status: 403, body: fcmErrorBody(403, "PERMISSION_DENIED", "The caller does not have permission", "", "")},
		"quota":        {status: 429, body: fcmErrorBody(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", "QUOTA_EXCEEDED", ""), retryAfter: "30"},
		"unregistered": {status: 404, body: fcmErrorBody(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED", "")},
		"oldtoken":     {status: 400, body: fcmErrorBody(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token", "", "")},
		"bare400":      {status: 400, body: "bad request"},
		"noname":       {status: 200, body: "<html>ok</html>"},
	}}
	srv := httptest.NewUnstartedServer(fake)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	dir := t.TempDir()
	caFile := mustWriteFile(t, dir, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	up := mustServiceAccount(t, t.TempDir(), srv.URL+"/token")
	down := mustServiceAccount(t, t.TempDir(), srv.URL+"/token-down")
	opts := fastOptions()
	opts.Attempts = 1
	r := mustRegistry(t, []AppConfig{
		{ID: "android", Kind: KindFCM, ServiceAccountFile: up, Endpoint: srv.URL, CAFile: caFile},
		{ID: "android_down", Kind: KindFCM, ServiceAccountFile: down, Endpoint: srv.URL + "/v1", CAFile: caFile, Default: true},
	}, opts, nil)
	if a, ok := r.DefaultFCM(); !ok || a.ID() != "android_down" {
		t.Errorf("DefaultFCM() = %v, %v; want the app marked default, not the first", a, ok)
	}

	tests := []struct {
		name    string
		app     string
		token   string
		outcome Outcome
		code    string
	}{
		{"sender id mismatch is our config, not a dead token", "android", "mismatch", Failed, "SENDER_ID_MISMATCH"},
		{"third-party auth error is failed", "android", "apnsauth", Failed, "THIRD_PARTY_AUTH_ERROR"},
		{"internal error is retry later", "android", "internal", RetryLater, "INTERNAL"},
		{"invalid argument about the message is failed", "android", "badmessage", Failed, "INVALID_ARGUMENT"},
		{"invalid argument naming message.token is a dead token", "android", "badtoken", DeadToken, "INVALID_ARGUMENT"},
		{"unavailable is asked once per attempt", "android", "unavailable", RetryLater, "UNAVAILABLE"},
		{"answer without details falls back to the HTTP status", "android", "gateway", RetryLater, "HTTP 502"},
		{"permission denied is failed", "android", "denied", Failed, "PERMISSION_DENIED"},
		{"quota exceeded is retry later", "android", "quota", RetryLater, "QUOTA_EXCEEDED"},
		{"unregistered is a dead token", "android", "unregistered", DeadToken, "UNREGISTERED"},
		{"invalid argument about the registration token is a dead token", "android", "oldtoken", DeadToken, "INVALID_ARGUMENT"},
		{"400 without a Google error is invalid argument", "android", "bare400", Failed, "INVALID_ARGUMENT"},
		{"200 without a message name is retry later", "android", "noname", RetryLater, ReasonTransport},
		{"token endpoint down is retry later", "android_down", "anything", RetryLater, ReasonAuth},
		{"accepted message is delivered", "android", "fine", Delivered, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := sendTo(context.Background(), mustApp(t, r, tc.app), tc.token)
			if res.Outcome != tc.outcome || res.Code() != tc.code {
				t.Errorf("got %+v, want %v %q", res, tc.outcome, tc.code)
			}
			if want := fake.answers[tc.token].retryAfter; want != "" && res.RetryAfter.String() != want+"s" {
				t.Errorf("retry after %v, want the answer's %ss", res.RetryAfter, want)
			}
			fake.mu.Lock()
			n := fake.requests[tc.token]
			fake.mu.Unlock()
			if want := 1; tc.app == "android" && n != want {
				t.Errorf("FCM got %d requests, want %d (one attempt is one request)", n, want)
			}
		})
	}
}

// mustServiceAccount writes a service-account file whose token_uri is tokenURI.
func mustServiceAccount(t *testing.T, dir, tokenURI string) string {
	t.Helper()
	return mustCopyDevKit(t, dir, tokenURI).ServiceAccountFile
}

func TestFCMMessageName(t *testing.T) {
	tests := []struct {
		answer string
		name   string
		ok     bool
	}{
		{`{"name":"projects/p/messages/1"}`, "projects/p/messages/1", true},
		{"{\n  \"name\": \"projects/p/messages/0:1700000000%abc\"\n}\n", "projects/p/messages/0:1700000000%abc", true},
		{`{"other":1,"name":"projects/p/messages/2"}`, "projects/p/messages/2", true},
		{`{"name":"projects\/p\/messages\/3"}`, "projects/p/messages/3", true},
		{`{"name":""}`, "", true},
		{`{}`, "", false},
		{`<html>ok</html>`, "", false},
		{``, "", false},
		{`{"name":"unterminated`, "", false},
	}
	for _, tc := range tests {
		name, ok := fcmMessageName([]byte(tc.answer))
		if name != tc.name || ok != tc.ok {
			t.Errorf("fcmMessageName(%q) = %q, %v; want %q, %v", tc.answer, name, ok, tc.name, tc.ok)
		}
	}
}
