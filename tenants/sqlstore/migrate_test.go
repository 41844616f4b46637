package sqlstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
	"github.com/pushgate/pushgate/tenants/storetest"
)

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	for name, url := range sqltest.Backends(t) {
		t.Run(name, func(t *testing.T) {
			db := sqltest.Open(t, url)

			t.Run("an empty database is behind and says to run migrate", func(t *testing.T) {
				err := db.CheckSchema(ctx)
				if err == nil || !strings.Contains(err.Error(), "pushgate migrate") {
					t.Fatalf("CheckSchema on an empty database = %v, want an error naming `pushgate migrate`", err)
				}
			})

			t.Run("the first run applies every migration", func(t *testing.T) {
				applied, err := db.Migrate(ctx)
				if err != nil {
					t.Fatal(err)
				}
				all, _ := sqlstore.Migrations(db.Dialect())
				if len(applied) != len(all) || len(all) == 0 {
					t.Fatalf("applied %d migrations, want all %d", len(applied), len(all))
				}
				if err := db.CheckSchema(ctx); err != nil {
					t.Fatalf("CheckSchema after migrate: %v", err)
				}
			})

			t.Run("the second run is a no-op", func(t *testing.T) {
				applied, err := db.Migrate(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(applied) != 0 {
					t.Fatalf("second migrate applied %d migrations, want 0", len(applied))
				}
			})

			t.Run("the schema has the workspace tables", func(t *testing.T) {
				for _, table := range []string{"workspaces", "workspace_tokens", "terms_versions", "consents", "operators", "audit_log"} {
					if !db.HasTable(ctx, table) {
						t.Errorf("table %s is missing", table)
					}
				}
			})
		})
	}
}

func TestMigrateConcurrently(t *testing.T) {
	// Two pods running `pushgate migrate` at once must not both apply a migration.
	url := storetest.Postgres(t)
	ctx := context.Background()
	errs := make(chan error, 4)
	total := make(chan int, 4)
	for range 4 {
		go func() {
			db, err := sqlstore.Open(ctx, url, nil)
			if err != nil {
				errs <- err
				total <- 0
				return
			}
			defer db.Close()
			applied, err := db.Migrate(ctx)
			errs <- err
			total <- len(applied)
		}()
	}
	sum := 0
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		sum += <-total
	}
	all, _ := sqlstore.Migrations(sqlstore.Postgres)
	if sum != len(all) {
		t.Fatalf("4 concurrent migrations applied %d in total, want exactly %d", sum, len(all))
	}
}

func TestMigrationsAgree(t *testing.T) {
	// The SQLite and Postgres folders must describe the same versions.
	lite, err := sqlstore.Migrations(sqlstore.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := sqlstore.Migrations(sqlstore.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) != len(pg) {
		t.Fatalf("sqlite has %d migrations, postgres %d", len(lite), len(pg))
	}
	for i := range lite {
		if lite[i].Name != pg[i].Name {
			t.Errorf("migration %d: sqlite %s, postgres %s", i+1, lite[i].Name, pg[i].Name)
		}
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		url     string
		want    sqlstore.Dialect
		wantErr string
	}{
		{"sqlite:./data/pushgate.db", sqlstore.SQLite, ""},
		{"postgres://u:p@127.0.0.1:5432/db", sqlstore.Postgres, ""},
		{"postgresql://127.0.0.1/db", sqlstore.Postgres, ""},
		{"sqlite:", "", "needs a path"},
		{"mysql://x", "", "expected sqlite:PATH or postgres://"},
		{"postgres://", "", "needs a host"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := sqlstore.ParseURL(tt.url)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseURL(%q) error = %v, want one containing %q", tt.url, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseURL(%q) = %q, %v; want %q", tt.url, got, err, tt.want)
			}
		})
	}
}
