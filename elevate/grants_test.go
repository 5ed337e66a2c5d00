package elevate

import (
	"testing"
	"time"

	"airlock"
	"airlock/decide"
	"airlock/passkey"
	"airlock/session"
)

// granted is alice holding an active grant on viewer@grafana (auto-approved,
// 2 h) from her session.
func granted(t *testing.T) (*harness, *person, *airlock.Grant) {
	t.Helper()
	h := newHarness(t, nil)
	alice := h.p("alice")
	_, g := h.ask(alice, "viewer@grafana", 2*time.Hour)
	if g == nil {
		t.Fatal("no grant")
	}
	gs, err := h.svc.ActiveGrants(h.ctx, alice.sub())
	if err != nil || len(gs) != 1 || gs[0].ID != g.ID {
		t.Fatalf("ActiveGrants = %+v %v", gs, err)
	}
	return h, alice, g
}

// wantEnded checks that grant id ended with reason by actor, audited.
func (h *harness) wantEnded(t *testing.T, id, reason, actor string) {
	t.Helper()
	g := h.grant(id)
	if g.EndedAt.IsZero() || g.EndReason != reason || g.EndedBy != actor {
		t.Fatalf("grant ended %v reason %q by %q, want %q by %q", g.EndedAt, g.EndReason, g.EndedBy, reason, actor)
	}
	var found bool
	for _, e := range h.aud.ofType("elevation.ended") {
		if e.GrantID == id {
			if found {
				t.Fatalf("grant %s ended twice in the log", id)
			}
			found = true
			if e.Reason != reason || e.Actor != actor || e.RequestID != g.RequestID || e.UserID != g.UserID || e.SessionID != g.SessionID {
				t.Fatalf("elevation.ended %+v", e)
			}
		}
	}
	if !found {
		t.Fatalf("grant %s ended without an elevation.ended event", id)
	}
}

func TestEndGrant(t *testing.T) {
	t.Run("ok-by-holder", func(t *testing.T) {
		h, alice, g := granted(t)
		got, err := h.svc.EndGrant(h.ctx, g.ID, alice.sub(), passkey.Meta{})
		if err != nil || got.EndReason != airlock.EndDone {
			t.Fatalf("%+v %v", got, err)
		}
		h.wantEnded(t, g.ID, airlock.EndDone, alice.user.ID)
		if gs, _ := h.svc.ActiveGrants(h.ctx, alice.sub()); len(gs) != 0 {
			t.Fatalf("ended grant still active: %+v", gs)
		}
		_, err = h.svc.EndGrant(h.ctx, g.ID, alice.sub(), passkey.Meta{})
		wantErr(t, err, airlock.ECONFLICT, ReasonGrantEnded)
		_, err = h.svc.UsableGrant(h.ctx, g.ID, alice.sub())
		wantErr(t, err, airlock.EFORBIDDEN, ReasonGrantEnded)
	})
	t.Run("ok-by-admin", func(t *testing.T) {
		h, alice, g := granted(t)
		if _, err := h.svc.EndGrant(h.ctx, g.ID, h.p("root").sub(), passkey.Meta{}); err != nil {
			t.Fatal(err)
		}
		h.wantEnded(t, g.ID, airlock.EndRevokedByAdmin, "u-root")
		if n := h.not.ofKind(NotifyRevoked); len(n) != 1 || n[0].UserID != alice.user.ID {
			t.Fatalf("holder notified %+v", n)
		}
	})
	t.Run("fail-someone-elses-grant-not-found", func(t *testing.T) {
		h, _, g := granted(t)
		for _, name := range []string{"bob", "mal"} {
			_, err := h.svc.EndGrant(h.ctx, g.ID, h.p(name).sub(), passkey.Meta{})
			wantErr(t, err, airlock.ENOTFOUND, ReasonUnknownGrant)
			_, err = h.svc.UsableGrant(h.ctx, g.ID, h.p(name).sub())
			wantErr(t, err, airlock.ENOTFOUND, ReasonUnknownGrant)
		}
		// An admin on a tier-2 session is no admin here.
		root := h.p("root")
		sub := root.sub()
		sub.Session = h.newSession(root, 2)
		_, err := h.svc.EndGrant(h.ctx, g.ID, sub, passkey.Meta{})
		wantErr(t, err, airlock.ENOTFOUND, ReasonUnknownGrant)
		if h.grant(g.ID).EndedAt.IsZero() == false {
			t.Fatal("grant ended by someone else")
		}
	})
}

// TestGrantBoundToSession: a grant serves only the session that requested
// it, never another session of the same user.
func TestGrantBoundToSession(t *testing.T) {
	h, alice, g := granted(t)
	other := alice.sub()
	other.Session = h.newSession(alice, 0)
	if gs, err := h.svc.ActiveGrants(h.ctx, other); err != nil || len(gs) != 0 {
		t.Fatalf("another session of alice sees %+v (%v)", gs, err)
	}
	_, err := h.svc.UsableGrant(h.ctx, g.ID, other)
	wantErr(t, err, airlock.EFORBIDDEN, ReasonGrantOtherSession)
	if got, err := h.svc.UsableGrant(h.ctx, g.ID, alice.sub()); err != nil || got.ID != g.ID {
		t.Fatalf("UsableGrant from the requesting session: %+v %v", got, err)
	}
}

// TestGrantEndsWhenItsGroundGoes: a grant ends — with the matching reason,
// audited — when its session ends, its device loses trust or compliance,
// its passkey is revoked or its user disabled; found by ActiveGrants (at
// use), by UsableGrant, by the sweep, and by the hooks (EndGrantsFor).
func TestGrantEndsWhenItsGroundGoes(t *testing.T) {
	type change func(h *harness, alice *person)
	endSession := func(h *harness, alice *person) {
		if err := h.store.EndSession(h.ctx, alice.sess.ID, "logout", h.clk.Now()); err != nil {
			h.tb.Fatal(err)
		}
		alice.sess.EndedAt = h.clk.Now()
	}
	untrust := func(h *harness, alice *person) {
		alice.dev.Trust = airlock.TrustRevoked
		if err := h.store.UpdateDevice(h.ctx, alice.dev); err != nil {
			h.tb.Fatal(err)
		}
	}
	noncompliant := func(h *harness, alice *person) {
		alice.dev.Posture.DiskEncrypted = false
		if err := h.store.UpdateDevice(h.ctx, alice.dev); err != nil {
			h.tb.Fatal(err)
		}
	}
	revoke := func(h *harness, alice *person) {
		if err := h.store.RevokeCredential(h.ctx, alice.sess.CredentialID, h.clk.Now()); err != nil {
			h.tb.Fatal(err)
		}
	}
	disable := func(h *harness, alice *person) {
		alice.user.Disabled = true
		if err := h.store.UpdateUser(h.ctx, alice.user); err != nil {
			h.tb.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		change change
		reason string
		target func(alice *person) Target
	}{
		{"session-ended", endSession, airlock.EndSessionEnded, func(a *person) Target { return Target{SessionID: a.sess.ID} }},
		{"device-untrusted", untrust, airlock.EndDeviceUntrusted, func(a *person) Target { return Target{DeviceID: a.dev.ID} }},
		{"device-noncompliant", noncompliant, airlock.EndDeviceNonCompliant, func(a *person) Target { return Target{DeviceID: a.dev.ID} }},
		{"credential-revoked", revoke, airlock.EndCredentialRevoked, func(a *person) Target { return Target{CredentialID: a.sess.CredentialID} }},
		{"user-disabled", disable, airlock.EndUserDisabled, func(a *person) Target { return Target{UserID: a.user.ID} }},
	} {
		t.Run("fail-"+tc.name+"-active-grants", func(t *testing.T) {
			h, alice, g := granted(t)
			tc.change(h, alice)
			gs, err := h.svc.ActiveGrants(h.ctx, alice.sub())
			if err != nil || len(gs) != 0 {
				t.Fatalf("ActiveGrants = %+v %v", gs, err)
			}
			h.wantEnded(t, g.ID, tc.reason, "system")
		})
		t.Run("fail-"+tc.name+"-usable-grant", func(t *testing.T) {
			h, alice, g := granted(t)
			tc.change(h, alice)
			_, err := h.svc.UsableGrant(h.ctx, g.ID, alice.sub())
			wantErr(t, err, airlock.EFORBIDDEN, ReasonGrantEnded)
			h.wantEnded(t, g.ID, tc.reason, "system")
		})
		t.Run("fail-"+tc.name+"-sweep", func(t *testing.T) {
			h, alice, g := granted(t)
			tc.change(h, alice)
			if n, err := h.svc.Sweep(h.ctx); err != nil || n != 1 {
				t.Fatalf("Sweep changed %d (%v)", n, err)
			}
			h.wantEnded(t, g.ID, tc.reason, "system")
		})
		t.Run("fail-"+tc.name+"-hook", func(t *testing.T) {
			h, alice, g := granted(t)
			// bob's grant rests on none of alice's things and stays.
			_, bg := h.ask(h.p("bob"), "viewer@grafana", time.Hour)
			tc.change(h, alice)
			if err := h.svc.EndGrantsFor(h.ctx, tc.target(alice), tc.reason, "u-root"); err != nil {
				t.Fatal(err)
			}
			h.wantEnded(t, g.ID, tc.reason, "u-root")
			if got := h.grant(bg.ID); !got.EndedAt.IsZero() {
				t.Fatalf("bob's grant ended: %+v", got)
			}
			// Once is enough: a second round changes nothing.
			if err := h.svc.EndGrantsFor(h.ctx, tc.target(alice), tc.reason, "u-root"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestEndGrantsForNeedsOneTarget(t *testing.T) {
	h := newHarness(t, nil)
	for _, tg := range []Target{{}, {SessionID: "s", UserID: "u"}} {
		if err := h.svc.EndGrantsFor(h.ctx, tg, airlock.EndSessionEnded, "system"); airlock.ErrorCode(err) != airlock.EINVALID {
			t.Errorf("EndGrantsFor(%+v) = %v", tg, err)
		}
	}
}

// TestGrantExpiry: at NotAfter a grant is no longer in force; the sweep
// (on the injected clock) records its end as expired.
func TestGrantExpiry(t *testing.T) {
	h, alice, g := granted(t)
	h.clk.Advance(2*time.Hour - time.Second)
	if gs, _ := h.svc.ActiveGrants(h.ctx, alice.sub()); len(gs) != 1 {
		t.Fatalf("a second before not_after: %d active", len(gs))
	}
	if n, err := h.svc.Sweep(h.ctx); err != nil || n != 0 {
		t.Fatalf("sweep before expiry changed %d (%v)", n, err)
	}
	h.clk.Advance(time.Second)
	if gs, _ := h.svc.ActiveGrants(h.ctx, alice.sub()); len(gs) != 0 {
		t.Fatalf("at not_after: %d active", len(gs))
	}
	_, err := h.svc.UsableGrant(h.ctx, g.ID, alice.sub())
	wantErr(t, err, airlock.EEXPIRED, ReasonGrantExpired)
	h.wantEnded(t, g.ID, airlock.EndExpired, "system")

	// Another grant, swept after its end.
	_, g2 := h.ask(alice, "viewer@grafana", time.Minute)
	h.clk.Advance(time.Minute + 30*time.Second)
	if n, err := h.svc.Sweep(h.ctx); err != nil || n != 1 {
		t.Fatalf("sweep changed %d (%v)", n, err)
	}
	h.wantEnded(t, g2.ID, airlock.EndExpired, "system")
	if n, _ := h.svc.Sweep(h.ctx); n != 0 {
		t.Fatalf("a second sweep changed %d", n)
	}
}

// TestGrantsList: Grants lists the user's grants, ended ones too.
func TestGrantsList(t *testing.T) {
	h, alice, g := granted(t)
	if _, err := h.svc.EndGrant(h.ctx, g.ID, alice.sub(), passkey.Meta{}); err != nil {
		t.Fatal(err)
	}
	_, g2 := h.ask(alice, "viewer@grafana", time.Hour)
	gs, err := h.svc.Grants(h.ctx, alice.sub())
	if err != nil || len(gs) != 2 {
		t.Fatalf("Grants = %+v %v", gs, err)
	}
	if gs, _ := h.svc.Grants(h.ctx, h.p("bob").sub()); len(gs) != 0 {
		t.Fatalf("bob sees %+v", gs)
	}
	_ = g2
}

// TestSubjectRequired: a call without a complete, consistent subject is
// refused before anything is read.
func TestSubjectRequired(t *testing.T) {
	h := newHarness(t, nil)
	alice := h.p("alice")
	bad := []decide.Subject{{}, {Session: alice.sess, User: h.p("bob").user, Device: alice.dev}, {Session: alice.sess, User: alice.user, Device: h.p("bob").dev}}
	for _, sub := range bad {
		if _, _, err := h.svc.Request(h.ctx, sub, Ask{Scope: "viewer@grafana", Duration: time.Hour, Reason: "x"}); airlock.ErrorCode(err) != airlock.EUNAUTHORIZED {
			t.Errorf("Request with %+v: %v", sub, err)
		}
		if _, err := h.svc.ActiveGrants(h.ctx, sub); airlock.ErrorCode(err) != airlock.EUNAUTHORIZED {
			t.Errorf("ActiveGrants with %+v: %v", sub, err)
		}
	}
}

// TestSessionEndHook: wired as the session manager's end hook, a logout
// ends the session's grants at once.
func TestSessionEndHook(t *testing.T) {
	h, alice, g := granted(t)
	m := session.New(session.Config{Now: h.clk.Now}, h.store, h.aud)
	m.OnEnd(h.svc.SessionsEnded)
	if err := m.End(h.ctx, alice.sess, "logout", alice.user.ID); err != nil {
		t.Fatal(err)
	}
	h.wantEnded(t, g.ID, airlock.EndSessionEnded, alice.user.ID)
}
