package passkey

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"

	"airlock"
	"airlock/passkey/passkeytest"
)

// stepUpFixture is a signed-in session of alice on her laptop with a
// passkey there, and one pending transaction of that session.
type stepUpFixture struct {
	h       *harness
	alice   *airlock.User
	laptop  *airlock.Device
	auth    *passkeytest.Authenticator
	session *airlock.Session
	tx      *airlock.StepUp
}

func newStepUp(t *testing.T) *stepUpFixture {
	t.Helper()
	h := newHarness(t, nil)
	f := &stepUpFixture{h: h}
	f.alice = h.user("alice", 0)
	f.laptop = h.device("laptop", f.alice.ID)
	f.auth = passkeytest.New()
	h.enrol(f.auth, f.alice, f.laptop)
	now := h.clk.Now()
	f.session = &airlock.Session{ID: "ses-alice", TokenHash: []byte("hash-alice"), UserID: f.alice.ID, DeviceID: f.laptop.ID,
		CredentialID: f.auth.Credentials()[0].ID, AuthTime: now.Add(-time.Hour), LastSeen: now, LastUVAt: now.Add(-time.Hour),
		AbsoluteDeadline: now.Add(12 * time.Hour), IdleTimeout: 15 * time.Minute, CreatedAt: now.Add(-time.Hour)}
	if err := h.store.CreateSession(h.ctx, f.session); err != nil {
		t.Fatal(err)
	}
	f.tx = f.newTx(t, "txn-1")
	return f
}

func (f *stepUpFixture) newTx(t *testing.T, id string) *airlock.StepUp {
	t.Helper()
	now := f.h.clk.Now()
	digest := sha256.Sum256([]byte("digest of " + id))
	tx := &airlock.StepUp{ID: id, SessionID: f.session.ID, UserID: f.alice.ID, DeviceID: f.laptop.ID, Action: "payments.transfer",
		Resource: "payments", Params: []byte(`{"amount":"10"}`), ParamsDigest: []byte("pd"), DecisionID: "dec-" + id,
		Digest: digest[:], CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
	if err := f.h.store.CreateStepUp(f.h.ctx, tx); err != nil {
		t.Fatal(err)
	}
	return tx
}

// begin starts the ceremony of txID as session and returns its id and the
// options as a client sees them.
func (f *stepUpFixture) begin(t *testing.T, txID, session string) (string, []byte) {
	t.Helper()
	b, err := f.h.svc.BeginStepUp(f.h.ctx, txID, session, Meta{IP: "192.0.2.1"})
	if err != nil {
		t.Fatalf("BeginStepUp: %v", err)
	}
	return b.Ceremony, mustJSON(t, b)
}

// run begins and finishes a step-up of f.tx with a, as f.session.
func (f *stepUpFixture) run(t *testing.T, a *passkeytest.Authenticator, opts ...passkeytest.Option) (*StepUpResult, error) {
	t.Helper()
	id, opt := f.begin(t, f.tx.ID, f.session.ID)
	resp, err := a.Assert(testOrigin, opt, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return f.h.svc.FinishStepUp(f.h.ctx, id, resp, f.session.ID, Meta{IP: "192.0.2.1"})
}

func TestStepUpOK(t *testing.T) {
	f := newStepUp(t)
	h := f.h
	id, opt := f.begin(t, f.tx.ID, f.session.ID)

	// The options allow exactly alice's passkey on her laptop, require UV,
	// and the challenge is SHA-256(nonce ‖ digest) with the stored nonce.
	challenge := checkOptions(t, opt, f.auth.Credentials()[0].ID, "alice's laptop passkey")
	resp, err := f.auth.Assert(testOrigin, opt)
	if err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(10 * time.Second)
	res, err := h.svc.FinishStepUp(h.ctx, id, resp, f.session.ID, Meta{IP: "192.0.2.1"})
	if err != nil {
		t.Fatalf("FinishStepUp: %v", err)
	}
	if len(res.Proof) < 40 {
		t.Errorf("proof %q is too short", res.Proof)
	}
	got, err := h.store.FindStepUpByID(h.ctx, f.tx.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.ProofHash, ProofHash(res.Proof)) || !got.CompletedAt.Equal(h.clk.Now()) ||
		!got.ProofExpiresAt.Equal(h.clk.Now().Add(DefaultProofTTL)) || !bytes.Equal(got.CredentialID, f.auth.Credentials()[0].ID) {
		t.Errorf("stored transaction %+v does not record the proof", got)
	}
	if bytes.Contains(mustJSON(t, got), []byte(res.Proof)) {
		t.Error("the proof itself is stored")
	}
	sess, _ := h.store.FindSessionByID(h.ctx, f.session.ID)
	if !sess.LastUVAt.Equal(h.clk.Now()) {
		t.Errorf("session last_uv_at = %s, want the step-up time %s", sess.LastUVAt, h.clk.Now())
	}
	evs := h.aud.ofType("stepup.success")
	if len(evs) != 1 || evs[0].TransactionID != f.tx.ID || evs[0].DecisionID != f.tx.DecisionID || evs[0].SessionID != f.session.ID {
		t.Fatalf("stepup.success events: %+v", evs)
	}
	if evs[0].Details["params"] != string(f.tx.Params) || len(f.tx.Params) == 0 {
		t.Errorf("stepup.success records params %v, want what was confirmed %s", evs[0].Details["params"], f.tx.Params)
	}
	nonce, _ := b64dec(evs[0].Details["nonce"].(string))
	if want := b64(StepUpChallenge(nonce, f.tx.Digest)); challenge != want || evs[0].Details["challenge"] != want {
		t.Errorf("challenge %s (audited %v), want SHA-256(nonce ‖ digest) = %s", challenge, evs[0].Details["challenge"], want)
	}
	if len(h.aud.ofType("stepup.begin")) != 1 {
		t.Error("stepup.begin not audited")
	}

	// The same ceremony cannot be finished twice; the transaction cannot
	// be confirmed twice.
	_, err = h.svc.FinishStepUp(h.ctx, id, resp, f.session.ID, Meta{})
	wantErr(t, err, airlock.EUNAUTHORIZED, ReasonUnknownCeremony)
	_, err = h.svc.BeginStepUp(h.ctx, f.tx.ID, f.session.ID, Meta{})
	wantErr(t, err, airlock.ECONFLICT, ReasonTxCompleted)
}

func TestStepUpRefused(t *testing.T) {
	t.Run("fail-uv-cleared", func(t *testing.T) {
		f := newStepUp(t)
		_, err := f.run(t, f.auth, passkeytest.WithFlags(passkeytest.Flags{NoUserVerification: true}))
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonUVMissing)
		f.notCompleted(t)
		if n, _ := f.h.store.CountRiskEvents(f.h.ctx, f.alice.ID, airlock.RiskCeremonyFailure, time.Time{}); n != 1 {
			t.Errorf("failed step-up counted %d times as a risk event, want 1", n)
		}
		evs := f.h.aud.ofType("stepup.failure")
		if len(evs) != 1 || evs[0].Reason != string(ReasonUVMissing) || evs[0].TransactionID != f.tx.ID {
			t.Errorf("stepup.failure events: %+v", evs)
		}
	})

	t.Run("fail-credential-of-another-device", func(t *testing.T) {
		f := newStepUp(t)
		desktop := f.h.device("desktop", f.alice.ID)
		other := passkeytest.New()
		f.h.enrol(other, f.alice, desktop)
		_, err := f.run(t, other, passkeytest.WithCredential(other.Credentials()[0].ID))
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonWrongCredential)
		f.notCompleted(t)
	})

	t.Run("fail-credential-of-another-user", func(t *testing.T) {
		f := newStepUp(t)
		bob := f.h.user("bob", 0)
		bobDev := f.h.device("bob-laptop", bob.ID)
		other := passkeytest.New()
		f.h.enrol(other, bob, bobDev)
		_, err := f.run(t, other, passkeytest.WithCredential(other.Credentials()[0].ID))
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonWrongCredential)
		f.notCompleted(t)
	})

	t.Run("fail-another-session-begins", func(t *testing.T) {
		f := newStepUp(t)
		_, err := f.h.svc.BeginStepUp(f.h.ctx, f.tx.ID, "ses-mallory", Meta{})
		wantErr(t, err, airlock.EFORBIDDEN, ReasonWrongSession)
	})

	t.Run("fail-another-session-finishes", func(t *testing.T) {
		f := newStepUp(t)
		id, opt := f.begin(t, f.tx.ID, f.session.ID)
		resp, err := f.auth.Assert(testOrigin, opt)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.h.svc.FinishStepUp(f.h.ctx, id, resp, "ses-mallory", Meta{})
		wantErr(t, err, airlock.EFORBIDDEN, ReasonWrongSession)
		f.notCompleted(t)
	})

	t.Run("fail-expired-transaction", func(t *testing.T) {
		f := newStepUp(t)
		id, opt := f.begin(t, f.tx.ID, f.session.ID)
		resp, err := f.auth.Assert(testOrigin, opt)
		if err != nil {
			t.Fatal(err)
		}
		f.h.clk.Advance(5 * time.Minute)
		_, err = f.h.svc.FinishStepUp(f.h.ctx, id, resp, f.session.ID, Meta{})
		// The ceremony and the transaction expire together; either
		// refusal is right, and nothing is completed.
		if err == nil {
			t.Fatal("an expired step-up completed")
		}
		f.notCompleted(t)
		_, err = f.h.svc.BeginStepUp(f.h.ctx, f.tx.ID, f.session.ID, Meta{})
		wantErr(t, err, airlock.EEXPIRED, ReasonTxExpired)
	})

	t.Run("fail-unknown-transaction", func(t *testing.T) {
		f := newStepUp(t)
		_, err := f.h.svc.BeginStepUp(f.h.ctx, "txn-404", f.session.ID, Meta{})
		wantErr(t, err, airlock.ENOTFOUND, ReasonUnknownTransaction)
	})

	t.Run("fail-answer-for-another-challenge", func(t *testing.T) {
		f := newStepUp(t)
		other := f.newTx(t, "txn-2")
		_, opt2 := f.begin(t, other.ID, f.session.ID)
		ch, _ := b64dec(parseOptions(t, opt2).PublicKey.Challenge)
		// An assertion over txn-2's challenge presented to txn-1's ceremony.
		_, err := f.run(t, f.auth, passkeytest.WithChallenge(ch))
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonBadChallenge)
		f.notCompleted(t)
	})

	t.Run("fail-revoked-credential", func(t *testing.T) {
		f := newStepUp(t)
		id, opt := f.begin(t, f.tx.ID, f.session.ID)
		if err := f.h.store.RevokeCredential(f.h.ctx, f.auth.Credentials()[0].ID, f.h.clk.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := f.auth.Assert(testOrigin, opt)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.h.svc.FinishStepUp(f.h.ctx, id, resp, f.session.ID, Meta{})
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonCredentialRevoked)
		f.notCompleted(t)
		// And a new ceremony has nothing left to allow.
		_, err = f.h.svc.BeginStepUp(f.h.ctx, f.tx.ID, f.session.ID, Meta{})
		wantErr(t, err, airlock.EFORBIDDEN, ReasonNoCredential)
	})

	t.Run("fail-clone", func(t *testing.T) {
		f := newStepUp(t)
		// A login stores a non-zero sign count; the step-up's count does
		// not increase past it.
		if _, err := f.h.login(f.auth); err != nil {
			t.Fatal(err)
		}
		_, err := f.run(t, f.auth, passkeytest.KeepCounter())
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonClone)
		f.notCompleted(t)
		if n, _ := f.h.store.CountRiskEvents(f.h.ctx, f.alice.ID, airlock.RiskClone, time.Time{}); n != 1 {
			t.Errorf("clone recorded %d times as a risk event, want 1", n)
		}
		if len(f.h.aud.ofType("auth.clone_warning")) != 1 {
			t.Error("clone not audited")
		}
	})

	t.Run("fail-bad-signature", func(t *testing.T) {
		f := newStepUp(t)
		_, err := f.run(t, f.auth, passkeytest.WithBadSignature())
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonBadSignature)
		f.notCompleted(t)
	})
}

func (f *stepUpFixture) notCompleted(t *testing.T) {
	t.Helper()
	got, err := f.h.store.FindStepUpByID(f.h.ctx, f.tx.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.IsCompleted() || len(got.ProofHash) != 0 {
		t.Errorf("transaction completed after a refused step-up: %+v", got)
	}
	sess, _ := f.h.store.FindSessionByID(f.h.ctx, f.session.ID)
	if !sess.LastUVAt.Equal(f.session.LastUVAt) {
		t.Errorf("a refused step-up refreshed last_uv_at to %s", sess.LastUVAt)
	}
}
