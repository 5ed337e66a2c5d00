package storetest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"airlock"
)

// roleScope and tierScope are the two kinds of scope the fixtures use.
var (
	roleScope = airlock.Scope{Role: "dba", Resource: "db-prod", Tier: 1}
	tierScope = airlock.Scope{Tier: 2, IsTier: true}
)

// fullRequest is a resolved request with every field set; pendingRequest
// returns it pending.
func fullRequest(id, requester string, created time.Time) *airlock.AccessRequest {
	return &airlock.AccessRequest{
		ID:           id,
		RequesterID:  requester,
		SessionID:    "s-" + requester,
		DeviceID:     "d-1",
		CredentialID: bytesOf(11, 64),
		Scope:        roleScope,
		Reason:       "INC-4711: rotate the replication password",
		Ticket:       "INC-4711",
		Duration:     90*time.Minute + 1,
		DecisionID:   "dec-" + id,
		ApprovalRule: "leads-and-security",
		Risk:         37,
		IP:           "2001:db8::9",
		UserAgent:    "airlock-cli/1.0",
		Digest:       bytesOf(5, 32),
		Status:       airlock.RequestDenied,
		CreatedAt:    created,
		ExpiresAt:    created.Add(time.Hour).In(elsewhere),
		ResolvedAt:   created.Add(10 * time.Minute),
		ResolvedBy:   "u-lead",
		Note:         "not during the freeze",
		GrantID:      "grt_none",
	}
}

func pendingRequest(id, requester string, created time.Time) *airlock.AccessRequest {
	r := fullRequest(id, requester, created)
	r.Status = airlock.RequestPending
	r.ResolvedAt, r.ResolvedBy, r.Note, r.GrantID = time.Time{}, "", "", ""
	return r
}

// grantFor returns a live grant for request r, valid from nb for d.
func grantFor(id string, r *airlock.AccessRequest, nb time.Time, d time.Duration) *airlock.Grant {
	return &airlock.Grant{
		ID:           id,
		RequestID:    r.ID,
		UserID:       r.RequesterID,
		SessionID:    r.SessionID,
		DeviceID:     r.DeviceID,
		CredentialID: r.CredentialID,
		Scope:        r.Scope,
		NotBefore:    nb,
		NotAfter:     nb.Add(d).In(elsewhere),
		CreatedAt:    nb,
	}
}

// fullApproval is an approval of requestID by approver with every field set.
func fullApproval(requestID, approver string, created time.Time) *airlock.Approval {
	return &airlock.Approval{
		RequestID:    requestID,
		ApproverID:   approver,
		SessionID:    "s-" + approver,
		DeviceID:     "d-" + approver,
		CredentialID: bytesOf(21, 40),
		Groups:       []string{"team-leads", "security"},
		Comment:      "ok for the maintenance window",
		CreatedAt:    created.In(elsewhere),
	}
}

// fullCertificate is a certificate for grantID with every field set.
func fullCertificate(serial uint64, grantID string, issued time.Time) *airlock.SSHCertificate {
	return &airlock.SSHCertificate{
		Serial:        serial,
		KeyID:         "alice/" + grantID,
		GrantID:       grantID,
		UserID:        "u-alice",
		SessionID:     "s-alice",
		Principals:    []string{"dba@db-prod"},
		PublicKey:     "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
		ValidAfter:    issued.Add(-time.Minute),
		ValidBefore:   issued.Add(30 * time.Minute).In(elsewhere),
		SourceAddress: "192.0.2.7/32,2001:db8::/64",
		Extensions:    []string{"permit-pty"},
		IssuedAt:      issued,
	}
}

func testElevation(t *testing.T, open func(t *testing.T) airlock.Store) {
	t.Run("Requests", func(t *testing.T) { testAccessRequests(t, open) })
	t.Run("Approvals", func(t *testing.T) { testApprovals(t, open) })
	t.Run("Resolve", func(t *testing.T) { testResolve(t, open) })
	t.Run("Grants", func(t *testing.T) { testGrants(t, open) })
	t.Run("SSHCertificates", func(t *testing.T) { testSSHCertificates(t, open) })
}

func ids[T any](list []*T, id func(*T) string) []string {
	out := []string{}
	for _, v := range list {
		out = append(out, id(v))
	}
	return out
}

func requestIDs(list []*airlock.AccessRequest) []string {
	return ids(list, func(r *airlock.AccessRequest) string { return r.ID })
}

func grantIDs(list []*airlock.Grant) []string {
	return ids(list, func(g *airlock.Grant) string { return g.ID })
}

func testAccessRequests(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("round-trip", func(t *testing.T) {
		s := open(t)
		full := fullRequest("req_1", "u-alice", t0)
		checkAllSet(t, full, "Scope")
		pending := pendingRequest("req_2", "u-alice", t0)
		tier := pendingRequest("req_3", "u-bob", t0)
		tier.Scope = tierScope
		bare := &airlock.AccessRequest{ID: "req_4", RequesterID: "u-carol", Status: airlock.RequestPending,
			Scope: airlock.Scope{Role: "ops", Resource: "web"}, CreatedAt: t0, ExpiresAt: at(time.Hour)}
		for _, r := range []*airlock.AccessRequest{full, pending, tier, bare} {
			must(t, "CreateAccessRequest "+r.ID, s.CreateAccessRequest(ctx, r))
			got, err := s.FindAccessRequestByID(ctx, r.ID)
			must(t, "FindAccessRequestByID "+r.ID, err)
			checkEqual(t, "access request "+r.ID, r, got)
		}
	})

	t.Run("fail-duplicate-id", func(t *testing.T) {
		s := open(t)
		must(t, "CreateAccessRequest", s.CreateAccessRequest(ctx, pendingRequest("req_1", "u-alice", t0)))
		dup := pendingRequest("req_1", "u-mallory", at(time.Minute))
		wantCode(t, "CreateAccessRequest (same id)", s.CreateAccessRequest(ctx, dup), airlock.ECONFLICT)
		got, err := s.FindAccessRequestByID(ctx, "req_1")
		must(t, "FindAccessRequestByID", err)
		checkEqual(t, "original request", pendingRequest("req_1", "u-alice", t0), got)
	})

	t.Run("fail-invalid-status", func(t *testing.T) {
		s := open(t)
		for _, st := range []airlock.RequestStatus{"", "granted", "PENDING"} {
			r := pendingRequest("req_1", "u-alice", t0)
			r.Status = st
			wantCode(t, fmt.Sprintf("CreateAccessRequest (status %q)", st), s.CreateAccessRequest(ctx, r), airlock.EINVALID)
		}
		_, err := s.FindAccessRequestByID(ctx, "req_1")
		wantCode(t, "FindAccessRequestByID after refused creates", err, airlock.ENOTFOUND)
	})

	t.Run("fail-missing", func(t *testing.T) {
		s := open(t)
		_, err := s.FindAccessRequestByID(ctx, "req_404")
		wantCode(t, "FindAccessRequestByID", err, airlock.ENOTFOUND)
	})

	t.Run("list", func(t *testing.T) {
		s := open(t)
		// req_b and req_c share a creation time: ties go by descending ID.
		for _, r := range []struct {
			id, user string
			created  time.Duration
			status   airlock.RequestStatus
		}{
			{"req_a", "u-alice", 0, airlock.RequestPending},
			{"req_b", "u-bob", time.Minute, airlock.RequestPending},
			{"req_c", "u-alice", time.Minute, airlock.RequestDenied},
			{"req_d", "u-alice", 2 * time.Minute, airlock.RequestPending},
			{"req_e", "u-bob", 3 * time.Minute, airlock.RequestApproved},
		} {
			req := pendingRequest(r.id, r.user, at(r.created))
			req.Status = r.status
			must(t, "CreateAccessRequest", s.CreateAccessRequest(ctx, req))
		}
		for _, tc := range []struct {
			name string
			f    airlock.AccessRequestFilter
			want []string
		}{
			{"all", airlock.AccessRequestFilter{}, []string{"req_e", "req_d", "req_c", "req_b", "req_a"}},
			{"requester", airlock.AccessRequestFilter{RequesterID: "u-alice"}, []string{"req_d", "req_c", "req_a"}},
			{"status", airlock.AccessRequestFilter{Status: airlock.RequestPending}, []string{"req_d", "req_b", "req_a"}},
			{"both", airlock.AccessRequestFilter{RequesterID: "u-bob", Status: airlock.RequestPending}, []string{"req_b"}},
			{"limit", airlock.AccessRequestFilter{Limit: 2}, []string{"req_e", "req_d"}},
			{"negative-limit", airlock.AccessRequestFilter{Limit: -1}, []string{"req_e", "req_d", "req_c", "req_b", "req_a"}},
			{"unknown-user", airlock.AccessRequestFilter{RequesterID: "u-404"}, []string{}},
		} {
			got, err := s.ListAccessRequests(ctx, tc.f)
			must(t, "ListAccessRequests "+tc.name, err)
			if got == nil {
				t.Errorf("%s: nil list, want empty non-nil", tc.name)
			}
			if ids := requestIDs(got); !slices.Equal(ids, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, ids, tc.want)
			}
		}
	})

	t.Run("list-default-limit", func(t *testing.T) {
		s := open(t)
		for i := range 101 {
			must(t, "CreateAccessRequest", s.CreateAccessRequest(ctx, pendingRequest(fmt.Sprintf("req_%03d", i), "u-alice", at(time.Duration(i)*time.Second))))
		}
		got, err := s.ListAccessRequests(ctx, airlock.AccessRequestFilter{})
		must(t, "ListAccessRequests", err)
		if len(got) != 100 || got[0].ID != "req_100" {
			t.Errorf("default page: %d requests, first %q; want 100, first req_100", len(got), got[0].ID)
		}
		exp, err := s.ListExpiredAccessRequests(ctx, at(time.Hour+time.Hour), 0)
		must(t, "ListExpiredAccessRequests", err)
		if len(exp) != 100 || exp[0].ID != "req_000" {
			t.Errorf("default expired page: %d requests; want 100, oldest first", len(exp))
		}
	})

	t.Run("list-expired", func(t *testing.T) {
		s := open(t)
		mk := func(id string, expires time.Duration, status airlock.RequestStatus) {
			r := pendingRequest(id, "u-alice", at(-2*time.Hour))
			r.ExpiresAt, r.Status = at(expires), status
			must(t, "CreateAccessRequest", s.CreateAccessRequest(ctx, r))
		}
		mk("req_past", -time.Minute, airlock.RequestPending)
		mk("req_exact", 0, airlock.RequestPending)
		mk("req_older", -time.Hour, airlock.RequestPending)
		mk("req_future", time.Microsecond, airlock.RequestPending)
		mk("req_denied", -time.Hour, airlock.RequestDenied)
		mk("req_expired", -time.Hour, airlock.RequestExpired)
		got, err := s.ListExpiredAccessRequests(ctx, t0.In(elsewhere), 0)
		must(t, "ListExpiredAccessRequests", err)
		if ids, want := requestIDs(got), []string{"req_older", "req_past", "req_exact"}; !slices.Equal(ids, want) {
			t.Errorf("expired: %v, want %v (pending only, ExpiresAt ≤ now, oldest first)", ids, want)
		}
		got, err = s.ListExpiredAccessRequests(ctx, t0, 2)
		must(t, "ListExpiredAccessRequests", err)
		if ids, want := requestIDs(got), []string{"req_older", "req_past"}; !slices.Equal(ids, want) {
			t.Errorf("expired, limit 2: %v, want %v", ids, want)
		}
		got, err = s.ListExpiredAccessRequests(ctx, at(-2*time.Hour), 0)
		must(t, "ListExpiredAccessRequests", err)
		if got == nil || len(got) != 0 {
			t.Errorf("nothing expired yet: %v, want empty non-nil", requestIDs(got))
		}
	})
}

func testApprovals(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("round-trip", func(t *testing.T) {
		s := open(t)
		must(t, "CreateAccessRequest", s.CreateAccessRequest(ctx, pendingRequest("req_1", "u-alice", t0)))
		a1 := fullApproval("req_1", "u-lead", at(2*time.Minute))
		checkAllSet(t, a1)
		a2 := &airlock.Approval{RequestID: "req_1", ApproverID: "u-sec", CreatedAt: at(time.Minute)}
		a3 := fullApproval("req_1", "u-lead2", at(2*time.Minute)) // same time as a1: added after it
		a3.Groups = []string{}
		for _, a := range []*airlock.Approval{a1, a2, a3} {
			must(t, "AddApproval "+a.ApproverID, s.AddApproval(ctx, a))
		}
		got, err := s.ListApprovals(ctx, "req_1")
		must(t, "ListApprovals", err)
		checkEqual(t, "approvals (oldest first)", []*airlock.Approval{a2, a1, a3}, got)
		for _, a := range got {
			if a.Groups == nil {
				t.Errorf("approval by %s: Groups nil, want empty non-nil", a.ApproverID)
			}
		}
		none, err := s.ListApprovals(ctx, "req_404")
		must(t, "ListApprovals (unknown request)", err)
		if none == nil || len(none) != 0 {
			t.Errorf("approvals of an unknown request: %v, want empty non-nil", none)
		}
	})

	for _, tc := range []struct {
		name   string
		status airlock.RequestStatus // of req_1 before the approval; "" leaves it missing
		first  bool                  // u-lead approves first
		code   string
	}{
		{"ok-pending", airlock.RequestPending, false, ""},
		{"ok-second-approver", airlock.RequestPending, true, ""},
		{"fail-missing-request", "", false, airlock.ENOTFOUND},
		{"fail-approved", airlock.RequestApproved, false, airlock.ECONFLICT},
		{"fail-denied", airlock.RequestDenied, false, airlock.ECONFLICT},
		{"fail-expired", airlock.RequestExpired, false, airlock.ECONFLICT},
		{"fail-cancelled", airlock.RequestCancelled, false, airlock.ECONFLICT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			var before []*airlock.Approval
			if tc.status != "" {
				r := pendingRequest("req_1", "u-alice", t0)
				must(t, "CreateAccessRequest", s.CreateAccessRequest(ctx, r))
				if tc.first {
					a := fullApproval("req_1", "u-lead", at(time.Minute))
					must(t, "AddApproval", s.AddApproval(ctx, a))
					before = append(before, a)
				}
				if tc.status != airlock.RequestPending {
					must(t, "ResolveAccessRequest", s.ResolveAccessRequest(ctx, "req_1", tc.status, "u-x", "", at(time.Minute), nil))
				}
			}
			a := fullApproval("req_1", "u-sec", at(2*time.Minute))
			err := s.AddApproval(ctx, a)
			wantCode(t, "AddApproval", err, tc.code)
			want := before
			if tc.code == "" {
				want = append(want, a)
			}
			got, err := s.ListApprovals(ctx, "req_1")
			must(t, "ListApprovals", err)
			checkEqual(t, "approvals", want, got)
		})
	}

	t.Run("fail-same-approver-twice", func(t *testing.T) {
		s := open(t)
		must(t, "CreateAccessRequest", s.CreateAccessRequest(ctx, pendingRequest("req_1", "u-alice", t0)))
		first := fullApproval("req_1", "u-lead", at(time.Minute))
		must(t, "AddApproval", s.AddApproval(ctx, first))
		again := fullApproval("req_1", "u-lead", at(2*time.Minute))
		again.Comment, again.SessionID = "second try", "s-other"
		wantCode(t, "AddApproval (same approver)", s.AddApproval(ctx, again), airlock.ECONFLICT)
		got, err := s.ListApprovals(ctx, "req_1")
		must(t, "ListApprovals", err)
		checkEqual(t, "approvals after a repeated approver", []*airlock.Approval{first}, got)
		// The same approver may approve another request.
		must(t, "CreateAccessRequest", s.CreateAccessRequest(ctx, pendingRequest("req_2", "u-bob", t0)))
		must(t, "AddApproval (other request)", s.AddApproval(ctx, fullApproval("req_2", "u-lead", at(time.Minute))))
	})

	t.Run("same-approver-concurrently", func(t *testing.T) {
		s := open(t)
		must(t, "CreateAccessRequest", s.CreateAccessRequest(ctx, pendingRequest("req_1", "u-alice", t0)))
		const racers = 12
		wins := race(t, racers, func(i int) error {
			a := fullApproval("req_1", "u-lead", at(time.Minute))
			a.Comment = fmt.Sprint("racer ", i)
			return s.AddApproval(ctx, a)
		})
		if wins != 1 {
			t.Errorf("%d of %d concurrent approvals by one approver succeeded, want exactly 1", wins, racers)
		}
		got, err := s.ListApprovals(ctx, "req_1")
		must(t, "ListApprovals", err)
		if len(got) != 1 {
			t.Errorf("%d approvals stored, want 1", len(got))
		}
	})
}

// race runs fn(0..n-1) at once and returns how many returned nil; any
// error but ECONFLICT fails t.
func race(t *testing.T, n int, fn func(i int) error) int {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			err := fn(i)
			switch airlock.ErrorCode(err) {
			case "":
				mu.Lock()
				wins++
				mu.Unlock()
			case airlock.ECONFLICT:
			default:
				t.Errorf("racer %d: %v, want nil or ECONFLICT", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	return wins
}

func testResolve(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("ok-approve-with-grant", func(t *testing.T) {
		s := open(t)
		r := pendingRequest("req_1", "u-alice", t0)
		must(t, "CreateAccessRequest", s.CreateAccessRequest(ctx, r))
		g := grantFor("grt_1", r, at(5*time.Minute), 90*time.Minute)
		checkAllSet(t, g, "Scope", "EndedAt", "EndReason", "EndedBy")
		must(t, "ResolveAccessRequest", s.ResolveAccessRequest(ctx, "req_1", airlock.RequestApproved, "u-sec", "two approvals",
			at(5*time.Minute).In(elsewhere), g))
		want := *r
		want.Status, want.ResolvedAt, want.ResolvedBy, want.Note, want.GrantID = airlock.RequestApproved, at(5*time.Minute), "u-sec", "two approvals", "grt_1"
		got, err := s.FindAccessRequestByID(ctx, "req_1")
		must(t, "FindAccessRequestByID", err)
		checkEqual(t, "approved request", &want, got)
		gg, err := s.FindGrantByID(ctx, "grt_1")
		must(t, "FindGrantByID", err)
		checkEqual(t, "grant", g, gg)
	})

	t.Run("ok-resolve-without-grant", func(t *testing.T) {
		for _, st := range []airlock.RequestStatus{airlock.RequestDenied, airlock.RequestExpired, airlock.RequestCancelled, airlock.RequestApproved} {
			s := open(t)
			r := pendingRequest("req_1", "u-alice", t0)
			must(t, "CreateAccessRequest", s.CreateAccessRequest(ctx, r))
			must(t, "ResolveAccessRequest "+string(st), s.ResolveAccessRequest(ctx, "req_1", st, "system", "note "+string(st), at(time.Hour), nil))
			want := *r
			want.Status, want.ResolvedAt, want.ResolvedBy, want.Note = st, at(time.Hour), "system", "note "+string(st)
			got, err := s.FindAccessRequestByID(ctx, "req_1")
			must(t, "FindAccessRequestByID", err)
			checkEqual(t, string(st)+" request", &want, got)
			grants, err := s.ListGrants(ctx, airlock.GrantFilter{})
			must(t, "ListGrants", err)
			if len(grants) != 0 {
				t.Errorf("%s without a grant made grants %v", st, grantIDs(grants))
			}
		}
	})

	// Every refusal leaves the request pending and inserts no grant.
	for _, tc := range []struct {
		name   string
		id     string
		status airlock.RequestStatus
		at     time.Time
		grant  func(r *airlock.AccessRequest) *airlock.Grant
		code   string
	}{
		{"fail-status-pending", "req_1", airlock.RequestPending, t0, nil, airlock.EINVALID},
		{"fail-status-empty", "req_1", "", t0, nil, airlock.EINVALID},
		{"fail-status-unknown", "req_1", "granted", t0, nil, airlock.EINVALID},
		{"fail-zero-time", "req_1", airlock.RequestDenied, time.Time{}, nil, airlock.EINVALID},
		{"fail-missing", "req_404", airlock.RequestApproved, t0, func(r *airlock.AccessRequest) *airlock.Grant {
			g := grantFor("grt_1", r, t0, time.Hour)
			g.RequestID = "req_404"
			return g
		}, airlock.ENOTFOUND},
		{"fail-grant-with-denial", "req_1", airlock.RequestDenied, t0, func(r *airlock.AccessRequest) *airlock.Grant {
			return grantFor("grt_1", r, t0, time.Hour)
		}, airlock.EINVALID},
		{"fail-grant-of-another-request", "req_1", airlock.RequestApproved, t0, func(r *airlock.AccessRequest) *airlock.Grant {
			g := grantFor("grt_1", r, t0, time.Hour)
			g.RequestID = "req_2"
			return g
		}, airlock.EINVALID},
		{"fail-grant-without-id", "req_1", airlock.RequestApproved, t0, func(r *airlock.AccessRequest) *airlock.Grant {
			return grantFor("", r, t0, time.Hour)
		}, airlock.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			r := pendingRequest("req_1", "u-alice", t0)
			must(t, "CreateAccessRequest", s.CreateAccessRequest(ctx, r))
			var g *airlock.Grant
			if tc.grant != nil {
				g = tc.grant(r)
			}
			wantCode(t, "ResolveAccessRequest", s.ResolveAccessRequest(ctx, tc.id, tc.status, "u-x", "", tc.at, g), tc.code)
			got, err := s.FindAccessRequestByID(ctx, "req_1")
			must(t, "FindAccessRequestByID", err)
			checkEqual(t, "request after a refused resolution", r, got)
			grants, err := s.ListGrants(ctx, airlock.GrantFilter{})
			must(t, "ListGrants", err)
			if len(grants) != 0 {
				t.Errorf("a refused resolution inserted grants %v", grantIDs(grants))
			}
		})
	}

	t.Run("fail-resolve-twice", func(t *testing.T) {
		s := open(t)
		r := pendingRequest("req_1", "u-alice", t0)
		must(t, "CreateAccessRequest", s.CreateAccessRequest(ctx, r))
		g1 := grantFor("grt_1", r, at(time.Minute), time.Hour)
		must(t, "ResolveAccessRequest", s.ResolveAccessRequest(ctx, "req_1", airlock.RequestApproved, "u-sec", "", at(time.Minute), g1))
		before, err := s.FindAccessRequestByID(ctx, "req_1")
		must(t, "FindAccessRequestByID", err)
		// The status update fails, so the second grant must not be inserted.
		g2 := grantFor("grt_2", r, at(2*time.Minute), time.Hour)
		wantCode(t, "second approval", s.ResolveAccessRequest(ctx, "req_1", airlock.RequestApproved, "u-lead", "", at(2*time.Minute), g2), airlock.ECONFLICT)
		wantCode(t, "cancel after approval", s.ResolveAccessRequest(ctx, "req_1", airlock.RequestCancelled, "u-alice", "", at(3*time.Minute), nil), airlock.ECONFLICT)
		after, err := s.FindAccessRequestByID(ctx, "req_1")
		must(t, "FindAccessRequestByID", err)
		checkEqual(t, "request after refused resolutions", before, after)
		_, err = s.FindGrantByID(ctx, "grt_2")
		wantCode(t, "FindGrantByID of the loser's grant", err, airlock.ENOTFOUND)
	})

	t.Run("fail-grant-insert-rolls-back", func(t *testing.T) {
		// The grant's insert fails (its ID is taken): the status update
		// must not stay behind.
		s := open(t)
		r1 := pendingRequest("req_1", "u-alice", t0)
		r2 := pendingRequest("req_2", "u-bob", t0)
		must(t, "CreateAccessRequest", s.CreateAccessRequest(ctx, r1))
		must(t, "CreateAccessRequest", s.CreateAccessRequest(ctx, r2))
		g1 := grantFor("grt_1", r1, t0, time.Hour)
		must(t, "ResolveAccessRequest", s.ResolveAccessRequest(ctx, "req_1", airlock.RequestApproved, "u-sec", "", at(time.Minute), g1))
		dup := grantFor("grt_1", r2, t0, 2*time.Hour)
		wantCode(t, "ResolveAccessRequest (grant ID taken)", s.ResolveAccessRequest(ctx, "req_2", airlock.RequestApproved, "u-sec", "", at(time.Minute), dup), airlock.ECONFLICT)
		got, err := s.FindAccessRequestByID(ctx, "req_2")
		must(t, "FindAccessRequestByID", err)
		checkEqual(t, "request whose grant failed", r2, got)
		gg, err := s.FindGrantByID(ctx, "grt_1")
		must(t, "FindGrantByID", err)
		checkEqual(t, "the first grant", g1, gg)
	})

	t.Run("one-winner-concurrently", func(t *testing.T) {
		s := open(t)
		const requests, racers = 3, 12
		for i := range requests {
			r := pendingRequest(fmt.Sprint("req_", i), "u-alice", t0)
			must(t, "CreateAccessRequest", s.CreateAccessRequest(ctx, r))
			var (
				mu     sync.Mutex
				winner string
			)
			wins := race(t, racers, func(j int) error {
				// Odd racers deny, even ones approve with their own grant.
				var (
					st = airlock.RequestDenied
					g  *airlock.Grant
				)
				if j%2 == 0 {
					st, g = airlock.RequestApproved, grantFor(fmt.Sprintf("grt_%d_%d", i, j), r, t0, time.Hour)
				}
				err := s.ResolveAccessRequest(ctx, r.ID, st, fmt.Sprint("u-", j), "", at(time.Minute), g)
				if err == nil {
					mu.Lock()
					winner = fmt.Sprint("u-", j)
					mu.Unlock()
				}
				return err
			})
			if wins != 1 {
				t.Errorf("%s: %d of %d concurrent resolutions won, want exactly 1", r.ID, wins, racers)
				continue
			}
			got, err := s.FindAccessRequestByID(ctx, r.ID)
			must(t, "FindAccessRequestByID", err)
			if got.ResolvedBy != winner {
				t.Errorf("%s: resolved by %q, but %q won", r.ID, got.ResolvedBy, winner)
			}
			grants, err := s.ListGrants(ctx, airlock.GrantFilter{UserID: "u-alice", Limit: 1000})
			must(t, "ListGrants", err)
			var mine []*airlock.Grant
			for _, g := range grants {
				if g.RequestID == r.ID {
					mine = append(mine, g)
				}
			}
			switch got.Status {
			case airlock.RequestApproved:
				if len(mine) != 1 || mine[0].ID != got.GrantID {
					t.Errorf("%s approved with GrantID %q; grants of the request: %v", r.ID, got.GrantID, grantIDs(mine))
				}
			case airlock.RequestDenied:
				if len(mine) != 0 || got.GrantID != "" {
					t.Errorf("%s denied with GrantID %q; grants of the request: %v", r.ID, got.GrantID, grantIDs(mine))
				}
			default:
				t.Errorf("%s: status %q after the race", r.ID, got.Status)
			}
		}
	})
}

func testGrants(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	// grant creates a request and approves it with a grant of scope sc for
	// user, created at created, valid [nb, na).
	grant := func(t *testing.T, s airlock.Store, id, user, session string, sc airlock.Scope, created, nb, na time.Time) *airlock.Grant {
		t.Helper()
		r := pendingRequest("req_"+id, user, created)
		r.SessionID, r.Scope = session, sc
		must(t, "CreateAccessRequest", s.CreateAccessRequest(ctx, r))
		g := grantFor(id, r, nb, na.Sub(nb))
		g.CreatedAt = created
		must(t, "ResolveAccessRequest", s.ResolveAccessRequest(ctx, r.ID, airlock.RequestApproved, "u-sec", "", created, g))
		return g
	}

	t.Run("round-trip-and-end", func(t *testing.T) {
		s := open(t)
		g := grant(t, s, "grt_1", "u-alice", "s-1", tierScope, t0, t0, at(time.Hour))
		got, err := s.FindGrantByID(ctx, "grt_1")
		must(t, "FindGrantByID", err)
		checkEqual(t, "tier-scope grant", g, got)
		if !got.IsActive(at(time.Minute)) {
			t.Error("a new grant is not active inside its window")
		}
		must(t, "EndGrant", s.EndGrant(ctx, "grt_1", airlock.EndDone, "u-alice", at(10*time.Minute).In(elsewhere)))
		want := *g
		want.EndedAt, want.EndReason, want.EndedBy = at(10*time.Minute), airlock.EndDone, "u-alice"
		checkAllSet(t, &want, "Scope")
		got, err = s.FindGrantByID(ctx, "grt_1")
		must(t, "FindGrantByID", err)
		checkEqual(t, "ended grant", &want, got)
		if got.IsActive(at(11 * time.Minute)) {
			t.Error("an ended grant is active")
		}
	})

	t.Run("fail-end-twice", func(t *testing.T) {
		s := open(t)
		grant(t, s, "grt_1", "u-alice", "s-1", roleScope, t0, t0, at(time.Hour))
		must(t, "EndGrant", s.EndGrant(ctx, "grt_1", airlock.EndSessionEnded, "system", at(time.Minute)))
		wantCode(t, "second EndGrant", s.EndGrant(ctx, "grt_1", airlock.EndRevokedByAdmin, "u-admin", at(2*time.Minute)), airlock.ECONFLICT)
		got, err := s.FindGrantByID(ctx, "grt_1")
		must(t, "FindGrantByID", err)
		if !got.EndedAt.Equal(at(time.Minute)) || got.EndReason != airlock.EndSessionEnded || got.EndedBy != "system" {
			t.Errorf("after a second end: %v %q %q, want the first end kept", got.EndedAt, got.EndReason, got.EndedBy)
		}
	})

	t.Run("fail-end-missing", func(t *testing.T) {
		s := open(t)
		wantCode(t, "EndGrant", s.EndGrant(ctx, "grt_404", airlock.EndDone, "u-alice", t0), airlock.ENOTFOUND)
		_, err := s.FindGrantByID(ctx, "grt_404")
		wantCode(t, "FindGrantByID", err, airlock.ENOTFOUND)
	})

	t.Run("fail-end-zero-time", func(t *testing.T) {
		s := open(t)
		grant(t, s, "grt_1", "u-alice", "s-1", roleScope, t0, t0, at(time.Hour))
		wantCode(t, "EndGrant at the zero time", s.EndGrant(ctx, "grt_1", airlock.EndDone, "u-alice", time.Time{}), airlock.EINVALID)
		got, err := s.FindGrantByID(ctx, "grt_1")
		must(t, "FindGrantByID", err)
		if !got.EndedAt.IsZero() {
			t.Errorf("a refused end left EndedAt %v", got.EndedAt)
		}
	})

	t.Run("list", func(t *testing.T) {
		s := open(t)
		// Windows relative to t0; grt_c and grt_d share a creation time.
		grant(t, s, "grt_a", "u-alice", "s-1", roleScope, at(-3*time.Hour), at(-3*time.Hour), at(-2*time.Hour))    // over
		grant(t, s, "grt_b", "u-alice", "s-1", roleScope, at(-2*time.Hour), at(-time.Hour), at(time.Hour))         // active
		grant(t, s, "grt_c", "u-alice", "s-2", tierScope, at(-time.Hour), t0, at(time.Hour))                       // starts at t0
		grant(t, s, "grt_d", "u-bob", "s-3", roleScope, at(-time.Hour), at(-time.Hour), t0)                        // ends at t0
		grant(t, s, "grt_e", "u-bob", "s-3", roleScope, at(-30*time.Minute), at(time.Microsecond), at(time.Hour))  // not yet
		grant(t, s, "grt_f", "u-alice", "s-2", roleScope, at(-10*time.Minute), at(-10*time.Minute), at(time.Hour)) // ended
		must(t, "EndGrant", s.EndGrant(ctx, "grt_f", airlock.EndRevokedByAdmin, "u-admin", at(-5*time.Minute)))
		all := []string{"grt_f", "grt_e", "grt_d", "grt_c", "grt_b", "grt_a"}
		for _, tc := range []struct {
			name string
			f    airlock.GrantFilter
			want []string
		}{
			{"all", airlock.GrantFilter{}, all},
			{"user", airlock.GrantFilter{UserID: "u-alice"}, []string{"grt_f", "grt_c", "grt_b", "grt_a"}},
			{"session", airlock.GrantFilter{SessionID: "s-2"}, []string{"grt_f", "grt_c"}},
			{"active-at-t0", airlock.GrantFilter{ActiveAt: t0.In(elsewhere)}, []string{"grt_c", "grt_b"}},
			{"active-just-before-t0", airlock.GrantFilter{ActiveAt: at(-time.Microsecond)}, []string{"grt_d", "grt_b"}},
			{"active-user", airlock.GrantFilter{UserID: "u-bob", ActiveAt: at(time.Minute)}, []string{"grt_e"}},
			{"active-session", airlock.GrantFilter{SessionID: "s-1", ActiveAt: t0}, []string{"grt_b"}},
			{"ended-before-its-end", airlock.GrantFilter{SessionID: "s-2", ActiveAt: at(-6 * time.Minute)}, []string{}},
			{"limit", airlock.GrantFilter{Limit: 2}, []string{"grt_f", "grt_e"}},
			{"negative-limit", airlock.GrantFilter{Limit: -5}, all},
			{"unknown-user", airlock.GrantFilter{UserID: "u-404"}, []string{}},
		} {
			got, err := s.ListGrants(ctx, tc.f)
			must(t, "ListGrants "+tc.name, err)
			if got == nil {
				t.Errorf("%s: nil list, want empty non-nil", tc.name)
			}
			if ids := grantIDs(got); !slices.Equal(ids, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, ids, tc.want)
			}
			if !tc.f.ActiveAt.IsZero() {
				for _, g := range got {
					if !g.IsActive(tc.f.ActiveAt) {
						t.Errorf("%s: listed %s, which IsActive says is not active", tc.name, g.ID)
					}
				}
			}
		}
	})

	t.Run("list-to-end", func(t *testing.T) {
		s := open(t)
		grant(t, s, "grt_a", "u-alice", "s-1", roleScope, at(-3*time.Hour), at(-3*time.Hour), at(-time.Minute)) // due
		grant(t, s, "grt_b", "u-alice", "s-1", roleScope, at(-3*time.Hour), at(-3*time.Hour), t0)               // due exactly now
		grant(t, s, "grt_c", "u-alice", "s-1", roleScope, at(-3*time.Hour), at(-3*time.Hour), at(-2*time.Hour)) // due, oldest
		grant(t, s, "grt_d", "u-alice", "s-1", roleScope, at(-3*time.Hour), at(-3*time.Hour), at(time.Microsecond))
		grant(t, s, "grt_e", "u-alice", "s-1", roleScope, at(-3*time.Hour), at(-3*time.Hour), at(-time.Hour)) // ended already
		must(t, "EndGrant", s.EndGrant(ctx, "grt_e", airlock.EndDone, "u-alice", at(-90*time.Minute)))
		got, err := s.ListGrantsToEnd(ctx, t0.In(elsewhere), 0)
		must(t, "ListGrantsToEnd", err)
		if ids, want := grantIDs(got), []string{"grt_c", "grt_a", "grt_b"}; !slices.Equal(ids, want) {
			t.Errorf("to end: %v, want %v (not ended, NotAfter ≤ now, oldest NotAfter first)", ids, want)
		}
		got, err = s.ListGrantsToEnd(ctx, t0, 1)
		must(t, "ListGrantsToEnd", err)
		if ids, want := grantIDs(got), []string{"grt_c"}; !slices.Equal(ids, want) {
			t.Errorf("to end, limit 1: %v, want %v", ids, want)
		}
		must(t, "EndGrant", s.EndGrant(ctx, "grt_c", airlock.EndExpired, "system", t0))
		got, err = s.ListGrantsToEnd(ctx, t0, 0)
		must(t, "ListGrantsToEnd", err)
		if ids, want := grantIDs(got), []string{"grt_a", "grt_b"}; !slices.Equal(ids, want) {
			t.Errorf("to end after sweeping one: %v, want %v", ids, want)
		}
		got, err = s.ListGrantsToEnd(ctx, at(-4*time.Hour), 0)
		must(t, "ListGrantsToEnd", err)
		if got == nil || len(got) != 0 {
			t.Errorf("nothing due: %v, want empty non-nil", grantIDs(got))
		}
	})

	t.Run("end-concurrently", func(t *testing.T) {
		s := open(t)
		grant(t, s, "grt_1", "u-alice", "s-1", roleScope, t0, t0, at(time.Hour))
		const racers = 12
		wins := race(t, racers, func(i int) error {
			return s.EndGrant(ctx, "grt_1", airlock.EndRevokedByAdmin, fmt.Sprint("u-", i), at(time.Minute))
		})
		if wins != 1 {
			t.Errorf("%d of %d concurrent EndGrant calls succeeded, want exactly 1", wins, racers)
		}
	})
}

func testSSHCertificates(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("round-trip-and-order", func(t *testing.T) {
		s := open(t)
		// Serials use all 64 bits: values ≥ 2^63 must survive stores whose
		// integers are signed.
		c1 := fullCertificate(math.MaxUint64, "grt_1", at(2*time.Minute))
		checkAllSet(t, c1)
		c2 := fullCertificate(1<<63, "grt_1", at(time.Minute))
		c2.SourceAddress, c2.Extensions, c2.Principals = "", nil, []string{"dba@db-prod", "tier:1"}
		c3 := fullCertificate(1, "grt_1", at(2*time.Minute)) // same time as c1: recorded after it
		c4 := fullCertificate(1<<63-1, "grt_2", t0)
		for _, c := range []*airlock.SSHCertificate{c1, c2, c3, c4} {
			must(t, fmt.Sprint("CreateSSHCertificate ", c.Serial), s.CreateSSHCertificate(ctx, c))
		}
		got, err := s.ListSSHCertificates(ctx, "grt_1")
		must(t, "ListSSHCertificates", err)
		c2.Extensions = []string{}
		checkEqual(t, "certificates of grt_1 (oldest first)", []*airlock.SSHCertificate{c2, c1, c3}, got)
		if len(got) == 3 && (got[0].Extensions == nil || got[0].Principals == nil) {
			t.Errorf("empty lists came back nil: %#v", got[0])
		}
		got, err = s.ListSSHCertificates(ctx, "grt_2")
		must(t, "ListSSHCertificates", err)
		checkEqual(t, "certificates of grt_2", []*airlock.SSHCertificate{c4}, got)
		got, err = s.ListSSHCertificates(ctx, "grt_404")
		must(t, "ListSSHCertificates", err)
		if got == nil || len(got) != 0 {
			t.Errorf("certificates of an unknown grant: %v, want empty non-nil", got)
		}
	})

	for _, serial := range []uint64{1, 1<<63 - 1, 1 << 63, math.MaxUint64} {
		t.Run(fmt.Sprint("fail-duplicate-serial-", serial), func(t *testing.T) {
			s := open(t)
			must(t, "CreateSSHCertificate", s.CreateSSHCertificate(ctx, fullCertificate(serial, "grt_1", t0)))
			// The neighbours (and the int64 reading of the same bits) are
			// other serials.
			must(t, "CreateSSHCertificate (serial-1)", s.CreateSSHCertificate(ctx, fullCertificate(serial-1, "grt_1", t0)))
			again := fullCertificate(serial, "grt_2", at(time.Minute))
			wantCode(t, "CreateSSHCertificate (same serial)", s.CreateSSHCertificate(ctx, again), airlock.ECONFLICT)
			got, err := s.ListSSHCertificates(ctx, "grt_2")
			must(t, "ListSSHCertificates", err)
			if len(got) != 0 {
				t.Errorf("a refused certificate was recorded: %+v", got)
			}
		})
	}
}
