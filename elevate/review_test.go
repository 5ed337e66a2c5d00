package elevate

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"airlock"
	"airlock/decide"
	"airlock/passkey"
	"airlock/passkey/passkeytest"
	"airlock/policy"
)

// TestUnauditedApprovalNeverCounts: an approval whose audit record could
// not be written must not help make a grant — not this call's, and not a
// later or concurrent approver's. Bob's record is held up (the audit log
// hangs) while carol, the other half of the rule, approves; then bob's
// record fails. Storing bob's approval before its record let carol's
// count it; nothing may be stored before its record.
func TestUnauditedApprovalNeverCounts(t *testing.T) {
	h := newHarness(t, nil)
	alice, bob, carol := h.p("alice"), h.p("bob"), h.p("carol")
	r, _ := h.ask(alice, "dba@db-prod", 30*time.Minute)
	b, err := h.begin(bob, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := bob.auth.Assert(testOrigin, mustJSON(t, b))
	if err != nil {
		t.Fatal(err)
	}
	held, release := make(chan struct{}), make(chan struct{})
	h.aud.hook = func(e airlock.AuditEvent) error {
		if e.Type == "elevation.approval" && e.UserID == bob.user.ID && e.Outcome == airlock.OutcomeSuccess {
			close(held)
			<-release
			return errors.New("audit log down")
		}
		return nil
	}
	done := make(chan error)
	go func() {
		_, _, err := h.svc.FinishApproval(h.ctx, b.Ceremony, resp, bob.sub(), "", passkey.Meta{})
		done <- err
	}()
	<-held
	// carol (security) completes the rule with bob (team-leads) only if
	// bob's approval, not yet audited, counts.
	got, g, err := h.approve(carol, r.ID)
	close(release)
	if err := <-done; err == nil {
		t.Fatal("bob's approval was accepted without its audit record")
	}
	if err != nil {
		t.Fatalf("carol's approval: %v", err)
	}
	if g != nil || got.Status != airlock.RequestPending {
		t.Fatalf("grant %+v made with an unaudited approval (request %s)", g, got.Status)
	}
	for _, a := range h.approvals(r.ID) {
		if a.ApproverID == bob.user.ID {
			t.Fatal("bob's unaudited approval is stored")
		}
	}
	if gs := h.grantsOf(alice.user.ID); len(gs) != 0 {
		t.Fatalf("grants %+v", gs)
	}
	// The request is still open: bob may approve again.
	h.aud.hook = nil
	if _, g := h.mustApprove(bob, r.ID); g == nil {
		t.Fatal("bob + carol made no grant once the log was back")
	}
}

// TestGrantAuditFailureEndReason: a grant whose records could not be
// written is ended at once, with a defined end reason.
func TestGrantAuditFailureEndReason(t *testing.T) {
	defined := []string{airlock.EndExpired, airlock.EndDone, airlock.EndRevokedByAdmin, airlock.EndSessionEnded,
		airlock.EndDeviceUntrusted, airlock.EndDeviceNonCompliant, airlock.EndCredentialRevoked, airlock.EndUserDisabled,
		airlock.EndAuditFailed}
	for _, typ := range []string{"elevation.approved", "elevation.granted"} {
		t.Run("fail-"+typ, func(t *testing.T) {
			h := newHarness(t, nil)
			r, _ := h.ask(h.p("alice"), "deployer@ci", time.Hour)
			h.aud.failOn(typ, errors.New("audit log down"))
			if _, _, err := h.approve(h.p("frank"), r.ID); err == nil {
				t.Fatal("approved without the grant's audit records")
			}
			gs := h.grantsOf("u-alice")
			if len(gs) != 1 || gs[0].EndedAt.IsZero() {
				t.Fatalf("grants %+v, want one, ended", gs)
			}
			if !slices.Contains(defined, gs[0].EndReason) || gs[0].EndReason != airlock.EndAuditFailed {
				t.Fatalf("end reason %q, want %q (a defined one)", gs[0].EndReason, airlock.EndAuditFailed)
			}
		})
	}
}

// TestApprovalsRecheckedAtQuorum: an approval counts only while its
// approver could still give it: an approver since disabled, moved to a
// less privileged tier or out of the group they approved for, or whose
// passkey or device was revoked (lost, stolen, compromised) no longer
// fills a place; the approval stays on record.
func TestApprovalsRecheckedAtQuorum(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(h *harness, bob *person)
	}{
		{"fail-approver-disabled", func(h *harness, bob *person) {
			bob.user.Disabled = true
			if err := h.store.UpdateUser(h.ctx, bob.user); err != nil {
				h.tb.Fatal(err)
			}
		}},
		{"fail-approver-left-group", func(h *harness, bob *person) {
			bob.user.Roles = []string{"approvers"}
			if err := h.store.UpdateUser(h.ctx, bob.user); err != nil {
				h.tb.Fatal(err)
			}
		}},
		{"fail-approver-tier-lowered", func(h *harness, bob *person) {
			bob.user.Tier = 1
			if err := h.store.UpdateUser(h.ctx, bob.user); err != nil {
				h.tb.Fatal(err)
			}
		}},
		{"fail-approver-passkey-revoked", func(h *harness, bob *person) {
			if err := h.store.RevokeCredential(h.ctx, bob.auth.Credentials()[0].ID, h.clk.Now()); err != nil {
				h.tb.Fatal(err)
			}
		}},
		{"fail-approver-device-revoked", func(h *harness, bob *person) {
			bob.dev.Trust = airlock.TrustRevoked
			if err := h.store.UpdateDevice(h.ctx, bob.dev); err != nil {
				h.tb.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			alice, bob, carol := h.p("alice"), h.p("bob"), h.p("carol")
			r, _ := h.ask(alice, "dba@db-prod", 30*time.Minute)
			h.mustApprove(bob, r.ID) // team-leads
			tc.change(h, bob)
			got, g := h.mustApprove(carol, r.ID) // security
			if g != nil || got.Status != airlock.RequestPending {
				t.Fatalf("carol + a no longer eligible bob made grant %+v (request %s)", g, got.Status)
			}
			if v, err := h.svc.Get(h.ctx, r.ID, carol.sub()); err != nil || !slices.Equal(v.Missing, []Quorum{{"team-leads", 1}}) {
				t.Fatalf("view missing %+v (%v), want 1 of team-leads", v, err)
			}
			if n := len(h.approvals(r.ID)); n != 2 {
				t.Fatalf("%d approvals on record, want both", n)
			}
			// Another team lead completes the rule.
			got, g = h.mustApprove(h.p("dave"), r.ID)
			if g == nil || got.Status != airlock.RequestApproved {
				t.Fatalf("carol + dave: %+v", got)
			}
			ev := h.aud.ofType("elevation.approved")
			if approvers, _ := ev[len(ev)-1].Details["approvers"].([]string); slices.Contains(approvers, bob.user.ID) {
				t.Fatalf("elevation.approved counts bob: %v", approvers)
			}
		})
	}
	t.Run("ok-approver-still-eligible", func(t *testing.T) {
		h := newHarness(t, nil)
		r, _ := h.ask(h.p("alice"), "dba@db-prod", 30*time.Minute)
		h.mustApprove(h.p("bob"), r.ID)
		h.clk.Advance(10 * time.Minute)
		if _, g := h.mustApprove(h.p("carol"), r.ID); g == nil {
			t.Fatal("bob + carol made no grant")
		}
	})
}

// TestApprovalRefusedWhenRequesterGone: a request whose grant could not
// stand — the requester's session ended, their device untrusted or
// non-compliant, their passkey revoked, their account disabled — is not
// approved into a grant that is dead on arrival.
func TestApprovalRefusedWhenRequesterGone(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(h *harness, alice *person)
	}{
		{"fail-requester-session-ended", func(h *harness, alice *person) {
			if err := h.store.EndSession(h.ctx, alice.sess.ID, "logout", h.clk.Now()); err != nil {
				h.tb.Fatal(err)
			}
		}},
		{"fail-requester-disabled", func(h *harness, alice *person) {
			alice.user.Disabled = true
			if err := h.store.UpdateUser(h.ctx, alice.user); err != nil {
				h.tb.Fatal(err)
			}
		}},
		{"fail-requester-device-untrusted", func(h *harness, alice *person) {
			alice.dev.Trust = airlock.TrustPending
			if err := h.store.UpdateDevice(h.ctx, alice.dev); err != nil {
				h.tb.Fatal(err)
			}
		}},
		{"fail-requester-device-noncompliant", func(h *harness, alice *person) {
			alice.dev.Posture.DiskEncrypted = false
			if err := h.store.UpdateDevice(h.ctx, alice.dev); err != nil {
				h.tb.Fatal(err)
			}
		}},
		{"fail-requester-passkey-revoked", func(h *harness, alice *person) {
			if err := h.store.RevokeCredential(h.ctx, alice.sess.CredentialID, h.clk.Now()); err != nil {
				h.tb.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			alice, frank := h.p("alice"), h.p("frank")
			r, _ := h.ask(alice, "deployer@ci", time.Hour) // 1 of approvers
			b, err := h.begin(frank, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := frank.auth.Assert(testOrigin, mustJSON(t, b))
			if err != nil {
				t.Fatal(err)
			}
			tc.change(h, alice)
			_, g, err := h.svc.FinishApproval(h.ctx, b.Ceremony, resp, frank.sub(), "", passkey.Meta{})
			if g != nil {
				t.Fatalf("grant %+v made for a requester no longer in good standing", g)
			}
			wantErr(t, err, airlock.ECONFLICT, ReasonRequesterInvalid)
			if n := len(h.approvals(r.ID)); n != 0 {
				t.Fatalf("%d approvals stored", n)
			}
			_, err = h.begin(h.p("gina"), r.ID)
			wantErr(t, err, airlock.ECONFLICT, ReasonRequesterInvalid)
			if e := h.aud.ofType("elevation.approval"); e[len(e)-1].Reason != string(ReasonRequesterInvalid) {
				t.Fatalf("refusal audited as %+v", e[len(e)-1])
			}
		})
	}
}

// enrolSynced enrols a synced (backup-eligible) passkey for p on p's own
// device: it may serve tier 2 only.
func (h *harness) enrolSynced(p *person) (*passkeytest.Authenticator, []byte) {
	h.tb.Helper()
	a := passkeytest.New()
	a.Flags = passkeytest.Flags{BackupEligible: true, BackupState: true}
	secret, _, err := h.pk.IssueEnrolmentToken(h.ctx, "issuer", p.user.ID, p.dev.ID, airlock.PurposeEnrol, passkey.Meta{})
	if err != nil {
		h.tb.Fatal(err)
	}
	b, err := h.pk.BeginEnrol(h.ctx, secret, passkey.Meta{})
	if err != nil {
		h.tb.Fatal(err)
	}
	resp, _, err := a.Register(testOrigin, mustJSON(h.tb, b))
	if err != nil {
		h.tb.Fatal(err)
	}
	res, err := h.pk.FinishEnrol(h.ctx, b.Ceremony, resp, passkey.Meta{})
	if err != nil {
		h.tb.Fatal(err)
	}
	if res.Credential.TierCap != 2 {
		h.tb.Fatalf("synced passkey tier cap %d, want 2", res.Credential.TierCap)
	}
	return a, res.Credential.ID
}

// TestApprovalPasskeyMustServeScopeTier: the approval's own assertion must
// come from a passkey fit for the scope's tier. An approver on a tier-0
// session (signed in with a device-bound passkey) who also has a synced
// passkey on that device cannot approve a tier-0 or tier-1 request with
// the synced one (NIST SP 800-63B-4: syncable authenticators are not
// AAL3; DESIGN: a synced passkey never serves above tier 2): it is not
// offered, and an assertion made with it anyway is refused.
func TestApprovalPasskeyMustServeScopeTier(t *testing.T) {
	for _, tc := range []struct{ name, scope, approver string }{
		{"fail-synced-passkey-tier-0-scope", "dba@db-prod", "bob"},
		{"fail-synced-passkey-tier-1-scope", "deployer@ci", "frank"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			p := h.p(tc.approver)
			synced, syncedID := h.enrolSynced(p)
			r, _ := h.ask(h.p("alice"), tc.scope, 30*time.Minute)
			b, err := h.begin(p, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			var o struct {
				PublicKey struct {
					AllowCredentials []struct{ ID string } `json:"allowCredentials"`
				} `json:"publicKey"`
			}
			if err := json.Unmarshal(mustJSON(t, b), &o); err != nil {
				t.Fatal(err)
			}
			for _, c := range o.PublicKey.AllowCredentials {
				if c.ID == b64(syncedID) {
					t.Errorf("the synced passkey is offered for a tier-%d approval", r.Scope.Tier)
				}
			}
			resp, err := synced.Assert(testOrigin, mustJSON(t, b), passkeytest.WithCredential(syncedID))
			if err != nil {
				t.Fatal(err)
			}
			_, g, err := h.svc.FinishApproval(h.ctx, b.Ceremony, resp, p.sub(), "", passkey.Meta{})
			if g != nil {
				t.Fatalf("grant %s from a synced passkey's approval", g.ID)
			}
			wantErr(t, err, airlock.EUNAUTHORIZED, Reason(passkey.ReasonWrongCredential))
			if n := len(h.approvals(r.ID)); n != 0 {
				t.Fatalf("%d approvals stored", n)
			}
		})
	}
	t.Run("ok-synced-passkey-tier-2-scope", func(t *testing.T) {
		h := newHarness(t, nil)
		h.dec.decide = func(decide.Request) policy.Decision { return policy.Decision{Outcome: policy.ApprovalRequired} }
		frank := h.p("frank")
		synced, syncedID := h.enrolSynced(frank)
		r, _ := h.ask(h.p("alice"), "viewer@grafana", 30*time.Minute)
		b, err := h.begin(frank, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := synced.Assert(testOrigin, mustJSON(t, b), passkeytest.WithCredential(syncedID))
		if err != nil {
			t.Fatal(err)
		}
		if _, g, err := h.svc.FinishApproval(h.ctx, b.Ceremony, resp, frank.sub(), "", passkey.Meta{}); err != nil || g == nil {
			t.Fatalf("tier-2 approval with a synced passkey: %+v %v", g, err)
		}
	})
}
