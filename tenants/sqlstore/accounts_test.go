package sqlstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
)

func TestOwnerAccounts(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		ws := mustCreate(t, db, "ws_aaaaaaaaaaaaaaaaaaaa", "pgw_us_accounts", base)

		t.Run("an account is found by its email in any case", func(t *testing.T) {
			a := &tenants.OwnerAccount{WorkspaceID: ws.ID, Email: " Owner@Example.com", PasswordHash: "h", CreatedAt: base.In(cest)}
			if err := db.CreateOwnerAccount(ctx, a); err != nil {
				t.Fatal(err)
			}
			got, err := db.OwnerAccountByEmail(ctx, "OWNER@example.COM")
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != a.ID || got.WorkspaceID != ws.ID || got.Email != "owner@example.com" || !got.CreatedAt.Equal(base) {
				t.Fatalf("got %+v, want %+v", got, a)
			}
		})
		t.Run("a taken email is a conflict naming the field", func(t *testing.T) {
			err := db.CreateOwnerAccount(ctx, &tenants.OwnerAccount{WorkspaceID: ws.ID, Email: "owner@example.com", PasswordHash: "h"})
			if e := tenants.AsError(err); e.Code != tenants.CodeConflict || e.Field != "email" {
				t.Fatalf("got %v, want a conflict on email", err)
			}
		})
		t.Run("an unknown email is not found", func(t *testing.T) {
			if _, err := db.OwnerAccountByEmail(ctx, "nobody@example.com"); tenants.ErrorCode(err) != tenants.CodeNotFound {
				t.Fatalf("got %v, want not found", err)
			}
		})
		t.Run("an account of a missing workspace is refused", func(t *testing.T) {
			err := db.CreateOwnerAccount(ctx, &tenants.OwnerAccount{WorkspaceID: "ws_bbbbbbbbbbbbbbbbbbbb", Email: "x@example.com", PasswordHash: "h"})
			if tenants.ErrorCode(err) != tenants.CodeNotFound {
				t.Fatalf("got %v, want not found", err)
			}
		})
	})
}

func TestSessions(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := tenants.Session{IDHash: "h1", Kind: tenants.SessionOwner, AccountID: 7, WorkspaceID: "ws_x", Email: "a@example.com",
			CSRF: "c", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
		if err := db.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		t.Run("a live session is found with everything it holds", func(t *testing.T) {
			got, err := db.Session(ctx, "h1", base.Add(time.Hour-time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != s.Kind || got.AccountID != 7 || got.WorkspaceID != "ws_x" || got.CSRF != "c" || !got.ExpiresAt.Equal(s.ExpiresAt) {
				t.Fatalf("got %+v, want %+v", got, s)
			}
		})
		t.Run("an expired session is not found", func(t *testing.T) {
			if _, err := db.Session(ctx, "h1", base.Add(time.Hour)); tenants.ErrorCode(err) != tenants.CodeNotFound {
				t.Fatalf("got %v, want not found", err)
			}
		})
		t.Run("a new session purges expired ones", func(t *testing.T) {
			later := tenants.Session{IDHash: "h2", Kind: tenants.SessionOperator, AccountID: 1, Email: "op@example.com",
				CSRF: "d", CreatedAt: base.Add(2 * time.Hour), ExpiresAt: base.Add(3 * time.Hour)}
			if err := db.CreateSession(ctx, later); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Session(ctx, "h1", base); tenants.ErrorCode(err) != tenants.CodeNotFound {
				t.Fatalf("got %v, want the expired session gone", err)
			}
		})
		t.Run("a deleted session is not found", func(t *testing.T) {
			if err := db.DeleteSession(ctx, "h2"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Session(ctx, "h2", base.Add(2*time.Hour)); tenants.ErrorCode(err) != tenants.CodeNotFound {
				t.Fatalf("got %v, want not found", err)
			}
		})
	})
}

func TestSignInAttemptsAreCountedExactlyUnderConcurrency(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		const n = 50
		var wg sync.WaitGroup
		counts := make(chan int, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := db.AddSignInAttempt(ctx, "addr:192.0.2.1", base, 15*time.Minute)
				if err != nil {
					t.Error(err)
				}
				counts <- c
			}()
		}
		wg.Wait()
		close(counts)
		seen := map[int]bool{}
		for c := range counts {
			if seen[c] {
				t.Fatalf("two attempts both saw count %d", c)
			}
			seen[c] = true
		}
		if len(seen) != n || !seen[1] || !seen[n] {
			t.Fatalf("counts %v, want 1 to %d once each", seen, n)
		}
		mustAdd := func(subject string, at time.Time, want int) {
			t.Helper()
			got, err := db.AddSignInAttempt(ctx, subject, at, 15*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("%s at %s: %d attempts, want %d", subject, at, got, want)
			}
		}
		mustAdd("addr:192.0.2.1", base.Add(14*time.Minute), n+1)
		mustAdd("email:someone@example.com", base, 1)
		mustAdd("addr:192.0.2.1", base.Add(15*time.Minute), 1) // a new window
		if err := db.ForgetSignInAttempt(ctx, "addr:192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		mustAdd("addr:192.0.2.1", base.Add(16*time.Minute), 1)
		if err := db.ClearSignInAttempts(ctx, "email:someone@example.com"); err != nil {
			t.Fatal(err)
		}
		mustAdd("email:someone@example.com", base.Add(time.Minute), 1)
		mustAdd("email:someone@example.com", base.Add(2*time.Minute), 2)
		mustAdd("addr:192.0.2.2", base.Add(25*time.Hour), 1) // forgets the day-old windows
		mustAdd("email:someone@example.com", base.Add(25*time.Hour+time.Minute), 1)
	})
}

func TestOwnerEmailReservations(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		ws := mustCreate(t, db, "ws_cccccccccccccccccccc", "pgw_us_reservations", base)
		reserve := func(email string, at time.Time) (*tenants.OwnerAccount, error) {
			a := &tenants.OwnerAccount{Email: email, PasswordHash: "h", CreatedAt: at}
			return a, db.ReserveOwnerEmail(ctx, a, at.Add(-10*time.Minute))
		}

		t.Run("of concurrent reservations of one email exactly one succeeds", func(t *testing.T) {
			const n = 20
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := reserve("race@example.com", base)
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			won := 0
			for err := range errs {
				switch {
				case err == nil:
					won++
				case tenants.ErrorCode(err) != tenants.CodeConflict:
					t.Fatal(err)
				}
			}
			if won != 1 {
				t.Fatalf("%d reservations succeeded, want 1", won)
			}
		})
		t.Run("a reserved email cannot sign in until its workspace is attached", func(t *testing.T) {
			a, err := reserve("pending@example.com", base)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.OwnerAccountByEmail(ctx, "pending@example.com"); tenants.ErrorCode(err) != tenants.CodeNotFound {
				t.Fatalf("a reservation is found: %v", err)
			}
			if err := db.AttachOwnerAccount(ctx, a.ID, ws.ID); err != nil {
				t.Fatal(err)
			}
			got, err := db.OwnerAccountByEmail(ctx, "pending@example.com")
			if err != nil || got.WorkspaceID != ws.ID {
				t.Fatalf("got %+v, %v", got, err)
			}
			if err := db.ReleaseOwnerEmail(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := db.OwnerAccountByEmail(ctx, "pending@example.com"); err != nil {
				t.Fatalf("releasing deleted an attached account: %v", err)
			}
		})
		t.Run("a released or stale reservation frees the email", func(t *testing.T) {
			a, err := reserve("released@example.com", base)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.ReleaseOwnerEmail(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := reserve("released@example.com", base); err != nil {
				t.Fatalf("after release: %v", err)
			}
			if _, err := reserve("released@example.com", base.Add(5*time.Minute)); tenants.ErrorCode(err) != tenants.CodeConflict {
				t.Fatalf("a fresh reservation was replaced: %v", err)
			}
			if _, err := reserve("released@example.com", base.Add(11*time.Minute)); err != nil {
				t.Fatalf("a stale reservation was kept: %v", err)
			}
		})
		t.Run("an attached account's email is never taken over", func(t *testing.T) {
			if _, err := reserve("pending@example.com", base.Add(time.Hour)); tenants.ErrorCode(err) != tenants.CodeConflict {
				t.Fatalf("got %v, want a conflict", err)
			}
		})
	})
}

func TestSetOwnerPasswordEndsTheOtherSessions(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		ws := mustCreate(t, db, "ws_dddddddddddddddddddd", "pgw_us_passwords", base)
		a := &tenants.OwnerAccount{WorkspaceID: ws.ID, Email: "pw@example.com", PasswordHash: "old"}
		if err := db.CreateOwnerAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"keep", "other1", "other2"} {
			if err := db.CreateSession(ctx, tenants.Session{IDHash: id, Kind: tenants.SessionOwner, AccountID: a.ID, WorkspaceID: ws.ID,
				Email: a.Email, CSRF: "c", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.CreateSession(ctx, tenants.Session{IDHash: "operator", Kind: tenants.SessionOperator, AccountID: a.ID,
			Email: "op@example.com", CSRF: "c", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := db.SetOwnerPassword(ctx, a.ID, "new", "keep"); err != nil {
			t.Fatal(err)
		}
		got, err := db.OwnerAccountByEmail(ctx, a.Email)
		if err != nil || got.PasswordHash != "new" {
			t.Fatalf("got %+v, %v", got, err)
		}
		for id, alive := range map[string]bool{"keep": true, "other1": false, "other2": false, "operator": true} {
			_, err := db.Session(ctx, id, base)
			if (err == nil) != alive {
				t.Errorf("session %s: %v, want alive=%v", id, err, alive)
			}
		}
		if err := db.SetOwnerPassword(ctx, 999999, "x", ""); tenants.ErrorCode(err) != tenants.CodeNotFound {
			t.Fatalf("an unknown account: %v", err)
		}
	})
}
