package passkey

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"

	"airlock"
	"airlock/passkey/passkeytest"
)

// holderFixture: bob has a device-bound passkey on his laptop and a synced
// one on his phone (a device no longer compliant); carol has one too.
type holderFixture struct {
	h            *harness
	bob, carol   *airlock.User
	laptop       *airlock.Device
	phone        *airlock.Device
	lapAuth      *passkeytest.Authenticator
	phoneAuth    *passkeytest.Authenticator
	carolAuth    *passkeytest.Authenticator
	digests      map[string][]byte
	digestCalled int
}

func newHolder(t *testing.T) *holderFixture {
	t.Helper()
	h := newHarness(t, nil)
	f := &holderFixture{h: h, digests: map[string][]byte{}}
	f.bob = h.user("bob", 2)
	f.carol = h.user("carol", 2)
	f.laptop = h.device("bob-laptop", f.bob.ID)
	f.phone = h.device("bob-phone", f.bob.ID)
	f.lapAuth, f.phoneAuth, f.carolAuth = passkeytest.New(), passkeytest.New(), passkeytest.New()
	f.phoneAuth.Flags = passkeytest.Flags{BackupEligible: true, BackupState: true}
	h.enrol(f.lapAuth, f.bob, f.laptop)
	h.enrol(f.phoneAuth, f.bob, f.phone)
	h.enrol(f.carolAuth, f.carol, h.device("carol-laptop", f.carol.ID))
	// The phone falls out of compliance: it still proves the holder.
	f.phone.Posture.DiskEncrypted = false
	if err := h.store.UpdateDevice(h.ctx, f.phone); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"case-A", "case-B"} {
		d := sha256.Sum256([]byte("case " + ref))
		f.digests[ref] = d[:]
	}
	return f
}

func (f *holderFixture) digestOf(_ context.Context, ref string) ([]byte, error) {
	f.digestCalled++
	d, ok := f.digests[ref]
	if !ok {
		return nil, airlock.Errorf(airlock.ENOTFOUND, "no case %s", ref)
	}
	return d, nil
}

func (f *holderFixture) begin(t *testing.T, ref string) (string, []byte) {
	t.Helper()
	b, err := f.h.svc.BeginHolderConfirm(f.h.ctx, KindRecoveryCancel, f.bob.ID, ref, f.digests[ref])
	if err != nil {
		t.Fatalf("BeginHolderConfirm: %v", err)
	}
	return b.Ceremony, mustJSON(t, b)
}

// TestHolderConfirm: any unrevoked passkey of the user, on any device not
// revoked (a non-compliant one too), synced or not, confirms without a
// session; the use is recorded.
func TestHolderConfirm(t *testing.T) {
	for _, which := range []string{"laptop", "phone"} {
		t.Run(which, func(t *testing.T) {
			f := newHolder(t)
			a, dev := f.lapAuth, f.laptop
			if which == "phone" {
				a, dev = f.phoneAuth, f.phone
			}
			id, opt := f.begin(t, "case-A")
			resp, err := a.Assert(testOrigin, opt)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.h.svc.FinishHolderConfirm(f.h.ctx, KindRecoveryCancel, id, resp, "case-A", f.digestOf, Meta{})
			if err != nil {
				t.Fatal(err)
			}
			if got.User.ID != f.bob.ID || got.Device.ID != dev.ID || got.Ref != "case-A" || !bytes.Equal(got.Digest, f.digests["case-A"]) {
				t.Fatalf("confirmed %+v", got)
			}
			if c, _ := f.h.store.FindCredentialByID(f.h.ctx, got.Credential.ID); c.LastUsedAt.IsZero() {
				t.Fatal("use not recorded")
			}
		})
	}
}

// TestHolderConfirmRefused: every failing case, each spending the
// ceremony.
func TestHolderConfirmRefused(t *testing.T) {
	t.Run("fail-other-users-passkey", func(t *testing.T) {
		f := newHolder(t)
		id, opt := f.begin(t, "case-A")
		resp, _ := f.carolAuth.Assert(testOrigin, opt, passkeytest.WithCredential(f.carolAuth.Credentials()[0].ID))
		_, err := f.h.svc.FinishHolderConfirm(f.h.ctx, KindRecoveryCancel, id, resp, "case-A", f.digestOf, Meta{})
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonWrongCredential)
	})
	t.Run("fail-uv-missing", func(t *testing.T) {
		f := newHolder(t)
		id, opt := f.begin(t, "case-A")
		resp, _ := f.lapAuth.Assert(testOrigin, opt, passkeytest.WithFlags(passkeytest.Flags{NoUserVerification: true}))
		_, err := f.h.svc.FinishHolderConfirm(f.h.ctx, KindRecoveryCancel, id, resp, "case-A", f.digestOf, Meta{})
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonUVMissing)
		resp, _ = f.lapAuth.Assert(testOrigin, opt)
		_, err = f.h.svc.FinishHolderConfirm(f.h.ctx, KindRecoveryCancel, id, resp, "case-A", f.digestOf, Meta{})
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonUnknownCeremony)
	})
	t.Run("fail-wrong-origin", func(t *testing.T) {
		f := newHolder(t)
		id, opt := f.begin(t, "case-A")
		resp, _ := f.lapAuth.Assert("https://evil.example.com", opt)
		_, err := f.h.svc.FinishHolderConfirm(f.h.ctx, KindRecoveryCancel, id, resp, "case-A", f.digestOf, Meta{})
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonBadOrigin)
	})
	t.Run("fail-other-ref", func(t *testing.T) {
		f := newHolder(t)
		id, opt := f.begin(t, "case-A")
		resp, _ := f.lapAuth.Assert(testOrigin, opt)
		_, err := f.h.svc.FinishHolderConfirm(f.h.ctx, KindRecoveryCancel, id, resp, "case-B", f.digestOf, Meta{})
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonRequestBinding)
	})
	t.Run("fail-digest-changed", func(t *testing.T) {
		f := newHolder(t)
		id, opt := f.begin(t, "case-A")
		f.digests["case-A"] = f.digests["case-B"]
		resp, _ := f.lapAuth.Assert(testOrigin, opt)
		_, err := f.h.svc.FinishHolderConfirm(f.h.ctx, KindRecoveryCancel, id, resp, "", f.digestOf, Meta{})
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonRequestBinding)
	})
	t.Run("fail-ref-refused", func(t *testing.T) {
		f := newHolder(t)
		id, opt := f.begin(t, "case-A")
		delete(f.digests, "case-A")
		resp, _ := f.lapAuth.Assert(testOrigin, opt)
		_, err := f.h.svc.FinishHolderConfirm(f.h.ctx, KindRecoveryCancel, id, resp, "", f.digestOf, Meta{})
		wantErr(t, err, airlock.ENOTFOUND, ReasonRefRefused)
	})
	t.Run("fail-revoked-passkey", func(t *testing.T) {
		f := newHolder(t)
		id, opt := f.begin(t, "case-A")
		if err := f.h.store.RevokeCredential(f.h.ctx, f.lapAuth.Credentials()[0].ID, f.h.clk.Now()); err != nil {
			t.Fatal(err)
		}
		resp, _ := f.lapAuth.Assert(testOrigin, opt)
		_, err := f.h.svc.FinishHolderConfirm(f.h.ctx, KindRecoveryCancel, id, resp, "case-A", f.digestOf, Meta{})
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonCredentialRevoked)
	})
	t.Run("fail-revoked-device", func(t *testing.T) {
		f := newHolder(t)
		id, opt := f.begin(t, "case-A")
		f.h.setDeviceTrust(f.laptop, airlock.TrustRevoked)
		resp, _ := f.lapAuth.Assert(testOrigin, opt)
		_, err := f.h.svc.FinishHolderConfirm(f.h.ctx, KindRecoveryCancel, id, resp, "case-A", f.digestOf, Meta{})
		wantErr(t, err, airlock.EFORBIDDEN, ReasonDeviceRevoked)
		// A revoked device's passkey is not offered at all.
		b, err := f.h.svc.BeginHolderConfirm(f.h.ctx, KindRecoveryCancel, f.bob.ID, "case-A", f.digests["case-A"])
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(mustJSON(t, b), []byte(b64(f.lapAuth.Credentials()[0].ID))) {
			t.Fatal("a revoked device's passkey was offered")
		}
	})
	t.Run("fail-disabled-user", func(t *testing.T) {
		f := newHolder(t)
		id, opt := f.begin(t, "case-A")
		f.h.disableUser(f.bob)
		resp, _ := f.lapAuth.Assert(testOrigin, opt)
		_, err := f.h.svc.FinishHolderConfirm(f.h.ctx, KindRecoveryCancel, id, resp, "case-A", f.digestOf, Meta{})
		wantErr(t, err, airlock.EFORBIDDEN, ReasonUserDisabled)
		_, err = f.h.svc.BeginHolderConfirm(f.h.ctx, KindRecoveryCancel, f.bob.ID, "case-A", f.digests["case-A"])
		wantErr(t, err, airlock.EFORBIDDEN, ReasonUserDisabled)
	})
	t.Run("fail-wrong-kind", func(t *testing.T) {
		f := newHolder(t)
		_, err := f.h.svc.BeginHolderConfirm(f.h.ctx, KindApproval, f.bob.ID, "case-A", f.digests["case-A"])
		wantErr(t, err, airlock.EINTERNAL, ReasonWrongCeremony)
		id, opt := f.begin(t, "case-A")
		resp, _ := f.lapAuth.Assert(testOrigin, opt)
		_, err = f.h.svc.FinishConfirm(f.h.ctx, KindRecoveryApproval, id, resp, Confirmer{UserID: f.bob.ID, DeviceID: f.laptop.ID, SessionID: "s"}, "case-A", f.digestOf, Meta{})
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonWrongCeremony)
	})
	t.Run("fail-no-passkey", func(t *testing.T) {
		f := newHolder(t)
		_, err := f.h.svc.BeginHolderConfirm(f.h.ctx, KindRecoveryCancel, f.h.user("dan", 2).ID, "case-A", f.digests["case-A"])
		wantErr(t, err, airlock.EFORBIDDEN, ReasonNoCredential)
		_, err = f.h.svc.BeginHolderConfirm(f.h.ctx, KindRecoveryCancel, f.bob.ID, "", f.digests["case-A"])
		wantErr(t, err, airlock.EINVALID, ReasonWrongConfirmer)
	})
	t.Run("fail-breakglass", func(t *testing.T) {
		f := newHolder(t)
		f.bob.Kind = airlock.UserBreakGlass
		if err := f.h.store.UpdateUser(f.h.ctx, f.bob); err != nil {
			t.Fatal(err)
		}
		_, err := f.h.svc.BeginHolderConfirm(f.h.ctx, KindRecoveryCancel, f.bob.ID, "case-A", f.digests["case-A"])
		wantErr(t, err, airlock.EFORBIDDEN, ReasonNotBreakGlass)
	})
}
