package gateway

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sideshow/apns2"

	"github.com/pushgate/pushgate/gateway/sandbox"
)

// apnsRecorder is an APNs peer that keeps every request it gets.
type apnsRecorder struct {
	mu   sync.Mutex
	reqs []recordedRequest
}

type recordedRequest struct {
	uri    string
	header http.Header
	body   string
}

func (a *apnsRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	a.reqs = append(a.reqs, recordedRequest{uri: r.RequestURI, header: r.Header.Clone(), body: string(body)})
	a.mu.Unlock()
	w.Header().Set("apns-id", "5D1BFE3A-7D5C-4C37-9A6E-3F4E0B7C2A11")
	switch {
	case strings.HasSuffix(r.URL.Path, "/gone"):
		w.WriteHeader(http.StatusGone)
		_, _ = io.WriteString(w, `{"reason":"Unregistered","timestamp":1700000000000}`)
	case strings.HasSuffix(r.URL.Path, "/busy"):
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"reason":"TooManyRequests"}`)
	}
}

func (a *apnsRecorder) last(t *testing.T) recordedRequest {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.reqs) == 0 {
		t.Fatal("no request arrived")
	}
	return a.reqs[len(a.reqs)-1]
}

// mustTLSPeer serves h over TLS, with HTTP/2 or HTTP/1.1 only, until the test
// ends; it returns the dev credentials and a CA file that trusts the server.
func mustTLSPeer(t *testing.T, h http.Handler, http2 bool) (*httptest.Server, sandbox.DevKit, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = http2
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	kit := mustCopyDevKit(t, dir, "")
	caFile := mustWriteFile(t, dir, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	return srv, kit, caFile
}

// TestAPNsRequestIsApns2s checks that pushgate's APNs request is the one
// sideshow/apns2 sends for the same notification: path, APNs headers,
// authorization and body.
func TestAPNsRequestIsApns2s(t *testing.T) {
	rec := &apnsRecorder{}
	srv, kit, caFile := mustTLSPeer(t, rec, true)
	r := mustRegistry(t, []AppConfig{{ID: "apple_rn", Kind: KindAPNs, Topic: testTopic, KeyFile: kit.APNsKeyFile, KeyID: kit.APNsKeyID,
		TeamID: kit.APNsTeamID, Environment: EnvDevelopment, Endpoint: srv.URL + "/", CAFile: caFile}}, fastOptions(), nil)
	p := mustApp(t, r, "apple_rn").prov.(*apnsProvider)
	reference := &apns2.Client{Host: srv.URL, Token: p.signer.token, HTTPClient: srv.Client()}

	expires := time.Unix(1900000000, 0)
	tests := []struct {
		name string
		n    apnsMessage
	}{
		{"alert with priority and expiration", apnsMessage{messageCommon: messageCommon{token: "a1b2c3"}, topic: testTopic, payload: []byte(`{"aps":{"alert":"hi"}}`),
			pushType: apns2.PushTypeAlert, priority: apns2.PriorityHigh, expiration: expires}},
		{"voip without expiration", apnsMessage{messageCommon: messageCommon{token: "d4e5f6"}, topic: testTopic + ".voip", payload: []byte(`{"aps":{}}`),
			pushType: apns2.PushTypeVOIP, priority: apns2.PriorityHigh}},
		{"no push type or priority", apnsMessage{messageCommon: messageCommon{token: "0a0b"}, topic: testTopic, payload: []byte(`{}`)}},
	}
	compared := []string{"Content-Type", "Content-Length", "Authorization", "Apns-Topic", "Apns-Priority", "Apns-Push-Type", "Apns-Expiration", "Apns-Id", "Apns-Collapse-Id"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.n
			if res := p.send(context.Background(), &n); res.Outcome != Delivered || res.ID == "" {
				t.Fatalf("pushgate: %+v", res)
			}
			ours := rec.last(t)
			resp, err := reference.Push(&apns2.Notification{DeviceToken: n.token, Topic: n.topic, Payload: n.payload,
				PushType: n.pushType, Priority: n.priority, Expiration: n.expiration})
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("apns2: %v %+v", err, resp)
			}
			theirs := rec.last(t)
			if ours.uri != theirs.uri || ours.body != theirs.body {
				t.Errorf("request %s %s, apns2 sends %s %s", ours.uri, ours.body, theirs.uri, theirs.body)
			}
			for _, h := range compared {
				if got, want := ours.header.Values(h), theirs.header.Values(h); strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("header %s = %q, apns2 sends %q", h, got, want)
				}
			}
		})
	}

	t.Run("a token that is not hex stays inside the path", func(t *testing.T) {
		n := apnsMessage{messageCommon: messageCommon{token: "a/b?c"}, topic: testTopic, payload: []byte(`{}`)}
		p.send(context.Background(), &n)
		if got := rec.last(t).uri; got != "/3/device/a%2Fb%3Fc" {
			t.Errorf("path %q", got)
		}
	})
	t.Run("answers are classified with reason and Retry-After", func(t *testing.T) {
		n := apnsMessage{messageCommon: messageCommon{token: "gone"}, topic: testTopic, payload: []byte(`{}`)}
		if res := p.send(context.Background(), &n); res.Outcome != DeadToken || res.Reason != apns2.ReasonUnregistered || res.ID == "" {
			t.Errorf("410: %+v", res)
		}
		n = apnsMessage{messageCommon: messageCommon{token: "busy"}, topic: testTopic, payload: []byte(`{}`)}
		if res := p.send(context.Background(), &n); res.Outcome != RetryLater || res.Reason != apns2.ReasonTooManyRequests || res.RetryAfter != 7*time.Second {
			t.Errorf("429: %+v", res)
		}
	})
}

// TestProviderConnectionPools checks that the APNs connection pool refuses a
// server without HTTP/2, as Apple's is, instead of falling back to HTTP/1.1,
// and that both providers' pools ping a silent connection so that one that
// died unnoticed is replaced.
func TestProviderConnectionPools(t *testing.T) {
	rec := &apnsRecorder{}
	srv, kit, caFile := mustTLSPeer(t, rec, false)
	r := mustRegistry(t, []AppConfig{
		{ID: "apple_rn", Kind: KindAPNs, Topic: testTopic, KeyFile: kit.APNsKeyFile, KeyID: kit.APNsKeyID,
			TeamID: kit.APNsTeamID, Environment: EnvDevelopment, Endpoint: srv.URL, CAFile: caFile},
		{ID: "android_rn", Kind: KindFCM, ServiceAccountFile: kit.ServiceAccountFile, Endpoint: srv.URL, CAFile: caFile},
	}, fastOptions(), nil)
	apns := mustApp(t, r, "apple_rn").prov.(*apnsProvider)
	fcm := mustApp(t, r, "android_rn").prov.(*fcmProvider)

	n := apnsMessage{messageCommon: messageCommon{token: "a1b2c3"}, topic: testTopic, payload: []byte(`{"aps":{}}`)}
	if res := apns.send(context.Background(), &n); res.Outcome != RetryLater || !strings.HasPrefix(res.Reason, ReasonTransport) {
		t.Errorf("APNs over HTTP/1.1: %+v, want a transport failure", res)
	}
	rec.mu.Lock()
	if len(rec.reqs) != 0 {
		t.Errorf("an HTTP/1.1 request reached the server: %+v", rec.reqs)
	}
	rec.mu.Unlock()

	if tr := apns.transport; tr.ReadIdleTimeout <= 0 || tr.PingTimeout <= 0 {
		t.Errorf("apns: no health pings on the provider connection (ReadIdleTimeout %v, PingTimeout %v)", tr.ReadIdleTimeout, tr.PingTimeout)
	}
	if tr := fcm.transport; tr.HTTP2 == nil || tr.HTTP2.SendPingTimeout <= 0 || tr.HTTP2.PingTimeout <= 0 {
		t.Errorf("fcm: no health pings on the provider connection: %+v", tr.HTTP2)
	}
	if fcm.transport.Proxy != nil {
		t.Error("fcm: without Options.Proxy the transport must not pick a proxy (it would read the process environment)")
	}
}
