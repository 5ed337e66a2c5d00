package passkey

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"airlock"
	"airlock/passkey/passkeytest"
)

// approvalFixture is bob, signed in on his laptop with a passkey there,
// about to approve request "req-A" (digest digA) or "req-B" (digB).
type approvalFixture struct {
	h       *harness
	bob     *airlock.User
	laptop  *airlock.Device
	auth    *passkeytest.Authenticator
	session *airlock.Session
	conf    Confirmer
	digests map[string][]byte
}

func newApproval(t *testing.T) *approvalFixture {
	t.Helper()
	h := newHarness(t, nil)
	f := &approvalFixture{h: h, digests: map[string][]byte{}}
	f.bob = h.user("bob", 0)
	f.laptop = h.device("bob-laptop", f.bob.ID)
	f.auth = passkeytest.New()
	h.enrol(f.auth, f.bob, f.laptop)
	now := h.clk.Now()
	f.session = &airlock.Session{ID: "ses-bob", TokenHash: []byte("hash-bob"), UserID: f.bob.ID, DeviceID: f.laptop.ID,
		CredentialID: f.auth.Credentials()[0].ID, AuthTime: now.Add(-time.Hour), LastSeen: now, LastUVAt: now.Add(-time.Hour),
		AbsoluteDeadline: now.Add(12 * time.Hour), IdleTimeout: 15 * time.Minute, CreatedAt: now.Add(-time.Hour)}
	if err := h.store.CreateSession(h.ctx, f.session); err != nil {
		t.Fatal(err)
	}
	f.conf = Confirmer{UserID: f.bob.ID, DeviceID: f.laptop.ID, SessionID: f.session.ID}
	for _, ref := range []string{"req-A", "req-B"} {
		d := sha256.Sum256([]byte("request " + ref))
		f.digests[ref] = d[:]
	}
	return f
}

// digestOf answers the fixture's current digests.
func (f *approvalFixture) digestOf(_ context.Context, ref string) ([]byte, error) {
	d, ok := f.digests[ref]
	if !ok {
		return nil, airlock.Errorf(airlock.ENOTFOUND, "no request %s", ref)
	}
	return d, nil
}

func (f *approvalFixture) begin(t *testing.T, ref string) (string, []byte) {
	t.Helper()
	b, err := f.h.svc.BeginApproval(f.h.ctx, f.conf, ref, f.digests[ref])
	if err != nil {
		t.Fatalf("BeginApproval: %v", err)
	}
	return b.Ceremony, mustJSON(t, b)
}

// run begins an approval of beginRef and finishes it as finishRef with a.
func (f *approvalFixture) run(t *testing.T, a *passkeytest.Authenticator, beginRef, finishRef string, opts ...passkeytest.Option) (*Confirmed, error) {
	t.Helper()
	id, opt := f.begin(t, beginRef)
	resp, err := a.Assert(testOrigin, opt, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return f.h.svc.FinishApproval(f.h.ctx, id, resp, f.conf, finishRef, f.digestOf, Meta{IP: "192.0.2.9"})
}

// signed begins an approval of ref and has bob's authenticator answer it:
// the ceremony id and the assertion.
func (f *approvalFixture) signed(t *testing.T, ref string) (string, []byte) {
	t.Helper()
	id, opt := f.begin(t, ref)
	resp, err := f.auth.Assert(testOrigin, opt)
	if err != nil {
		t.Fatal(err)
	}
	return id, resp
}

// finish finishes ceremony id with resp as conf, approving ref.
func (f *approvalFixture) finish(id string, resp []byte, conf Confirmer, ref string) error {
	_, err := f.h.svc.FinishApproval(f.h.ctx, id, resp, conf, ref, f.digestOf, Meta{})
	return err
}

// notUsed checks that a refused approval left the session's last user
// verification as it was.
func (f *approvalFixture) notUsed(t *testing.T) {
	t.Helper()
	sess, err := f.h.store.FindSessionByID(f.h.ctx, f.session.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !sess.LastUVAt.Equal(f.session.LastUVAt) {
		t.Errorf("a refused approval refreshed last_uv_at to %s", sess.LastUVAt)
	}
}

func TestApprovalOK(t *testing.T) {
	f := newApproval(t)
	h := f.h
	id, opt := f.begin(t, "req-A")
	challenge := checkOptions(t, opt, f.auth.Credentials()[0].ID, "bob's laptop passkey")
	resp, err := f.auth.Assert(testOrigin, opt)
	if err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(10 * time.Second)
	got, err := h.svc.FinishApproval(h.ctx, id, resp, f.conf, "req-A", f.digestOf, Meta{})
	if err != nil {
		t.Fatalf("FinishApproval: %v", err)
	}
	if got.Ref != "req-A" || !bytes.Equal(got.Digest, f.digests["req-A"]) || got.User.ID != f.bob.ID || got.Device.ID != f.laptop.ID ||
		!bytes.Equal(got.Credential.ID, f.auth.Credentials()[0].ID) || !got.At.Equal(h.clk.Now()) {
		t.Errorf("confirmed %+v", got)
	}
	if want := b64(StepUpChallenge(got.Nonce, f.digests["req-A"])); challenge != want || got.Challenge != want {
		t.Errorf("challenge %s (reported %s), want SHA-256(nonce ‖ digest) = %s", challenge, got.Challenge, want)
	}
	sess, _ := h.store.FindSessionByID(h.ctx, f.session.ID)
	if !sess.LastUVAt.Equal(h.clk.Now()) {
		t.Errorf("session last_uv_at = %s, want the approval time %s", sess.LastUVAt, h.clk.Now())
	}
	if c := h.credential(f.auth.Credentials()[0].ID); c.SignCount == 0 || !c.LastUsedAt.Equal(h.clk.Now()) {
		t.Errorf("credential use not recorded: count %d, last used %s", c.SignCount, c.LastUsedAt)
	}
	// Single use: the same ceremony cannot be finished twice.
	_, err = h.svc.FinishApproval(h.ctx, id, resp, f.conf, "req-A", f.digestOf, Meta{})
	wantErr(t, err, airlock.EUNAUTHORIZED, ReasonUnknownCeremony)
}

func TestApprovalRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		// run performs the refused approval and returns its error.
		run    func(t *testing.T, f *approvalFixture) error
		code   string
		reason Reason
		// otherUser: the failure is counted against the finisher, not bob.
		otherUser bool
	}{
		{"fail-no-ceremony", func(t *testing.T, f *approvalFixture) error {
			_, resp := f.signed(t, "req-A")
			return f.finish("", resp, f.conf, "req-A")
		}, airlock.EUNAUTHORIZED, ReasonUnknownCeremony, false},
		{"fail-uv-cleared", func(t *testing.T, f *approvalFixture) error {
			_, err := f.run(t, f.auth, "req-A", "req-A", passkeytest.WithFlags(passkeytest.Flags{NoUserVerification: true}))
			return err
		}, airlock.EUNAUTHORIZED, ReasonUVMissing, false},
		{"fail-up-cleared", func(t *testing.T, f *approvalFixture) error {
			_, err := f.run(t, f.auth, "req-A", "req-A", passkeytest.WithFlags(passkeytest.Flags{NoUserPresence: true}))
			return err
		}, airlock.EUNAUTHORIZED, ReasonUPMissing, false},
		{"fail-expired-ceremony", func(t *testing.T, f *approvalFixture) error {
			id, resp := f.signed(t, "req-A")
			f.h.clk.Advance(DefaultCeremonyTTL)
			return f.finish(id, resp, f.conf, "req-A")
		}, airlock.EEXPIRED, ReasonExpired, false},
		{"fail-replayed-ceremony", func(t *testing.T, f *approvalFixture) error {
			id, resp := f.signed(t, "req-A")
			if err := f.finish(id, resp, f.conf, "req-A"); err != nil {
				t.Fatal(err)
			}
			f.session.LastUVAt = f.h.clk.Now() // the first one did refresh it
			return f.finish(id, resp, f.conf, "req-A")
		}, airlock.EUNAUTHORIZED, ReasonUnknownCeremony, false},
		{"fail-ceremony-for-A-finished-as-B", func(t *testing.T, f *approvalFixture) error {
			_, err := f.run(t, f.auth, "req-A", "req-B")
			return err
		}, airlock.EUNAUTHORIZED, ReasonRequestBinding, false},
		{"fail-assertion-over-A-challenge-presented-for-B", func(t *testing.T, f *approvalFixture) error {
			_, optA := f.begin(t, "req-A")
			ch, _ := b64dec(parseOptions(t, optA).PublicKey.Challenge)
			_, err := f.run(t, f.auth, "req-B", "req-B", passkeytest.WithChallenge(ch))
			return err
		}, airlock.EUNAUTHORIZED, ReasonBadChallenge, false},
		{"fail-request-changed-since-begin", func(t *testing.T, f *approvalFixture) error {
			id, resp := f.signed(t, "req-A")
			f.digests["req-A"] = f.digests["req-B"]
			return f.finish(id, resp, f.conf, "req-A")
		}, airlock.EUNAUTHORIZED, ReasonRequestBinding, false},
		{"fail-caller-refuses-request", func(t *testing.T, f *approvalFixture) error {
			id, resp := f.signed(t, "req-A")
			refuse := func(context.Context, string) ([]byte, error) {
				return nil, airlock.Errorf(airlock.EEXPIRED, "the request expired")
			}
			_, err := f.h.svc.FinishApproval(f.h.ctx, id, resp, f.conf, "req-A", refuse, Meta{})
			return err
		}, airlock.EEXPIRED, ReasonRefRefused, false},
		{"fail-other-session-finishes", func(t *testing.T, f *approvalFixture) error {
			id, resp := f.signed(t, "req-A")
			other := f.conf
			other.SessionID = "ses-other"
			return f.finish(id, resp, other, "req-A")
		}, airlock.EFORBIDDEN, ReasonWrongConfirmer, false},
		{"fail-other-user-finishes", func(t *testing.T, f *approvalFixture) error {
			id, resp := f.signed(t, "req-A")
			other := f.conf
			other.UserID = "u-mallory"
			return f.finish(id, resp, other, "req-A")
		}, airlock.EFORBIDDEN, ReasonWrongConfirmer, true},
		{"fail-step-up-ceremony-as-approval", func(t *testing.T, f *approvalFixture) error {
			tx := &airlock.StepUp{ID: "txn-1", SessionID: f.session.ID, UserID: f.bob.ID, DeviceID: f.laptop.ID, Action: "a",
				Resource: "r", Params: []byte(`{}`), ParamsDigest: []byte("pd"), DecisionID: "dec-1", Digest: f.digests["req-A"],
				CreatedAt: f.h.clk.Now(), ExpiresAt: f.h.clk.Now().Add(5 * time.Minute)}
			if err := f.h.store.CreateStepUp(f.h.ctx, tx); err != nil {
				t.Fatal(err)
			}
			b, err := f.h.svc.BeginStepUp(f.h.ctx, tx.ID, f.session.ID, Meta{})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := f.auth.Assert(testOrigin, mustJSON(t, b))
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.h.svc.FinishApproval(f.h.ctx, b.Ceremony, resp, f.conf, "req-A", f.digestOf, Meta{})
			return err
		}, airlock.EUNAUTHORIZED, ReasonWrongCeremony, false},
		{"fail-passkey-of-another-device", func(t *testing.T, f *approvalFixture) error {
			desktop := f.h.device("bob-desktop", f.bob.ID)
			other := passkeytest.New()
			f.h.enrol(other, f.bob, desktop)
			_, err := f.run(t, other, "req-A", "req-A", passkeytest.WithCredential(other.Credentials()[0].ID))
			return err
		}, airlock.EUNAUTHORIZED, ReasonWrongCredential, false},
		{"fail-revoked-credential", func(t *testing.T, f *approvalFixture) error {
			id, resp := f.signed(t, "req-A")
			if err := f.h.store.RevokeCredential(f.h.ctx, f.auth.Credentials()[0].ID, f.h.clk.Now()); err != nil {
				t.Fatal(err)
			}
			return f.finish(id, resp, f.conf, "req-A")
		}, airlock.EUNAUTHORIZED, ReasonCredentialRevoked, false},
		{"fail-user-disabled", func(t *testing.T, f *approvalFixture) error {
			id, resp := f.signed(t, "req-A")
			f.h.disableUser(f.bob)
			return f.finish(id, resp, f.conf, "req-A")
		}, airlock.EFORBIDDEN, ReasonUserDisabled, false},
		{"fail-device-revoked", func(t *testing.T, f *approvalFixture) error {
			id, resp := f.signed(t, "req-A")
			f.h.setDeviceTrust(f.laptop, airlock.TrustRevoked)
			return f.finish(id, resp, f.conf, "req-A")
		}, airlock.EFORBIDDEN, ReasonDeviceRevoked, false},
		{"fail-session-ended", func(t *testing.T, f *approvalFixture) error {
			id, resp := f.signed(t, "req-A")
			if err := f.h.store.EndSession(f.h.ctx, f.session.ID, "logout", f.h.clk.Now()); err != nil {
				t.Fatal(err)
			}
			return f.finish(id, resp, f.conf, "req-A")
		}, airlock.EUNAUTHORIZED, ReasonSessionEnded, false},
		{"fail-clone", func(t *testing.T, f *approvalFixture) error {
			if _, err := f.h.login(f.auth); err != nil {
				t.Fatal(err)
			}
			_, err := f.run(t, f.auth, "req-A", "req-A", passkeytest.KeepCounter())
			return err
		}, airlock.EUNAUTHORIZED, ReasonClone, false},
		{"fail-bad-signature", func(t *testing.T, f *approvalFixture) error {
			_, err := f.run(t, f.auth, "req-A", "req-A", passkeytest.WithBadSignature())
			return err
		}, airlock.EUNAUTHORIZED, ReasonBadSignature, false},
		{"fail-wrong-origin", func(t *testing.T, f *approvalFixture) error {
			id, opt := f.begin(t, "req-A")
			resp, err := f.auth.Assert("https://evil.example.com", opt)
			if err != nil {
				t.Fatal(err)
			}
			return f.finish(id, resp, f.conf, "req-A")
		}, airlock.EUNAUTHORIZED, ReasonBadOrigin, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newApproval(t)
			before, _ := f.h.store.CountRiskEvents(f.h.ctx, f.bob.ID, airlock.RiskCeremonyFailure, time.Time{})
			err := tc.run(t, f)
			wantErr(t, err, tc.code, tc.reason)
			f.notUsed(t)
			want := before + 1
			if tc.otherUser {
				want = before
			}
			if n, _ := f.h.store.CountRiskEvents(f.h.ctx, f.bob.ID, airlock.RiskCeremonyFailure, time.Time{}); n != want {
				t.Errorf("refused approval counted %d times as bob's failed ceremony, want %d", n-before, want-before)
			}
		})
	}
}

// TestApprovalCeremonySpentOnFailure: a refused finish spends the ceremony,
// so a corrected second attempt with the same ceremony is refused too (W2).
func TestApprovalCeremonySpentOnFailure(t *testing.T) {
	f := newApproval(t)
	id, opt := f.begin(t, "req-A")
	bad, err := f.auth.Assert(testOrigin, opt, passkeytest.WithFlags(passkeytest.Flags{NoUserVerification: true}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.h.svc.FinishApproval(f.h.ctx, id, bad, f.conf, "req-A", f.digestOf, Meta{})
	wantErr(t, err, airlock.EUNAUTHORIZED, ReasonUVMissing)
	good, err := f.auth.Assert(testOrigin, opt)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.h.svc.FinishApproval(f.h.ctx, id, good, f.conf, "req-A", f.digestOf, Meta{})
	wantErr(t, err, airlock.EUNAUTHORIZED, ReasonUnknownCeremony)
}

func TestBeginApprovalRefused(t *testing.T) {
	t.Run("fail-no-passkey-on-session-device", func(t *testing.T) {
		f := newApproval(t)
		c := f.conf
		c.DeviceID = f.h.device("bob-desktop", f.bob.ID).ID
		_, err := f.h.svc.BeginApproval(f.h.ctx, c, "req-A", f.digests["req-A"])
		wantErr(t, err, airlock.EFORBIDDEN, ReasonNoCredential)
	})
	t.Run("fail-user-disabled", func(t *testing.T) {
		f := newApproval(t)
		f.h.disableUser(f.bob)
		_, err := f.h.svc.BeginApproval(f.h.ctx, f.conf, "req-A", f.digests["req-A"])
		wantErr(t, err, airlock.EFORBIDDEN, ReasonUserDisabled)
	})
	t.Run("fail-no-session", func(t *testing.T) {
		f := newApproval(t)
		c := f.conf
		c.SessionID = ""
		_, err := f.h.svc.BeginApproval(f.h.ctx, c, "req-A", f.digests["req-A"])
		wantErr(t, err, airlock.EINVALID, ReasonWrongConfirmer)
	})
}

// TestApprovalRefFromCeremony: with no ref named, the ceremony's own ref
// is checked through digestOf and reported.
func TestApprovalRefFromCeremony(t *testing.T) {
	f := newApproval(t)
	id, opt := f.begin(t, "req-B")
	resp, err := f.auth.Assert(testOrigin, opt)
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	digestOf := func(ctx context.Context, ref string) ([]byte, error) {
		asked = append(asked, ref)
		return f.digestOf(ctx, ref)
	}
	got, err := f.h.svc.FinishApproval(f.h.ctx, id, resp, f.conf, "", digestOf, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Ref != "req-B" || len(asked) != 1 || asked[0] != "req-B" {
		t.Fatalf("confirmed ref %q, digestOf asked for %v", got.Ref, asked)
	}
}
