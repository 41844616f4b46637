package main

import (
	"context"
	"fmt"
	"io"

	"github.com/pushgate/pushgate/tenants/sqlstore"
)

func cmdMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", stderr)
	load := configFlags(fs, getenv)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	db, err := sqlstore.Open(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := db.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("migrating %s: %w", db, err)
	}
	_, latest, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "%s is up to date at schema version %d\n", db, latest)
		return nil
	}
	for _, m := range applied {
		fmt.Fprintf(stdout, "applied %s\n", m.Name)
	}
	fmt.Fprintf(stdout, "%s is now at schema version %d\n", db, latest)
	return nil
}
