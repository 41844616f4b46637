package sandbox

import (
	"encoding/json"
	"testing"
)

// memberKindByDecoding is what memberKind must agree with: encoding/json's view of the member.
func memberKindByDecoding(obj []byte, key string) byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(obj, &m) != nil || len(m[key]) == 0 {
		return 0
	}
	return m[key][0]
}

func TestMemberKind(t *testing.T) {
	tests := []struct {
		name string
		obj  string
		want byte
	}{
		{"aps dictionary is found", `{"aps":{"alert":"x"}}`, '{'},
		{"aps after other members is found", ` { "a" : [1, {"aps":1}] , "b":"}\"{" , "aps" : {} } `, '{'},
		{"aps only nested is absent", `{"data":{"aps":{}}}`, 0},
		{"aps string is a string", `{"aps":"x"}`, '"'},
		{"aps null is null", `{"aps":null}`, 'n'},
		{"escaped key is unescaped", `{"\u0061ps":{}}`, '{'},
		{"last of repeated keys wins", `{"aps":{},"aps":3}`, '3'},
		{"empty object has no aps", `{}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := memberKind([]byte(tt.obj), "aps"); got != tt.want {
				t.Fatalf("memberKind = %q, want %q", got, tt.want)
			}
			if got := memberKindByDecoding([]byte(tt.obj), "aps"); got != tt.want {
				t.Fatalf("encoding/json disagrees with the table: %q", got)
			}
		})
	}
}

func FuzzMemberKind(f *testing.F) {
	for _, s := range []string{`{"aps":{}}`, `{"a":"\"","aps":[1]}`, `{"x":{"aps":1},"aps":null}`, `{"\u0061ps":"s"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, obj []byte) {
		if !validObject(obj) {
			return
		}
		if got, want := memberKind(obj, "aps"), memberKindByDecoding(obj, "aps"); got != want {
			t.Fatalf("memberKind(%q) = %q, encoding/json says %q", obj, got, want)
		}
	})
}

func FuzzParseFCMRequest(f *testing.F) {
	for _, s := range []string{
		`{"message":{"token":"t","data":{"a":"b"},"android":{"data":{"c":"d"},"notification":{}}}}`,
		`{"validate_only":true,"message":{"topic":"news","notification":{"title":"\u00e9"}}}`,
		`{"message":{"token":"t","data":{"from":"x"}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, _, fail := parseFCMRequest(body)
		if fail.why == reasonDelivered && (m.targets != 1 || m.payloadSize > fcmMaxPayload) {
			t.Fatalf("accepted %q with %d targets and %d bytes", body, m.targets, m.payloadSize)
		}
	})
}
