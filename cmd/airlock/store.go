package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"airlock"
	"airlock/postgres"
	"airlock/sqlite"
)

// The store a subcommand opens is named by --store / AIRLOCK_STORE / the
// config's store key:
//
//	(empty)                  SQLite at DATA/airlock.db (--data, default ./airlock-data)
//	sqlite:PATH              SQLite at the database file PATH
//	postgres://… postgresql://…  PostgreSQL, shared by any number of replicas
//
// openStore is the one function every subcommand uses to open it.

// storeKind says which store a store URL names: "sqlite" or "postgres".
func storeKind(store string) (string, error) {
	switch {
	case store == "":
		return "sqlite", nil
	case strings.HasPrefix(store, "sqlite:"):
		if strings.TrimPrefix(store, "sqlite:") == "" {
			return "", fmt.Errorf("config: store %q: sqlite: needs a database file path, e.g. sqlite:/var/lib/airlock/airlock.db", store)
		}
		return "sqlite", nil
	case strings.HasPrefix(store, "postgres://"), strings.HasPrefix(store, "postgresql://"):
		if _, err := url.Parse(store); err != nil {
			return "", fmt.Errorf("config: store: malformed PostgreSQL URL")
		}
		return "postgres", nil
	}
	return "", fmt.Errorf("config: store %s: want sqlite:PATH, postgres://… or postgresql://…", redactStore(store))
}

// openStore opens, creating and migrating as needed, the store cfg names:
// cfg.Store when set, else the SQLite database in the data directory.
func openStore(ctx context.Context, cfg Config) (airlock.Store, error) {
	if _, err := storeKind(cfg.Store); err != nil {
		return nil, err
	}
	switch {
	case strings.HasPrefix(cfg.Store, "postgres://"), strings.HasPrefix(cfg.Store, "postgresql://"):
		s, err := postgres.Open(ctx, cfg.Store)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", redactStore(cfg.Store), err)
		}
		return s, nil
	case strings.HasPrefix(cfg.Store, "sqlite:"):
		path := strings.TrimPrefix(cfg.Store, "sqlite:")
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("store directory: %w", err)
		}
		return openSQLite(ctx, path)
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	// Credentials, sessions and the audit trail live here: owner-only.
	_ = os.Chmod(cfg.Data, 0o700)
	return openSQLite(ctx, filepath.Join(cfg.Data, "airlock.db"))
}

// openSQLite opens the SQLite database file at path, creating it owner-only.
func openSQLite(ctx context.Context, path string) (airlock.Store, error) {
	if f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o600); err == nil {
		f.Close()
	}
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// redactStore returns store safe to print: a URL's password is replaced by
// "xxxxx", and so is a password parameter in its query.
func redactStore(store string) string {
	if store == "" || strings.HasPrefix(store, "sqlite:") {
		return store
	}
	u, err := url.Parse(store)
	if err != nil {
		return "(unparsable store URL)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
