package recovery

import (
	"testing"
	"time"

	"airlock"
	"airlock/elevate"
	"airlock/passkey"
	"airlock/passkey/passkeytest"
)

// TestCancelBySubject: during the cool-down the subject cancels with a
// still-valid passkey, without a session; the case is cancelled, audited
// and the subject notified.
func TestCancelBySubject(t *testing.T) {
	h := newHarness(t, nil)
	o := h.open("sam")
	h.mustApprove(h.p("olga"), o.Case.ID)
	h.mustApprove(h.p("oscar"), o.Case.ID)
	h.clk.Advance(time.Hour)
	c, err := h.cancel(o.Case.ID, h.p("sam").auth)
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != airlock.RecoveryCancelled || c.ResolvedBy != "u-sam" {
		t.Fatalf("case %+v", c)
	}
	e := h.auditOf("recovery.cancelled")
	if len(e) != 1 || e[0].Outcome != airlock.OutcomeSuccess || e[0].Details["by_subject"] != true || e[0].Actor != "u-sam" {
		t.Fatalf("audit %+v", e)
	}
	if len(h.notices("u-sam", NotifyCancelled)) != 1 {
		t.Fatal("no cancel notice")
	}
	h.clk.Advance(DefaultCoolDown[0])
	_, _, err = h.svc.Claim(h.ctx, o.Secret, "d-sam-laptop", meta)
	wantErr(t, err, airlock.ECONFLICT, ReasonNotClaimable)
	// A cancelled case cannot be cancelled again.
	_, err = h.svc.BeginCancel(h.ctx, o.Case.ID, meta)
	wantErr(t, err, airlock.ECONFLICT, ReasonNotCancellable)
}

// TestCancelRefused: a revoked passkey, another user's passkey, a revoked
// device, UV cleared, a ceremony of another case, a case changed since
// begin, a completed case.
func TestCancelRefused(t *testing.T) {
	h := newHarness(t, nil)
	sam := h.p("sam")
	o := h.open("sam")
	id := o.Case.ID

	// Another user's passkey (offered nowhere in the options): nora's.
	b, err := h.svc.BeginCancel(h.ctx, id, meta)
	if err != nil {
		t.Fatal(err)
	}
	nc := h.p("nora").auth.Credentials()[0]
	resp, err := h.p("nora").auth.Assert(testOrigin, mustJSON(t, b), passkeytest.WithCredential(nc.ID))
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.svc.FinishCancel(h.ctx, b.Ceremony, resp, meta)
	wantErr(t, err, airlock.EUNAUTHORIZED, Reason(passkey.ReasonWrongCredential))

	// UV cleared.
	_, err = h.cancel(id, sam.auth, passkeytest.WithFlags(passkeytest.Flags{NoUserVerification: true}))
	wantErr(t, err, airlock.EUNAUTHORIZED, Reason(passkey.ReasonUVMissing))

	// An assertion over another case's challenge.
	other := h.open("tess").Case.ID
	bA, _ := h.svc.BeginCancel(h.ctx, id, meta)
	bB, _ := h.svc.BeginCancel(h.ctx, other, meta)
	respB, _ := h.p("tess").auth.Assert(testOrigin, mustJSON(t, bB))
	_, err = h.svc.FinishCancel(h.ctx, bA.Ceremony, respB, meta)
	if err == nil {
		t.Fatal("another case's assertion cancelled this one")
	}

	// The case changed since begin (a device fixed at claim changes its
	// digest): a ceremony begun before is refused.
	b, _ = h.svc.BeginCancel(h.ctx, id, meta)
	c := h.rcase(id)
	c.DeviceID = "d-sam-laptop"
	if err := h.store.UpdateRecoveryCase(h.ctx, c); err != nil {
		t.Fatal(err)
	}
	resp, _ = sam.auth.Assert(testOrigin, mustJSON(t, b))
	_, err = h.svc.FinishCancel(h.ctx, b.Ceremony, resp, meta)
	wantErr(t, err, airlock.EUNAUTHORIZED, Reason(passkey.ReasonRequestBinding))

	// Replay of a ceremony.
	_, err = h.svc.FinishCancel(h.ctx, b.Ceremony, resp, meta)
	wantErr(t, err, airlock.EUNAUTHORIZED, Reason(passkey.ReasonUnknownCeremony))

	// A revoked passkey: begun while valid, revoked before finish.
	b, _ = h.svc.BeginCancel(h.ctx, id, meta)
	resp, _ = sam.auth.Assert(testOrigin, mustJSON(t, b))
	if err := h.store.RevokeCredential(h.ctx, sam.auth.Credentials()[0].ID, h.clk.Now()); err != nil {
		t.Fatal(err)
	}
	_, err = h.svc.FinishCancel(h.ctx, b.Ceremony, resp, meta)
	wantErr(t, err, airlock.EUNAUTHORIZED, Reason(passkey.ReasonCredentialRevoked))
	// With no valid passkey left there is nothing to begin with.
	_, err = h.svc.BeginCancel(h.ctx, id, meta)
	wantErr(t, err, airlock.EFORBIDDEN, Reason(passkey.ReasonNoCredential))

	// A revoked device: tess's passkey on a revoked laptop.
	tess := h.p("tess")
	d, _ := h.store.FindDeviceByID(h.ctx, tess.dev.ID)
	b, _ = h.svc.BeginCancel(h.ctx, other, meta)
	d.Trust = airlock.TrustRevoked
	if err := h.store.UpdateDevice(h.ctx, d); err != nil {
		t.Fatal(err)
	}
	resp, _ = tess.auth.Assert(testOrigin, mustJSON(t, b))
	_, err = h.svc.FinishCancel(h.ctx, b.Ceremony, resp, meta)
	wantErr(t, err, airlock.EFORBIDDEN, Reason(passkey.ReasonDeviceRevoked))

	if h.rcase(id).Status != airlock.RecoveryPending || h.rcase(other).Status != airlock.RecoveryPending {
		t.Fatal("a refused cancel changed a case")
	}
	if n := len(h.auditOf("recovery.cancelled")); n < 6 {
		t.Fatalf("%d refusals audited", n)
	}
}

// TestCancelAfterCompletion: a completed case cannot be cancelled.
func TestCancelAfterCompletion(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.KeepOldCredentials = true })
	o := h.cooled()
	h.refresh(h.p("sam"))
	secret, _, err := h.svc.Claim(h.ctx, o.Secret, "d-sam-laptop", meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.enrol(secret, passkeytest.New()); err != nil {
		t.Fatal(err)
	}
	_, err = h.svc.BeginCancel(h.ctx, o.Case.ID, meta)
	wantErr(t, err, airlock.ECONFLICT, ReasonNotCancellable)
}

// TestClaimRefused: wrong secret, before the cool-down, wrong device
// (another owner's, shared, untrusted, non-compliant, not the one fixed
// at opening), a second claim while the token is live.
func TestClaimRefused(t *testing.T) {
	h := newHarness(t, nil)
	o := h.cooled()
	h.refresh(h.p("sam"))
	_, _, err := h.svc.Claim(h.ctx, "not-the-secret", "d-sam-laptop", meta)
	wantErr(t, err, airlock.ENOTFOUND, ReasonUnknownCase)
	shared := h.newDevice("kiosk", airlock.SharedOwner)
	untrusted := h.newDevice("sam-new", "u-sam")
	untrusted.Trust = airlock.TrustPending
	if err := h.store.UpdateDevice(h.ctx, untrusted); err != nil {
		t.Fatal(err)
	}
	stale := h.newDevice("sam-old", "u-sam")
	stale.Posture.DiskEncrypted = false
	if err := h.store.UpdateDevice(h.ctx, stale); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dev    string
		code   string
		reason Reason
	}{
		{"", airlock.EINVALID, ReasonWrongDevice},
		{"d-none", airlock.EINVALID, ReasonWrongDevice},
		{"d-nora-laptop", airlock.EFORBIDDEN, ReasonWrongDevice},
		{shared.ID, airlock.EFORBIDDEN, ReasonWrongDevice},
		{untrusted.ID, airlock.EFORBIDDEN, ReasonDeviceUntrusted},
		{stale.ID, airlock.EFORBIDDEN, ReasonDeviceNonCompliant},
	} {
		_, _, err := h.svc.Claim(h.ctx, o.Secret, tc.dev, meta)
		wantErr(t, err, tc.code, tc.reason)
	}
	if c := h.rcase(o.Case.ID); c.Status != airlock.RecoveryCoolingDown || c.EnrolTokenID != "" {
		t.Fatalf("a refused claim changed the case: %+v", c)
	}
	secret, tok, err := h.svc.Claim(h.ctx, o.Secret, "d-sam-laptop", meta)
	if err != nil || secret == "" || tok.Purpose != airlock.PurposeRecovery || tok.DeviceID != "d-sam-laptop" || tok.CreatedBy != passkey.SystemIssuer {
		t.Fatalf("claim: %+v %v", tok, err)
	}
	if c := h.rcase(o.Case.ID); c.Status != airlock.RecoveryReleased || c.EnrolTokenID != tok.ID || c.DeviceID != "d-sam-laptop" {
		t.Fatalf("case %+v", c)
	}
	_, _, err = h.svc.Claim(h.ctx, o.Secret, "d-sam-laptop", meta)
	wantErr(t, err, airlock.ECONFLICT, ReasonTokenLive)
	// Once the token expired unused, a new claim replaces it; the old one
	// completes nothing.
	h.clk.Advance(passkey.DefaultTokenTTL + time.Second)
	h.refresh(h.p("sam"))
	secret2, tok2, err := h.svc.Claim(h.ctx, o.Secret, "d-sam-laptop", meta)
	if err != nil || tok2.ID == tok.ID {
		t.Fatalf("re-claim: %v", err)
	}
	if _, err := h.enrol(secret, passkeytest.New()); err == nil {
		t.Fatal("the expired token enrolled")
	}
	_ = secret2
	if n := len(h.notices("u-sam", NotifyReleased)); n != 2 {
		t.Fatalf("%d release notices", n)
	}

	// A help-desk case bound to a device at opening takes no other.
	hal := h.p("hal").sub()
	ho, err := h.svc.Open(h.ctx, Open{Subject: "tess", Reason: "called", DeviceID: "d-tess-laptop", Opener: &hal}, meta)
	if err != nil {
		t.Fatal(err)
	}
	h.refresh(h.p("tina"))
	h.mustApprove(h.p("tina"), ho.Case.ID)
	h.clk.Advance(DefaultCoolDown[1] + time.Second)
	other := h.newDevice("tess-2", "u-tess")
	_, _, err = h.svc.Claim(h.ctx, ho.Secret, other.ID, meta)
	wantErr(t, err, airlock.EFORBIDDEN, ReasonWrongDevice)
	h.refresh(h.p("tess"))
	if _, _, err := h.svc.Claim(h.ctx, ho.Secret, "", meta); err != nil {
		t.Fatal(err)
	}
}

// TestComplete: the whole path — a real recovery enrolment through
// passkey.FinishEnrol revokes the old passkeys (a login with one now
// fails), ends the sessions and grants, records the risk signal, completes
// the case; every step is audited.
func TestComplete(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CoolDown[0] = 30 * time.Minute })
	sam := h.p("sam")
	// A grant of sam's, through a real elevation request.
	_, g, err := h.el.Request(h.ctx, sam.sub(), elevate.Ask{Scope: "viewer@grafana", Duration: 2 * time.Hour, Reason: "dashboards"})
	if err != nil || g == nil {
		t.Fatalf("grant: %v", err)
	}
	o := h.cooled()
	h.refresh(sam)
	secret, _, err := h.svc.Claim(h.ctx, o.Secret, "d-sam-laptop", meta)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := h.store.CountRiskEvents(h.ctx, "u-sam", airlock.RiskRecovery, time.Time{}); n != 0 {
		t.Fatalf("risk before: %d", n)
	}
	newAuth := passkeytest.New()
	en, err := h.enrol(secret, newAuth)
	if err != nil {
		t.Fatal(err)
	}
	c := h.rcase(o.Case.ID)
	if c.Status != airlock.RecoveryCompleted || c.ResolvedBy != "u-sam" {
		t.Fatalf("case %+v", c)
	}
	old, err := h.store.FindCredentialByID(h.ctx, sam.auth.Credentials()[0].ID)
	if err != nil || !old.IsRevoked() {
		t.Fatalf("old passkey not revoked: %v", err)
	}
	if cur, _ := h.store.FindCredentialByID(h.ctx, en.Credential.ID); cur.IsRevoked() {
		t.Fatal("the new passkey was revoked")
	}
	// A login with the old passkey fails; with the new one it works.
	b, err := h.pk.BeginLogin(h.ctx, meta)
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := sam.auth.Assert(testOrigin, mustJSON(t, b))
	_, err = h.pk.FinishLogin(h.ctx, b.Ceremony, resp, meta)
	if passkey.ReasonOf(err) != passkey.ReasonCredentialRevoked {
		t.Fatalf("old passkey login: %v", err)
	}
	b, _ = h.pk.BeginLogin(h.ctx, meta)
	resp, _ = newAuth.Assert(testOrigin, mustJSON(t, b))
	if lr, err := h.pk.FinishLogin(h.ctx, b.Ceremony, resp, meta); err != nil || lr.User.ID != "u-sam" {
		t.Fatalf("new passkey login: %v", err)
	}
	s, err := h.store.FindSessionByID(h.ctx, sam.sess.ID)
	if err != nil || s.EndedAt.IsZero() {
		t.Fatalf("session not ended: %v", err)
	}
	if gg, _ := h.store.FindGrantByID(h.ctx, g.ID); gg.EndedAt.IsZero() {
		t.Fatal("grant not ended")
	}
	if n, _ := h.store.CountRiskEvents(h.ctx, "u-sam", airlock.RiskRecovery, time.Time{}); n != 1 {
		t.Fatalf("risk events %d", n)
	}
	want := []string{"recovery.opened", "recovery.approved", "recovery.approved", "recovery.quorum_met", "recovery.released", "recovery.completed"}
	got := h.auditTypes("recovery.")
	if len(got) != len(want) {
		t.Fatalf("audit %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("audit %v, want %v", got, want)
		}
	}
	if rv := h.auditOf("credential.revoked"); len(rv) != 1 || rv[0].Reason != EndRecovered {
		t.Fatalf("credential.revoked %+v", rv)
	}
	if len(h.notices("u-sam", NotifyCompleted)) != 1 {
		t.Fatal("no completion notice")
	}
}

// TestCompleteKeepOld: with KeepOldCredentials the old passkey stays.
func TestCompleteKeepOld(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.KeepOldCredentials = true })
	o := h.cooled()
	h.refresh(h.p("sam"))
	secret, _, err := h.svc.Claim(h.ctx, o.Secret, "d-sam-laptop", meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.enrol(secret, passkeytest.New()); err != nil {
		t.Fatal(err)
	}
	if old, _ := h.store.FindCredentialByID(h.ctx, h.p("sam").auth.Credentials()[0].ID); old.IsRevoked() {
		t.Fatal("old passkey revoked")
	}
	if h.rcase(o.Case.ID).Status != airlock.RecoveryCompleted {
		t.Fatal("not completed")
	}
}

// TestCompleteRollback: when the completion fails (its record cannot be
// written, or the case was cancelled after the claim) the new passkey is
// rolled back; after a failed completion the case may be claimed again.
func TestCompleteRollback(t *testing.T) {
	h := newHarness(t, nil)
	o := h.cooled()
	h.refresh(h.p("sam"))
	secret, _, err := h.svc.Claim(h.ctx, o.Secret, "d-sam-laptop", meta)
	if err != nil {
		t.Fatal(err)
	}
	h.aud.failOn("recovery.completed")
	a := passkeytest.New()
	if _, err := h.enrol(secret, a); passkey.ReasonOf(err) == "" || err == nil {
		t.Fatalf("enrol: %v", err)
	}
	if cr, _ := h.store.FindCredentialByID(h.ctx, a.Credentials()[0].ID); cr == nil || !cr.IsRevoked() {
		t.Fatal("the new passkey survived a failed completion")
	}
	if c := h.rcase(o.Case.ID); c.Status != airlock.RecoveryReleased {
		t.Fatalf("status %s", c.Status)
	}
	h.aud.failOn("")
	secret, _, err = h.svc.Claim(h.ctx, o.Secret, "d-sam-laptop", meta)
	if err != nil {
		t.Fatalf("re-claim after a failed completion: %v", err)
	}
	// The case is aborted by an officer after the claim: the token
	// completes nothing.
	h.refresh(h.p("olga"))
	if _, err := h.svc.Abort(h.ctx, o.Case.ID, h.p("olga").sub(), "caller failed a second check", meta); err != nil {
		t.Fatal(err)
	}
	a = passkeytest.New()
	_, err = h.enrol(secret, a)
	wantErr(t, err, airlock.ECONFLICT, ReasonNotClaimable)
	if cr, _ := h.store.FindCredentialByID(h.ctx, a.Credentials()[0].ID); !cr.IsRevoked() {
		t.Fatal("the new passkey of a cancelled case survived")
	}
}

// TestSweep: cases past their life expire, audited; final ones are left.
func TestSweep(t *testing.T) {
	h := newHarness(t, nil)
	a := h.open("sam").Case
	b := h.open("tess").Case
	if _, err := h.svc.Deny(h.ctx, b.ID, h.p("olga").sub(), "no", meta); err != nil {
		t.Fatal(err)
	}
	if n, err := h.svc.Sweep(h.ctx); err != nil || n != 0 {
		t.Fatalf("early sweep %d %v", n, err)
	}
	h.clk.Advance(DefaultCaseTTL)
	n, err := h.svc.Sweep(h.ctx)
	if err != nil || n != 1 {
		t.Fatalf("sweep %d %v", n, err)
	}
	if h.rcase(a.ID).Status != airlock.RecoveryExpired || h.rcase(b.ID).Status != airlock.RecoveryDenied {
		t.Fatal("wrong statuses")
	}
	if e := h.auditOf("recovery.expired"); len(e) != 1 || e[0].Details["case_id"] != a.ID || e[0].Actor != "system" {
		t.Fatalf("audit %+v", e)
	}
}
