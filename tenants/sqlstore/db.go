// Package sqlstore keeps pushgate's tenant data in SQLite or PostgreSQL
// through gorm; nothing outside this package sees gorm.
package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dialect names the database backend.
type Dialect string

// The supported backends.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is an open database with its dialect.
type DB struct {
	gorm    *gorm.DB
	dialect Dialect
	// redacted is the URL without credentials, safe to log.
	redacted string
}

// ParseURL checks a PUSHGATE_DATABASE_URL value and returns its dialect.
func ParseURL(raw string) (Dialect, error) {
	switch {
	case strings.HasPrefix(raw, "sqlite:"):
		if strings.TrimPrefix(raw, "sqlite:") == "" {
			return "", errors.New("sqlite URL needs a path, as in sqlite:./data/pushgate.db")
		}
		return SQLite, nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		u, err := url.Parse(raw)
		if err != nil {
			return "", fmt.Errorf("malformed postgres URL: %v", redactErr(err))
		}
		if u.Host == "" {
			return "", errors.New("postgres URL needs a host, as in postgres://user@127.0.0.1:5432/pushgate")
		}
		return Postgres, nil
	default:
		return "", errors.New("expected sqlite:PATH or postgres://USER@HOST:PORT/DB")
	}
}

// Open connects to the database at rawURL and checks that it answers.
func Open(ctx context.Context, rawURL string, log *slog.Logger) (*DB, error) {
	dialect, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	cfg := &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		PrepareStmt:            true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	}
	var gdb *gorm.DB
	switch dialect {
	case SQLite:
		path := strings.TrimPrefix(rawURL, "sqlite:")
		if path != ":memory:" {
			if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
				return nil, fmt.Errorf("creating the database directory: %w", err)
			}
		}
		// WAL lets readers run beside the writer; immediate transactions take the
		// write lock up front so two writers queue on busy_timeout instead of failing.
		// No _time_format: this driver ignores _txlock when it is set, and its
		// default already writes "2006-01-02 15:04:05.999999999-07:00" (see db_test.go).
		dsn := path + "?_txlock=immediate&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
			"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
		gdb, err = gorm.Open(sqlite.Open(dsn), cfg)
	case Postgres:
		gdb, err = gorm.Open(postgres.Open(rawURL), cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the database: %w", redactErr(err))
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		return nil, err
	}
	if dialect == SQLite {
		sqlDB.SetMaxOpenConns(4)
	} else {
		sqlDB.SetMaxOpenConns(32)
		sqlDB.SetMaxIdleConns(16)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	db := &DB{gorm: gdb, dialect: dialect, redacted: redactURL(rawURL)}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.Ping(pingCtx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("database %s does not answer: %w", db.redacted, redactErr(err))
	}
	if log != nil {
		log.Debug("database open", "dialect", dialect, "url", db.redacted)
	}
	return db, nil
}

// Dialect reports the backend.
func (db *DB) Dialect() Dialect { return db.dialect }

// String is the database URL without credentials.
func (db *DB) String() string { return db.redacted }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	sqlDB, err := db.gorm.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// Close releases the connections.
func (db *DB) Close() error {
	sqlDB, err := db.gorm.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// redactURL drops the password from a database URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// redactErr keeps driver errors from echoing a URL with its password.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return errors.New(ue.Op + " " + redactURL(ue.URL) + ": " + ue.Err.Error())
	}
	return err
}

// HasTable reports whether a table exists.
func (db *DB) HasTable(ctx context.Context, name string) bool {
	return db.gorm.WithContext(ctx).Migrator().HasTable(name)
}
