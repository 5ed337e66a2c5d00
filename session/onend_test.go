package session_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"airlock"
	"airlock/session"
)

type endCall struct {
	ids           []string
	reason, actor string
}

// TestOnEnd: every way a session ends runs the end hook (elevation grants
// end through it), and the hook's error reaches the caller.
func TestOnEnd(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		end    func(m *session.Manager, c *clock, s *airlock.Session, token string) error
		reason string
		actor  string
	}{
		{"logout", func(m *session.Manager, _ *clock, s *airlock.Session, _ string) error {
			return m.End(ctx, s, "logout", "usr_1")
		}, "logout", "usr_1"},
		{"user-sessions", func(m *session.Manager, _ *clock, _ *airlock.Session, _ string) error {
			return m.EndUser(ctx, "usr_1", "user_disabled", "usr_admin")
		}, "user_disabled", "usr_admin"},
		{"device-sessions", func(m *session.Manager, _ *clock, _ *airlock.Session, _ string) error {
			return m.EndDevice(ctx, "dev_1", "device_revoked", "usr_admin")
		}, "device_revoked", "usr_admin"},
		{"idle-at-use", func(m *session.Manager, c *clock, _ *airlock.Session, token string) error {
			c.Add(time.Hour)
			if _, err := m.Authenticate(ctx, token); airlock.ErrorCode(err) != airlock.EUNAUTHORIZED {
				t.Fatalf("Authenticate after idle: %v", err)
			}
			return nil
		}, "idle_timeout", "system"},
		{"idle-swept", func(m *session.Manager, c *clock, _ *airlock.Session, _ string) error {
			c.Add(time.Hour)
			return m.ExpireStale(ctx)
		}, "idle_timeout", "system"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _, c := setup(t)
			var calls []endCall
			m.OnEnd(func(_ context.Context, ids []string, reason, actor string) error {
				calls = append(calls, endCall{ids, reason, actor})
				return nil
			})
			token, s, err := m.Create(ctx, start(1, airlock.DeviceManaged))
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.end(m, c, s, token); err != nil {
				t.Fatal(err)
			}
			if len(calls) != 1 || !slices.Equal(calls[0].ids, []string{s.ID}) || calls[0].reason != tc.reason || calls[0].actor != tc.actor {
				t.Fatalf("hook calls %+v, want one for %s (%s by %s)", calls, s.ID, tc.reason, tc.actor)
			}
		})
	}
	t.Run("hook-error-returned", func(t *testing.T) {
		m, st, _ := setup(t)
		boom := errors.New("grants not ended")
		m.OnEnd(func(context.Context, []string, string, string) error { return boom })
		_, s, err := m.Create(ctx, start(1, airlock.DeviceManaged))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.End(ctx, s, "logout", "usr_1"); !errors.Is(err, boom) {
			t.Fatalf("End = %v, want the hook's error", err)
		}
		if got, _ := st.FindSessionByID(ctx, s.ID); got.EndedAt.IsZero() {
			t.Fatal("the session did not end")
		}
	})
}
