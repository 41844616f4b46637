package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
)

// openTenancy opens the database, checks (or, with migrate, applies) its
// schema, and builds the tenancy service with this region's terms published.
func openTenancy(ctx context.Context, cfg config, log *slog.Logger, migrate bool, limits tenants.LimitPublisher) (*sqlstore.DB, *tenants.Service, error) {
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
		Log:          log,
	})
	if err := svc.PublishConfiguredTerms(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("publishing terms version %s: %w", cfg.TermsVersion, err)
	}
	return db, svc, nil
}
