package recovery

import (
	"sync"
	"testing"
	"time"

	"airlock"
	"airlock/passkey"
	"airlock/passkey/passkeytest"
)

// TestApprovalRefused: every refused approver and ceremony, each audited
// "recovery.approval_refused" with its reason, and the case still pending
// with no approval stored.
func TestApprovalRefused(t *testing.T) {
	h := newHarness(t, nil)
	hal := h.p("hal").sub()
	o, err := h.svc.Open(h.ctx, Open{Subject: "sam", Reason: "called the desk", Opener: &hal}, meta)
	if err != nil {
		t.Fatal(err)
	}
	id := o.Case.ID
	// hal, the opener, is made an officer too: still refused as opener.
	h.p("hal").user.Roles = append(h.p("hal").user.Roles, RoleOfficer)
	// sam, the subject, is an officer too: still refused as subject.
	h.p("sam").user.Roles = []string{RoleOfficer}
	untrusted := h.newPerson("ulf", 0, []string{RoleOfficer}, false)
	untrusted.dev.Trust = airlock.TrustPending
	noncompliant := h.newPerson("nina", 0, []string{RoleOfficer}, false)
	noncompliant.dev.Posture.DiskEncrypted = false
	tier1sess := h.newPerson("tom", 0, []string{RoleOfficer}, false)
	tier1sess.sess.Tier = 1
	ended := h.newPerson("eve", 0, []string{RoleOfficer}, false)
	ended.sess.EndedAt = h.clk.Now()

	for _, tc := range []struct {
		who    *person
		code   string
		reason Reason
	}{
		{h.p("sam"), airlock.EFORBIDDEN, ReasonSelfApproval},
		{h.p("hal"), airlock.EFORBIDDEN, ReasonOpenerApproval},
		{h.p("nora"), airlock.EFORBIDDEN, ReasonNotOfficer},
		{h.p("root"), airlock.EFORBIDDEN, ReasonNotOfficer},
		{h.p("tina"), airlock.EFORBIDDEN, ReasonOfficerTier},
		{tier1sess, airlock.EFORBIDDEN, ReasonOfficerTier},
		{ended, airlock.EUNAUTHORIZED, ReasonSessionEnded},
		{untrusted, airlock.EFORBIDDEN, ReasonDeviceUntrusted},
		{noncompliant, airlock.EFORBIDDEN, ReasonDeviceNonCompliant},
		{h.p("syd"), airlock.EFORBIDDEN, Reason(passkey.ReasonNoCredential)},
	} {
		_, err := h.approve(tc.who, id)
		wantErr(t, err, tc.code, tc.reason)
		es := h.auditOf("recovery.approval_refused")
		if last := es[len(es)-1]; last.Reason != string(tc.reason) || last.Actor != tc.who.user.ID || last.Details["case_id"] != id {
			t.Fatalf("%s: audit %+v", tc.who.user.Name, last)
		}
	}
	// The verification note is required and checked.
	for _, v := range []string{"", "  ", "a\tb"} {
		_, err := h.svc.BeginApproval(h.ctx, id, h.p("olga").sub(), v, meta)
		wantErr(t, err, airlock.EINVALID, ReasonInvalidVerification)
	}
	_, err = h.svc.BeginApproval(h.ctx, "rc_nope", h.p("olga").sub(), note, meta)
	wantErr(t, err, airlock.ENOTFOUND, ReasonUnknownCase)
	if as, _ := h.store.ListRecoveryApprovals(h.ctx, id); len(as) != 0 || h.rcase(id).Status != airlock.RecoveryPending {
		t.Fatalf("approvals %d, status %s", len(as), h.rcase(id).Status)
	}
}

// TestApprovalCeremonyRefused: a replayed ceremony, an assertion made for
// another case, a verification note changed between begin and finish, UV
// cleared, another kind's ceremony, a case no longer pending.
func TestApprovalCeremonyRefused(t *testing.T) {
	h := newHarness(t, nil)
	id := h.open("sam").Case.ID
	other := h.open("tess").Case.ID
	olga := h.p("olga")

	// UV cleared.
	_, err := h.approve(olga, id, passkeytest.WithFlags(passkeytest.Flags{NoUserVerification: true}))
	wantErr(t, err, airlock.EUNAUTHORIZED, Reason(passkey.ReasonUVMissing))

	// The note changed between begin and finish.
	b, err := h.svc.BeginApproval(h.ctx, id, olga.sub(), note, meta)
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := olga.auth.Assert(testOrigin, mustJSON(t, b))
	_, err = h.svc.FinishApproval(h.ctx, b.Ceremony, resp, olga.sub(), note+" (edited)", meta)
	wantErr(t, err, airlock.EUNAUTHORIZED, Reason(passkey.ReasonRequestBinding))

	// An assertion over another case's challenge, sent to this ceremony.
	bA, _ := h.svc.BeginApproval(h.ctx, id, olga.sub(), note, meta)
	bB, _ := h.svc.BeginApproval(h.ctx, other, olga.sub(), note, meta)
	respB, _ := olga.auth.Assert(testOrigin, mustJSON(t, bB))
	_, err = h.svc.FinishApproval(h.ctx, bA.Ceremony, respB, olga.sub(), note, meta)
	wantErr(t, err, airlock.EUNAUTHORIZED, Reason(passkey.ReasonBadChallenge))

	// Replay: the successful ceremony cannot be used twice.
	b, _ = h.svc.BeginApproval(h.ctx, id, olga.sub(), note, meta)
	resp, _ = olga.auth.Assert(testOrigin, mustJSON(t, b))
	if _, err := h.svc.FinishApproval(h.ctx, b.Ceremony, resp, olga.sub(), note, meta); err != nil {
		t.Fatal(err)
	}
	_, err = h.svc.FinishApproval(h.ctx, b.Ceremony, resp, olga.sub(), note, meta)
	wantErr(t, err, airlock.EUNAUTHORIZED, Reason(passkey.ReasonUnknownCeremony))

	// A second approval by the same officer is refused at begin.
	_, err = h.approve(olga, id)
	wantErr(t, err, airlock.ECONFLICT, ReasonAlreadyApproved)

	// A ceremony of another kind (a holder cancel) does not approve.
	bc, err := h.svc.BeginCancel(h.ctx, other, meta)
	if err != nil {
		t.Fatal(err)
	}
	respc, _ := h.p("tess").auth.Assert(testOrigin, mustJSON(t, bc))
	_, err = h.svc.FinishApproval(h.ctx, bc.Ceremony, respc, h.p("oscar").sub(), note, meta)
	wantErr(t, err, airlock.EUNAUTHORIZED, Reason(passkey.ReasonWrongCeremony))

	// Another officer's session cannot finish olga's ceremony.
	b, _ = h.svc.BeginApproval(h.ctx, other, olga.sub(), note, meta)
	resp, _ = olga.auth.Assert(testOrigin, mustJSON(t, b))
	_, err = h.svc.FinishApproval(h.ctx, b.Ceremony, resp, h.p("oscar").sub(), note, meta)
	wantErr(t, err, airlock.EFORBIDDEN, Reason(passkey.ReasonWrongConfirmer))

	// Not pending: begun while pending, finished after a denial.
	b, _ = h.svc.BeginApproval(h.ctx, other, h.p("otto").sub(), note, meta)
	if _, err := h.svc.Deny(h.ctx, other, h.p("oscar").sub(), "could not verify", meta); err != nil {
		t.Fatal(err)
	}
	resp, _ = h.p("otto").auth.Assert(testOrigin, mustJSON(t, b))
	_, err = h.svc.FinishApproval(h.ctx, b.Ceremony, resp, h.p("otto").sub(), note, meta)
	wantErr(t, err, airlock.ECONFLICT, ReasonNotPending)
	_, err = h.approve(h.p("otto"), other)
	wantErr(t, err, airlock.ECONFLICT, ReasonNotPending)

	if as, _ := h.store.ListRecoveryApprovals(h.ctx, id); len(as) != 1 || as[0].ApproverID != "u-olga" || as[0].Verification != note {
		t.Fatalf("approvals %+v", as)
	}
	if as, _ := h.store.ListRecoveryApprovals(h.ctx, other); len(as) != 0 {
		t.Fatalf("approvals of the denied case: %d", len(as))
	}
}

// TestQuorum: tier 0 needs two distinct officers; at quorum the case cools
// down, the subject is notified (outbox row with the cancel URL) and the
// steps are audited; a claim before CoolDownUntil is refused.
func TestQuorum(t *testing.T) {
	h := newHarness(t, nil)
	o := h.open("sam")
	id := o.Case.ID
	c := h.mustApprove(h.p("olga"), id)
	if c.Status != airlock.RecoveryPending {
		t.Fatalf("after one: %s", c.Status)
	}
	if len(h.notices("u-sam", NotifyCoolDown)) != 0 {
		t.Fatal("notified before quorum")
	}
	h.clk.Advance(time.Minute)
	c = h.mustApprove(h.p("oscar"), id)
	if c.Status != airlock.RecoveryCoolingDown || !c.CoolDownUntil.Equal(h.clk.Now().Add(DefaultCoolDown[0])) {
		t.Fatalf("after two: %s until %s", c.Status, c.CoolDownUntil)
	}
	ns := h.notices("u-sam", NotifyCoolDown)
	if len(ns) != 1 || ns[0]["cancel_url"] != testOrigin+"/recover/cancel/"+id {
		t.Fatalf("cool-down notices %v", ns)
	}
	want := []string{"recovery.opened", "recovery.approved", "recovery.approved", "recovery.quorum_met"}
	if got := h.auditTypes("recovery."); len(got) != len(want) || got[3] != want[3] || got[1] != want[1] {
		t.Fatalf("audit %v", got)
	}
	if e := h.auditOf("recovery.approved")[0]; e.Details["verification"] != note || e.Actor != "u-olga" || e.Subject != "u-sam" {
		t.Fatalf("approved event %+v", e)
	}
	_, _, err := h.svc.Claim(h.ctx, o.Secret, "d-sam-laptop", meta)
	wantErr(t, err, airlock.EFORBIDDEN, ReasonCoolingDown)
	h.clk.Advance(DefaultCoolDown[0] - time.Second)
	_, _, err = h.svc.Claim(h.ctx, o.Secret, "d-sam-laptop", meta)
	wantErr(t, err, airlock.EFORBIDDEN, ReasonCoolingDown)
	_, err = h.approve(h.p("otto"), id)
	wantErr(t, err, airlock.ECONFLICT, ReasonNotPending)

	// A tier-1 case needs one officer; a tier-1 officer may approve it.
	tc := h.open("tess").Case
	h.refresh(h.p("tina"))
	if c := h.mustApprove(h.p("tina"), tc.ID); c.Status != airlock.RecoveryCoolingDown {
		t.Fatalf("tier 1: %s", c.Status)
	}
}

// TestQuorumSameOfficerTwice: one officer approving twice (a second
// session) still leaves the case pending.
func TestQuorumSameOfficerTwice(t *testing.T) {
	h := newHarness(t, nil)
	id := h.open("sam").Case.ID
	olga := h.p("olga")
	h.mustApprove(olga, id)
	olga.sess = h.newSession(olga, 0)
	_, err := h.approve(olga, id)
	wantErr(t, err, airlock.ECONFLICT, ReasonAlreadyApproved)
	if c := h.rcase(id); c.Status != airlock.RecoveryPending {
		t.Fatalf("status %s", c.Status)
	}
}

// TestQuorumConcurrent: two final approvals at once — both stored, one
// transition, one quorum_met record, one cool-down notice.
func TestQuorumConcurrent(t *testing.T) {
	for i := 0; i < 5; i++ {
		h := newHarness(t, func(c *Config) { c.Quorum = [airlock.MaxTier + 1]int{3, 1, 1} })
		id := h.open("sam").Case.ID
		h.mustApprove(h.p("olga"), id)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, name := range []string{"oscar", "otto"} {
			p := h.p(name)
			b, err := h.svc.BeginApproval(h.ctx, id, p.sub(), note, meta)
			if err != nil {
				t.Fatal(err)
			}
			resp, _ := p.auth.Assert(testOrigin, mustJSON(t, b))
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[j] = h.svc.FinishApproval(h.ctx, b.Ceremony, resp, p.sub(), note, meta)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if c := h.rcase(id); c.Status != airlock.RecoveryCoolingDown {
			t.Fatalf("status %s", c.Status)
		}
		if n := len(h.auditOf("recovery.quorum_met")); n != 1 {
			t.Fatalf("%d quorum_met records", n)
		}
		if n := len(h.notices("u-sam", NotifyCoolDown)); n != 1 {
			t.Fatalf("%d cool-down notices", n)
		}
	}
}

// TestDenyAndAbort: who may deny or abort, with a reason.
func TestDenyAndAbort(t *testing.T) {
	h := newHarness(t, nil)
	id := h.open("sam").Case.ID
	_, err := h.svc.Deny(h.ctx, id, h.p("nora").sub(), "no", meta)
	wantErr(t, err, airlock.EFORBIDDEN, ReasonNotOfficer)
	_, err = h.svc.Deny(h.ctx, id, h.p("olga").sub(), "", meta)
	wantErr(t, err, airlock.EINVALID, ReasonInvalidReason)
	_, err = h.svc.Abort(h.ctx, id, h.p("sam").sub(), "mine", meta)
	wantErr(t, err, airlock.EFORBIDDEN, ReasonNotAllowed)
	gone := h.newPerson("gus", 0, []string{RoleOfficer}, false)
	gone.sess.EndedAt = h.clk.Now()
	_, err = h.svc.Deny(h.ctx, id, gone.sub(), "no", meta)
	wantErr(t, err, airlock.EUNAUTHORIZED, ReasonSessionEnded)
	_, err = h.svc.Abort(h.ctx, id, gone.sub(), "no", meta)
	wantErr(t, err, airlock.EUNAUTHORIZED, ReasonSessionEnded)
	c, err := h.svc.Deny(h.ctx, id, h.p("olga").sub(), "could not verify the caller", meta)
	if err != nil || c.Status != airlock.RecoveryDenied || c.ResolvedBy != "u-olga" {
		t.Fatalf("deny: %+v %v", c, err)
	}
	_, err = h.svc.Deny(h.ctx, id, h.p("oscar").sub(), "again", meta)
	wantErr(t, err, airlock.ECONFLICT, ReasonNotPending)
	if len(h.notices("u-sam", NotifyCancelled)) != 1 {
		t.Fatal("subject not told of the denial")
	}

	hal := h.p("hal").sub()
	o, err := h.svc.Open(h.ctx, Open{Subject: "sam", Reason: "called", Opener: &hal}, meta)
	if err != nil {
		t.Fatal(err)
	}
	c, err = h.svc.Abort(h.ctx, o.Case.ID, hal, "opened by mistake", meta)
	if err != nil || c.Status != airlock.RecoveryCancelled || c.ResolvedBy != "u-hal" {
		t.Fatalf("abort: %+v %v", c, err)
	}
	types := h.auditTypes("recovery.")
	if !has(types, "recovery.denied") || !has(types, "recovery.cancelled") {
		t.Fatalf("audit %v", types)
	}
}

// TestApprovalAuditFailure: an approval whose record cannot be written is
// not stored.
func TestApprovalAuditFailure(t *testing.T) {
	h := newHarness(t, nil)
	id := h.open("sam").Case.ID
	h.aud.failOn("recovery.approved")
	if _, err := h.approve(h.p("olga"), id); airlock.ErrorCode(err) != airlock.EUNAVAILABLE {
		t.Fatalf("got %v", err)
	}
	if as, _ := h.store.ListRecoveryApprovals(h.ctx, id); len(as) != 0 {
		t.Fatal("an unaudited approval was stored")
	}
	h.aud.failOn("")
	h.mustApprove(h.p("olga"), id)
	h.aud.failOn("recovery.quorum_met")
	if _, err := h.approve(h.p("oscar"), id); airlock.ErrorCode(err) != airlock.EUNAVAILABLE {
		t.Fatalf("quorum record failure: %v", err)
	}
}
