package passkey

import (
	"context"
	"crypto/sha256"
	"testing"

	"airlock"
	"airlock/passkey/passkeytest"
)

// TestBreakGlassLoginRefused: a break-glass account's sealed passkey does
// not sign in through the normal login. The refusal comes only after the
// signature verified (a bad signature gets the generic failure, so the
// login page tells nobody which accounts are break-glass ones), is audited
// "auth.login_failed" with the reason, and records no use of the passkey.
func TestBreakGlassLoginRefused(t *testing.T) {
	h := newHarness(t, nil)
	a := passkeytest.New()
	u, _, cred := h.sealedAccount("bg", a)

	t.Run("fail-bad-signature-is-generic", func(t *testing.T) {
		h.aud.reset()
		_, err := h.login(a, passkeytest.WithBadSignature())
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonBadSignature)
	})
	t.Run("fail-breakglass-account", func(t *testing.T) {
		h.aud.reset()
		before := h.credential(cred.ID)
		res, err := h.login(a)
		wantErr(t, err, airlock.EFORBIDDEN, ReasonNotBreakGlass)
		if res != nil {
			t.Fatal("a result came back with the error")
		}
		if after := h.credential(cred.ID); after.SignCount != before.SignCount || !after.LastUsedAt.Equal(before.LastUsedAt) {
			t.Errorf("the refused login recorded a use: sign count %d -> %d", before.SignCount, after.SignCount)
		}
		if len(h.aud.ofType("auth.login")) != 0 {
			t.Error("a refused login was audited as a success")
		}
		failed := h.aud.ofType("auth.login_failed")
		if len(failed) != 1 {
			t.Fatalf("auth.login_failed recorded %d times, want 1", len(failed))
		}
		e := failed[0]
		if e.Reason != string(ReasonNotBreakGlass) || e.UserID != u.ID || e.Outcome != airlock.OutcomeDenied {
			t.Errorf("audit event %+v", e)
		}
		if e.Details["owner_unverified"] != nil {
			t.Error("the owner verified but the event says unverified")
		}
	})
	t.Run("ok-normal-account-still-signs-in", func(t *testing.T) {
		n := h.user("alice", 0)
		an := passkeytest.New()
		h.enrol(an, n, h.device("alice-laptop", n.ID))
		res, err := h.login(an)
		if err != nil {
			t.Fatal(err)
		}
		if res.User.ID != n.ID {
			t.Fatalf("signed in as %s", res.User.ID)
		}
	})
}

// TestBreakGlassConfirmRefused: a break-glass account never steps up,
// approves or confirms: refused at begin, and at finish when the account
// became a break-glass one after the ceremony began.
func TestBreakGlassConfirmRefused(t *testing.T) {
	h := newHarness(t, nil)
	digest := sha256.Sum256([]byte("request"))
	digestOf := func(context.Context, string) ([]byte, error) { return digest[:], nil }

	t.Run("fail-begin", func(t *testing.T) {
		a := passkeytest.New()
		u, d, _ := h.sealedAccount("bg", a)
		c := Confirmer{UserID: u.ID, DeviceID: d.ID, SessionID: "ses-1"}
		_, err := h.svc.BeginConfirm(h.ctx, KindApproval, c, "req-1", digest[:])
		wantErr(t, err, airlock.EFORBIDDEN, ReasonNotBreakGlass)
		_, err = h.svc.BeginConfirm(h.ctx, KindBreakGlassReview, c, "bge-1", digest[:])
		wantErr(t, err, airlock.EFORBIDDEN, ReasonNotBreakGlass)
	})
	t.Run("fail-finish", func(t *testing.T) {
		a := passkeytest.New()
		u := h.user("carol", 0)
		d := h.device("carol-laptop", u.ID)
		enrolled, _ := h.enrol(a, u, d)
		c := Confirmer{UserID: u.ID, DeviceID: d.ID, SessionID: "ses-2"}
		b, err := h.svc.BeginConfirm(h.ctx, KindApproval, c, "req-2", digest[:])
		if err != nil {
			t.Fatal(err)
		}
		u.Kind = airlock.UserBreakGlass
		if err := h.store.UpdateUser(h.ctx, u); err != nil {
			t.Fatal(err)
		}
		resp, err := a.Assert(testOrigin, mustJSON(t, b))
		if err != nil {
			t.Fatal(err)
		}
		before := h.credential(enrolled.Credential.ID)
		_, err = h.svc.FinishConfirm(h.ctx, KindApproval, b.Ceremony, resp, c, "req-2", digestOf, Meta{})
		wantErr(t, err, airlock.EFORBIDDEN, ReasonNotBreakGlass)
		if after := h.credential(enrolled.Credential.ID); after.SignCount != before.SignCount {
			t.Error("the refused confirmation recorded a use")
		}
	})
}
