package tenants_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
	"github.com/pushgate/pushgate/tenants/storetest"
)

// flakyStore is a real store whose reads the test can make fail (down) or
// hang until their context ends (frozen), counting the token lookups.
type flakyStore struct {
	tenants.Store
	down, frozen atomic.Bool
	lookups      atomic.Int64
}

var errRefused = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

func (s *flakyStore) fail(ctx context.Context) error {
	if s.frozen.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	if s.down.Load() {
		return errRefused
	}
	return nil
}

func (s *flakyStore) Authenticate(ctx context.Context, hash string, now time.Time) (*tenants.Workspace, error) {
	s.lookups.Add(1)
	if err := s.fail(ctx); err != nil {
		return nil, err
	}
	return s.Store.Authenticate(ctx, hash, now)
}

func (s *flakyStore) LatestConsent(ctx context.Context, id string) (*tenants.Consent, error) {
	if err := s.fail(ctx); err != nil {
		return nil, err
	}
	return s.Store.LatestConsent(ctx, id)
}

func (s *flakyStore) CurrentTerms(ctx context.Context, now time.Time) (*tenants.Terms, error) {
	if err := s.fail(ctx); err != nil {
		return nil, err
	}
	return s.Store.CurrentTerms(ctx, now)
}

// lockedLog is a log buffer that goroutines may share.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

type outageFixture struct {
	store *flakyStore
	svc   *tenants.Service
	clk   *clock
	reg   *prometheus.Registry
	logs  *lockedLog
	keys  *tenants.TokenKeys
}

func mustTestKeys(t testing.TB) *tenants.TokenKeys {
	t.Helper()
	k, err := tenants.NewTokenKey("t1")
	if err != nil {
		t.Fatal(err)
	}
	return &tenants.TokenKeys{Current: k}
}

func mustOutageFixture(t *testing.T, cfg tenants.Config) *outageFixture {
	t.Helper()
	f := &outageFixture{store: &flakyStore{Store: sqltest.Migrated(t, storetest.SQLite(t))},
		clk: &clock{now: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}, reg: prometheus.NewRegistry(), logs: &lockedLog{}}
	if cfg.TokenKeys == nil {
		cfg.TokenKeys = mustTestKeys(t)
	}
	f.keys = cfg.TokenKeys
	cfg.Region, cfg.PublicURL, cfg.Terms = "us", "https://us.gw.example", termsV1
	cfg.Now, cfg.Registerer, cfg.PasswordCost = f.clk.Now, f.reg, bcrypt.MinCost
	cfg.Log = slog.New(slog.NewTextHandler(f.logs, nil))
	if cfg.AuthCacheTTL == 0 {
		cfg.AuthCacheTTL = time.Second
	}
	f.svc = tenants.NewService(f.store, cfg)
	if err := f.svc.PublishConfiguredTerms(context.Background()); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *outageFixture) after(d time.Duration) { f.clk.Set(f.clk.Now().Add(d)) }

// metric reads a counter or gauge of the service's registry, summed over labels matching label=value (if given).
func (f *outageFixture) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				for _, l := range m.GetLabel() {
					if l.GetName() == labels[i] && l.GetValue() != labels[i+1] {
						continue next
					}
				}
			}
			n += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return n
}

// authenticateAll authenticates token from goroutines × each calls at once and counts the outcomes by code.
func authenticateAll(svc *tenants.Service, token string, goroutines, each int) map[tenants.Code]int {
	var mu sync.Mutex
	got := map[tenants.Code]int{}
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				_, err := svc.Authenticate(context.Background(), token)
				code := tenants.Code("ok")
				if err != nil {
					code = tenants.ErrorCode(err)
				}
				mu.Lock()
				got[code]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return got
}

func TestAuthenticationDuringADatabaseOutage(t *testing.T) {
	f := mustOutageFixture(t, tenants.Config{AuthStaleMax: time.Hour})
	ctx := context.Background()
	reg := mustRegister(t, f.svc, "Alpha", true)
	mustAuth(t, f.svc, reg.Token)
	unknown, _ := f.keys.NewToken("us")

	f.after(2 * time.Second) // the cached entry is no longer fresh
	f.store.down.Store(true)
	const goroutines, each = 50, 40

	t.Run("a workspace authenticated before is served from the cache, every time", func(t *testing.T) {
		got := authenticateAll(f.svc, reg.Token, goroutines, each)
		if got["ok"] != goroutines*each {
			t.Fatalf("outcomes %v, want %d ok", got, goroutines*each)
		}
		if n := f.metric(t, "pushgate_auth_stale_served_total"); n != goroutines*each {
			t.Fatalf("stale served counted %v, want %d", n, goroutines*each)
		}
		p := mustAuth(t, f.svc, reg.Token)
		if err := f.svc.CanSend(ctx, p); err != nil {
			t.Fatalf("CanSend during the outage: %v", err)
		}
	})
	t.Run("an unknown token is unavailable, not unauthorized", func(t *testing.T) {
		_, err := f.svc.Authenticate(ctx, unknown)
		storetest.WantCode(t, err, tenants.CodeUnavailable, "auth_unavailable")
		if e := tenants.AsError(err); e.RetryAfterSeconds <= 0 {
			t.Fatalf("unavailable without Retry-After: %+v", e)
		}
	})
	t.Run("a forged token is still unauthorized, without a lookup", func(t *testing.T) {
		before := f.store.lookups.Load()
		forged := reg.Token[:len(reg.Token)-1] + "x"
		if strings.HasSuffix(reg.Token, "x") {
			forged = reg.Token[:len(reg.Token)-1] + "y"
		}
		_, err := f.svc.Authenticate(ctx, forged)
		storetest.WantCode(t, err, tenants.CodeUnauthorized, "token_malformed")
		if n := f.store.lookups.Load() - before; n != 0 {
			t.Fatalf("a forged token cost %d lookups", n)
		}
	})
	t.Run("the outage is logged once and shown by a gauge", func(t *testing.T) {
		if n := f.logs.count("level=WARN"); n != 1 {
			t.Fatalf("%d WARN lines, want 1:\n%s", n, f.logs.b.String())
		}
		if up := f.metric(t, "pushgate_auth_database_up"); up != 0 {
			t.Fatalf("pushgate_auth_database_up = %v during the outage", up)
		}
	})
	t.Run("a suspension made when the database is back wins", func(t *testing.T) {
		f.store.down.Store(false)
		if _, err := f.store.Store.UpdateWorkspace(ctx, reg.Workspace.ID, tenants.WorkspaceChange{Status: ptr(tenants.StatusSuspended)},
			tenants.AuditEntry{Actor: "test", Action: "workspace.suspend", WorkspaceID: reg.Workspace.ID, CreatedAt: f.clk.Now()}); err != nil {
			t.Fatal(err)
		}
		f.after(2 * time.Second)
		// The probe that finds the database back may run in the background:
		// ask until the answer comes from the database.
		for range 1000 {
			p, err := f.svc.Authenticate(ctx, reg.Token)
			if err != nil {
				t.Fatal(err)
			}
			if p.Workspace.Status == tenants.StatusSuspended {
				storetest.WantCode(t, f.svc.CanSend(ctx, p), tenants.CodeForbidden, "suspended")
				if n := f.logs.count("level=INFO msg=\"the database answers"); n != 1 {
					t.Fatalf("%d lines say the database is back, want 1", n)
				}
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatal("the suspension never reached authentication after the database came back")
	})
	t.Run("a rotation made when the database is back wins", func(t *testing.T) {
		f.store.down.Store(true)
		f.after(2 * time.Second)
		mustAuth(t, f.svc, reg.Token) // stale, during a second outage
		f.store.down.Store(false)
		fresh, _ := f.keys.NewToken("us")
		if err := f.store.Store.ReplaceToken(ctx, reg.Workspace.ID, tenants.Credential{Hash: tenants.HashToken(fresh), Hint: tenants.TokenHint(fresh)},
			f.clk.Now(), tenants.AuditEntry{Actor: "test", Action: "workspace.rotate_token", WorkspaceID: reg.Workspace.ID, CreatedAt: f.clk.Now()}); err != nil {
			t.Fatal(err)
		}
		f.after(2 * time.Second)
		for range 1000 {
			if _, err := f.svc.Authenticate(ctx, reg.Token); err != nil {
				storetest.WantCode(t, err, tenants.CodeUnauthorized, "token_unknown")
				if p := mustAuth(t, f.svc, fresh); p.Workspace.ID != reg.Workspace.ID {
					t.Fatalf("the new token authenticated %s", p.Workspace.ID)
				}
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatal("the rotated token kept working after the database came back")
	})
	t.Run("a stale entry older than auth_stale_max is not served", func(t *testing.T) {
		other := mustRegister(t, f.svc, "Beta", true)
		mustAuth(t, f.svc, other.Token)
		f.store.down.Store(true)
		f.after(2 * time.Hour)
		_, err := f.svc.Authenticate(ctx, other.Token)
		storetest.WantCode(t, err, tenants.CodeUnavailable, "auth_unavailable")
	})
}

func ptr[T any](v T) *T { return &v }

func TestAFrozenDatabaseCostsAnAuthenticationOneTimeout(t *testing.T) {
	f := mustOutageFixture(t, tenants.Config{AuthTimeout: 500 * time.Millisecond})
	reg := mustRegister(t, f.svc, "Alpha", true)
	mustAuth(t, f.svc, reg.Token)
	f.after(2 * time.Second)
	f.store.frozen.Store(true)
	unknown, _ := f.keys.NewToken("us")
	// Without a timeout these would wait for the frozen store forever (the test's own timeout).
	got := authenticateAll(f.svc, unknown, 20, 5)
	if got[tenants.CodeUnavailable] != 100 {
		t.Fatalf("outcomes %v, want 100 unavailable", got)
	}
	got = authenticateAll(f.svc, reg.Token, 20, 5)
	if got["ok"] != 100 {
		t.Fatalf("outcomes for the known workspace %v, want 100 ok", got)
	}
}

func TestForgedTokensCostNoLookup(t *testing.T) {
	f := mustOutageFixture(t, tenants.Config{})
	reg := mustRegister(t, f.svc, "Alpha", true)
	mustAuth(t, f.svc, reg.Token)
	before := f.store.lookups.Load()
	other := &tenants.TokenKeys{Current: mustTestKeys(t).Current}
	const n = 2000
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range n / 20 {
				var tok string
				if (i+j)%2 == 0 {
					tok, _ = other.NewToken("us") // signed, with another gateway's key
				} else {
					tok = reg.Token[:30] + fmt.Sprintf("%06d", i*1000+j) + reg.Token[36:] // a random part changed
				}
				if _, err := f.svc.Authenticate(context.Background(), tok); tenants.ErrorCode(err) != tenants.CodeUnauthorized {
					t.Errorf("forged token: %v, want unauthorized", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := f.store.lookups.Load() - before; got != 0 {
		t.Fatalf("%d forged tokens cost %d lookups, want 0", n, got)
	}
	if got := f.metric(t, "pushgate_auth_rejected_total", "reason", "forged"); got != n {
		t.Fatalf("rejected{reason=forged} = %v, want %d", got, n)
	}
}

func TestAnUnknownTokenCostsOneLookupUntilItsEntryExpires(t *testing.T) {
	f := mustOutageFixture(t, tenants.Config{})
	unknown, _ := f.keys.NewToken("us")
	got := authenticateAll(f.svc, unknown, 50, 20)
	if got[tenants.CodeUnauthorized] != 1000 {
		t.Fatalf("outcomes %v, want 1000 unauthorized", got)
	}
	if n := f.store.lookups.Load(); n != 1 {
		t.Fatalf("an unknown token asked 1000 times cost %d lookups, want 1", n)
	}
	f.after(2 * time.Second)
	authenticateAll(f.svc, unknown, 1, 1)
	if n := f.store.lookups.Load(); n != 2 {
		t.Fatalf("after its entry expired: %d lookups, want 2", n)
	}
}

func TestLegacyTokens(t *testing.T) {
	ctx := context.Background()
	f := mustOutageFixture(t, tenants.Config{})
	// A workspace registered before keys existed holds a legacy token.
	old := tenants.NewService(f.store, tenants.Config{Region: "us", PublicURL: "https://us.gw.example", Terms: termsV1, Now: f.clk.Now, PasswordCost: bcrypt.MinCost})
	reg := mustRegister(t, old, "Old", true)
	if len(reg.Token) != tenants.LegacyTokenLen {
		t.Fatalf("a service without keys issued a token of length %d", len(reg.Token))
	}
	t.Run("are accepted by default and counted", func(t *testing.T) {
		mustAuth(t, f.svc, reg.Token)
		mustAuth(t, f.svc, reg.Token)
		if n := f.metric(t, "pushgate_auth_legacy_tokens_total"); n != 2 {
			t.Fatalf("legacy tokens counted %v, want 2", n)
		}
	})
	t.Run("rotation issues a signed token", func(t *testing.T) {
		tok, err := f.svc.RotateToken(ctx, reg.Workspace.ID, "test", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != tenants.TokenLen || f.keys.Check(tok) != tenants.TokenSigned {
			t.Fatalf("rotated token %s… is not signed", tenants.TokenHint(tok))
		}
		if p := mustAuth(t, f.svc, tok); p.Workspace.ID != reg.Workspace.ID {
			t.Fatalf("rotated token authenticated %s", p.Workspace.ID)
		}
	})
	t.Run("are refused when the setting says so, without a lookup", func(t *testing.T) {
		strict := mustOutageFixture(t, tenants.Config{RefuseLegacyTokens: true})
		tok, _ := tenants.NewToken("us")
		_, err := strict.svc.Authenticate(ctx, tok)
		storetest.WantCode(t, err, tenants.CodeUnauthorized, "token_legacy")
		if n := strict.store.lookups.Load(); n != 0 {
			t.Fatalf("a refused legacy token cost %d lookups", n)
		}
	})
}

func TestVouch(t *testing.T) {
	f := mustOutageFixture(t, tenants.Config{})
	reg := mustRegister(t, f.svc, "Alpha", true)
	legacy, _ := tenants.NewToken("us")
	forged, _ := mustTestKeys(t).NewToken("us")
	for _, c := range []struct {
		name  string
		token string
		want  bool
	}{
		{"a token signed with our key is vouched for", reg.Token, true},
		{"an uncached legacy token is not", legacy, false},
		{"a token signed with another key is not", forged, false},
		{"garbage is not", "pgw_nope", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := f.svc.Vouch(c.token); got != c.want {
				t.Fatalf("Vouch = %v, want %v", got, c.want)
			}
		})
	}
}
