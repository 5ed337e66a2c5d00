package elevate

import (
	"testing"
	"time"
)

// BenchmarkActiveGrants is what every decision of a session pays for the
// grants (decide.Service.Grants): one indexed query and, when the session
// holds a grant, one lookup of the passkey its grants rest on (all of a
// session's grants rest on the session's passkey; session, device and user
// come with the caller). SQLite in a temp dir.
func BenchmarkActiveGrants(b *testing.B) {
	for _, n := range []int{0, 1, 3} {
		b.Run(map[int]string{0: "no-grants", 1: "one-grant", 3: "three-grants"}[n], func(b *testing.B) {
			h := newHarness(b, nil)
			alice := h.p("alice")
			for range n {
				h.ask(alice, "viewer@grafana", time.Hour)
			}
			sub := alice.sub()
			b.ResetTimer()
			for b.Loop() {
				gs, err := h.svc.ActiveGrants(h.ctx, sub)
				if err != nil || len(gs) != n {
					b.Fatal(len(gs), err)
				}
			}
		})
	}
}

// BenchmarkCount is the quorum matching of a request with five approvals
// against the two-group tier-0 rule.
func BenchmarkCount(b *testing.B) {
	rule := Rule{AllOf: []Quorum{{Group: "team-leads", Min: 1}, {Group: "security", Min: 1}}}
	as := approvalsOf("alice", "dave", "bob", "bob2", "carol")
	for b.Loop() {
		if !Count(rule, as, "u-alice").Met {
			b.Fatal("not met")
		}
	}
}

// BenchmarkRequestDigest is the digest of a typical request.
func BenchmarkRequestDigest(b *testing.B) {
	r := sampleRequest()
	for b.Loop() {
		if len(RequestDigest(r)) != 32 {
			b.Fatal("not a SHA-256")
		}
	}
}
