package sandbox_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"github.com/golang-jwt/jwt/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/pushgate/pushgate/gateway/sandbox"
)

func androidMessage(token string) *messaging.Message {
	return &messaging.Message{
		Token: token,
		Data:  map[string]string{"ack_id": "a1", "type": "message", "message": "hello"},
		Android: &messaging.AndroidConfig{
			Priority: "high",
			Data:     map[string]string{"ack_id": "a1", "type": "message", "message": "hello"},
		},
	}
}

func TestFCMAnswersByTokenPrefix(t *testing.T) {
	t.Parallel()
	f := mustFCMSandbox(t, sandbox.Config{})
	client := mustMessaging(t, f.s, f.saJSON, f.kit.ProjectID)
	tests := []struct {
		name  string
		token string
		is    func(error) bool // the Firebase SDK's own classifier
	}{
		{"live token is delivered with a message name", "fcm-5f2a9c", nil},
		{"unregistered token is IsUnregistered", "unregistered-5f2a", messaging.IsUnregistered},
		{"baddevice token is IsInvalidArgument", "baddevice-5f2a", messaging.IsInvalidArgument},
		{"toomany token is IsQuotaExceeded", "toomany-5f2a", messaging.IsQuotaExceeded},
		// The SDK retries 503 four times (about 8 s with Retry-After: 1), so this row runs in parallel.
		{"unavailable token is IsUnavailable", "unavailable-5f2a", messaging.IsUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name, err := client.Send(context.Background(), androidMessage(tt.token))
			if tt.is == nil {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				if !strings.HasPrefix(name, "projects/"+f.kit.ProjectID+"/messages/") {
					t.Fatalf("name = %q", name)
				}
				return
			}
			if err == nil || !tt.is(err) {
				t.Fatalf("Send error = %v, want it classified by the SDK", err)
			}
		})
	}
}

func TestFCMRejects(t *testing.T) {
	t.Parallel()
	f := mustFCMSandbox(t, sandbox.Config{})
	client := mustMessaging(t, f.s, f.saJSON, f.kit.ProjectID)
	otherProject := mustMessaging(t, f.s, f.saJSON, "someone-elses-project")

	tests := []struct {
		name   string
		client *messaging.Client
		msg    *messaging.Message
		is     func(error) bool
		want   string // in the error message
	}{
		{"data over 4096 bytes is IsInvalidArgument, message is too big", client,
			&messaging.Message{Token: "fcm-1", Data: map[string]string{"message": strings.Repeat("x", 4100)}},
			messaging.IsInvalidArgument, "Message is too big"},
		{"android data over 4096 bytes is IsInvalidArgument", client,
			&messaging.Message{Token: "fcm-1", Android: &messaging.AndroidConfig{Data: map[string]string{"m": strings.Repeat("x", 4100)}}},
			messaging.IsInvalidArgument, "Message is too big"},
		{"reserved data key is IsInvalidArgument", client,
			&messaging.Message{Token: "fcm-1", Data: map[string]string{"from": "me"}},
			messaging.IsInvalidArgument, "Invalid data payload key: from"},
		{"project not configured is permission denied", otherProject,
			androidMessage("fcm-1"), errorutils.IsPermissionDenied, "cloudmessaging.messages.create"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.client.Send(context.Background(), tt.msg)
			if err == nil || !tt.is(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Send error = %v, want classified and mentioning %q", err, tt.want)
			}
		})
	}

	t.Run("topic target is delivered", func(t *testing.T) {
		if _, err := client.Send(context.Background(), &messaging.Message{Topic: "news", Data: map[string]string{"a": "b"}}); err != nil {
			t.Fatalf("Send: %v", err)
		}
	})
	t.Run("dry run is validated, not delivered", func(t *testing.T) {
		before := f.s.Stats().FCM.ByReason["delivered"]
		name, err := client.SendDryRun(context.Background(), androidMessage("fcm-1"))
		if err != nil || name != "projects/"+f.kit.ProjectID+"/messages/fake_message_id" {
			t.Fatalf("SendDryRun = %q, %v", name, err)
		}
		if st := f.s.Stats().FCM; st.ByReason["delivered"] != before || st.ByReason["validated"] != 1 {
			t.Fatalf("stats = %+v, want the dry run counted as validated", st)
		}
	})
}

func TestFCMRequiresAnAccessTokenFromTheSandbox(t *testing.T) {
	t.Parallel()
	f := mustFCMSandbox(t, sandbox.Config{})
	c := mustTLSClient(t, f.s)
	send := f.s.URL() + "/v1/projects/" + f.kit.ProjectID + "/messages:send"
	body := `{"message":{"token":"fcm-1","data":{"a":"b"}}}`
	tests := []struct {
		name   string
		header map[string]string
	}{
		{"no authorization is UNAUTHENTICATED", nil},
		{"token the sandbox did not issue is UNAUTHENTICATED", map[string]string{"authorization": "Bearer ya29.sandbox.forged.AAAA"}},
		{"basic auth is UNAUTHENTICATED", map[string]string{"authorization": "Basic dXNlcjpwYXNz"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mustDo(t, c, http.MethodPost, send, tt.header, body)
			var e struct {
				Error struct {
					Code   int    `json:"code"`
					Status string `json:"status"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(res.body), &e); err != nil {
				t.Fatalf("body %q: %v", res.body, err)
			}
			if res.status != http.StatusUnauthorized || e.Error.Code != 401 || e.Error.Status != "UNAUTHENTICATED" {
				t.Fatalf("got %d %s, want 401 UNAUTHENTICATED", res.status, res.body)
			}
		})
	}
}

func TestFCMRejectsMalformedMessages(t *testing.T) {
	t.Parallel()
	f := mustFCMSandbox(t, sandbox.Config{})
	c := mustTLSClient(t, f.s)
	tok := mustAccessToken(t, f)
	send := f.s.URL() + "/v1/projects/" + f.kit.ProjectID + "/messages:send"
	tests := []struct {
		name string
		body string
	}{
		{"data value that is not a string is INVALID_ARGUMENT", `{"message":{"token":"t","data":{"badge":1}}}`},
		{"no target is INVALID_ARGUMENT", `{"message":{"data":{"a":"b"}}}`},
		{"two targets are INVALID_ARGUMENT", `{"message":{"token":"t","topic":"news"}}`},
		{"unknown field is INVALID_ARGUMENT", `{"message":{"token":"t","dta":{"a":"b"}}}`},
		{"missing message is INVALID_ARGUMENT", `{"validate_only":true}`},
		{"not JSON is INVALID_ARGUMENT", `{"message":`},
		{"data after the object is INVALID_ARGUMENT", `{"message":{"token":"t"}} {}`},
		{"token that is not a string is INVALID_ARGUMENT", `{"message":{"token":5}}`},
		{"android data value that is not a string is INVALID_ARGUMENT", `{"message":{"token":"t","android":{"data":{"a":true}}}}`},
		{"notification that is not an object is INVALID_ARGUMENT", `{"message":{"token":"t","notification":"hi"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mustDo(t, c, http.MethodPost, send, map[string]string{"authorization": "Bearer " + tok}, tt.body)
			if res.status != http.StatusBadRequest || !strings.Contains(res.body, `"status":"INVALID_ARGUMENT"`) {
				t.Fatalf("got %d %s, want 400 INVALID_ARGUMENT", res.status, res.body)
			}
		})
	}
	t.Run("escaped strings are delivered", func(t *testing.T) {
		res := mustDo(t, c, http.MethodPost, send, map[string]string{"authorization": "Bearer " + tok}, `{"message":{"token":"t\u0031","data":{"k\"":"v\n"},"android":{"priority":"high","ttl":"3.5s"}}}`)
		if res.status != http.StatusOK {
			t.Fatalf("got %d %s, want 200", res.status, res.body)
		}
		if got := f.s.LastPayloads("fcm", 1); len(got) != 1 || got[0].Token != "t1" || got[0].Project != f.kit.ProjectID {
			t.Fatalf("recorded %+v, want token t1", got)
		}
	})
	t.Run("camelCase validateOnly is accepted", func(t *testing.T) {
		res := mustDo(t, c, http.MethodPost, send, map[string]string{"authorization": "Bearer " + tok}, `{"validateOnly":true,"message":{"token":"t"}}`)
		if res.status != http.StatusOK || !strings.Contains(res.body, "fake_message_id") {
			t.Fatalf("got %d %s, want a dry-run answer", res.status, res.body)
		}
	})
	t.Run("429 and 503 ask to retry after 1 second", func(t *testing.T) {
		for _, token := range []string{"toomany-1", "unavailable-1"} {
			res := mustDo(t, c, http.MethodPost, send, map[string]string{"authorization": "Bearer " + tok}, `{"message":{"token":"`+token+`"}}`)
			if res.header.Get("Retry-After") != "1" {
				t.Errorf("%s: got %d Retry-After %q, want 1", token, res.status, res.header.Get("Retry-After"))
			}
		}
	})
}

// mustAccessToken does the service-account exchange with the oauth2 library and returns the access token.
func mustAccessToken(t testing.TB, f fcmFixture) string {
	t.Helper()
	ts := mustTokenSource(t, f.s, f.saJSON)
	tok, err := ts.Token()
	if err != nil {
		t.Fatalf("token exchange: %v", err)
	}
	return tok.AccessToken
}

func mustTokenSource(t testing.TB, s *sandbox.Server, saJSON []byte) oauth2.TokenSource {
	t.Helper()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, mustTLSClient(t, s))
	cfg, err := google.JWTConfigFromJSON(saJSON, "https://www.googleapis.com/auth/firebase.messaging")
	if err != nil {
		t.Fatal(err)
	}
	return cfg.TokenSource(ctx)
}

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	f := mustFCMSandbox(t, sandbox.Config{})
	c := mustTLSClient(t, f.s)
	var sa struct {
		PrivateKey  string `json:"private_key"`
		ClientEmail string `json:"client_email"`
		TokenURI    string `json:"token_uri"`
	}
	if err := json.Unmarshal(f.saJSON, &sa); err != nil {
		t.Fatal(err)
	}
	if sa.TokenURI != f.s.URL()+"/token" {
		t.Fatalf("token_uri = %q, want the sandbox's", sa.TokenURI)
	}
	key, err := jwt.ParseRSAPrivateKeyFromPEM([]byte(sa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	assertion := func(key *rsa.PrivateKey, iss, scope string, iat, exp time.Time) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"iss": iss, "scope": scope, "aud": sa.TokenURI, "iat": iat.Unix(), "exp": exp.Unix(),
		}).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	const scope = "https://www.googleapis.com/auth/firebase.messaging"
	tests := []struct {
		name      string
		grantType string
		assertion string
		status    int
		errCode   string
	}{
		{"signed assertion gets a bearer token", "urn:ietf:params:oauth:grant-type:jwt-bearer",
			assertion(key, sa.ClientEmail, scope, now, now.Add(time.Hour)), 200, ""},
		{"assertion signed by another key is invalid_grant", "urn:ietf:params:oauth:grant-type:jwt-bearer",
			assertion(otherKey, sa.ClientEmail, scope, now, now.Add(time.Hour)), 400, "invalid_grant"},
		{"unknown account is invalid_grant", "urn:ietf:params:oauth:grant-type:jwt-bearer",
			assertion(key, "stranger@example.iam.gserviceaccount.com", scope, now, now.Add(time.Hour)), 400, "invalid_grant"},
		{"expired assertion is invalid_grant", "urn:ietf:params:oauth:grant-type:jwt-bearer",
			assertion(key, sa.ClientEmail, scope, now.Add(-2*time.Hour), now.Add(-time.Hour)), 400, "invalid_grant"},
		{"assertion living over an hour is invalid_grant", "urn:ietf:params:oauth:grant-type:jwt-bearer",
			assertion(key, sa.ClientEmail, scope, now, now.Add(3*time.Hour)), 400, "invalid_grant"},
		{"scope without messaging is invalid_scope", "urn:ietf:params:oauth:grant-type:jwt-bearer",
			assertion(key, sa.ClientEmail, "https://www.googleapis.com/auth/userinfo.email", now, now.Add(time.Hour)), 400, "invalid_scope"},
		{"other grant type is unsupported_grant_type", "client_credentials",
			assertion(key, sa.ClientEmail, scope, now, now.Add(time.Hour)), 400, "unsupported_grant_type"},
		{"missing assertion is invalid_request", "urn:ietf:params:oauth:grant-type:jwt-bearer", "", 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"grant_type": {tt.grantType}}
			if tt.assertion != "" {
				form.Set("assertion", tt.assertion)
			}
			res := mustDo(t, c, http.MethodPost, sa.TokenURI, map[string]string{"content-type": "application/x-www-form-urlencoded"}, form.Encode())
			var body struct {
				AccessToken string `json:"access_token"`
				TokenType   string `json:"token_type"`
				ExpiresIn   int    `json:"expires_in"`
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal([]byte(res.body), &body); err != nil {
				t.Fatalf("body %q: %v", res.body, err)
			}
			if res.status != tt.status || body.Error != tt.errCode {
				t.Fatalf("got %d %s, want %d %q", res.status, res.body, tt.status, tt.errCode)
			}
			if tt.status == 200 && (body.AccessToken == "" || body.TokenType != "Bearer" || body.ExpiresIn != 3600) {
				t.Fatalf("token answer %s", res.body)
			}
			if tt.status != 200 && body.Description == "" {
				t.Fatalf("error without error_description: %s", res.body)
			}
		})
	}

	t.Run("the oauth2 library surfaces invalid_grant", func(t *testing.T) {
		forged := strings.Replace(string(f.saJSON), sa.ClientEmail, "stranger@example.iam.gserviceaccount.com", 1)
		_, err := mustTokenSource(t, f.s, []byte(forged)).Token()
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.Response.StatusCode != http.StatusBadRequest || !strings.Contains(string(re.Body), `"error":"invalid_grant"`) {
			t.Fatalf("Token() error = %v, want a RetrieveError with invalid_grant", err)
		}
	})
}
