package passkey

import (
	"crypto/sha256"
	"testing"

	"airlock"
	"airlock/passkey/passkeytest"
)

// sealedAccount creates a break-glass account with one sealed passkey
// from a (enrolled through a normal enrolment token, as set-up does).
func (h *harness) sealedAccount(name string, a *passkeytest.Authenticator) (*airlock.User, *airlock.Device, *airlock.Credential) {
	h.tb.Helper()
	u := h.user(name, 0)
	u.Kind = airlock.UserBreakGlass
	if err := h.store.UpdateUser(h.ctx, u); err != nil {
		h.tb.Fatal(err)
	}
	d := h.device(name+"-safe", u.ID)
	res, _ := h.enrol(a, u, d)
	return u, d, res.Credential
}

// sealedOptions is the request options of b as a client receives them.
func sealedOptions(tb testing.TB, b *SealedBegin) []byte {
	tb.Helper()
	return mustJSON(tb, Begin{Ceremony: "sealed", PublicKey: b.Options})
}

// TestSealedVerify covers VerifySealed: every check it names has a failing
// case, and the success reports the new sign count without storing it.
func TestSealedVerify(t *testing.T) {
	digest := sha256.Sum256([]byte("account|justification|policy"))
	type env struct {
		h     *harness
		u     *airlock.User
		a     *passkeytest.Authenticator
		cred  *airlock.Credential
		creds []*airlock.Credential
	}
	tests := []struct {
		name   string
		opts   []passkeytest.Option
		origin string
		// verify changes what VerifySealed is given.
		verify func(e *env, state []byte, digest []byte) ([]byte, []byte)
		code   string
		reason Reason
	}{
		{name: "ok"},
		{name: "fail-uv-missing", opts: flags(passkeytest.Flags{NoUserVerification: true}), code: airlock.EUNAUTHORIZED, reason: ReasonUVMissing},
		{name: "fail-up-missing", opts: flags(passkeytest.Flags{NoUserPresence: true}), code: airlock.EUNAUTHORIZED, reason: ReasonUPMissing},
		{name: "fail-wrong-origin", origin: "https://evil.example.com", code: airlock.EUNAUTHORIZED, reason: ReasonBadOrigin},
		{name: "fail-wrong-rp-id", opts: []passkeytest.Option{passkeytest.WithRPID("evil.example.com")}, code: airlock.EUNAUTHORIZED, reason: ReasonBadRPID},
		{name: "fail-wrong-type", opts: []passkeytest.Option{passkeytest.WithClientDataType("webauthn.create")}, code: airlock.EUNAUTHORIZED, reason: ReasonBadType},
		{name: "fail-backup-eligible-assertion", opts: flags(passkeytest.Flags{BackupEligible: true}), code: airlock.EUNAUTHORIZED, reason: ReasonBreakGlassBound},
		{name: "fail-bad-signature", opts: []passkeytest.Option{passkeytest.WithBadSignature()}, code: airlock.EUNAUTHORIZED, reason: ReasonBadSignature},
		{name: "fail-clone-counter", opts: []passkeytest.Option{passkeytest.WithCounter(3)},
			verify: func(e *env, state, d []byte) ([]byte, []byte) { e.cred.SignCount = 7; return state, d },
			code:   airlock.EUNAUTHORIZED, reason: ReasonClone},
		{name: "fail-tampered-digest", verify: func(e *env, state, d []byte) ([]byte, []byte) {
			other := sha256.Sum256([]byte("account|another justification|policy"))
			return state, other[:]
		}, code: airlock.EUNAUTHORIZED, reason: ReasonRequestBinding},
		{name: "fail-corrupt-state", verify: func(e *env, state, d []byte) ([]byte, []byte) { return []byte("{"), d },
			code: airlock.EINTERNAL, reason: ReasonStore},
		{name: "fail-revoked-after-begin", verify: func(e *env, state, d []byte) ([]byte, []byte) {
			e.cred.RevokedAt = e.h.clk.Now()
			return state, d
		}, code: airlock.EUNAUTHORIZED, reason: ReasonCredentialRevoked},
		{name: "fail-unknown-credential", verify: func(e *env, state, d []byte) ([]byte, []byte) {
			e.creds = nil
			return state, d
		}, code: airlock.EUNAUTHORIZED, reason: ReasonUnknownCredential},
		{name: "fail-other-users-credential", verify: func(e *env, state, d []byte) ([]byte, []byte) {
			e.cred.UserID = "u-someone-else"
			return state, d
		}, code: airlock.EUNAUTHORIZED, reason: ReasonUnknownCredential},
		{name: "fail-disabled-after-begin", verify: func(e *env, state, d []byte) ([]byte, []byte) {
			e.u.Disabled = true
			return state, d
		}, code: airlock.EFORBIDDEN, reason: ReasonUserDisabled},
		{name: "fail-normal-account", verify: func(e *env, state, d []byte) ([]byte, []byte) {
			e.u.Kind = airlock.UserEmployee
			return state, d
		}, code: airlock.EFORBIDDEN, reason: ReasonNotBreakGlass},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			a := passkeytest.New()
			u, _, cred := h.sealedAccount("bg", a)
			e := &env{h: h, u: u, a: a, cred: cred, creds: []*airlock.Credential{cred}}
			b, err := h.svc.BeginSealed(u, e.creds, digest[:])
			if err != nil {
				t.Fatal(err)
			}
			origin := testOrigin
			if tc.origin != "" {
				origin = tc.origin
			}
			resp, err := a.Assert(origin, sealedOptions(t, b), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			state, d := b.State, digest[:]
			if tc.verify != nil {
				state, d = tc.verify(e, state, d)
			}
			before := h.credential(cred.ID)
			res, err := h.svc.VerifySealed(state, e.u, e.creds, d, resp)
			// VerifySealed never writes: the stored passkey is unchanged.
			if after := h.credential(cred.ID); after.SignCount != before.SignCount || !after.LastUsedAt.Equal(before.LastUsedAt) {
				t.Errorf("stored passkey changed: sign count %d -> %d", before.SignCount, after.SignCount)
			}
			if tc.code != "" {
				wantErr(t, err, tc.code, tc.reason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Credential.SignCount != before.SignCount+1 || res.OldSignCount != before.SignCount {
				t.Errorf("sign count %d (old %d), want %d (old %d)", res.Credential.SignCount, res.OldSignCount, before.SignCount+1, before.SignCount)
			}
			if !res.Credential.LastUsedAt.Equal(h.clk.Now().UTC()) {
				t.Errorf("LastUsedAt = %v", res.Credential.LastUsedAt)
			}
			if res.Challenge != checkOptions(t, sealedOptions(t, b), cred.ID, "the sealed passkey") {
				t.Errorf("challenge %q is not the options'", res.Challenge)
			}
		})
	}
}

// TestSealedBegin covers what BeginSealed offers and whom it refuses.
func TestSealedBegin(t *testing.T) {
	digest := sha256.Sum256([]byte("d"))
	h := newHarness(t, nil)
	a := passkeytest.New()
	u, _, cred := h.sealedAccount("bg", a)

	t.Run("ok-offers-only-usable-sealed-passkeys", func(t *testing.T) {
		revoked := *cred
		revoked.ID = []byte("revoked-one")
		revoked.RevokedAt = h.clk.Now()
		synced := *cred
		synced.ID = []byte("synced-one")
		synced.BackupEligible = true
		foreign := *cred
		foreign.ID = []byte("foreign-one")
		foreign.UserID = "u-other"
		b, err := h.svc.BeginSealed(u, []*airlock.Credential{&revoked, cred, &synced, &foreign}, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		checkOptions(t, sealedOptions(t, b), cred.ID, "the sealed passkey")
	})
	t.Run("fail-normal-account", func(t *testing.T) {
		n := h.user("alice", 0)
		_, err := h.svc.BeginSealed(n, []*airlock.Credential{cred}, digest[:])
		wantErr(t, err, airlock.EFORBIDDEN, ReasonNotBreakGlass)
	})
	t.Run("fail-no-usable-passkey", func(t *testing.T) {
		synced := *cred
		synced.BackupEligible = true
		_, err := h.svc.BeginSealed(u, []*airlock.Credential{&synced}, digest[:])
		wantErr(t, err, airlock.EFORBIDDEN, ReasonNoCredential)
	})
	t.Run("fail-disabled", func(t *testing.T) {
		d := *u
		d.Disabled = true
		_, err := h.svc.BeginSealed(&d, []*airlock.Credential{cred}, digest[:])
		wantErr(t, err, airlock.EFORBIDDEN, ReasonUserDisabled)
	})
	t.Run("fail-empty-digest", func(t *testing.T) {
		_, err := h.svc.BeginSealed(u, []*airlock.Credential{cred}, nil)
		wantErr(t, err, airlock.EINTERNAL, ReasonStore)
	})
	t.Run("fail-not-offered", func(t *testing.T) {
		// A second sealed passkey of the same account, left out of the
		// ceremony, cannot answer it.
		a2 := passkeytest.New()
		res, _ := h.enrol(a2, u, h.device("bg-safe-2", u.ID))
		b, err := h.svc.BeginSealed(u, []*airlock.Credential{cred}, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		// The client answers with the other passkey anyway.
		var o struct {
			PublicKey map[string]any `json:"publicKey"`
		}
		if err := jsonUnmarshal(sealedOptions(t, b), &o); err != nil {
			t.Fatal(err)
		}
		delete(o.PublicKey, "allowCredentials")
		resp, err := a2.Assert(testOrigin, mustJSON(t, o))
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.svc.VerifySealed(b.State, u, []*airlock.Credential{cred, res.Credential}, digest[:], resp)
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonWrongCredential)
	})
}
