package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/tenants/storetest"
)

// register posts a registration as if it came over TCP from peer with the
// given X-Forwarded-For lines, and returns the status.
func (a *testAPI) registerFrom(t *testing.T, peer string, xff ...string) int {
	t.Helper()
	req := httptest.NewRequest("POST", "/api/v1/workspaces", strings.NewReader(`{"name":"Acme","contact_email":"ops@acme.example"}`))
	req.RemoteAddr = peer
	for _, line := range xff {
		req.Header.Add("X-Forwarded-For", line)
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated && rec.Code != http.StatusTooManyRequests {
		t.Fatalf("registration = %d %s", rec.Code, rec.Body)
	}
	return rec.Code
}

func TestRegistrationLimitBehindAProxy(t *testing.T) {
	const proxy = "10.0.0.2:41000"
	t.Run("a client's own X-Forwarded-For lines do not escape the limit", func(t *testing.T) {
		a := mustAPI(t, storetest.SQLite(t), apiOptions{registrationOpen: true, perHour: 2, trustProxy: true})
		created := 0
		for i, forged := range []string{"203.0.113.1", "203.0.113.2, 203.0.113.3", "203.0.113.4", "203.0.113.5"} {
			// The client sends its line; the proxy appends the address it saw in a line of its own, or to the same line.
			lines := []string{forged, "198.51.100.7"}
			if i%2 == 1 {
				lines = []string{forged + ", 198.51.100.7"}
			}
			if a.registerFrom(t, proxy, lines...) == http.StatusCreated {
				created++
			}
		}
		if created != 2 {
			t.Fatalf("%d of 4 registrations from one client were created at a limit of 2", created)
		}
	})
	t.Run("IPv6 clients are limited per /64", func(t *testing.T) {
		a := mustAPI(t, storetest.SQLite(t), apiOptions{registrationOpen: true, perHour: 2, trustProxy: true})
		codes := []int{
			a.registerFrom(t, proxy, "2001:db8:1:2::a"),
			a.registerFrom(t, proxy, "2001:db8:1:2::b"),
			a.registerFrom(t, proxy, "2001:db8:1:2:ffff::1"),
			a.registerFrom(t, proxy, "2001:db8:1:3::a"),
		}
		want := []int{201, 201, 429, 201}
		for i := range want {
			if codes[i] != want[i] {
				t.Fatalf("registrations from one /64 then another = %v, want %v", codes, want)
			}
		}
	})
	t.Run("without trust_proxy the header is ignored", func(t *testing.T) {
		a := mustAPI(t, storetest.SQLite(t), apiOptions{registrationOpen: true, perHour: 1})
		if a.registerFrom(t, "192.0.2.9:5000", "198.51.100.1") != 201 || a.registerFrom(t, "192.0.2.9:5000", "198.51.100.2") != 429 {
			t.Fatal("X-Forwarded-For changed the limited address without trust_proxy")
		}
	})
}
