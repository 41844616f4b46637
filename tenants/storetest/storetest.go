// Package storetest gives integration tests real, isolated databases: a fresh
// PostgreSQL database, a fresh SQLite file, and a Redis key namespace. It
// fails the test, never skips it, when a service cannot be reached: `make
// test` starts the services first.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"testing"
	"time"

	"github.com/pushgate/pushgate/tenants"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// PostgresAdminURL is where tests create their databases; PUSHGATE_TEST_POSTGRES_URL overrides it.
func PostgresAdminURL() string {
	if u := os.Getenv("PUSHGATE_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	name := "postgres"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return "postgres://" + name + "@127.0.0.1:5432/test?sslmode=disable"
}

// RedisURL is the Redis tests use; PUSHGATE_TEST_REDIS_URL overrides it.
func RedisURL() string {
	if u := os.Getenv("PUSHGATE_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Postgres creates an empty database for this test, drops it when the test
// ends, and returns its URL.
func Postgres(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin := PostgresAdminURL()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("PostgreSQL is required for this test and is not reachable at %s: %v (run `make test`, which starts it)", admin, err)
	}
	name := "pushgate_test_" + Suffix()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(ctx)
		t.Fatalf("creating test database: %v", err)
	}
	conn.Close(ctx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("dropping test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("dropping test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("PUSHGATE_TEST_POSTGRES_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// SQLite returns the URL of a fresh SQLite file in the test's temp dir.
func SQLite(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "pushgate.db")
}

// Redis returns a client of the test Redis and a key prefix unique to this
// test; keys under the prefix are deleted when the test ends.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	opt, err := redis.ParseURL(RedisURL())
	if err != nil {
		t.Fatalf("PUSHGATE_TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis is required for this test and is not reachable at %s: %v (run `make test`, which starts it)", opt.Addr, err)
	}
	prefix := "pgtest:" + Suffix() + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		_ = rdb.Close()
	})
	return rdb, prefix
}

// Suffix returns a short random lowercase hex string for unique names.
func Suffix() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// WantCode fails tb unless err carries code and, when reason is not empty, that reason.
func WantCode(tb testing.TB, err error, code tenants.Code, reason string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("got no error, want one with code %s", code)
	}
	if got := tenants.ErrorCode(err); got != code {
		tb.Fatalf("error %q has code %s, want %s", err, got, code)
	}
	if e := tenants.AsError(err); reason != "" && e.Reason != reason {
		tb.Fatalf("error %q has reason %q, want %q", err, e.Reason, reason)
	}
}
