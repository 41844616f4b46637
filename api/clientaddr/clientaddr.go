// Package clientaddr says who a request comes from, for the per-client
// limits of the API and the dashboard alike.
package clientaddr

import (
	"net"
	"net/http"
	"net/netip"
)

// Of is the caller's address. Behind a proxy that sets X-Forwarded-For (the
// chart's ingress), serve's trust_proxy setting makes api's middleware put
// the address the proxy saw in RemoteAddr first.
func Of(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Key is the unit a client is limited by: its IPv4 address, or its IPv6
// /64, since one subscriber gets a whole /64 (or more) to pick addresses from.
func Key(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if a.Is4() {
		return ip // ParseAddr takes only the canonical dotted form: no copy needed
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}
