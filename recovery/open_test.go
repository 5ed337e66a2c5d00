package recovery

import (
	"strings"
	"testing"
	"time"

	"airlock"
	"airlock/decide"
)

// TestOpenSelfService: a self-service open stores a pending case with the
// tier's quorum, hands out a secret that Status finds, audits
// "recovery.opened" and notifies the subject (with the cancel URL) and the
// officers who could approve it.
func TestOpenSelfService(t *testing.T) {
	h := newHarness(t, nil)
	o := h.open("sam")
	c := o.Case
	if c.Status != airlock.RecoveryPending || c.Required != 2 || c.Tier != 0 || c.Via != airlock.OpenedBySelf || c.OpenedBy != "u-sam" {
		t.Fatalf("case %+v", c)
	}
	if len(o.Secret) != 43 || strings.Contains(string(c.SecretHash), o.Secret) {
		t.Fatalf("secret %q", o.Secret)
	}
	got, err := h.svc.Status(h.ctx, o.Secret)
	if err != nil || got.ID != c.ID {
		t.Fatalf("Status: %v %v", got, err)
	}
	if _, err := h.svc.Status(h.ctx, o.Secret+"x"); airlock.ErrorCode(err) != airlock.ENOTFOUND {
		t.Fatalf("Status(other): %v", err)
	}
	if ts := h.auditTypes("recovery."); len(ts) != 1 || ts[0] != "recovery.opened" {
		t.Fatalf("audit %v", ts)
	}
	ns := h.notices("u-sam", NotifyOpened)
	if len(ns) != 1 || ns[0]["cancel_url"] != testOrigin+"/recover/cancel/"+c.ID || ns[0]["ip"] != "192.0.2.9" {
		t.Fatalf("subject notices %v", ns)
	}
	// Tier-0 officers only (tina is tier 1), never the subject.
	for name, want := range map[string]int{"olga": 1, "oscar": 1, "otto": 1, "syd": 1, "tina": 0, "sam": 0, "nora": 0} {
		if n := len(h.notices("u-"+name, NotifyToOfficers)); n != want {
			t.Errorf("%s got %d officer notices, want %d", name, n, want)
		}
	}
	tess := h.open("tess")
	if tess.Case.Required != 1 || tess.Case.Tier != 1 {
		t.Fatalf("tier-1 case %+v", tess.Case)
	}
}

// TestOpenNeutral: an unknown, break-glass or disabled account, a subject
// over its daily limit or with a live case get the same answer as a real
// open (a secret, no error) and nothing is stored but the audit record.
func TestOpenNeutral(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.OpensPerDay = 2 })
	h.newUser("glass", 0, airlock.UserBreakGlass, nil)
	dis := h.newUser("dis", 1, airlock.UserEmployee, nil)
	dis.Disabled = true
	if err := h.store.UpdateUser(h.ctx, dis); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ account, reason string }{
		{"nobody", string(ReasonUnknownAccount)},
		{"glass", string(ReasonBreakGlass)},
		{"dis", string(ReasonUserDisabled)},
	} {
		o, err := h.svc.Open(h.ctx, Open{Subject: tc.account, Reason: "lost it"}, meta)
		if err != nil || o.Case != nil || len(o.Secret) != 43 {
			t.Fatalf("%s: %+v %v", tc.account, o, err)
		}
		if _, err := h.svc.Status(h.ctx, o.Secret); airlock.ErrorCode(err) != airlock.ENOTFOUND {
			t.Fatalf("%s: the neutral secret finds something: %v", tc.account, err)
		}
		es := h.auditOf("recovery.open_refused")
		if last := es[len(es)-1]; last.Reason != tc.reason || last.Details["account"] != tc.account {
			t.Fatalf("%s: audit %+v", tc.account, last)
		}
	}
	// One live case per subject; the per-day limit (2) counts every open.
	first := h.open("sam")
	o, err := h.svc.Open(h.ctx, Open{Subject: "sam", Reason: "again"}, meta)
	if err != nil || o.Case != nil {
		t.Fatalf("second open: %+v %v", o, err)
	}
	if es := h.auditOf("recovery.open_refused"); es[len(es)-1].Reason != string(ReasonCaseOpen) {
		t.Fatalf("audit %+v", es[len(es)-1])
	}
	if _, err := h.svc.Abort(h.ctx, first.Case.ID, h.p("olga").sub(), "duplicate", meta); err != nil {
		t.Fatal(err)
	}
	o, err = h.svc.Open(h.ctx, Open{Subject: "sam", Reason: "third"}, meta)
	if err != nil || o.Case != nil {
		t.Fatalf("over the limit: %+v %v", o, err)
	}
	if es := h.auditOf("recovery.open_refused"); es[len(es)-1].Reason != string(ReasonRateLimited) {
		t.Fatalf("audit %+v", es[len(es)-1])
	}
	cs, err := h.store.ListRecoveryCases(h.ctx, airlock.RecoveryCaseFilter{})
	if err != nil || len(cs) != 1 {
		t.Fatalf("cases %d %v", len(cs), err)
	}
	// The next day the limit is fresh.
	h.clk.Advance(24 * time.Hour)
	h.open("sam")
}

// TestOpenInput: a missing or malformed reason or account is EINVALID for
// everybody (it says nothing about the account); a self-service open
// cannot fix a device.
func TestOpenInput(t *testing.T) {
	h := newHarness(t, nil)
	for _, o := range []Open{
		{Subject: "sam", Reason: ""},
		{Subject: "sam", Reason: "   "},
		{Subject: "sam", Reason: "line\nbreak"},
		{Subject: "sam", Reason: "rtl \u202e override"},
		{Subject: "sam", Reason: strings.Repeat("x", MaxReasonLen+1)},
		{Subject: "sam", Reason: "bad utf8 \xff"},
		{Subject: "", Reason: "lost"},
		{Subject: "sam", Reason: "lost", DeviceID: "d-sam-laptop"},
	} {
		if _, err := h.svc.Open(h.ctx, o, meta); airlock.ErrorCode(err) != airlock.EINVALID {
			t.Errorf("%+v: %v", o, err)
		}
	}
	if cs, _ := h.store.ListRecoveryCases(h.ctx, airlock.RecoveryCaseFilter{}); len(cs) != 0 {
		t.Fatalf("%d cases stored", len(cs))
	}
}

// TestOpenHelpdesk: the help desk (or an admin) opens for someone else,
// optionally fixing the device; others are refused; refusals are errors.
func TestOpenHelpdesk(t *testing.T) {
	h := newHarness(t, nil)
	hal := h.p("hal").sub()
	for _, name := range []string{"nora", "olga"} {
		sub := h.p(name).sub()
		_, err := h.svc.Open(h.ctx, Open{Subject: "sam", Reason: "called the desk", Opener: &sub}, meta)
		wantErr(t, err, airlock.EFORBIDDEN, ReasonNotHelpdesk)
	}
	_, err := h.svc.Open(h.ctx, Open{Subject: "nobody", Reason: "called", Opener: &hal}, meta)
	wantErr(t, err, airlock.ENOTFOUND, ReasonUnknownAccount)
	_, err = h.svc.Open(h.ctx, Open{Subject: "sam", Reason: "called", DeviceID: "d-nora-laptop", Opener: &hal}, meta)
	wantErr(t, err, airlock.EFORBIDDEN, ReasonWrongDevice)
	_, err = h.svc.Open(h.ctx, Open{Subject: "sam", Reason: "called", DeviceID: "d-none", Opener: &hal}, meta)
	wantErr(t, err, airlock.EINVALID, ReasonWrongDevice)
	bad := decide.Subject{User: h.p("hal").user}
	if _, err := h.svc.Open(h.ctx, Open{Subject: "sam", Reason: "x", Opener: &bad}, meta); airlock.ErrorCode(err) != airlock.EUNAUTHORIZED {
		t.Fatalf("no session: %v", err)
	}

	o, err := h.svc.Open(h.ctx, Open{Subject: "sam", Reason: "called the desk", DeviceID: "d-sam-laptop", Opener: &hal}, meta)
	if err != nil {
		t.Fatal(err)
	}
	if o.Case.Via != airlock.OpenedByHelpdesk || o.Case.OpenedBy != "u-hal" || o.Case.DeviceID != "d-sam-laptop" {
		t.Fatalf("case %+v", o.Case)
	}
	_, err = h.svc.Open(h.ctx, Open{Subject: "sam", Reason: "again", Opener: &hal}, meta)
	wantErr(t, err, airlock.ECONFLICT, ReasonCaseOpen)
	root := h.p("root").sub()
	if o, err := h.svc.Open(h.ctx, Open{Subject: "tess", Reason: "admin opens", Opener: &root}, meta); err != nil || o.Case.OpenedBy != "u-root" {
		t.Fatalf("admin: %v", err)
	}
	refused := h.auditOf("recovery.open_refused")
	if len(refused) != 6 || refused[0].Actor != "u-nora" {
		t.Fatalf("refusals %d: %+v", len(refused), refused[0])
	}
}

// TestOpenRateLimitHelpdesk: over OpensPerDay the help desk gets
// ERATELIMIT.
func TestOpenRateLimitHelpdesk(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.OpensPerDay = 1 })
	hal := h.p("hal").sub()
	o := h.open("sam")
	if _, err := h.svc.Abort(h.ctx, o.Case.ID, hal, "wrong person", meta); err == nil {
		t.Fatal("hal aborted a case he did not open")
	}
	if _, err := h.svc.Abort(h.ctx, o.Case.ID, h.p("olga").sub(), "wrong person", meta); err != nil {
		t.Fatal(err)
	}
	_, err := h.svc.Open(h.ctx, Open{Subject: "sam", Reason: "called", Opener: &hal}, meta)
	wantErr(t, err, airlock.ERATELIMIT, ReasonRateLimited)
}

// TestOpenAuditFailure: an open whose record cannot be written fails and
// leaves no live case.
func TestOpenAuditFailure(t *testing.T) {
	h := newHarness(t, nil)
	h.aud.failOn("recovery.opened")
	if _, err := h.svc.Open(h.ctx, Open{Subject: "sam", Reason: "lost"}, meta); airlock.ErrorCode(err) != airlock.EUNAVAILABLE {
		t.Fatalf("got %v", err)
	}
	cs, _ := h.store.ListRecoveryCases(h.ctx, airlock.RecoveryCaseFilter{Statuses: liveStatuses})
	if len(cs) != 0 {
		t.Fatalf("live case left: %+v", cs[0])
	}
	h.aud.failOn("recovery.open_refused")
	if _, err := h.svc.Open(h.ctx, Open{Subject: "nobody", Reason: "lost"}, meta); airlock.ErrorCode(err) != airlock.EUNAVAILABLE {
		t.Fatalf("neutral answer without its record: %v", err)
	}
}
