package sqlstore

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// These pin the SQLite connection settings the store relies on; they look
// below the package's API because the driver's DSN handling is what they check.

func mustOpenSQLite(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(context.Background(), "sqlite:"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSQLiteTransactionsTakeTheWriteLockAtBegin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock.db")
	db := mustOpenSQLite(t, path)
	if err := db.gorm.Exec("CREATE TABLE t (x INTEGER)").Error; err != nil {
		t.Fatal(err)
	}
	other := mustOpenSQLite(t, path)
	sqlOther, _ := other.gorm.DB()
	sqlOther.SetMaxOpenConns(1)
	if err := other.gorm.Exec("PRAGMA busy_timeout = 50").Error; err != nil {
		t.Fatal(err)
	}

	tx := db.gorm.Begin()
	if tx.Error != nil {
		t.Fatal(tx.Error)
	}
	defer tx.Rollback()
	// No statement has run in tx yet: only BEGIN IMMEDIATE holds the lock.
	if err := other.gorm.Exec("INSERT INTO t (x) VALUES (1)").Error; err == nil {
		t.Fatal("another connection wrote while a transaction was open: transactions begin DEFERRED, " +
			"so read-then-write transactions fail with SQLITE_BUSY under concurrency (is _txlock=immediate ignored?)")
	}
}

func TestSQLiteTimeLayout(t *testing.T) {
	// UTC text in this layout sorts in time order, which SQL comparisons of
	// times (token expiry, current terms) rely on.
	db := mustOpenSQLite(t, filepath.Join(t.TempDir(), "time.db"))
	if err := db.gorm.Exec("CREATE TABLE t (at DATETIME)").Error; err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, time.March, 1, 12, 0, 0, 500_000_000, time.UTC)
	if err := db.gorm.Exec("INSERT INTO t (at) VALUES (?)", at).Error; err != nil {
		t.Fatal(err)
	}
	var text string
	if err := db.gorm.Raw("SELECT CAST(at AS TEXT) FROM t").Scan(&text).Error; err != nil {
		t.Fatal(err)
	}
	if want := "2025-03-01 12:00:00.5+00:00"; text != want {
		t.Fatalf("a time is stored as %q, want %q", text, want)
	}
}
