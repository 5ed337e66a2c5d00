package elevate

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"airlock"
	"airlock/decide"
	"airlock/policy"
)

func TestRequestAutoApproved(t *testing.T) {
	h := newHarness(t, nil)
	alice := h.p("alice")
	r, g := h.ask(alice, "viewer@grafana", 2*time.Hour)
	now := h.clk.Now()
	if r.Status != airlock.RequestApproved || r.ResolvedBy != "policy" || g == nil || r.GrantID != g.ID {
		t.Fatalf("request %+v grant %+v, want approved by policy with a grant", r, g)
	}
	if !g.NotBefore.Equal(now) || !g.NotAfter.Equal(now.Add(2*time.Hour)) || g.SessionID != alice.sess.ID ||
		g.UserID != alice.user.ID || g.DeviceID != alice.dev.ID || !bytes.Equal(g.CredentialID, alice.sess.CredentialID) ||
		g.Scope.String() != "viewer@grafana" || g.Scope.Tier != 2 {
		t.Fatalf("grant %+v", g)
	}
	stored := h.request(r.ID)
	if stored.Status != airlock.RequestApproved || stored.GrantID != g.ID || !bytes.Equal(stored.Digest, RequestDigest(stored)) {
		t.Fatalf("stored request %+v", stored)
	}
	// The decision was asked on the resource, with the request's params.
	req := h.dec.reqs[0]
	if req.Action != ActionRequest || req.Resource != "grafana" || req.Target != nil || req.AccessRequestID != r.ID ||
		string(req.Params) != `{"duration_s":7200,"reason":"fix the replication lag","scope":"viewer@grafana","ticket":"OPS-1"}` {
		t.Fatalf("decide request %+v params %s", req, req.Params)
	}
	for _, typ := range []string{"elevation.requested", "elevation.approved", "elevation.granted"} {
		evs := h.aud.ofType(typ)
		if len(evs) != 1 || evs[0].RequestID != r.ID || evs[0].DecisionID != r.DecisionID || evs[0].UserID != alice.user.ID {
			t.Fatalf("%s events %+v", typ, evs)
		}
	}
	if e := h.aud.ofType("elevation.granted")[0]; e.GrantID != g.ID || e.SessionID != alice.sess.ID || e.Actor != "policy" {
		t.Fatalf("elevation.granted %+v", e)
	}
	if len(h.not.calls) != 0 {
		t.Fatalf("an auto-approval notified %+v", h.not.calls)
	}
}

func TestRequestPendingNotifiesApprovers(t *testing.T) {
	h := newHarness(t, nil)
	r, g := h.ask(h.p("alice"), "dba@db-prod", 30*time.Minute)
	if g != nil || r.Status != airlock.RequestPending || r.ApprovalRule != "tier0" || !r.ExpiresAt.Equal(h.clk.Now().Add(DefaultRequestTTL)) {
		t.Fatalf("request %+v grant %+v", r, g)
	}
	// Everyone who could approve under tier0: members of team-leads or
	// security of tier 0 — not alice (the requester), not erin (tier 1),
	// not frank/gina/root/mal (no such group).
	ns := h.not.ofKind(NotifyRequested)
	if got := userIDs(ns); !slices.Equal(got, []string{"u-bob", "u-carol", "u-dave"}) {
		t.Fatalf("notified %v", got)
	}
	p := ns[0].Payload
	if p["request_id"] != r.ID || p["requester"] != "alice" || p["scope"] != "dba@db-prod" || p["reason"] != "fix the replication lag" ||
		p["duration_s"] != int64(1800) || p["approval_url"] != testOrigin+"/approve/"+r.ID {
		t.Fatalf("payload %v", p)
	}
	if e := h.aud.ofType("elevation.requested"); len(e) != 1 || e[0].Outcome != airlock.OutcomeSuccess || e[0].Details["rule"] != "tier0" {
		t.Fatalf("elevation.requested %+v", e)
	}
	// A tier scope is decided on its synthetic resource.
	r2, _ := h.ask(h.p("alice"), "tier:1", time.Hour)
	req := h.dec.reqs[len(h.dec.reqs)-1]
	if req.Resource != "tier:1" || req.Target == nil || req.Target.Name != "tier:1" || req.Target.Tier != 1 || r2.ApprovalRule != DefaultRule {
		t.Fatalf("tier scope decided as %+v (target %+v), rule %q", req, req.Target, r2.ApprovalRule)
	}
}

// TestRequestDurationCapped: durations are capped per scope tier (1 h, 4 h,
// 8 h by default); the asked and the granted duration are both audited.
func TestRequestDurationCapped(t *testing.T) {
	for _, tc := range []struct {
		scope      string
		ask, grant time.Duration
	}{
		{"dba@db-prod", 3 * time.Hour, time.Hour},
		{"dba@db-prod", 20 * time.Minute, 20 * time.Minute},
		{"deployer@ci", 10 * time.Hour, 4 * time.Hour},
		{"tier:1", 5 * time.Hour, 4 * time.Hour},
		{"viewer@grafana", 24 * time.Hour, 8 * time.Hour},
		{"viewer@grafana", 90*time.Second + 500*time.Millisecond, 90 * time.Second},
	} {
		h := newHarness(t, nil)
		r, _ := h.ask(h.p("alice"), tc.scope, tc.ask)
		if r.Duration != tc.grant {
			t.Errorf("%s for %s: duration %s, want %s", tc.scope, tc.ask, r.Duration, tc.grant)
		}
		e := h.aud.ofType("elevation.requested")[0]
		if e.Details["asked_duration_s"] != int64(tc.ask/time.Second) || e.Details["duration_s"] != int64(tc.grant/time.Second) {
			t.Errorf("%s: audited asked %v granted %v", tc.scope, e.Details["asked_duration_s"], e.Details["duration_s"])
		}
	}
	h := newHarness(t, func(c *Config) { c.Caps = [3]time.Duration{10 * time.Minute, time.Hour, time.Hour} })
	if r, _ := h.ask(h.p("alice"), "dba@db-prod", time.Hour); r.Duration != 10*time.Minute {
		t.Errorf("configured cap: duration %s, want 10m", r.Duration)
	}
}

func TestRequestRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(h *harness) (decide.Subject, Ask)
		code   string
		reason Reason
	}{
		{"fail-user-tier-too-low", func(h *harness) (decide.Subject, Ask) {
			return h.p("erin").sub(), Ask{Scope: "dba@db-prod", Duration: time.Hour, Reason: "x"}
		}, airlock.EFORBIDDEN, ReasonTierTooLow},
		{"fail-session-tier-too-low", func(h *harness) (decide.Subject, Ask) {
			a := h.p("alice")
			sub := a.sub()
			sub.Session = h.newSession(a, 2)
			return sub, Ask{Scope: "tier:1", Duration: time.Hour, Reason: "x"}
		}, airlock.EFORBIDDEN, ReasonTierTooLow},
		{"fail-unknown-resource", func(h *harness) (decide.Subject, Ask) {
			return h.p("alice").sub(), Ask{Scope: "dba@nowhere", Duration: time.Hour, Reason: "x"}
		}, airlock.ENOTFOUND, ReasonUnknownResource},
		{"fail-no-reason", func(h *harness) (decide.Subject, Ask) {
			return h.p("alice").sub(), Ask{Scope: "dba@db-prod", Duration: time.Hour}
		}, airlock.EINVALID, ReasonInvalidReason},
		{"fail-no-duration", func(h *harness) (decide.Subject, Ask) {
			return h.p("alice").sub(), Ask{Scope: "dba@db-prod", Reason: "x"}
		}, airlock.EINVALID, ReasonInvalidDuration},
		{"fail-device-noncompliant", func(h *harness) (decide.Subject, Ask) {
			a := h.p("alice")
			a.dev.Posture.DiskEncrypted = false
			return a.sub(), Ask{Scope: "viewer@grafana", Duration: time.Hour, Reason: "x"}
		}, airlock.EFORBIDDEN, ReasonDeviceNonCompliant},
		{"fail-device-untrusted", func(h *harness) (decide.Subject, Ask) {
			a := h.p("alice")
			a.dev.Trust = airlock.TrustPending
			return a.sub(), Ask{Scope: "viewer@grafana", Duration: time.Hour, Reason: "x"}
		}, airlock.EFORBIDDEN, ReasonDeviceUntrusted},
		{"fail-rule-not-configured", func(h *harness) (decide.Subject, Ask) {
			h.dec.decide = func(decide.Request) policy.Decision {
				return policy.Decision{Outcome: policy.ApprovalRequired, Obligations: policy.Obligations{ApprovalRule: "three-vps"}}
			}
			return h.p("alice").sub(), Ask{Scope: "dba@db-prod", Duration: time.Hour, Reason: "x"}
		}, airlock.EFORBIDDEN, ReasonUnknownRule},
		{"fail-policy-deny", func(h *harness) (decide.Subject, Ask) {
			h.dec.decide = func(decide.Request) policy.Decision {
				return policy.Decision{Outcome: policy.Deny, Reasons: []policy.Reason{{Policy: "no-contractors", Text: "contractors may not elevate"}}}
			}
			return h.p("alice").sub(), Ask{Scope: "dba@db-prod", Duration: time.Hour, Reason: "x"}
		}, airlock.EFORBIDDEN, ReasonPolicyDeny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			sub, ask := tc.setup(h)
			_, _, err := h.svc.Request(h.ctx, sub, ask)
			wantErr(t, err, tc.code, tc.reason)
			if rs, _ := h.store.ListAccessRequests(h.ctx, airlock.AccessRequestFilter{}); len(rs) != 0 {
				t.Fatalf("a refused request was stored: %+v", rs[0])
			}
			evs := h.aud.ofType("elevation.requested")
			if len(evs) != 1 || evs[0].Outcome != airlock.OutcomeDenied || evs[0].Reason != string(tc.reason) || evs[0].UserID != sub.User.ID {
				t.Fatalf("refusal audited as %+v", evs)
			}
			if len(h.not.calls) != 0 {
				t.Fatalf("a refused request notified %+v", h.not.calls)
			}
		})
	}
}

func TestRequestPolicyDenyCarriesDecision(t *testing.T) {
	h := newHarness(t, nil)
	h.dec.decide = func(decide.Request) policy.Decision {
		return policy.Decision{ID: "dec_deny", Outcome: policy.Deny, Reasons: []policy.Reason{{Policy: "p1", Text: "not today"}}}
	}
	_, _, err := h.svc.Request(h.ctx, h.p("alice").sub(), Ask{Scope: "dba@db-prod", Duration: time.Hour, Reason: "x"})
	var dr interface{ DecisionResult() *decide.Result }
	if !errors.As(err, &dr) || dr.DecisionResult() == nil || dr.DecisionResult().Decision.ID != "dec_deny" {
		t.Fatalf("error %v does not carry the decision", err)
	}
	if msg := airlock.ErrorMessage(err); msg != "the policy denies this request: not today" {
		t.Fatalf("message %q", msg)
	}
}

func TestRequestStepUp(t *testing.T) {
	h := newHarness(t, nil)
	h.dec.decide = func(req decide.Request) policy.Decision {
		if req.Proof == "proof-1" {
			return policy.Decision{Outcome: policy.Allow}
		}
		return policy.Decision{Outcome: policy.StepUp}
	}
	ask := Ask{Scope: "viewer@grafana", Duration: time.Hour, Reason: "x"}
	_, _, err := h.svc.Request(h.ctx, h.p("alice").sub(), ask)
	var su *StepUpRequired
	if !errors.As(err, &su) || su.Result == nil || su.Result.StepUp == nil {
		t.Fatalf("got %v, want *StepUpRequired", err)
	}
	if e := h.aud.ofType("elevation.requested"); len(e) != 1 || e[0].Reason != string(ReasonStepUpRequired) || e[0].TransactionID != "txn-1" {
		t.Fatalf("step-up audited as %+v", e)
	}
	ask.Proof = "proof-1"
	r, g, err := h.svc.Request(h.ctx, h.p("alice").sub(), ask)
	if err != nil || g == nil || r.Status != airlock.RequestApproved {
		t.Fatalf("with the proof: %+v %+v %v", r, g, err)
	}
}

func TestRequestRateLimited(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RequestsPerHour = 2 })
	for range 2 {
		h.ask(h.p("alice"), "dba@db-prod", time.Hour)
	}
	_, _, err := h.svc.Request(h.ctx, h.p("alice").sub(), Ask{Scope: "dba@db-prod", Duration: time.Hour, Reason: "x"})
	wantErr(t, err, airlock.ERATELIMIT, ReasonRateLimited)
	// Per user: bob may still ask; alice again in the next hour.
	h.ask(h.p("bob"), "dba@db-prod", time.Hour)
	h.clk.Advance(time.Hour)
	h.ask(h.p("alice"), "dba@db-prod", time.Hour)
}

// TestRequestFailsClosed: no decision, or no audit record, means no
// request and no grant.
func TestRequestFailsClosed(t *testing.T) {
	t.Run("fail-decider-error", func(t *testing.T) {
		h := newHarness(t, nil)
		h.dec.err = airlock.Errorf(airlock.EUNAVAILABLE, "store down")
		_, _, err := h.svc.Request(h.ctx, h.p("alice").sub(), Ask{Scope: "viewer@grafana", Duration: time.Hour, Reason: "x"})
		if airlock.ErrorCode(err) != airlock.EUNAVAILABLE {
			t.Fatalf("got %v", err)
		}
		if gs := h.grantsOf("u-alice"); len(gs) != 0 {
			t.Fatalf("grants %+v", gs)
		}
	})
	t.Run("fail-audit-error", func(t *testing.T) {
		h := newHarness(t, nil)
		h.aud.fail(errors.New("audit log down"))
		_, _, err := h.svc.Request(h.ctx, h.p("alice").sub(), Ask{Scope: "viewer@grafana", Duration: time.Hour, Reason: "x"})
		if err == nil {
			t.Fatal("request succeeded without an audit record")
		}
		for _, g := range h.grantsOf("u-alice") {
			if g.IsActive(h.clk.Now()) {
				t.Fatalf("unaudited grant %+v is active", g)
			}
		}
		rs, _ := h.store.ListAccessRequests(h.ctx, airlock.AccessRequestFilter{Status: airlock.RequestPending})
		if len(rs) != 0 {
			t.Fatalf("unaudited request pending: %+v", rs)
		}
	})
	t.Run("fail-notify-error", func(t *testing.T) {
		h := newHarness(t, nil)
		h.not.err = errors.New("outbox down")
		_, _, err := h.svc.Request(h.ctx, h.p("alice").sub(), Ask{Scope: "dba@db-prod", Duration: time.Hour, Reason: "x"})
		if airlock.ErrorCode(err) != airlock.EUNAVAILABLE {
			t.Fatalf("got %v", err)
		}
		rs, _ := h.store.ListAccessRequests(h.ctx, airlock.AccessRequestFilter{})
		if len(rs) != 1 || rs[0].Status != airlock.RequestCancelled {
			t.Fatalf("requests %+v, want the one withdrawn", rs)
		}
	})
}
