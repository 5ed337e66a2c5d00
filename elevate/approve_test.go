package elevate

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"airlock"
	"airlock/passkey"
	"airlock/passkey/passkeytest"
	"airlock/sqlite"
)

// TestApproveTier0: one team lead and one security member, each with a
// passkey assertion over the request's digest, make the grant.
func TestApproveTier0(t *testing.T) {
	h := newHarness(t, nil)
	alice, bob, carol := h.p("alice"), h.p("bob"), h.p("carol")
	r, _ := h.ask(alice, "dba@db-prod", 30*time.Minute)

	b, err := h.begin(bob, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The challenge is SHA-256(nonce ‖ digest) with the request's digest.
	var o struct {
		PublicKey struct {
			Challenge        string `json:"challenge"`
			UserVerification string `json:"userVerification"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(mustJSON(t, b), &o); err != nil {
		t.Fatal(err)
	}
	if o.PublicKey.UserVerification != "required" {
		t.Fatalf("userVerification %q", o.PublicKey.UserVerification)
	}
	resp, err := bob.auth.Assert(testOrigin, mustJSON(t, b))
	if err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(time.Minute)
	got, g, err := h.svc.FinishApproval(h.ctx, b.Ceremony, resp, bob.sub(), "looks right", passkey.Meta{IP: "192.0.2.8"})
	if err != nil || g != nil || got.Status != airlock.RequestPending {
		t.Fatalf("bob's approval: %+v %+v %v", got, g, err)
	}
	as := h.approvals(r.ID)
	if len(as) != 1 || as[0].ApproverID != bob.user.ID || !slices.Equal(as[0].Groups, []string{"team-leads"}) || as[0].Comment != "looks right" ||
		as[0].SessionID != bob.sess.ID || as[0].DeviceID != bob.dev.ID || !bytes.Equal(as[0].CredentialID, bob.auth.Credentials()[0].ID) {
		t.Fatalf("approvals %+v", as)
	}
	ev := h.aud.ofType("elevation.approval")
	if len(ev) != 1 || ev[0].Outcome != airlock.OutcomeSuccess || ev[0].RequestID != r.ID || ev[0].UserID != bob.user.ID || ev[0].SessionID != bob.sess.ID {
		t.Fatalf("elevation.approval %+v", ev)
	}
	nonce, _ := b64dec(ev[0].Details["nonce"].(string))
	if want := b64(passkey.StepUpChallenge(nonce, r.Digest)); o.PublicKey.Challenge != want || ev[0].Details["challenge"] != want {
		t.Fatalf("challenge %s, want SHA-256(nonce ‖ request digest) %s", o.PublicKey.Challenge, want)
	}
	if s, _ := h.store.FindSessionByID(h.ctx, bob.sess.ID); !s.LastUVAt.Equal(h.clk.Now()) {
		t.Fatalf("approver session last_uv_at %s, want %s", s.LastUVAt, h.clk.Now())
	}
	v, err := h.svc.Get(h.ctx, r.ID, bob.sub())
	if err != nil || !slices.Equal(v.Missing, []Quorum{{"security", 1}}) {
		t.Fatalf("view missing %v (%v)", v, err)
	}

	h.clk.Advance(time.Minute)
	got, g = h.mustApprove(carol, r.ID)
	now := h.clk.Now()
	if got.Status != airlock.RequestApproved || got.ResolvedBy != carol.user.ID || g == nil || got.GrantID != g.ID {
		t.Fatalf("carol's approval: %+v %+v", got, g)
	}
	if !g.NotBefore.Equal(now) || !g.NotAfter.Equal(now.Add(30*time.Minute)) || g.SessionID != alice.sess.ID || g.UserID != alice.user.ID {
		t.Fatalf("grant %+v: window from the approval, bound to alice's session", g)
	}
	if e := h.aud.ofType("elevation.approved"); len(e) != 1 || e[0].GrantID != g.ID || e[0].Actor != carol.user.ID {
		t.Fatalf("elevation.approved %+v", e)
	}
	if e := h.aud.ofType("elevation.granted"); len(e) != 1 || e[0].GrantID != g.ID || e[0].RequestID != r.ID || e[0].DecisionID != r.DecisionID {
		t.Fatalf("elevation.granted %+v", e)
	}
	if n := h.not.ofKind(NotifyApproved); len(n) != 1 || n[0].UserID != alice.user.ID || n[0].Payload["grant_id"] != g.ID {
		t.Fatalf("requester notified %+v", n)
	}
	// Nothing more to approve.
	_, err = h.begin(h.p("dave"), r.ID)
	wantErr(t, err, airlock.ECONFLICT, ReasonNotPending)
}

// TestApprovalsRefused: the separation-of-duties and freshness rules.
func TestApprovalsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		// run tries a refused approval of tier-0 request r and returns the
		// error.
		run    func(t *testing.T, h *harness, r *airlock.AccessRequest) error
		code   string
		reason Reason
		// stored is how many approvals the case itself made first.
		stored int
	}{
		{"fail-self-approval", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			// alice is in team-leads and security, and still may not.
			_, _, err := h.approve(h.p("alice"), r.ID)
			return err
		}, airlock.EFORBIDDEN, ReasonSelfApproval, 0},
		{"fail-self-approval-other-session", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			alice := h.p("alice")
			sub := alice.sub()
			sub.Session = h.newSession(alice, 0)
			_, err := h.svc.BeginApproval(h.ctx, r.ID, sub, passkey.Meta{})
			return err
		}, airlock.EFORBIDDEN, ReasonSelfApproval, 0},
		{"fail-not-in-group", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			_, _, err := h.approve(h.p("frank"), r.ID)
			return err
		}, airlock.EFORBIDDEN, ReasonNotInGroup, 0},
		{"fail-admin-is-no-approver", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			_, _, err := h.approve(h.p("root"), r.ID)
			return err
		}, airlock.EFORBIDDEN, ReasonNotInGroup, 0},
		{"fail-approver-lower-tier", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			_, _, err := h.approve(h.p("erin"), r.ID)
			return err
		}, airlock.EFORBIDDEN, ReasonApproverTier, 0},
		{"fail-approver-session-lower-tier", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			bob := h.p("bob")
			bob.sess = h.newSession(bob, 1)
			_, _, err := h.approve(bob, r.ID)
			return err
		}, airlock.EFORBIDDEN, ReasonApproverTier, 0},
		{"fail-approver-device-untrusted", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			bob := h.p("bob")
			bob.dev.Trust = airlock.TrustPending
			_, _, err := h.approve(bob, r.ID)
			return err
		}, airlock.EFORBIDDEN, ReasonDeviceUntrusted, 0},
		{"fail-approver-device-noncompliant", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			bob := h.p("bob")
			bob.dev.Posture.ScreenLock = false
			_, _, err := h.approve(bob, r.ID)
			return err
		}, airlock.EFORBIDDEN, ReasonDeviceNonCompliant, 0},
		{"fail-approver-device-turns-noncompliant-before-finish", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			bob := h.p("bob")
			b, err := h.begin(bob, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			resp, _ := bob.auth.Assert(testOrigin, mustJSON(t, b))
			bob.dev.Posture.DiskEncrypted = false
			_, _, err = h.svc.FinishApproval(h.ctx, b.Ceremony, resp, bob.sub(), "", passkey.Meta{})
			return err
		}, airlock.EFORBIDDEN, ReasonDeviceNonCompliant, 0},
		{"fail-approver-disabled", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			bob := h.p("bob")
			bob.user.Disabled = true
			_, _, err := h.approve(bob, r.ID)
			return err
		}, airlock.EFORBIDDEN, ReasonUserDisabled, 0},
		{"fail-double-approval", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			h.mustApprove(h.p("bob"), r.ID)
			_, _, err := h.approve(h.p("bob"), r.ID)
			return err
		}, airlock.ECONFLICT, ReasonAlreadyApproved, 1},
		{"fail-double-approval-two-ceremonies", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			// Two ceremonies begun before either finished: the second
			// finish is refused, and counts nothing.
			bob := h.p("bob")
			b1, err := h.begin(bob, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			b2, err := h.begin(bob, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			for i, b := range []*passkey.Begin{b1, b2} {
				resp, _ := bob.auth.Assert(testOrigin, mustJSON(t, b))
				_, _, err = h.svc.FinishApproval(h.ctx, b.Ceremony, resp, bob.sub(), "", passkey.Meta{})
				if i == 0 && err != nil {
					t.Fatal(err)
				}
			}
			return err
		}, airlock.ECONFLICT, ReasonAlreadyApproved, 1},
		{"fail-no-ceremony", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			bob := h.p("bob")
			b, _ := h.begin(bob, r.ID)
			resp, _ := bob.auth.Assert(testOrigin, mustJSON(t, b))
			_, _, err := h.svc.FinishApproval(h.ctx, "", resp, bob.sub(), "", passkey.Meta{})
			return err
		}, airlock.EUNAUTHORIZED, Reason(passkey.ReasonUnknownCeremony), 0},
		{"fail-uv-cleared", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			_, _, err := h.approve(h.p("bob"), r.ID, passkeytest.WithFlags(passkeytest.Flags{NoUserVerification: true}))
			return err
		}, airlock.EUNAUTHORIZED, Reason(passkey.ReasonUVMissing), 0},
		{"fail-replayed-ceremony", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			carol := h.p("carol")
			b, _ := h.begin(carol, r.ID)
			resp, _ := carol.auth.Assert(testOrigin, mustJSON(t, b))
			bad, _ := carol.auth.Assert(testOrigin, mustJSON(t, b), passkeytest.WithBadSignature())
			// A failed finish spends the ceremony; the good assertion
			// replayed on it is refused.
			if _, _, err := h.svc.FinishApproval(h.ctx, b.Ceremony, bad, carol.sub(), "", passkey.Meta{}); err == nil {
				t.Fatal("a bad signature was accepted")
			}
			_, _, err := h.svc.FinishApproval(h.ctx, b.Ceremony, resp, carol.sub(), "", passkey.Meta{})
			return err
		}, airlock.EUNAUTHORIZED, Reason(passkey.ReasonUnknownCeremony), 0},
		{"fail-replayed-accepted-assertion", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			bob := h.p("bob")
			b, _ := h.begin(bob, r.ID)
			resp, _ := bob.auth.Assert(testOrigin, mustJSON(t, b))
			if _, _, err := h.svc.FinishApproval(h.ctx, b.Ceremony, resp, bob.sub(), "", passkey.Meta{}); err != nil {
				t.Fatal(err)
			}
			// bob's accepted assertion, replayed by carol's session.
			carol := h.p("carol")
			b2, _ := h.begin(carol, r.ID)
			_, _, err := h.svc.FinishApproval(h.ctx, b2.Ceremony, resp, carol.sub(), "", passkey.Meta{})
			return err
		}, airlock.EUNAUTHORIZED, Reason(passkey.ReasonBadChallenge), 1},
		{"fail-expired-ceremony", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			bob := h.p("bob")
			b, _ := h.begin(bob, r.ID)
			resp, _ := bob.auth.Assert(testOrigin, mustJSON(t, b))
			h.clk.Advance(passkey.DefaultCeremonyTTL)
			_, _, err := h.svc.FinishApproval(h.ctx, b.Ceremony, resp, bob.sub(), "", passkey.Meta{})
			return err
		}, airlock.EEXPIRED, Reason(passkey.ReasonExpired), 0},
		{"fail-other-session-finishes", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			bob := h.p("bob")
			b, _ := h.begin(bob, r.ID)
			resp, _ := bob.auth.Assert(testOrigin, mustJSON(t, b))
			bob.sess = h.newSession(bob, 0)
			_, _, err := h.svc.FinishApproval(h.ctx, b.Ceremony, resp, bob.sub(), "", passkey.Meta{})
			return err
		}, airlock.EFORBIDDEN, Reason(passkey.ReasonWrongConfirmer), 0},
		{"fail-assertion-over-other-request-challenge", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			// bob begins approvals of r and of another request B; his
			// assertion over r's challenge is presented to B's ceremony.
			other, _ := h.ask(h.p("gina"), "dba@db-prod", time.Hour)
			bob := h.p("bob")
			bA, _ := h.begin(bob, r.ID)
			bB, _ := h.begin(bob, other.ID)
			var o struct {
				PublicKey struct{ Challenge string } `json:"publicKey"`
			}
			_ = json.Unmarshal(mustJSON(t, bA), &o)
			chA, _ := b64dec(o.PublicKey.Challenge)
			resp, _ := bob.auth.Assert(testOrigin, mustJSON(t, bB), passkeytest.WithChallenge(chA))
			_, _, err := h.svc.FinishApproval(h.ctx, bB.Ceremony, resp, bob.sub(), "", passkey.Meta{})
			if n := len(h.approvals(other.ID)); n != 0 {
				t.Fatalf("request B got %d approvals", n)
			}
			return err
		}, airlock.EUNAUTHORIZED, Reason(passkey.ReasonBadChallenge), 0},
		{"fail-comment-with-control-characters", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			bob := h.p("bob")
			b, _ := h.begin(bob, r.ID)
			resp, _ := bob.auth.Assert(testOrigin, mustJSON(t, b))
			_, _, err := h.svc.FinishApproval(h.ctx, b.Ceremony, resp, bob.sub(), "ok\r\nApproved by security", passkey.Meta{})
			return err
		}, airlock.EINVALID, ReasonInvalidComment, 0},
		{"fail-approve-after-expiry", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			h.clk.Advance(DefaultRequestTTL)
			_, _, err := h.approve(h.p("bob"), r.ID)
			return err
		}, airlock.EEXPIRED, ReasonRequestExpired, 0},
		{"fail-finish-after-expiry", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			bob := h.p("bob")
			h.clk.Advance(DefaultRequestTTL - time.Minute)
			b, err := h.begin(bob, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			resp, _ := bob.auth.Assert(testOrigin, mustJSON(t, b))
			h.clk.Advance(2 * time.Minute) // the ceremony is still valid, the request is not
			_, _, err = h.svc.FinishApproval(h.ctx, b.Ceremony, resp, bob.sub(), "", passkey.Meta{})
			return err
		}, airlock.EEXPIRED, ReasonRequestExpired, 0},
		{"fail-unknown-request", func(t *testing.T, h *harness, r *airlock.AccessRequest) error {
			_, err := h.begin(h.p("bob"), "req_nope")
			return err
		}, airlock.ENOTFOUND, ReasonUnknownRequest, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			r, _ := h.ask(h.p("alice"), "dba@db-prod", 30*time.Minute)
			err := tc.run(t, h, r)
			wantErr(t, err, tc.code, tc.reason)
			if got := h.request(r.ID); got.Status == airlock.RequestApproved || got.GrantID != "" {
				t.Fatalf("request %+v approved", got)
			}
			if n := len(h.approvals(r.ID)); n != tc.stored {
				t.Fatalf("a refused approval was stored (%d approvals, want %d)", n, tc.stored)
			}
			evs := h.aud.ofType("elevation.approval")
			last := evs[len(evs)-1]
			if last.Outcome != airlock.OutcomeDenied || last.Reason != string(tc.reason) {
				t.Fatalf("refusal audited as %+v", last)
			}
		})
	}
}

// TestQuorumNeedsTwoPeople: a rule of two groups needs two people; one
// person in both groups still counts once.
func TestQuorumNeedsTwoPeople(t *testing.T) {
	t.Run("fail-one-approver-where-two-groups-required", func(t *testing.T) {
		h := newHarness(t, nil)
		r, _ := h.ask(h.p("alice"), "dba@db-prod", 30*time.Minute)
		got, g := h.mustApprove(h.p("bob"), r.ID)
		if got.Status != airlock.RequestPending || g != nil {
			t.Fatalf("one team lead approved a tier-0 request: %+v", got)
		}
		// Another team lead does not make up for security.
		h.people["bob2"] = h.newPerson("bob2", 0, []string{"team-leads"})
		if got, g = h.mustApprove(h.p("bob2"), r.ID); got.Status != airlock.RequestPending || g != nil {
			t.Fatalf("two team leads approved a tier-0 request: %+v", got)
		}
	})
	t.Run("fail-one-person-in-both-groups-counts-once", func(t *testing.T) {
		h := newHarness(t, nil)
		r, _ := h.ask(h.p("alice"), "dba@db-prod", 30*time.Minute)
		got, g := h.mustApprove(h.p("dave"), r.ID)
		if got.Status != airlock.RequestPending || g != nil {
			t.Fatalf("dave alone approved a tier-0 request: %+v", got)
		}
		if as := h.approvals(r.ID); !slices.Equal(as[0].Groups, []string{"team-leads", "security"}) {
			t.Fatalf("recorded groups %v", as[0].Groups)
		}
		// A second person from either group completes it.
		got, g = h.mustApprove(h.p("bob"), r.ID)
		if got.Status != airlock.RequestApproved || g == nil {
			t.Fatalf("dave + bob: %+v", got)
		}
	})
}

// TestConcurrentFinalApprovals: two last approvals racing make exactly one
// grant; both approvals are recorded and both callers get the grant.
func TestConcurrentFinalApprovals(t *testing.T) {
	for round := range 4 {
		h := newHarness(t, nil)
		r, _ := h.ask(h.p("alice"), "deployer@ci", time.Hour) // default rule: 1 of approvers
		type ready struct {
			p    *person
			b    *passkey.Begin
			resp []byte
		}
		var rs []ready
		for _, name := range []string{"frank", "gina"} {
			p := h.p(name)
			b, err := h.begin(p, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := p.auth.Assert(testOrigin, mustJSON(t, b))
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, ready{p, b, resp})
		}
		var wg sync.WaitGroup
		grants := make([]*airlock.Grant, len(rs))
		errs := make([]error, len(rs))
		start := make(chan struct{})
		for i, x := range rs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, grants[i], errs[i] = h.svc.FinishApproval(h.ctx, x.b.Ceremony, x.resp, x.p.sub(), "", passkey.Meta{})
			}()
		}
		close(start)
		wg.Wait()
		gs := h.grantsOf(h.p("alice").user.ID)
		if len(gs) != 1 {
			t.Fatalf("round %d: %d grants, want exactly one", round, len(gs))
		}
		if n := len(h.aud.ofType("elevation.granted")); n != 1 {
			t.Fatalf("round %d: %d elevation.granted events", round, n)
		}
		for i := range rs {
			switch {
			case errs[i] == nil:
				// This approval is recorded; if the other one completed
				// the quorum first, the caller gets its grant.
				if grants[i] != nil && grants[i].ID != gs[0].ID {
					t.Fatalf("round %d: caller %d got grant %s, the only one is %s", round, i, grants[i].ID, gs[0].ID)
				}
			case airlock.ErrorCode(errs[i]) == airlock.ECONFLICT && ReasonOf(errs[i]) == ReasonNotPending:
				// Refused cleanly: the request was resolved before this
				// approval was stored.
			default:
				t.Fatalf("round %d: caller %d: %v", round, i, errs[i])
			}
		}
		if got := h.request(r.ID); got.Status != airlock.RequestApproved || got.GrantID != gs[0].ID {
			t.Fatalf("round %d: request %+v", round, got)
		}
	}
}

func TestDeny(t *testing.T) {
	setup := func(t *testing.T) (*harness, *airlock.AccessRequest) {
		h := newHarness(t, nil)
		r, _ := h.ask(h.p("alice"), "dba@db-prod", 30*time.Minute)
		return h, r
	}
	t.Run("fail-without-reason", func(t *testing.T) {
		h, r := setup(t)
		_, err := h.svc.Deny(h.ctx, r.ID, h.p("bob").sub(), " ", passkey.Meta{})
		wantErr(t, err, airlock.EINVALID, ReasonReasonRequired)
		if h.request(r.ID).Status != airlock.RequestPending {
			t.Fatal("denied without a reason")
		}
	})
	for _, tc := range []struct {
		name, who string
		reason    Reason
	}{
		{"fail-by-requester", "alice", ReasonSelfApproval},
		{"fail-by-outsider", "mal", ReasonNotInGroup},
		{"fail-by-lower-tier-member", "erin", ReasonApproverTier},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, r := setup(t)
			_, err := h.svc.Deny(h.ctx, r.ID, h.p(tc.who).sub(), "no", passkey.Meta{})
			wantErr(t, err, airlock.EFORBIDDEN, tc.reason)
		})
	}
	t.Run("ok-by-approver", func(t *testing.T) {
		h, r := setup(t)
		got, err := h.svc.Deny(h.ctx, r.ID, h.p("carol").sub(), "no ticket for this", passkey.Meta{})
		if err != nil || got.Status != airlock.RequestDenied || got.ResolvedBy != "u-carol" || got.Note != "no ticket for this" {
			t.Fatalf("%+v %v", got, err)
		}
		if e := h.aud.ofType("elevation.denied"); len(e) != 1 || e[0].Outcome != airlock.OutcomeSuccess || e[0].Details["reason"] != "no ticket for this" || e[0].Actor != "u-carol" {
			t.Fatalf("elevation.denied %+v", e)
		}
		if n := h.not.ofKind(NotifyDenied); len(n) != 1 || n[0].UserID != "u-alice" || n[0].Payload["reason"] != "no ticket for this" {
			t.Fatalf("notified %+v", n)
		}
		_, _, err = h.approve(h.p("bob"), r.ID)
		wantErr(t, err, airlock.ECONFLICT, ReasonNotPending)
	})
	t.Run("ok-by-admin", func(t *testing.T) {
		h, r := setup(t)
		got, err := h.svc.Deny(h.ctx, r.ID, h.p("root").sub(), "freeze week", passkey.Meta{})
		if err != nil || got.Status != airlock.RequestDenied {
			t.Fatalf("%+v %v", got, err)
		}
		if e := h.aud.ofType("elevation.denied"); e[0].Details["as_admin"] != true {
			t.Fatalf("elevation.denied %+v", e)
		}
	})
}

func TestCancel(t *testing.T) {
	h := newHarness(t, nil)
	r, _ := h.ask(h.p("alice"), "dba@db-prod", 30*time.Minute)
	_, err := h.svc.Cancel(h.ctx, r.ID, h.p("bob").sub(), passkey.Meta{})
	wantErr(t, err, airlock.EFORBIDDEN, ReasonNotRequester)
	got, err := h.svc.Cancel(h.ctx, r.ID, h.p("alice").sub(), passkey.Meta{})
	if err != nil || got.Status != airlock.RequestCancelled {
		t.Fatalf("%+v %v", got, err)
	}
	if e := h.aud.ofType("elevation.cancelled"); len(e) != 1 || e[0].Actor != "u-alice" {
		t.Fatalf("elevation.cancelled %+v", e)
	}
	_, err = h.svc.Cancel(h.ctx, r.ID, h.p("alice").sub(), passkey.Meta{})
	wantErr(t, err, airlock.ECONFLICT, ReasonNotPending)
}

func TestGetAndList(t *testing.T) {
	h := newHarness(t, nil)
	r, _ := h.ask(h.p("alice"), "dba@db-prod", 30*time.Minute)
	for name, ok := range map[string]bool{"alice": true, "bob": true, "dave": true, "root": true, "frank": false, "mal": false, "erin": false} {
		v, err := h.svc.Get(h.ctx, r.ID, h.p(name).sub())
		if ok && (err != nil || v.Request.ID != r.ID || v.Requester.ID != "u-alice" || v.Device == nil || !v.DeviceCompliant ||
			!slices.Equal(v.Missing, []Quorum{{"team-leads", 1}, {"security", 1}})) {
			t.Errorf("%s: view %+v %v", name, v, err)
		}
		if !ok {
			wantErr(t, err, airlock.EFORBIDDEN, ReasonNotAllowed)
		}
	}
	mine, err := h.svc.ListRequests(h.ctx, h.p("alice").sub(), false)
	if err != nil || len(mine) != 1 || mine[0].ID != r.ID {
		t.Fatalf("alice's requests %+v %v", mine, err)
	}
	for name, want := range map[string]int{"alice": 0, "bob": 1, "frank": 0, "erin": 0} {
		qs, err := h.svc.ListRequests(h.ctx, h.p(name).sub(), true)
		if err != nil || len(qs) != want {
			t.Errorf("%s to approve: %d (%v), want %d", name, len(qs), err, want)
		}
	}
	h.mustApprove(h.p("bob"), r.ID)
	if qs, _ := h.svc.ListRequests(h.ctx, h.p("bob").sub(), true); len(qs) != 0 {
		t.Errorf("bob still has %d to approve after approving", len(qs))
	}
}

// TestPendingRequestExpiry: a pending request expires at ExpiresAt — by
// the sweep, or when someone touches it — and the requester is told.
func TestPendingRequestExpiry(t *testing.T) {
	h := newHarness(t, nil)
	r, _ := h.ask(h.p("alice"), "dba@db-prod", 30*time.Minute)
	if n, err := h.svc.Sweep(h.ctx); err != nil || n != 0 {
		t.Fatalf("sweep before expiry changed %d (%v)", n, err)
	}
	h.clk.Advance(DefaultRequestTTL)
	if n, err := h.svc.Sweep(h.ctx); err != nil || n != 1 {
		t.Fatalf("sweep changed %d (%v), want the request", n, err)
	}
	got := h.request(r.ID)
	if got.Status != airlock.RequestExpired || got.ResolvedBy != "system" || !got.ResolvedAt.Equal(h.clk.Now()) {
		t.Fatalf("request %+v", got)
	}
	if e := h.aud.ofType("elevation.expired"); len(e) != 1 || e[0].RequestID != r.ID {
		t.Fatalf("elevation.expired %+v", e)
	}
	if n := h.not.ofKind(NotifyExpired); len(n) != 1 || n[0].UserID != "u-alice" {
		t.Fatalf("notified %+v", n)
	}
	_, _, err := h.approve(h.p("bob"), r.ID)
	wantErr(t, err, airlock.ECONFLICT, ReasonNotPending)

	// A request touched after its expiry, before any sweep, is expired on
	// the spot.
	r2, _ := h.ask(h.p("alice"), "dba@db-prod", 30*time.Minute)
	h.clk.Advance(DefaultRequestTTL + time.Second)
	_, err = h.begin(h.p("carol"), r2.ID)
	wantErr(t, err, airlock.EEXPIRED, ReasonRequestExpired)
	if got := h.request(r2.ID); got.Status != airlock.RequestExpired {
		t.Fatalf("request %+v", got)
	}
}

// TestRuleRemovedFailsClosed: a pending request whose rule is no longer
// configured cannot be approved.
func TestRuleRemovedFailsClosed(t *testing.T) {
	h := newHarness(t, nil)
	r, _ := h.ask(h.p("alice"), "dba@db-prod", 30*time.Minute)
	cfg := h.cfg
	cfg.Rules = map[string]Rule{DefaultRule: testRules()[DefaultRule]}
	svc, err := New(cfg, h.store, h.dec, h.pk, h.aud, h.not)
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc
	_, _, err = h.approve(h.p("bob"), r.ID)
	wantErr(t, err, airlock.EFORBIDDEN, ReasonUnknownRule)
}

// tamperStore hands out access requests edited behind the service's back
// (as someone with write access to the database could).
type tamperStore struct {
	*sqlite.Store
	edit func(r *airlock.AccessRequest)
}

func (s *tamperStore) FindAccessRequestByID(ctx context.Context, id string) (*airlock.AccessRequest, error) {
	r, err := s.Store.FindAccessRequestByID(ctx, id)
	if err == nil && s.edit != nil {
		s.edit(r)
	}
	return r, err
}

// TestTamperedRequestRefused: a stored request that no longer matches its
// digest cannot be approved.
func TestTamperedRequestRefused(t *testing.T) {
	h := newHarness(t, nil)
	r, _ := h.ask(h.p("alice"), "dba@db-prod", 30*time.Minute)
	ts := &tamperStore{Store: h.store, edit: func(r *airlock.AccessRequest) { r.Duration *= 2 }}
	svc, err := New(h.cfg, ts, h.dec, h.pk, h.aud, h.not)
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc
	_, _, err = h.approve(h.p("bob"), r.ID)
	wantErr(t, err, airlock.EINTERNAL, ReasonDigestMismatch)
}

func b64dec(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
