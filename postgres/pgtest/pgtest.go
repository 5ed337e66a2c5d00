// Package pgtest gives tests a private PostgreSQL schema on the machine's
// server, so that tests of the postgres store, of the binary on it and of
// several replicas never see each other's rows and CI runs are repeatable.
//
// The server is named by AIRLOCK_TEST_POSTGRES (default
// postgres://postgres@127.0.0.1:5432/test). When it cannot be reached the
// test is skipped with a message saying so — unless the CI environment
// variable is set, where PostgreSQL is part of the machine and a missing
// server fails the test instead.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is the server tests use when AIRLOCK_TEST_POSTGRES is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test"

// ServerURL returns the test server's URL: AIRLOCK_TEST_POSTGRES or
// DefaultURL.
func ServerURL() string {
	if v := os.Getenv("AIRLOCK_TEST_POSTGRES"); v != "" {
		return v
	}
	return DefaultURL
}

var (
	reachOnce sync.Once
	reachErr  error
)

// reachable connects once per test binary and remembers the answer.
func reachable() error {
	reachOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, ServerURL())
		if err != nil {
			reachErr = err
			return
		}
		defer conn.Close(ctx)
		reachErr = conn.Ping(ctx)
	})
	return reachErr
}

// Require skips tb (or, when CI is set, fails it) unless the test server
// answers.
func Require(tb testing.TB) {
	tb.Helper()
	if err := reachable(); err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("PostgreSQL at %s is required under CI: %v", redact(ServerURL()), err)
		}
		tb.Skipf("PostgreSQL at %s not reachable (set AIRLOCK_TEST_POSTGRES; required when CI is set): %v", redact(ServerURL()), err)
	}
}

// Schema creates a new, empty schema on the test server, drops it (with
// everything in it) when tb ends, and returns a URL whose connections use
// it as their search path. It calls Require first.
func Schema(tb testing.TB) string {
	tb.Helper()
	Require(tb)
	var b [8]byte
	rand.Read(b[:])
	name := "airlock_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, ServerURL())
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(`CREATE SCHEMA ` + name); err != nil {
		tb.Fatalf("pgtest: create schema: %v", err)
	}
	tb.Cleanup(func() {
		if err := exec(`DROP SCHEMA ` + name + ` CASCADE`); err != nil {
			tb.Errorf("pgtest: drop schema %s: %v", name, err)
		}
	})
	return WithSearchPath(ServerURL(), name)
}

// WithSearchPath returns u with its search_path parameter set to schema.
func WithSearchPath(u, schema string) string { return WithParam(u, "search_path", schema) }

// WithParam returns u with the query parameter key set to value.
func WithParam(u, key, value string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	q := p.Query()
	q.Set(key, value)
	p.RawQuery = q.Encode()
	return p.String()
}

// redact hides a password in u, for messages.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}
