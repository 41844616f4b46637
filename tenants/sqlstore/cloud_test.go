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
	"github.com/pushgate/pushgate/tenants/storetest"
)

func mustIntent(t *testing.T, db *sqlstore.DB, n int, at time.Time) *tenants.CloudIntent {
	t.Helper()
	in := &tenants.CloudIntent{DeviceCodeHash: fmt.Sprintf("device-%d", n), UserCodeHash: fmt.Sprintf("user-%d", n),
		Server:    tenants.CloudServer{UniqueID: "uniq", Address: "https://chat.example.org", SiteName: "Example Chat", Seats: 3},
		CreatedAt: at, ExpiresAt: at.Add(15 * time.Minute), Interval: 5 * time.Second}
	if err := db.CreateCloudIntent(context.Background(), in, tenants.AuditEntry{Actor: "rocketchat:uniq", Action: "cloud.intent", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	return in
}

func TestCloudRegistrationStore(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		ws := mustCreate(t, db, "ws_cccccccccccccccccccc", "pgw_us_cloudstore", base)
		other := mustCreate(t, db, "ws_dddddddddddddddddddd", "pgw_us_cloudother", base)

		t.Run("an intent is found by either code's hash with what the server said", func(t *testing.T) {
			in := mustIntent(t, db, 1, base.In(cest))
			got, err := db.CloudIntentByUserCode(ctx, "user-1")
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != in.ID || got.Server.Address != "https://chat.example.org" || got.Server.Seats != 3 || got.Interval != 5*time.Second ||
				!got.ExpiresAt.Equal(base.Add(15*time.Minute)) || got.WorkspaceID != "" {
				t.Fatalf("got %+v", got)
			}
			if _, err := db.CloudIntentByDeviceCode(ctx, "device-404"); tenants.ErrorCode(err) != tenants.CodeNotFound {
				t.Fatalf("unknown device code: %v", err)
			}
		})
		t.Run("of concurrent polls inside one interval exactly one passes", func(t *testing.T) {
			in := mustIntent(t, db, 2, base)
			var wg sync.WaitGroup
			var mu sync.Mutex
			passed := 0
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ok, err := db.NoteCloudPoll(ctx, in.ID, base.Add(time.Second), 5*time.Second)
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						mu.Lock()
						passed++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if passed != 1 {
				t.Fatalf("%d polls passed, want exactly 1", passed)
			}
			got, _ := db.CloudIntentByDeviceCode(ctx, "device-2")
			if got.Interval != 5*time.Second+15*5*time.Second {
				t.Fatalf("interval after 15 slow_downs = %s", got.Interval)
			}
		})
		t.Run("a confirmed intent is claimed exactly once, with its client and audit", func(t *testing.T) {
			in := mustIntent(t, db, 3, base)
			if err := db.ConfirmCloudIntent(ctx, in.ID, ws.ID, "ada@example.org", base.Add(time.Minute), nil,
				tenants.AuditEntry{Actor: "owner:ada@example.org", Action: "cloud.confirm"}); err != nil {
				t.Fatal(err)
			}
			err := db.ConfirmCloudIntent(ctx, in.ID, other.ID, "eve@example.org", base.Add(time.Minute), nil, tenants.AuditEntry{Actor: "owner:eve", Action: "cloud.confirm"})
			storetest.WantCode(t, err, tenants.CodeConflict, "")
			var wg sync.WaitGroup
			var mu sync.Mutex
			claimed := 0
			for i := range 12 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := tenants.CloudClient{ID: fmt.Sprintf("rcc_claim%02d", i), WorkspaceID: ws.ID, SecretHash: "s", Origin: tenants.CloudOriginPoll, CreatedBy: "ada", CreatedAt: base}
					err := db.ClaimCloudIntent(ctx, in.ID, c, tenants.AuditEntry{Actor: "rocketchat:uniq", Action: "cloud.client_issued"})
					switch tenants.ErrorCode(err) {
					case "":
					case tenants.CodeConflict:
						return
					default:
						if err != nil {
							t.Error(err)
							return
						}
					}
					if err == nil {
						mu.Lock()
						claimed++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			clients, err := db.CloudClients(ctx, ws.ID)
			if err != nil {
				t.Fatal(err)
			}
			if claimed != 1 || len(clients) != 1 {
				t.Fatalf("%d claims passed and %d clients exist, want exactly 1 each", claimed, len(clients))
			}
			log, _ := db.AuditLog(ctx, ws.ID, 10)
			actions := map[string]int{}
			for _, e := range log {
				actions[e.Action]++
			}
			if actions["cloud.confirm"] != 1 || actions["cloud.client_issued"] != 1 {
				t.Fatalf("audit = %v", actions)
			}
		})
		t.Run("an access token authenticates until it ends or its client is revoked", func(t *testing.T) {
			c := tenants.CloudClient{ID: "rcc_token", WorkspaceID: ws.ID, SecretHash: "s", Origin: tenants.CloudOriginManual, CreatedBy: "owner:ada", CreatedAt: base}
			if err := db.CreateCloudClient(ctx, c, tenants.AuditEntry{Actor: "owner:ada", Action: "cloud.manual_token"}); err != nil {
				t.Fatal(err)
			}
			tok := tenants.CloudAccessToken{Hash: "h1", ClientID: c.ID, WorkspaceID: ws.ID, Scope: "workspace:push:send", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
			if err := db.CreateCloudAccessToken(ctx, tok); err != nil {
				t.Fatal(err)
			}
			got, at, err := db.AuthenticateAccessToken(ctx, "h1", base.Add(time.Minute))
			if err != nil || got.ID != ws.ID || at.ClientID != c.ID || !at.ExpiresAt.Equal(tok.ExpiresAt) {
				t.Fatalf("got %+v %+v %v", got, at, err)
			}
			if _, _, err := db.AuthenticateAccessToken(ctx, "h1", base.Add(time.Hour)); tenants.ErrorCode(err) != tenants.CodeNotFound {
				t.Fatalf("an ended token: %v", err)
			}
			storetest.WantCode(t, db.RevokeCloudClient(ctx, other.ID, c.ID, "owner:eve", base, tenants.AuditEntry{Actor: "owner:eve", Action: "cloud.revoke"}), tenants.CodeNotFound, "")
			if err := db.RevokeCloudClient(ctx, ws.ID, c.ID, "operator:ops", base.Add(2*time.Minute), tenants.AuditEntry{Actor: "operator:ops", Action: "cloud.revoke"}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := db.AuthenticateAccessToken(ctx, "h1", base.Add(3*time.Minute)); tenants.ErrorCode(err) != tenants.CodeNotFound {
				t.Fatalf("a token of a revoked client: %v", err)
			}
			got2, err := db.CloudClient(ctx, c.ID)
			if err != nil || got2.RevokedAt == nil || got2.RevokedBy != "operator:ops" {
				t.Fatalf("revoked client = %+v %v", got2, err)
			}
			err = db.CreateCloudAccessToken(ctx, tenants.CloudAccessToken{Hash: "h2", ClientID: c.ID, WorkspaceID: ws.ID, CreatedAt: base, ExpiresAt: base.Add(time.Hour)})
			storetest.WantCode(t, err, tenants.CodeUnauthorized, tenants.ReasonClientRevoked)
			storetest.WantCode(t, db.RevokeCloudClient(ctx, ws.ID, c.ID, "owner:ada", base, tenants.AuditEntry{Actor: "owner:ada", Action: "cloud.revoke"}), tenants.CodeConflict, "")
			changed, err := db.ChangedWorkspaces(ctx, base.Add(-time.Hour))
			if err != nil || len(changed) == 0 {
				t.Fatalf("a revocation marks its workspace changed: %v %v", changed, err)
			}
		})
	})
}
