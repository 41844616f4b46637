package main

import (
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

func TestProviderProxyComesFromGetenv(t *testing.T) {
	apns := &url.URL{Scheme: "https", Host: "api.push.apple.com"}
	fcm := &url.URL{Scheme: "https", Host: "fcm.googleapis.com"}
	tests := []struct {
		name              string
		env               map[string]string
		wantAPNs, wantFCM string // "" is a direct connection
	}{
		{"no proxy variables means direct connections", map[string]string{}, "", ""},
		{"HTTPS_PROXY carries both providers", map[string]string{"HTTPS_PROXY": "http://proxy.corp:3128"}, "proxy.corp:3128", "proxy.corp:3128"},
		{"the lower-case form is read too", map[string]string{"https_proxy": "proxy.corp:3128"}, "proxy.corp:3128", "proxy.corp:3128"},
		{"NO_PROXY bypasses a provider", map[string]string{"HTTPS_PROXY": "http://proxy.corp:3128", "NO_PROXY": ".googleapis.com"}, "proxy.corp:3128", ""},
		{"HTTP_PROXY alone is not used for HTTPS providers", map[string]string{"HTTP_PROXY": "http://proxy.corp:3128"}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			proxy, err := providerProxy(envFrom(tc.env), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				u    *url.URL
				want string
			}{{apns, tc.wantAPNs}, {fcm, tc.wantFCM}} {
				var got string
				if proxy != nil {
					via, err := proxy(c.u)
					if err != nil {
						t.Fatal(err)
					}
					if via != nil {
						got = via.Host
					}
				}
				if got != c.want {
					t.Errorf("%s goes through %q, want %q", c.u.Host, got, c.want)
				}
			}
		})
	}
	for name, env := range map[string]map[string]string{
		"a malformed proxy URL stops the start naming the variable": {"HTTPS_PROXY": "http://proxy.corp:31x8"},
		"a SOCKS proxy stops the start naming the variable":         {"HTTPS_PROXY": "socks5://proxy.corp:1080"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := providerProxy(envFrom(env), slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "HTTPS_PROXY") {
				t.Errorf("got %v, want an error naming HTTPS_PROXY", err)
			}
		})
	}
}
