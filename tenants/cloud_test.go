package tenants_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
	"github.com/pushgate/pushgate/tenants/storetest"
)

var rcServer = tenants.CloudServer{UniqueID: "Xy7rT2pQ9wKcLm3Ne", Address: "https://chat.example.org", SiteName: "Example Chat"}

func TestCloudRegistration(t *testing.T) {
	ctx := context.Background()
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		clk := &clock{now: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
		svc := mustService(t, db, clk, "us")
		reg := mustRegister(t, svc, "Cloudy", false)
		owner := mustAuth(t, svc, reg.Token)

		t.Run("a device code nobody confirmed in time is expired_token", func(t *testing.T) {
			start, err := svc.StartCloudIntent(ctx, rcServer, "192.0.2.1")
			if err != nil {
				t.Fatal(err)
			}
			clk.Set(clk.Now().Add(15 * time.Minute))
			defer clk.Set(clk.Now())
			_, err = svc.PollCloudIntent(ctx, start.DeviceCode)
			storetest.WantCode(t, err, tenants.CodeInvalid, "expired_token")
			_, err = svc.ConfirmCloudIntent(ctx, owner, start.UserCode, "ada@example.org", "192.0.2.9", true)
			storetest.WantCode(t, err, tenants.CodeInvalid, "")
		})
		t.Run("a confirmation records consent to the current terms and lets the workspace send", func(t *testing.T) {
			start, err := svc.StartCloudIntent(ctx, rcServer, "192.0.2.1")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.ConfirmCloudIntent(ctx, owner, " "+strings.ToLower(start.UserCode)+" ", "ada@example.org", "192.0.2.9", true); err != nil {
				t.Fatal(err)
			}
			grant, err := svc.PollCloudIntent(ctx, start.DeviceCode)
			if err != nil || grant == nil || grant.WorkspaceID != reg.Workspace.ID {
				t.Fatalf("poll = %+v %v", grant, err)
			}
			tok, err := svc.IssueCloudToken(ctx, grant.ClientID, grant.ClientSecret, "")
			if err != nil {
				t.Fatal(err)
			}
			p := mustAuth(t, svc, tok.AccessToken)
			if p.CloudClientID != grant.ClientID || p.Workspace.ID != reg.Workspace.ID {
				t.Fatalf("principal = %+v", p)
			}
			if err := svc.CanSend(ctx, p); err != nil {
				t.Fatalf("after confirming with the terms: %v", err)
			}
			log, _ := db.AuditLog(ctx, reg.Workspace.ID, 20)
			var actions []string
			for _, e := range log {
				actions = append(actions, e.Action)
			}
			if got := strings.Join(actions, ","); !strings.Contains(got, "cloud.client_issued,cloud.confirm") {
				t.Fatalf("audit = %s", got)
			}
		})
		t.Run("an access token ends at its expiry even while cached", func(t *testing.T) {
			token, c, err := svc.ManualCloudRegistration(ctx, reg.Workspace.ID, "", "owner:ada@example.org")
			if err != nil {
				t.Fatal(err)
			}
			var blob map[string]any
			raw, _ := base64.StdEncoding.DecodeString(token)
			if json.Unmarshal(raw, &blob) != nil || blob["client_id"] != c.ID || blob["registration_client_uri"] != "https://us.gw.example/api/v2/workspaces/"+reg.Workspace.ID {
				t.Fatalf("manual token = %s", raw)
			}
			tok, err := svc.IssueCloudToken(ctx, c.ID, blob["client_secret"].(string), "workspace:push:send marketplace:read")
			if err != nil || tok.Scope != "workspace:push:send" || tok.ExpiresIn != time.Hour {
				t.Fatalf("token = %+v %v", tok, err)
			}
			// An hour's token lives 2 minutes past what it says, for clock skew.
			clk.Set(clk.Now().Add(time.Hour + 2*time.Minute - 30*time.Second))
			mustAuth(t, svc, tok.AccessToken) // cached now, for AuthCacheTTL (a minute)
			clk.Set(clk.Now().Add(30 * time.Second))
			_, err = svc.Authenticate(ctx, tok.AccessToken)
			storetest.WantCode(t, err, tenants.CodeUnauthorized, "token_expired")
		})
		t.Run("a revoked client is client_revoked only with its right secret", func(t *testing.T) {
			token, c, err := svc.ManualCloudRegistration(ctx, reg.Workspace.ID, "Old", "owner:ada@example.org")
			if err != nil {
				t.Fatal(err)
			}
			var blob map[string]any
			raw, _ := base64.StdEncoding.DecodeString(token)
			_ = json.Unmarshal(raw, &blob)
			secret := blob["client_secret"].(string)
			tok, err := svc.IssueCloudToken(ctx, c.ID, secret, "")
			if err != nil {
				t.Fatal(err)
			}
			mustAuth(t, svc, tok.AccessToken)
			if err := svc.RevokeCloudClient(ctx, reg.Workspace.ID, c.ID, "operator:ops@pushgate.example"); err != nil {
				t.Fatal(err)
			}
			_, err = svc.Authenticate(ctx, tok.AccessToken)
			storetest.WantCode(t, err, tenants.CodeUnauthorized, "")
			_, err = svc.IssueCloudToken(ctx, c.ID, secret, "")
			storetest.WantCode(t, err, tenants.CodeUnauthorized, tenants.ReasonClientRevoked)
			_, err = svc.IssueCloudToken(ctx, c.ID, secret+"x", "")
			storetest.WantCode(t, err, tenants.CodeUnauthorized, tenants.ReasonInvalidClient)
		})
		t.Run("a rotated secret keeps the old one working for a day, then it is the ordinary error", func(t *testing.T) {
			token, c, err := svc.ManualCloudRegistration(ctx, reg.Workspace.ID, "Rotating", "owner:ada@example.org")
			if err != nil {
				t.Fatal(err)
			}
			secretOf := func(token string) string {
				var blob map[string]any
				raw, _ := base64.StdEncoding.DecodeString(token)
				_ = json.Unmarshal(raw, &blob)
				return blob["client_secret"].(string)
			}
			old := secretOf(token)
			rotated, err := svc.RotateCloudClientSecret(ctx, reg.Workspace.ID, c.ID, "owner:ada@example.org")
			if err != nil {
				t.Fatal(err)
			}
			fresh := secretOf(rotated)
			for _, secret := range []string{old, fresh} {
				if _, err := svc.IssueCloudToken(ctx, c.ID, secret, ""); err != nil {
					t.Fatalf("within the grace: %v", err)
				}
			}
			clk.Set(clk.Now().Add(tenants.CloudSecretGrace))
			_, err = svc.IssueCloudToken(ctx, c.ID, old, "")
			storetest.WantCode(t, err, tenants.CodeUnauthorized, tenants.ReasonInvalidClient)
			if _, err := svc.IssueCloudToken(ctx, c.ID, fresh, ""); err != nil {
				t.Fatalf("the new secret after the grace: %v", err)
			}
			_, err = svc.RotateCloudClientSecret(ctx, "ws_aaaaaaaaaaaaaaaaaaaa", c.ID, "owner:eve@example.org")
			storetest.WantCode(t, err, tenants.CodeNotFound, "")
		})
		t.Run("an intent from a server without a usable address is refused", func(t *testing.T) {
			bad := rcServer
			bad.Address = "javascript:alert(1)"
			_, err := svc.StartCloudIntent(ctx, bad, "192.0.2.1")
			storetest.WantCode(t, err, tenants.CodeInvalid, "")
			if e := tenants.AsError(err); e.Field != "address" {
				t.Fatalf("field = %q", e.Field)
			}
		})
	})
}

// failingClients fails every client lookup, as a database that does not answer.
type failingClients struct {
	tenants.Store
}

func (failingClients) CloudClient(context.Context, string) (*tenants.CloudClient, error) {
	return nil, tenants.Internal(errors.New("connection refused"), "reading a client")
}

func TestCloudTokenDuringAnOutageIsNotARevocation(t *testing.T) {
	db := sqltest.Migrated(t, storetest.SQLite(t))
	svc := tenants.NewService(failingClients{db}, tenants.Config{Region: "us", PublicURL: "https://us.gw.example", Terms: termsV1})
	_, err := svc.IssueCloudToken(context.Background(), "rcc_x", "secret", "")
	if e := tenants.AsError(err); e.Code == tenants.CodeUnauthorized || e.Reason == tenants.ReasonClientRevoked {
		t.Fatalf("a failing database answered %v: Rocket.Chat would drop its registration", err)
	}
}

func TestQuotaLevel(t *testing.T) {
	for _, c := range []struct {
		used, limit int64
		want        int
	}{
		{0, 10_000, 0}, {7_999, 10_000, 0}, {8_000, 10_000, 80}, {9_999, 10_000, 80}, {10_000, 10_000, 100},
		{12_000, 10_000, 100}, {5, tenants.Unlimited, 0}, {0, 0, 100},
	} {
		if got := tenants.QuotaLevel(c.used, c.limit); got != c.want {
			t.Errorf("QuotaLevel(%d, %d) = %d, want %d", c.used, c.limit, got, c.want)
		}
	}
}

func TestAccessTokensAreRedactedLikeWorkspaceTokens(t *testing.T) {
	access := "pgc_us_k1" + strings.Repeat("a", 49)
	work := "pgw_us_k1" + strings.Repeat("b", 49)
	got := tenants.RedactTokens("Bearer " + access + " and " + work)
	if want := "Bearer pgc_us_k1aa… and pgw_us_k1bb…"; got != want {
		t.Fatalf("RedactTokens = %q, want %q", got, want)
	}
}
