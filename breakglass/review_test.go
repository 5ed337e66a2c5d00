package breakglass

import (
	"testing"
	"time"

	"airlock"
	"airlock/decide"
	"airlock/passkey"
	"airlock/passkey/passkeytest"
)

// TestBreakGlassReview: who may review, what must hold, and that only the
// review unlocks the account.
func TestBreakGlassReview(t *testing.T) {
	const notes = "INC-7: justified; on-call lead confirmed by phone"
	h := newHarness(t, nil)
	_, sess := h.mustUse(h.svc)
	id := sess.Event.ID
	root := h.people["root"]

	t.Run("fail-not-ended", func(t *testing.T) {
		_, err := h.svc.BeginReview(h.ctx, id, root.sub(), notes, meta)
		wantErr(t, err, airlock.EINVALID, ReasonNotEnded)
	})
	if err := h.svc.EndEvent(h.ctx, id, root.sub(), "ended by the reviewer", meta); err != nil {
		t.Fatal(err)
	}
	bgAsAdmin := *h.bg
	bgAsAdmin.Roles = []string{airlock.RoleAdmin}
	cases := []struct {
		name   string
		by     decide.Subject
		notes  string
		code   string
		reason passkey.Reason
	}{
		{"fail-no-role", h.people["alice"].sub(), notes, airlock.EFORBIDDEN, ReasonReviewer},
		{"fail-tier-1-session", h.people["ops"].sub(), notes, airlock.EFORBIDDEN, ReasonReviewer},
		{"fail-the-account-itself", decide.Subject{User: &bgAsAdmin, Session: root.sess, Device: root.dev}, notes, airlock.EFORBIDDEN, ReasonReviewer},
		{"fail-no-session", decide.Subject{User: root.user}, notes, airlock.EUNAUTHORIZED, ReasonReviewer},
		{"fail-no-notes", root.sub(), " ", airlock.EINVALID, ReasonJustification},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := h.svc.BeginReview(h.ctx, id, c.by, c.notes, meta)
			wantErr(t, err, c.code, c.reason)
		})
	}
	t.Run("fail-other-notes-at-finish", func(t *testing.T) {
		b, err := h.svc.BeginReview(h.ctx, id, root.sub(), notes, meta)
		if err != nil {
			t.Fatal(err)
		}
		resp, _ := root.auth.Assert(testOrigin, mustJSON(t, b))
		_, err = h.svc.FinishReview(h.ctx, b.Ceremony, resp, root.sub(), "nothing to see", meta)
		wantErr(t, err, airlock.EUNAUTHORIZED, passkey.ReasonRequestBinding)
	})
	t.Run("fail-uv-missing", func(t *testing.T) {
		b, err := h.svc.BeginReview(h.ctx, id, root.sub(), notes, meta)
		if err != nil {
			t.Fatal(err)
		}
		resp, _ := root.auth.Assert(testOrigin, mustJSON(t, b), passkeytest.WithFlags(passkeytest.Flags{NoUserVerification: true}))
		_, err = h.svc.FinishReview(h.ctx, b.Ceremony, resp, root.sub(), notes, meta)
		wantErr(t, err, airlock.EUNAUTHORIZED, passkey.ReasonUVMissing)
	})
	if ev, _ := h.sqlite.FindBreakGlassEventByID(h.ctx, id); ev.Reviewed() {
		t.Fatal("reviewed by a refused attempt")
	}
	_, err := h.svc.Begin(h.ctx, "bg", "again", meta)
	wantErr(t, err, airlock.EFORBIDDEN, ReasonLocked)

	ev, err := h.review(root, id, notes)
	if err != nil {
		t.Fatal(err)
	}
	if !ev.Reviewed() || ev.ReviewedBy != root.user.ID || ev.ReviewNotes != notes {
		t.Errorf("reviewed event %+v", ev)
	}
	if r := h.audited("breakglass.reviewed"); len(r) != 1 || r[0].Actor != root.user.ID || r[0].Details["notes"] != notes {
		t.Errorf("review audit %+v", r)
	}
	_, err = h.review(root, id, notes)
	if airlock.ErrorCode(err) != airlock.ECONFLICT {
		t.Errorf("second review: %v, want ECONFLICT", err)
	}
	// Without RequireReseal the same passkey may be used again.
	if c, _ := h.sqlite.FindCredentialByID(h.ctx, h.bgCred.ID); c.IsRevoked() {
		t.Error("passkey revoked without RequireReseal")
	}
	h.mustUse(h.svc)

	evs, err := h.svc.List(h.ctx, root.sub(), true)
	if err != nil || len(evs) != 1 || evs[0].ID == id {
		t.Errorf("unreviewed list %v %+v", err, evs)
	}
	if _, err := h.svc.List(h.ctx, h.people["alice"].sub(), false); airlock.ErrorCode(err) != airlock.EFORBIDDEN {
		t.Errorf("List by a non-reviewer: %v", err)
	}
}

// TestBreakGlassReviewExpiredUse: a use past its end needs no explicit end
// before the review.
func TestBreakGlassReviewExpiredUse(t *testing.T) {
	h := newHarness(t, nil)
	_, sess := h.mustUse(h.svc)
	h.clk.Advance(31 * time.Minute)
	ev, err := h.review(h.people["root"], sess.Event.ID, "expired unused")
	if err != nil {
		t.Fatal(err)
	}
	if ev.EndReason != "expired" || !ev.Reviewed() {
		t.Errorf("event %+v", ev)
	}
}

// TestBreakGlassReseal: with RequireReseal the review revokes the used
// passkey — also for the offline path (the local revocation list) — and
// the account is usable again only with a newly enrolled one.
func TestBreakGlassReseal(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RequireReseal = true })
	_, sess := h.mustUse(h.svc)
	if err := h.svc.End(h.ctx, sess, "done", meta); err != nil {
		t.Fatal(err)
	}
	if _, err := h.review(h.people["root"], sess.Event.ID, "reviewed; reseal"); err != nil {
		t.Fatal(err)
	}
	if c, _ := h.sqlite.FindCredentialByID(h.ctx, h.bgCred.ID); !c.IsRevoked() {
		t.Fatal("the used passkey was not revoked")
	}
	if r := h.audited("credential.revoked"); len(r) != 1 || r[0].Reason != "breakglass_reseal" {
		t.Errorf("revocation audit %+v", r)
	}
	_, err := h.svc.Begin(h.ctx, "bg", "again", meta)
	wantErr(t, err, airlock.EFORBIDDEN, passkey.ReasonNoCredential)
	// Offline, the static file still lists the old passkey: the local
	// revocation list keeps it dead.
	h.store.stopped.Store(true)
	_, err = h.svc.Begin(h.ctx, "bg", "again", meta)
	wantErr(t, err, airlock.EFORBIDDEN, passkey.ReasonNoCredential)
	h.store.stopped.Store(false)
	// A new sealed passkey: usable again.
	a2 := passkeytest.New()
	h.enrol(h.bg, a2, "bg-safe-2")
	if _, _, err := h.use(h.svc, "bg", a2, "second incident"); err != nil {
		t.Fatal(err)
	}
}
