package elevate

import (
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
// appear.
func mergeRules(a, b Rule) Rule {
	out := Rule{AllOf: append([]Quorum(nil), a.AllOf...)}
	for _, q := range b.AllOf {
		found := false
		for i := range out.AllOf {
			if out.AllOf[i].Group == q.Group {
				out.AllOf[i].Min = max(out.AllOf[i].Min, q.Min)
				found = true
			}
		}
		if !found {
			out.AllOf = append(out.AllOf, q)
		}
	}
	return out
}
