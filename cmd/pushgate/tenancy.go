package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
)

// openTenancy opens the database, checks (or, with migrate, creates and
// migrates) its schema, and builds the tenancy service with this region's
// terms published.
func openTenancy(ctx context.Context, cfg config, log *slog.Logger, migrate bool, limits tenants.LimitPublisher) (*sqlstore.DB, *tenants.Service, error) {
	if !migrate {
		if err := requireDatabaseFile(cfg.DatabaseURL); err != nil {
			return nil, nil, err
		}
	}
	db, err := sqlstore.Open(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return nil, nil, err
	}
	if migrate {
		if _, err := db.Migrate(ctx); err != nil {
			db.Close()
			return nil, nil, fmt.Errorf("migrating %s: %w", db, err)
		}
	}
	if err := db.CheckSchema(ctx); err != nil {
		db.Close()
		return nil, nil, err
	}
	svc := tenants.NewService(db, tenants.Config{
		Region:       cfg.Region,
		PublicURL:    cfg.PublicURL,
		RegionURLs:   cfg.regions,
		Terms:        tenants.Terms{Version: cfg.TermsVersion, URL: cfg.TermsURL, PublishedAt: cfg.termsPublished},
		TermsGrace:   cfg.termsGrace,
		AuthCacheTTL: cfg.authCacheTTL,
		Limits:       limits,
		MeteredPlans: cfg.billing.meteredPlans(),
		Log:          log,
	})
	if err := svc.PublishConfiguredTerms(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("publishing terms version %s: %w", cfg.TermsVersion, err)
	}
	return db, svc, nil
}

// requireDatabaseFile refuses a SQLite database that does not exist, which
// opening would create empty wherever the command happens to run; only
// `migrate` and `serve --dev` create one.
func requireDatabaseFile(rawURL string) error {
	path, ok := strings.CutPrefix(rawURL, "sqlite:")
	if !ok || path == ":memory:" {
		return nil
	}
	_, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("database %s does not exist: run `pushgate migrate` to create it (or `pushgate serve --dev` for a first run), or point PUSHGATE_DATABASE_URL or PUSHGATE_DATA_DIR at an existing one", path)
	case err != nil:
		return fmt.Errorf("database %s: %w", path, err)
	}
	return nil
}
