package recovery

import (
	"testing"

	"airlock"
)

// TestGetList: officers, the help desk and admins see cases (with what
// they miss and whether the viewer may approve); others do not.
func TestGetList(t *testing.T) {
	h := newHarness(t, nil)
	id := h.open("sam").Case.ID
	h.mustApprove(h.p("olga"), id)
	for _, name := range []string{"nora", "sam"} {
		_, err := h.svc.Get(h.ctx, id, h.p(name).sub())
		wantErr(t, err, airlock.EFORBIDDEN, ReasonNotAllowed)
		_, err = h.svc.List(h.ctx, h.p(name).sub(), false)
		wantErr(t, err, airlock.EFORBIDDEN, ReasonNotAllowed)
	}
	v, err := h.svc.Get(h.ctx, id, h.p("oscar").sub())
	if err != nil || v.Missing != 1 || !v.CanApprove || len(v.Approvals) != 1 || v.Subject.ID != "u-sam" {
		t.Fatalf("oscar's view %+v %v", v, err)
	}
	v, err = h.svc.Get(h.ctx, id, h.p("olga").sub())
	if err != nil || v.CanApprove || v.WhyNot == "" {
		t.Fatalf("olga's view %+v %v", v, err)
	}
	v, err = h.svc.Get(h.ctx, id, h.p("hal").sub())
	if err != nil || v.CanApprove {
		t.Fatalf("hal's view %+v %v", v, err)
	}
	_, err = h.svc.Get(h.ctx, "rc_none", h.p("hal").sub())
	wantErr(t, err, airlock.ENOTFOUND, ReasonUnknownCase)
	if _, err := h.svc.Deny(h.ctx, h.open("tess").Case.ID, h.p("olga").sub(), "no", meta); err != nil {
		t.Fatal(err)
	}
	all, err := h.svc.List(h.ctx, h.p("root").sub(), false)
	if err != nil || len(all) != 2 {
		t.Fatalf("all %d %v", len(all), err)
	}
	pending, err := h.svc.List(h.ctx, h.p("hal").sub(), true)
	if err != nil || len(pending) != 1 || pending[0].ID != id {
		t.Fatalf("pending %v %v", pending, err)
	}
}

// TestStepAuditFailures: a claim whose release cannot be recorded leaves
// no usable token; a subject's cancel whose record fails is an error.
func TestStepAuditFailures(t *testing.T) {
	h := newHarness(t, nil)
	o := h.cooled()
	h.refresh(h.p("sam"))
	h.aud.failOn("recovery.released")
	_, _, err := h.svc.Claim(h.ctx, o.Secret, "d-sam-laptop", meta)
	if airlock.ErrorCode(err) != airlock.EUNAVAILABLE {
		t.Fatalf("claim: %v", err)
	}
	if c := h.rcase(o.Case.ID); c.Status != airlock.RecoveryCoolingDown || c.EnrolTokenID != "" {
		t.Fatalf("an unaudited release stands: %+v", c)
	}
	h.aud.failOn("recovery.cancelled")
	if _, err := h.cancel(o.Case.ID, h.p("sam").auth); airlock.ErrorCode(err) != airlock.EUNAVAILABLE {
		t.Fatalf("cancel: %v", err)
	}
	h.aud.failOn("recovery.denied")
	id := h.open("tess").Case.ID
	h.refresh(h.p("tina"))
	if _, err := h.svc.Deny(h.ctx, id, h.p("tina").sub(), "no", meta); airlock.ErrorCode(err) != airlock.EUNAVAILABLE {
		t.Fatalf("deny: %v", err)
	}
	if c := h.rcase(id); c.Status != airlock.RecoveryDenied {
		t.Fatalf("deny stored: %s", c.Status)
	}
}
