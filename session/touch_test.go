package session_test

import (
	"context"
	"testing"
	"time"

	"airlock"
	"airlock/session"
)

// TestAuthenticateSeen: the previous LastSeen is reported (idle-time risk
// signal), and activity within TouchInterval of the recorded one is not
// written again.
func TestAuthenticateSeen(t *testing.T) {
	ctx := context.Background()
	m, st, c := setup(t)
	tok, s, err := m.Create(ctx, start(0, airlock.DeviceManaged))
	if err != nil {
		t.Fatal(err)
	}
	created := c.Now()
	c.Add(10 * time.Minute)
	got, prev, err := m.AuthenticateSeen(ctx, tok)
	if err != nil || !prev.Equal(created) || !got.LastSeen.Equal(c.Now()) {
		t.Fatalf("after 10 min: prev %s, last seen %s, %v", prev, got.LastSeen, err)
	}
	stored, _ := st.FindSessionByID(ctx, s.ID)
	if !stored.LastSeen.Equal(c.Now()) {
		t.Fatalf("activity not recorded: %s", stored.LastSeen)
	}
	touched := c.Now()
	c.Add(session.TouchInterval - time.Millisecond)
	if _, prev, err = m.AuthenticateSeen(ctx, tok); err != nil || !prev.Equal(touched) {
		t.Fatalf("within the interval: prev %s, %v", prev, err)
	}
	if stored, _ = st.FindSessionByID(ctx, s.ID); !stored.LastSeen.Equal(touched) {
		t.Errorf("activity within %s written again: %s", session.TouchInterval, stored.LastSeen)
	}
	c.Add(time.Millisecond)
	if _, _, err = m.AuthenticateSeen(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if stored, _ = st.FindSessionByID(ctx, s.ID); !stored.LastSeen.Equal(c.Now()) {
		t.Errorf("activity after %s not recorded: %s", session.TouchInterval, stored.LastSeen)
	}
}
