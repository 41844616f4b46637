package sqlstore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
	"github.com/pushgate/pushgate/tenants/storetest"
)

const thisMonth = tenants.Period("2025-03")

// seeded describes one workspace of seedWorkspaces, computed the same way in Go.
type seeded struct {
	id, name, email string
	plan            tenants.Plan
	status          tenants.Status
	used            int64
	created         time.Time
}

func seededWorkspace(i int) seeded {
	plans := []tenants.Plan{tenants.PlanFree, tenants.PlanFree, tenants.PlanFree, tenants.PlanPro, tenants.PlanEnterprise}
	s := seeded{
		id:      fmt.Sprintf("ws_%020d", i),
		name:    fmt.Sprintf("Team %06d", i),
		email:   fmt.Sprintf("owner%06d@example.com", i),
		plan:    plans[i%len(plans)],
		status:  tenants.StatusActive,
		used:    int64((i * 7919) % 12_000),
		created: base.Add(time.Duration(i) * time.Second),
	}
	if i%97 == 0 {
		s.status = tenants.StatusSuspended
	}
	return s
}

// seedWorkspaces writes n workspaces in one transaction of multi-row inserts,
// with this month's usage already copied onto them.
func seedWorkspaces(t testing.TB, db *sqlstore.DB, n int) {
	t.Helper()
	ctx := context.Background()
	const batch = 1000
	if err := db.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	for from := 0; from < n; from += batch {
		var rows []string
		var args []any
		for i := from; i < min(from+batch, n); i++ {
			s := seededWorkspace(i)
			rows = append(rows, "(?, ?, ?, 'us', ?, ?, '', 'full', ?, ?, ?, ?, ?)")
			args = append(args, s.id, s.name, s.email, string(s.plan), string(s.status), s.created, s.created, s.created, string(thisMonth), s.used)
		}
		err := db.Exec(ctx, `INSERT INTO workspaces (id, name, contact_email, region, plan, status, server_id, privacy,
			created_at, updated_at, changed_at, usage_period, usage_used) VALUES `+strings.Join(rows, ", "), args...)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if err := db.Exec(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
}

func mustFind(t testing.TB, db *sqlstore.DB, q tenants.WorkspaceQuery) *tenants.WorkspacePage {
	t.Helper()
	if q.Period == "" {
		q.Period = thisMonth
	}
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	page, err := db.FindWorkspaces(context.Background(), q)
	if err != nil {
		t.Fatalf("FindWorkspaces(%+v): %v", q, err)
	}
	return page
}

func ids(page *tenants.WorkspacePage) []string {
	out := make([]string, len(page.Workspaces))
	for i, w := range page.Workspaces {
		out[i] = w.ID
	}
	return out
}

// TestWorkspaceListAt100k seeds 100,000 workspaces and checks that the
// operator's list answers page by page from indexes, whatever the order.
func TestWorkspaceListAt100k(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 100,000 workspaces")
	}
	const n = 100_000
	all := make([]seeded, n)
	for i := range all {
		all[i] = seededWorkspace(i)
	}
	for name, url := range sqltest.Backends(t) {
		t.Run(name, func(t *testing.T) {
			if raceDetector && name == "sqlite" {
				// Seeding takes 7 minutes under -race; make test runs this test once without it.
				t.Skip("SQLite at 100,000 workspaces runs without -race (make test does)")
			}
			db := sqltest.Migrated(t, url)
			started := time.Now()
			seedWorkspaces(t, db, n)
			t.Logf("%s: seeded %d workspaces in %s", name, n, time.Since(started).Round(time.Millisecond))

			t.Run("pages by usage follow each other without gaps or repeats", func(t *testing.T) {
				want := slices.Clone(all)
				slices.SortFunc(want, func(a, b seeded) int {
					if a.used != b.used {
						return int(b.used - a.used)
					}
					return strings.Compare(b.id, a.id)
				})
				q := tenants.WorkspaceQuery{Sort: tenants.SortByUsage}
				var got []string
				var slowest time.Duration
				for range 4 {
					started := time.Now()
					page := mustFind(t, db, q)
					slowest = max(slowest, time.Since(started))
					if len(page.Workspaces) != tenants.DefaultWorkspacePage || page.Next == "" {
						t.Fatalf("a page of %d rows, next %q", len(page.Workspaces), page.Next)
					}
					if page.Total != tenants.WorkspaceCountCap || !page.TotalCapped {
						t.Fatalf("total %d capped %v, want %d and capped", page.Total, page.TotalCapped, tenants.WorkspaceCountCap)
					}
					got = append(got, ids(page)...)
					q.After = page.Next
				}
				for i, id := range got {
					if id != want[i].id {
						t.Fatalf("row %d is %s, want %s (used %d)", i, id, want[i].id, want[i].used)
					}
				}
				t.Logf("%s: slowest of 4 pages by usage (with its capped count): %s", name, slowest.Round(time.Microsecond))
			})
			t.Run("newest and name orders page too", func(t *testing.T) {
				page := mustFind(t, db, tenants.WorkspaceQuery{Sort: tenants.SortNewest, Limit: 3})
				if got := ids(page); !slices.Equal(got, []string{all[n-1].id, all[n-2].id, all[n-3].id}) {
					t.Fatalf("newest %v", got)
				}
				page = mustFind(t, db, tenants.WorkspaceQuery{Sort: tenants.SortNewest, Limit: 2, After: page.Next})
				if got := ids(page); !slices.Equal(got, []string{all[n-4].id, all[n-5].id}) {
					t.Fatalf("newest, second page %v", got)
				}
				page = mustFind(t, db, tenants.WorkspaceQuery{Sort: tenants.SortByName, Limit: 2})
				page = mustFind(t, db, tenants.WorkspaceQuery{Sort: tenants.SortByName, Limit: 2, After: page.Next})
				if got := ids(page); !slices.Equal(got, []string{all[2].id, all[3].id}) {
					t.Fatalf("by name, second page %v", got)
				}
			})
			t.Run("search and filters count exactly below the cap", func(t *testing.T) {
				page := mustFind(t, db, tenants.WorkspaceQuery{Search: "OWNER0012"})
				if page.Total != 100 || page.TotalCapped || len(page.Workspaces) != tenants.DefaultWorkspacePage {
					t.Fatalf("email prefix: total %d, %d rows", page.Total, len(page.Workspaces))
				}
				page = mustFind(t, db, tenants.WorkspaceQuery{Search: "team 04242"})
				if page.Total != 10 {
					t.Fatalf("name prefix: total %d", page.Total)
				}
				page = mustFind(t, db, tenants.WorkspaceQuery{Search: all[777].id})
				if got := ids(page); !slices.Equal(got, []string{all[777].id}) {
					t.Fatalf("by id %v", got)
				}
				wantSuspended, wantNear := 0, 0
				for _, s := range all {
					if s.status == tenants.StatusSuspended && s.plan == tenants.PlanFree {
						wantSuspended++
					}
					if s.plan == tenants.PlanFree && s.used*5 >= 10_000*4 {
						wantNear++
					}
				}
				page = mustFind(t, db, tenants.WorkspaceQuery{Status: tenants.StatusSuspended, Plan: tenants.PlanFree})
				if page.Total != wantSuspended {
					t.Fatalf("suspended on free: %d, want %d", page.Total, wantSuspended)
				}
				for _, w := range page.Workspaces {
					if w.Status != tenants.StatusSuspended || w.Plan != tenants.PlanFree {
						t.Fatalf("the filter let %s (%s, %s) through", w.ID, w.Status, w.Plan)
					}
				}
				page = mustFind(t, db, tenants.WorkspaceQuery{NearLimit: true, Limit: tenants.MaxWorkspacePage})
				if page.Total != min(wantNear, tenants.WorkspaceCountCap) {
					t.Fatalf("near the limit: %d, want %d", page.Total, wantNear)
				}
				if w := page.Workspaces[len(page.Workspaces)-1]; w.Used*5 < 10_000*4 || w.Plan != tenants.PlanFree {
					t.Fatalf("near the limit lists %s with %d used on %s", w.ID, w.Used, w.Plan)
				}
			})
			t.Run("every order and the search read indexes, never the whole table", func(t *testing.T) {
				second := mustFind(t, db, tenants.WorkspaceQuery{Sort: tenants.SortByUsage}).Next
				for _, q := range []tenants.WorkspaceQuery{
					{Sort: tenants.SortByUsage},
					{Sort: tenants.SortByUsage, After: second},
					{Sort: tenants.SortByUsage, Before: second},
					{Sort: tenants.SortNewest},
					{Sort: tenants.SortByName},
					{Sort: tenants.SortByUsage, Search: "owner0012"},
					{Sort: tenants.SortByUsage, Status: tenants.StatusSuspended},
				} {
					q.Period = thisMonth
					if err := q.Validate(); err != nil {
						t.Fatal(err)
					}
					plan, err := db.ExplainFindWorkspaces(context.Background(), q)
					if err != nil {
						t.Fatal(err)
					}
					switch db.Dialect() {
					case sqlstore.Postgres:
						if strings.Contains(plan, "Seq Scan") {
							t.Fatalf("query %+v scans the table:\n%s", q, plan)
						}
					case sqlstore.SQLite:
						for _, line := range strings.Split(plan, "\n") {
							if line == "SCAN workspaces" || strings.Contains(line, "TEMP B-TREE") {
								t.Fatalf("query %+v scans or sorts the table:\n%s", q, plan)
							}
						}
					}
				}
			})
		})
	}
}

func TestWorkspaceListPagesBack(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		seedWorkspaces(t, db, 23)
		for _, sort := range []tenants.WorkspaceSort{tenants.SortByUsage, tenants.SortNewest, tenants.SortByName} {
			for _, filter := range []tenants.WorkspaceQuery{{}, {Plan: tenants.PlanFree}} {
				t.Run(fmt.Sprintf("by %s with plan %q, Previous retraces Next page for page", sort, filter.Plan), func(t *testing.T) {
					q := filter
					q.Sort, q.Limit = sort, 4
					var forward []*tenants.WorkspacePage
					for {
						page := mustFind(t, db, q)
						forward = append(forward, page)
						if page.Next == "" {
							break
						}
						q.After = page.Next
					}
					if len(forward) < 3 {
						t.Fatalf("%d pages, want at least 3 to go back through", len(forward))
					}
					if forward[0].Prev != "" {
						t.Fatalf("the first page has a previous page %q", forward[0].Prev)
					}
					page := forward[len(forward)-1]
					for i := len(forward) - 2; i >= 0; i-- {
						if page.Prev == "" {
							t.Fatalf("page %d has no previous page", i+2)
						}
						q.After, q.Before = "", page.Prev
						page = mustFind(t, db, q)
						if got, want := ids(page), ids(forward[i]); !slices.Equal(got, want) {
							t.Fatalf("going back to page %d gives %v, want %v as going forward", i+1, got, want)
						}
						if page.Next != forward[i].Next {
							t.Fatalf("page %d, reached going back, leads on to %q, want %q", i+1, page.Next, forward[i].Next)
						}
					}
					if page.Prev != "" {
						t.Fatalf("the first page, reached going back, has a previous page %q", page.Prev)
					}
				})
			}
		}
		t.Run("the page before an early row holds the rows above it and no previous page", func(t *testing.T) {
			first := mustFind(t, db, tenants.WorkspaceQuery{Sort: tenants.SortNewest, Limit: 4})
			second := mustFind(t, db, tenants.WorkspaceQuery{Sort: tenants.SortNewest, Limit: 4, After: first.Next})
			back := mustFind(t, db, tenants.WorkspaceQuery{Sort: tenants.SortNewest, Limit: 4, Before: second.Prev})
			if !slices.Equal(ids(back), ids(first)) {
				t.Fatalf("back from the second page: %v, want %v", ids(back), ids(first))
			}
			before := mustFind(t, db, tenants.WorkspaceQuery{Sort: tenants.SortNewest, Limit: 4, Before: first.Next})
			if got := ids(before); !slices.Equal(got, ids(first)[:3]) || before.Prev != "" {
				t.Fatalf("before the fourth row: %v with previous %q, want the first three and none", got, before.Prev)
			}
		})
	})
}

func TestWorkspaceQueryRefusals(t *testing.T) {
	db := sqltest.Migrated(t, storetest.SQLite(t))
	for name, q := range map[string]tenants.WorkspaceQuery{
		"a cursor that is not base64":              {After: "%%%"},
		"a cursor of another order":                {Sort: tenants.SortNewest, After: "eyJzIjoidXNhZ2UiLCJrIjoiMSIsImlkIjoid3NfIn0"},
		"a usage cursor whose key is not a number": {After: "eyJzIjoidXNhZ2UiLCJrIjoieCIsImlkIjoid3NfIn0"},
		"a before cursor of another order":         {Sort: tenants.SortNewest, Before: "eyJzIjoidXNhZ2UiLCJrIjoiMSIsImlkIjoid3NfIn0"},
	} {
		t.Run(name+" is refused as invalid", func(t *testing.T) {
			q.Period = thisMonth
			if err := q.Validate(); err != nil {
				t.Fatal(err)
			}
			_, err := db.FindWorkspaces(context.Background(), q)
			storetest.WantCode(t, err, tenants.CodeInvalid, "")
		})
	}
	for name, q := range map[string]tenants.WorkspaceQuery{
		"an unknown plan":    {Plan: "gold"},
		"an unknown status":  {Status: "deleted"},
		"an unknown order":   {Sort: "random"},
		"a page of 1000":     {Limit: 1000},
		"a search of 300 ch": {Search: strings.Repeat("a", 300)},
		"both cursors":       {After: "eyJzIjoidXNhZ2UiLCJrIjoiMSIsImlkIjoid3NfIn0", Before: "eyJzIjoidXNhZ2UiLCJrIjoiMSIsImlkIjoid3NfIn0"},
	} {
		t.Run(name+" is refused as invalid", func(t *testing.T) {
			storetest.WantCode(t, q.Validate(), tenants.CodeInvalid, "")
		})
	}
}

func TestRefreshWorkspaceUsage(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		a := mustCreate(t, db, "ws_aaaaaaaaaaaaaaaaaaaa", "tok-a", base)
		b := mustCreate(t, db, "ws_bbbbbbbbbbbbbbbbbbbb", "tok-b", base)
		mustCreate(t, db, "ws_cccccccccccccccccccc", "tok-c", base)
		if err := db.SaveUsage(ctx, a.ID, tenants.Usage{Period: thisMonth, Used: 40}); err != nil {
			t.Fatal(err)
		}
		if err := db.SaveUsage(ctx, b.ID, tenants.Usage{Period: "2025-02", Used: 900}); err != nil {
			t.Fatal(err)
		}
		q := sqlstore.NewQuotaStore(db)
		for range 3 {
			if _, err := q.Admit(ctx, tenants.Admission{WorkspaceID: b.ID, Limit: 100, At: base}); err != nil {
				t.Fatal(err)
			}
		}
		used := func() map[string]int64 {
			out := map[string]int64{}
			for _, w := range mustFind(t, db, tenants.WorkspaceQuery{}).Workspaces {
				out[w.ID] = w.Used
			}
			return out
		}
		if got := used(); got[a.ID] != 0 || got[b.ID] != 0 {
			t.Fatalf("before a refresh: %v", got)
		}
		if _, err := db.RefreshWorkspaceUsage(ctx, thisMonth); err != nil {
			t.Fatal(err)
		}
		if got := used(); got[a.ID] != 40 || got[b.ID] != 3 || got["ws_cccccccccccccccccccc"] != 0 {
			t.Fatalf("the rollup's and the quota store's counts of this month: %v", got)
		}
		if n, err := db.RefreshWorkspaceUsage(ctx, thisMonth); err != nil || n != 0 {
			t.Fatalf("a second refresh without news wrote %d rows, %v", n, err)
		}
		if _, err := db.RefreshWorkspaceUsage(ctx, "2025-04"); err != nil {
			t.Fatal(err)
		}
		page := mustFind(t, db, tenants.WorkspaceQuery{Period: "2025-04"})
		for _, w := range page.Workspaces {
			if w.Used != 0 {
				t.Fatalf("a new month starts %s at %d", w.ID, w.Used)
			}
		}
	})
}

func TestGrantPushes(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		ws := mustCreate(t, db, "ws_aaaaaaaaaaaaaaaaaaaa", "tok-a", base)
		audit := tenants.AuditEntry{Actor: "operator:ops@example.com", Action: "workspace.add_pushes", Source: "api", CreatedAt: base}
		grant := func(id string, pushes int64, p tenants.Period) (*tenants.Workspace, error) {
			return db.GrantPushes(ctx, ws.ID, tenants.Package{CheckoutSessionID: id, Pushes: pushes, Period: p, CreatedAt: base}, audit)
		}
		got, err := grant("grant_1", 500, thisMonth)
		if err != nil || got.PackagePushes != 500 || got.PackagePeriod != thisMonth || got.LimitIn(thisMonth) != 10_500 {
			t.Fatalf("first grant: %+v, %v", got, err)
		}
		if got, err = grant("grant_2", 250, thisMonth); err != nil || got.LimitIn(thisMonth) != 10_750 {
			t.Fatalf("second grant: %+v, %v", got, err)
		}
		_, err = grant("grant_2", 250, thisMonth)
		storetest.WantCode(t, err, tenants.CodeConflict, "")
		_, err = db.GrantPushes(ctx, "ws_zzzzzzzzzzzzzzzzzzzz", tenants.Package{CheckoutSessionID: "grant_3", Pushes: 1, Period: thisMonth}, audit)
		storetest.WantCode(t, err, tenants.CodeNotFound, "")
		entries := mustAudit(t, db, ws.ID, 10)
		if entries[0].Action != "workspace.add_pushes" || entries[0].Source != "api" || entries[0].Actor != "operator:ops@example.com" {
			t.Fatalf("audit %+v", entries[0])
		}
		pkgs, err := db.Packages(ctx, ws.ID)
		if err != nil || len(pkgs) != 2 {
			t.Fatalf("packages %+v, %v", pkgs, err)
		}
	})
}

func TestOperatorKeys(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		op := &tenants.Operator{Email: "ops@example.com", PasswordHash: "x", CreatedAt: base}
		if err := db.CreateOperator(ctx, op); err != nil {
			t.Fatal(err)
		}
		k := &tenants.OperatorKey{OperatorID: op.ID, Name: "ci", Hint: "pgo_abcd…", CreatedAt: base}
		if err := db.CreateOperatorKey(ctx, k, "hash-1"); err != nil {
			t.Fatal(err)
		}
		live, err := db.LiveOperatorKey(ctx, "hash-1")
		if err != nil || live.ID != k.ID || live.Email != "ops@example.com" || live.Name != "ci" {
			t.Fatalf("live key %+v, %v", live, err)
		}
		if _, err := db.LiveOperatorKey(ctx, "hash-2"); tenants.ErrorCode(err) != tenants.CodeNotFound {
			t.Fatalf("an unknown hash: %v", err)
		}
		if _, err := db.RevokeOperatorKey(ctx, k.ID, base.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.LiveOperatorKey(ctx, "hash-1"); tenants.ErrorCode(err) != tenants.CodeNotFound {
			t.Fatalf("a revoked key still works: %v", err)
		}
		_, err = db.RevokeOperatorKey(ctx, k.ID, base.Add(time.Hour))
		storetest.WantCode(t, err, tenants.CodeNotFound, "")
		keys, err := db.OperatorKeys(ctx, "ops@example.com")
		if err != nil || len(keys) != 1 || keys[0].RevokedAt == nil {
			t.Fatalf("keys %+v, %v", keys, err)
		}
		err = db.CreateOperatorKey(ctx, &tenants.OperatorKey{OperatorID: 999, Hint: "x", CreatedAt: base}, "hash-3")
		storetest.WantCode(t, err, tenants.CodeNotFound, "")
	})
}

func TestConcurrentGrantsAddUpExactly(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		ws := mustCreate(t, db, "ws_aaaaaaaaaaaaaaaaaaaa", "tok-a", base)
		const grants = 24
		errs := make(chan error, grants)
		for i := range grants {
			go func() {
				_, err := db.GrantPushes(ctx, ws.ID, tenants.Package{CheckoutSessionID: fmt.Sprintf("grant_%d", i), Pushes: 10, Period: thisMonth, CreatedAt: base},
					tenants.AuditEntry{Actor: "operator:ops@example.com", Action: "workspace.add_pushes", CreatedAt: base})
				errs <- err
			}()
		}
		for range grants {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		got, err := db.Workspace(ctx, ws.ID)
		if err != nil || got.PackagePushes != grants*10 || got.LimitIn(thisMonth) != 10_000+grants*10 {
			t.Fatalf("after %d grants of 10: %d package pushes, %v", grants, got.PackagePushes, err)
		}
		if n := len(mustAudit(t, db, ws.ID, 100)); n != grants+1 {
			t.Fatalf("%d audit entries, want %d", n, grants+1)
		}
	})
}
