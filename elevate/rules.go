package elevate

import (
	"slices"
	"strings"
)

// rule returns the approval rule a request names. The policy may name
// several (comma-separated, policy.Obligations.ApprovalRule) when several
// approval policies matched: all must be satisfied, so they are merged into
// one rule that asks, of every group any of them names, the largest number
// any of them asks — with one person counting once across all groups, an
// approval set that meets the merged rule meets each of them. A name the
// config does not define makes ok false (the caller refuses: fail closed).
func (s *Service) rule(names string) (Rule, bool) {
	if names == "" {
		return Rule{}, false
	}
	var merged Rule
	for _, name := range strings.Split(names, ",") {
		r, ok := s.cfg.Rules[name]
		if !ok || len(r.AllOf) == 0 {
			return Rule{}, false
		}
		merged = mergeRules(merged, r)
	}
	return merged, true
}

// mergeRules returns a rule met exactly when every group of a and of b
// has at least the larger of their minimums, in the order the groups first
// appear. a has each group once (it is a merge); b may name a group twice,
// which within one rule asks for the sum (one person counting once).
func mergeRules(a, b Rule) Rule {
	out := Rule{AllOf: slices.Clone(a.AllOf)}
	var own []Quorum // b with each group once
	for _, q := range b.AllOf {
		if i := slices.IndexFunc(own, func(o Quorum) bool { return o.Group == q.Group }); i >= 0 {
			own[i].Min += q.Min
		} else {
			own = append(own, q)
		}
	}
	for _, q := range own {
		if i := slices.IndexFunc(out.AllOf, func(o Quorum) bool { return o.Group == q.Group }); i >= 0 {
			out.AllOf[i].Min = max(out.AllOf[i].Min, q.Min)
		} else {
			out.AllOf = append(out.AllOf, q)
		}
	}
	return out
}
