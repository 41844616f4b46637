package sandbox_test

import (
	"net/http"
	"testing"

	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"

	"github.com/pushgate/pushgate/gateway/sandbox"
)

func TestExpireProviderTokens(t *testing.T) {
	f := mustAPNsSandbox(t, sandbox.Config{})
	c := mustTokenClient(t, f.s, f.key, testKeyID)
	n := &apns2.Notification{DeviceToken: "live-1", Topic: testTopic, Payload: alertPayload}
	if res := mustPush(t, c, n); res.StatusCode != http.StatusOK {
		t.Fatalf("before: %d %s", res.StatusCode, res.Reason)
	}
	f.s.ExpireProviderTokens()
	t.Run("a token issued before is ExpiredProviderToken", func(t *testing.T) {
		if res := mustPush(t, c, n); res.StatusCode != http.StatusForbidden || res.Reason != apns2.ReasonExpiredProviderToken {
			t.Fatalf("got %d %s, want 403 ExpiredProviderToken", res.StatusCode, res.Reason)
		}
	})
	t.Run("a token signed after is accepted", func(t *testing.T) {
		c.Token = &token.Token{AuthKey: f.key, KeyID: testKeyID, TeamID: testTeamID}
		if res := mustPush(t, c, n); res.StatusCode != http.StatusOK {
			t.Fatalf("got %d %s, want 200", res.StatusCode, res.Reason)
		}
	})
	if got := f.s.Stats().APNs.ByReason["ExpiredProviderToken"]; got != 1 {
		t.Errorf("stats count %d ExpiredProviderToken, want 1", got)
	}
}

func TestRevokeAccessTokens(t *testing.T) {
	f := mustFCMSandbox(t, sandbox.Config{})
	c := mustTLSClient(t, f.s)
	send := f.s.URL() + "/v1/projects/" + f.kit.ProjectID + "/messages:send"
	body := `{"message":{"token":"fcm-1","data":{"a":"b"}}}`
	bearer := func(tok string) map[string]string { return map[string]string{"authorization": "Bearer " + tok} }
	old := mustAccessToken(t, f)
	if res := mustDo(t, c, http.MethodPost, send, bearer(old), body); res.status != http.StatusOK {
		t.Fatalf("before: %d %s", res.status, res.body)
	}
	f.s.RevokeAccessTokens()
	t.Run("a token issued before is UNAUTHENTICATED", func(t *testing.T) {
		if res := mustDo(t, c, http.MethodPost, send, bearer(old), body); res.status != http.StatusUnauthorized {
			t.Fatalf("got %d %s, want 401", res.status, res.body)
		}
	})
	t.Run("a token issued after is accepted", func(t *testing.T) {
		if res := mustDo(t, c, http.MethodPost, send, bearer(mustAccessToken(t, f)), body); res.status != http.StatusOK {
			t.Fatalf("got %d %s, want 200", res.status, res.body)
		}
	})
	if got := f.s.Stats().FCM.ByReason["UNAUTHENTICATED"]; got != 1 {
		t.Errorf("stats count %d UNAUTHENTICATED, want 1", got)
	}
}

func TestCredentialControlsOverHTTP(t *testing.T) {
	f := mustFCMSandbox(t, sandbox.Config{})
	c := mustTLSClient(t, f.s)
	send := f.s.URL() + "/v1/projects/" + f.kit.ProjectID + "/messages:send"
	body := `{"message":{"token":"fcm-1","data":{"a":"b"}}}`
	tok := mustAccessToken(t, f)
	for _, path := range []string{"/sandbox/expire-provider-tokens", "/sandbox/revoke-access-tokens"} {
		if res := mustDo(t, c, http.MethodPost, f.s.URL()+path, nil, ""); res.status != http.StatusNoContent {
			t.Fatalf("POST %s: %d %s", path, res.status, res.body)
		}
	}
	if res := mustDo(t, c, http.MethodPost, send, map[string]string{"authorization": "Bearer " + tok}, body); res.status != http.StatusUnauthorized {
		t.Errorf("a token issued before POST /sandbox/revoke-access-tokens: %d, want 401", res.status)
	}
}
