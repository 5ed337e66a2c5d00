package audit_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"airlock"
	"airlock/audit"
	"airlock/sqlite"

	"golang.org/x/mod/sumdb/note"
)

var t0 = time.Date(2031, 3, 4, 5, 6, 7, 891011000, time.UTC)

// openStore opens a SQLite store in a temporary directory; path is the
// database file, for tampering with it as a database administrator would.
func openStore(t testing.TB) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "airlock.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// newKey returns a fresh signing key named name.
func newKey(t testing.TB, name string) *audit.Key {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	k, err := audit.ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// event returns a test event; i makes it distinct.
func event(i int) *airlock.AuditEvent {
	return &airlock.AuditEvent{
		Time: t0.Add(time.Duration(i) * time.Second), Type: "auth.login", Outcome: airlock.OutcomeSuccess,
		UserID: fmt.Sprintf("u-%d", i), SessionID: fmt.Sprintf("s-%d", i%5), GrantID: fmt.Sprintf("g-%d", i%3),
		Details: map[string]any{"i": i, "note": "<&>"},
	}
}

// appendEvents appends n events in one batch, numbered from first.
func appendEvents(t testing.TB, s airlock.AuditStore, first, n int) {
	t.Helper()
	evs := make([]*airlock.AuditEvent, n)
	for i := range evs {
		evs[i] = event(first + i)
	}
	if err := s.AppendAudit(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
}

// admin opens the database file directly, as someone with database access
// would, and removes the append-only triggers.
func admin(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, trg := range []string{"audit_log_next_seq", "audit_log_no_update", "audit_log_no_delete",
		"audit_checkpoints_no_update", "audit_checkpoints_no_delete"} {
		if _, err := db.Exec(`DROP TRIGGER IF EXISTS ` + trg); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func exec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
