package api

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ipLimiter is a token bucket per client address, bounded in memory.
type ipLimiter struct {
	every time.Duration
	burst int
	max   int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

func newIPLimiter(perHour, burst int) *ipLimiter {
	if perHour <= 0 {
		perHour = 1
	}
	return &ipLimiter{every: time.Hour / time.Duration(perHour), burst: burst, max: 10_000, buckets: map[string]*rate.Limiter{}}
}

// allow takes a token for ip, or says how long until one is free.
func (l *ipLimiter) allow(ip string) (time.Duration, bool) {
	l.mu.Lock()
	b, ok := l.buckets[ip]
	if !ok {
		if len(l.buckets) >= l.max {
			clear(l.buckets) // bounded memory beats perfect limits under an address flood
		}
		b = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.buckets[ip] = b
	}
	l.mu.Unlock()
	res := b.Reserve()
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return d, false
	}
	return 0, true
}

// clientIP is the caller's address. Behind a proxy that sets
// X-Forwarded-For (the chart's ingress), serve's trust_proxy setting makes
// the middleware put the last hop's address in RemoteAddr first.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// trustForwardedFor replaces RemoteAddr with the last X-Forwarded-For entry,
// the address our own ingress saw; use it only behind such a proxy.
func trustForwardedFor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			parts := strings.Split(xff, ",")
			if ip := net.ParseIP(strings.TrimSpace(parts[len(parts)-1])); ip != nil {
				r.RemoteAddr = net.JoinHostPort(ip.String(), "0")
			}
		}
		next.ServeHTTP(w, r)
	})
}
