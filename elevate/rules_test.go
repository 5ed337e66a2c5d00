package elevate

import (
	"slices"
	"testing"

	"airlock"
)

// TestRuleMerged: when several approval policies match, every rule they
// name must be met — an operator's stricter rule never loses to a shipped
// one.
func TestRuleMerged(t *testing.T) {
	s := &Service{cfg: Config{Rules: map[string]Rule{
		"default":  {AllOf: []Quorum{{Group: "approvers", Min: 1}}},
		"payments": {AllOf: []Quorum{{Group: "approvers", Min: 2}, {Group: "finance", Min: 1}}},
		"tier0":    {AllOf: []Quorum{{Group: "team-leads", Min: 1}, {Group: "security", Min: 1}}},
		// Two quorums of one group: two different approvers.
		"two-approvers": {AllOf: []Quorum{{Group: "approvers", Min: 1}, {Group: "approvers", Min: 1}}},
	}}}
	r, ok := s.rule("default,payments")
	if !ok || !slices.Equal(r.AllOf, []Quorum{{Group: "approvers", Min: 2}, {Group: "finance", Min: 1}}) {
		t.Fatalf("default,payments: %+v %v", r, ok)
	}
	r, ok = s.rule("payments,tier0")
	if !ok || len(r.AllOf) != 4 {
		t.Fatalf("payments,tier0: %+v %v", r, ok)
	}
	for _, bad := range []string{"", "nope", "default,nope", "default,", ",default"} {
		if _, ok := s.rule(bad); ok {
			t.Errorf("fail-%q: a rule the config lacks was accepted", bad)
		}
	}

	ap := func(id string, groups ...string) *airlock.Approval {
		return &airlock.Approval{ApproverID: id, Groups: groups}
	}
	// A rule naming one group twice asks for the sum, alone or merged.
	for _, names := range []string{"two-approvers", "default,two-approvers", "two-approvers,default"} {
		r, ok := s.rule(names)
		if !ok {
			t.Fatalf("%s: not found", names)
		}
		if Count(r, []*airlock.Approval{ap("usr_a", "approvers")}, "usr_req").Met {
			t.Errorf("fail-%s-one-approver: met by one approver, the rule asks for two", names)
		}
		if !Count(r, []*airlock.Approval{ap("usr_a", "approvers"), ap("usr_b", "approvers")}, "usr_req").Met {
			t.Errorf("ok-%s-two-approvers: not met", names)
		}
	}
	// usr_a and usr_b approvers, usr_f finance: meets default and payments.
	r, _ = s.rule("default,payments")
	if !Count(r, []*airlock.Approval{ap("usr_a", "approvers"), ap("usr_b", "approvers"), ap("usr_f", "finance")}, "usr_req").Met {
		t.Error("ok-both-rules-met: not met")
	}
	// One approver meets "default" alone but not the merged rule.
	if Count(r, []*airlock.Approval{ap("usr_a", "approvers")}, "usr_req").Met {
		t.Error("fail-only-the-weaker-rule-met: met")
	}
	// The merged rule meets each of its parts.
	for _, name := range []string{"default", "payments"} {
		part, _ := s.rule(name)
		if !Count(part, []*airlock.Approval{ap("usr_a", "approvers"), ap("usr_b", "approvers"), ap("usr_f", "finance")}, "usr_req").Met {
			t.Errorf("part %s not met by what meets the merged rule", name)
		}
	}
}
