package api

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/pushgate/pushgate/tenants"
)

func TestReadAllReadsWhatIsSentWhateverItAnnounces(t *testing.T) {
	body := strings.Repeat("0123456789", 70)
	for _, tc := range []struct {
		name string
		size int64
		r    func() io.Reader
	}{
		{"announced size", int64(len(body)), func() io.Reader { return strings.NewReader(body) }},
		{"announced size, a byte per read", int64(len(body)), func() io.Reader { return iotest.OneByteReader(strings.NewReader(body)) }},
		{"unknown size", -1, func() io.Reader { return strings.NewReader(body) }},
		{"more than announced", 10, func() io.Reader { return strings.NewReader(body) }},
		{"less than announced", int64(len(body)) + 100, func() io.Reader { return strings.NewReader(body) }},
		{"data with the end", int64(len(body)), func() io.Reader { return iotest.DataErrReader(strings.NewReader(body)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(tc.r(), tc.size)
			if err != nil || !bytes.Equal(got, []byte(body)) {
				t.Fatalf("readAll = %d bytes, %v; want the %d bytes sent", len(got), err, len(body))
			}
		})
	}
	t.Run("a read error is returned", func(t *testing.T) {
		if _, err := readAll(iotest.ErrReader(io.ErrUnexpectedEOF), 10); err != io.ErrUnexpectedEOF {
			t.Fatalf("readAll = %v, want the reader's error", err)
		}
	})
}

func TestCheckJSONTextNamesTheFieldDecodingWouldChange(t *testing.T) {
	for _, tc := range []struct {
		name, body, field string
	}{
		{"invalid UTF-8 in a value", "{\"name\":\"Ac\xffme\"}", "name"},
		{"invalid UTF-8 in a nested value", "{\"token\":\"t\",\"options\":{\"apn\":{\"text\":\"a\",\"title\":\"\xc3\"}}}", "options.apn.title"},
		{"invalid UTF-8 in an array element", "{\"a\":1,\"tags\":[\"x\",\"y\",\"\xed\xa0\x80\"]}", "tags[2]"},
		{"a lone high surrogate escape", `{"device_id":"abc\ud800"}`, "device_id"},
		{"a lone low surrogate escape", `{"x":"ok","device_id":"\uDC00abc"}`, "device_id"},
		{"a high surrogate followed by another high one", `{"m":"\ud83d\ud83d"}`, "m"},
		{"invalid UTF-8 in a field name", "{\"options\":{\"ti\xfftle\":\"x\"}}", "options"},
		{"valid text", `{"name":"Åcme 日本 👩‍💻","e":"\ud83d\ude00","b":"\\ud800 is text here"}`, ""},
		{"no strings", `{"n":1,"a":[true,null]}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkJSONText([]byte(tc.body))
			if tc.field == "" {
				if err != nil {
					t.Fatalf("checkJSONText = %v, want nil", err)
				}
				return
			}
			e := tenants.AsError(err)
			if err == nil || e.Code != tenants.CodeInvalid || e.Field != tc.field || !strings.Contains(e.Message, "UTF-8") {
				t.Fatalf("checkJSONText = %#v, want an invalid-input error naming %s", err, tc.field)
			}
		})
	}
}
