package api

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
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
