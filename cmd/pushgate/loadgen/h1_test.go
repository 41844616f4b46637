package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestH1Conn(t *testing.T) {
	req := func(u string) []byte {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		return append(requestHead(pu), "2\r\n\r\n{}"...)
	}

	t.Run("answers framed every way HTTP/1.1 allows are read whole", func(t *testing.T) {
		big := `{"status":"FAIL","error":"` + strings.Repeat("x", 5000) + `"}`
		srv := okServer(t, func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			switch r.URL.Path {
			case "/chunked":
				io.WriteString(w, `{"status":`)
				w.(http.Flusher).Flush() // forces chunked encoding
				io.WriteString(w, `"REMOVE"}`)
			case "/close":
				w.Header().Set("Connection", "close")
				io.WriteString(w, `{"status":"OK"}`)
			case "/big":
				io.WriteString(w, big)
			case "/empty":
				w.WriteHeader(http.StatusNoContent)
			default:
				io.WriteString(w, `{"status":"OK"}`)
			}
		})
		u, _ := url.Parse(srv.URL)
		h := newH1Conn(u, 5*time.Second)
		defer h.close()
		buf := make([]byte, 512)
		for _, tc := range []struct {
			path   string
			status int
			body   string
		}{
			{"/plain", 200, `{"status":"OK"}`},
			{"/chunked", 200, `{"status":"REMOVE"}`},
			{"/big", 200, big[:512]},
			{"/close", 200, `{"status":"OK"}`},
			{"/empty", 204, ``},
			{"/plain", 200, `{"status":"OK"}`},
		} {
			status, n, err := h.do(context.Background(), req(srv.URL+tc.path), buf)
			if err != nil || status != tc.status || string(buf[:n]) != tc.body {
				t.Errorf("%s: %d %q %v; want %d %q", tc.path, status, buf[:n], err, tc.status, tc.body)
			}
		}
	})

	t.Run("interim answers, chunk extensions and trailers are skipped", func(t *testing.T) {
		addr := cannedServer(t, "HTTP/1.1 100 Continue\r\n\r\n"+
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+
			"a;ext=1\r\n{\"status\":\r\n6\r\n\"FAIL\"\r\n1\r\n}\r\n0\r\nX-Trailer: 1\r\n\r\n")
		u, _ := url.Parse(addr)
		h := newH1Conn(u, 5*time.Second)
		defer h.close()
		buf := make([]byte, 512)
		for range 3 {
			status, n, err := h.do(context.Background(), req(addr), buf)
			if err != nil || status != 200 || string(buf[:n]) != `{"status":"FAIL"}` {
				t.Fatalf("%d %q %v", status, buf[:n], err)
			}
		}
	})

	t.Run("a malformed answer is an error and the connection is dropped", func(t *testing.T) {
		addr := cannedServer(t, "SMTP ready\r\n\r\n")
		u, _ := url.Parse(addr)
		h := newH1Conn(u, 5*time.Second)
		if _, _, err := h.do(context.Background(), req(addr), make([]byte, 16)); err == nil || h.c != nil {
			t.Fatalf("err %v, conn kept %v", err, h.c != nil)
		}
	})

	t.Run("a server that never answers times out", func(t *testing.T) {
		srv := okServer(t, func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body) // then the server notices the client leaving
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		})
		u, _ := url.Parse(srv.URL)
		h := newH1Conn(u, 100*time.Millisecond)
		defer h.close()
		start := time.Now()
		if _, _, err := h.do(context.Background(), req(srv.URL), make([]byte, 16)); err == nil || time.Since(start) > 2*time.Second {
			t.Fatalf("err %v after %v", err, time.Since(start))
		}
	})
}
