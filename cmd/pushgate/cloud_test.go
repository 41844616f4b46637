package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/tenants/storetest"
)

// rcServer plays a stock Rocket.Chat server talking to its Cloud_Url, with
// the bodies and headers of apps/meteor/app/cloud/server/functions/.
type rcServer struct {
	t   *testing.T
	url string // pushgate, as Cloud_Url and Push → Gateway
}

func (rc *rcServer) do(method, path string, header http.Header, body []byte) (int, http.Header, map[string]any) {
	rc.t.Helper()
	req, err := http.NewRequest(method, rc.url+path, bytes.NewReader(body))
	if err != nil {
		rc.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		rc.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		rc.t.Fatalf("%s %s answered %d with non-JSON %q", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, resp.Header, out
}

// intent is startRegisterWorkspaceSetupWizard: JSON body, ?resent= param.
func (rc *rcServer) intent() map[string]any {
	rc.t.Helper()
	code, _, out := rc.do("POST", "/api/v2/register/workspace/intent?resent=false",
		http.Header{"Content-Type": {"application/json"}}, sample(rc.t, "rocketchat-cloud-intent.json"))
	if code != 200 {
		rc.t.Fatalf("intent = %d %v", code, out)
	}
	return out
}

// poll is getConfirmationPoll: a GET with the device code as ?token=.
func (rc *rcServer) poll(deviceCode string) (int, map[string]any) {
	rc.t.Helper()
	code, _, out := rc.do("GET", "/api/v2/register/workspace/poll?"+url.Values{"token": {deviceCode}}.Encode(), nil, nil)
	return code, out
}

// token is getWorkspaceAccessTokenWithScope's form post.
func (rc *rcServer) token(clientID, secret string) (int, map[string]any) {
	rc.t.Helper()
	form := strings.NewReplacer("{{client_id}}", url.QueryEscape(clientID), "{{client_secret}}", url.QueryEscape(secret)).
		Replace(string(sample(rc.t, "rocketchat-cloud-token.form")))
	code, hdr, out := rc.do("POST", "/api/oauth/token", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, []byte(form))
	if code == 200 && hdr.Get("Cache-Control") != "no-store" {
		rc.t.Errorf("a token answer must not be cached, Cache-Control = %q", hdr.Get("Cache-Control"))
	}
	return code, out
}

// push is sendGatewayPush with getAuthorization's Bearer header.
func (rc *rcServer) push(accessToken string) (int, map[string]any) {
	rc.t.Helper()
	code, _, out := rc.do("POST", "/push/apn/send", http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + accessToken}},
		sample(rc.t, "rocketchat-message.json"))
	return code, out
}

// owner is a person in a browser on the dashboard; cookies are kept by
// hand because the gateway's public URL is https and its cookies Secure.
type owner struct {
	t       *testing.T
	base    string
	cookies map[string]string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (o *owner) request(method, path string, form url.Values) (int, string, string) {
	o.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, o.base+path, body)
	if err != nil {
		o.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range o.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, c := range resp.Cookies() {
		o.cookies[c.Name] = c.Value
	}
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(raw)
}

func (o *owner) csrf(page string) string {
	o.t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		o.t.Fatalf("no CSRF field on the page:\n%s", page)
	}
	return m[1]
}

func mustCloudGateway(t *testing.T) *gatewayUnderTest {
	t.Helper()
	sb, _, appsFile := mustSandbox(t)
	env := map[string]string{
		"PUSHGATE_DATABASE_URL":    storetest.SQLite(t),
		"PUSHGATE_APPS_FILE":       appsFile,
		"PUSHGATE_PUBLIC_URL":      "https://us.gw.example",
		"PUSHGATE_AUTH_CACHE_TTL":  "10ms",
		"PUSHGATE_CLOUD_TOKEN_TTL": "2s",
	}
	mustRun(t, env, "migrate")
	g := &gatewayUnderTest{sb: sb, env: env}
	g.server = mustServe(t, copyEnv(env))
	return g
}

// TestRocketChatCloudRegistration runs the whole registration of a stock
// Rocket.Chat server against pushgate as its Cloud, then its pushes.
func TestRocketChatCloudRegistration(t *testing.T) {
	g := mustCloudGateway(t)
	rc := &rcServer{t: t, url: g.URL}
	ann := &owner{t: t, base: g.URL, cookies: map[string]string{}}

	t.Run("the setup wizard's pre-intent is answered, so it offers the online registration", func(t *testing.T) {
		code, _, out := rc.do("POST", "/api/v2/register/workspace/pre-intent", http.Header{"Content-Type": {"application/json"}},
			sample(t, "rocketchat-cloud-intent.json"))
		if code != 200 {
			t.Fatalf("pre-intent = %d %v", code, out)
		}
	})
	intent := rc.intent()
	deviceCode, _ := intent["device_code"].(string)
	userCode, _ := intent["user_code"].(string)
	verify, _ := intent["verification_url"].(string)
	t.Run("the intent answers the device flow's fields", func(t *testing.T) {
		if len(deviceCode) < 40 || !regexp.MustCompile(`^[B-Z]{4}-[B-Z]{4}$`).MatchString(userCode) ||
			!strings.HasPrefix(verify, "https://us.gw.example/cloud/confirm?user_code=") ||
			intent["interval"] != float64(5) || intent["expires_in"] != float64(900) {
			t.Fatalf("intent = %v", intent)
		}
	})
	firstPoll := time.Now()
	t.Run("a poll before anyone confirmed is pending", func(t *testing.T) {
		if code, out := rc.poll(deviceCode); code != 200 || out["status"] != "authorization_pending" {
			t.Fatalf("poll = %d %v", code, out)
		}
	})
	t.Run("an unknown device code is invalid_grant", func(t *testing.T) {
		if code, out := rc.poll("no-such-device-code"); code != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("poll = %d %v", code, out)
		}
	})
	t.Run("polling faster than the interval is slow_down with a longer interval", func(t *testing.T) {
		other := rc.intent()["device_code"].(string)
		if code, out := rc.poll(other); code != 200 {
			t.Fatalf("first poll = %d %v", code, out)
		}
		code, out := rc.poll(other)
		if code != 400 || out["error"] != "slow_down" || out["interval"] != float64(10) {
			t.Fatalf("second poll = %d %v", code, out)
		}
	})

	// The person opens the verification URL, signs up, comes back and confirms.
	u, err := url.Parse(verify)
	if err != nil {
		t.Fatal(err)
	}
	confirmPath := u.RequestURI()
	var workspaceID string
	t.Run("a visitor of the verification URL is asked to sign in or up and comes back", func(t *testing.T) {
		code, _, page := ann.request("GET", confirmPath, nil)
		if code != 200 || !strings.Contains(page, `href="/signup?next=`) {
			t.Fatalf("confirm page for a visitor = %d\n%s", code, page)
		}
		_, _, signup := ann.request("GET", "/signup?"+url.Values{"next": {confirmPath}}.Encode(), nil)
		terms := regexp.MustCompile(`name="accept_terms" value="([^"]+)"`).FindStringSubmatch(signup)
		if terms == nil || !strings.Contains(signup, `name="next"`) {
			t.Fatalf("sign-up page keeps no next or has no terms:\n%s", signup)
		}
		code, loc, page := ann.request("POST", "/signup", url.Values{"csrf": {ann.csrf(signup)}, "name": {"Example Org"},
			"contact_email": {"ada@example.org"}, "password": {"correct horse battery"}, "accept_terms": {terms[1]}, "next": {confirmPath}})
		if code != 303 || loc != confirmPath {
			t.Fatalf("sign-up = %d to %q\n%s", code, loc, page)
		}
	})
	t.Run("the owner sees which server asks", func(t *testing.T) {
		code, _, page := ann.request("GET", confirmPath, nil)
		for _, want := range []string{"https://chat.example.org", "Example Chat", "Xy7rT2pQ9wKcLm3Ne", userCode} {
			if !strings.Contains(page, want) {
				t.Fatalf("confirm page (%d) does not show %q:\n%s", code, want, page)
			}
		}
		workspaceID = regexp.MustCompile(`ws_[a-z2-7]{20}`).FindString(page)
		if workspaceID == "" {
			t.Fatalf("confirm page names no workspace:\n%s", page)
		}
	})
	t.Run("confirming without accepting the terms is refused next to the box", func(t *testing.T) {
		_, _, page := ann.request("GET", confirmPath, nil)
		code, _, page := ann.request("POST", "/cloud/confirm", url.Values{"csrf": {ann.csrf(page)}, "user_code": {userCode}})
		if code != 400 || !strings.Contains(page, "accept the terms of service") {
			t.Fatalf("confirm without terms = %d\n%s", code, page)
		}
	})
	t.Run("a wrong code is refused next to the field", func(t *testing.T) {
		_, _, page := ann.request("GET", confirmPath, nil)
		code, _, page := ann.request("POST", "/cloud/confirm", url.Values{"csrf": {ann.csrf(page)}, "user_code": {"BBBB-BBBB"}, "accept_terms": {"1"}})
		if code != 400 || !strings.Contains(page, `id="user_code-error"`) {
			t.Fatalf("confirm with a wrong code = %d\n%s", code, page)
		}
	})
	t.Run("the owner confirms the code", func(t *testing.T) {
		_, _, page := ann.request("GET", confirmPath, nil)
		code, _, page := ann.request("POST", "/cloud/confirm", url.Values{"csrf": {ann.csrf(page)}, "user_code": {strings.ToLower(userCode)}, "accept_terms": {"1"}})
		if code != 200 || !strings.Contains(page, "is connected") {
			t.Fatalf("confirm = %d\n%s", code, page)
		}
	})

	// Rocket.Chat polls every interval seconds; the next poll collects the client.
	time.Sleep(time.Until(firstPoll.Add(4100 * time.Millisecond)))
	var clientID, secret string
	t.Run("the next poll hands over the client, once", func(t *testing.T) {
		code, out := rc.poll(deviceCode)
		p, _ := out["payload"].(map[string]any)
		if code != 200 || out["successful"] != true || p == nil {
			t.Fatalf("poll = %d %v", code, out)
		}
		clientID, _ = p["client_id"].(string)
		secret, _ = p["client_secret"].(string)
		if p["workspaceId"] != workspaceID || clientID == "" || len(secret) < 40 || p["client_secret_expires_at"] != float64(0) ||
			p["registration_client_uri"] != "https://us.gw.example/api/v2/workspaces/"+workspaceID || p["client_name"] != "Example Chat" {
			t.Fatalf("payload = %v", p)
		}
		if code, out := rc.poll(deviceCode); code != 400 || out["error"] != "expired_token" {
			t.Fatalf("a second collection = %d %v", code, out)
		}
	})

	var access string
	t.Run("the client credentials get an access token", func(t *testing.T) {
		code, out := rc.token(clientID, secret)
		access, _ = out["access_token"].(string)
		if code != 200 || !strings.HasPrefix(access, "pgc_us_") || out["expires_in"] != float64(2) || out["token_type"] != "Bearer" ||
			!strings.Contains(out["scope"].(string), "workspace:push:send") {
			t.Fatalf("token = %d %v", code, out)
		}
	})
	t.Run("the sync calls after registering answer well-formed bodies", func(t *testing.T) {
		bearer := http.Header{"Authorization": {"Bearer " + access}, "Content-Type": {"application/json"}}
		body := sample(t, "rocketchat-cloud-intent.json")
		if code, _, out := rc.do("POST", "/api/v2/workspaces/"+workspaceID+"/sync", bearer, body); code != 200 || out["workspaceId"] != workspaceID || out["license"] != "" {
			t.Fatalf("sync = %d %v", code, out)
		}
		code, _, out := rc.do("POST", "/api/v3/comms/workspace", bearer, body)
		a, _ := out["announcements"].(map[string]any)
		if code != 200 || a == nil || len(a["create"].([]any)) != 0 {
			t.Fatalf("comms = %d %v", code, out)
		}
		if code, _, out := rc.do("POST", "/api/v2/workspaces/ws_aaaaaaaaaaaaaaaaaaaa/sync", bearer, body); code != 403 {
			t.Fatalf("sync of another workspace = %d %v", code, out)
		}
	})
	t.Run("a push with the access token is delivered through the sandbox", func(t *testing.T) {
		if code, out := rc.push(access); code != 200 {
			t.Fatalf("push = %d %v", code, out)
		}
		if got := g.lastPayload(t, "apns"); got.Topic != rcTopic {
			t.Fatalf("APNs got topic %q", got.Topic)
		}
	})
	t.Run("the access token cannot use the workspace API", func(t *testing.T) {
		if code, _, out := rc.do("POST", "/api/v1/workspace/token", http.Header{"Authorization": {"Bearer " + access}}, nil); code != 403 {
			t.Fatalf("rotate with an access token = %d %v", code, out)
		}
	})
	t.Run("an expired access token is refused and a new one works", func(t *testing.T) {
		time.Sleep(2300 * time.Millisecond) // 2s and a twentieth's leeway for clock skew
		if code, out := rc.push(access); code != 401 {
			t.Fatalf("push with an expired token = %d %v", code, out)
		}
		code, out := rc.token(clientID, secret)
		if code != 200 || out["access_token"] == access {
			t.Fatalf("new token = %d %v", code, out)
		}
		access = out["access_token"].(string)
		if code, out := rc.push(access); code != 200 {
			t.Fatalf("push with the new token = %d %v", code, out)
		}
	})
	t.Run("a wrong secret is the ordinary invalid_client", func(t *testing.T) {
		if code, out := rc.token(clientID, secret+"x"); code != 401 || out["error"] != "invalid_client" {
			t.Fatalf("token with a wrong secret = %d %v", code, out)
		}
		if code, out := rc.token("rcc_nosuchclient", secret); code != 401 || out["error"] != "invalid_client" {
			t.Fatalf("token of an unknown client = %d %v", code, out)
		}
	})

	var manual map[string]any
	t.Run("the owner's manual registration token carries a working client", func(t *testing.T) {
		_, _, page := ann.request("GET", "/cloud", nil)
		code, _, page := ann.request("POST", "/cloud/manual", url.Values{"csrf": {ann.csrf(page)}, "name": {"Backup server"}})
		m := regexp.MustCompile(`id="manual-token"[^>]*>([A-Za-z0-9+/=]+)<`).FindStringSubmatch(page)
		if code != 200 || m == nil {
			t.Fatalf("manual token page = %d\n%s", code, page)
		}
		raw, err := base64.StdEncoding.DecodeString(m[1])
		if err != nil || json.Unmarshal(raw, &manual) != nil {
			t.Fatalf("the token is not base64 JSON: %q", m[1])
		}
		lic, _ := manual["licenseData"].(map[string]any)
		if manual["workspaceId"] != workspaceID || manual["client_name"] != "Backup server" || lic == nil {
			t.Fatalf("cloudBlob = %v", manual)
		}
		code, out := rc.token(manual["client_id"].(string), manual["client_secret"].(string))
		if code != 200 {
			t.Fatalf("token of the manual client = %d %v", code, out)
		}
		if code, out := rc.push(out["access_token"].(string)); code != 200 {
			t.Fatalf("push of the manual client = %d %v", code, out)
		}
	})

	t.Run("a new secret works at once and the old one for a day more", func(t *testing.T) {
		_, _, page := ann.request("GET", "/cloud", nil)
		code, _, page := ann.request("POST", "/cloud/rotate", url.Values{"csrf": {ann.csrf(page)}, "client_id": {manual["client_id"].(string)}})
		m := regexp.MustCompile(`id="manual-token"[^>]*>([A-Za-z0-9+/=]+)<`).FindStringSubmatch(page)
		if code != 200 || m == nil {
			t.Fatalf("rotate = %d\n%s", code, page)
		}
		raw, _ := base64.StdEncoding.DecodeString(m[1])
		var rotated map[string]any
		if json.Unmarshal(raw, &rotated) != nil || rotated["client_id"] != manual["client_id"] || rotated["client_secret"] == manual["client_secret"] {
			t.Fatalf("rotated cloudBlob = %s", raw)
		}
		for _, secret := range []any{rotated["client_secret"], manual["client_secret"]} {
			if code, out := rc.token(manual["client_id"].(string), secret.(string)); code != 200 {
				t.Fatalf("token after rotation = %d %v", code, out)
			}
		}
	})

	t.Run("a revoked client gets the answer that drops its registration", func(t *testing.T) {
		code, _, page := ann.request("GET", "/cloud", nil)
		if code != 200 || !strings.Contains(page, clientID) || !strings.Contains(page, "https://chat.example.org") {
			t.Fatalf("cloud page = %d\n%s", code, page)
		}
		code, loc, _ := ann.request("POST", "/cloud/revoke", url.Values{"csrf": {ann.csrf(page)}, "client_id": {clientID}})
		if code != 303 || loc != "/cloud?revoked=1" {
			t.Fatalf("revoke = %d to %q", code, loc)
		}
		if code, out := rc.push(access); code != 401 {
			t.Fatalf("push after revocation = %d %v", code, out)
		}
		if code, out := rc.token(clientID, secret); code != 401 || out["error"] != "oauth_invalid_client_credentials" {
			t.Fatalf("token after revocation = %d %v", code, out)
		}
		if code, out := rc.token(clientID, "not-the-secret"); out["error"] != "invalid_client" {
			t.Fatalf("a revoked client with a wrong secret = %d %v, want the ordinary error", code, out)
		}
		if code, out := rc.token(manual["client_id"].(string), manual["client_secret"].(string)); code != 200 {
			t.Fatalf("the other client after revoking one = %d %v", code, out)
		}
	})
	t.Run("an operator lists and revokes a workspace's clients from the CLI", func(t *testing.T) {
		manualID := manual["client_id"].(string)
		out := mustRun(t, g.env, "workspace", "cloud-clients", workspaceID, "--revoke", manualID, "--json")
		var clients []map[string]any
		if err := json.Unmarshal([]byte(out), &clients); err != nil || len(clients) != 2 {
			t.Fatalf("cloud-clients printed %q", out)
		}
		for _, c := range clients {
			if c["revoked_at"] == nil || c["client_id"] == manualID && !strings.HasPrefix(c["revoked_by"].(string), "operator:cli") {
				t.Fatalf("client after the operator's revocation = %v", c)
			}
		}
		if code, out := rc.token(manualID, manual["client_secret"].(string)); code != 401 || out["error"] != "oauth_invalid_client_credentials" {
			t.Fatalf("token after the operator's revocation = %d %v", code, out)
		}
	})
}
