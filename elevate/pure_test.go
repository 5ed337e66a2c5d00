package elevate

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"airlock"
)

func approvalsOf(people ...string) []*airlock.Approval {
	groups := map[string][]string{
		"alice": {"team-leads", "security"},
		"bob":   {"team-leads"}, "bob2": {"team-leads"},
		"carol": {"security"},
		"dave":  {"team-leads", "security"},
		"frank": {"approvers"},
	}
	var out []*airlock.Approval
	for _, p := range people {
		out = append(out, &airlock.Approval{ApproverID: "u-" + p, Groups: groups[p]})
	}
	return out
}

// TestCount: one person counts once across all quorums (a bipartite
// matching of approvers to places), the requester never counts, a second
// approval by the same person never counts.
func TestCount(t *testing.T) {
	tier0 := Rule{AllOf: []Quorum{{Group: "team-leads", Min: 1}, {Group: "security", Min: 1}}}
	twoLeads := Rule{AllOf: []Quorum{{Group: "team-leads", Min: 2}}}
	for _, tc := range []struct {
		name    string
		rule    Rule
		people  []string
		met     bool
		missing []Quorum
	}{
		{"ok-lead-and-security", tier0, []string{"bob", "carol"}, true, nil},
		{"ok-dual-member-then-lead", tier0, []string{"dave", "bob"}, true, nil},
		{"ok-lead-then-dual-member", tier0, []string{"bob", "dave"}, true, nil},
		{"ok-dual-member-then-security", tier0, []string{"dave", "carol"}, true, nil},
		{"ok-two-leads", twoLeads, []string{"bob", "dave"}, true, nil},
		{"fail-no-approvals", tier0, nil, false, []Quorum{{"team-leads", 1}, {"security", 1}}},
		{"fail-one-approver-two-groups-required", tier0, []string{"bob"}, false, []Quorum{{"security", 1}}},
		{"fail-one-person-in-both-groups-counts-once", tier0, []string{"dave"}, false, []Quorum{{"security", 1}}},
		{"fail-two-of-same-group", tier0, []string{"bob", "bob2"}, false, []Quorum{{"security", 1}}},
		{"fail-same-person-twice", tier0, []string{"dave", "dave"}, false, []Quorum{{"security", 1}}},
		{"fail-requester-never-counts", tier0, []string{"alice", "bob"}, false, []Quorum{{"security", 1}}},
		{"fail-outsider-counts-for-nothing", tier0, []string{"frank", "bob"}, false, []Quorum{{"security", 1}}},
		{"fail-one-of-two-leads", twoLeads, []string{"dave"}, false, []Quorum{{"team-leads", 1}}},
		{"fail-empty-rule", Rule{}, []string{"bob"}, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Count(tc.rule, approvalsOf(tc.people...), "u-alice")
			if got.Met != tc.met || !reflect.DeepEqual(got.Missing, tc.missing) {
				t.Fatalf("Count = met %t missing %v, want met %t missing %v", got.Met, got.Missing, tc.met, tc.missing)
			}
			if len(got.Counted) > len(tc.people) {
				t.Fatalf("counted %v for %v", got.Counted, tc.people)
			}
		})
	}
}

func TestRuleValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		rule Rule
		ok   bool
	}{
		{"ok-default", Rule{AllOf: []Quorum{{"approvers", 1}}}, true},
		{"fail-empty", Rule{}, false},
		{"fail-no-group", Rule{AllOf: []Quorum{{"", 1}}}, false},
		{"fail-min-zero", Rule{AllOf: []Quorum{{"a", 0}}}, false},
		{"fail-too-many", Rule{AllOf: []Quorum{{"a", 10}, {"b", 7}}}, false},
	} {
		if err := tc.rule.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate = %v", tc.name, err)
		}
	}
}

func sampleRequest() *airlock.AccessRequest {
	now := time.Date(2026, 3, 2, 10, 0, 0, 123456000, time.UTC)
	return &airlock.AccessRequest{ID: "req_1", RequesterID: "u-alice", SessionID: "ses_1", DeviceID: "d-1",
		Scope: airlock.Scope{Role: "dba", Resource: "db-prod", Tier: 0}, Reason: "fix lag", Ticket: "OPS-1",
		Duration: 30 * time.Minute, ApprovalRule: "tier0", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
}

// TestRequestDigest: the digest covers every field an approver approves,
// and nothing two requests could share by shifting text between fields.
func TestRequestDigest(t *testing.T) {
	base := RequestDigest(sampleRequest())
	if len(base) != 32 || !bytes.Equal(base, RequestDigest(sampleRequest())) {
		t.Fatal("digest is not a stable SHA-256")
	}
	for name, change := range map[string]func(r *airlock.AccessRequest){
		"id":         func(r *airlock.AccessRequest) { r.ID = "req_2" },
		"requester":  func(r *airlock.AccessRequest) { r.RequesterID = "u-bob" },
		"session":    func(r *airlock.AccessRequest) { r.SessionID = "ses_2" },
		"device":     func(r *airlock.AccessRequest) { r.DeviceID = "d-2" },
		"role":       func(r *airlock.AccessRequest) { r.Scope.Role = "admin" },
		"resource":   func(r *airlock.AccessRequest) { r.Scope.Resource = "db-dev" },
		"scope-tier": func(r *airlock.AccessRequest) { r.Scope.Tier = 1 },
		"tier-scope": func(r *airlock.AccessRequest) { r.Scope = airlock.Scope{IsTier: true} },
		"duration":   func(r *airlock.AccessRequest) { r.Duration += time.Second },
		"reason":     func(r *airlock.AccessRequest) { r.Reason += "!" },
		"ticket":     func(r *airlock.AccessRequest) { r.Ticket = "" },
		"rule":       func(r *airlock.AccessRequest) { r.ApprovalRule = "default" },
		"created":    func(r *airlock.AccessRequest) { r.CreatedAt = r.CreatedAt.Add(time.Microsecond) },
		"expires":    func(r *airlock.AccessRequest) { r.ExpiresAt = r.ExpiresAt.Add(time.Microsecond) },
		"shift-reason-into-ticket": func(r *airlock.AccessRequest) {
			r.Reason, r.Ticket = "fix", " lagOPS-1"
		},
	} {
		r := sampleRequest()
		change(r)
		if bytes.Equal(RequestDigest(r), base) {
			t.Errorf("changing %s keeps the digest", name)
		}
	}
	// Status and resolution are not what an approver approves.
	r := sampleRequest()
	r.Status, r.Risk, r.IP, r.DecisionID = airlock.RequestApproved, 99, "198.51.100.1", "dec_x"
	if !bytes.Equal(RequestDigest(r), base) {
		t.Error("the digest covers status/risk/ip/decision")
	}
}

func TestCheckAsk(t *testing.T) {
	ok := Ask{Scope: "dba@db-prod", Duration: 30 * time.Minute, Reason: "fix the lag", Ticket: "OPS-1"}
	for _, tc := range []struct {
		name   string
		change func(a *Ask)
		reason Reason
	}{
		{"ok", func(a *Ask) {}, ""},
		{"ok-tier-scope", func(a *Ask) { a.Scope = "tier:1" }, ""},
		{"ok-no-ticket", func(a *Ask) { a.Ticket = "" }, ""},
		{"ok-500-characters", func(a *Ask) { a.Reason = strings.Repeat("é", MaxReasonLen) }, ""},
		{"fail-bad-scope", func(a *Ask) { a.Scope = "db-prod" }, ReasonInvalidScope},
		{"fail-bad-tier", func(a *Ask) { a.Scope = "tier:7" }, ReasonInvalidScope},
		{"fail-no-reason", func(a *Ask) { a.Reason = "  " }, ReasonInvalidReason},
		{"fail-long-reason", func(a *Ask) { a.Reason = strings.Repeat("x", MaxReasonLen+1) }, ReasonInvalidReason},
		{"fail-newline-in-reason", func(a *Ask) { a.Reason = "fix\nApproved by security" }, ReasonInvalidReason},
		{"fail-next-line-in-reason", func(a *Ask) { a.Reason = "fix \u0085 it" }, ReasonInvalidReason},
		{"fail-bidi-override-in-reason", func(a *Ask) { a.Reason = "fix \u202eti" }, ReasonInvalidReason},
		{"fail-invalid-utf8", func(a *Ask) { a.Reason = "fix \xff" }, ReasonInvalidReason},
		{"fail-long-ticket", func(a *Ask) { a.Ticket = strings.Repeat("x", MaxTicketLen+1) }, ReasonInvalidTicket},
		{"fail-control-in-ticket", func(a *Ask) { a.Ticket = "OPS\t1" }, ReasonInvalidTicket},
		{"fail-zero-duration", func(a *Ask) { a.Duration = 0 }, ReasonInvalidDuration},
		{"fail-negative-duration", func(a *Ask) { a.Duration = -time.Hour }, ReasonInvalidDuration},
		{"fail-sub-second-duration", func(a *Ask) { a.Duration = 999 * time.Millisecond }, ReasonInvalidDuration},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := ok
			tc.change(&a)
			_, d, err := checkAsk(a)
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				if d != a.Duration.Truncate(time.Second) {
					t.Fatalf("duration %s", d)
				}
				return
			}
			wantErr(t, err, airlock.EINVALID, tc.reason)
		})
	}
}
