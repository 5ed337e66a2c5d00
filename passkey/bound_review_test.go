package passkey

import (
	"strings"
	"testing"

	"airlock"
	"airlock/passkey/passkeytest"
)

// TestBoundSecondPasskeyOnDevice: a person with two passkeys on the same
// device (a second security key, a platform passkey beside a roaming one)
// can confirm a step-up and an approval with either: both are offered, and
// the one used is verified. go-webauthn refuses an assertion when the
// session's allow-list names credentials the user handed to it does not
// own, so verifyBound must not hand it the used passkey alone against the
// whole list.
func TestBoundSecondPasskeyOnDevice(t *testing.T) {
	t.Run("ok-step-up-with-second-passkey", func(t *testing.T) {
		f := newStepUp(t)
		second := passkeytest.New()
		f.h.enrol(second, f.alice, f.laptop)
		if _, err := f.run(t, second); err != nil {
			t.Fatalf("step-up with the second passkey: %v", err)
		}
	})
	t.Run("ok-approval-with-second-passkey", func(t *testing.T) {
		f := newApproval(t)
		second := passkeytest.New()
		f.h.enrol(second, f.bob, f.laptop)
		if _, err := f.run(t, second, "req-A", "req-A"); err != nil {
			t.Fatalf("approval with the second passkey: %v", err)
		}
	})
	t.Run("ok-step-up-with-first-passkey", func(t *testing.T) {
		f := newStepUp(t)
		f.h.enrol(passkeytest.New(), f.alice, f.laptop)
		if _, err := f.run(t, f.auth); err != nil {
			t.Fatalf("step-up with the first passkey: %v", err)
		}
	})
}

// TestApprovalPasskeyTier: an approval's assertion must come from a
// passkey that may serve the tier the Confirmer names (the scope's): a
// synced passkey (tier 2 at most) is neither offered for a tier-0
// confirmation nor accepted when used anyway; for a tier-2 one it is.
func TestApprovalPasskeyTier(t *testing.T) {
	setup := func(t *testing.T, tier airlock.Tier) (*approvalFixture, *passkeytest.Authenticator, []byte) {
		f := newApproval(t)
		f.conf.Tier = tier
		synced := passkeytest.New()
		synced.Flags = passkeytest.Flags{BackupEligible: true, BackupState: true}
		res, _ := f.h.enrol(synced, f.bob, f.laptop)
		if res.Credential.TierCap != 2 {
			t.Fatalf("synced tier cap %d", res.Credential.TierCap)
		}
		return f, synced, res.Credential.ID
	}
	t.Run("fail-synced-passkey-tier-0", func(t *testing.T) {
		// Used although not offered: refused as not offered.
		f, synced, id := setup(t, 0)
		_, err := f.run(t, synced, "req-A", "req-A", passkeytest.WithCredential(id))
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonWrongCredential)
		f.notUsed(t)
	})
	t.Run("fail-passkey-tier-lowered-during-ceremony", func(t *testing.T) {
		// Offered at begin; by finish the account is tier 1, so the
		// device-bound passkey serves tier 1 at most.
		f, _, _ := setup(t, 0)
		id, opt := f.begin(t, "req-A")
		f.bob.Tier = 1
		if err := f.h.store.UpdateUser(f.h.ctx, f.bob); err != nil {
			t.Fatal(err)
		}
		resp, err := f.auth.Assert(testOrigin, opt)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.h.svc.FinishApproval(f.h.ctx, id, resp, f.conf, "req-A", f.digestOf, Meta{})
		wantErr(t, err, airlock.EFORBIDDEN, ReasonTierPolicy)
		f.notUsed(t)
	})
	t.Run("fail-synced-passkey-not-offered-tier-0", func(t *testing.T) {
		f, _, id := setup(t, 0)
		_, opt := f.begin(t, "req-A")
		if strings.Contains(string(opt), b64(id)) {
			t.Fatalf("options offer the synced passkey: %s", opt)
		}
	})
	t.Run("ok-synced-passkey-tier-2", func(t *testing.T) {
		f, synced, id := setup(t, 2)
		if _, err := f.run(t, synced, "req-A", "req-A", passkeytest.WithCredential(id)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ok-device-bound-passkey-tier-0", func(t *testing.T) {
		f, _, _ := setup(t, 0)
		if _, err := f.run(t, f.auth, "req-A", "req-A"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestStepUpPasskeyTier: a step-up is a fresh confirmation for the
// session's tier: on a tier-0 session a synced passkey (tier 2 at most) on
// the same device neither is offered nor confirms anything; on a tier-2
// session it does.
func TestStepUpPasskeyTier(t *testing.T) {
	setup := func(t *testing.T, sessionTier airlock.Tier) (*stepUpFixture, *passkeytest.Authenticator, []byte) {
		f := newStepUp(t)
		if sessionTier != f.session.Tier {
			f.session.ID, f.session.TokenHash, f.session.Tier = "ses-alice-2", []byte("hash-alice-2"), sessionTier
			if err := f.h.store.CreateSession(f.h.ctx, f.session); err != nil {
				t.Fatal(err)
			}
			f.tx = f.newTx(t, "txn-2")
		}
		synced := passkeytest.New()
		synced.Flags = passkeytest.Flags{BackupEligible: true, BackupState: true}
		res, _ := f.h.enrol(synced, f.alice, f.laptop)
		return f, synced, res.Credential.ID
	}
	t.Run("fail-synced-passkey-tier-0-session", func(t *testing.T) {
		f, synced, id := setup(t, 0)
		cid, opt := f.begin(t, f.tx.ID, f.session.ID)
		if strings.Contains(string(opt), b64(id)) {
			t.Errorf("a tier-0 step-up offers the synced passkey: %s", opt)
		}
		resp, err := synced.Assert(testOrigin, opt, passkeytest.WithCredential(id))
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.h.svc.FinishStepUp(f.h.ctx, cid, resp, f.session.ID, Meta{})
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonWrongCredential)
		f.notCompleted(t)
	})
	t.Run("ok-device-bound-passkey-tier-0-session", func(t *testing.T) {
		f, _, _ := setup(t, 0)
		if _, err := f.run(t, f.auth); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ok-synced-passkey-tier-2-session", func(t *testing.T) {
		f, synced, id := setup(t, 2)
		if _, err := f.run(t, synced, passkeytest.WithCredential(id)); err != nil {
			t.Fatal(err)
		}
	})
}
