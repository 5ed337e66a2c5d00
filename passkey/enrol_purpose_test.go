package passkey

import (
	"context"
	"testing"

	"airlock"
	"airlock/passkey/passkeytest"
)

// breakGlassUser stores a sealed break-glass account.
func (h *harness) breakGlassUser(name string) *airlock.User {
	h.tb.Helper()
	now := h.clk.Now()
	u := &airlock.User{ID: "u-" + name, Name: name, DisplayName: name, Kind: airlock.UserBreakGlass, Tier: 0,
		Handle: randBytes(h.tb, 32), CreatedAt: now, UpdatedAt: now}
	if err := h.store.CreateUser(h.ctx, u); err != nil {
		h.tb.Fatal(err)
	}
	return u
}

func TestBreakGlassEnrolNeedsDeviceBound(t *testing.T) {
	h := newHarness(t, nil)
	u := h.breakGlassUser("bg-1")
	d := h.device("safe-1", u.ID)

	t.Run("fail-synced", func(t *testing.T) {
		a := passkeytest.New()
		synced(a)
		secret, tok := h.token(u, d)
		id, opt := h.beginEnrol(secret)
		resp, _, err := a.Register(testOrigin, opt)
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.svc.FinishEnrol(h.ctx, id, resp, Meta{})
		wantErr(t, err, airlock.EFORBIDDEN, ReasonBreakGlassBound)
		assertNothingEnrolled(t, h, u, tok)
	})
	t.Run("fail-backup-eligible-not-backed-up", func(t *testing.T) {
		a := passkeytest.New()
		a.Flags = passkeytest.Flags{BackupEligible: true}
		secret, tok := h.token(u, d)
		id, opt := h.beginEnrol(secret)
		resp, _, err := a.Register(testOrigin, opt)
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.svc.FinishEnrol(h.ctx, id, resp, Meta{})
		wantErr(t, err, airlock.EFORBIDDEN, ReasonBreakGlassBound)
		assertNothingEnrolled(t, h, u, tok)
	})
	t.Run("ok-device-bound", func(t *testing.T) {
		res, _ := h.enrol(passkeytest.New(), u, d)
		if res.Credential.BackupEligible || res.Credential.IsRevoked() {
			t.Fatalf("stored break-glass passkey: be=%t revoked=%t", res.Credential.BackupEligible, res.Credential.IsRevoked())
		}
	})
}

// recoveryEnrol runs an enrolment with a recovery token and returns its
// result and the new passkey's id.
func (h *harness) recoveryEnrol(u *airlock.User, d *airlock.Device) (*Enrolled, []byte, error) {
	h.tb.Helper()
	secret, _, err := h.svc.IssueEnrolmentToken(h.ctx, SystemIssuer, u.ID, d.ID, airlock.PurposeRecovery, Meta{})
	if err != nil {
		h.tb.Fatal(err)
	}
	id, opt := h.beginEnrol(secret)
	resp, cred, err := passkeytest.New().Register(testOrigin, opt)
	if err != nil {
		h.tb.Fatal(err)
	}
	res, err := h.svc.FinishEnrol(h.ctx, id, resp, Meta{})
	return res, cred.ID, err
}

func TestRecoveryEnrolmentHook(t *testing.T) {
	t.Run("fail-no-hook-rolls-back", func(t *testing.T) {
		h := newHarness(t, nil)
		u := h.user("carol", 1)
		d := h.device("laptop", u.ID)
		_, credID, err := h.recoveryEnrol(u, d)
		wantErr(t, err, airlock.EUNAVAILABLE, ReasonRecoveryHook)
		if c := h.credential(credID); !c.IsRevoked() {
			t.Fatal("a recovery enrolment without a hook left its passkey usable")
		}
	})
	t.Run("fail-hook-error-rolls-back", func(t *testing.T) {
		h := newHarness(t, nil)
		u := h.user("carol", 1)
		d := h.device("laptop", u.ID)
		h.svc.SetRecoveryHook(func(ctx context.Context, e *Enrolled, meta Meta) error {
			return airlock.Errorf(airlock.ECONFLICT, "this recovery case was cancelled")
		})
		_, credID, err := h.recoveryEnrol(u, d)
		wantErr(t, err, airlock.ECONFLICT, ReasonRecoveryHook)
		if airlock.ErrorMessage(err) != "this recovery case was cancelled" {
			t.Fatalf("message %q, want the hook's", airlock.ErrorMessage(err))
		}
		if c := h.credential(credID); !c.IsRevoked() {
			t.Fatal("a failed recovery hook left the new passkey usable")
		}
		if len(h.aud.ofType("enrol.failed")) == 0 {
			t.Fatal("the failed recovery enrolment was not audited")
		}
	})
	t.Run("ok-hook-sees-the-enrolment", func(t *testing.T) {
		h := newHarness(t, nil)
		u := h.user("carol", 1)
		d := h.device("laptop", u.ID)
		var seen *Enrolled
		h.svc.SetRecoveryHook(func(ctx context.Context, e *Enrolled, meta Meta) error {
			seen = e
			return nil
		})
		res, credID, err := h.recoveryEnrol(u, d)
		if err != nil {
			t.Fatal(err)
		}
		if seen == nil || seen != res || seen.Token.Purpose != airlock.PurposeRecovery || string(seen.Credential.ID) != string(credID) {
			t.Fatalf("hook saw %+v, want the recovery enrolment", seen)
		}
		if c := h.credential(credID); c.IsRevoked() {
			t.Fatal("the recovered passkey was revoked")
		}
	})
	t.Run("ok-normal-enrolment-skips-hook", func(t *testing.T) {
		h := newHarness(t, nil)
		u := h.user("dave", 1)
		d := h.device("laptop", u.ID)
		h.svc.SetRecoveryHook(func(ctx context.Context, e *Enrolled, meta Meta) error {
			t.Fatal("the recovery hook ran for a normal enrolment")
			return nil
		})
		h.enrol(passkeytest.New(), u, d)
	})
}
