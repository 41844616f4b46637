package tenants_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
	"github.com/pushgate/pushgate/tenants/storetest"
)

// clock is a settable time source for tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

var termsV1 = tenants.Terms{Version: "2026-11-01", URL: "https://gw.example/terms/2026-11-01", PublishedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}

func mustService(t *testing.T, db *sqlstore.DB, clk *clock, region string) *tenants.Service {
	t.Helper()
	svc := tenants.NewService(db, tenants.Config{
		Region: region, PublicURL: "https://" + region + ".gw.example",
		RegionURLs: map[string]string{"us": "https://us.gw.example", "de": "https://de.gw.example"},
		Terms:      termsV1, TermsGrace: 30 * 24 * time.Hour, AuthCacheTTL: time.Minute, Now: clk.Now,
		PasswordCost: bcrypt.MinCost,
	})
	if err := svc.PublishConfiguredTerms(context.Background()); err != nil {
		t.Fatal(err)
	}
	return svc
}

func mustRegister(t testing.TB, svc *tenants.Service, name string, accept bool) *tenants.Registration {
	t.Helper()
	req := tenants.RegisterRequest{Name: name, ContactEmail: "admin@" + strings.ToLower(name) + ".example"}
	if accept {
		req.AcceptTermsVersion = termsV1.Version
	}
	reg, err := svc.Register(context.Background(), req, "test", "127.0.0.1")
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return reg
}

func mustAuth(t *testing.T, svc *tenants.Service, token string) *tenants.Principal {
	t.Helper()
	p, err := svc.Authenticate(context.Background(), token)
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	return p
}

func TestAuthentication(t *testing.T) {
	ctx := context.Background()
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		clk := &clock{now: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
		us := mustService(t, db, clk, "us")
		a := mustRegister(t, us, "Alpha", true)
		b := mustRegister(t, us, "Beta", true)

		t.Run("a token authenticates its own workspace only", func(t *testing.T) {
			if p := mustAuth(t, us, a.Token); p.Workspace.ID != a.Workspace.ID {
				t.Fatalf("token of %s authenticated %s", a.Workspace.ID, p.Workspace.ID)
			}
			if p := mustAuth(t, us, b.Token); p.Workspace.ID != b.Workspace.ID {
				t.Fatalf("token of %s authenticated %s", b.Workspace.ID, p.Workspace.ID)
			}
		})
		t.Run("a malformed token is unauthorized", func(t *testing.T) {
			// The last character changed: to "x", unless it is one already (1 in 62).
			last := "x"
			if strings.HasSuffix(a.Token, last) {
				last = "y"
			}
			for _, tok := range []string{"", "nope", a.Token[:len(a.Token)-1] + last, strings.ToUpper(a.Token)} {
				_, err := us.Authenticate(ctx, tok)
				storetest.WantCode(t, err, tenants.CodeUnauthorized, "token_malformed")
			}
		})
		t.Run("a well-formed unknown token is unauthorized", func(t *testing.T) {
			tok, _ := tenants.NewToken("us")
			_, err := us.Authenticate(ctx, tok)
			storetest.WantCode(t, err, tenants.CodeUnauthorized, "token_unknown")
		})
		t.Run("a token of another region is misdirected to that region's URL", func(t *testing.T) {
			de := mustService(t, db, clk, "de")
			_, err := de.Authenticate(ctx, a.Token)
			storetest.WantCode(t, err, tenants.CodeMisdirected, "wrong_region")
			if e := tenants.AsError(err); e.RegionURL != "https://us.gw.example" || !strings.Contains(e.Message, "https://us.gw.example") {
				t.Fatalf("misdirected error does not name the us URL: %+v", e)
			}
		})
		t.Run("a rotated token is refused at once on the same replica", func(t *testing.T) {
			mustAuth(t, us, a.Token) // cached
			newTok, err := us.RotateToken(ctx, a.Workspace.ID, "test", 0)
			if err != nil {
				t.Fatal(err)
			}
			_, err = us.Authenticate(ctx, a.Token)
			storetest.WantCode(t, err, tenants.CodeUnauthorized, "token_unknown")
			if p := mustAuth(t, us, newTok); p.Workspace.ID != a.Workspace.ID {
				t.Fatal("new token does not authenticate")
			}
			if p := mustAuth(t, us, b.Token); p.Workspace.ID != b.Workspace.ID {
				t.Fatal("rotating one workspace's token broke another's")
			}
			a.Token = newTok
		})
		t.Run("a rotation grace period keeps the old token until it ends", func(t *testing.T) {
			old := a.Token
			newTok, err := us.RotateToken(ctx, a.Workspace.ID, "test", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			mustAuth(t, us, old)
			mustAuth(t, us, newTok)
			clk.Set(clk.Now().Add(time.Hour + 2*time.Minute)) // past the grace and the cache TTL
			_, err = us.Authenticate(ctx, old)
			storetest.WantCode(t, err, tenants.CodeUnauthorized, "token_unknown")
			mustAuth(t, us, newTok)
			a.Token = newTok
		})
		t.Run("a grace period beyond the bound is refused", func(t *testing.T) {
			_, err := us.RotateToken(ctx, a.Workspace.ID, "test", 48*time.Hour)
			storetest.WantCode(t, err, tenants.CodeInvalid, "")
		})
		t.Run("rotating an unknown workspace is not found", func(t *testing.T) {
			_, err := us.RotateToken(ctx, "ws_doesnotexist", "test", 0)
			storetest.WantCode(t, err, tenants.CodeNotFound, "")
		})
	})
}

func TestConcurrentAuthenticationHitsTheStoreOnce(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		clk := &clock{now: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
		counting := &countingStore{Store: db}
		svc := tenants.NewService(counting, tenants.Config{Region: "us", PublicURL: "https://gw.example",
			Terms: termsV1, AuthCacheTTL: time.Minute, Now: clk.Now})
		if err := svc.PublishConfiguredTerms(context.Background()); err != nil {
			t.Fatal(err)
		}
		reg := mustRegister(t, svc, "Gamma", true)
		var wg sync.WaitGroup
		for range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := svc.Authenticate(context.Background(), reg.Token); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if n := counting.auths(); n != 1 {
			t.Fatalf("200 concurrent authentications of one token queried the store %d times, want 1", n)
		}
	})
}

// countingStore counts Authenticate calls that reach the store.
type countingStore struct {
	tenants.Store
	mu sync.Mutex
	n  int
}

func (c *countingStore) Authenticate(ctx context.Context, hash string, now time.Time) (*tenants.Workspace, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.Store.Authenticate(ctx, hash, now)
}

func (c *countingStore) auths() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func TestTermsConsent(t *testing.T) {
	ctx := context.Background()
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		clk := &clock{now: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
		svc := mustService(t, db, clk, "us")
		reg := mustRegister(t, svc, "Delta", false)

		t.Run("before consent the workspace may not send and is told where to accept", func(t *testing.T) {
			err := svc.CanSend(ctx, mustAuth(t, svc, reg.Token))
			storetest.WantCode(t, err, tenants.CodeForbidden, "terms_not_accepted")
			if msg := err.Error(); !strings.Contains(msg, termsV1.Version) || !strings.Contains(msg, termsV1.URL) || !strings.Contains(msg, "/api/v1/workspace/consent") {
				t.Fatalf("error does not say which version and where: %s", msg)
			}
		})
		t.Run("consent to another version is refused as a conflict", func(t *testing.T) {
			_, err := svc.Accept(ctx, mustAuth(t, svc, reg.Token), "2020-01-01", "admin@delta.example", "10.0.0.1")
			storetest.WantCode(t, err, tenants.CodeConflict, "terms_version_not_current")
		})
		t.Run("after consent the workspace may send", func(t *testing.T) {
			if _, err := svc.Accept(ctx, mustAuth(t, svc, reg.Token), termsV1.Version, "admin@delta.example", "10.0.0.1"); err != nil {
				t.Fatal(err)
			}
			if err := svc.CanSend(ctx, mustAuth(t, svc, reg.Token)); err != nil {
				t.Fatalf("CanSend after consent: %v", err)
			}
		})

		// The operator publishes a new version; the previous consent carries a grace period.
		v2 := tenants.Terms{Version: "2026-12-01", URL: "https://gw.example/terms/2026-12-01", PublishedAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
		svc2 := tenants.NewService(db, tenants.Config{Region: "us", PublicURL: "https://gw.example", Terms: v2,
			TermsGrace: 30 * 24 * time.Hour, AuthCacheTTL: time.Minute, Now: clk.Now})
		if err := svc2.PublishConfiguredTerms(ctx); err != nil {
			t.Fatal(err)
		}
		t.Run("a version published in the future does not apply yet", func(t *testing.T) {
			if err := svc2.CanSend(ctx, mustAuth(t, svc2, reg.Token)); err != nil {
				t.Fatalf("CanSend before v2 takes effect: %v", err)
			}
		})
		t.Run("inside the grace period the old consent still sends and is told to re-accept", func(t *testing.T) {
			clk.Set(time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC))
			p := mustAuth(t, svc2, reg.Token)
			if err := svc2.CanSend(ctx, p); err != nil {
				t.Fatalf("CanSend inside grace: %v", err)
			}
			st, err := svc2.TermsState(ctx, p)
			if err != nil || st.Status != "grace" || st.GraceUntil == nil || !st.GraceUntil.Equal(v2.PublishedAt.Add(30*24*time.Hour)) {
				t.Fatalf("TermsState = %+v, %v; want grace until %s", st, err, v2.PublishedAt.Add(30*24*time.Hour))
			}
		})
		t.Run("past the grace period the old consent no longer sends", func(t *testing.T) {
			clk.Set(time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC))
			err := svc2.CanSend(ctx, mustAuth(t, svc2, reg.Token))
			storetest.WantCode(t, err, tenants.CodeForbidden, "terms_outdated")
			if !strings.Contains(err.Error(), v2.Version) {
				t.Fatalf("error does not name the new version: %v", err)
			}
		})
		t.Run("re-accepting restores sending and keeps the history", func(t *testing.T) {
			if _, err := svc2.Accept(ctx, mustAuth(t, svc2, reg.Token), v2.Version, "admin@delta.example", "10.0.0.2"); err != nil {
				t.Fatal(err)
			}
			if err := svc2.CanSend(ctx, mustAuth(t, svc2, reg.Token)); err != nil {
				t.Fatal(err)
			}
			hist, err := db.Consents(ctx, reg.Workspace.ID)
			if err != nil || len(hist) != 2 || hist[0].TermsVersion != termsV1.Version || hist[1].TermsVersion != v2.Version || hist[1].AcceptedIP != "10.0.0.2" {
				t.Fatalf("consent history = %+v, %v", hist, err)
			}
		})
	})
}

func TestSuspension(t *testing.T) {
	ctx := context.Background()
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		clk := &clock{now: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
		svc := mustService(t, db, clk, "us")
		reg := mustRegister(t, svc, "Epsilon", true)
		mustAuth(t, svc, reg.Token) // cached before the suspension
		suspended := tenants.StatusSuspended
		if _, err := svc.Update(ctx, reg.Workspace.ID, "operator:test", "workspace.suspend", tenants.WorkspaceChange{Status: &suspended}); err != nil {
			t.Fatal(err)
		}
		t.Run("a suspended workspace may not send and is told so", func(t *testing.T) {
			err := svc.CanSend(ctx, mustAuth(t, svc, reg.Token))
			storetest.WantCode(t, err, tenants.CodeForbidden, "suspended")
			if !strings.Contains(err.Error(), "suspended") {
				t.Fatalf("error does not say suspended: %v", err)
			}
		})
		t.Run("resuming restores sending", func(t *testing.T) {
			active := tenants.StatusActive
			if _, err := svc.Update(ctx, reg.Workspace.ID, "operator:test", "workspace.resume", tenants.WorkspaceChange{Status: &active}); err != nil {
				t.Fatal(err)
			}
			if err := svc.CanSend(ctx, mustAuth(t, svc, reg.Token)); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("operator actions are in the audit log", func(t *testing.T) {
			log, err := db.AuditLog(ctx, reg.Workspace.ID, 10)
			if err != nil {
				t.Fatal(err)
			}
			var actions []string
			for _, e := range log {
				actions = append(actions, e.Action)
			}
			got := strings.Join(actions, ",")
			if got != "workspace.resume,workspace.suspend,workspace.create" {
				t.Fatalf("audit log actions = %s", got)
			}
		})
	})
}

func TestPlanChanges(t *testing.T) {
	ctx := context.Background()
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		clk := &clock{now: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
		svc := mustService(t, db, clk, "us")
		reg := mustRegister(t, svc, "Zeta", true)
		set := func(plan tenants.Plan, limit *int64) (*tenants.Workspace, error) {
			change := tenants.WorkspaceChange{Plan: &plan}
			if limit != nil {
				change.QuotaLimit = &limit
			}
			return svc.Update(ctx, reg.Workspace.ID, "operator:test", "workspace.set_plan", change)
		}
		n := int64(5_000_000)
		tests := []struct {
			name  string
			plan  tenants.Plan
			limit *int64
			want  int64
			code  tenants.Code
		}{
			{"pro has a million", tenants.PlanPro, nil, 1_000_000, ""},
			{"enterprise is unlimited by default", tenants.PlanEnterprise, nil, tenants.Unlimited, ""},
			{"enterprise takes a custom limit", tenants.PlanEnterprise, &n, n, ""},
			{"a custom limit on pro is refused", tenants.PlanPro, &n, 0, tenants.CodeInvalid},
			{"an unknown plan is refused", "gold", nil, 0, tenants.CodeInvalid},
			{"free has ten thousand and drops the custom limit", tenants.PlanFree, nil, 10_000, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ws, err := set(tt.plan, tt.limit)
				if tt.code != "" {
					storetest.WantCode(t, err, tt.code, "")
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got := ws.MonthlyLimit(); got != tt.want {
					t.Fatalf("limit = %d, want %d", got, tt.want)
				}
				if got := mustAuth(t, svc, reg.Token).Workspace.MonthlyLimit(); got != tt.want {
					t.Fatalf("authenticated limit = %d, want %d (the cache was not invalidated)", got, tt.want)
				}
			})
		}
	})
}

func TestRegistrationValidation(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		svc := mustService(t, db, &clock{now: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}, "us")
		long := strings.Repeat("n", tenants.MaxNameLen+1)
		tests := []struct {
			name  string
			req   tenants.RegisterRequest
			field string
		}{
			{"a missing name is refused", tenants.RegisterRequest{ContactEmail: "a@b.example"}, "name"},
			{"an overlong name is refused", tenants.RegisterRequest{Name: long, ContactEmail: "a@b.example"}, "name"},
			{"a missing email is refused", tenants.RegisterRequest{Name: "x"}, "contact_email"},
			{"an invalid email is refused", tenants.RegisterRequest{Name: "x", ContactEmail: "not-an-email"}, "contact_email"},
			{"an email with a display name is refused", tenants.RegisterRequest{Name: "x", ContactEmail: "Bob <bob@b.example>"}, "contact_email"},
			{"a server id with spaces is refused", tenants.RegisterRequest{Name: "x", ContactEmail: "a@b.example", ServerID: "a b"}, "server_id"},
			{"an unknown privacy policy is refused", tenants.RegisterRequest{Name: "x", ContactEmail: "a@b.example", Privacy: "some"}, "privacy"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := svc.Register(context.Background(), tt.req, "test", "")
				storetest.WantCode(t, err, tenants.CodeInvalid, "")
				if f := tenants.AsError(err).Field; f != tt.field {
					t.Fatalf("error names field %q, want %q (%v)", f, tt.field, err)
				}
			})
		}
		list, err := svc.Workspaces(context.Background())
		if err != nil || len(list) != 0 {
			t.Fatalf("refused registrations wrote %d workspaces (%v)", len(list), err)
		}
	})
}

func TestOperatorAccounts(t *testing.T) {
	ctx := context.Background()
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		svc := mustService(t, db, &clock{now: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}, "us")
		op, err := svc.CreateOperator(ctx, "Ops@Pushgate.example", "a long enough password")
		if err != nil {
			t.Fatal(err)
		}
		t.Run("the password is stored as a bcrypt hash", func(t *testing.T) {
			if !strings.HasPrefix(op.PasswordHash, "$2a$04$") || strings.Contains(op.PasswordHash, "long enough") {
				t.Fatalf("stored hash %q", op.PasswordHash)
			}
		})
		t.Run("the right password signs in, case-insensitive email", func(t *testing.T) {
			if _, err := svc.CheckOperatorPassword(ctx, "ops@pushgate.example", "a long enough password"); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("a wrong password or unknown email is unauthorized", func(t *testing.T) {
			_, err := svc.CheckOperatorPassword(ctx, "ops@pushgate.example", "wrong password!!")
			storetest.WantCode(t, err, tenants.CodeUnauthorized, "")
			_, err = svc.CheckOperatorPassword(ctx, "nobody@pushgate.example", "a long enough password")
			storetest.WantCode(t, err, tenants.CodeUnauthorized, "")
		})
		t.Run("a second account with the same email is a conflict", func(t *testing.T) {
			_, err := svc.CreateOperator(ctx, "ops@pushgate.example", "another long password")
			storetest.WantCode(t, err, tenants.CodeConflict, "")
		})
	})
}

func TestChangesReachOtherReplicas(t *testing.T) {
	ctx := context.Background()
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		clk := &clock{now: time.Now()}
		a := mustService(t, db, clk, "us") // the replica (or CLI) that makes the change
		b := mustService(t, db, clk, "us") // a replica that has the workspace cached for a minute
		reg := mustRegister(t, a, "Theta", true)
		if err := b.CanSend(ctx, mustAuth(t, b, reg.Token)); err != nil {
			t.Fatal(err)
		}
		watchCtx, stop := context.WithCancel(ctx)
		defer stop()
		go b.WatchChanges(watchCtx, 20*time.Millisecond)

		suspended := tenants.StatusSuspended
		if _, err := a.Update(ctx, reg.Workspace.ID, "operator:test", "workspace.suspend", tenants.WorkspaceChange{Status: &suspended}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := b.CanSend(ctx, mustAuth(t, b, reg.Token))
			if tenants.ErrorCode(err) == tenants.CodeForbidden {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a suspension on one replica did not reach another within 5 s despite its one-minute cache")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// BenchmarkAuthenticate measures what a push does with its token before the
// quota check: "token" is the hash alone, "cached" is the
// hot path (Authenticate and CanSend with the token in the auth cache) and
// "miss" goes to the store on every call.
func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	start := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

	b.Run("token", func(b *testing.B) {
		token, err := tenants.NewToken("us")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			tenants.HashToken(token)
		}
	})

	b.Run("cached", func(b *testing.B) {
		// A clock that stands still keeps the token and the terms cached.
		svc, token := mustBenchService(b, storetest.SQLite(b), func() time.Time { return start })
		send := func() error {
			p, err := svc.Authenticate(ctx, token)
			if err != nil {
				return err
			}
			return svc.CanSend(ctx, p)
		}
		b.Run("serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := send(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := send(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	})

	b.Run("miss", func(b *testing.B) {
		for _, backend := range []struct{ name, url string }{
			{"sqlite", storetest.SQLite(b)},
			{"postgres", storetest.Postgres(b)},
		} {
			b.Run(backend.name, func(b *testing.B) {
				// Every reading of this clock is past the cache TTL of the one before.
				var ticks atomic.Int64
				later := func() time.Time { return start.Add(time.Duration(ticks.Add(1)) * 2 * benchCacheTTL) }
				svc, token := mustBenchService(b, backend.url, later)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := svc.Authenticate(ctx, token); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}

const benchCacheTTL = time.Minute

// mustBenchService returns a service over a fresh database at url, with the
// clock now, and the token of a workspace that accepted the terms.
func mustBenchService(b *testing.B, url string, now func() time.Time) (*tenants.Service, string) {
	b.Helper()
	svc := tenants.NewService(sqltest.Migrated(b, url), tenants.Config{Region: "us", PublicURL: "https://us.gw.example",
		Terms: termsV1, AuthCacheTTL: benchCacheTTL, Now: now})
	if err := svc.PublishConfiguredTerms(context.Background()); err != nil {
		b.Fatal(err)
	}
	return svc, mustRegister(b, svc, "Bench", true).Token
}
