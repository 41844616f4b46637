package api

import (
	"container/list"
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/pushgate/pushgate/api/clientaddr"
)

// ipLimiter is a token bucket per client (an IPv4 address or an IPv6 /64),
// bounded in memory: when the table is full, the client seen least recently
// is forgotten, never all of them at once.
type ipLimiter struct {
	every time.Duration
	burst int
	max   int

	mu      sync.Mutex
	buckets map[string]*list.Element // of *ipBucket, in lru
	lru     *list.List               // front: the client seen last
}

type ipBucket struct {
	key string
	lim *rate.Limiter
}

func newIPLimiter(perHour, burst int) *ipLimiter {
	if perHour <= 0 {
		perHour = 1
	}
	return &ipLimiter{every: time.Hour / time.Duration(perHour), burst: burst, max: 10_000,
		buckets: map[string]*list.Element{}, lru: list.New()}
}

// allow takes a token for ip, or says how long until one is free.
func (l *ipLimiter) allow(ip string) (time.Duration, bool) {
	b := l.bucket(ip)
	res := b.Reserve()
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return d, false
	}
	return 0, true
}

// bucket is the token bucket of ip's client, made full on first sight.
func (l *ipLimiter) bucket(ip string) *rate.Limiter {
	key := clientaddr.Key(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.buckets[key]; ok {
		l.lru.MoveToFront(e)
		return e.Value.(*ipBucket).lim
	}
	if len(l.buckets) >= l.max {
		// The client seen least recently has refilled the most, so
		// forgetting it loses the least.
		oldest := l.lru.Back()
		l.lru.Remove(oldest)
		delete(l.buckets, oldest.Value.(*ipBucket).key)
	}
	b := rate.NewLimiter(rate.Every(l.every), l.burst)
	l.buckets[key] = l.lru.PushFront(&ipBucket{key: key, lim: b})
	return b
}

type peerKey struct{}

// peerIP is the address of the TCP peer, whatever X-Forwarded-For says.
func peerIP(r *http.Request) string {
	if addr, ok := r.Context().Value(peerKey{}).(string); ok {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return addr
		}
		return host
	}
	return clientaddr.Of(r)
}

// trustForwardedFor replaces RemoteAddr with the address our own ingress
// appended to X-Forwarded-For; use it only behind such a proxy.
func trustForwardedFor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ip, ok := lastForwardedFor(r.Header); ok {
			peer := r.RemoteAddr
			r = r.WithContext(context.WithValue(r.Context(), peerKey{}, peer))
			r.RemoteAddr = net.JoinHostPort(ip, "0")
		}
		next.ServeHTTP(w, r)
	})
}

// lastForwardedFor is the right-most entry over every X-Forwarded-For line:
// the one the trusted proxy appended. Whatever a client sends, in lines or
// entries of its own, comes before it. A right-most entry that is not an
// address is not our proxy's, so nothing is taken from the header then.
func lastForwardedFor(h http.Header) (string, bool) {
	lines := h.Values("X-Forwarded-For")
	if len(lines) == 0 {
		return "", false
	}
	last := lines[len(lines)-1]
	hop := strings.TrimSpace(last[strings.LastIndexByte(last, ',')+1:])
	a, err := netip.ParseAddr(hop)
	if err != nil {
		ap, err := netip.ParseAddrPort(hop) // some proxies append the port
		if err != nil {
			return "", false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone("").String(), true
}
