package sqlstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

//go:embed migrations
var migrationFiles embed.FS

// Migration is one versioned SQL file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// migrationLockID is an arbitrary constant: Postgres advisory locks take an integer key.
const migrationLockID = 7270361

// Migrations returns the embedded migrations of a dialect in version order.
func Migrations(d Dialect) ([]Migration, error) {
	dir := path.Join("migrations", string(d))
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and an underscore", name)
		}
		body, err := fs.ReadFile(migrationFiles, path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: strings.TrimSuffix(name, ".sql"), SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := range out {
		if out[i].Version != i+1 {
			return nil, fmt.Errorf("migration %s: versions must run 1, 2, 3 … without gaps", out[i].Name)
		}
	}
	return out, nil
}

// SchemaVersion reports the applied and the latest known schema versions.
func (db *DB) SchemaVersion(ctx context.Context) (applied, latest int, err error) {
	ms, err := Migrations(db.dialect)
	if err != nil {
		return 0, 0, err
	}
	latest = len(ms)
	if !db.gorm.WithContext(ctx).Migrator().HasTable("schema_migrations") {
		return 0, latest, nil
	}
	var v *int
	if err := db.gorm.WithContext(ctx).Raw("SELECT MAX(version) FROM schema_migrations").Scan(&v).Error; err != nil {
		return 0, latest, err
	}
	if v != nil {
		applied = *v
	}
	return applied, latest, nil
}

// CheckSchema returns an error that says what to run when the schema is behind this binary.
func (db *DB) CheckSchema(ctx context.Context) error {
	applied, latest, err := db.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("reading the schema version: %w", err)
	}
	if applied < latest {
		return fmt.Errorf("database schema is at version %d, this binary needs %d: run `pushgate migrate` first", applied, latest)
	}
	return nil
}

// Migrate applies every pending migration in order, all in one transaction,
// and returns the versions it applied. Running it again is a no-op.
func (db *DB) Migrate(ctx context.Context) ([]Migration, error) {
	ms, err := Migrations(db.dialect)
	if err != nil {
		return nil, err
	}
	var applied []Migration
	err = db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if db.dialect == Postgres {
			// Two pods starting `migrate` at once queue here instead of racing.
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", migrationLockID).Error; err != nil {
				return err
			}
		}
		if err := tx.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY,
			name TEXT NOT NULL,
			applied_at TIMESTAMP NOT NULL)`).Error; err != nil {
			return err
		}
		var current *int
		if err := tx.Raw("SELECT MAX(version) FROM schema_migrations").Scan(&current).Error; err != nil {
			return err
		}
		done := 0
		if current != nil {
			done = *current
		}
		for _, m := range ms {
			if m.Version <= done {
				continue
			}
			for _, stmt := range splitStatements(m.SQL) {
				if err := tx.Exec(stmt).Error; err != nil {
					return fmt.Errorf("migration %s: %w", m.Name, err)
				}
			}
			if err := tx.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
				m.Version, m.Name, time.Now().UTC()).Error; err != nil {
				return err
			}
			applied = append(applied, m)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return applied, nil
}

// splitStatements splits a migration file on semicolons that end a line,
// dropping comment-only lines; migrations keep one statement per such block.
func splitStatements(sql string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}
