package gateway

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http/httpproxy"

	"github.com/pushgate/pushgate/gateway/sandbox"
)

// connectProxy is an HTTP CONNECT proxy that maps *.test names to loopback
// and counts the tunnels it opened, by target.
type connectProxy struct {
	auth    string // the Proxy-Authorization it requires
	mu      sync.Mutex
	tunnels map[string]int
	refused int
}

// toLoopback maps host.test:port to 127.0.0.1:port, as DNS would for a real provider.
func toLoopback(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && strings.HasSuffix(host, ".test") {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

func (p *connectProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	if r.Header.Get("Proxy-Authorization") != p.auth {
		p.mu.Lock()
		p.refused++
		p.mu.Unlock()
		w.Header().Set("Proxy-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusProxyAuthRequired)
		return
	}
	upstream, err := net.Dial("tcp", toLoopback(r.Host))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	p.mu.Lock()
	p.tunnels[r.Host]++
	p.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		upstream.Close()
		return
	}
	go func() {
		_, _ = io.Copy(upstream, buf)
		upstream.Close()
	}()
	_, _ = io.Copy(conn, upstream)
	conn.Close()
}

func (p *connectProxy) counts() (map[string]int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	tunnels := make(map[string]int, len(p.tunnels))
	for k, v := range p.tunnels {
		tunnels[k] = v
	}
	return tunnels, p.refused
}

func TestProvidersHonourTheProxy(t *testing.T) {
	const pushes = 5
	sb := mustStartSandboxAs(t, sandbox.Config{Hosts: []string{"apns.test", "fcm.test"}}, "fcm.test")
	srv, kit, caFile := sb.srv, sb.kit, sb.caFile
	_, port, _ := net.SplitHostPort(srv.Addr())
	apnsHost, fcmHost := "apns.test:"+port, "fcm.test:"+port
	apps := []AppConfig{
		{ID: "apple_rn", Kind: KindAPNs, Topic: testTopic, KeyFile: kit.APNsKeyFile, KeyID: kit.APNsKeyID, TeamID: kit.APNsTeamID,
			Environment: EnvDevelopment, Endpoint: "https://" + apnsHost, CAFile: caFile},
		{ID: "android_rn", Kind: KindFCM, ServiceAccountFile: kit.ServiceAccountFile, Endpoint: "https://" + fcmHost, CAFile: caFile},
	}

	// send makes pushes through a fresh registry whose proxy settings are env.
	send := func(t *testing.T, env httpproxy.Config) map[string][]Outcome {
		t.Helper()
		opts := fastOptions()
		opts.Attempts = 1
		opts.Proxy = env.ProxyFunc()
		var d net.Dialer
		opts.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, toLoopback(addr))
		}
		r := mustRegistry(t, apps, opts, nil)
		got := map[string][]Outcome{}
		for _, id := range []string{"apple_rn", "android_rn"} {
			for range pushes {
				res := sendTo(context.Background(), mustApp(t, r, id), "ok0123456789")
				got[id] = append(got[id], res.Outcome)
				if strings.Contains(res.Reason, "s3cret") {
					t.Errorf("the reason names the proxy password: %q", res.Reason)
				}
			}
		}
		return got
	}
	allDelivered := func(t *testing.T, got map[string][]Outcome) {
		t.Helper()
		for id, outcomes := range got {
			for _, o := range outcomes {
				if o != Delivered {
					t.Errorf("%s: %v, want %d delivered", id, outcomes, pushes)
					break
				}
			}
		}
	}

	t.Run("APNs and FCM tunnel through HTTPS_PROXY, one connection each", func(t *testing.T) {
		proxy := &connectProxy{auth: "Basic dXNlcjpzM2NyZXQ=", tunnels: map[string]int{}} // user:s3cret
		ps := httptest.NewServer(proxy)
		defer ps.Close()
		srv.ResetStats()
		allDelivered(t, send(t, httpproxy.Config{HTTPSProxy: "http://user:s3cret@" + ps.Listener.Addr().String()}))
		tunnels, refused := proxy.counts()
		if tunnels[apnsHost] != 1 || tunnels[fcmHost] != 1 || len(tunnels) != 2 || refused != 0 {
			t.Errorf("tunnels %v, %d refused; want one to %s and one to %s", tunnels, refused, apnsHost, fcmHost)
		}
		if s := srv.Stats(); s.APNs.Accepted != pushes || s.FCM.Accepted != pushes || s.OAuth.Accepted != 1 {
			t.Errorf("sandbox accepted %d APNs, %d FCM, %d token exchanges; want %d, %d, 1", s.APNs.Accepted, s.FCM.Accepted, s.OAuth.Accepted, pushes, pushes)
		}
	})

	t.Run("concurrent first pushes share one APNs tunnel", func(t *testing.T) {
		const senders = 50
		proxy := &connectProxy{tunnels: map[string]int{}}
		ps := httptest.NewServer(proxy)
		defer ps.Close()
		opts := fastOptions()
		opts.Attempts = 1
		opts.Proxy = (&httpproxy.Config{HTTPSProxy: "http://" + ps.Listener.Addr().String()}).ProxyFunc()
		r := mustRegistry(t, apps, opts, nil)
		srv.ResetStats()
		var delivered atomic.Int64
		var wg sync.WaitGroup
		for i := range 2 * senders {
			wg.Go(func() {
				id := []string{"apple_rn", "android_rn"}[i%2]
				if res := sendTo(context.Background(), mustApp(t, r, id), "ok0123456789"); res.Outcome == Delivered {
					delivered.Add(1)
				} else {
					t.Errorf("%s: %+v", id, res)
				}
			})
		}
		wg.Wait()
		tunnels, _ := proxy.counts()
		s := srv.Stats()
		if delivered.Load() != 2*senders || s.APNs.Accepted != senders || s.FCM.Accepted != senders {
			t.Errorf("%d delivered; sandbox accepted %d APNs and %d FCM; want %d, %d, %d", delivered.Load(), s.APNs.Accepted, s.FCM.Accepted, 2*senders, senders, senders)
		}
		if tunnels[apnsHost] != 1 || tunnels[fcmHost] < 1 {
			t.Errorf("tunnels %v; want exactly one to %s (one HTTP/2 connection) and at least one to %s", tunnels, apnsHost, fcmHost)
		}
	})

	t.Run("NO_PROXY hosts are dialled directly", func(t *testing.T) {
		proxy := &connectProxy{auth: "", tunnels: map[string]int{}}
		ps := httptest.NewServer(proxy)
		defer ps.Close()
		allDelivered(t, send(t, httpproxy.Config{HTTPSProxy: "http://" + ps.Listener.Addr().String(), NoProxy: "apns.test,.fcm.test,fcm.test"}))
		if tunnels, refused := proxy.counts(); len(tunnels) != 0 || refused != 0 {
			t.Errorf("tunnels %v, %d refused; want none", tunnels, refused)
		}
	})

	t.Run("a proxy that refuses the tunnel is retried later", func(t *testing.T) {
		proxy := &connectProxy{auth: "Basic other", tunnels: map[string]int{}}
		ps := httptest.NewServer(proxy)
		defer ps.Close()
		got := send(t, httpproxy.Config{HTTPSProxy: "http://user:s3cret@" + ps.Listener.Addr().String()})
		for id, outcomes := range got {
			for _, o := range outcomes {
				if o != RetryLater {
					t.Errorf("%s: %v, want retry later every time", id, outcomes)
					break
				}
			}
		}
		if tunnels, refused := proxy.counts(); len(tunnels) != 0 || refused < 2 {
			t.Errorf("tunnels %v, %d refused; want none opened and both providers refused", tunnels, refused)
		}
	})
}
