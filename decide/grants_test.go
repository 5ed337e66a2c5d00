package decide

import (
	"context"
	"slices"
	"testing"
	"time"

	"airlock"
	"airlock/policy"
)

// grantSource is a fake GrantSource.
type grantSource struct {
	grants []*airlock.Grant
	err    error
	asked  []string // session ids asked about
}

var _ GrantSource = (*grantSource)(nil)

func (g *grantSource) ActiveGrants(_ context.Context, sub Subject) ([]*airlock.Grant, error) {
	g.asked = append(g.asked, sub.Session.ID)
	return g.grants, g.err
}

func grant(scope airlock.Scope) *airlock.Grant {
	return &airlock.Grant{ID: airlock.NewID(airlock.PrefixGrant), Scope: scope, NotBefore: t0.Add(-time.Minute), NotAfter: t0.Add(time.Hour)}
}

// TestDecideGrants: resources labelled access=jit are closed without a
// covering grant of the session and open with one; the decision records the
// grants so that a replay gives the same answer.
func TestDecideGrants(t *testing.T) {
	tests := []struct {
		name   string
		grants []*airlock.Grant
		err    error
		want   policy.Outcome
		roles  []string
	}{
		{"fail-no-grant-source", nil, nil, policy.Deny, nil},
		{"ok-role-grant", []*airlock.Grant{grant(airlock.Scope{Role: "dba", Resource: "db-prod", Tier: 1})}, nil, policy.Allow, []string{"dba"}},
		{"ok-tier-grant-covers-less-privileged", []*airlock.Grant{grant(airlock.Scope{Tier: 0, IsTier: true})}, nil, policy.Allow, nil},
		{"fail-tier-grant-less-privileged", []*airlock.Grant{grant(airlock.Scope{Tier: 2, IsTier: true})}, nil, policy.Deny, nil},
		{"fail-grant-on-other-resource", []*airlock.Grant{grant(airlock.Scope{Role: "dba", Resource: "prod-hosts", Tier: 1})}, nil, policy.Deny, nil},
		// db-prod (tier 1 now) was tier 2 when the grant was approved: a
		// grant never covers more privilege than it was approved for.
		{"fail-role-grant-resource-reclassified-more-privileged", []*airlock.Grant{grant(airlock.Scope{Role: "dba", Resource: "db-prod", Tier: 2})}, nil, policy.Deny, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			src := &grantSource{grants: tt.grants}
			if tt.name != "fail-no-grant-source" {
				f.svc.Grants = src
			}
			res := f.decide(t, Request{Action: "db.write", Resource: "db-prod"})
			if res.Decision.Outcome != tt.want {
				t.Fatalf("outcome %s (%+v), want %s", res.Decision.Outcome, res.Decision.Reasons, tt.want)
			}
			if tt.want == policy.Deny && !hasReason(res.Decision, "jit-grant-required") {
				t.Errorf("reasons %+v lack jit-grant-required", res.Decision.Reasons)
			}
			if !slices.Equal(res.Input.GrantRoles, tt.roles) || res.Input.Granted != (tt.want == policy.Allow) || len(res.Input.Grants) != len(tt.grants) {
				t.Errorf("input grants %v granted %v roles %v", res.Input.Grants, res.Input.Granted, res.Input.GrantRoles)
			}
			if f.svc.Grants != nil && (len(src.asked) != 1 || src.asked[0] != "ses-1") {
				t.Errorf("grant source asked about %v", src.asked)
			}
			replay := policy.NewEngine(policy.Default(), policy.DefaultConfig()).Decide(res.Input)
			if replay.Outcome != res.Decision.Outcome {
				t.Errorf("replay %s, decision %s", replay.Outcome, res.Decision.Outcome)
			}
		})
	}
}

// TestDecideGrantSourceFailsClosed: a failing grant source gives no
// decision at all.
func TestDecideGrantSourceFailsClosed(t *testing.T) {
	f := newFixture(t)
	f.svc.Grants = &grantSource{err: airlock.Errorf(airlock.EUNAVAILABLE, "store down")}
	before := f.aud.count()
	if res, err := f.svc.Decide(f.ctx, f.sub, Request{Action: "db.write", Resource: "db-prod", IP: "192.0.2.1"}); err == nil {
		t.Fatalf("decided %+v without grants", res.Decision)
	}
	if f.aud.count() != before {
		t.Error("a decision was audited although none was given")
	}
}

// TestDecideTarget: an in-process caller may decide on a synthetic resource
// (a tier scope); a mismatched or invalid target is refused. The access
// request and grant ids land in the audit record.
func TestDecideTarget(t *testing.T) {
	f := newFixture(t)
	target := &airlock.Resource{Name: "tier:1", Tier: 1}
	res := f.decide(t, Request{Action: "elevation.request", Resource: "tier:1", Target: target, AccessRequestID: "req_1", RequestID: "http-1"})
	if res.Decision.Outcome != policy.ApprovalRequired || res.Decision.Obligations.ApprovalRule != "default" {
		t.Fatalf("tier-1 scope: %s %+v", res.Decision.Outcome, res.Decision.Obligations)
	}
	if e := f.aud.last(t); e.RequestID != "req_1" || e.Details["http_request_id"] != "http-1" {
		t.Errorf("audit request id %q, details %v", e.RequestID, e.Details["http_request_id"])
	}
	for _, bad := range []*airlock.Resource{{Name: "tier:2", Tier: 1}, {Name: "tier:1", Tier: 7}} {
		_, err := f.svc.Decide(f.ctx, f.sub, Request{Action: "elevation.request", Resource: "tier:1", Target: bad})
		if airlock.ErrorCode(err) != airlock.EINVALID {
			t.Errorf("target %+v: %v", bad, err)
		}
	}
	// Without a target the synthetic name is unknown: deny.
	if res := f.decide(t, Request{Action: "elevation.request", Resource: "tier:1"}); res.Decision.Outcome != policy.Deny {
		t.Errorf("no target: %s", res.Decision.Outcome)
	}
	if _, err := f.svc.LookupResource(f.ctx, "db-prod"); err != nil {
		t.Error(err)
	}
	if _, err := f.svc.LookupResource(f.ctx, "nope"); airlock.ErrorCode(err) != airlock.ENOTFOUND {
		t.Errorf("unknown resource: %v", err)
	}
}
