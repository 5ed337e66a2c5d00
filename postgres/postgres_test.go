package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"airlock"
	"airlock/postgres/pgtest"
	"airlock/storetest"

	"github.com/jackc/pgx/v5"
)

// mustOpen opens a store on a new, empty schema and closes it when tb
// ends.
func mustOpen(tb testing.TB) *Store {
	tb.Helper()
	return mustOpenURL(tb, pgtest.Schema(tb))
}

// mustOpenURL opens a store on url and closes it when tb ends.
func mustOpenURL(tb testing.TB, url string) *Store {
	tb.Helper()
	s, err := Open(context.Background(), url)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// replicas opens n stores on one new schema: what n Airlock replicas
// sharing a database see.
func replicas(tb testing.TB, n int) []*Store {
	tb.Helper()
	url := pgtest.Schema(tb)
	out := make([]*Store, n)
	for i := range out {
		out[i] = mustOpenURL(tb, url)
	}
	return out
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) airlock.Store { return mustOpen(t) })
}

// TestSimpleProtocol exercises, with pgx's simple query protocol (the mode
// a PgBouncer in transaction mode needs, see docs/topology.md), every kind
// of argument the store sends: arrays, bytea, json, timestamps, NULLs and
// the audit batch's unnest. (The whole suite passes in this mode too; it is
// not run here to keep the tests fast.)
func TestSimpleProtocol(t *testing.T) {
	ctx := context.Background()
	s := mustOpenURL(t, pgtest.WithParam(pgtest.Schema(t), "default_query_exec_mode", "simple_protocol"))
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := &airlock.User{ID: "u-1", Name: "alice", Roles: []string{"a", "b"}, Handle: []byte{0, 1, 0xff},
		Window: &airlock.AccessWindow{TimeZone: "Europe/Paris", NotAfter: now}, CreatedAt: now}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	got, err := s.FindUserByHandle(ctx, u.Handle)
	if err != nil || !slices.Equal(got.Roles, u.Roles) || got.Window == nil || !got.Window.NotAfter.Equal(now) || !got.CreatedAt.Equal(now) {
		t.Fatalf("user round trip: %+v, %v", got, err)
	}
	sess := &airlock.Session{ID: "s-1", TokenHash: []byte("h"), UserID: "u-1", AMR: []string{"hwk"}, LastSeen: now,
		IdleTimeout: time.Minute, AbsoluteDeadline: now.Add(time.Hour), CreatedAt: now}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if list, err := s.ListExpiredSessions(ctx, now.Add(time.Minute), 0); err != nil || len(list) != 1 {
		t.Fatalf("expired sessions: %d, %v", len(list), err)
	}
	if ids, err := s.EndUserSessions(ctx, "u-1", "test", now); err != nil || !slices.Equal(ids, []string{"s-1"}) {
		t.Fatalf("EndUserSessions: %v, %v", ids, err)
	}
	events := []*airlock.AuditEvent{
		{Time: now, Type: "a.b", Outcome: airlock.OutcomeSuccess, UserID: "u-1", Details: map[string]any{"n": 1}},
		{Time: now, Type: "a.c", Outcome: airlock.OutcomeFailure, SessionID: "s-1"},
	}
	if err := s.AppendAudit(ctx, events...); err != nil || events[1].Seq != 2 {
		t.Fatalf("AppendAudit: %v, seq %d", err, events[1].Seq)
	}
	if list, err := s.ListAudit(ctx, airlock.AuditFilter{Type: "a.", Since: now}); err != nil || len(list) != 2 {
		t.Fatalf("ListAudit: %d, %v", len(list), err)
	}
	if hs, err := s.ReadAuditHashes(ctx, []int64{0, 1, 2}); err != nil || len(hs) != 3 {
		t.Fatalf("ReadAuditHashes: %v, %v", hs, err)
	}
	if err := s.SeeNetwork(ctx, "u-1", "192.0.2.0/24", &airlock.GeoPoint{Lat: 1.5, Country: "FR"}, now); err != nil {
		t.Fatal(err)
	}
	if n, err := s.HitRateLimit(ctx, "k", time.Minute, now); err != nil || n != 1 {
		t.Fatalf("HitRateLimit: %d, %v", n, err)
	}
}

// TestConformanceReplicas runs the whole suite with every call going to
// one of three stores on the same schema in turn, as a load balancer
// spreads requests over replicas: each store must see what the others
// wrote, and the concurrency checks (exactly one winner, gap-free audit
// numbers) then race across stores.
func TestConformanceReplicas(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) airlock.Store { return &roundRobin{stores: replicas(t, 3)} })
}

// TestMigrations checks the schema_migrations bookkeeping: the first open
// applies every embedded migration, a second applies none, and a new one is
// applied alone, with data kept throughout.
func TestMigrations(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t)
	embedded, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil || len(embedded) == 0 {
		t.Fatalf("embedded migrations: %v %v", embedded, err)
	}
	var want []string
	for _, name := range embedded {
		want = append(want, filepath.Base(name))
	}
	versions := func(s *Store) []string {
		t.Helper()
		rows, err := s.pool.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	s := mustOpenURL(t, url)
	if got := versions(s); !slices.Equal(got, want) {
		t.Errorf("first open applied %v, want %v", got, want)
	}
	if err := s.CreateUser(ctx, &airlock.User{ID: "u-1", Name: "alice", Handle: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// The first migration's CREATE TABLE statements would fail if it ran
	// twice.
	s = mustOpenURL(t, url)
	if got := versions(s); !slices.Equal(got, want) {
		t.Errorf("re-open recorded %v, want %v", got, want)
	}
	s.Close()

	fsys := fstest.MapFS{"migrations/9999_extra.sql": {Data: []byte(`CREATE TABLE extra (x integer); INSERT INTO extra VALUES (42);`)}}
	for _, name := range embedded {
		b, _ := fs.ReadFile(migrations, name)
		fsys[name] = &fstest.MapFile{Data: b}
	}
	s, err = open(ctx, url, fsys)
	if err != nil {
		t.Fatalf("open with a new migration: %v", err)
	}
	defer s.Close()
	if got := versions(s); !slices.Equal(got, append(want, "9999_extra.sql")) {
		t.Errorf("after a new migration: %v", got)
	}
	var x int
	if err := s.pool.QueryRow(ctx, `SELECT x FROM extra`).Scan(&x); err != nil || x != 42 {
		t.Errorf("new migration not applied: %d, %v", x, err)
	}
	if _, err := s.FindUserByID(ctx, "u-1"); err != nil {
		t.Errorf("user lost across migrations: %v", err)
	}
}

// TestMigrationsConcurrentOpen starts several replicas at once on a fresh
// schema: the advisory lock lets one migrate while the others wait, so
// every Open succeeds and each migration is applied exactly once.
func TestMigrationsConcurrentOpen(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t)
	// A migration that is not idempotent: run twice, the row count shows it.
	fsys := fstest.MapFS{"migrations/9999_count.sql": {Data: []byte(
		`CREATE TABLE IF NOT EXISTS applied (n integer); INSERT INTO applied VALUES (1); SELECT pg_sleep(0.2);`)}}
	names, _ := fs.Glob(migrations, "migrations/*.sql")
	for _, name := range names {
		b, _ := fs.ReadFile(migrations, name)
		fsys[name] = &fstest.MapFile{Data: b}
	}
	const n = 6
	var (
		wg     sync.WaitGroup
		stores = make([]*Store, n)
		errs   = make([]error, n)
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = open(ctx, url, fsys)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	var count, recorded int
	if err := stores[0].pool.QueryRow(ctx, `SELECT count(*) FROM applied`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if err := stores[0].pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&recorded); err != nil {
		t.Fatal(err)
	}
	if count != 1 || recorded != len(fsys) {
		t.Errorf("%d concurrent opens: the counting migration ran %d times, %d migrations recorded; want 1 and %d",
			n, count, recorded, len(fsys))
	}
	// Every store works on the migrated schema.
	for i, s := range stores {
		if err := s.Ping(ctx); err != nil {
			t.Errorf("store %d: Ping: %v", i, err)
		}
	}
}

// TestMigrationFailureRollsBack checks that a broken migration leaves the
// database as it was: nothing of it, nor of the migrations applied with it,
// remains, and fixing it lets the next open proceed.
func TestMigrationFailureRollsBack(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t)
	fsys := fstest.MapFS{
		"migrations/0001_ok.sql":  {Data: []byte(`CREATE TABLE a (x integer);`)},
		"migrations/0002_bad.sql": {Data: []byte(`CREATE TABLE b (x integer); THIS IS NOT SQL;`)},
	}
	if _, err := open(ctx, url, fsys); airlock.ErrorCode(err) != airlock.EINTERNAL {
		t.Fatalf("open with a broken migration: %v, want EINTERNAL", err)
	}
	fsys["migrations/0002_bad.sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE b (x integer);`)}
	s, err := open(ctx, url, fsys)
	if err != nil {
		t.Fatalf("open after fixing the migration: %v (was table a or b left behind?)", err)
	}
	s.Close()
}

// TestAuditAppendOnly checks that the database itself refuses to change or
// remove audit records and checkpoints, whoever asks.
func TestAuditAppendOnly(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	e := &airlock.AuditEvent{Time: time.Now(), Type: "auth.login", Outcome: airlock.OutcomeSuccess, UserID: "u-1"}
	if err := s.AppendAudit(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAuditCheckpoint(ctx, &airlock.AuditCheckpoint{Size: 1, Text: []byte("note"), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	before, err := s.ReadAuditEntries(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`UPDATE audit_log SET type = 'x' WHERE seq = 1`,
		`UPDATE audit_log SET seq = 7`,
		`DELETE FROM audit_log WHERE seq = 1`,
		`DELETE FROM audit_log`,
		`TRUNCATE audit_log`,
		`UPDATE audit_checkpoints SET text = 'forged'`,
		`DELETE FROM audit_checkpoints`,
		`TRUNCATE audit_checkpoints`,
		// Nor may a row skip or reuse a number.
		`INSERT INTO audit_log (seq, leaf, hashes, time, type, user_id, session_id, grant_id)
			VALUES (3, 'x', '', now(), 'x', '', '', '')`,
		`INSERT INTO audit_log (seq, leaf, hashes, time, type, user_id, session_id, grant_id)
			VALUES (1, 'x', '', now(), 'x', '', '', '') ON CONFLICT (seq) DO UPDATE SET leaf = 'x'`,
	} {
		_, err := s.pool.Exec(ctx, stmt)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want the append-only trigger", stmt, err)
		}
	}
	after, err := s.ReadAuditEntries(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 1 || !slices.Equal(after[0].Leaf, before[0].Leaf) {
		t.Errorf("audit log changed: %+v", after)
	}
	c, err := s.LatestAuditCheckpoint(ctx)
	if err != nil || string(c.Text) != "note" {
		t.Errorf("checkpoint changed: %+v, %v", c, err)
	}
}

// TestNoAuditMutation keeps the package honest: no statement in its source
// updates or deletes audit records or checkpoints.
func TestNoAuditMutation(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	sqlFiles, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(sqlFiles) == 0 {
		t.Fatalf("migrations: %v %v", sqlFiles, err)
	}
	files = append(files, sqlFiles...)
	bad := regexp.MustCompile(`(?i)(UPDATE|DELETE\s+FROM|TRUNCATE)\s+audit_(log|checkpoints)\b`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := bad.Find(b); m != nil {
			t.Errorf("%s: %q: the audit log is append-only", f, m)
		}
	}
}

func TestErrorMessages(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	c := &airlock.Credential{ID: []byte{1, 2, 3}, UserID: "u-1", CreatedAt: time.Now()}
	if err := s.CreateCredential(ctx, c); err != nil {
		t.Fatal(err)
	}
	c.UserID = "u-2"
	if got := airlock.ErrorMessage(s.CreateCredential(ctx, c)); got != "postgres: credential id already registered" {
		t.Errorf("duplicate credential message %q", got)
	}
	if err := s.CreateUser(ctx, &airlock.User{ID: "u-1", Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	err := s.CreateUser(ctx, &airlock.User{ID: "u-2", Name: "alice"})
	if got := airlock.ErrorMessage(err); got != "postgres: user name already taken" || airlock.ErrorCode(err) != airlock.ECONFLICT {
		t.Errorf("duplicate user name: %v, message %q", err, got)
	}
	req := &airlock.AccessRequest{ID: "req_1", RequesterID: "u-1", Status: airlock.RequestPending, CreatedAt: time.Now()}
	if err := s.CreateAccessRequest(ctx, req); err != nil {
		t.Fatal(err)
	}
	a := &airlock.Approval{RequestID: "req_1", ApproverID: "u-2", CreatedAt: time.Now()}
	if err := s.AddApproval(ctx, a); err != nil {
		t.Fatal(err)
	}
	err = s.AddApproval(ctx, a)
	if got := airlock.ErrorMessage(err); got != "postgres: the approver has already approved this request" || airlock.ErrorCode(err) != airlock.ECONFLICT {
		t.Errorf("second approval: %v, message %q", err, got)
	}
	cert := &airlock.SSHCertificate{Serial: 7, KeyID: "alice/grt_1", GrantID: "grt_1", IssuedAt: time.Now()}
	if err := s.CreateSSHCertificate(ctx, cert); err != nil {
		t.Fatal(err)
	}
	err = s.CreateSSHCertificate(ctx, cert)
	if got := airlock.ErrorMessage(err); got != "postgres: SSH certificate serial already used" || airlock.ErrorCode(err) != airlock.ECONFLICT {
		t.Errorf("serial used twice: %v, message %q", err, got)
	}
	_, err = s.FindUserByID(ctx, "nope")
	if got := airlock.ErrorMessage(err); got != "postgres: user not found" {
		t.Errorf("missing user message %q", got)
	}
	err = s.UpdateUser(ctx, &airlock.User{ID: "u-1", Name: "alice", Version: 4})
	if got := airlock.ErrorMessage(err); got != "postgres: user changed concurrently; reload and retry" || airlock.ErrorCode(err) != airlock.ECONFLICT {
		t.Errorf("stale user update: %v, message %q", err, got)
	}
	if err := s.CreateStepUp(ctx, &airlock.StepUp{ID: "txn_1", CreatedAt: time.Now(), ExpiresAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateStepUp(ctx, &airlock.StepUp{ID: "txn_2", CreatedAt: time.Now(), ExpiresAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.CompleteStepUp(ctx, "txn_1", []byte("proof"), nil, now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	err = s.CompleteStepUp(ctx, "txn_2", []byte("proof"), nil, now, now.Add(time.Minute))
	if airlock.ErrorCode(err) != airlock.ECONFLICT {
		t.Errorf("a proof hash stored twice: %v, want ECONFLICT", err)
	}
	if _, err := s.ConsumeStepUpProof(ctx, []byte("proof"), time.Time{}); airlock.ErrorCode(err) != airlock.EINVALID {
		t.Errorf("consuming a proof at the zero time (which would leave it unused): %v, want EINVALID", err)
	}

	// A failure other than a constraint is internal and keeps its cause.
	s.Close()
	_, err = s.FindUserByID(ctx, "u-1")
	if airlock.ErrorCode(err) != airlock.EINTERNAL || errors.Unwrap(err) == nil {
		t.Errorf("query on a closed store: %v, want EINTERNAL with a cause", err)
	}
	if err := s.Ping(ctx); airlock.ErrorCode(err) != airlock.EUNAVAILABLE {
		t.Errorf("Ping on a closed store: %v, want EUNAVAILABLE", err)
	}
}

// TestTextPostgresCannotStore checks that strings PostgreSQL text cannot
// hold (a NUL byte, invalid UTF-8) are refused as EINVALID with nothing
// written, rather than failing as an internal error. (SQLite stores them;
// the edges pass such strings only from request data.)
func TestTextPostgresCannotStore(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	for _, tc := range []struct{ name, text string }{
		{"fail-nul", "ali\x00ce"},
		{"fail-invalid-utf8", "ali\xffce"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.CreateUser(ctx, &airlock.User{ID: "u-" + tc.name, Name: tc.text, CreatedAt: time.Now()})
			if airlock.ErrorCode(err) != airlock.EINVALID {
				t.Errorf("CreateUser(%q): %v, want EINVALID", tc.text, err)
			}
			if _, err := s.FindUserByID(ctx, "u-"+tc.name); airlock.ErrorCode(err) != airlock.ENOTFOUND {
				t.Errorf("user written anyway: %v", err)
			}
		})
	}
	// The audit log takes both in its leaves (canonical JSON, stored as
	// bytea), where a NUL is an escape and invalid UTF-8 becomes U+FFFD.
	e := &airlock.AuditEvent{Time: time.Now(), Type: "auth.login_failed", Outcome: airlock.OutcomeFailure,
		Subject: "ali\x00ce\xff", Details: map[string]any{"name": "x\x00"}}
	if err := s.AppendAudit(ctx, e); err != nil {
		t.Fatalf("AppendAudit with a NUL and invalid UTF-8: %v", err)
	}
	got, err := s.ListAudit(ctx, airlock.AuditFilter{})
	if err != nil || len(got) != 1 || got[0].Subject != "ali\x00ce\uFFFD" {
		t.Errorf("ListAudit = %+v, %v", got, err)
	}
}

func TestOpenInvalid(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, url, code string
	}{
		{"fail-not-a-url", "host=127.0.0.1 user=postgres", airlock.EINVALID},
		{"fail-other-scheme", "mysql://root@127.0.0.1/test", airlock.EINVALID},
		{"fail-malformed", "postgres://user:secret@[::1/x", airlock.EINVALID},
		{"fail-sync-commit-off", pgtest.WithParam(pgtest.ServerURL(), "synchronous_commit", "off"), airlock.EINVALID},
		{"fail-sync-commit-local", pgtest.WithParam(pgtest.ServerURL(), "synchronous_commit", "local"), airlock.EINVALID},
		{"fail-unreachable", "postgres://postgres:secret@127.0.0.1:1/test?connect_timeout=2", airlock.EUNAVAILABLE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(ctx, tc.url)
			if err == nil {
				s.Close()
			}
			if airlock.ErrorCode(err) != tc.code {
				t.Fatalf("Open(%q): %v, want %s", tc.url, err, tc.code)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
	t.Run("fail-missing-schema", func(t *testing.T) {
		pgtest.Require(t)
		_, err := Open(ctx, pgtest.WithSearchPath(pgtest.ServerURL(), "airlock_no_such_schema"))
		if airlock.ErrorCode(err) != airlock.EINVALID || !strings.Contains(err.Error(), "schema") {
			t.Fatalf("Open on a missing schema: %v, want EINVALID naming the schema", err)
		}
	})
}

// TestOpenSyncCommitAnySpelling checks that synchronous_commit is vetted
// whatever its spelling: PostgreSQL parameter names are case-insensitive,
// and another spelling sent beside the store's synchronous_commit=on won on
// some of the pool's connections (the startup parameters come from a map).
func TestOpenSyncCommitAnySpelling(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t)
	for _, key := range []string{"Synchronous_Commit", "SYNCHRONOUS_COMMIT"} {
		for _, v := range []string{"off", "local", "remote_write"} {
			s, err := Open(ctx, pgtest.WithParam(url, key, v))
			if err == nil {
				s.Close()
			}
			if airlock.ErrorCode(err) != airlock.EINVALID {
				t.Errorf("Open with %s=%s: %v, want EINVALID", key, v, err)
			}
		}
	}
	s := mustOpenURL(t, pgtest.WithParam(url, "Synchronous_Commit", "remote_apply"))
	for range 8 {
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var v string
		if err := conn.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != "remote_apply" {
			t.Errorf("Synchronous_Commit=remote_apply: a connection has synchronous_commit = %s", v)
		}
		conn.Conn().Close(ctx) // the next Acquire opens a new connection
		conn.Release()
	}
}

// TestDurableCommits checks that the store's connections commit
// synchronously, whatever the server default.
func TestDurableCommits(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	var v string
	if err := s.pool.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != "on" {
		t.Errorf("synchronous_commit = %s, want on", v)
	}
}

// TestSessionExpiryIndex checks that the expired-session sweep reads the
// sessions_expiry index instead of scanning and sorting the table.
func TestSessionExpiryIndex(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// A handful of rows would make a sequential scan cheaper: tell the
	// planner not to.
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	var plan []string
	rows, err := conn.Query(ctx, `EXPLAIN `+expiredSessionsQuery, time.Now(), 100)
	if err != nil {
		t.Fatal(err)
	}
	plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	p := strings.Join(plan, "\n")
	if !strings.Contains(p, "sessions_expiry") || strings.Contains(p, "Sort") {
		t.Errorf("plan does not read sessions_expiry in order:\n%s", p)
	}
}

// TestExpiredSubMicrosecond checks that an idle timeout finer than the
// stored microseconds never makes a session expire early.
func TestExpiredSubMicrosecond(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	seen := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	sess := &airlock.Session{ID: "s-1", TokenHash: []byte("h"), UserID: "u-1", LastSeen: seen,
		IdleTimeout: time.Minute + 1, AbsoluteDeadline: seen.Add(time.Hour), CreatedAt: seen}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		now  time.Time
		want int
	}{
		{seen.Add(time.Minute), 0},
		{seen.Add(time.Minute + 1), 0},
		{seen.Add(time.Minute + time.Microsecond), 1},
	} {
		list, err := s.ListExpiredSessions(ctx, tc.now, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != tc.want {
			t.Errorf("at %s: %d expired, want %d", tc.now.Format(time.RFC3339Nano), len(list), tc.want)
		}
	}
	// Touching the session moves its idle deadline.
	if err := s.TouchSession(ctx, "s-1", seen.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListExpiredSessions(ctx, seen.Add(time.Minute+time.Microsecond), 0); len(list) != 0 {
		t.Errorf("a touched session is still listed as expired")
	}
}

// TestRateLimitSweep checks that counters of ended windows are deleted as
// new hits arrive, so the table does not grow without bound.
func TestRateLimitSweep(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	base := time.Date(2031, 3, 4, 5, 6, 0, 0, time.UTC)
	for i := range 5 {
		if _, err := s.HitRateLimit(ctx, fmt.Sprint("k-", i), time.Minute, base); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.HitRateLimit(ctx, "k-new", time.Minute, base.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("HitRateLimit in the next window: %d, %v", n, err)
	}
	var rows int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM rate_limits`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Errorf("%d rate-limit rows after the window ended, want 1 (the ended windows swept)", rows)
	}
}

// TestAuditIndexColumnsAnyText checks that an event whose indexed fields
// (type, user, session, grant) carry text PostgreSQL's text type cannot
// hold is recorded, read back and found by its filters — and does not fail
// the other events of its batch.
func TestAuditIndexColumnsAnyText(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	odd := "u\x00\xff"
	events := []*airlock.AuditEvent{
		{Time: time.Now(), Type: "auth.login", Outcome: airlock.OutcomeSuccess, UserID: "u-1"},
		{Time: time.Now(), Type: "auth.x\x00", Outcome: airlock.OutcomeSuccess, UserID: odd, SessionID: odd, GrantID: odd},
	}
	if err := s.AppendAudit(ctx, events...); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	entries, err := s.ReadAuditEntries(ctx, 0, 0)
	if err != nil || len(entries) != 2 || entries[1].UserID != odd || entries[1].Type != "auth.x\x00" {
		t.Fatalf("ReadAuditEntries: %+v, %v", entries, err)
	}
	for _, f := range []airlock.AuditFilter{{UserID: odd}, {SessionID: odd}, {GrantID: odd}, {Type: "auth.x\x00"}} {
		got, err := s.ListAudit(ctx, f)
		if err != nil || len(got) != 1 || got[0].Seq != 2 {
			t.Errorf("ListAudit(%+v) = %d events, %v; want event 2", f, len(got), err)
		}
	}
	if got, err := s.ListAudit(ctx, airlock.AuditFilter{Type: "auth."}); err != nil || len(got) != 2 {
		t.Errorf("type prefix: %d events, %v", len(got), err)
	}
}

// TestAuditMalformedHashesReadAsNil: an entry whose stored hashes were
// damaged (by someone with database access who disabled the triggers) is
// read back unchecked with nil Hashes, so that verify names that record
// instead of failing the whole read.
func TestAuditMalformedHashesReadAsNil(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	for i := 0; i < 3; i++ {
		if err := s.AppendAudit(ctx, &airlock.AuditEvent{Time: time.Now(), Type: "auth.login", Outcome: airlock.OutcomeSuccess}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.pool.Exec(ctx, `ALTER TABLE audit_log DISABLE TRIGGER USER`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE audit_log SET hashes = '\x0102'::bytea WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	es, err := s.ReadAuditEntries(ctx, 0, 0)
	if err != nil || len(es) != 3 {
		t.Fatalf("read after damage: %d entries, %v", len(es), err)
	}
	if es[1].Hashes != nil || es[0].Hashes == nil || es[2].Hashes == nil {
		t.Errorf("hashes: %v / %v / %v, want only seq 2 nil", es[0].Hashes, es[1].Hashes, es[2].Hashes)
	}
}

// TestFrozenAuditLockHolder: a replica that stops mid-append while holding
// the audit lock (its host gone without closing the connection, a paused
// VM) must not stop every other replica's appends until TCP keepalives
// notice, hours later. The store's connections end a transaction left idle
// (idle_in_transaction_session_timeout, 15s unless the URL says otherwise):
// the lock is released, the others append, and the frozen append, when it
// wakes, is reported failed and wrote nothing.
func TestFrozenAuditLockHolder(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t)
	var v string
	if err := mustOpenURL(t, url).pool.QueryRow(ctx, `SHOW idle_in_transaction_session_timeout`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != "15s" {
		t.Errorf("default idle_in_transaction_session_timeout = %s, want 15s", v)
	}
	// The same with a short timeout, so the test does not wait 15s.
	url = pgtest.WithParam(url, "idle_in_transaction_session_timeout", "300ms")
	frozen, other := mustOpenURL(t, url), mustOpenURL(t, url)
	tx, err := frozen.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := lockAuditAppends(ctx, tx); err != nil {
		t.Fatal(err)
	}
	e := &airlock.AuditEvent{Time: time.Now(), Type: "auth.login", Outcome: airlock.OutcomeSuccess}
	// Without the timeout this waits for the lock for as long as ctx
	// lets it.
	actx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := other.AppendAudit(actx, e); err != nil {
		t.Fatalf("append while another store's transaction holding the lock sits idle: %v", err)
	}
	if e.Seq != 1 {
		t.Errorf("Seq = %d, want 1", e.Seq)
	}
	_, err = tx.Exec(ctx, `INSERT INTO audit_cursors (name, seq, updated_at) VALUES ('x', 0, now())`)
	if err == nil {
		err = tx.Commit(ctx)
		if err == nil {
			t.Fatal("the frozen transaction committed after its lock was taken over")
		}
	} else {
		tx.Rollback(ctx)
	}
	if code := airlock.ErrorCode(dbError("append", err)); code != airlock.EUNAVAILABLE {
		t.Errorf("the frozen transaction's error %v maps to %s, want EUNAVAILABLE", err, code)
	}
	var n int
	if err := other.pool.QueryRow(ctx, `SELECT count(*) FROM audit_cursors`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the frozen transaction's write is there: %d rows, %v", n, err)
	}
}
