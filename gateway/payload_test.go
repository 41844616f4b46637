package gateway

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"firebase.google.com/go/v4/messaging"
	"github.com/sideshow/apns2"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const testTopic = "app.pushgate.dev"

func mustDecodeSample[T any](t testing.TB, name string) T {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "samples", name))
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	return v
}

// mustMatchGolden compares got with testdata/<name> byte for byte (-update rewrites it).
func mustMatchGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	if !json.Valid(got) {
		t.Fatalf("payload is not valid JSON: %s", got)
	}
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, append(append([]byte(nil), got...), '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(bytes.TrimSuffix(want, []byte("\n")), got) {
		t.Errorf("payload differs from %s\n got: %s\nwant: %s", path, got, want)
	}
}

func newTestAPNs() *apnsMessage { return &apnsMessage{} }

func newTestFCM() *fcmMessage { return &fcmMessage{data: map[string]string{}} }

// fcmWire is the message as pushgate sends it to FCM. It must be what the
// Firebase Admin SDK would send for the same message: the same bytes, apart
// from characters that encoding/json escapes and pushgate need not (<, >, &,
// U+2028, U+2029 and some control characters), where the JSON must be equal.
func fcmWire(t *testing.T, n *fcmMessage) []byte {
	t.Helper()
	var req struct {
		Message json.RawMessage `json:"message"`
	}
	body := appendFCMRequest(nil, n)
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatalf("request body is not JSON: %v\n%s", err, body)
	}
	if len(body) != fcmRequestSize(n) {
		t.Errorf("fcmRequestSize = %d, body is %d bytes", fcmRequestSize(n), len(body))
	}
	sdk, err := json.Marshal(&messaging.Message{Token: n.token, Data: n.data, Android: &messaging.AndroidConfig{Priority: "high"}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(req.Message, sdk) {
		var ours, theirs any
		_ = json.Unmarshal(req.Message, &ours)
		_ = json.Unmarshal(sdk, &theirs)
		if !reflect.DeepEqual(ours, theirs) {
			t.Errorf("message differs from the Firebase SDK's\n ours: %s\n  sdk: %s", req.Message, sdk)
		}
	}
	return req.Message
}

func TestFCMRequestIsTheSDKsMessage(t *testing.T) {
	many := map[string]string{}
	for i := range 40 { // more keys than appendFCMRequest sorts on the stack
		many[fmt.Sprintf("k%02d", i)] = strings.Repeat("v", i)
	}
	tests := []struct {
		name  string
		token string
		data  map[string]string
	}{
		{"no data", "tok", map[string]string{}},
		{"characters encoding/json escapes", "tok<&>", map[string]string{"a<b": "x & y <script>\u2028\u2029", "ctl": "\x00\x01\b\f\n\r\t\"\\", "bad utf8": "\xff\xfe ok é"}},
		{"many keys", "tok", many},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestFCM()
			n.token, n.data = tc.token, tc.data
			fcmWire(t, n)
		})
	}
}

func TestMattermostAPNsPayloads(t *testing.T) {
	message := mustDecodeSample[MattermostPush](t, "mattermost-message.json")
	idLoaded := mustDecodeSample[MattermostPush](t, "mattermost-id-only.json")
	with := func(p MattermostPush, f func(*MattermostPush)) MattermostPush { f(&p); return p }

	tests := []struct {
		name     string
		golden   string
		push     MattermostPush
		idOnly   bool
		topic    string
		pushType apns2.EPushType
		limit    int
	}{
		{"message shows channel as title and threads by channel", "mm_apns_message.json", message, false, testTopic, apns2.PushTypeAlert, apnsLimit},
		{"reply with collapsed threads threads by root", "mm_apns_message_crt_reply.json",
			with(message, func(p *MattermostPush) { p.RootID = "r00tp0stid00000000000000aa" }), false, testTopic, apns2.PushTypeAlert, apnsLimit},
		{"v1 message has a plain alert", "mm_apns_message_v1.json",
			with(message, func(p *MattermostPush) { p.Version = ""; p.IsCRTEnabled = false }), false, testTopic, apns2.PushTypeAlert, apnsLimit},
		{"id-only policy strips content and marks id_loaded", "mm_apns_id_only.json", message, true, testTopic, apns2.PushTypeAlert, apnsLimit},
		{"id-loaded push from the server keeps its generic text", "mm_apns_id_loaded.json", idLoaded, false, testTopic, apns2.PushTypeAlert, apnsLimit},
		{"session push has no content-available", "mm_apns_session.json",
			with(message, func(p *MattermostPush) {
				p.Type, p.Message, p.ChannelName, p.ChannelID, p.SenderName = MattermostTypeSession, "Session Expired: Please log in to continue receiving notifications.", "", "", ""
			}), false, testTopic, apns2.PushTypeAlert, apnsLimit},
		{"clear for a v2 app sets badge 1", "mm_apns_clear.json",
			MattermostPush{Platform: "apple_rn-v2", ServerID: "aoej8izzfffr9e67d6uz3g387h", DeviceID: "d1", ChannelID: "et3ghiycm7g7bb41ihg85pqgah", Type: MattermostTypeClear, AckID: "ack1"}, false, testTopic, apns2.PushTypeAlert, apnsLimit},
		{"clear for a v1 app keeps badge 0", "mm_apns_clear_v1.json",
			MattermostPush{Platform: "apple_rn", ServerID: "aoej8izzfffr9e67d6uz3g387h", DeviceID: "d1", ChannelID: "et3ghiycm7g7bb41ihg85pqgah", Type: MattermostTypeClear}, false, testTopic, apns2.PushTypeAlert, apnsLimit},
		{"update_badge carries only the badge", "mm_apns_update_badge.json",
			MattermostPush{Platform: "apple_rn", ServerID: "aoej8izzfffr9e67d6uz3g387h", DeviceID: "d1", Badge: 7, Type: MattermostTypeUpdateBadge}, false, testTopic, apns2.PushTypeAlert, apnsLimit},
		{"test push is content-available", "mm_apns_test.json",
			MattermostPush{Platform: "apple_rn", ServerID: "aoej8izzfffr9e67d6uz3g387h", DeviceID: "d1", Badge: -1, Type: MattermostTypeTest, Message: "test"}, false, testTopic, apns2.PushTypeAlert, apnsLimit},
		{"voip goes to the .voip topic as a PushKit push", "mm_apns_voip.json",
			with(message, func(p *MattermostPush) { p.Transport = MattermostTransportVoIP; p.SubType = "calls"; p.RootID = "r00t" }), false, testTopic + ".voip", apns2.PushTypeVOIP, apnsVoIPLimit},
		{"voip with id-only policy drops names", "mm_apns_voip_id_only.json",
			with(message, func(p *MattermostPush) { p.Transport = MattermostTransportVoIP; p.SubType = "calls" }), true, testTopic + ".voip", apns2.PushTypeVOIP, apnsVoIPLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestAPNs()
			before := tc.push
			buildMattermostAPNs(n, testTopic, &tc.push, tc.idOnly)
			if tc.push != before {
				t.Error("building a payload modified the request")
			}
			mustMatchGolden(t, tc.golden, n.payload)
			if n.topic != tc.topic || n.pushType != tc.pushType || n.priority != apns2.PriorityHigh || n.limit != tc.limit {
				t.Errorf("topic %q push type %q priority %d limit %d; want %q %q 10 %d", n.topic, n.pushType, n.priority, n.limit, tc.topic, tc.pushType, tc.limit)
			}
			if n.token != tc.push.DeviceID {
				t.Errorf("token %q, want the request's device_id", n.token)
			}
			if !n.expiration.IsZero() {
				t.Error("Mattermost pushes carry no expiration (APNs delivers once)")
			}
		})
	}
}

func TestMattermostIDOnlyLeavesNoContent(t *testing.T) {
	message := mustDecodeSample[MattermostPush](t, "mattermost-message.json")
	message.OverrideUsername, message.OverrideIconURL = "webhook-bot", "https://example.org/i.png"
	secrets := []string{message.Message, message.ChannelName, message.SenderName, message.OverrideUsername, message.OverrideIconURL}
	for _, kind := range []string{KindAPNs, KindFCM} {
		t.Run(kind, func(t *testing.T) {
			var got []byte
			if kind == KindAPNs {
				n := newTestAPNs()
				buildMattermostAPNs(n, testTopic, &message, true)
				got = n.payload
			} else {
				n := newTestFCM()
				buildMattermostFCM(n, &message, true)
				got = fcmWire(t, n)
			}
			for _, s := range secrets {
				if bytes.Contains(got, []byte(s)) {
					t.Errorf("id-only payload still contains %q: %s", s, got)
				}
			}
			if !bytes.Contains(got, []byte(IDLoadedMessage)) || !bytes.Contains(got, []byte(`"id_loaded"`)) {
				t.Errorf("id-only payload is not marked id-loaded: %s", got)
			}
		})
	}
}

func TestMattermostFCMPayloads(t *testing.T) {
	message := mustDecodeSample[MattermostPush](t, "mattermost-message.json")
	message.Platform = "android_rn-v2"
	idLoaded := mustDecodeSample[MattermostPush](t, "mattermost-id-only.json")
	tests := []struct {
		name   string
		golden string
		push   MattermostPush
		idOnly bool
	}{
		{"message carries content as string data", "mm_fcm_message.json", message, false},
		{"id-only policy strips content", "mm_fcm_id_only.json", message, true},
		{"id-loaded push from the server", "mm_fcm_id_loaded.json", idLoaded, false},
		{"clear carries routing only", "mm_fcm_clear.json",
			MattermostPush{Platform: "android_rn", ServerID: "aoej8izzfffr9e67d6uz3g387h", DeviceID: "d1", ChannelID: "et3ghiycm7g7bb41ihg85pqgah", Type: MattermostTypeClear, Badge: 2}, false},
		{"voip transport is an ordinary data push on Android", "mm_fcm_voip.json",
			MattermostPush{Platform: "android_rn", ServerID: "s", DeviceID: "d1", Type: MattermostTypeMessage, SubType: "calls", Transport: MattermostTransportVoIP, Message: "call", Badge: -1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestFCM()
			buildMattermostFCM(n, &tc.push, tc.idOnly)
			mustMatchGolden(t, tc.golden, fcmWire(t, n))
			if n.limit != fcmLimit {
				t.Errorf("limit %d, want %d", n.limit, fcmLimit)
			}
		})
	}
}

func TestMattermostTruncatesOnRuneBoundaries(t *testing.T) {
	p := MattermostPush{
		Platform: "apple_rn-v2", DeviceID: "d", Type: MattermostTypeMessage, Version: "v2",
		Message:     strings.Repeat("é", 1500) + "tail", // 3004 bytes of two-byte runes
		ChannelName: "a" + strings.Repeat("€", 30),      // 91 bytes of three-byte runes after one byte
		ChannelID:   "c",
	}
	q := prepareMattermost(&p, false)
	if len(q.Message) > mattermostMessageCut || !utf8.ValidString(q.Message) || !strings.HasPrefix(p.Message, q.Message) {
		t.Errorf("message cut to %d bytes (valid UTF-8: %v), want ≤ %d on a rune boundary", len(q.Message), utf8.ValidString(q.Message), mattermostMessageCut)
	}
	if len(q.Message) != 2046 {
		t.Errorf("message cut to %d bytes, want 2046 (1023 runes of 2 bytes)", len(q.Message))
	}
	if len(q.ChannelName) != 64 || !utf8.ValidString(q.ChannelName) {
		t.Errorf("channel name cut to %d bytes (valid: %v), want 64 = 1 + 21·3", len(q.ChannelName), utf8.ValidString(q.ChannelName))
	}
	short := MattermostPush{Message: strings.Repeat("x", mattermostMessageMax)}
	if got := prepareMattermost(&short, false); got.Message != short.Message {
		t.Error("a message at the limit must not be cut")
	}

	n := newTestAPNs()
	buildMattermostAPNs(n, testTopic, &p, false)
	var decoded struct {
		APS struct {
			Alert struct{ Title, Body string } `json:"alert"`
		} `json:"aps"`
	}
	if err := json.Unmarshal(n.payload, &decoded); err != nil {
		t.Fatal(err)
	}
	if decoded.APS.Alert.Body != q.Message || decoded.APS.Alert.Title != q.ChannelName {
		t.Error("the APNs payload does not carry the truncated fields")
	}
}

func TestJSONStringEscaping(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"quotes and backslashes are escaped", `say "hi" \o/`, `say "hi" \o/`},
		{"control characters are escaped", "a\nb\tc\rd\x01e\x1f", "a\nb\tc\rd\x01e\x1f"},
		{"multibyte runes pass through", "héllo 👋 世界", "héllo 👋 世界"},
		{"invalid UTF-8 becomes U+FFFD", "bad\xffbyte\xc3", "bad\ufffdbyte\ufffd"},
		{"html stays literal", "<b>&</b>", "<b>&</b>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := appendJSONString(nil, tc.in)
			var got string
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			if got != tc.want {
				t.Errorf("round trip %q, want %q", got, tc.want)
			}
			if n := jsonStringLen(tc.in); n != len(b) {
				t.Errorf("jsonStringLen = %d, encoded length %d", n, len(b))
			}
		})
	}
}

func TestRocketChatAPNsPayloads(t *testing.T) {
	message := mustDecodeSample[RocketChatPush](t, "rocketchat-message.json")
	testPush := mustDecodeSample[RocketChatPush](t, "rocketchat-test-push.json")
	bare := RocketChatPush{Token: "t0k3n"}
	now := time.Date(2026, 11, 21, 21, 1, 5, 0, time.UTC)
	tests := []struct {
		name     string
		golden   string
		push     RocketChatPush
		voip     bool
		topic    string
		pushType apns2.EPushType
	}{
		{"message carries ejson and is mutable", "rc_apns_message.json", message, false, testTopic, apns2.PushTypeAlert},
		{"admin test push has no payload", "rc_apns_test_push.json", testPush, false, testTopic, apns2.PushTypeAlert},
		{"empty options still make a valid push", "rc_apns_empty.json", bare, false, testTopic, apns2.PushTypeAlert},
		{"voip topic sends a PushKit push", "rc_apns_voip.json", message, true, testTopic + ".voip", apns2.PushTypeVOIP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestAPNs()
			if err := buildRocketChatAPNs(n, testTopic, &tc.push, tc.voip, now); err != nil {
				t.Fatal(err)
			}
			mustMatchGolden(t, tc.golden, n.payload)
			if n.topic != tc.topic || n.pushType != tc.pushType || n.token != tc.push.Token {
				t.Errorf("topic %q push type %q token %q", n.topic, n.pushType, n.token)
			}
			if want := now.Add(time.Hour); !n.expiration.Equal(want) {
				t.Errorf("expiration %v, want %v (Rocket.Chat keeps pushes an hour)", n.expiration, want)
			}
		})
	}

	t.Run("ejson is the payload as a JSON string", func(t *testing.T) {
		n := newTestAPNs()
		if err := buildRocketChatAPNs(n, testTopic, &message, false, now); err != nil {
			t.Fatal(err)
		}
		var decoded struct{ EJSON string }
		if err := json.Unmarshal(n.payload, &decoded); err != nil {
			t.Fatal(err)
		}
		var want, got any
		_ = json.Unmarshal(message.Options.Payload, &want)
		if err := json.Unmarshal([]byte(decoded.EJSON), &got); err != nil {
			t.Fatalf("ejson %q is not JSON: %v", decoded.EJSON, err)
		}
		if !jsonEqual(got, want) {
			t.Errorf("ejson %s, want %s", decoded.EJSON, message.Options.Payload)
		}
	})

	t.Run("invalid payload is refused", func(t *testing.T) {
		p := RocketChatPush{Token: "t", Options: RocketChatOptions{Payload: json.RawMessage(`{"a":`)}}
		if err := buildRocketChatAPNs(newTestAPNs(), testTopic, &p, false, now); err == nil {
			t.Error("want an error")
		}
	})
}

func TestRocketChatFCMPayloads(t *testing.T) {
	message := mustDecodeSample[RocketChatPush](t, "rocketchat-message.json")
	testPush := mustDecodeSample[RocketChatPush](t, "rocketchat-test-push.json")
	tests := []struct {
		name   string
		golden string
		push   RocketChatPush
	}{
		{"message carries title, message and ejson", "rc_fcm_message.json", message},
		{"admin test push has no ejson", "rc_fcm_test_push.json", testPush},
		{"content-available is passed through", "rc_fcm_content_available.json",
			RocketChatPush{Token: "t0k3n", Options: RocketChatOptions{ContentAvailable: "1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestFCM()
			if err := buildRocketChatFCM(n, &tc.push); err != nil {
				t.Fatal(err)
			}
			mustMatchGolden(t, tc.golden, fcmWire(t, n))
		})
	}
}

func TestRocketChatDecodesLooseFields(t *testing.T) {
	tests := []struct {
		name string
		body string
		on   bool
	}{
		{"numeric contentAvailable", `{"token":"t","options":{"contentAvailable":1,"notId":-5}}`, true},
		{"boolean contentAvailable", `{"token":"t","options":{"contentAvailable":true}}`, true},
		{"zero contentAvailable", `{"token":"t","options":{"contentAvailable":0}}`, false},
		{"missing contentAvailable", `{"token":"t","options":{"unknown":{"x":1}}}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p RocketChatPush
			if err := json.Unmarshal([]byte(tc.body), &p); err != nil {
				t.Fatal(err)
			}
			if p.Options.ContentAvailable.On() != tc.on {
				t.Errorf("On() = %v, want %v", p.Options.ContentAvailable.On(), tc.on)
			}
		})
	}
	var p RocketChatPush
	if err := json.Unmarshal([]byte(`{"options":{"contentAvailable":{"x":1}}}`), &p); err == nil {
		t.Error("an object is not a flag")
	}
}

func TestPlatformName(t *testing.T) {
	for in, want := range map[string]string{"apple_rn-v2": "apple_rn", "apple": "apple", "android_rn-v10": "android_rn", "apple_rnbeta-vx": "apple_rnbeta"} {
		if got := PlatformName(in); got != want {
			t.Errorf("PlatformName(%q) = %q, want %q", in, got, want)
		}
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
