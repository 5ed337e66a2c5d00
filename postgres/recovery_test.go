package postgres

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"airlock"
	"airlock/postgres/pgtest"

	"github.com/jackc/pgx/v5"
)

// TestRecoveryIndexes checks that the recovery and break-glass lists and
// the expiry sweep read the indexes of migration 0004, in order where the
// index can give the order.
func TestRecoveryIndexes(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// A handful of rows would make a sequential scan, or a bitmap scan and
	// a sort, cheaper: tell the planner not to.
	for _, set := range []string{`SET enable_seqscan = off`, `SET enable_bitmapscan = off`} {
		if _, err := conn.Exec(ctx, set); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	live := []airlock.RecoveryStatus{airlock.RecoveryPending, airlock.RecoveryCoolingDown, airlock.RecoveryReleased}
	for _, tc := range []struct {
		name  string
		query func() (string, []any)
		index string
		sorts bool // the plan may sort (several statuses)
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
		}, "recovery_cases_", true}, // the status or the expiry index
		{"case-by-enrol-token", func() (string, []any) {
			return recoveryCasesQuery(airlock.RecoveryCaseFilter{EnrolTokenID: "et-1"})
		}, "recovery_cases_enrol_token", false},
		{"cases-to-expire", func() (string, []any) { return recoveryCasesToExpireQuery, []any{now, 100} },
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
		}, "breakglass_events_unreviewed", false}, // either partial index
	} {
		q, args := tc.query()
		rows, err := conn.Query(ctx, `EXPLAIN `+q, args...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		p := strings.Join(plan, "\n")
		if !strings.Contains(p, " "+tc.index) || (!tc.sorts && strings.Contains(p, "Sort")) {
			t.Errorf("%s: plan does not read %s in order:\n%s", tc.name, tc.index, p)
		}
	}
}

// TestRecoveryErrorMessages checks the messages of the uniqueness
// violations of migration 0004, the lock's above all.
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
			SecretHash: []byte{2}}), "postgres: recovery case id already exists"},
		{"case secret", s.CreateRecoveryCase(ctx, &airlock.RecoveryCase{ID: "rc_2", Status: airlock.RecoveryPending,
			SecretHash: []byte{1}}), "postgres: recovery case claim secret already in use"},
		{"second approval", s.AddRecoveryApproval(ctx, a), "postgres: the officer has already approved this recovery case"},
		{"event id", s.CreateBreakGlassEvent(ctx, &airlock.BreakGlassEvent{ID: "bg_1", AccountID: "u-bg2",
			TokenHash: []byte{2}}), "postgres: break-glass event id already exists"},
		{"event token", s.CreateBreakGlassEvent(ctx, &airlock.BreakGlassEvent{ID: "bg_2", AccountID: "u-bg2",
			TokenHash: []byte{1}}), "postgres: break-glass session token already in use"},
		{"lock", s.CreateBreakGlassEvent(ctx, &airlock.BreakGlassEvent{ID: "bg_3", AccountID: "u-bg",
			TokenHash: []byte{3}}), "postgres: break-glass account is locked until the review of its last use"},
	} {
		if got := airlock.ErrorMessage(tc.err); got != tc.want || airlock.ErrorCode(tc.err) != airlock.ECONFLICT {
			t.Errorf("%s: %v, message %q, want ECONFLICT %q", tc.name, tc.err, got, tc.want)
		}
	}
}

// TestRecoverySimpleProtocol exercises, with pgx's simple query protocol
// (PgBouncer in transaction mode), the recovery and break-glass arguments:
// the status array of ListRecoveryCases, bytea hashes, text[] scopes and
// NULL times.
func TestRecoverySimpleProtocol(t *testing.T) {
	ctx := context.Background()
	s := mustOpenURL(t, pgtest.WithParam(pgtest.Schema(t), "default_query_exec_mode", "simple_protocol"))
	now := time.Now().UTC().Truncate(time.Microsecond)
	c := &airlock.RecoveryCase{ID: "rc_1", SubjectID: "u-1", Status: airlock.RecoveryCoolingDown,
		SecretHash: []byte{0, 1, 0xff}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateRecoveryCase(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindRecoveryCaseBySecret(ctx, c.SecretHash); err != nil || got.ID != "rc_1" || !got.CoolDownUntil.IsZero() {
		t.Fatalf("FindRecoveryCaseBySecret: %+v, %v", got, err)
	}
	list, err := s.ListRecoveryCases(ctx, airlock.RecoveryCaseFilter{SubjectID: "u-1", Since: now,
		Statuses: []airlock.RecoveryStatus{airlock.RecoveryPending, airlock.RecoveryCoolingDown}})
	if err != nil || len(list) != 1 {
		t.Fatalf("ListRecoveryCases: %d, %v", len(list), err)
	}
	if err := s.UpdateRecoveryCase(ctx, c); err != nil || c.Version != 1 {
		t.Fatalf("UpdateRecoveryCase: %v, version %d", err, c.Version)
	}
	e := &airlock.BreakGlassEvent{ID: "bg_1", AccountID: "u-bg", TokenHash: []byte{0, 0xfe}, Scopes: []string{"a@b", "tier:1"},
		StartedAt: now}
	if err := s.CreateBreakGlassEvent(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateBreakGlassEvent(ctx, &airlock.BreakGlassEvent{ID: "bg_2", AccountID: "u-bg", TokenHash: []byte{2}}); airlock.ErrorCode(err) != airlock.ECONFLICT {
		t.Fatalf("second unreviewed event: %v, want ECONFLICT", err)
	}
	got, err := s.ListBreakGlassEvents(ctx, airlock.BreakGlassFilter{AccountID: "u-bg", Unreviewed: true})
	if err != nil || len(got) != 1 || !slices.Equal(got[0].Scopes, e.Scopes) || !got[0].EndedAt.IsZero() {
		t.Fatalf("ListBreakGlassEvents: %v, %v", got, err)
	}
}
