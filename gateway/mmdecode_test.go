package gateway

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// mmBodies are bodies whose decoding must match encoding/json exactly.
func mmBodies(t testing.TB) []string {
	bodies := []string{
		`{}`, ` { } `, `{"ack_id":"a","platform":"apple_rn-v2","badge":3,"cont_ava":1,"is_crt_enabled":true,"is_id_loaded":false}`,
		`{"message":"line\nbreak \"quoted\" \u0026 \u003cb\u003e caf\u00e9 \ud83d\ude00 \/slash"}`,
		`{"message":"emoji 😀 and ünïcödé"}`,
		`{"future":{"nested":[1,2,{"x":null}],"s":"\""},"platform":"android","also":[true,false,null,-1.5e3]}`,
		`{"badge":-1}`, `{"badge":null}`, `{"badge":1.5}`, `{"badge":"3"}`, `{"badge":1e2}`,
		`{"cont_ava":true}`, `{"cont_ava":"1"}`, `{"cont_ava":null}`, `{"cont_ava":{}}`,
		`{"is_id_loaded":"true"}`, `{"is_id_loaded":null}`, `{"platform":null}`, `{"platform":5}`,
		`{"Platform":"apple"}`, `{"PLATFORM":"apple","platform":"android"}`, `{"platform":"a","platform":"b"}`,
		`{"message":"\ud83d"}`, `{"message":"\ud83dx"}`, `{"message":"bad \x escape"}`, "{\"message\":\"raw\ttab\"}",
		"{\"message\":\"\xff invalid utf8\"}", `{"message":"\u0000"}`,
		`{"platform":"a"} trailing`, `{"platform":"a"}{}`, `[1,2]`, `"string"`, `null`, ``, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`,
		`{"unknown":tru}`, `{"unknown":"unterminated}`, `{"badge":01}`, `{"badge":-}`,
	}
	for _, f := range []string{"mattermost-message.json", "mattermost-id-only.json"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "samples", f))
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, string(raw))
	}
	return bodies
}

func TestDecodeMattermostMatchesEncodingJSON(t *testing.T) {
	for _, body := range mmBodies(t) {
		checkSameAsEncodingJSON(t, []byte(body))
	}
}

func checkSameAsEncodingJSON(t *testing.T, body []byte) {
	t.Helper()
	var want, got MattermostPush
	wantErr := json.Unmarshal(body, &want)
	gotErr := DecodeMattermost(body, &got)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("%q: encoding/json error %v, DecodeMattermost error %v", body, wantErr, gotErr)
	}
	if wantErr != nil {
		if wantErr.Error() != gotErr.Error() {
			t.Fatalf("%q: errors differ: %v vs %v", body, wantErr, gotErr)
		}
		return
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("%q: decoded differently:\nencoding/json %+v\nfast          %+v", body, want, got)
	}
}

func TestDecodeMattermostTakesTheFastPathForRealBodies(t *testing.T) {
	for _, body := range mmBodies(t)[:6] {
		var p MattermostPush
		if err := decodeMattermostFast([]byte(body), &p); err != nil {
			t.Errorf("%q took the slow path", body)
		}
	}
}

func FuzzDecodeMattermost(f *testing.F) {
	for _, body := range mmBodies(f) {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if strings.Count(string(body), "[")+strings.Count(string(body), "{") > 1000 {
			return
		}
		checkSameAsEncodingJSON(t, body)
	})
}

func BenchmarkDecodeMattermost(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("testdata", "samples", "mattermost-message.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p MattermostPush
			_ = DecodeMattermost(body, &p)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p MattermostPush
			_ = json.Unmarshal(body, &p)
		}
	})
}
