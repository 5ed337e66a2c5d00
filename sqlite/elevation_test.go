package sqlite

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"airlock"
)

// TestElevationIndexes checks that the elevation lists and sweeps use the
// indexes of migration 0006 for both their filter and their order, rather
// than scanning or sorting the tables.
func TestElevationIndexes(t *testing.T) {
	s := mustOpen(t)
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	query := func(q string, args []any) func() (string, []any) {
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
		{"expired-requests", query(expiredRequestsQuery, []any{"pending", now.UnixMicro(), 100}), "access_requests_expiry"},
		{"grants", func() (string, []any) { return grantsQuery(airlock.GrantFilter{}) }, "grants_created"},
		{"grants-by-user", func() (string, []any) { return grantsQuery(airlock.GrantFilter{UserID: "u-1", ActiveAt: now}) }, "grants_user"},
		{"grants-by-session", func() (string, []any) {
			return grantsQuery(airlock.GrantFilter{SessionID: "s-1", ActiveAt: now})
		}, "grants_session"},
		{"grants-to-end", query(grantsToEndQuery, []any{now.UnixMicro(), 100}), "grants_to_end"},
		{"ssh-certificates", query(sshCertificatesQuery, []any{"grt_1"}), "ssh_certificates_grant"},
	} {
		q, args := tc.query()
		p := queryPlan(t, s, q, args...)
		if !strings.Contains(p, "INDEX "+tc.index) {
			t.Errorf("%s: plan %q does not use %s", tc.name, p, tc.index)
		}
		if strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("%s: plan %q sorts", tc.name, p)
		}
	}
}

// TestUpgradeTo0006 opens a database made by migrations 0001–0005, with a
// session in it, and checks that migration 0006 upgrades it in place: the
// old session reads back with an empty KeyThumbprint and the new tables
// work.
func TestUpgradeTo0006(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "airlock.db")
	oldFS := fstest.MapFS{}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if filepath.Base(name) >= "0006" {
			continue
		}
		b, err := fs.ReadFile(migrations, name)
		if err != nil {
			t.Fatal(err)
		}
		oldFS[name] = &fstest.MapFile{Data: b}
	}
	if len(oldFS) != 5 {
		t.Fatalf("%d migrations before 0006, want 5", len(oldFS))
	}
	old, err := open(ctx, path, oldFS)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	sess := &airlock.Session{ID: "s-1", TokenHash: []byte("h"), UserID: "u-1", AMR: []string{}, LastSeen: created,
		IdleTimeout: time.Hour, AbsoluteDeadline: created.Add(12 * time.Hour), CreatedAt: created}
	// The 0005 schema has no key_thumbprint column: insert as its code did.
	if _, err := old.w.ExecContext(ctx, `INSERT INTO sessions (id, token_hash, user_id, device_id, credential_id, tier,
		amr, acr, auth_time, last_seen, last_uv_at, absolute_deadline, idle_timeout, ip, user_agent, created_at, ended_at,
		end_reason) VALUES ('s-1', x'68', 'u-1', '', NULL, 0, '[]', '', 0, ?, 0, ?, ?, '', '', ?, 0, '')`,
		micros(sess.LastSeen), micros(sess.AbsoluteDeadline), int64(sess.IdleTimeout), micros(sess.CreatedAt)); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("open the 0005 database: %v", err)
	}
	defer s.Close()
	got, err := s.FindSessionByID(ctx, "s-1")
	if err != nil || got.KeyThumbprint != "" || !got.LastSeen.Equal(sess.LastSeen) {
		t.Fatalf("upgraded session: %+v, %v; want it unchanged with an empty KeyThumbprint", got, err)
	}
	bound := &airlock.Session{ID: "s-2", TokenHash: []byte("h2"), UserID: "u-1", KeyThumbprint: "thumb", CreatedAt: created}
	if err := s.CreateSession(ctx, bound); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindSessionByTokenHash(ctx, []byte("h2")); err != nil || got.KeyThumbprint != "thumb" {
		t.Errorf("key-bound session on the upgraded database: %+v, %v", got, err)
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
		t.Errorf("active grants on the upgraded database: %v, %v", list, err)
	}
}
