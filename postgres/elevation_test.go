package postgres

import (
	"context"
	"io/fs"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"airlock"
	"airlock/postgres/pgtest"

	"github.com/jackc/pgx/v5"
)

// TestElevationIndexes checks that the elevation lists and sweeps read the
// indexes of migration 0003 in order, rather than scanning or sorting.
func TestElevationIndexes(t *testing.T) {
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
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	query := func(q string, args ...any) func() (string, []any) {
		return func() (string, []any) { return q, args }
	}
	for _, tc := range []struct {
		name  string
		query func() (string, []any)
		index string
	}{
		{"requests", func() (string, []any) { return accessRequestsQuery(airlock.AccessRequestFilter{}) }, "access_requests_created"},
		{"requests-by-requester", func() (string, []any) {
			return accessRequestsQuery(airlock.AccessRequestFilter{RequesterID: "u-1"})
		}, "access_requests_requester"},
		{"requests-by-status", func() (string, []any) {
			return accessRequestsQuery(airlock.AccessRequestFilter{Status: airlock.RequestPending})
		}, "access_requests_status"},
		{"expired-requests", query(expiredRequestsQuery, now, 100), "access_requests_expiry"},
		{"grants", func() (string, []any) { return grantsQuery(airlock.GrantFilter{}) }, "grants_created"},
		{"grants-by-user", func() (string, []any) { return grantsQuery(airlock.GrantFilter{UserID: "u-1", ActiveAt: now}) }, "grants_user"},
		{"grants-by-session", func() (string, []any) {
			return grantsQuery(airlock.GrantFilter{SessionID: "s-1", ActiveAt: now})
		}, "grants_session"},
		{"grants-to-end", query(grantsToEndQuery, now, 100), "grants_to_end"},
		{"ssh-certificates", query(sshCertificatesQuery, "grt_1"), "ssh_certificates_grant"},
	} {
		q, args := tc.query()
		rows, err := conn.Query(ctx, `EXPLAIN `+q, args...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		p := strings.Join(plan, "\n")
		if !strings.Contains(p, tc.index) || strings.Contains(p, "Sort") {
			t.Errorf("%s: plan does not read %s in order:\n%s", tc.name, tc.index, p)
		}
	}
}

// TestSSHSerialBits checks that serials are stored as the bigint with the
// same bits: 2^63 and above come out negative in SQL and whole in Go.
func TestSSHSerialBits(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	for _, tc := range []struct {
		serial uint64
		stored int64
	}{
		{1, 1},
		{1<<63 - 1, math.MaxInt64},
		{1 << 63, math.MinInt64},
		{math.MaxUint64, -1},
	} {
		c := &airlock.SSHCertificate{Serial: tc.serial, KeyID: "alice/grt_1", GrantID: "grt_1", Principals: []string{"dba@db"},
			IssuedAt: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)}
		if err := s.CreateSSHCertificate(ctx, c); err != nil {
			t.Fatalf("serial %d: %v", tc.serial, err)
		}
		var n int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM ssh_certificates WHERE serial = $1`, tc.stored).Scan(&n); err != nil || n != 1 {
			t.Errorf("serial %d: %d rows stored as %d (%v), want 1", tc.serial, n, tc.stored, err)
		}
	}
}

// TestUpgradeTo0003 migrates a schema made by migrations 0001–0002, with a
// session in it: the session reads back with an empty KeyThumbprint and the
// elevation tables work.
func TestUpgradeTo0003(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t)
	oldFS := fstest.MapFS{}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if filepath.Base(name) >= "0003" {
			continue
		}
		b, err := fs.ReadFile(migrations, name)
		if err != nil {
			t.Fatal(err)
		}
		oldFS[name] = &fstest.MapFile{Data: b}
	}
	if len(oldFS) != 2 {
		t.Fatalf("%d migrations before 0003, want 2", len(oldFS))
	}
	old, err := open(ctx, url, oldFS)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	// The 0002 schema has no key_thumbprint column: insert as its code did.
	if _, err := old.pool.Exec(ctx, `INSERT INTO sessions (id, token_hash, user_id, device_id, tier, amr, acr,
		last_seen, absolute_deadline, idle_timeout, expires_at, ip, user_agent, created_at, end_reason)
		VALUES ('s-1', 'h', 'u-1', '', 0, '{}', '', $1, $2, $3, $2, '', '', $1, '')`,
		created, created.Add(12*time.Hour), int64(time.Hour)); err != nil {
		t.Fatal(err)
	}
	old.Close()

	s := mustOpenURL(t, url)
	got, err := s.FindSessionByID(ctx, "s-1")
	if err != nil || got.KeyThumbprint != "" || !got.LastSeen.Equal(created) {
		t.Fatalf("upgraded session: %+v, %v; want it unchanged with an empty KeyThumbprint", got, err)
	}
	bound := &airlock.Session{ID: "s-2", TokenHash: []byte("h2"), UserID: "u-1", KeyThumbprint: "thumb", CreatedAt: created}
	if err := s.CreateSession(ctx, bound); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindSessionByTokenHash(ctx, []byte("h2")); err != nil || got.KeyThumbprint != "thumb" {
		t.Errorf("key-bound session on the upgraded schema: %+v, %v", got, err)
	}
	r := &airlock.AccessRequest{ID: "req_1", RequesterID: "u-1", SessionID: "s-1", Status: airlock.RequestPending,
		Scope: airlock.Scope{Role: "dba", Resource: "db"}, CreatedAt: created, ExpiresAt: created.Add(time.Hour)}
	if err := s.CreateAccessRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	g := &airlock.Grant{ID: "grt_1", RequestID: "req_1", UserID: "u-1", SessionID: "s-1", Scope: r.Scope,
		NotBefore: created, NotAfter: created.Add(time.Hour), CreatedAt: created}
	if err := s.ResolveAccessRequest(ctx, "req_1", airlock.RequestApproved, "u-2", "", created, g); err != nil {
		t.Fatal(err)
	}
	if list, err := s.ListGrants(ctx, airlock.GrantFilter{SessionID: "s-1", ActiveAt: created}); err != nil || len(list) != 1 {
		t.Errorf("active grants on the upgraded schema: %v, %v", list, err)
	}
}
