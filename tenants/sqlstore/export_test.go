package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/pushgate/pushgate/tenants"
)

// ExplainFindWorkspaces returns the database's plan of the page query of q.
func (db *DB) ExplainFindWorkspaces(ctx context.Context, q tenants.WorkspaceQuery) (string, error) {
	query, args, err := db.pageSQL(q)
	if err != nil {
		return "", err
	}
	explain := "EXPLAIN "
	if db.dialect == SQLite {
		explain = "EXPLAIN QUERY PLAN "
	}
	rows, err := db.gorm.WithContext(ctx).Raw(explain+query, args...).Rows()
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var plan []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		plan = append(plan, fmt.Sprint(vals[len(vals)-1]))
	}
	return strings.Join(plan, "\n"), rows.Err()
}

// Exec runs a statement for a test's setup.
func (db *DB) Exec(ctx context.Context, query string, args ...any) error {
	return db.gorm.WithContext(ctx).Exec(query, args...).Error
}
