package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"airlock"
	"airlock/storetest"
)

// mustOpen opens a new store in a temporary directory and closes it when tb
// ends.
func mustOpen(tb testing.TB) *Store {
	tb.Helper()
	s, err := Open(context.Background(), filepath.Join(tb.TempDir(), "airlock.db"))
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) airlock.Store { return mustOpen(t) })
}

// TestPragmas checks that every connection, of the write path and of the
// read pool, runs with the durability and safety settings.
func TestPragmas(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	// Hold several read connections at once so that the pool has to open
	// more than one.
	var conns []*sql.Conn
	for range 3 {
		c, err := s.r.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	w, err := s.w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	conns = append(conns, w)
	for i, c := range conns {
		for _, p := range []struct{ pragma, want string }{
			{"synchronous", "2"}, // FULL
			{"journal_mode", "wal"},
			{"foreign_keys", "1"},
			{"busy_timeout", "5000"},
		} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+p.pragma).Scan(&got); err != nil {
				t.Fatalf("conn %d: PRAGMA %s: %v", i, p.pragma, err)
			}
			if got != p.want {
				t.Errorf("conn %d: PRAGMA %s = %s, want %s", i, p.pragma, got, p.want)
			}
		}
	}
	// The read pool cannot write.
	if _, err := conns[0].ExecContext(ctx, `INSERT INTO ceremonies (id, kind, user_id, ref, created_at, expires_at) VALUES ('x', '', '', '', 0, 0)`); err == nil {
		t.Errorf("a read connection wrote to the database")
	}
}

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "airlock.db")

	versions := func(s *Store) []string {
		t.Helper()
		rows, err := s.r.QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		return out
	}
	embedded, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil || len(embedded) == 0 {
		t.Fatalf("embedded migrations: %v %v", embedded, err)
	}
	var want []string
	for _, name := range embedded {
		want = append(want, filepath.Base(name))
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if got := versions(s); !slices.Equal(got, want) {
		t.Errorf("first open applied %v, want %v", got, want)
	}
	u := &airlock.User{ID: "u-1", Name: "alice", Handle: []byte{1}}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Re-opening applies nothing again: the first migration's CREATE TABLE
	// statements would fail if it ran twice. Data survives.
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("re-open: %v", err)
	}
	if got := versions(s); !slices.Equal(got, want) {
		t.Errorf("re-open recorded %v, want %v", got, want)
	}
	if _, err := s.FindUserByID(ctx, "u-1"); err != nil {
		t.Errorf("user lost across re-open: %v", err)
	}
	s.Close()

	// A new migration is applied, alone, on the next open.
	fsys := fstest.MapFS{
		"migrations/9999_extra.sql": {Data: []byte(`CREATE TABLE extra (x INTEGER); INSERT INTO extra VALUES (42);`)},
	}
	for _, name := range embedded {
		b, err := fs.ReadFile(migrations, name)
		if err != nil {
			t.Fatal(err)
		}
		fsys[name] = &fstest.MapFile{Data: b}
	}
	s, err = open(ctx, path, fsys)
	if err != nil {
		t.Fatalf("open with a new migration: %v", err)
	}
	defer s.Close()
	if got := versions(s); !slices.Equal(got, append(want, "9999_extra.sql")) {
		t.Errorf("after new migration: %v", got)
	}
	var x int
	if err := s.r.QueryRowContext(ctx, `SELECT x FROM extra`).Scan(&x); err != nil || x != 42 {
		t.Errorf("new migration not applied: %d, %v", x, err)
	}
	if _, err := s.FindUserByID(ctx, "u-1"); err != nil {
		t.Errorf("user lost after new migration: %v", err)
	}
}

// TestUpgradeFrom0001 opens a database made by the first schema alone, with
// rows in it, and checks that migrations 0002 and 0003 upgrade it in place.
func TestUpgradeFrom0001(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "airlock.db")
	b, err := fs.ReadFile(migrations, "migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	old, err := open(ctx, path, fstest.MapFS{"migrations/0001_init.sql": {Data: b}})
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`INSERT INTO users (id, name, display_name, kind, tier, roles, disabled, handle, created_at, updated_at)
			VALUES ('u-1', 'alice', 'Alice', 'employee', 0, '["airlock-admin"]', 0, x'01', 1, 1)`,
		`INSERT INTO devices (id, name, owner, kind, trust, managed, disk_encrypted, os_version, patch_level,
			edr_running, screen_lock, posture_reported_at, posture_source, created_at, updated_at)
			VALUES ('d-1', 'laptop', 'u-1', 'managed', 'trusted', 1, 1, '', '', 1, 1, 0, '', 1, 1)`,
		`INSERT INTO credentials (id, user_id, device_id, name, aaguid, attestation_format, attestation_type,
			algorithm, transports, backup_eligible, backup_state, sign_count, tier_cap, created_at, last_used_at, revoked_at)
			VALUES (x'0102', 'u-1', 'd-1', '', '', '', '', -7, '[]', 0, 0, 0, 0, 1, 0, 0)`,
	} {
		if _, err := old.w.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("open the 0001 database: %v", err)
	}
	defer s.Close()
	u, err := s.FindUserByID(ctx, "u-1")
	if err != nil || u.Version != 0 {
		t.Fatalf("upgraded user: %+v, %v; want Version 0", u, err)
	}
	d, err := s.FindDeviceByID(ctx, "d-1")
	if err != nil || d.Version != 0 {
		t.Fatalf("upgraded device: %+v, %v; want Version 0", d, err)
	}
	if ok, err := s.HasActiveTier0Admin(ctx); err != nil || !ok {
		t.Errorf("HasActiveTier0Admin on the upgraded database = %v, %v; want true", ok, err)
	}
	// Migration 0003: credentials enrolled before it never had a trust root.
	if c, err := s.FindCredentialByID(ctx, []byte{1, 2}); err != nil || c.AttestationTrusted {
		t.Errorf("upgraded credential: %+v, %v; want AttestationTrusted false", c, err)
	}
	u.DisplayName = "Alice A."
	if err := s.UpdateUser(ctx, u); err != nil || u.Version != 1 {
		t.Errorf("UpdateUser on the upgraded database: %v, Version %d", err, u.Version)
	}
	d.Trust = airlock.TrustRevoked
	if err := s.UpdateDevice(ctx, d); err != nil || d.Version != 1 {
		t.Errorf("UpdateDevice on the upgraded database: %v, Version %d", err, d.Version)
	}
	if ok, err := s.HasActiveTier0Admin(ctx); err != nil || ok {
		t.Errorf("HasActiveTier0Admin after revoking the device = %v, %v; want false", ok, err)
	}
}

// TestSessionIndexes checks that the session sweeps use the indexes of
// migration 0002 rather than scanning the table.
func TestSessionIndexes(t *testing.T) {
	s := mustOpen(t)
	for _, tc := range []struct {
		query string
		args  []any
		index string
	}{
		{expiredSessionsQuery, []any{1, 100}, "sessions_expiry"},
		{`SELECT id FROM sessions WHERE device_id = ? AND ended_at = 0`, []any{"d-1"}, "sessions_device"},
	} {
		p := queryPlan(t, s, tc.query, tc.args...)
		if !strings.Contains(p, "INDEX "+tc.index) {
			t.Errorf("%s: plan %q does not use %s", tc.query, p, tc.index)
		}
		if strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("%s: plan %q sorts", tc.query, p)
		}
	}
}

// queryPlan returns SQLite's plan for query, its details joined with "; ".
func queryPlan(t *testing.T, s *Store, query string, args ...any) string {
	t.Helper()
	rows, err := s.r.QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "; ")
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
		{seen.Add(time.Minute + 1), 0}, // due, but within the microsecond: reported at the next one
		{seen.Add(time.Minute + time.Microsecond), 1},
	} {
		list, err := s.ListExpiredSessions(ctx, tc.now, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != tc.want {
			t.Errorf("at %s: %d expired, want %d", tc.now.Format(time.RFC3339Nano), len(list), tc.want)
		}
		if len(list) > 0 && list[0].IsLive(tc.now) {
			t.Errorf("at %s: listed a live session", tc.now.Format(time.RFC3339Nano))
		}
	}
}

func TestMigrationFailureRollsBack(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "airlock.db")
	fsys := fstest.MapFS{
		"migrations/0001_ok.sql":  {Data: []byte(`CREATE TABLE a (x INTEGER);`)},
		"migrations/0002_bad.sql": {Data: []byte(`CREATE TABLE b (x INTEGER); THIS IS NOT SQL;`)},
	}
	if _, err := open(ctx, path, fsys); airlock.ErrorCode(err) != airlock.EINTERNAL {
		t.Fatalf("open with a broken migration: %v, want EINTERNAL", err)
	}
	fsys["migrations/0002_bad.sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE b (x INTEGER);`)}
	s, err := open(ctx, path, fsys)
	if err != nil {
		t.Fatalf("open after fixing the migration: %v (was table b left behind?)", err)
	}
	s.Close()
}

func TestErrorMessages(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	c := &airlock.Credential{ID: []byte{1, 2, 3}, UserID: "u-1", CreatedAt: time.Now()}
	if err := s.CreateCredential(ctx, c); err != nil {
		t.Fatal(err)
	}
	c.UserID = "u-2"
	err := s.CreateCredential(ctx, c)
	if got := airlock.ErrorMessage(err); got != "sqlite: credential id already registered" {
		t.Errorf("duplicate credential message %q", got)
	}
	if err := s.CreateUser(ctx, &airlock.User{ID: "u-1", Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	err = s.CreateUser(ctx, &airlock.User{ID: "u-2", Name: "alice"})
	if got := airlock.ErrorMessage(err); got != "sqlite: user name already taken" {
		t.Errorf("duplicate user name message %q", got)
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
	if got := airlock.ErrorMessage(err); got != "sqlite: the approver has already approved this request" || airlock.ErrorCode(err) != airlock.ECONFLICT {
		t.Errorf("second approval: %v, message %q", err, got)
	}
	cert := &airlock.SSHCertificate{Serial: 7, KeyID: "alice/grt_1", GrantID: "grt_1", IssuedAt: time.Now()}
	if err := s.CreateSSHCertificate(ctx, cert); err != nil {
		t.Fatal(err)
	}
	err = s.CreateSSHCertificate(ctx, cert)
	if got := airlock.ErrorMessage(err); got != "sqlite: SSH certificate serial already used" || airlock.ErrorCode(err) != airlock.ECONFLICT {
		t.Errorf("serial used twice: %v, message %q", err, got)
	}
	_, err = s.FindUserByID(ctx, "nope")
	if got := airlock.ErrorMessage(err); got != "sqlite: user not found" {
		t.Errorf("missing user message %q", got)
	}
	stale := &airlock.User{ID: "u-1", Name: "alice", Version: 4}
	err = s.UpdateUser(ctx, stale)
	if got := airlock.ErrorMessage(err); got != "sqlite: user changed concurrently; reload and retry" || airlock.ErrorCode(err) != airlock.ECONFLICT {
		t.Errorf("stale user update: %v, message %q", err, got)
	}
	err = s.UpdateUser(ctx, &airlock.User{ID: "nope"})
	if got := airlock.ErrorMessage(err); got != "sqlite: user not found" {
		t.Errorf("missing user update message %q", got)
	}
	if err := s.CreateDevice(ctx, &airlock.Device{ID: "d-1", Version: 2}); err != nil {
		t.Fatal(err)
	}
	err = s.UpdateDevice(ctx, &airlock.Device{ID: "d-1", Version: 1})
	if got := airlock.ErrorMessage(err); got != "sqlite: device changed concurrently; reload and retry" || airlock.ErrorCode(err) != airlock.ECONFLICT {
		t.Errorf("stale device update: %v, message %q", err, got)
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

func TestOpenInvalidPath(t *testing.T) {
	for _, p := range []string{"", ":memory:", "a.db?mode=ro", "file:a.db"} {
		if _, err := Open(context.Background(), p); airlock.ErrorCode(err) != airlock.EINVALID {
			t.Errorf("Open(%q): %v, want EINVALID", p, err)
		}
	}
	if _, err := Open(context.Background(), filepath.Join(t.TempDir(), "missing", "a.db")); err == nil {
		t.Errorf("Open in a missing directory succeeded")
	}
}

// TestNoAuditMutation keeps the package honest: no statement in its source
// updates or deletes audit rows.
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
	bad := regexp.MustCompile(`(?i)(UPDATE|DELETE\s+FROM|REPLACE\s+INTO)\s+audit_(events|log|checkpoints)\b`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := bad.Find(b); m != nil {
			t.Errorf("%s: %q: the audit table is append-only", f, m)
		}
	}
}

// BenchmarkAppendAudit measures serial, durable audit appends.
func BenchmarkAppendAudit(b *testing.B) {
	ctx := context.Background()
	s := mustOpen(b)
	e := &airlock.AuditEvent{Time: time.Now(), Type: "auth.login", Outcome: airlock.OutcomeSuccess,
		UserID: "u-1", SessionID: "s-1", Details: map[string]any{"tier": 0, "amr": []string{"hwk", "user"}}}
	for b.Loop() {
		if err := s.AppendAudit(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}
