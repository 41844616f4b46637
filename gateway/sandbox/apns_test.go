package sandbox_test

import (
	"crypto/ecdsa"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"

	"github.com/pushgate/pushgate/gateway/sandbox"
)

const alertPayload = `{"aps":{"alert":{"title":"hi","body":"there"},"mutable-content":1},"ack_id":"a1"}`

// apnsFixture is a sandbox that trusts one APNs signing key and one topic.
type apnsFixture struct {
	s   *sandbox.Server
	key *ecdsa.PrivateKey
}

func mustAPNsSandbox(t testing.TB, cfg sandbox.Config) apnsFixture {
	t.Helper()
	key, _ := mustP8(t)
	cfg.APNsKeys = map[string]*ecdsa.PublicKey{testKeyID: &key.PublicKey}
	cfg.APNsTopics = []string{testTopic}
	return apnsFixture{s: mustServer(t, cfg), key: key}
}

// mustPush sends n and fails the test on a transport error.
func mustPush(t testing.TB, c *apns2.Client, n *apns2.Notification) *apns2.Response {
	t.Helper()
	res, err := c.Push(n)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	return res
}

func TestAPNsAnswersByTokenPrefix(t *testing.T) {
	f := mustAPNsSandbox(t, sandbox.Config{})
	clients := map[string]*apns2.Client{
		"token auth":       mustTokenClient(t, f.s, f.key, testKeyID),
		"certificate auth": mustCertClient(t, f.s, testTopic),
	}
	tests := []struct {
		name   string
		token  string
		status int
		reason string
	}{
		{"live token is delivered with an apns-id", "5f2a9c0d1e", http.StatusOK, ""},
		{"unregistered token gets 410 Unregistered with a timestamp", "unregistered-5f2a", http.StatusGone, apns2.ReasonUnregistered},
		{"baddevice token gets 400 BadDeviceToken", "baddevice-5f2a", http.StatusBadRequest, apns2.ReasonBadDeviceToken},
		{"unavailable token gets 503 ServiceUnavailable", "unavailable-5f2a", http.StatusServiceUnavailable, apns2.ReasonServiceUnavailable},
		{"toomany token gets 429 TooManyRequests", "toomany-5f2a", http.StatusTooManyRequests, apns2.ReasonTooManyRequests},
	}
	for auth, c := range clients {
		for _, tt := range tests {
			t.Run(auth+"/"+tt.name, func(t *testing.T) {
				res := mustPush(t, c, &apns2.Notification{DeviceToken: tt.token, Topic: testTopic, Payload: alertPayload})
				if res.StatusCode != tt.status || res.Reason != tt.reason {
					t.Fatalf("got %d %q, want %d %q", res.StatusCode, res.Reason, tt.status, tt.reason)
				}
				if len(res.ApnsID) != 36 {
					t.Errorf("apns-id = %q, want a UUID", res.ApnsID)
				}
				if tt.status == http.StatusGone && time.Since(res.Timestamp.Time) > time.Minute {
					t.Errorf("timestamp = %v, want about now", res.Timestamp.Time)
				}
			})
		}
	}
}

func TestAPNsRetryAfterOnTransientErrors(t *testing.T) {
	f := mustAPNsSandbox(t, sandbox.Config{})
	bearer := (&token.Token{AuthKey: f.key, KeyID: testKeyID, TeamID: testTeamID}).GenerateIfExpired()
	c := mustTLSClient(t, f.s)
	for _, tt := range []struct {
		name, token string
		status      int
	}{
		{"429 asks to retry after 1 second", "toomany-1", http.StatusTooManyRequests},
		{"503 asks to retry after 1 second", "unavailable-1", http.StatusServiceUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := mustDo(t, c, http.MethodPost, f.s.URL()+"/3/device/"+tt.token,
				map[string]string{"authorization": "bearer " + bearer, "apns-topic": testTopic}, alertPayload)
			if res.status != tt.status || res.header.Get("Retry-After") != "1" {
				t.Fatalf("got %d Retry-After %q, want %d and 1", res.status, res.header.Get("Retry-After"), tt.status)
			}
		})
	}
}

// expiredTokenClient signs its provider token with an iat two hours old, as a client with a stale cache would.
func expiredTokenClient(t testing.TB, f apnsFixture) *apns2.Client {
	t.Helper()
	jt := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": testTeamID, "iat": time.Now().Add(-2 * time.Hour).Unix()})
	jt.Header["kid"] = testKeyID
	bearer, err := jt.SignedString(f.key)
	if err != nil {
		t.Fatal(err)
	}
	tok := &token.Token{AuthKey: f.key, KeyID: testKeyID, TeamID: testTeamID, IssuedAt: time.Now().Unix(), Bearer: bearer}
	return trustSandbox(t, apns2.NewTokenClient(tok), f.s)
}

func TestAPNsRejects(t *testing.T) {
	f := mustAPNsSandbox(t, sandbox.Config{})
	otherKey, _ := mustP8(t)
	good := mustTokenClient(t, f.s, f.key, testKeyID)
	big := `{"aps":{"alert":"` + strings.Repeat("x", 4100) + `"}}`
	voip5000 := `{"aps":{},"call":"` + strings.Repeat("x", 4970) + `"}`

	tests := []struct {
		name   string
		client *apns2.Client
		n      apns2.Notification
		status int
		reason string
	}{
		{"token signed by another key is InvalidProviderToken", mustTokenClient(t, f.s, otherKey, testKeyID),
			apns2.Notification{Topic: testTopic, Payload: alertPayload}, 403, apns2.ReasonInvalidProviderToken},
		{"unknown key id is InvalidProviderToken", mustTokenClient(t, f.s, f.key, "UNKNOWNKID"),
			apns2.Notification{Topic: testTopic, Payload: alertPayload}, 403, apns2.ReasonInvalidProviderToken},
		{"token issued over an hour ago is ExpiredProviderToken", expiredTokenClient(t, f),
			apns2.Notification{Topic: testTopic, Payload: alertPayload}, 403, apns2.ReasonExpiredProviderToken},
		{"no token and no certificate is MissingProviderToken", trustSandbox(t, apns2.NewClient(tls.Certificate{}), f.s),
			apns2.Notification{Topic: testTopic, Payload: alertPayload}, 403, apns2.ReasonMissingProviderToken},
		{"topic not configured is TopicDisallowed", good,
			apns2.Notification{Topic: "com.example.other", Payload: alertPayload}, 400, apns2.ReasonTopicDisallowed},
		{"missing topic with token auth is MissingTopic", good,
			apns2.Notification{Payload: alertPayload}, 400, apns2.ReasonMissingTopic},
		{"voip push to the plain topic is TopicDisallowed", good,
			apns2.Notification{Topic: testTopic, PushType: apns2.PushTypeVOIP, Payload: alertPayload}, 400, apns2.ReasonTopicDisallowed},
		{"voip push to topic.voip is delivered", good,
			apns2.Notification{Topic: testTopic + ".voip", PushType: apns2.PushTypeVOIP, Payload: `{"call":"x"}`}, 200, ""},
		{"alert push to topic.voip is TopicDisallowed", good,
			apns2.Notification{Topic: testTopic + ".voip", Payload: alertPayload}, 400, apns2.ReasonTopicDisallowed},
		{"unknown push type is InvalidPushType", good,
			apns2.Notification{Topic: testTopic, PushType: "telepathy", Payload: alertPayload}, 400, apns2.ReasonInvalidPushType},
		{"payload over 4096 bytes is PayloadTooLarge", good,
			apns2.Notification{Topic: testTopic, Payload: big}, 413, apns2.ReasonPayloadTooLarge},
		{"voip payload of 5000 bytes is delivered", good,
			apns2.Notification{Topic: testTopic + ".voip", PushType: apns2.PushTypeVOIP, Payload: voip5000}, 200, ""},
		{"voip payload over 5120 bytes is PayloadTooLarge", good,
			apns2.Notification{Topic: testTopic + ".voip", PushType: apns2.PushTypeVOIP, Payload: `{"aps":{},"call":"` + strings.Repeat("x", 5200) + `"}`}, 413, apns2.ReasonPayloadTooLarge},
		{"alert without aps is PayloadEmpty", good,
			apns2.Notification{Topic: testTopic, Payload: `{"ack_id":"a1"}`}, 400, apns2.ReasonPayloadEmpty},
		{"priority 7 is BadPriority", good,
			apns2.Notification{Topic: testTopic, Priority: 7, Payload: alertPayload}, 400, apns2.ReasonBadPriority},
		{"apns-id that is no UUID is BadMessageId", good,
			apns2.Notification{Topic: testTopic, ApnsID: "not-a-uuid", Payload: alertPayload}, 400, apns2.ReasonBadMessageID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.n
			n.DeviceToken = "5f2a9c0d1e"
			res := mustPush(t, tt.client, &n)
			if res.StatusCode != tt.status || res.Reason != tt.reason {
				t.Fatalf("got %d %q, want %d %q", res.StatusCode, res.Reason, tt.status, tt.reason)
			}
		})
	}
}

func TestAPNsRejectsMalformedRequests(t *testing.T) {
	f := mustAPNsSandbox(t, sandbox.Config{})
	bearer := (&token.Token{AuthKey: f.key, KeyID: testKeyID, TeamID: testTeamID}).GenerateIfExpired()
	auth := map[string]string{"authorization": "bearer " + bearer, "apns-topic": testTopic}
	h2 := mustTLSClient(t, f.s)
	h1 := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: mustRootCAs(t, f.s)},
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{}, // no HTTP/2
	}}
	tests := []struct {
		name   string
		client *http.Client
		method string
		path   string
		body   string
		status int
		want   string
	}{
		{"body that is not JSON is BadPayload", h2, http.MethodPost, "/3/device/abc", `{"aps":`, 400, `{"reason":"BadPayload"}`},
		{"empty body is PayloadEmpty", h2, http.MethodPost, "/3/device/abc", ``, 400, `{"reason":"PayloadEmpty"}`},
		{"aps that is not a dictionary is BadPayload", h2, http.MethodPost, "/3/device/abc", `{"aps":"x"}`, 400, `{"reason":"BadPayload"}`},
		{"empty device token is MissingDeviceToken", h2, http.MethodPost, "/3/device/", alertPayload, 400, `{"reason":"MissingDeviceToken"}`},
		{"GET is MethodNotAllowed", h2, http.MethodGet, "/3/device/abc", ``, 405, `{"reason":"MethodNotAllowed"}`},
		{"HTTP/1.1 is refused like Apple does", h1, http.MethodPost, "/3/device/abc", alertPayload, 505, `{"reason":"HTTP2Required"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mustDo(t, tt.client, tt.method, f.s.URL()+tt.path, auth, tt.body)
			if res.status != tt.status || res.body != tt.want {
				t.Fatalf("got %d %s, want %d %s", res.status, res.body, tt.status, tt.want)
			}
		})
	}
	h1.CloseIdleConnections()
}

func TestAPNsCertificateAuth(t *testing.T) {
	f := mustAPNsSandbox(t, sandbox.Config{})
	c := mustCertClient(t, f.s, testTopic)
	tests := []struct {
		name   string
		n      apns2.Notification
		status int
		reason string
	}{
		{"push to the certificate's topic is delivered", apns2.Notification{Topic: testTopic}, 200, ""},
		{"push without apns-topic defaults to the certificate's topic", apns2.Notification{}, 200, ""},
		{"voip push to topic.voip is delivered", apns2.Notification{Topic: testTopic + ".voip", PushType: apns2.PushTypeVOIP}, 200, ""},
		{"push to another topic is TopicDisallowed", apns2.Notification{Topic: "com.example.other"}, 400, apns2.ReasonTopicDisallowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.n
			n.DeviceToken, n.Payload = "5f2a9c0d1e", alertPayload
			res := mustPush(t, c, &n)
			if res.StatusCode != tt.status || res.Reason != tt.reason {
				t.Fatalf("got %d %q, want %d %q", res.StatusCode, res.Reason, tt.status, tt.reason)
			}
		})
	}

	t.Run("certificate from another CA is refused in the handshake", func(t *testing.T) {
		other, err := sandbox.New(sandbox.Config{})
		if err != nil {
			t.Fatal(err)
		}
		certPEM, keyPEM, err := other.IssueClientCert(testTopic)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		c := trustSandbox(t, apns2.NewClient(cert), f.s)
		if res, err := c.Push(&apns2.Notification{DeviceToken: "5f2a", Topic: testTopic, Payload: alertPayload}); err == nil {
			t.Fatalf("push with a foreign certificate answered %d %q, want a TLS error", res.StatusCode, res.Reason)
		}
	})
}

func TestAPNsAcceptsAnyWellFormedTokenWhenNoKeysAreConfigured(t *testing.T) {
	s := mustServer(t, sandbox.Config{})
	key, _ := mustP8(t)
	res := mustPush(t, mustTokenClient(t, s, key, "ANYKEYID01"), &apns2.Notification{DeviceToken: "abc", Topic: "any.topic", Payload: alertPayload})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("got %d %q, want 200", res.StatusCode, res.Reason)
	}
	bad := trustSandbox(t, apns2.NewTokenClient(&token.Token{IssuedAt: time.Now().Unix(), Bearer: "not.a.jwt"}), s)
	if res := mustPush(t, bad, &apns2.Notification{DeviceToken: "abc", Topic: "any.topic", Payload: alertPayload}); res.Reason != apns2.ReasonInvalidProviderToken {
		t.Fatalf("malformed token: got %d %q, want 403 InvalidProviderToken", res.StatusCode, res.Reason)
	}
}

func TestAPNsRecordsWhatReachedTheProvider(t *testing.T) {
	f := mustAPNsSandbox(t, sandbox.Config{})
	c := mustTokenClient(t, f.s, f.key, testKeyID)
	const id = "123e4567-e89b-12d3-a456-426614174000"
	res := mustPush(t, c, &apns2.Notification{DeviceToken: "5f2a9c0d1e", Topic: testTopic, ApnsID: id, Priority: 10, Payload: alertPayload})
	if res.ApnsID != id {
		t.Errorf("apns-id = %q, want the request's %q", res.ApnsID, id)
	}
	mustPush(t, c, &apns2.Notification{DeviceToken: "unregistered-1", Topic: testTopic, Payload: alertPayload})

	got := f.s.LastPayloads("apns", 10)
	if len(got) != 1 {
		t.Fatalf("LastPayloads = %d entries, want only the accepted one", len(got))
	}
	r := got[0]
	if r.Token != "5f2a9c0d1e" || r.Topic != testTopic || r.PushType != "alert" || string(r.Body) != alertPayload {
		t.Errorf("recorded %+v", r)
	}
	if r.Headers["apns-priority"] != "10" || r.Headers["apns-id"] != id {
		t.Errorf("headers = %v, want apns-priority and apns-id", r.Headers)
	}
	if _, ok := r.Headers["authorization"]; ok {
		t.Error("the provider token was recorded")
	}
	f.s.ResetStats()
	if got := f.s.LastPayloads("apns", 10); len(got) != 0 {
		t.Errorf("after reset LastPayloads = %d entries, want none", len(got))
	}
}

func TestLatencyDelaysSendAnswers(t *testing.T) {
	const latency = 200 * time.Millisecond
	f := mustAPNsSandbox(t, sandbox.Config{Latency: latency})
	c := mustTokenClient(t, f.s, f.key, testKeyID)
	mustPush(t, c, &apns2.Notification{DeviceToken: "warm", Topic: testTopic, Payload: alertPayload}) // connect first

	start := time.Now()
	mustPush(t, c, &apns2.Notification{DeviceToken: "abc", Topic: testTopic, Payload: alertPayload})
	if d := time.Since(start); d < latency {
		t.Errorf("push answered in %v, want at least %v", d, latency)
	}
	start = time.Now()
	var st sandbox.Stats
	mustGetJSON(t, mustTLSClient(t, f.s), f.s.URL()+"/sandbox/stats", &st)
	if d := time.Since(start); d >= latency {
		t.Errorf("stats answered in %v, want no added latency", d)
	}
}

func TestHandlerServesAPNsBehindHTTPTest(t *testing.T) {
	s, err := sandbox.New(sandbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(s.Handler())
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer ts.Close()

	key, _ := mustP8(t)
	c := apns2.NewTokenClient(&token.Token{AuthKey: key, KeyID: testKeyID, TeamID: testTeamID})
	c.Host = ts.URL
	c.HTTPClient = ts.Client()
	res := mustPush(t, c, &apns2.Notification{DeviceToken: "abc", Topic: testTopic, Payload: alertPayload})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("got %d %q, want 200", res.StatusCode, res.Reason)
	}
}
