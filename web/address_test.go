package web

import "testing"

func TestAddressKey(t *testing.T) {
	for _, tc := range []struct{ name, ip, want string }{
		{"an IPv4 address counts alone", "192.0.2.7", "192.0.2.7"},
		{"an IPv4-mapped IPv6 address counts as its IPv4 address", "::ffff:192.0.2.7", "192.0.2.7"},
		{"an IPv6 address counts as its /64", "2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"},
		{"another address of the same /64 counts the same", "2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"something that is not an address counts as itself", "pipe", "pipe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := addressKey(tc.ip); got != tc.want {
				t.Fatalf("addressKey(%q) = %q, want %q", tc.ip, got, tc.want)
			}
		})
	}
}
