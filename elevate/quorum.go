package elevate

import "airlock"

// Tally is how far a set of approvals goes towards a rule.
type Tally struct {
	// Met reports whether every quorum of the rule is met.
	Met bool
	// Missing lists, for each quorum not met, how many more approvals it
	// needs from its group (Min is the shortfall), in rule order.
	Missing []Quorum
	// Counted maps each approver whose approval fills a place to the group
	// it counts for.
	Counted map[string]string
}

// Count tallies approvals against rule, one person counting once across
// all quorums: the approvals are matched to the rule's places (Min places
// per quorum, each open to members of its group as recorded in the
// approval's Groups) by a maximum bipartite matching, so that a person in
// both team-leads and security fills one place, not one of each, and the
// places are filled as fully as any assignment can. Approvals by
// requesterID and second approvals by the same approver are ignored.
func Count(rule Rule, approvals []*airlock.Approval, requesterID string) Tally {
	// The places: one per required approval.
	var places []int // quorum index of each place
	for qi, q := range rule.AllOf {
		for range q.Min {
			places = append(places, qi)
		}
	}
	var people []*airlock.Approval
	seen := map[string]bool{}
	for _, a := range approvals {
		if a == nil || a.ApproverID == "" || a.ApproverID == requesterID || seen[a.ApproverID] {
			continue
		}
		seen[a.ApproverID] = true
		people = append(people, a)
	}
	can := func(p, place int) bool { return contains(people[p].Groups, rule.AllOf[places[place]].Group) }

	// Kuhn's augmenting paths: holder[place] is the person filling it.
	holder := make([]int, len(places))
	for i := range holder {
		holder[i] = -1
	}
	var augment func(p int, visited []bool) bool
	augment = func(p int, visited []bool) bool {
		for pl := range places {
			if visited[pl] || !can(p, pl) {
				continue
			}
			visited[pl] = true
			if holder[pl] == -1 || augment(holder[pl], visited) {
				holder[pl] = p
				return true
			}
		}
		return false
	}
	for p := range people {
		augment(p, make([]bool, len(places)))
	}

	t := Tally{Counted: map[string]string{}}
	filled := make([]int, len(rule.AllOf))
	for pl, p := range holder {
		if p >= 0 {
			filled[places[pl]]++
			t.Counted[people[p].ApproverID] = rule.AllOf[places[pl]].Group
		}
	}
	for qi, q := range rule.AllOf {
		if short := q.Min - filled[qi]; short > 0 {
			t.Missing = append(t.Missing, Quorum{Group: q.Group, Min: short})
		}
	}
	t.Met = len(rule.AllOf) > 0 && len(t.Missing) == 0
	return t
}
