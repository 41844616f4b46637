package sqlstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
)

func mustLink(t *testing.T, db *sqlstore.DB, l tenants.OwnerLink) string {
	t.Helper()
	_, hash, err := tenants.NewLinkToken()
	if err != nil {
		t.Fatal(err)
	}
	l.TokenHash = hash
	if l.CreatedAt.IsZero() {
		l.CreatedAt = base
	}
	if l.ExpiresAt.IsZero() {
		l.ExpiresAt = l.CreatedAt.Add(time.Hour)
	}
	if err := db.CreateOwnerLink(context.Background(), &l, nil); err != nil {
		t.Fatal(err)
	}
	return hash
}

func TestOwnerLinks(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		ws := mustCreate(t, db, "ws_bbbbbbbbbbbbbbbbbbbb", "pgw_us_links", base)
		other := mustCreate(t, db, "ws_cccccccccccccccccccc", "pgw_us_links_other", base)

		t.Run("a link is live until it expires, and only for its own kind", func(t *testing.T) {
			hash := mustLink(t, db, tenants.OwnerLink{Kind: tenants.LinkClaim, WorkspaceID: ws.ID})
			if _, err := db.OwnerLink(ctx, tenants.LinkClaim, hash, base.Add(59*time.Minute)); err != nil {
				t.Fatal(err)
			}
			if _, err := db.OwnerLink(ctx, tenants.LinkInvite, hash, base); tenants.ErrorCode(err) != tenants.CodeNotFound {
				t.Fatalf("a claim read as an invitation: %v", err)
			}
			if _, err := db.OwnerLink(ctx, tenants.LinkClaim, hash, base.Add(time.Hour)); tenants.ErrorCode(err) != tenants.CodeNotFound {
				t.Fatalf("an expired link: %v", err)
			}
		})
		t.Run("of concurrent uses of one claim link exactly one creates an owner", func(t *testing.T) {
			hash := mustLink(t, db, tenants.OwnerLink{Kind: tenants.LinkClaim, WorkspaceID: other.ID})
			var wg sync.WaitGroup
			var mu sync.Mutex
			created, gone := 0, 0
			for i := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					a := &tenants.OwnerAccount{Email: fmt.Sprintf("racer%d@example.com", i), PasswordHash: "h"}
					_, err := db.AcceptOwnerLink(ctx, tenants.LinkClaim, hash, base, a, tenants.AuditEntry{Actor: "owner:" + a.Email, Action: "workspace.claim"})
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						created++
					case tenants.ErrorCode(err) == tenants.CodeNotFound || tenants.ErrorCode(err) == tenants.CodeConflict:
						gone++
					default:
						t.Errorf("a losing claim: %v", err)
					}
				}()
			}
			wg.Wait()
			owners, err := db.OwnerAccounts(ctx, other.ID)
			if err != nil || created != 1 || len(owners) != 1 || gone != 15 {
				t.Fatalf("created %d, refused %d, owners %+v (%v)", created, gone, owners, err)
			}
		})
		t.Run("concurrent removals leave the workspace at least one owner", func(t *testing.T) {
			var ids []int64
			for i := range 4 {
				a := &tenants.OwnerAccount{WorkspaceID: ws.ID, Email: fmt.Sprintf("owner%d@remove.example", i), PasswordHash: "h"}
				if err := db.CreateOwnerAccount(ctx, a); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, a.ID)
			}
			var wg sync.WaitGroup
			for range 3 {
				for _, id := range ids {
					wg.Add(1)
					go func() {
						defer wg.Done()
						err := db.RemoveOwner(ctx, ws.ID, id, tenants.AuditEntry{Actor: "test", Action: "owner.remove"})
						if err != nil && tenants.ErrorCode(err) != tenants.CodeConflict && tenants.ErrorCode(err) != tenants.CodeNotFound {
							t.Errorf("a removal: %v", err)
						}
					}()
				}
			}
			wg.Wait()
			owners, err := db.OwnerAccounts(ctx, ws.ID)
			if err != nil || len(owners) != 1 {
				t.Fatalf("owners left: %+v (%v)", owners, err)
			}
		})
		t.Run("an owner of another workspace is not removed through this one", func(t *testing.T) {
			owners, _ := db.OwnerAccounts(ctx, other.ID)
			err := db.RemoveOwner(ctx, ws.ID, owners[0].ID, tenants.AuditEntry{Actor: "test", Action: "owner.remove"})
			if tenants.ErrorCode(err) != tenants.CodeNotFound {
				t.Fatalf("got %v", err)
			}
		})
		t.Run("a reset sets the password, ends the account's sessions and works once", func(t *testing.T) {
			owners, _ := db.OwnerAccounts(ctx, other.ID)
			acct := owners[0]
			if err := db.CreateSession(ctx, tenants.Session{IDHash: "sess-reset", Kind: tenants.SessionOwner, AccountID: acct.ID,
				WorkspaceID: other.ID, Email: acct.Email, CSRF: "c", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			hash := mustLink(t, db, tenants.OwnerLink{Kind: tenants.LinkReset, WorkspaceID: other.ID, AccountID: acct.ID, Email: acct.Email})
			got, err := db.ResetPassword(ctx, hash, base.Add(time.Minute), "new-hash")
			if err != nil || got.ID != acct.ID {
				t.Fatalf("reset: %+v %v", got, err)
			}
			if a, _ := db.OwnerAccountByEmail(ctx, acct.Email); a.PasswordHash != "new-hash" {
				t.Fatalf("the password hash is %q", a.PasswordHash)
			}
			if _, err := db.Session(ctx, "sess-reset", base.Add(2*time.Minute)); tenants.ErrorCode(err) != tenants.CodeNotFound {
				t.Fatalf("the session outlived the reset: %v", err)
			}
			if _, err := db.ResetPassword(ctx, hash, base.Add(2*time.Minute), "again"); tenants.ErrorCode(err) != tenants.CodeNotFound {
				t.Fatalf("a second use: %v", err)
			}
		})
	})
}
