package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"airlock"
	"airlock/session"
)

// TestCreateKeyBound: a CLI session carries its key thumbprint, inherits
// the last UV time it is given, and never outlives NotAfter.
func TestCreateKeyBound(t *testing.T) {
	ctx := context.Background()
	m, st, c := setup(t)
	in := start(1, airlock.DeviceManaged)
	in.UV = false
	in.LastUVAt = c.Now().Add(-time.Minute)
	in.NotAfter = c.Now().Add(30 * time.Minute)
	in.KeyThumbprint = "jkt-1"
	_, s, err := m.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := st.FindSessionByID(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.KeyThumbprint != "jkt-1" || !stored.LastUVAt.Equal(in.LastUVAt) || !stored.AbsoluteDeadline.Equal(in.NotAfter) {
		t.Errorf("stored key %q, last UV %s (want %s), deadline %s (want %s)", stored.KeyThumbprint, stored.LastUVAt, in.LastUVAt, stored.AbsoluteDeadline, in.NotAfter)
	}
	// A NotAfter past the tier's own deadline does not lengthen it.
	in.NotAfter = c.Now().Add(100 * time.Hour)
	_, s, err = m.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if want := c.Now().Add(24 * time.Hour); !s.AbsoluteDeadline.Equal(want) {
		t.Errorf("deadline %s, want the tier's %s", s.AbsoluteDeadline, want)
	}
}

// TestAuthenticateCheckedRefusalDoesNotTouch: a refused check leaves the
// session's activity (and so its idle deadline) as it was.
func TestAuthenticateCheckedRefusalDoesNotTouch(t *testing.T) {
	ctx := context.Background()
	m, st, c := setup(t)
	tok, s, err := m.Create(ctx, start(1, airlock.DeviceManaged))
	if err != nil {
		t.Fatal(err)
	}
	c.Add(10 * time.Minute)
	refused := errors.New("no proof")
	if _, _, err := m.AuthenticateChecked(ctx, tok, func(*airlock.Session) error { return refused }); !errors.Is(err, refused) {
		t.Fatalf("check error not returned: %v", err)
	}
	if stored, _ := st.FindSessionByID(ctx, s.ID); !stored.LastSeen.Equal(s.LastSeen) {
		t.Errorf("refused request touched the session: %s", stored.LastSeen)
	}
	if _, _, err := m.AuthenticateChecked(ctx, tok, func(*airlock.Session) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if stored, _ := st.FindSessionByID(ctx, s.ID); !stored.LastSeen.Equal(c.Now()) {
		t.Errorf("accepted request not recorded: %s", stored.LastSeen)
	}
	_ = session.TouchInterval
}
