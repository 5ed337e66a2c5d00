package passkey

import (
	"strings"
	"testing"

	"airlock"
	"airlock/passkey/passkeytest"
)

// TestLoginSignCountCompareAndSet: the sign count is written only if it is
// still the one read, so that a login of the same key through another
// replica (which the in-process lock cannot see) or a revocation in
// between makes this login fail (W11, W12).
func TestLoginSignCountCompareAndSet(t *testing.T) {
	setup := func(t *testing.T) (*harness, *hookStore, *passkeytest.Authenticator, *airlock.Credential) {
		h := newHarness(t, nil)
		u := h.user("alice", 2)
		d := h.device("laptop", u.ID)
		a := passkeytest.New()
		res, _ := h.enrol(a, u, d, passkeytest.WithCounter(5))
		return h, h.hooks(), a, res.Credential
	}
	t.Run("fail-other-replica-used-the-count", func(t *testing.T) {
		h, hs, a, cred := setup(t)
		hs.beforeUpdateUse = func(id []byte) {
			// Another replica verified an assertion with count 6 and won.
			if err := h.store.UpdateCredentialUse(h.ctx, id, 5, 6, false, h.clk.Now()); err != nil {
				t.Fatal(err)
			}
		}
		h.aud.reset()
		_, err := h.login(a, passkeytest.WithCounter(6))
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonClone)
		if c := h.credential(cred.ID); c.SignCount != 6 {
			t.Fatalf("sign count %d, want the winner's 6", c.SignCount)
		}
		ev := h.aud.ofType("auth.clone_warning")
		if len(ev) != 1 || ev[0].Outcome != airlock.OutcomeDenied || ev[0].Details["concurrent_use"] != true || ev[0].UserID != "u-alice" {
			t.Fatalf("audit auth.clone_warning = %+v", ev)
		}
		if ev := h.aud.ofType("auth.login_failed"); len(ev) != 1 || ev[0].Reason != string(ReasonClone) {
			t.Fatalf("audit auth.login_failed = %+v", ev)
		}
		if len(h.aud.ofType("auth.login")) != 0 {
			t.Fatal("auth.login recorded")
		}
	})
	t.Run("fail-revoked-between-check-and-update", func(t *testing.T) {
		h, hs, a, cred := setup(t)
		hs.beforeUpdateUse = func(id []byte) {
			if err := h.store.RevokeCredential(h.ctx, id, h.clk.Now()); err != nil {
				t.Fatal(err)
			}
		}
		_, err := h.login(a)
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonCredentialRevoked)
		if c := h.credential(cred.ID); c.SignCount != 5 || !c.LastUsedAt.IsZero() {
			t.Fatalf("revoked credential updated: count %d last used %v", c.SignCount, c.LastUsedAt)
		}
	})
	t.Run("ok-no-race", func(t *testing.T) {
		h, _, a, cred := setup(t)
		if _, err := h.login(a); err != nil {
			t.Fatal(err)
		}
		if c := h.credential(cred.ID); c.SignCount != 6 {
			t.Fatalf("sign count %d, want 6", c.SignCount)
		}
	})
}

// TestFinishEnrolRechecksBeforeBinding: the user and device are checked
// again immediately before the credential is stored, not only when finish
// starts.
func TestFinishEnrolRechecksBeforeBinding(t *testing.T) {
	for _, tc := range []struct {
		name      string
		bootstrap bool
		change    func(h *harness, u *airlock.User, d *airlock.Device)
		code      string
		reason    Reason
	}{
		{name: "fail-user-disabled", change: func(h *harness, u *airlock.User, _ *airlock.Device) { h.disableUser(u) },
			code: airlock.EFORBIDDEN, reason: ReasonUserDisabled},
		{name: "fail-device-not-compliant", change: func(h *harness, _ *airlock.User, d *airlock.Device) {
			d.Posture.DiskEncrypted = false
			if err := h.store.UpdateDevice(h.ctx, d); err != nil {
				h.tb.Fatal(err)
			}
		}, code: airlock.EFORBIDDEN, reason: ReasonDeviceNotCompliant},
		{name: "fail-device-reassigned", change: func(h *harness, _ *airlock.User, d *airlock.Device) { h.setDeviceOwner(d, "u-bob") },
			code: airlock.EFORBIDDEN, reason: ReasonDeviceOwnerChanged},
		{name: "fail-bootstrap-device-revoked", bootstrap: true,
			change: func(h *harness, _ *airlock.User, d *airlock.Device) { h.setDeviceTrust(d, airlock.TrustRevoked) },
			code:   airlock.EFORBIDDEN, reason: ReasonDeviceRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			var (
				u      *airlock.User
				d      *airlock.Device
				secret string
				tok    *airlock.EnrolmentToken
				err    error
			)
			if tc.bootstrap {
				secret, tok, err = h.svc.Bootstrap(h.ctx)
				if err != nil {
					t.Fatal(err)
				}
				if u, err = h.store.FindUserByID(h.ctx, tok.UserID); err != nil {
					t.Fatal(err)
				}
				if d, err = h.store.FindDeviceByID(h.ctx, tok.DeviceID); err != nil {
					t.Fatal(err)
				}
			} else {
				u = h.user("alice", 0)
				d = h.device("laptop", u.ID)
				secret, tok = h.token(u, d)
			}
			hs := h.hooks()
			id, opt := h.beginEnrol(secret)
			resp, _, err := passkeytest.New().Register(testOrigin, opt)
			if err != nil {
				t.Fatal(err)
			}
			// The duplicate-id lookup runs after the checks at the start of
			// finish and before the binding.
			hs.afterFindCredential = func([]byte) {
				hs.afterFindCredential = nil
				tc.change(h, u, d)
			}
			_, err = h.svc.FinishEnrol(h.ctx, id, resp, Meta{})
			wantErr(t, err, tc.code, tc.reason)
			assertNothingEnrolled(t, h, u, tok)
		})
	}
}

// TestFinishEnrolAtomic: the token is spent and the credential stored in
// one transaction (EnrolCredential).
func TestFinishEnrolAtomic(t *testing.T) {
	t.Run("fail-duplicate-registered-after-the-check-keeps-token", func(t *testing.T) {
		h := newHarness(t, nil)
		u := h.user("alice", 0)
		bob := h.user("bob", 0)
		d := h.device("laptop", u.ID)
		db := h.device("bob-laptop", bob.ID)
		a := passkeytest.New()
		res, _ := h.enrol(a, bob, db)
		hs := h.hooks()
		// The duplicate check misses it (as if bob's enrolment committed
		// just after it); the insert must still refuse and keep the token.
		hs.hideCredentials = true
		secret, tok := h.token(u, d)
		id, opt := h.beginEnrol(secret)
		resp, _, err := passkeytest.New().Register(testOrigin, opt, passkeytest.WithCredentialID(res.Credential.ID))
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.svc.FinishEnrol(h.ctx, id, resp, Meta{})
		wantErr(t, err, airlock.ECONFLICT, ReasonDuplicate)
		hs.hideCredentials = false
		h.not.calls = nil
		assertNothingEnrolled(t, h, u, tok)
	})
	t.Run("fail-rollback-revoke-fails", func(t *testing.T) {
		h := newHarness(t, nil)
		u := h.user("alice", 0)
		d := h.device("laptop", u.ID)
		hs := h.hooks()
		hs.revokeErr = airlock.Errorf(airlock.EUNAVAILABLE, "database is locked")
		h.not.err = airlock.Errorf(airlock.EUNAVAILABLE, "outbox down")
		secret, _ := h.token(u, d)
		id, opt := h.beginEnrol(secret)
		resp, cred, err := passkeytest.New().Register(testOrigin, opt)
		if err != nil {
			t.Fatal(err)
		}
		h.aud.reset()
		_, err = h.svc.FinishEnrol(h.ctx, id, resp, Meta{IP: "192.0.2.5"})
		wantErr(t, err, airlock.EINTERNAL, ReasonRollbackFailed)
		if !strings.Contains(airlock.ErrorMessage(err), "could not be revoked") {
			t.Fatalf("message %q", airlock.ErrorMessage(err))
		}
		ev := h.aud.ofType("credential.revoked")
		if len(ev) != 1 || ev[0].Outcome != airlock.OutcomeFailure || ev[0].CredentialID != b64(cred.ID) || ev[0].UserID != u.ID || ev[0].IP != "192.0.2.5" {
			t.Fatalf("audit credential.revoked = %+v", ev)
		}
		if ev := h.aud.ofType("enrol.failed"); len(ev) != 1 || ev[0].Reason != string(ReasonRollbackFailed) || ev[0].Outcome != airlock.OutcomeFailure {
			t.Fatalf("audit enrol.failed = %+v", ev)
		}
	})
}
