// Package sqlite implements Airlock's store interfaces on SQLite, using the
// pure-Go driver modernc.org/sqlite. It is the embedded default store.
//
// All writes go through one connection (SQLite has one writer), each in a
// BEGIN IMMEDIATE transaction, so concurrent callers queue in the process
// instead of failing with SQLITE_BUSY; reads use a separate read-only pool.
// Every connection runs in WAL mode with synchronous=FULL, so a write is
// durable when its method returns.
//
// Times are stored as INTEGER unix microseconds in UTC (0 is the zero
// time.Time, so the instant 1970-01-01T00:00:00Z itself cannot be stored)
// and are returned in UTC; finer precision is truncated.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"

	"airlock"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var _ airlock.Store = (*Store)(nil)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout is how long a connection waits for a lock held by another
// process before failing. Within one process writes never contend: they
// share one connection.
const busyTimeout = 5 * time.Second

// Store is an airlock.Store on one SQLite database file. It is safe for
// concurrent use. The zero value is not usable: call Open.
type Store struct {
	w *sql.DB // the single write connection
	r *sql.DB // read-only pool

	auditInserts auditStatements // prepared audit inserts (audit.go)
}

// Open opens (creating if needed) the SQLite database at path, a file whose
// directory must exist, and applies any migrations it has not seen yet.
func Open(ctx context.Context, path string) (*Store, error) {
	return open(ctx, path, migrations)
}

// open is Open with the migration files taken from fsys ("migrations/*.sql"),
// so that tests can add migrations.
func open(ctx context.Context, path string, fsys fs.FS) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, airlock.Errorf(airlock.EINVALID, "sqlite: invalid database path %q", path)
	}
	w, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, airlock.Wrap(airlock.EINTERNAL, "sqlite: open database", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := migrate(ctx, w, fsys); err != nil {
		w.Close()
		return nil, err
	}
	if err := convertLegacyAudit(ctx, w); err != nil {
		w.Close()
		return nil, err
	}

	// The read pool opens after migrating, so the file is already in WAL
	// mode and query_only cannot get in the way of journal_mode.
	r, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		w.Close()
		return nil, airlock.Wrap(airlock.EINTERNAL, "sqlite: open database", err)
	}
	r.SetMaxOpenConns(max(4, 2*runtime.GOMAXPROCS(0)))
	r.SetMaxIdleConns(max(4, 2*runtime.GOMAXPROCS(0)))
	s := &Store{w: w, r: r}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// dsn returns the driver's data source name for path. The pragmas are DSN
// parameters so that the driver applies them to every pooled connection.
func dsn(path string, readOnly bool) string {
	p := []string{
		fmt.Sprintf("_pragma=busy_timeout(%d)", busyTimeout.Milliseconds()),
		"_pragma=foreign_keys(1)",
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous(FULL)",
	}
	if readOnly {
		p = append(p, "_pragma=query_only(1)")
	} else {
		p = append(p, "_txlock=immediate")
	}
	return path + "?" + strings.Join(p, "&")
}

// migrate applies the migrations in fsys's migrations/*.sql that are not yet
// recorded in schema_migrations, in file-name order, each in its own
// transaction together with its record.
func migrate(ctx context.Context, db *sql.DB, fsys fs.FS) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    TEXT    PRIMARY KEY,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return dbError("create schema_migrations", err)
	}
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return airlock.Wrap(airlock.EINTERNAL, "sqlite: list migrations", err)
	}
	sort.Strings(names)
	for _, name := range names {
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return airlock.Wrap(airlock.EINTERNAL, "sqlite: read migration "+name, err)
		}
		version := path.Base(name)
		err = inTx(ctx, db, func(tx *sql.Tx) error {
			// Checked inside the (immediate) transaction, so two processes
			// opening the same file cannot both apply a migration.
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
				return dbError("read schema_migrations", err)
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return dbError("apply migration "+version, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
				version, time.Now().UnixMicro()); err != nil {
				return dbError("record migration "+version, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Ping reports an error when the store cannot run a query on either its
// write connection or its read pool.
func (s *Store) Ping(ctx context.Context) error {
	for _, db := range []*sql.DB{s.w, s.r} {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
			return airlock.Wrap(airlock.EUNAVAILABLE, "sqlite: database unavailable", err)
		}
	}
	return nil
}

// Close closes the database. The store must not be used afterwards.
func (s *Store) Close() error {
	// The writer closes last: the last connection to close checkpoints the
	// WAL into the main file.
	return errors.Join(s.r.Close(), s.w.Close())
}

// write runs fn in one write transaction (BEGIN IMMEDIATE on the single
// write connection) and commits it if fn returns nil.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return inTx(ctx, s.w, fn)
}

func inTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return dbError("begin transaction", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return dbError("commit", err)
	}
	return nil
}

// uniqueMessages names, by the "table.column" SQLite reports (after a
// space, in "UNIQUE constraint failed: t.a, t.b"), what a uniqueness
// violation means to the caller.
var uniqueMessages = map[string]string{
	"users.id":                       "user id already exists",
	"users.name":                     "user name already taken",
	"users.handle":                   "user handle already in use",
	"devices.id":                     "device id already exists",
	"credentials.id":                 "credential id already registered",
	"sessions.id":                    "session id already exists",
	"sessions.token_hash":            "session token already in use",
	"enrolment_tokens.id":            "enrolment token id already exists",
	"enrolment_tokens.hash":          "enrolment token already exists",
	"ceremonies.id":                  "ceremony id already exists",
	"audit_events.seq":               "audit sequence number already used",
	"audit_log.seq":                  "audit sequence number already used",
	"access_requests.id":             "access request id already exists",
	"approvals.approver_id":          "the approver has already approved this request",
	"grants.id":                      "grant id already exists",
	"ssh_certificates.serial":        "SSH certificate serial already used",
	"recovery_cases.id":              "recovery case id already exists",
	"recovery_cases.secret_hash":     "recovery case claim secret already in use",
	"recovery_approvals.approver_id": "the officer has already approved this recovery case",
	"breakglass_events.id":           "break-glass event id already exists",
	"breakglass_events.token_hash":   "break-glass session token already in use",
	"breakglass_events.account_id":   "break-glass account is locked until the review of its last use",
}

// dbError maps a driver error to an *airlock.Error: a uniqueness violation is
// ECONFLICT, sql.ErrNoRows ENOTFOUND, a lock held elsewhere EUNAVAILABLE and
// anything else EINTERNAL. An *airlock.Error passes through unchanged. op
// says what was being done, for the message.
func dbError(op string, err error) error {
	if err == nil {
		return nil
	}
	var ae *airlock.Error
	if errors.As(err, &ae) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return airlock.Wrap(airlock.ENOTFOUND, "sqlite: "+op+": not found", err)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			msg := "sqlite: " + op + ": already exists"
			for col, m := range uniqueMessages {
				// " " + col: "approvals.approver_id" must not match
				// "recovery_approvals.approver_id".
				if strings.Contains(se.Error(), " "+col) {
					msg = "sqlite: " + m
					break
				}
			}
			return airlock.Wrap(airlock.ECONFLICT, msg, err)
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return airlock.Wrap(airlock.EUNAVAILABLE, "sqlite: "+op+": database is locked", err)
		}
	}
	return airlock.Wrap(airlock.EINTERNAL, "sqlite: "+op, err)
}

func notFound(what string) error {
	return airlock.Errorf(airlock.ENOTFOUND, "sqlite: %s not found", what)
}

// micros converts t to the stored form: unix microseconds, 0 for the zero
// time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros is the inverse of micros; it returns UTC.
func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// blob returns b as a driver value: NULL when empty.
func blob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// nonEmpty returns b, or nil when b is empty (the driver may return either
// for a NULL or zero-length blob).
func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// encodeStrings returns ss as a JSON array ("[]" for nil).
func encodeStrings(ss []string) string {
	if len(ss) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(ss) // a []string always marshals
	return string(b)
}

// decodeStrings parses a JSON array; it returns an empty, non-nil slice for
// an empty array.
func decodeStrings(s string) ([]string, error) {
	out := []string{}
	if s == "" {
		return out, nil
	}
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, airlock.Wrap(airlock.EINTERNAL, "sqlite: corrupt string list", err)
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// scanner is the Scan method shared by *sql.Row and *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// rowsAffected returns how many rows res touched.
func rowsAffected(res sql.Result, op string) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, dbError(op, err)
	}
	return n, nil
}
