// Package postgres implements Airlock's store interfaces on PostgreSQL with
// pgx, so that several stateless Airlock replicas can share one database
// behind a load balancer. It passes the same storetest conformance suite as
// the embedded SQLite store and keeps the same behaviours: error codes,
// single-use ceremonies and tokens, compare-and-set sign counts, optimistic
// versions, gap-free audit sequence numbers.
//
// What makes it safe across replicas:
//
//   - Every single-use or compare-and-set operation is one conditional
//     statement (DELETE … RETURNING, UPDATE … WHERE old value), so under
//     READ COMMITTED the database itself lets exactly one of several racing
//     replicas win.
//   - Audit appends take a transaction-scoped advisory lock, so sequence
//     numbers are gap-free and in one order whichever replica appends.
//   - Migrations run inside one transaction holding an advisory lock keyed
//     by the schema, so of several replicas starting at once one migrates
//     and the others wait, then find nothing to do.
//
// A write is durable when its method returns: connections run with
// synchronous_commit=on unless the URL asks for a stronger level, and a URL
// that turns it off or to local is refused.
//
// Times are stored as timestamptz (microseconds; finer precision is
// truncated) with NULL for the zero time.Time, and are returned in UTC.
// PostgreSQL text cannot hold NUL bytes or invalid UTF-8: such strings are
// refused with EINVALID and nothing is written.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"airlock"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

var _ airlock.Store = (*Store)(nil)

//go:embed migrations/*.sql
var migrations embed.FS

// lockClass is the first key of Airlock's advisory locks ("Arlk"); the
// second names what is locked within the schema.
const lockClass = 0x41726c6b

// Second advisory-lock keys, each combined with the schema name.
const (
	lockMigrate = "airlock:migrate:"
	lockAudit   = "airlock:audit:"
)

// Store is an airlock.Store on a PostgreSQL database (the first schema of
// the connection's search_path). It is safe for concurrent use, and any
// number of Stores, in any number of processes, may share one database.
// The zero value is not usable: call Open.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to the PostgreSQL database at url (postgres://… or
// postgresql://…, with any libpq parameters pgx accepts, e.g.
// search_path, sslmode, pool_max_conns) and applies any migrations the
// database has not seen yet. Open fails with EUNAVAILABLE when the server
// cannot be reached and EINVALID for a malformed URL or one that weakens
// durability.
func Open(ctx context.Context, url string) (*Store, error) {
	return open(ctx, url, migrations)
}

// open is Open with the migration files taken from fsys ("migrations/*.sql"),
// so that tests can add migrations.
func open(ctx context.Context, url string, fsys fs.FS) (*Store, error) {
	if !strings.HasPrefix(url, "postgres://") && !strings.HasPrefix(url, "postgresql://") {
		return nil, airlock.Errorf(airlock.EINVALID, "postgres: the store URL must start with postgres:// or postgresql://")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password included: leave it out.
		return nil, airlock.Errorf(airlock.EINVALID, "postgres: invalid store URL")
	}
	params := cfg.ConnConfig.RuntimeParams
	// PostgreSQL parameter names are case-insensitive: fold every spelling
	// into one, or a second one (sent in map order) could win.
	sync := ""
	for k, v := range params {
		if strings.EqualFold(k, "synchronous_commit") {
			if sync != "" && v != sync {
				return nil, airlock.Errorf(airlock.EINVALID, "postgres: synchronous_commit given twice with different values")
			}
			sync = v
			delete(params, k)
		}
	}
	switch sync {
	case "":
		sync = "on"
	case "on", "remote_apply":
	default:
		return nil, airlock.Errorf(airlock.EINVALID, "postgres: synchronous_commit=%s would acknowledge writes before they are durable; use on or remote_apply",
			sync)
	}
	params["synchronous_commit"] = sync
	// A replica that stops mid-transaction without closing its connection
	// (host gone, VM paused) would hold its locks — the audit lock stops
	// every replica's appends — until TCP keepalives notice, by default two
	// hours: end transactions left idle instead.
	idle := false
	for k := range params {
		idle = idle || strings.EqualFold(k, "idle_in_transaction_session_timeout")
	}
	if !idle {
		params["idle_in_transaction_session_timeout"] = "15s"
	}
	if params["application_name"] == "" {
		params["application_name"] = "airlock"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, dbError("connect", err)
	}
	s := &Store{pool: pool}
	if err := migrate(ctx, pool, fsys); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// migrate applies the migrations in fsys's migrations/*.sql that are not yet
// recorded in schema_migrations, in file-name order, all in one transaction
// that first takes an advisory lock keyed by the schema: concurrent
// openers queue behind it and then see the migrations recorded. A failing
// migration leaves the database as it was.
func migrate(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS) error {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return airlock.Wrap(airlock.EINTERNAL, "postgres: list migrations", err)
	}
	sort.Strings(names)
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var schema *string
		if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return dbError("find schema", err)
		}
		if schema == nil {
			return airlock.Errorf(airlock.EINVALID, "postgres: no schema of the search_path exists; create it first")
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockClass, lockMigrate+*schema); err != nil {
			return dbError("lock for migrations", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    text PRIMARY KEY,
			applied_at timestamptz NOT NULL
		)`); err != nil {
			return dbError("create schema_migrations", err)
		}
		applied := map[string]bool{}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return dbError("read schema_migrations", err)
		}
		versions, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return dbError("read schema_migrations", err)
		}
		for _, v := range versions {
			applied[v] = true
		}
		for _, name := range names {
			version := path.Base(name)
			if applied[version] {
				continue
			}
			body, err := fs.ReadFile(fsys, name)
			if err != nil {
				return airlock.Wrap(airlock.EINTERNAL, "postgres: read migration "+name, err)
			}
			// No arguments: pgx sends it with the simple protocol, which
			// runs a file of several statements.
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return dbError("apply migration "+version, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())`, version); err != nil {
				return dbError("record migration "+version, err)
			}
		}
		return nil
	})
	return dbError("migrate", err)
}

// Ping reports an error (EUNAVAILABLE) when the store cannot run a query on
// its schema.
func (s *Store) Ping(ctx context.Context) error {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		return airlock.Wrap(airlock.EUNAVAILABLE, "postgres: database unavailable", err)
	}
	return nil
}

// Close closes the store's connections, waiting for those in use to be
// returned. The store must not be used afterwards.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// write runs fn in one transaction (READ COMMITTED) and commits it if fn
// returns nil.
func (s *Store) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, s.pool, fn)
	return dbError("transaction", err)
}

// lockAuditAppends takes the transaction-scoped advisory lock that
// serializes audit appends across every replica on this schema.
func lockAuditAppends(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2 || current_schema()))`, lockClass, lockAudit)
	return dbError("lock audit log", err)
}

// uniqueMessages names, by the constraint PostgreSQL reports, what a
// uniqueness violation means to the caller.
var uniqueMessages = map[string]string{
	"users_pkey":                       "user id already exists",
	"users_name_key":                   "user name already taken",
	"users_handle_key":                 "user handle already in use",
	"devices_pkey":                     "device id already exists",
	"credentials_pkey":                 "credential id already registered",
	"sessions_pkey":                    "session id already exists",
	"sessions_token_hash_key":          "session token already in use",
	"enrolment_tokens_pkey":            "enrolment token id already exists",
	"enrolment_tokens_hash_key":        "enrolment token already exists",
	"ceremonies_pkey":                  "ceremony id already exists",
	"audit_events_pkey":                "audit sequence number already used",
	"access_requests_pkey":             "access request id already exists",
	"approvals_pkey":                   "the approver has already approved this request",
	"grants_pkey":                      "grant id already exists",
	"ssh_certificates_pkey":            "SSH certificate serial already used",
	"recovery_cases_pkey":              "recovery case id already exists",
	"recovery_cases_secret_hash_key":   "recovery case claim secret already in use",
	"recovery_approvals_pkey":          "the officer has already approved this recovery case",
	"breakglass_events_pkey":           "break-glass event id already exists",
	"breakglass_events_token_hash_key": "break-glass session token already in use",
	"breakglass_events_unreviewed":     "break-glass account is locked until the review of its last use",
}

// dbError maps a driver error to an *airlock.Error: a uniqueness violation
// is ECONFLICT, pgx.ErrNoRows ENOTFOUND, text PostgreSQL cannot store (NUL
// bytes, invalid UTF-8) or an out-of-range time EINVALID, a server or
// network that cannot serve now (connection lost, shutdown, serialization
// failure, deadlock, lock timeout, too many connections, timeout)
// EUNAVAILABLE and anything else EINTERNAL. An *airlock.Error passes
// through unchanged. op says what was being done, for the message.
func dbError(op string, err error) error {
	if err == nil {
		return nil
	}
	var ae *airlock.Error
	if errors.As(err, &ae) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return airlock.Wrap(airlock.ENOTFOUND, "postgres: "+op+": not found", err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505": // unique_violation
			msg := "postgres: " + op + ": already exists"
			if m, ok := uniqueMessages[pe.ConstraintName]; ok {
				msg = "postgres: " + m
			}
			return airlock.Wrap(airlock.ECONFLICT, msg, err)
		case pe.Code == "22021", pe.Code == "22P05": // character_not_in_repertoire, untranslatable_character
			return airlock.Wrap(airlock.EINVALID, "postgres: "+op+": text must be valid UTF-8 without NUL characters", err)
		case pe.Code == "22008", pe.Code == "22003": // datetime_field_overflow, numeric_value_out_of_range
			return airlock.Wrap(airlock.EINVALID, "postgres: "+op+": value out of range", err)
		case pe.Code == "40001", pe.Code == "40P01", pe.Code == "55P03", // serialization, deadlock, lock timeout
			pe.Code == "57014",                     // query_canceled (statement_timeout)
			strings.HasPrefix(pe.Code, "08"),       // connection exception
			strings.HasPrefix(pe.Code, "53"),       // insufficient resources
			strings.HasPrefix(pe.Code, "57P"),      // shutdown, cannot connect now
			pe.Code == "25006",                     // read-only transaction (a standby)
			pe.Code == "25P03", pe.Code == "25P04": // idle-in-transaction timeout, transaction timeout
			return airlock.Wrap(airlock.EUNAVAILABLE, "postgres: "+op+": database unavailable", err)
		}
		return airlock.Wrap(airlock.EINTERNAL, "postgres: "+op, err)
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return airlock.Wrap(airlock.EUNAVAILABLE, "postgres: "+op+": database unavailable", err)
	}
	return airlock.Wrap(airlock.EINTERNAL, "postgres: "+op, err)
}

func notFound(what string) error {
	return airlock.Errorf(airlock.ENOTFOUND, "postgres: %s not found", what)
}

// ts returns t as a query argument: NULL for the zero time.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// timeDest scans a nullable timestamptz into a time.Time: NULL is the zero
// time, anything else comes back in UTC.
type timeDest struct{ dst *time.Time }

// ScanTimestamptz implements pgtype.TimestamptzScanner.
func (d timeDest) ScanTimestamptz(v pgtype.Timestamptz) error {
	switch {
	case !v.Valid:
		*d.dst = time.Time{}
	case v.InfinityModifier != pgtype.Finite:
		return fmt.Errorf("postgres: infinite time where a time was expected")
	default:
		*d.dst = v.Time.UTC()
	}
	return nil
}

// tsp returns a scan destination for a nullable timestamptz column.
func tsp(t *time.Time) any { return timeDest{t} }

// blob returns b as a query argument: NULL when empty.
func blob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// nonEmpty returns b, or nil when b is empty.
func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// strs returns ss as a text[] argument: an empty array, never NULL.
func strs(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// nonNil returns ss, or an empty non-nil slice when ss is nil.
func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// collect reads every row with scan, mapping errors for op.
func collect[T any](rows pgx.Rows, err error, op string, scan func(pgx.Row) (*T, error)) ([]*T, error) {
	if err != nil {
		return nil, dbError(op, err)
	}
	defer rows.Close()
	out := []*T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, dbError(op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(op, err)
	}
	return out, nil
}

func itoa(n int) string { return strconv.Itoa(n) }
