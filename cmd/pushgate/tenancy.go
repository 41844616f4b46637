package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
)

// openTenancy opens the database, checks (or, with migrate, creates and
// migrates) its schema, and builds the tenancy service with this region's
// terms published.
func openTenancy(ctx context.Context, cfg config, log *slog.Logger, migrate bool, limits tenants.LimitPublisher, reg prometheus.Registerer) (*sqlstore.DB, *tenants.Service, error) {
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
		Region:             cfg.Region,
		PublicURL:          cfg.PublicURL,
		RegionURLs:         cfg.regions,
		Terms:              tenants.Terms{Version: cfg.TermsVersion, URL: cfg.TermsURL, PublishedAt: cfg.termsPublished},
		TermsGrace:         cfg.termsGrace,
		AuthCacheTTL:       cfg.authCacheTTL,
		CloudTokenTTL:      cfg.cloudTokenTTL,
		AuthTimeout:        cfg.authTimeout,
		AuthStaleMax:       cfg.authStaleMax,
		TokenKeys:          cfg.tokenKeys,
		RefuseLegacyTokens: cfg.refuseLegacy,
		Registerer:         reg,
		Limits:             limits,
		MeteredPlans:       cfg.billing.meteredPlans(),
		Log:                log,
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

// errNoTokenKey is why serve without --dev refuses to start without a key.
var errNoTokenKey = errors.New("config: PUSHGATE_TOKEN_KEY (token_key) is required: it signs workspace tokens so that forged ones are refused without a database query; set it to ID:SECRET, for example k1:$(openssl rand -base64 32), the same on every replica and for the CLI (see README, Workspace tokens)")

// devTokenKeyFile is where `serve --dev` keeps the token key it generated,
// so tokens survive a restart; the CLI reads it too.
func devTokenKeyFile(dataDir string) string { return filepath.Join(dataDir, "token-key") }

// resolveTokenKey fills cfg.tokenKeys when token_key is unset, from the key
// `serve --dev` keeps in data_dir; with create, it makes that key on first
// use. It fails naming PUSHGATE_TOKEN_KEY when there is still no key.
func resolveTokenKey(cfg *config, create bool) error {
	if cfg.tokenKeys != nil {
		return nil
	}
	path := devTokenKeyFile(cfg.DataDir)
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		k, err := tenants.ParseTokenKey(string(raw))
		if err != nil {
			return fmt.Errorf("the dev token key in %s: %w (delete it to make a new one; tokens issued under it stop working)", path, err)
		}
		cfg.tokenKeys = &tenants.TokenKeys{Current: k}
		return nil
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("reading the dev token key: %w", err)
	case !create:
		return errNoTokenKey
	}
	k, err := tenants.NewTokenKey("dv")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating the dev token key: %w", err)
	}
	if _, err := f.WriteString(k.String() + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	cfg.tokenKeys = &tenants.TokenKeys{Current: k}
	return nil
}
