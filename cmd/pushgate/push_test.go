package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/pushgate/pushgate/gateway/sandbox"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/storetest"
)

// Topics of the test apps: the Mattermost-style app and Rocket.Chat's official one (from the samples).
const (
	testTopic   = "app.pushgate.test"
	rcTopic     = "chat.rocket.ios"
	testProject = "pushgate-test"
)

// gatewayUnderTest is a pushgate started through run with its own sandbox providers.
type gatewayUnderTest struct {
	*server
	sb  *sandbox.Server
	env map[string]string
	// token and id of a workspace that accepted the terms.
	token, id string
}

// mustSandbox starts sandbox providers that accept only the keys of a fresh dev kit.
func mustSandbox(t *testing.T) (*sandbox.Server, sandbox.DevKit, string) {
	t.Helper()
	dir := t.TempDir()
	kit, err := sandbox.EnsureDevKit(dir, "", testProject)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := sandbox.New(sandbox.Config{
		APNsKeys:    map[string]*ecdsa.PublicKey{kit.APNsKeyID: kit.APNsKey},
		APNsTopics:  []string{testTopic, rcTopic},
		FCMAccounts: map[string]*rsa.PublicKey{kit.ClientEmail: kit.FCMKey},
		FCMProjects: []string{testProject},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Shutdown(context.Background()) })
	if kit, err = sandbox.EnsureDevKit(dir, sb.URL()+"/token", testProject); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, sb.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	apps := fmt.Sprintf(`
- {id: apple, kind: apns, topic: %[1]s, key_file: %[2]s, key_id: %[3]s, team_id: %[4]s, environment: development, endpoint: %[5]s, ca_file: %[6]s}
- {id: apple_rn, kind: apns, topic: %[1]s, key_file: %[2]s, key_id: %[3]s, team_id: %[4]s, environment: development, endpoint: %[5]s, ca_file: %[6]s}
- {id: rocketchat_ios, kind: apns, topic: %[7]s, key_file: %[2]s, key_id: %[3]s, team_id: %[4]s, environment: production, endpoint: %[5]s, ca_file: %[6]s}
- {id: android, kind: fcm, service_account_file: %[8]s, endpoint: %[5]s, ca_file: %[6]s}
- {id: android_rn, kind: fcm, service_account_file: %[8]s, endpoint: %[5]s, ca_file: %[6]s}
`, testTopic, kit.APNsKeyFile, kit.APNsKeyID, kit.APNsTeamID, sb.URL(), caFile, rcTopic, kit.ServiceAccountFile)
	appsFile := filepath.Join(dir, "apps.yaml")
	if err := os.WriteFile(appsFile, []byte(apps), 0o600); err != nil {
		t.Fatal(err)
	}
	return sb, kit, appsFile
}

// mustGateway starts pushgate on dbURL (and Redis when redisURL is set) with
// a workspace that accepted the terms.
func mustGateway(t *testing.T, dbURL, redisURL string) *gatewayUnderTest {
	t.Helper()
	sb, _, appsFile := mustSandbox(t)
	env := map[string]string{
		"PUSHGATE_DATABASE_URL":   dbURL,
		"PUSHGATE_APPS_FILE":      appsFile,
		"PUSHGATE_PUBLIC_URL":     "https://us.gw.example",
		"PUSHGATE_REGION_URLS":    "us=https://us.gw.example,de=https://de.gw.example",
		"PUSHGATE_AUTH_CACHE_TTL": "10ms",
		"PUSHGATE_LOG_LEVEL":      "debug",
	}
	if redisURL != "" {
		env["PUSHGATE_REDIS_URL"] = redisURL
	}
	mustRun(t, env, "migrate")
	ws := mustRunJSON(t, env, "workspace", "create", "--name", "Test", "--email", "ops@test.example", "--accept-terms", "--json")
	g := &gatewayUnderTest{sb: sb, env: env, token: ws["token"].(string), id: ws["id"].(string)}
	g.server = mustServe(t, copyEnv(env))
	return g
}

func copyEnv(env map[string]string) map[string]string {
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = v
	}
	return out
}

// newWorkspace creates another workspace through the CLI and returns its id and token.
func (g *gatewayUnderTest) newWorkspace(t *testing.T, accept bool, args ...string) (string, string) {
	t.Helper()
	cmd := []string{"workspace", "create", "--name", "Another", "--email", "ops@another.example", "--json"}
	if accept {
		cmd = append(cmd, "--accept-terms")
	}
	ws := mustRunJSON(t, g.env, append(cmd, args...)...)
	return ws["id"].(string), ws["token"].(string)
}

// post sends body to path the way the chat servers do: no Content-Type for
// Mattermost, a Bearer token when bearer is set.
func (g *gatewayUnderTest) post(t *testing.T, path, bearer string, body []byte) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", g.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("POST %s answered %d with non-JSON %q", path, resp.StatusCode, raw)
	}
	return resp.StatusCode, resp.Header, out
}

func mmPush(platform, device string) *model.PushNotification {
	return &model.PushNotification{
		AckId: model.NewId(), Platform: platform, ServerId: "aoej8izzfffr9e67d6uz3g387h", DeviceId: device,
		PostId: model.NewId(), Category: model.CategoryCanReply, Message: "alice: the build is green", Badge: 3,
		TeamId: model.NewId(), ChannelId: model.NewId(), ChannelName: "town-square", Type: model.PushTypeMessage,
		SenderId: model.NewId(), SenderName: "alice", Version: model.PushMessageV2, IsCRTEnabled: false,
		Signature: "eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mmSend posts a Mattermost push exactly as a stock Mattermost server does and decodes the PushResponse.
func (g *gatewayUnderTest) mmSend(t *testing.T, token string, msg any) (int, http.Header, model.PushResponse) {
	t.Helper()
	body, ok := msg.([]byte)
	if !ok {
		body = mustJSON(t, msg)
	}
	code, hdr, out := g.post(t, "/mm/"+token+"/api/v1/send_push", "", body)
	resp := model.PushResponse{}
	for k, v := range out {
		resp[k], _ = v.(string)
	}
	return code, hdr, resp
}

func (g *gatewayUnderTest) lastPayload(t *testing.T, kind string) sandbox.Received {
	t.Helper()
	got := g.sb.LastPayloads(kind, 1)
	if len(got) != 1 {
		t.Fatalf("the sandbox received no %s payload", kind)
	}
	return got[0]
}

func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("payload is not JSON: %q", b)
	}
	return out
}

func TestMattermostProtocol(t *testing.T) {
	g := mustGateway(t, storetest.SQLite(t), "")

	t.Run("an iOS message is delivered with what the app reads", func(t *testing.T) {
		msg := mmPush("apple_rn-v2", "9f8e7d6c5b4a39281706f5e4d3c2b1a0")
		code, _, resp := g.mmSend(t, g.token, msg)
		if code != 200 || resp[model.PushStatus] != model.PushStatusOk {
			t.Fatalf("answer = %d %v", code, resp)
		}
		got := g.lastPayload(t, "apns")
		body := decodeJSON(t, got.Body)
		aps := body["aps"].(map[string]any)
		if got.Topic != testTopic || got.Token != msg.DeviceId || aps["alert"].(map[string]any)["body"] != msg.Message ||
			body["ack_id"] != msg.AckId || body["post_id"] != msg.PostId || body["signature"] != msg.Signature {
			t.Fatalf("APNs payload = %s (topic %s)", got.Body, got.Topic)
		}
	})
	t.Run("an Android message is delivered as FCM data", func(t *testing.T) {
		msg := mmPush("android_rn", "fMx2:APA91bEk2xYzq")
		code, _, resp := g.mmSend(t, g.token, msg)
		if code != 200 || resp[model.PushStatus] != model.PushStatusOk {
			t.Fatalf("answer = %d %v", code, resp)
		}
		body := decodeJSON(t, g.lastPayload(t, "fcm").Body)
		data := body["message"].(map[string]any)["data"].(map[string]any)
		if data["message"] != msg.Message || data["ack_id"] != msg.AckId || data["channel_name"] != "town-square" {
			t.Fatalf("FCM message = %v", body)
		}
	})
	t.Run("an id-loaded push carries mutable-content and id_loaded", func(t *testing.T) {
		msg := mmPush("apple_rn", "aabbccdd")
		msg.IsIdLoaded = true
		msg.Message = "You've received a new message."
		if code, _, resp := g.mmSend(t, g.token, msg); code != 200 || resp[model.PushStatus] != model.PushStatusOk {
			t.Fatalf("answer = %d %v", code, resp)
		}
		body := decodeJSON(t, g.lastPayload(t, "apns").Body)
		if body["aps"].(map[string]any)["mutable-content"] != float64(1) || body["id_loaded"] != true {
			t.Fatalf("id-loaded payload = %v", body)
		}
	})
	t.Run("a voip push goes to the voip topic", func(t *testing.T) {
		raw := mustJSON(t, mmPush("apple_rn", "voipdevice"))
		raw = bytes.Replace(raw, []byte(`"type":"message"`), []byte(`"type":"message","transport":"voip"`), 1)
		if code, _, resp := g.mmSend(t, g.token, raw); code != 200 || resp[model.PushStatus] != model.PushStatusOk {
			t.Fatalf("answer = %d %v", code, resp)
		}
		if got := g.lastPayload(t, "apns"); got.Topic != testTopic+".voip" || got.PushType != "voip" {
			t.Fatalf("voip push went to topic %q type %q", got.Topic, got.PushType)
		}
	})
	t.Run("unknown fields from newer servers are accepted", func(t *testing.T) {
		raw := bytes.Replace(mustJSON(t, mmPush("android", "fcmtoken1")), []byte(`{`), []byte(`{"future_field":{"x":[1,2]},`), 1)
		if code, _, resp := g.mmSend(t, g.token, raw); code != 200 || resp[model.PushStatus] != model.PushStatusOk {
			t.Fatalf("answer = %d %v", code, resp)
		}
	})
	t.Run("the sample bodies of real servers are delivered", func(t *testing.T) {
		for _, f := range []string{"mattermost-message.json", "mattermost-id-only.json"} {
			raw := sample(t, f)
			if code, _, resp := g.mmSend(t, g.token, raw); code != 200 || resp[model.PushStatus] != model.PushStatusOk {
				t.Fatalf("%s: answer = %d %v", f, code, resp)
			}
		}
	})

	for _, platform := range []string{"apple_rn", "android_rn"} {
		rows := []struct {
			name, device, status string
		}{
			{"an unregistered token gets REMOVE", "unregistered-1", model.PushStatusRemove},
			{"a bad device token gets REMOVE", "baddevice-1", model.PushStatusRemove},
			{"an unavailable provider gets FAIL", "unavailable-1", model.PushStatusFail},
			{"a throttling provider gets FAIL", "toomany-1", model.PushStatusFail},
		}
		for _, row := range rows {
			t.Run(platform+": "+row.name, func(t *testing.T) {
				code, _, resp := g.mmSend(t, g.token, mmPush(platform, row.device))
				if code != 200 || resp[model.PushStatus] != row.status {
					t.Fatalf("answer = %d %v, want 200 %s", code, resp, row.status)
				}
				if row.status == model.PushStatusFail && resp[model.PushStatusErrorMsg] == "" {
					t.Fatal("FAIL without an error message")
				}
			})
		}
	}

	t.Run("the Bearer variant works", func(t *testing.T) {
		code, _, out := g.post(t, "/api/v1/send_push", g.token, mustJSON(t, mmPush("apple", "bearerdevice")))
		if code != 200 || out["status"] != "OK" {
			t.Fatalf("answer = %d %v", code, out)
		}
	})
	t.Run("acks are accepted on both variants", func(t *testing.T) {
		ack := &model.PushNotificationAck{Id: model.NewId(), ClientReceivedAt: time.Now().UnixMilli(), ClientPlatform: "ios",
			NotificationType: model.PushTypeMessage, PostId: model.NewId()}
		if code, _, out := g.post(t, "/mm/"+g.token+"/api/v1/ack", "", mustJSON(t, ack)); code != 200 || out["status"] != "OK" {
			t.Fatalf("ack = %d %v", code, out)
		}
		if code, _, out := g.post(t, "/api/v1/ack", g.token, mustJSON(t, ack)); code != 200 || out["status"] != "OK" {
			t.Fatalf("bearer ack = %d %v", code, out)
		}
	})

	t.Run("a duplicate push reaches the provider once and counts once", func(t *testing.T) {
		before := g.sb.Stats().APNs.Accepted
		usedBefore := g.usage(t)["used"].(float64)
		msg := mmPush("apple_rn", "dupdevice")
		for range 3 {
			if code, _, resp := g.mmSend(t, g.token, msg); code != 200 || resp[model.PushStatus] != model.PushStatusOk {
				t.Fatalf("answer = %d %v", code, resp)
			}
		}
		if got := g.sb.Stats().APNs.Accepted - before; got != 1 {
			t.Fatalf("3 identical pushes reached APNs %d times, want 1", got)
		}
		if used := g.usage(t)["used"].(float64); used != usedBefore+1 {
			t.Fatalf("3 identical pushes counted %v units, want 1", used-usedBefore)
		}
	})

	bad := []struct {
		name   string
		token  string
		body   []byte
		status int
		want   string
	}{
		{"a missing token is 401", "nope", mustJSON(t, mmPush("apple", "d")), 401, "token"},
		{"an unknown token is 401", mustToken(t, "us"), mustJSON(t, mmPush("apple", "d")), 401, "unknown"},
		{"a token of another region is 421 naming its URL", mustToken(t, "de"), mustJSON(t, mmPush("apple", "d")), 421, "https://de.gw.example"},
		{"malformed JSON is 400", g.token, []byte(`{"platform":`), 400, "JSON"},
		{"a missing device_id is 400 naming it", g.token, []byte(`{"platform":"apple","server_id":"s"}`), 400, "device_id"},
		{"a missing server_id is 400 naming it", g.token, []byte(`{"platform":"apple","device_id":"d"}`), 400, "server_id"},
		{"an unknown platform is 400 naming it", g.token, []byte(`{"platform":"windows","server_id":"s","device_id":"d"}`), 400, "platform"},
		{"a badge of the wrong type is 400 naming it", g.token, []byte(`{"platform":"apple","server_id":"s","device_id":"d","badge":"x"}`), 400, "badge"},
		{"an overlong device_id is 400", g.token, []byte(`{"platform":"apple","server_id":"s","device_id":"` + strings.Repeat("a", 5000) + `"}`), 400, "device_id"},
		{"a deeply nested body is 400", g.token, []byte(`{"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`), 400, "nests"},
		{"an oversized body is 413", g.token, []byte(`{"message":"` + strings.Repeat("a", 70<<10) + `"}`), 413, "limit"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			code, _, resp := g.mmSend(t, tt.token, tt.body)
			if code != tt.status || resp[model.PushStatus] != model.PushStatusFail || !strings.Contains(resp[model.PushStatusErrorMsg], tt.want) {
				t.Fatalf("answer = %d %v, want %d FAIL mentioning %q", code, resp, tt.status, tt.want)
			}
		})
	}

	t.Run("a workspace without consent gets 403 naming the terms", func(t *testing.T) {
		_, tok := g.newWorkspace(t, false)
		code, _, resp := g.mmSend(t, tok, mmPush("apple", "d1"))
		if code != 403 || !strings.Contains(resp[model.PushStatusErrorMsg], "terms") || !strings.Contains(resp[model.PushStatusErrorMsg], "/api/v1/workspace/consent") {
			t.Fatalf("answer = %d %v", code, resp)
		}
	})
	t.Run("a suspended workspace gets 403 saying so", func(t *testing.T) {
		id, tok := g.newWorkspace(t, true)
		mustRun(t, g.env, "workspace", "suspend", id)
		time.Sleep(20 * time.Millisecond) // the auth cache TTL of this test
		code, _, resp := g.mmSend(t, tok, mmPush("apple", "d1"))
		if code != 403 || !strings.Contains(resp[model.PushStatusErrorMsg], "suspended") {
			t.Fatalf("answer = %d %v", code, resp)
		}
	})
	t.Run("a push from another server than the bound one is refused", func(t *testing.T) {
		_, tok := g.newWorkspace(t, true, "--server-id", "boundserver")
		code, _, resp := g.mmSend(t, tok, mmPush("apple", "d1"))
		if code != 403 || !strings.Contains(resp[model.PushStatusErrorMsg], "boundserver") {
			t.Fatalf("answer = %d %v", code, resp)
		}
	})
	t.Run("an exhausted quota is 429 with Retry-After and the upgrade URL", func(t *testing.T) {
		id, tok := g.newWorkspace(t, true)
		mustRun(t, g.env, "workspace", "set-plan", id, "enterprise", "--limit", "2")
		time.Sleep(20 * time.Millisecond)
		for i := range 2 {
			if code, _, resp := g.mmSend(t, tok, mmPush("android", fmt.Sprintf("q%d", i))); code != 200 || resp[model.PushStatus] != model.PushStatusOk {
				t.Fatalf("push %d within the limit = %d %v", i, code, resp)
			}
		}
		before := g.sb.Stats().FCM.Received
		code, hdr, resp := g.mmSend(t, tok, mmPush("android", "q3"))
		if code != 429 || hdr.Get("Retry-After") == "" || !strings.Contains(resp[model.PushStatusErrorMsg], "monthly quota") ||
			!strings.Contains(resp[model.PushStatusErrorMsg], "upgrade") {
			t.Fatalf("answer = %d %v (Retry-After %q)", code, resp, hdr.Get("Retry-After"))
		}
		if g.sb.Stats().FCM.Received != before {
			t.Fatal("an over-quota push reached the provider")
		}
	})
	t.Run("tokens never reach the log in full", func(t *testing.T) {
		if strings.Contains(g.stderr.String(), g.token) {
			t.Fatal("a workspace token is in the log")
		}
	})
}

// mustToken returns a well-formed token of region that no workspace holds.
func mustToken(t *testing.T, region string) string {
	t.Helper()
	tok, err := tenants.NewToken(region)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (g *gatewayUnderTest) usage(t *testing.T) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", g.URL+"/api/v1/workspace/usage", nil)
	req.Header.Set("Authorization", "Bearer "+g.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("usage = %d %v", resp.StatusCode, err)
	}
	return out
}

// rcBody builds a Rocket.Chat gateway body like the server's sendGatewayPush.
func rcBody(t *testing.T, token, topic, messageID string) []byte {
	t.Helper()
	return mustJSON(t, map[string]any{
		"token": token,
		"options": map[string]any{
			"createdAt": "2026-11-21T21:01:05.623Z", "createdBy": "<SERVER>", "sent": false, "sending": 0, "from": "push",
			"title": "general", "text": "bob: deploy at 5?", "userId": "hG7fq2ZbJH4kP", "badge": 2, "sound": "default",
			"notId": -1398311196, "apn": map[string]any{"category": "MESSAGE"},
			"gcm": map[string]any{"style": "inbox", "image": "https://chat.example.org/images/logo/android-chrome-192x192.png"},
			"payload": map[string]any{"host": "https://chat.example.org/", "messageId": messageID, "notificationType": "message",
				"rid": "GENERAL", "sender": map[string]any{"_id": "u1", "username": "bob", "name": "Bob"}, "senderName": "bob",
				"type": "c", "name": "general", "messageType": ""},
			"topic": topic, "uniqueId": "Xy7rT2pQ9wKcLm3Ne", "somethingNew": true,
		},
	})
}

func sample(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "samples", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestRocketChatProtocol(t *testing.T) {
	g := mustGateway(t, storetest.SQLite(t), "")

	t.Run("an iOS message is delivered with what the app reads", func(t *testing.T) {
		code, _, out := g.post(t, "/push/apn/send", g.token, sample(t, "rocketchat-message.json"))
		if code != 200 {
			t.Fatalf("answer = %d %v", code, out)
		}
		got := g.lastPayload(t, "apns")
		body := decodeJSON(t, got.Body)
		aps := body["aps"].(map[string]any)
		alert := aps["alert"].(map[string]any)
		ejson, _ := body["ejson"].(string)
		if got.Topic != rcTopic || alert["title"] != "general" || alert["body"] != "bob: deploy at 5?" ||
			aps["mutable-content"] != float64(1) || !strings.Contains(ejson, `"messageId":"Lm7xw2"`) {
			t.Fatalf("APNs payload = %s", got.Body)
		}
	})
	t.Run("an Android message is delivered with title, message and ejson", func(t *testing.T) {
		code, _, out := g.post(t, "/push/gcm/send", g.token, rcBody(t, "fcm-device-1", "", "m-android"))
		if code != 200 {
			t.Fatalf("answer = %d %v", code, out)
		}
		data := decodeJSON(t, g.lastPayload(t, "fcm").Body)["message"].(map[string]any)["data"].(map[string]any)
		if data["title"] != "general" || data["message"] != "bob: deploy at 5?" || !strings.Contains(data["ejson"].(string), "m-android") ||
			data["notId"] != "-1398311196" {
			t.Fatalf("FCM data = %v", data)
		}
	})
	t.Run("the admin test push without payload is delivered on both", func(t *testing.T) {
		test := sample(t, "rocketchat-test-push.json")
		if code, _, out := g.post(t, "/push/gcm/send", g.token, test); code != 200 {
			t.Fatalf("gcm test push = %d %v", code, out)
		}
		ios := bytes.Replace(test, []byte(`"uniqueId"`), []byte(`"topic":"`+rcTopic+`","uniqueId"`), 1)
		if code, _, out := g.post(t, "/push/apn/send", g.token, ios); code != 200 {
			t.Fatalf("apn test push = %d %v", code, out)
		}
	})
	t.Run("a voip topic sends a voip push", func(t *testing.T) {
		if code, _, out := g.post(t, "/push/apn/send", g.token, rcBody(t, "voipdev", rcTopic+".voip", "m-voip")); code != 200 {
			t.Fatalf("answer = %d %v", code, out)
		}
		if got := g.lastPayload(t, "apns"); got.Topic != rcTopic+".voip" || got.PushType != "voip" {
			t.Fatalf("voip push went to %q type %q", got.Topic, got.PushType)
		}
	})

	for _, side := range []struct{ path, topic string }{{"/push/apn/send", rcTopic}, {"/push/gcm/send", ""}} {
		rows := []struct {
			name, token string
			status      int
		}{
			{"an unregistered token is 406", "unregistered-rc", 406},
			{"a bad device token is 406", "baddevice-rc", 406},
			{"an unavailable provider is 503", "unavailable-rc", 503},
			{"a throttling provider is 429", "toomany-rc", 429},
		}
		for _, row := range rows {
			t.Run(side.path+": "+row.name, func(t *testing.T) {
				code, _, out := g.post(t, side.path, g.token, rcBody(t, row.token, side.topic, "m-"+row.token+side.path))
				if code != row.status || out["status"] != float64(row.status) || out["code"] == nil || out["error"] == "" {
					t.Fatalf("answer = %d %v, want %d with {code,error,status}", code, out, row.status)
				}
			})
		}
	}

	t.Run("a retried push is delivered once and counted once", func(t *testing.T) {
		before := g.sb.Stats().FCM.Accepted
		usedBefore := g.usage(t)["used"].(float64)
		body := rcBody(t, "fcm-dup", "", "m-dup-1")
		for range 3 {
			if code, _, out := g.post(t, "/push/gcm/send", g.token, body); code != 200 {
				t.Fatalf("answer = %d %v", code, out)
			}
		}
		if got := g.sb.Stats().FCM.Accepted - before; got != 1 {
			t.Fatalf("3 identical pushes reached FCM %d times, want 1", got)
		}
		if used := g.usage(t)["used"].(float64); used != usedBefore+1 {
			t.Fatalf("3 identical pushes counted %v units, want 1", used-usedBefore)
		}
	})
	t.Run("a push retried after a transient failure costs one unit", func(t *testing.T) {
		usedBefore := g.usage(t)["used"].(float64)
		body := rcBody(t, "unavailable-retry", "", "m-retry-1")
		for range 2 {
			if code, _, _ := g.post(t, "/push/gcm/send", g.token, body); code != 503 {
				t.Fatalf("answer = %d, want 503", code)
			}
		}
		if used := g.usage(t)["used"].(float64); used != usedBefore+1 {
			t.Fatalf("a retried push counted %v units, want 1", used-usedBefore)
		}
	})
	t.Run("test pushes without a messageId are never suppressed", func(t *testing.T) {
		before := g.sb.Stats().FCM.Accepted
		for range 2 {
			if code, _, _ := g.post(t, "/push/gcm/send", g.token, sample(t, "rocketchat-test-push.json")); code != 200 {
				t.Fatalf("answer = %d", code)
			}
		}
		if got := g.sb.Stats().FCM.Accepted - before; got != 2 {
			t.Fatalf("2 test pushes reached FCM %d times, want 2", got)
		}
	})

	bad := []struct {
		name   string
		path   string
		token  string
		body   []byte
		status int
		want   string
	}{
		{"no bearer token is 401", "/push/gcm/send", "", rcBody(t, "d", "", "x"), 401, "Bearer"},
		{"an unknown token is 401", "/push/gcm/send", mustToken(t, "us"), rcBody(t, "d", "", "x"), 401, "unknown"},
		{"a token of another region is 421 naming its URL", "/push/gcm/send", mustToken(t, "de"), rcBody(t, "d", "", "x"), 421, "https://de.gw.example"},
		{"an unknown topic is 422", "/push/apn/send", g.token, rcBody(t, "d", "com.example.other", "x"), 422, "com.example.other"},
		{"a missing topic is 422", "/push/apn/send", g.token, rcBody(t, "d", "", "x"), 422, "topic"},
		{"a missing device token is 422", "/push/gcm/send", g.token, []byte(`{"options":{"text":"x"}}`), 422, "token"},
		{"malformed JSON is 422", "/push/gcm/send", g.token, []byte(`{"token":`), 422, "JSON"},
		{"a badge of the wrong type is 422", "/push/gcm/send", g.token, []byte(`{"token":"d","options":{"badge":"x"}}`), 422, "badge"},
		{"an oversized body is 422", "/push/gcm/send", g.token, []byte(`{"token":"` + strings.Repeat("a", 70<<10) + `"}`), 422, "limit"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			code, _, out := g.post(t, tt.path, tt.token, tt.body)
			msg, _ := out["error"].(string)
			if code != tt.status || out["status"] != float64(tt.status) || out["code"] == nil || !strings.Contains(msg, tt.want) {
				t.Fatalf("answer = %d %v, want %d mentioning %q", code, out, tt.status, tt.want)
			}
		})
	}

	t.Run("a workspace without consent gets 422 naming the terms", func(t *testing.T) {
		_, tok := g.newWorkspace(t, false)
		code, _, out := g.post(t, "/push/gcm/send", tok, rcBody(t, "d", "", "x"))
		if code != 422 || !strings.Contains(out["error"].(string), "terms") {
			t.Fatalf("answer = %d %v", code, out)
		}
	})
	t.Run("a suspended workspace gets 422 saying so", func(t *testing.T) {
		id, tok := g.newWorkspace(t, true)
		mustRun(t, g.env, "workspace", "suspend", id)
		time.Sleep(20 * time.Millisecond)
		code, _, out := g.post(t, "/push/gcm/send", tok, rcBody(t, "d", "", "x"))
		if code != 422 || !strings.Contains(out["error"].(string), "suspended") {
			t.Fatalf("answer = %d %v", code, out)
		}
	})
	t.Run("an exhausted quota is 422 so the server does not retry", func(t *testing.T) {
		id, tok := g.newWorkspace(t, true)
		mustRun(t, g.env, "workspace", "set-plan", id, "enterprise", "--limit", "1")
		time.Sleep(20 * time.Millisecond)
		if code, _, out := g.post(t, "/push/gcm/send", tok, rcBody(t, "d", "", "q1")); code != 200 {
			t.Fatalf("push within the limit = %d %v", code, out)
		}
		code, _, out := g.post(t, "/push/gcm/send", tok, rcBody(t, "d", "", "q2"))
		if code != 422 || !strings.Contains(out["error"].(string), "monthly quota") {
			t.Fatalf("answer = %d %v", code, out)
		}
	})
	t.Run("id_only strips content before it leaves", func(t *testing.T) {
		id, tok := g.newWorkspace(t, true)
		req, _ := http.NewRequest("PATCH", g.URL+"/api/v1/workspace", strings.NewReader(`{"privacy":"id_only"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
			t.Fatalf("PATCH privacy: %v", err)
		}
		_ = id
		if code, _, out := g.post(t, "/push/gcm/send", tok, rcBody(t, "d-private", "", "m-private")); code != 200 {
			t.Fatalf("answer = %d %v", code, out)
		}
		payload := string(g.lastPayload(t, "fcm").Body)
		for _, secret := range []string{"deploy at 5", "bob", "Bob", "general"} {
			if strings.Contains(payload, secret) {
				t.Fatalf("id_only push still carries %q: %s", secret, payload)
			}
		}
		if !strings.Contains(payload, "message-id-only") || !strings.Contains(payload, "m-private") {
			t.Fatalf("id_only push lacks the message id: %s", payload)
		}
		if code, _, resp := g.mmSend(t, tok, mmPush("apple_rn", "d-private-mm")); code != 200 || resp[model.PushStatus] != model.PushStatusOk {
			t.Fatalf("mattermost id_only = %d %v", code, resp)
		}
		mm := string(g.lastPayload(t, "apns").Body)
		if strings.Contains(mm, "the build is green") || strings.Contains(mm, "town-square") || strings.Contains(mm, "alice") {
			t.Fatalf("id_only Mattermost push still carries content: %s", mm)
		}
	})
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

func TestBurstLimitAndThresholds(t *testing.T) {
	dbURL := storetest.SQLite(t)
	sb, _, appsFile := mustSandbox(t)
	_ = sb
	env := map[string]string{
		"PUSHGATE_DATABASE_URL":   dbURL,
		"PUSHGATE_APPS_FILE":      appsFile,
		"PUSHGATE_AUTH_CACHE_TTL": "10ms",
		"PUSHGATE_RATE_LIMITS":    "pro=0.001/3",
	}
	mustRun(t, env, "migrate")
	g := &gatewayUnderTest{sb: sb, env: env}
	g.server = mustServe(t, copyEnv(env))

	t.Run("a burst over the plan's rate is 429 saying rate limit, not monthly quota", func(t *testing.T) {
		_, tok := g.newWorkspace(t, true, "--plan", "pro")
		for i := range 3 {
			if code, _, resp := g.mmSend(t, tok, mmPush("android", fmt.Sprintf("burst%d", i))); code != 200 || resp[model.PushStatus] != model.PushStatusOk {
				t.Fatalf("push %d inside the burst = %d %v", i, code, resp)
			}
		}
		code, hdr, resp := g.mmSend(t, tok, mmPush("android", "burst3"))
		if code != 429 || hdr.Get("Retry-After") == "" || !strings.Contains(resp[model.PushStatusErrorMsg], "rate limit") ||
			strings.Contains(resp[model.PushStatusErrorMsg], "monthly quota") {
			t.Fatalf("answer = %d %v (Retry-After %q)", code, resp, hdr.Get("Retry-After"))
		}
		code, _, out := g.post(t, "/push/gcm/send", tok, rcBody(t, "d", "", "burst-rc"))
		if code != 429 || !strings.Contains(out["error"].(string), "rate limit") {
			t.Fatalf("rocket.chat answer = %d %v, want a transient 429", code, out)
		}
	})
	t.Run("reaching 80% and 100% of the limit is recorded once each", func(t *testing.T) {
		id, tok := g.newWorkspace(t, true)
		mustRun(t, env, "workspace", "set-plan", id, "enterprise", "--limit", "5")
		time.Sleep(20 * time.Millisecond)
		for i := range 6 {
			g.mmSend(t, tok, mmPush("android", fmt.Sprintf("th%d", i)))
		}
		db, err := sqlstore.Open(context.Background(), dbURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		events, err := db.QuotaEvents(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		got := map[int]int64{}
		for _, e := range events {
			got[e.Threshold] = e.Used
		}
		if len(events) != 2 || got[80] != 4 || got[100] != 5 {
			t.Fatalf("quota events = %+v, want 80%% at 4 and 100%% at 5", events)
		}
	})
}

// TestPlanChangeAppliesOnTheNextPush changes a plan through the CLI while
// the gateway holds the workspace in its (default, 5 s) auth cache.
func TestPlanChangeAppliesOnTheNextPush(t *testing.T) {
	for name, stores := range map[string][2]string{
		"sqlite":         {storetest.SQLite(t), ""},
		"postgres+redis": {storetest.Postgres(t), storetest.RedisURL()},
	} {
		t.Run(name, func(t *testing.T) {
			sb, _, appsFile := mustSandbox(t)
			env := map[string]string{"PUSHGATE_DATABASE_URL": stores[0], "PUSHGATE_APPS_FILE": appsFile}
			if stores[1] != "" {
				env["PUSHGATE_REDIS_URL"] = stores[1]
			}
			mustRun(t, env, "migrate")
			g := &gatewayUnderTest{sb: sb, env: env}
			g.server = mustServe(t, copyEnv(env))
			id, tok := g.newWorkspace(t, true, "--plan", "enterprise", "--limit", "100")
			for i := range 3 {
				if code, _, resp := g.mmSend(t, tok, mmPush("android", fmt.Sprintf("plan%d", i))); code != 200 || resp[model.PushStatus] != model.PushStatusOk {
					t.Fatalf("push %d = %d %v", i, code, resp)
				}
			}
			mustRun(t, env, "workspace", "set-plan", id, "enterprise", "--limit", "3")
			code, _, resp := g.mmSend(t, tok, mmPush("android", "plan-after"))
			if code != 429 || !strings.Contains(resp[model.PushStatusErrorMsg], "all 3 notifications") {
				t.Fatalf("the push right after lowering the limit to 3 = %d %v, want 429 naming the new limit", code, resp)
			}
			mustRun(t, env, "workspace", "set-plan", id, "enterprise", "--limit", "10")
			if code, _, resp := g.mmSend(t, tok, mmPush("android", "plan-raised")); code != 200 {
				t.Fatalf("the push right after raising the limit = %d %v", code, resp)
			}
		})
	}
}
