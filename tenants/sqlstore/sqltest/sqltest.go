// Package sqltest opens real, isolated databases of every kind sqlstore
// supports, for the tests of every package.
package sqltest

import (
	"context"
	"testing"

	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/storetest"
)

// Backends returns the URL of a fresh, empty database of every supported kind, by name.
func Backends(tb testing.TB) map[string]string {
	tb.Helper()
	return map[string]string{"sqlite": storetest.SQLite(tb), "postgres": storetest.Postgres(tb)}
}

// Open opens the database at url, closing it when tb ends.
func Open(tb testing.TB, url string) *sqlstore.DB {
	tb.Helper()
	db, err := sqlstore.Open(context.Background(), url, nil)
	if err != nil {
		tb.Fatalf("open %s: %v", url, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// Migrated opens the database at url and migrates it.
func Migrated(tb testing.TB, url string) *sqlstore.DB {
	tb.Helper()
	db := Open(tb, url)
	if _, err := db.Migrate(context.Background()); err != nil {
		tb.Fatalf("migrate %s: %v", url, err)
	}
	return db
}

// EachBackend runs test in parallel subtests on a fresh, migrated database of every kind.
func EachBackend(t *testing.T, test func(t *testing.T, db *sqlstore.DB)) {
	t.Helper()
	for name, url := range Backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, Migrated(t, url))
		})
	}
}
