package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"airlock"
)

// TestRecoveryIndexes checks that the recovery and break-glass lists and
// the expiry sweep use the indexes of migration 0007 for both their filter
// and their order, rather than scanning or sorting the tables.
func TestRecoveryIndexes(t *testing.T) {
	s := mustOpen(t)
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	live := []airlock.RecoveryStatus{airlock.RecoveryPending, airlock.RecoveryCoolingDown, airlock.RecoveryReleased}
	for _, tc := range []struct {
		name  string
		query func() (string, []any)
		index string
		sorts bool // the plan may sort (an IN list over several statuses)
	}{
		{"cases", func() (string, []any) { return recoveryCasesQuery(airlock.RecoveryCaseFilter{}) }, "recovery_cases_created", false},
		{"cases-since", func() (string, []any) { return recoveryCasesQuery(airlock.RecoveryCaseFilter{Since: now}) },
			"recovery_cases_created", false},
		{"cases-by-subject", func() (string, []any) {
			return recoveryCasesQuery(airlock.RecoveryCaseFilter{SubjectID: "u-1"})
		}, "recovery_cases_subject", false},
		{"live-cases-of-subject", func() (string, []any) {
			return recoveryCasesQuery(airlock.RecoveryCaseFilter{SubjectID: "u-1", Statuses: live})
		}, "recovery_cases_subject", false},
		{"cases-by-status", func() (string, []any) {
			return recoveryCasesQuery(airlock.RecoveryCaseFilter{Statuses: live[:1]})
		}, "recovery_cases_status", false},
		{"cases-by-statuses", func() (string, []any) {
			return recoveryCasesQuery(airlock.RecoveryCaseFilter{Statuses: live})
		}, "recovery_cases_status", true},
		{"case-by-enrol-token", func() (string, []any) {
			return recoveryCasesQuery(airlock.RecoveryCaseFilter{EnrolTokenID: "et-1"})
		}, "recovery_cases_enrol_token", false},
		{"cases-to-expire", func() (string, []any) { return recoveryCasesToExpireQuery, []any{now.UnixMicro(), 100} },
			"recovery_cases_expiry", false},
		{"approvals", func() (string, []any) { return recoveryApprovalsQuery, []any{"rc_1"} }, "recovery_approvals_case", false},
		{"events", func() (string, []any) { return breakGlassEventsQuery(airlock.BreakGlassFilter{}) },
			"breakglass_events_started", false},
		{"events-of-account", func() (string, []any) {
			return breakGlassEventsQuery(airlock.BreakGlassFilter{AccountID: "u-bg"})
		}, "breakglass_events_account", false},
		{"unreviewed-events", func() (string, []any) {
			return breakGlassEventsQuery(airlock.BreakGlassFilter{Unreviewed: true})
		}, "breakglass_events_unreviewed_started", false},
		{"unreviewed-event-of-account", func() (string, []any) {
			return breakGlassEventsQuery(airlock.BreakGlassFilter{AccountID: "u-bg", Unreviewed: true})
		}, "breakglass_events_unreviewed", false},
	} {
		q, args := tc.query()
		p := queryPlan(t, s, q, args...)
		if !strings.Contains(p, "INDEX "+tc.index+" ") && !strings.HasSuffix(p, "INDEX "+tc.index) {
			t.Errorf("%s: plan %q does not use %s", tc.name, p, tc.index)
		}
		if !tc.sorts && strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("%s: plan %q sorts", tc.name, p)
		}
	}
}

// TestRecoveryErrorMessages checks the messages of the uniqueness
// violations of migration 0007, the lock's above all.
func TestRecoveryErrorMessages(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	now := time.Now()
	c := &airlock.RecoveryCase{ID: "rc_1", SubjectID: "u-1", Status: airlock.RecoveryPending, SecretHash: []byte{1},
		CreatedAt: now}
	if err := s.CreateRecoveryCase(ctx, c); err != nil {
		t.Fatal(err)
	}
	a := &airlock.RecoveryApproval{CaseID: "rc_1", ApproverID: "u-2", At: now}
	if err := s.AddRecoveryApproval(ctx, a); err != nil {
		t.Fatal(err)
	}
	e := &airlock.BreakGlassEvent{ID: "bg_1", AccountID: "u-bg", TokenHash: []byte{1}, StartedAt: now}
	if err := s.CreateBreakGlassEvent(ctx, e); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"case id", s.CreateRecoveryCase(ctx, &airlock.RecoveryCase{ID: "rc_1", Status: airlock.RecoveryPending,
			SecretHash: []byte{2}}), "sqlite: recovery case id already exists"},
		{"case secret", s.CreateRecoveryCase(ctx, &airlock.RecoveryCase{ID: "rc_2", Status: airlock.RecoveryPending,
			SecretHash: []byte{1}}), "sqlite: recovery case claim secret already in use"},
		{"second approval", s.AddRecoveryApproval(ctx, a), "sqlite: the officer has already approved this recovery case"},
		{"event id", s.CreateBreakGlassEvent(ctx, &airlock.BreakGlassEvent{ID: "bg_1", AccountID: "u-bg2",
			TokenHash: []byte{2}}), "sqlite: break-glass event id already exists"},
		{"event token", s.CreateBreakGlassEvent(ctx, &airlock.BreakGlassEvent{ID: "bg_2", AccountID: "u-bg2",
			TokenHash: []byte{1}}), "sqlite: break-glass session token already in use"},
		{"lock", s.CreateBreakGlassEvent(ctx, &airlock.BreakGlassEvent{ID: "bg_3", AccountID: "u-bg",
			TokenHash: []byte{3}}), "sqlite: break-glass account is locked until the review of its last use"},
	} {
		if got := airlock.ErrorMessage(tc.err); got != tc.want || airlock.ErrorCode(tc.err) != airlock.ECONFLICT {
			t.Errorf("%s: %v, message %q, want ECONFLICT %q", tc.name, tc.err, got, tc.want)
		}
	}
	// The elevation approval keeps its own message beside the recovery one.
	req := &airlock.AccessRequest{ID: "req_1", RequesterID: "u-1", Status: airlock.RequestPending, CreatedAt: now}
	if err := s.CreateAccessRequest(ctx, req); err != nil {
		t.Fatal(err)
	}
	ap := &airlock.Approval{RequestID: "req_1", ApproverID: "u-2", CreatedAt: now}
	if err := s.AddApproval(ctx, ap); err != nil {
		t.Fatal(err)
	}
	for range 20 { // the message table is a map: try its orders
		if got := airlock.ErrorMessage(s.AddRecoveryApproval(ctx, a)); got != "sqlite: the officer has already approved this recovery case" {
			t.Fatalf("second recovery approval: message %q", got)
		}
		if got := airlock.ErrorMessage(s.AddApproval(ctx, ap)); got != "sqlite: the approver has already approved this request" {
			t.Fatalf("second access approval: message %q", got)
		}
	}
}
