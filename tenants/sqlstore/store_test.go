package sqlstore_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
	"github.com/pushgate/pushgate/tenants/storetest"
)

// base is a whole second, so that tests also cover times whose SQLite text has no fraction.
var base = time.Date(2025, time.March, 1, 12, 0, 0, 0, time.UTC)

// cest is a non-UTC zone: times given in it must be stored and compared as the same instant.
var cest = time.FixedZone("CEST", 2*60*60)

func credential(token string) tenants.Credential {
	return tenants.Credential{Hash: tenants.HashToken(token), Hint: tenants.TokenHint(token)}
}

func newWorkspace(id string, at time.Time) *tenants.Workspace {
	return &tenants.Workspace{
		ID: id, Name: "Workspace " + id, ContactEmail: "admin@" + id + ".example", Region: "us",
		Plan: tenants.PlanFree, Status: tenants.StatusActive, Privacy: tenants.PrivacyFull,
		CreatedAt: at, UpdatedAt: at,
	}
}

func mustCreate(t *testing.T, db *sqlstore.DB, id, token string, at time.Time) *tenants.Workspace {
	t.Helper()
	ws := newWorkspace(id, at)
	audit := tenants.AuditEntry{Actor: "test", Action: "workspace.create", CreatedAt: at}
	if err := db.CreateWorkspace(context.Background(), ws, credential(token), nil, audit); err != nil {
		t.Fatalf("CreateWorkspace(%s): %v", id, err)
	}
	return ws
}

func mustPublish(t *testing.T, db *sqlstore.DB, version string, at time.Time) {
	t.Helper()
	terms := tenants.Terms{Version: version, URL: "https://pushgate.example/terms/" + version, PublishedAt: at}
	if err := db.PublishTerms(context.Background(), terms); err != nil {
		t.Fatalf("PublishTerms(%s): %v", version, err)
	}
}

func mustRotate(t *testing.T, db *sqlstore.DB, id, token string, at, oldUntil time.Time) {
	t.Helper()
	audit := tenants.AuditEntry{Actor: "test", Action: "workspace.rotate_token", CreatedAt: at}
	if err := db.ReplaceToken(context.Background(), id, credential(token), oldUntil, audit); err != nil {
		t.Fatalf("ReplaceToken(%s): %v", id, err)
	}
}

func mustConsent(t *testing.T, db *sqlstore.DB, id, version string, at time.Time) tenants.Consent {
	t.Helper()
	c := tenants.Consent{WorkspaceID: id, TermsVersion: version, AcceptedBy: "owner@" + id + ".example", AcceptedIP: "192.0.2.7", AcceptedAt: at}
	if err := db.RecordConsent(context.Background(), c); err != nil {
		t.Fatalf("RecordConsent(%s, %s): %v", id, version, err)
	}
	return c
}

func mustAudit(t *testing.T, db *sqlstore.DB, id string, limit int) []tenants.AuditEntry {
	t.Helper()
	entries, err := db.AuditLog(context.Background(), id, limit)
	if err != nil {
		t.Fatalf("AuditLog(%q): %v", id, err)
	}
	return entries
}

// authenticatedAs returns the id of the workspace token authenticates at now, or "" when refused.
func authenticatedAs(t *testing.T, db *sqlstore.DB, token string, now time.Time) string {
	t.Helper()
	ws, err := db.Authenticate(context.Background(), tenants.HashToken(token), now)
	if err != nil {
		if tenants.ErrorCode(err) != tenants.CodeNotFound {
			t.Fatalf("Authenticate at %s: %v, want a workspace or a not-found error", now, err)
		}
		return ""
	}
	return ws.ID
}

func TestCreateWorkspace(t *testing.T) {
	ctx := context.Background()
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		mustPublish(t, db, "2025-01", base.Add(-time.Hour))

		t.Run("a created workspace reads back exactly, in UTC", func(t *testing.T) {
			limit := int64(2_500_000)
			at := time.Date(2025, time.March, 1, 14, 30, 15, 123456789, cest)
			ws := &tenants.Workspace{
				ID: "ws_exact", Name: "Exact", ContactEmail: "ops@exact.example", Region: "de",
				Plan: tenants.PlanEnterprise, QuotaLimit: &limit, Status: tenants.StatusActive,
				ServerID: "mm-server-1", Privacy: tenants.PrivacyIDOnly, CreatedAt: at, UpdatedAt: at.Add(time.Millisecond),
			}
			if err := db.CreateWorkspace(ctx, ws, credential("tok-exact"), nil, tenants.AuditEntry{Actor: "test", Action: "workspace.create"}); err != nil {
				t.Fatal(err)
			}
			if !ws.CreatedAt.Equal(at.Truncate(time.Microsecond)) || ws.CreatedAt.Location() != time.UTC {
				t.Fatalf("CreateWorkspace left CreatedAt %s, want %s in UTC to the microsecond", ws.CreatedAt, at)
			}
			got, err := db.Workspace(ctx, "ws_exact")
			if err != nil {
				t.Fatal(err)
			}
			if got.CreatedAt.Location() != time.UTC || got.UpdatedAt.Location() != time.UTC {
				t.Errorf("times read back in %s and %s, want UTC", got.CreatedAt.Location(), got.UpdatedAt.Location())
			}
			if got.QuotaLimit == nil || *got.QuotaLimit != limit {
				t.Errorf("QuotaLimit = %v, want %d", got.QuotaLimit, limit)
			}
			got.QuotaLimit, ws.QuotaLimit = nil, nil
			if *got != *ws {
				t.Errorf("read back\n%+v\nwant\n%+v", *got, *ws)
			}
		})

		t.Run("empty plan, status, privacy and times get their defaults", func(t *testing.T) {
			ws := &tenants.Workspace{ID: "ws_defaults", Name: "Defaults", ContactEmail: "a@defaults.example", Region: "us"}
			if err := db.CreateWorkspace(ctx, ws, credential("tok-defaults"), nil, tenants.AuditEntry{Actor: "test", Action: "workspace.create"}); err != nil {
				t.Fatal(err)
			}
			got, err := db.Workspace(ctx, "ws_defaults")
			if err != nil {
				t.Fatal(err)
			}
			if got.Plan != tenants.PlanFree || got.Status != tenants.StatusActive || got.Privacy != tenants.PrivacyFull {
				t.Errorf("plan, status, privacy = %s, %s, %s; want free, active, full", got.Plan, got.Status, got.Privacy)
			}
			if got.CreatedAt.IsZero() || !got.UpdatedAt.Equal(got.CreatedAt) || *got != *ws {
				t.Errorf("read back %+v, want %+v with both times set", *got, *ws)
			}
		})

		t.Run("the first token, consent and audit entry are written with the workspace", func(t *testing.T) {
			ws := newWorkspace("ws_full", base)
			consent := &tenants.Consent{TermsVersion: "2025-01", AcceptedBy: "owner@full.example", AcceptedIP: "192.0.2.1", AcceptedAt: base}
			audit := tenants.AuditEntry{Actor: "registration", Action: "workspace.create", Detail: "plan=free", CreatedAt: base}
			if err := db.CreateWorkspace(ctx, ws, credential("tok-full"), consent, audit); err != nil {
				t.Fatal(err)
			}
			if got := authenticatedAs(t, db, "tok-full", base); got != "ws_full" {
				t.Errorf("the first token authenticates as %q, want ws_full", got)
			}
			latest, err := db.LatestConsent(ctx, "ws_full")
			if err != nil {
				t.Fatal(err)
			}
			want := *consent
			want.WorkspaceID = "ws_full"
			if latest == nil || *latest != want {
				t.Errorf("LatestConsent = %+v, want %+v", latest, want)
			}
			audit.WorkspaceID = "ws_full"
			if entries := mustAudit(t, db, "ws_full", 10); len(entries) != 1 || entries[0] != audit {
				t.Errorf("audit log = %+v, want [%+v]", entries, audit)
			}
		})

		t.Run("a first token with an end stops authenticating then", func(t *testing.T) {
			ws := newWorkspace("ws_ending", base)
			cred := credential("tok-ending")
			end := base.Add(90 * time.Second)
			cred.ValidUntil = &end
			if err := db.CreateWorkspace(ctx, ws, cred, nil, tenants.AuditEntry{Actor: "test", Action: "workspace.create"}); err != nil {
				t.Fatal(err)
			}
			if got := authenticatedAs(t, db, "tok-ending", end.Add(-time.Millisecond)); got != "ws_ending" {
				t.Errorf("before its end the token authenticates as %q, want ws_ending", got)
			}
			if got := authenticatedAs(t, db, "tok-ending", end); got != "" {
				t.Errorf("at its end the token authenticates as %q, want refused", got)
			}
		})

		failures := []struct {
			name    string
			ws      *tenants.Workspace
			token   string
			consent *tenants.Consent
			code    tenants.Code
		}{
			{"a second workspace with the same token hash writes nothing", newWorkspace("ws_dup_token", base), "tok-full", nil, tenants.CodeConflict},
			{"a workspace id that exists is a conflict", newWorkspace("ws_full", base), "tok-fresh-1", nil, tenants.CodeConflict},
			{"a consent to unpublished terms writes nothing", newWorkspace("ws_bad_terms", base), "tok-fresh-2",
				&tenants.Consent{TermsVersion: "1999-01", AcceptedBy: "x@y.example", AcceptedAt: base}, tenants.CodeInvalid},
		}
		for _, tt := range failures {
			t.Run(tt.name, func(t *testing.T) {
				before, err := db.ListWorkspaces(ctx)
				if err != nil {
					t.Fatal(err)
				}
				auditBefore := mustAudit(t, db, "", 1000)
				err = db.CreateWorkspace(ctx, tt.ws, credential(tt.token), tt.consent, tenants.AuditEntry{Actor: "test", Action: "workspace.create", CreatedAt: base})
				storetest.WantCode(t, err, tt.code, "")
				if strings.Contains(err.Error(), tenants.HashToken(tt.token)) {
					t.Errorf("error %q names the token hash", err)
				}
				after, err := db.ListWorkspaces(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(after) != len(before) {
					t.Errorf("%d workspaces after the failed create, want %d as before", len(after), len(before))
				}
				if got := len(mustAudit(t, db, "", 1000)); got != len(auditBefore) {
					t.Errorf("%d audit entries after the failed create, want %d as before", got, len(auditBefore))
				}
				if got := authenticatedAs(t, db, tt.token, base); tt.token != "tok-full" && got != "" {
					t.Errorf("the failed create's token authenticates as %q", got)
				}
			})
		}
	})
}

func TestNotFound(t *testing.T) {
	ctx := context.Background()
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		mustPublish(t, db, "2025-01", base)
		mustCreate(t, db, "ws_present", "tok-present", base)
		suspended := tenants.StatusSuspended
		tests := []struct {
			name string
			call func() error
		}{
			{"an unknown workspace is not found", func() error {
				_, err := db.Workspace(ctx, "ws_missing")
				return err
			}},
			{"an unknown workspace with its consent is not found", func() error {
				_, _, err := db.WorkspaceWithConsent(ctx, "ws_missing")
				return err
			}},
			{"updating an unknown workspace is not found", func() error {
				_, err := db.UpdateWorkspace(ctx, "ws_missing", tenants.WorkspaceChange{Status: &suspended}, tenants.AuditEntry{Actor: "test", Action: "workspace.suspend"})
				return err
			}},
			{"rotating the token of an unknown workspace is not found", func() error {
				return db.ReplaceToken(ctx, "ws_missing", credential("tok-new"), base, tenants.AuditEntry{Actor: "test", Action: "workspace.rotate_token"})
			}},
			{"a consent for an unknown workspace is not found", func() error {
				return db.RecordConsent(ctx, tenants.Consent{WorkspaceID: "ws_missing", TermsVersion: "2025-01", AcceptedBy: "x", AcceptedAt: base})
			}},
			{"an unknown token does not authenticate", func() error {
				_, err := db.Authenticate(ctx, tenants.HashToken("tok-unknown"), base)
				return err
			}},
			{"an empty token hash does not authenticate", func() error {
				_, err := db.Authenticate(ctx, "", base)
				return err
			}},
			{"an unpublished terms version is not found", func() error {
				_, err := db.TermsVersion(ctx, "1999-01")
				return err
			}},
			{"an unknown operator is not found", func() error {
				_, err := db.OperatorByEmail(ctx, "nobody@pushgate.example")
				return err
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				storetest.WantCode(t, tt.call(), tenants.CodeNotFound, "")
			})
		}
		t.Run("a failed rotation leaves no audit entry and no token", func(t *testing.T) {
			if n := len(mustAudit(t, db, "ws_missing", 10)); n != 0 {
				t.Errorf("%d audit entries for ws_missing, want 0", n)
			}
			if got := authenticatedAs(t, db, "tok-new", base); got != "" {
				t.Errorf("the rejected token authenticates as %q", got)
			}
		})
	})
}

func TestAuthenticate(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		halfSecond := base.Add(500 * time.Millisecond)
		tokens := []struct {
			token string
			until *time.Time
		}{
			{"tok-forever", nil},
			{"tok-whole-second", &base},
			{"tok-half-second", &halfSecond},
		}
		for i, tk := range tokens {
			ws := newWorkspace(fmt.Sprintf("ws_auth_%d", i), base.Add(-time.Hour))
			cred := credential(tk.token)
			cred.ValidUntil = tk.until
			if err := db.CreateWorkspace(ctx, ws, cred, nil, tenants.AuditEntry{Actor: "test", Action: "workspace.create"}); err != nil {
				t.Fatal(err)
			}
		}
		mustCreate(t, db, "ws_revoked", "tok-revoked", base.Add(-time.Hour))
		mustRotate(t, db, "ws_revoked", "tok-revoked-next", base.Add(-time.Hour), base.Add(-time.Minute))
		suspended := tenants.StatusSuspended
		if _, err := db.UpdateWorkspace(ctx, "ws_auth_0", tenants.WorkspaceChange{Status: &suspended}, tenants.AuditEntry{Actor: "test", Action: "workspace.suspend"}); err != nil {
			t.Fatal(err)
		}

		tests := []struct {
			name  string
			token string
			now   time.Time
			want  string
		}{
			{"a token without an end authenticates", "tok-forever", base.AddDate(50, 0, 0), "ws_auth_0"},
			{"a suspended workspace still authenticates, the service refuses it", "tok-forever", base, "ws_auth_0"},
			{"a token authenticates a microsecond before its end", "tok-whole-second", base.Add(-time.Microsecond), "ws_auth_1"},
			{"an expired token is refused at its end", "tok-whole-second", base, ""},
			{"an expired token is refused a microsecond after its end", "tok-whole-second", base.Add(time.Microsecond), ""},
			{"an expired token is refused a second after its end", "tok-whole-second", base.Add(time.Second), ""},
			{"a token ending mid-second authenticates on the whole second before", "tok-half-second", base, "ws_auth_2"},
			{"a token ending mid-second authenticates a millisecond before", "tok-half-second", halfSecond.Add(-time.Millisecond), "ws_auth_2"},
			{"a token ending mid-second is refused a millisecond after", "tok-half-second", halfSecond.Add(time.Millisecond), ""},
			{"a token ending mid-second is refused on the next whole second", "tok-half-second", base.Add(time.Second), ""},
			{"a time in another zone is the same instant", "tok-half-second", halfSecond.Add(-time.Millisecond).In(cest), "ws_auth_2"},
			{"a time in another zone past the end is refused", "tok-whole-second", base.Add(time.Millisecond).In(cest), ""},
			{"a revoked token does not authenticate", "tok-revoked", base, ""},
			{"a revoked token authenticated before its revocation", "tok-revoked", base.Add(-2 * time.Minute), "ws_revoked"},
			{"the replacing token authenticates", "tok-revoked-next", base, "ws_revoked"},
			{"an unknown token does not authenticate", "tok-never-issued", base, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if got := authenticatedAs(t, db, tt.token, tt.now); got != tt.want {
					t.Errorf("authenticated as %q, want %q", got, tt.want)
				}
			})
		}

		t.Run("the workspace comes back whole", func(t *testing.T) {
			want, err := db.Workspace(ctx, "ws_auth_1")
			if err != nil {
				t.Fatal(err)
			}
			got, err := db.Authenticate(ctx, tenants.HashToken("tok-whole-second"), base.Add(-time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if *got != *want {
				t.Errorf("Authenticate returned %+v, want %+v", *got, *want)
			}
		})
	})
}

func TestReplaceToken(t *testing.T) {
	ctx := context.Background()
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		t.Run("an immediate rotation stops the old token at once", func(t *testing.T) {
			mustCreate(t, db, "ws_now", "tok-now-1", base)
			at := base.Add(time.Hour)
			mustRotate(t, db, "ws_now", "tok-now-2", at, at)
			if got := authenticatedAs(t, db, "tok-now-1", at.Add(-time.Millisecond)); got != "ws_now" {
				t.Errorf("before the rotation the old token authenticates as %q, want ws_now", got)
			}
			if got := authenticatedAs(t, db, "tok-now-1", at); got != "" {
				t.Errorf("at the rotation the old token authenticates as %q, want refused", got)
			}
			if got := authenticatedAs(t, db, "tok-now-2", at); got != "ws_now" {
				t.Errorf("the new token authenticates as %q, want ws_now", got)
			}
		})

		t.Run("a grace period keeps the old token until its end, then not", func(t *testing.T) {
			mustCreate(t, db, "ws_grace", "tok-grace-1", base)
			at := base.Add(time.Hour)
			end := at.Add(24 * time.Hour)
			mustRotate(t, db, "ws_grace", "tok-grace-2", at, end)
			for _, c := range []struct {
				now  time.Time
				want string
			}{
				{at, "ws_grace"},
				{end.Add(-time.Millisecond), "ws_grace"},
				{end, ""},
				{end.Add(time.Hour), ""},
			} {
				if got := authenticatedAs(t, db, "tok-grace-1", c.now); got != c.want {
					t.Errorf("at %s the old token authenticates as %q, want %q", c.now, got, c.want)
				}
			}
			if got := authenticatedAs(t, db, "tok-grace-2", end.Add(time.Hour)); got != "ws_grace" {
				t.Errorf("after the grace period the new token authenticates as %q, want ws_grace", got)
			}
		})

		t.Run("a second rotation never extends an earlier end and cuts a later one", func(t *testing.T) {
			mustCreate(t, db, "ws_twice", "tok-twice-1", base)
			firstEnd := base.Add(time.Hour)
			mustRotate(t, db, "ws_twice", "tok-twice-2", base, firstEnd)
			second := base.Add(10 * time.Minute)
			secondEnd := second.Add(2 * time.Hour)
			mustRotate(t, db, "ws_twice", "tok-twice-3", second, secondEnd)
			if got := authenticatedAs(t, db, "tok-twice-1", firstEnd); got != "" {
				t.Errorf("the first token authenticates after its first end as %q, want refused", got)
			}
			if got := authenticatedAs(t, db, "tok-twice-2", secondEnd.Add(-time.Millisecond)); got != "ws_twice" {
				t.Errorf("the second token before its grace end authenticates as %q, want ws_twice", got)
			}
			if got := authenticatedAs(t, db, "tok-twice-2", secondEnd); got != "" {
				t.Errorf("the second token at its grace end authenticates as %q, want refused", got)
			}
			third := second.Add(time.Minute)
			mustRotate(t, db, "ws_twice", "tok-twice-4", third, third)
			for _, tok := range []string{"tok-twice-1", "tok-twice-2", "tok-twice-3"} {
				if got := authenticatedAs(t, db, tok, third); got != "" {
					t.Errorf("after an immediate rotation %s authenticates as %q, want refused", tok, got)
				}
			}
		})

		t.Run("a rotation leaves other workspaces' tokens alone", func(t *testing.T) {
			mustCreate(t, db, "ws_mine", "tok-mine", base)
			mustCreate(t, db, "ws_theirs", "tok-theirs", base)
			mustRotate(t, db, "ws_mine", "tok-mine-2", base, base)
			if got := authenticatedAs(t, db, "tok-theirs", base.Add(time.Hour)); got != "ws_theirs" {
				t.Errorf("the other workspace's token authenticates as %q, want ws_theirs", got)
			}
		})

		t.Run("a rotation is audited", func(t *testing.T) {
			mustCreate(t, db, "ws_audited", "tok-audited", base)
			audit := tenants.AuditEntry{Actor: "operator@pushgate.example", Action: "workspace.rotate_token", Detail: "grace=1h0m0s", CreatedAt: base.Add(time.Minute)}
			if err := db.ReplaceToken(ctx, "ws_audited", credential("tok-audited-2"), base.Add(time.Hour), audit); err != nil {
				t.Fatal(err)
			}
			audit.WorkspaceID = "ws_audited"
			if entries := mustAudit(t, db, "ws_audited", 1); len(entries) != 1 || entries[0] != audit {
				t.Errorf("newest audit entry = %+v, want %+v", entries, audit)
			}
		})

		t.Run("a new token that collides changes nothing", func(t *testing.T) {
			mustCreate(t, db, "ws_collide", "tok-collide", base)
			mustCreate(t, db, "ws_other", "tok-other", base)
			auditBefore := len(mustAudit(t, db, "ws_collide", 100))
			err := db.ReplaceToken(ctx, "ws_collide", credential("tok-other"), base, tenants.AuditEntry{Actor: "test", Action: "workspace.rotate_token"})
			storetest.WantCode(t, err, tenants.CodeConflict, "")
			if strings.Contains(err.Error(), tenants.HashToken("tok-other")) {
				t.Errorf("error %q names the token hash", err)
			}
			if got := authenticatedAs(t, db, "tok-collide", base.Add(time.Hour)); got != "ws_collide" {
				t.Errorf("after the failed rotation the old token authenticates as %q, want ws_collide", got)
			}
			if got := authenticatedAs(t, db, "tok-other", base.Add(time.Hour)); got != "ws_other" {
				t.Errorf("the colliding token authenticates as %q, want ws_other", got)
			}
			if got := len(mustAudit(t, db, "ws_collide", 100)); got != auditBefore {
				t.Errorf("%d audit entries after the failed rotation, want %d", got, auditBefore)
			}
		})
	})
}

func TestConcurrentRotations(t *testing.T) {
	const rotations = 20
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		mustCreate(t, db, "ws_busy", "tok-busy", base)
		var wg sync.WaitGroup
		errs := make(chan error, rotations)
		for i := range rotations {
			wg.Go(func() {
				audit := tenants.AuditEntry{Actor: "test", Action: "workspace.rotate_token", CreatedAt: base}
				errs <- db.ReplaceToken(context.Background(), "ws_busy", credential(fmt.Sprintf("tok-busy-%d", i)), base, audit)
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("a concurrent rotation failed: %v", err)
			}
		}

		t.Run("exactly one new token is left without an end", func(t *testing.T) {
			// Far in the future only a token without an end still authenticates.
			later := base.AddDate(100, 0, 0)
			var live []string
			for i := range rotations {
				tok := fmt.Sprintf("tok-busy-%d", i)
				if authenticatedAs(t, db, tok, later) == "ws_busy" {
					live = append(live, tok)
				}
			}
			if len(live) != 1 {
				t.Fatalf("live tokens after %d concurrent rotations: %v, want exactly one", rotations, live)
			}
			if got := authenticatedAs(t, db, "tok-busy", base); got != "" {
				t.Errorf("the original token still authenticates as %q", got)
			}
		})

		t.Run("every rotation is audited", func(t *testing.T) {
			if got := len(mustAudit(t, db, "ws_busy", 100)); got != rotations+1 {
				t.Errorf("%d audit entries, want %d", got, rotations+1)
			}
		})
	})
}

func TestUpdateWorkspace(t *testing.T) {
	ctx := context.Background()
	suspended := tenants.StatusSuspended
	enterprise := tenants.PlanEnterprise
	pro := tenants.PlanPro
	idOnly := tenants.PrivacyIDOnly
	serverID := "diag-123"
	custom := int64(5_000_000)
	customPtr := &custom
	var noLimit *int64

	tests := []struct {
		name   string
		change tenants.WorkspaceChange
		want   func(ws *tenants.Workspace)
	}{
		{"a suspension changes only the status", tenants.WorkspaceChange{Status: &suspended},
			func(ws *tenants.Workspace) { ws.Status = suspended }},
		{"an enterprise plan with a custom limit sets both", tenants.WorkspaceChange{Plan: &enterprise, QuotaLimit: &customPtr},
			func(ws *tenants.Workspace) { ws.Plan, ws.QuotaLimit = enterprise, customPtr }},
		{"a plan change with a nil limit clears the custom limit", tenants.WorkspaceChange{Plan: &pro, QuotaLimit: &noLimit},
			func(ws *tenants.Workspace) { ws.Plan, ws.QuotaLimit = pro, nil }},
		{"privacy and server id change together", tenants.WorkspaceChange{Privacy: &idOnly, ServerID: &serverID},
			func(ws *tenants.Workspace) { ws.Privacy, ws.ServerID = idOnly, serverID }},
		{"an empty change only bumps updated_at", tenants.WorkspaceChange{},
			func(*tenants.Workspace) {}},
	}
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				id := fmt.Sprintf("ws_update_%d", i)
				ws := mustCreate(t, db, id, "tok-"+id, base)
				// A custom limit first, so that each case shows what it leaves alone.
				limit := int64(42)
				limitPtr := &limit
				if _, err := db.UpdateWorkspace(ctx, id, tenants.WorkspaceChange{QuotaLimit: &limitPtr},
					tenants.AuditEntry{Actor: "test", Action: "workspace.set_limit", CreatedAt: base}); err != nil {
					t.Fatal(err)
				}
				ws.QuotaLimit = &limit

				at := base.Add(90*time.Minute + 250*time.Millisecond)
				audit := tenants.AuditEntry{Actor: "operator@pushgate.example", Action: "workspace.update", Detail: tt.name, CreatedAt: at}
				got, err := db.UpdateWorkspace(ctx, id, tt.change, audit)
				if err != nil {
					t.Fatal(err)
				}
				want := *ws
				tt.want(&want)
				want.UpdatedAt = at
				if !sameWorkspace(got, &want) {
					t.Errorf("UpdateWorkspace returned\n%s\nwant\n%s", describe(got), describe(&want))
				}
				read, err := db.Workspace(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if !sameWorkspace(read, &want) {
					t.Errorf("read back\n%s\nwant\n%s", describe(read), describe(&want))
				}
				audit.WorkspaceID = id
				if entries := mustAudit(t, db, id, 1); len(entries) != 1 || entries[0] != audit {
					t.Errorf("newest audit entry = %+v, want %+v", entries, audit)
				}
			})
		}
		t.Run("an update leaves other workspaces alone", func(t *testing.T) {
			before := mustCreate(t, db, "ws_untouched", "tok-untouched", base)
			if _, err := db.UpdateWorkspace(ctx, "ws_update_0", tenants.WorkspaceChange{Plan: &pro}, tenants.AuditEntry{Actor: "test", Action: "workspace.set_plan"}); err != nil {
				t.Fatal(err)
			}
			after, err := db.Workspace(ctx, "ws_untouched")
			if err != nil {
				t.Fatal(err)
			}
			if !sameWorkspace(after, before) {
				t.Errorf("another workspace changed:\n%s\nwant\n%s", describe(after), describe(before))
			}
		})
	})
}

func sameWorkspace(a, b *tenants.Workspace) bool {
	return describe(a) == describe(b)
}

func describe(ws *tenants.Workspace) string {
	limit := "plan"
	if ws.QuotaLimit != nil {
		limit = fmt.Sprint(*ws.QuotaLimit)
	}
	return fmt.Sprintf("{%s %q %s %s plan=%s limit=%s status=%s server=%q privacy=%s created=%s updated=%s}",
		ws.ID, ws.Name, ws.ContactEmail, ws.Region, ws.Plan, limit, ws.Status, ws.ServerID, ws.Privacy,
		ws.CreatedAt.Format(time.RFC3339Nano), ws.UpdatedAt.Format(time.RFC3339Nano))
}

func TestConsents(t *testing.T) {
	ctx := context.Background()
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		mustPublish(t, db, "2025-01", base.AddDate(0, -2, 0))
		mustPublish(t, db, "2025-02", base.AddDate(0, -1, 0))
		mustCreate(t, db, "ws_a", "tok-a", base)
		mustCreate(t, db, "ws_b", "tok-b", base)
		mustCreate(t, db, "ws_none", "tok-none", base)

		first := mustConsent(t, db, "ws_a", "2025-01", base.Add(time.Millisecond))
		// Recorded later but accepted earlier: history follows acceptance time.
		early := mustConsent(t, db, "ws_a", "2025-01", base.Add(-time.Hour).In(cest))
		early.AcceptedAt = early.AcceptedAt.UTC()
		second := mustConsent(t, db, "ws_a", "2025-02", base.Add(2*time.Millisecond))
		// Same instant as second: the one recorded last wins.
		tie := mustConsent(t, db, "ws_a", "2025-01", base.Add(2*time.Millisecond))
		theirs := mustConsent(t, db, "ws_b", "2025-02", base.Add(time.Hour))

		t.Run("the latest consent is the newest accepted, the last recorded on a tie", func(t *testing.T) {
			got, err := db.LatestConsent(ctx, "ws_a")
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || *got != tie {
				t.Errorf("LatestConsent = %+v, want %+v", got, tie)
			}
		})

		t.Run("the history is oldest first and exact", func(t *testing.T) {
			got, err := db.Consents(ctx, "ws_a")
			if err != nil {
				t.Fatal(err)
			}
			want := []tenants.Consent{early, first, second, tie}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Consents =\n%+v\nwant\n%+v", got, want)
			}
		})

		t.Run("a workspace sees only its own consents", func(t *testing.T) {
			got, err := db.Consents(ctx, "ws_b")
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != theirs {
				t.Errorf("Consents(ws_b) = %+v, want [%+v]", got, theirs)
			}
			latest, err := db.LatestConsent(ctx, "ws_b")
			if err != nil {
				t.Fatal(err)
			}
			if latest == nil || *latest != theirs {
				t.Errorf("LatestConsent(ws_b) = %+v, want %+v", latest, theirs)
			}
		})

		t.Run("a workspace that never consented has no latest consent and no history", func(t *testing.T) {
			latest, err := db.LatestConsent(ctx, "ws_none")
			if err != nil || latest != nil {
				t.Errorf("LatestConsent = %+v, %v; want nil, nil", latest, err)
			}
			history, err := db.Consents(ctx, "ws_none")
			if err != nil || len(history) != 0 {
				t.Errorf("Consents = %+v, %v; want none", history, err)
			}
		})

		t.Run("a consent to an unpublished version is invalid and not recorded", func(t *testing.T) {
			err := db.RecordConsent(ctx, tenants.Consent{WorkspaceID: "ws_none", TermsVersion: "2099-01", AcceptedBy: "x", AcceptedAt: base})
			storetest.WantCode(t, err, tenants.CodeInvalid, "")
			if latest, _ := db.LatestConsent(ctx, "ws_none"); latest != nil {
				t.Errorf("the invalid consent was recorded: %+v", latest)
			}
		})
	})
}

func TestWorkspaceWithConsent(t *testing.T) {
	ctx := context.Background()
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		mustPublish(t, db, "2025-01", base.AddDate(0, -2, 0))
		mustPublish(t, db, "2025-02", base.AddDate(0, -1, 0))
		mustCreate(t, db, "ws_a", "tok-a", base)
		mustCreate(t, db, "ws_b", "tok-b", base)
		mustCreate(t, db, "ws_none", "tok-none", base)
		enterprise, server, limit := tenants.PlanEnterprise, "srv-a", int64(5_000_000)
		limitPtr := &limit
		if _, err := db.UpdateWorkspace(ctx, "ws_a", tenants.WorkspaceChange{Plan: &enterprise, QuotaLimit: &limitPtr, ServerID: &server},
			tenants.AuditEntry{Actor: "test", Action: "workspace.set_plan"}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SetStripeCustomer(ctx, "ws_a", "cus_a"); err != nil {
			t.Fatal(err)
		}
		mustConsent(t, db, "ws_a", "2025-01", base.Add(time.Millisecond))
		mustConsent(t, db, "ws_a", "2025-02", base.Add(2*time.Millisecond))
		// Same instant: the one recorded last is the latest, as LatestConsent says.
		tie := mustConsent(t, db, "ws_a", "2025-01", base.Add(2*time.Millisecond))
		mustConsent(t, db, "ws_b", "2025-02", base.Add(time.Hour).In(cest))

		for _, tc := range []struct {
			name, id string
			want     *tenants.Consent
		}{
			{"a workspace comes whole with its latest consent, never another workspace's newer one", "ws_a", &tie},
			{"a workspace that never consented comes with no consent", "ws_none", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ws, c, err := db.WorkspaceWithConsent(ctx, tc.id)
				if err != nil {
					t.Fatal(err)
				}
				alone, err := db.Workspace(ctx, tc.id)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(ws, alone) {
					t.Errorf("workspace =\n%+v\nwant, as Workspace reads it,\n%+v", ws, alone)
				}
				if fmt.Sprint(c) != fmt.Sprint(tc.want) || c != nil && *c != *tc.want {
					t.Errorf("consent = %+v, want %+v", c, tc.want)
				}
			})
		}
		t.Run("the consent's time comes back in UTC", func(t *testing.T) {
			_, c, err := db.WorkspaceWithConsent(ctx, "ws_b")
			if err != nil || c == nil || c.AcceptedAt != base.Add(time.Hour) || c.WorkspaceID != "ws_b" {
				t.Fatalf("consent = %+v, %v; want ws_b's, accepted at %s", c, err, base.Add(time.Hour))
			}
		})
	})
}

func TestTerms(t *testing.T) {
	ctx := context.Background()
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		t.Run("with nothing published there are no current terms", func(t *testing.T) {
			got, err := db.CurrentTerms(ctx, base)
			if err != nil || got != nil {
				t.Fatalf("CurrentTerms = %+v, %v; want nil, nil", got, err)
			}
		})

		jan := tenants.Terms{Version: "2025-01", URL: "https://pushgate.example/terms/2025-01", PublishedAt: base.AddDate(0, -2, 0).Add(123456 * time.Microsecond)}
		feb := tenants.Terms{Version: "2025-02", URL: "https://pushgate.example/terms/2025-02", PublishedAt: base.AddDate(0, -1, 0)}
		apr := tenants.Terms{Version: "2025-04", URL: "https://pushgate.example/terms/2025-04", PublishedAt: base.AddDate(0, 1, 0)}
		for _, terms := range []tenants.Terms{feb, jan, apr} {
			if err := db.PublishTerms(ctx, terms); err != nil {
				t.Fatal(err)
			}
		}

		t.Run("publishing a version again keeps the first record", func(t *testing.T) {
			again := tenants.Terms{Version: "2025-02", URL: "https://elsewhere.example", PublishedAt: base}
			if err := db.PublishTerms(ctx, again); err != nil {
				t.Fatalf("PublishTerms again: %v, want a no-op", err)
			}
			got, err := db.TermsVersion(ctx, "2025-02")
			if err != nil {
				t.Fatal(err)
			}
			if *got != feb {
				t.Errorf("TermsVersion = %+v, want the first record %+v", *got, feb)
			}
		})

		tests := []struct {
			name string
			now  time.Time
			want *tenants.Terms
		}{
			{"before the first version there are no current terms", jan.PublishedAt.Add(-time.Microsecond), nil},
			{"a version is current from the instant it is published", jan.PublishedAt, &jan},
			{"the latest version published so far is current", base, &feb},
			{"a version published for later is not current yet", apr.PublishedAt.Add(-time.Millisecond), &feb},
			{"a version published for later becomes current", apr.PublishedAt.In(cest), &apr},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := db.CurrentTerms(ctx, tt.now)
				if err != nil {
					t.Fatal(err)
				}
				if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
					t.Errorf("CurrentTerms(%s) = %+v, want %+v", tt.now, got, tt.want)
				}
			})
		}
	})
}

func TestOperators(t *testing.T) {
	ctx := context.Background()
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		op := &tenants.Operator{Email: "  Alice@PushGate.Example ", PasswordHash: "$2a$12$hash"}
		if err := db.CreateOperator(ctx, op); err != nil {
			t.Fatal(err)
		}

		t.Run("creating fills the id and time and lower-cases the email", func(t *testing.T) {
			if op.ID == 0 || op.CreatedAt.IsZero() || op.Email != "alice@pushgate.example" {
				t.Errorf("after CreateOperator: %+v", *op)
			}
		})

		for _, email := range []string{"alice@pushgate.example", "ALICE@pushgate.EXAMPLE"} {
			t.Run("the operator is found by "+email, func(t *testing.T) {
				got, err := db.OperatorByEmail(ctx, email)
				if err != nil {
					t.Fatal(err)
				}
				if *got != *op {
					t.Errorf("OperatorByEmail = %+v, want %+v", *got, *op)
				}
			})
		}

		t.Run("a second operator gets its own id and a given time stays", func(t *testing.T) {
			bob := &tenants.Operator{Email: "bob@pushgate.example", PasswordHash: "x", CreatedAt: base.Add(time.Millisecond).In(cest)}
			if err := db.CreateOperator(ctx, bob); err != nil {
				t.Fatal(err)
			}
			got, err := db.OperatorByEmail(ctx, "bob@pushgate.example")
			if err != nil {
				t.Fatal(err)
			}
			if got.ID == op.ID || !got.CreatedAt.Equal(base.Add(time.Millisecond)) || *got != *bob {
				t.Errorf("OperatorByEmail = %+v, want %+v with an id other than %d", *got, *bob, op.ID)
			}
		})

		t.Run("an email that differs only in case is a conflict", func(t *testing.T) {
			err := db.CreateOperator(ctx, &tenants.Operator{Email: "ALICE@pushgate.example", PasswordHash: "y"})
			storetest.WantCode(t, err, tenants.CodeConflict, "")
		})
	})
}

func TestAuditLog(t *testing.T) {
	ctx := context.Background()
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		mustCreate(t, db, "ws_a", "tok-a", base)
		mustCreate(t, db, "ws_b", "tok-b", base.Add(time.Second))
		for i := range 3 {
			mustRotate(t, db, "ws_a", fmt.Sprintf("tok-a-%d", i), base.Add(time.Duration(i+1)*time.Minute), base)
		}
		mustRotate(t, db, "ws_b", "tok-b-1", base.Add(30*time.Second), base)

		tests := []struct {
			name        string
			workspaceID string
			limit       int
			want        []string
		}{
			{"a workspace's log is newest first", "ws_a", 10,
				[]string{"ws_a@12:03:00", "ws_a@12:02:00", "ws_a@12:01:00", "ws_a@12:00:00"}},
			{"the limit keeps the newest entries", "ws_a", 2,
				[]string{"ws_a@12:03:00", "ws_a@12:02:00"}},
			{"a workspace never sees another's entries", "ws_b", 10,
				[]string{"ws_b@12:00:30", "ws_b@12:00:01"}},
			{"an empty workspace id means all workspaces", "", 10,
				[]string{"ws_a@12:03:00", "ws_a@12:02:00", "ws_a@12:01:00", "ws_b@12:00:30", "ws_b@12:00:01", "ws_a@12:00:00"}},
			{"a zero limit still answers", "ws_b", 0,
				[]string{"ws_b@12:00:30", "ws_b@12:00:01"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				entries, err := db.AuditLog(ctx, tt.workspaceID, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, e := range entries {
					got = append(got, e.WorkspaceID+"@"+e.CreatedAt.Format("15:04:05"))
				}
				if strings.Join(got, " ") != strings.Join(tt.want, " ") {
					t.Errorf("AuditLog(%q, %d) = %v, want %v", tt.workspaceID, tt.limit, got, tt.want)
				}
			})
		}
	})
}

func TestListWorkspaces(t *testing.T) {
	ctx := context.Background()
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		t.Run("an empty database lists none", func(t *testing.T) {
			got, err := db.ListWorkspaces(ctx)
			if err != nil || len(got) != 0 {
				t.Fatalf("ListWorkspaces = %v, %v; want none", got, err)
			}
		})

		// Fractions of different lengths catch a text order that is not time order.
		created := []struct {
			id string
			at time.Time
		}{
			{"ws_5", base.Add(time.Second)},
			{"ws_4", base.Add(900 * time.Millisecond)},
			{"ws_3", base.Add(500 * time.Millisecond)},
			{"ws_2", base.Add(120 * time.Millisecond)},
			{"ws_1b", base.Add(time.Microsecond)},
			{"ws_1a", base.Add(time.Microsecond).In(cest)},
			{"ws_0", base},
		}
		for _, c := range created {
			mustCreate(t, db, c.id, "tok-"+c.id, c.at)
		}

		t.Run("workspaces are listed by creation time, then id", func(t *testing.T) {
			got, err := db.ListWorkspaces(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, ws := range got {
				ids = append(ids, ws.ID)
			}
			want := "ws_0 ws_1a ws_1b ws_2 ws_3 ws_4 ws_5"
			if strings.Join(ids, " ") != want {
				t.Errorf("ListWorkspaces order = %v, want %s", ids, want)
			}
		})

		t.Run("listed workspaces read back exactly", func(t *testing.T) {
			got, err := db.ListWorkspaces(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, ws := range got {
				one, err := db.Workspace(ctx, ws.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !sameWorkspace(&ws, one) {
					t.Errorf("listed %s, read %s", describe(&ws), describe(one))
				}
			}
		})
	})
}
