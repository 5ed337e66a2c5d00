package session_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"airlock"
	"airlock/audit"
	"airlock/session"
	"airlock/sqlite"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func setup(t *testing.T) (*session.Manager, *sqlite.Store, *clock) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{t: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}
	return session.New(session.Config{Now: c.Now}, st, audit.New(st, c.Now, nil)), st, c
}

func start(tier airlock.Tier, kind airlock.DeviceKind) session.Start {
	return session.Start{
		User:       &airlock.User{ID: "usr_1"},
		Device:     &airlock.Device{ID: "dev_1", Kind: kind},
		Credential: &airlock.Credential{ID: []byte{1, 2, 3}},
		Tier:       tier, UV: true, AMR: []string{"hwk", "user", "mfa"},
	}
}

func TestDeadlines(t *testing.T) {
	cases := []struct {
		name    string
		tier    airlock.Tier
		kind    airlock.DeviceKind
		advance []time.Duration // each step is an authenticated request after the delay
		ok      bool
		reason  string
	}{
		{"ok-tier0-active", 0, airlock.DeviceManaged, []time.Duration{14 * time.Minute, 14 * time.Minute, 14 * time.Minute}, true, ""},
		{"fail-tier0-idle-15m", 0, airlock.DeviceManaged, []time.Duration{15 * time.Minute}, false, "idle_timeout"},
		{"fail-tier0-absolute-12h", 0, airlock.DeviceManaged, repeat(10*time.Minute, 72), false, "absolute_timeout"},
		{"ok-tier0-just-under-12h", 0, airlock.DeviceManaged, repeat(10*time.Minute, 71), true, ""},
		{"ok-tier1-idle-59m", 1, airlock.DeviceManaged, []time.Duration{59 * time.Minute}, true, ""},
		{"fail-tier1-idle-1h", 1, airlock.DeviceManaged, []time.Duration{time.Hour}, false, "idle_timeout"},
		{"fail-tier2-absolute-24h", 2, airlock.DeviceManaged, repeat(50*time.Minute, 29), false, "absolute_timeout"},
		{"fail-shared-station-idle-5m", 1, airlock.DeviceSharedStation, []time.Duration{5 * time.Minute}, false, "idle_timeout"},
		{"fail-shared-station-absolute-8h", 2, airlock.DeviceSharedStation, repeat(4*time.Minute, 120), false, "absolute_timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, st, c := setup(t)
			ctx := context.Background()
			token, s, err := m.Create(ctx, start(tc.tier, tc.kind))
			if err != nil {
				t.Fatal(err)
			}
			var lastErr error
			for _, d := range tc.advance {
				c.Add(d)
				if _, lastErr = m.Authenticate(ctx, token); lastErr != nil {
					break
				}
			}
			if tc.ok != (lastErr == nil) {
				t.Fatalf("authenticate: err=%v, want ok=%v", lastErr, tc.ok)
			}
			if !tc.ok {
				if airlock.ErrorCode(lastErr) != airlock.EUNAUTHORIZED {
					t.Fatalf("code %q", airlock.ErrorCode(lastErr))
				}
				got, err := st.FindSessionByID(ctx, s.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.EndedAt.IsZero() || got.EndReason != tc.reason {
					t.Fatalf("session not ended with %s: %+v", tc.reason, got)
				}
				evs, _ := st.ListAudit(ctx, airlock.AuditFilter{Type: "session.expired"})
				if len(evs) != 1 || evs[0].Reason != tc.reason {
					t.Fatalf("expiry not audited: %+v", evs)
				}
				// Stays dead.
				if _, err := m.Authenticate(ctx, token); err == nil {
					t.Fatal("expired session authenticated again")
				}
			}
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestCreateAndEnd(t *testing.T) {
	m, st, c := setup(t)
	ctx := context.Background()
	tok1, s1, err := m.Create(ctx, start(0, airlock.DeviceManaged))
	if err != nil {
		t.Fatal(err)
	}
	tok2, s2, err := m.Create(ctx, start(0, airlock.DeviceManaged))
	if err != nil {
		t.Fatal(err)
	}
	if s1.ID == s2.ID || tok1 == tok2 {
		t.Fatal("a login reused a session id or secret")
	}
	if string(s1.TokenHash) == tok1 || len(s1.TokenHash) != 32 {
		t.Fatal("secret stored instead of its hash")
	}
	if s1.ACR != "airlock:tier0" || !s1.LastUVAt.Equal(c.Now()) {
		t.Fatalf("acr/uv: %+v", s1)
	}
	if _, err := m.Authenticate(ctx, "not-a-token"); airlock.ErrorCode(err) != airlock.EUNAUTHORIZED {
		t.Fatalf("bad token: %v", err)
	}
	if _, err := m.Authenticate(ctx, ""); airlock.ErrorCode(err) != airlock.EUNAUTHORIZED {
		t.Fatalf("empty token: %v", err)
	}
	if err := m.End(ctx, s1, "logout", "usr_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Authenticate(ctx, tok1); airlock.ErrorCode(err) != airlock.EUNAUTHORIZED {
		t.Fatalf("ended session: %v", err)
	}
	if _, err := m.Authenticate(ctx, tok2); err != nil {
		t.Fatalf("other session ended too: %v", err)
	}
	if err := m.EndUser(ctx, "usr_1", "user_disabled", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Authenticate(ctx, tok2); airlock.ErrorCode(err) != airlock.EUNAUTHORIZED {
		t.Fatalf("EndUser left a session: %v", err)
	}
	evs, _ := st.ListAudit(ctx, airlock.AuditFilter{Type: "session."})
	var types []string
	for _, e := range evs {
		types = append(types, e.Type+":"+e.Reason)
	}
	want := []string{"session.created:", "session.created:", "session.ended:logout", "session.ended:user_disabled"}
	if len(types) != len(want) {
		t.Fatalf("audit %v, want %v", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("audit %v, want %v", types, want)
		}
	}
}

func TestMarkUV(t *testing.T) {
	m, st, c := setup(t)
	ctx := context.Background()
	in := start(1, airlock.DeviceManaged)
	in.UV = false
	_, s, err := m.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !s.LastUVAt.IsZero() {
		t.Fatal("LastUVAt set without UV")
	}
	c.Add(time.Minute)
	if err := m.MarkUV(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, _ := st.FindSessionByID(ctx, s.ID)
	if !got.LastUVAt.Equal(c.Now()) {
		t.Fatalf("LastUVAt %v, want %v", got.LastUVAt, c.Now())
	}
}

func TestExpireStale(t *testing.T) {
	m, st, c := setup(t)
	ctx := context.Background()
	_, idle, _ := m.Create(ctx, start(0, airlock.DeviceManaged))
	liveTok, live, _ := m.Create(ctx, start(2, airlock.DeviceManaged))
	c.Add(10 * time.Minute)
	if _, err := m.Authenticate(ctx, liveTok); err != nil {
		t.Fatal(err)
	}
	c.Add(6 * time.Minute) // tier-0 session idle 16 min; tier-2 one 6 min
	if err := m.ExpireStale(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := st.FindSessionByID(ctx, idle.ID)
	if got.EndedAt.IsZero() || got.EndReason != "idle_timeout" {
		t.Fatalf("idle session not ended: %+v", got)
	}
	got, _ = st.FindSessionByID(ctx, live.ID)
	if !got.EndedAt.IsZero() {
		t.Fatalf("live session ended: %+v", got)
	}
	evs, _ := st.ListAudit(ctx, airlock.AuditFilter{Type: "session.expired"})
	if len(evs) != 1 || evs[0].SessionID != idle.ID {
		t.Fatalf("expiry audit: %+v", evs)
	}
	// Idempotent.
	if err := m.ExpireStale(ctx); err != nil {
		t.Fatal(err)
	}
	if evs, _ := st.ListAudit(ctx, airlock.AuditFilter{Type: "session.expired"}); len(evs) != 1 {
		t.Fatalf("second sweep audited again: %d", len(evs))
	}
}
