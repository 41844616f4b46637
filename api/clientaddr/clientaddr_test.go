package clientaddr

import "testing"

func TestKeyGroupsIPv6ClientsByTheir64(t *testing.T) {
	for _, tc := range []struct{ name, ip, want string }{
		{"an IPv4 address counts alone", "192.0.2.7", "192.0.2.7"},
		{"an IPv4-mapped IPv6 address counts as its IPv4 address", "::ffff:192.0.2.7", "192.0.2.7"},
		{"an IPv6 address counts as its /64", "2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"},
		{"another address of the same /64 counts the same", "2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"the last address of the /64 too", "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"a zone is dropped", "fe80::1%eth0", "fe80::/64"},
		{"something that is not an address counts as itself", "not an address", "not an address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Key(tc.ip); got != tc.want {
				t.Fatalf("Key(%q) = %q, want %q", tc.ip, got, tc.want)
			}
		})
	}
}
