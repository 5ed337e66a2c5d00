package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"airlock"
)

// Recovery cases and their approvals (airlock.RecoveryStore). Beyond the
// interface docs the suite pins down:
//
//   - ListRecoveryCases orders ties of CreatedAt by descending ID, like the
//     elevation lists; Since is inclusive; Statuses keeps any of them.
//   - ListRecoveryCasesToExpire: "not after now" includes ExpiresAt = now;
//     the order is soonest ExpiresAt first, then ascending ID; final
//     statuses (completed, cancelled, denied, expired) are never listed.
//   - ListRecoveryApprovals orders ties of At in the order the approvals
//     were added.
//   - CreateRecoveryCase refuses an unknown status and an empty SecretHash
//     (EINVALID, nothing written); FindRecoveryCaseBySecret of an empty
//     hash is ENOTFOUND.
//   - UpdateRecoveryCase versions behave exactly as UpdateUser's (see the
//     package doc); it ignores the immutable fields (SubjectID, OpenedBy,
//     Via, Reason, Tier, Required, SecretHash, CreatedAt).
//   - Every list is empty, non-nil when nothing matches; a limit ≤ 0 means
//     100.

// fullCase is a cooling-down case with every field set; pendingCase
// returns it pending, before any of the later fields are set.
func fullCase(id, subject string, created time.Time) *airlock.RecoveryCase {
	return &airlock.RecoveryCase{
		ID:            id,
		SubjectID:     subject,
		OpenedBy:      "u-helpdesk",
		Via:           airlock.OpenedByHelpdesk,
		Reason:        "laptop stolen at the airport; ticket INC-99",
		Tier:          1,
		Required:      2,
		Status:        airlock.RecoveryReleased,
		DeviceID:      "d-new",
		SecretHash:    append(bytesOf(7, 31), []byte(id)...),
		CoolDownUntil: created.Add(24 * time.Hour).In(elsewhere),
		EnrolTokenID:  "et-" + id,
		ResolvedAt:    created.Add(25 * time.Hour),
		ResolvedBy:    "u-officer",
		Note:          "claimed on the replacement laptop",
		CreatedAt:     created,
		ExpiresAt:     created.Add(72 * time.Hour).In(elsewhere),
		UpdatedAt:     created.Add(25 * time.Hour),
		Version:       3,
	}
}

func pendingCase(id, subject string, created time.Time) *airlock.RecoveryCase {
	c := fullCase(id, subject, created)
	c.Status = airlock.RecoveryPending
	c.DeviceID, c.EnrolTokenID, c.ResolvedBy, c.Note = "", "", "", ""
	c.CoolDownUntil, c.ResolvedAt = time.Time{}, time.Time{}
	c.UpdatedAt, c.Version = created, 0
	return c
}

// fullRecoveryApproval is an approval of caseID by approver with every
// field set.
func fullRecoveryApproval(caseID, approver string, when time.Time) *airlock.RecoveryApproval {
	return &airlock.RecoveryApproval{
		CaseID:       caseID,
		ApproverID:   approver,
		SessionID:    "s-" + approver,
		DeviceID:     "d-" + approver,
		CredentialID: bytesOf(31, 48),
		Verification: "video call; photo ID matched the HR record",
		Challenge:    "q2Xn0yPq1r9Zb2u8e0qk7mJm0gq3o5m3q8J2cVb4T1U",
		At:           when.In(elsewhere),
	}
}

func caseIDs(list []*airlock.RecoveryCase) []string {
	return ids(list, func(c *airlock.RecoveryCase) string { return c.ID })
}

func testRecovery(t *testing.T, open func(t *testing.T) airlock.Store) {
	t.Run("Cases", func(t *testing.T) { testRecoveryCases(t, open) })
	t.Run("List", func(t *testing.T) { testRecoveryList(t, open) })
	t.Run("Update", func(t *testing.T) { testRecoveryUpdate(t, open) })
	t.Run("Approvals", func(t *testing.T) { testRecoveryApprovals(t, open) })
	t.Run("ToExpire", func(t *testing.T) { testRecoveryToExpire(t, open) })
}

func testRecoveryCases(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("round-trip", func(t *testing.T) {
		s := open(t)
		full := fullCase("rc_1", "u-alice", t0)
		checkAllSet(t, full)
		pending := pendingCase("rc_2", "u-alice", t0)
		self := pendingCase("rc_3", "u-bob", at(time.Second))
		self.Via, self.OpenedBy, self.Tier, self.Required = airlock.OpenedBySelf, "u-bob", 0, 2
		// Zero times, empty strings, a secret hash with 0x00 and non-UTF-8
		// bytes.
		bare := &airlock.RecoveryCase{ID: "rc_4", SubjectID: "u-carol", Status: airlock.RecoveryPending,
			SecretHash: []byte{0, 0xff, 0xfe}}
		for _, c := range []*airlock.RecoveryCase{full, pending, self, bare} {
			must(t, "CreateRecoveryCase "+c.ID, s.CreateRecoveryCase(ctx, c))
			got, err := s.FindRecoveryCaseByID(ctx, c.ID)
			must(t, "FindRecoveryCaseByID "+c.ID, err)
			checkEqual(t, "recovery case "+c.ID, c, got)
			got, err = s.FindRecoveryCaseBySecret(ctx, c.SecretHash)
			must(t, "FindRecoveryCaseBySecret "+c.ID, err)
			checkEqual(t, "recovery case by secret "+c.ID, c, got)
		}
	})

	t.Run("fail-duplicate-id", func(t *testing.T) {
		s := open(t)
		c := pendingCase("rc_1", "u-alice", t0)
		must(t, "CreateRecoveryCase", s.CreateRecoveryCase(ctx, c))
		dup := pendingCase("rc_1", "u-mallory", at(time.Hour))
		dup.SecretHash = []byte("another secret hash")
		wantCode(t, "duplicate id", s.CreateRecoveryCase(ctx, dup), airlock.ECONFLICT)
		got, err := s.FindRecoveryCaseByID(ctx, "rc_1")
		must(t, "FindRecoveryCaseByID", err)
		checkEqual(t, "case after a duplicate id", c, got)
		_, err = s.FindRecoveryCaseBySecret(ctx, dup.SecretHash)
		wantCode(t, "secret of the refused duplicate", err, airlock.ENOTFOUND)
	})

	t.Run("fail-duplicate-secret", func(t *testing.T) {
		s := open(t)
		c := pendingCase("rc_1", "u-alice", t0)
		must(t, "CreateRecoveryCase", s.CreateRecoveryCase(ctx, c))
		dup := pendingCase("rc_2", "u-mallory", at(time.Hour))
		dup.SecretHash = c.SecretHash
		wantCode(t, "duplicate secret hash", s.CreateRecoveryCase(ctx, dup), airlock.ECONFLICT)
		_, err := s.FindRecoveryCaseByID(ctx, "rc_2")
		wantCode(t, "case with the refused secret", err, airlock.ENOTFOUND)
		got, err := s.FindRecoveryCaseBySecret(ctx, c.SecretHash)
		must(t, "FindRecoveryCaseBySecret", err)
		if got.ID != "rc_1" {
			t.Errorf("secret finds %s, want rc_1", got.ID)
		}
	})

	t.Run("fail-invalid", func(t *testing.T) {
		s := open(t)
		for name, c := range map[string]*airlock.RecoveryCase{
			"empty status":   {ID: "rc_1", SubjectID: "u-alice", SecretHash: []byte{1}},
			"unknown status": {ID: "rc_2", SubjectID: "u-alice", Status: "approved", SecretHash: []byte{2}},
			"no secret hash": {ID: "rc_3", SubjectID: "u-alice", Status: airlock.RecoveryPending},
			"empty secret":   {ID: "rc_4", SubjectID: "u-alice", Status: airlock.RecoveryPending, SecretHash: []byte{}},
		} {
			wantCode(t, name, s.CreateRecoveryCase(ctx, c), airlock.EINVALID)
			_, err := s.FindRecoveryCaseByID(ctx, c.ID)
			wantCode(t, name+": stored", err, airlock.ENOTFOUND)
		}
	})

	t.Run("fail-not-found", func(t *testing.T) {
		s := open(t)
		must(t, "CreateRecoveryCase", s.CreateRecoveryCase(ctx, pendingCase("rc_1", "u-alice", t0)))
		_, err := s.FindRecoveryCaseByID(ctx, "rc_2")
		wantCode(t, "FindRecoveryCaseByID missing", err, airlock.ENOTFOUND)
		for name, h := range map[string][]byte{"other": []byte("no such secret"), "nil": nil, "empty": {}} {
			_, err := s.FindRecoveryCaseBySecret(ctx, h)
			wantCode(t, "FindRecoveryCaseBySecret "+name, err, airlock.ENOTFOUND)
		}
		// A prefix of a stored hash is not that hash.
		c := pendingCase("rc_1", "u-alice", t0)
		_, err = s.FindRecoveryCaseBySecret(ctx, c.SecretHash[:len(c.SecretHash)-1])
		wantCode(t, "FindRecoveryCaseBySecret prefix", err, airlock.ENOTFOUND)
	})
}

func testRecoveryList(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()
	s := open(t)
	add := func(id, subject string, status airlock.RecoveryStatus, created time.Time, token string) {
		t.Helper()
		c := pendingCase(id, subject, created)
		c.Status, c.EnrolTokenID = status, token
		must(t, "CreateRecoveryCase "+id, s.CreateRecoveryCase(ctx, c))
	}
	add("rc_a", "u-alice", airlock.RecoveryPending, at(time.Minute), "")
	add("rc_b", "u-bob", airlock.RecoveryCoolingDown, at(time.Minute), "")   // tie with rc_a
	add("rc_c", "u-alice", airlock.RecoveryCancelled, at(2*time.Minute), "") // newest
	add("rc_d", "u-alice", airlock.RecoveryReleased, at(0), "et-1")          // oldest
	add("rc_e", "u-carol", airlock.RecoveryCompleted, at(time.Minute/2), "et-2")

	for _, tc := range []struct {
		name string
		f    airlock.RecoveryCaseFilter
		want []string
	}{
		{"all", airlock.RecoveryCaseFilter{}, []string{"rc_c", "rc_b", "rc_a", "rc_e", "rc_d"}},
		{"negative-limit", airlock.RecoveryCaseFilter{Limit: -1}, []string{"rc_c", "rc_b", "rc_a", "rc_e", "rc_d"}},
		{"limit", airlock.RecoveryCaseFilter{Limit: 2}, []string{"rc_c", "rc_b"}},
		{"subject", airlock.RecoveryCaseFilter{SubjectID: "u-alice"}, []string{"rc_c", "rc_a", "rc_d"}},
		{"one-status", airlock.RecoveryCaseFilter{Statuses: []airlock.RecoveryStatus{airlock.RecoveryPending}},
			[]string{"rc_a"}},
		{"live-statuses", airlock.RecoveryCaseFilter{Statuses: []airlock.RecoveryStatus{airlock.RecoveryPending,
			airlock.RecoveryCoolingDown, airlock.RecoveryReleased}}, []string{"rc_b", "rc_a", "rc_d"}},
		{"subject-and-live-statuses", airlock.RecoveryCaseFilter{SubjectID: "u-alice", Statuses: []airlock.RecoveryStatus{
			airlock.RecoveryPending, airlock.RecoveryCoolingDown, airlock.RecoveryReleased}}, []string{"rc_a", "rc_d"}},
		{"unknown-status", airlock.RecoveryCaseFilter{Statuses: []airlock.RecoveryStatus{"approved"}}, []string{}},
		{"enrol-token", airlock.RecoveryCaseFilter{EnrolTokenID: "et-1"}, []string{"rc_d"}},
		{"enrol-token-and-other-subject", airlock.RecoveryCaseFilter{EnrolTokenID: "et-1", SubjectID: "u-carol"},
			[]string{}},
		{"since-inclusive", airlock.RecoveryCaseFilter{Since: at(time.Minute).In(elsewhere)},
			[]string{"rc_c", "rc_b", "rc_a"}},
		{"since-after-all", airlock.RecoveryCaseFilter{Since: at(time.Hour)}, []string{}},
		{"since-and-subject-and-limit", airlock.RecoveryCaseFilter{SubjectID: "u-alice", Since: at(0), Limit: 2},
			[]string{"rc_c", "rc_a"}},
		{"unknown-subject", airlock.RecoveryCaseFilter{SubjectID: "u-nobody"}, []string{}},
	} {
		got, err := s.ListRecoveryCases(ctx, tc.f)
		must(t, "ListRecoveryCases "+tc.name, err)
		if got == nil {
			t.Errorf("%s: nil list, want empty non-nil", tc.name)
		}
		if ids := caseIDs(got); !slices.Equal(ids, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, ids, tc.want)
		}
	}

	t.Run("default-limit", func(t *testing.T) {
		s := open(t)
		for i := range 101 {
			c := pendingCase(fmt.Sprintf("rc_%03d", i), "u-alice", at(time.Duration(i)*time.Second))
			must(t, "CreateRecoveryCase", s.CreateRecoveryCase(ctx, c))
		}
		got, err := s.ListRecoveryCases(ctx, airlock.RecoveryCaseFilter{})
		must(t, "ListRecoveryCases", err)
		if len(got) != 100 || got[0].ID != "rc_100" || got[99].ID != "rc_001" {
			t.Errorf("default page: %d cases from %v, want 100 from rc_100 to rc_001", len(got), caseIDs(got[:1]))
		}
	})
}

func testRecoveryUpdate(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("ok-mutable-fields", func(t *testing.T) {
		s := open(t)
		c := pendingCase("rc_1", "u-alice", t0)
		must(t, "CreateRecoveryCase", s.CreateRecoveryCase(ctx, c))
		want := *c
		// Every mutable field changes …
		upd := fullCase("rc_1", "u-alice", t0)
		upd.Version = c.Version
		upd.Status = airlock.RecoveryCompleted
		upd.ExpiresAt = at(96 * time.Hour)
		// … and the immutable ones are ignored.
		upd.SubjectID, upd.OpenedBy, upd.Via, upd.Reason = "u-mallory", "u-mallory", airlock.OpenedBySelf, "changed"
		upd.Tier, upd.Required, upd.SecretHash, upd.CreatedAt = 2, 1, []byte("changed"), at(time.Hour)
		must(t, "UpdateRecoveryCase", s.UpdateRecoveryCase(ctx, upd))
		if upd.Version != c.Version+1 {
			t.Errorf("caller's version %d after the update, want %d", upd.Version, c.Version+1)
		}
		want.Status, want.DeviceID, want.CoolDownUntil, want.EnrolTokenID = upd.Status, upd.DeviceID, upd.CoolDownUntil, upd.EnrolTokenID
		want.ResolvedAt, want.ResolvedBy, want.Note = upd.ResolvedAt, upd.ResolvedBy, upd.Note
		want.ExpiresAt, want.UpdatedAt, want.Version = upd.ExpiresAt, upd.UpdatedAt, c.Version+1
		got, err := s.FindRecoveryCaseByID(ctx, "rc_1")
		must(t, "FindRecoveryCaseByID", err)
		checkEqual(t, "updated case", &want, got)
		if _, err := s.FindRecoveryCaseBySecret(ctx, c.SecretHash); err != nil {
			t.Errorf("the case's secret no longer finds it: %v", err)
		}

		// And back to zero values (times included).
		got.DeviceID, got.CoolDownUntil, got.EnrolTokenID, got.ResolvedAt = "", time.Time{}, "", time.Time{}
		got.ResolvedBy, got.Note, got.UpdatedAt, got.Status = "", "", time.Time{}, airlock.RecoveryPending
		must(t, "UpdateRecoveryCase to zero values", s.UpdateRecoveryCase(ctx, got))
		again, err := s.FindRecoveryCaseByID(ctx, "rc_1")
		must(t, "FindRecoveryCaseByID", err)
		checkEqual(t, "case updated to zero values", got, again)
	})

	t.Run("fail-stale-version", func(t *testing.T) {
		s := open(t)
		c := pendingCase("rc_1", "u-alice", t0)
		c.Version = 5
		must(t, "CreateRecoveryCase", s.CreateRecoveryCase(ctx, c))
		for _, v := range []int64{4, 6, 0} {
			stale := *c
			stale.Version, stale.Status, stale.Note = v, airlock.RecoveryCancelled, "stale"
			wantCode(t, fmt.Sprint("update at version ", v), s.UpdateRecoveryCase(ctx, &stale), airlock.ECONFLICT)
			if stale.Version != v {
				t.Errorf("caller's version moved to %d on ECONFLICT, want %d", stale.Version, v)
			}
		}
		got, err := s.FindRecoveryCaseByID(ctx, "rc_1")
		must(t, "FindRecoveryCaseByID", err)
		checkEqual(t, "case after stale updates", c, got)
	})

	t.Run("fail-second-update-same-version", func(t *testing.T) {
		s := open(t)
		c := pendingCase("rc_1", "u-alice", t0)
		must(t, "CreateRecoveryCase", s.CreateRecoveryCase(ctx, c))
		a, b := *c, *c
		a.Status, b.Status = airlock.RecoveryCoolingDown, airlock.RecoveryDenied
		must(t, "first update", s.UpdateRecoveryCase(ctx, &a))
		wantCode(t, "second update from the same version", s.UpdateRecoveryCase(ctx, &b), airlock.ECONFLICT)
		got, err := s.FindRecoveryCaseByID(ctx, "rc_1")
		must(t, "FindRecoveryCaseByID", err)
		if got.Status != airlock.RecoveryCoolingDown || got.Version != 1 {
			t.Errorf("case %s at version %d, want cooling_down at 1", got.Status, got.Version)
		}
	})

	t.Run("fail-missing", func(t *testing.T) {
		s := open(t)
		c := pendingCase("rc_1", "u-alice", t0)
		wantCode(t, "update of a missing case", s.UpdateRecoveryCase(ctx, c), airlock.ENOTFOUND)
		c.Version = 9
		wantCode(t, "update of a missing case at another version", s.UpdateRecoveryCase(ctx, c), airlock.ENOTFOUND)
	})

	t.Run("fail-invalid-status", func(t *testing.T) {
		s := open(t)
		c := pendingCase("rc_1", "u-alice", t0)
		must(t, "CreateRecoveryCase", s.CreateRecoveryCase(ctx, c))
		for _, st := range []airlock.RecoveryStatus{"", "approved", "PENDING"} {
			bad := *c
			bad.Status, bad.Note = st, "bad"
			wantCode(t, fmt.Sprintf("status %q", st), s.UpdateRecoveryCase(ctx, &bad), airlock.EINVALID)
			if bad.Version != c.Version {
				t.Errorf("status %q: caller's version moved", st)
			}
		}
		got, err := s.FindRecoveryCaseByID(ctx, "rc_1")
		must(t, "FindRecoveryCaseByID", err)
		checkEqual(t, "case after invalid updates", c, got)
	})

	t.Run("one-winner-concurrently", func(t *testing.T) {
		s := open(t)
		c := pendingCase("rc_1", "u-alice", t0)
		must(t, "CreateRecoveryCase", s.CreateRecoveryCase(ctx, c))
		const racers = 12
		wins := race(t, racers, func(i int) error {
			u := *c
			u.Status, u.Note = airlock.RecoveryCoolingDown, fmt.Sprint("racer ", i)
			return s.UpdateRecoveryCase(ctx, &u)
		})
		if wins != 1 {
			t.Errorf("%d of %d concurrent updates from one version succeeded, want exactly 1", wins, racers)
		}
		got, err := s.FindRecoveryCaseByID(ctx, "rc_1")
		must(t, "FindRecoveryCaseByID", err)
		if got.Version != 1 {
			t.Errorf("version %d after the race, want 1", got.Version)
		}
	})
}

func testRecoveryApprovals(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("round-trip-and-order", func(t *testing.T) {
		s := open(t)
		must(t, "CreateRecoveryCase", s.CreateRecoveryCase(ctx, pendingCase("rc_1", "u-alice", t0)))
		c2 := pendingCase("rc_2", "u-bob", t0)
		must(t, "CreateRecoveryCase", s.CreateRecoveryCase(ctx, c2))
		first := fullRecoveryApproval("rc_1", "u-zed", at(2*time.Minute))
		checkAllSet(t, first)
		// Added later but earlier in time; then two at the same time, kept
		// in the order they were added; then a bare one.
		early := fullRecoveryApproval("rc_1", "u-yan", at(time.Minute))
		tieA := fullRecoveryApproval("rc_1", "u-b", at(3*time.Minute))
		tieB := fullRecoveryApproval("rc_1", "u-a", at(3*time.Minute))
		bare := &airlock.RecoveryApproval{CaseID: "rc_1", ApproverID: "u-bare", At: at(4 * time.Minute)}
		other := fullRecoveryApproval("rc_2", "u-zed", at(time.Minute))
		for _, a := range []*airlock.RecoveryApproval{first, early, tieA, tieB, bare, other} {
			must(t, "AddRecoveryApproval "+a.CaseID+"/"+a.ApproverID, s.AddRecoveryApproval(ctx, a))
		}
		got, err := s.ListRecoveryApprovals(ctx, "rc_1")
		must(t, "ListRecoveryApprovals", err)
		want := []*airlock.RecoveryApproval{early, first, tieA, tieB, bare}
		checkEqual(t, "approvals of rc_1", want, got)
		got, err = s.ListRecoveryApprovals(ctx, "rc_2")
		must(t, "ListRecoveryApprovals rc_2", err)
		checkEqual(t, "approvals of rc_2", []*airlock.RecoveryApproval{other}, got)
		got, err = s.ListRecoveryApprovals(ctx, "rc_none")
		must(t, "ListRecoveryApprovals of a missing case", err)
		if got == nil || len(got) != 0 {
			t.Errorf("approvals of a missing case: %v, want empty non-nil", got)
		}
	})

	t.Run("fail-duplicate-approver", func(t *testing.T) {
		s := open(t)
		must(t, "CreateRecoveryCase", s.CreateRecoveryCase(ctx, pendingCase("rc_1", "u-alice", t0)))
		a := fullRecoveryApproval("rc_1", "u-officer", at(time.Minute))
		must(t, "AddRecoveryApproval", s.AddRecoveryApproval(ctx, a))
		again := fullRecoveryApproval("rc_1", "u-officer", at(2*time.Minute))
		again.Verification, again.SessionID = "second try", "s-other"
		wantCode(t, "second approval by the same officer", s.AddRecoveryApproval(ctx, again), airlock.ECONFLICT)
		got, err := s.ListRecoveryApprovals(ctx, "rc_1")
		must(t, "ListRecoveryApprovals", err)
		checkEqual(t, "approvals after a duplicate", []*airlock.RecoveryApproval{a}, got)
	})

	t.Run("fail-missing-case", func(t *testing.T) {
		s := open(t)
		a := fullRecoveryApproval("rc_none", "u-officer", at(time.Minute))
		wantCode(t, "approval of a missing case", s.AddRecoveryApproval(ctx, a), airlock.ENOTFOUND)
		got, err := s.ListRecoveryApprovals(ctx, "rc_none")
		must(t, "ListRecoveryApprovals", err)
		if len(got) != 0 {
			t.Errorf("%d approvals stored for a missing case", len(got))
		}
	})

	t.Run("fail-not-pending", func(t *testing.T) {
		s := open(t)
		for i, st := range []airlock.RecoveryStatus{airlock.RecoveryCoolingDown, airlock.RecoveryReleased,
			airlock.RecoveryCompleted, airlock.RecoveryCancelled, airlock.RecoveryDenied, airlock.RecoveryExpired} {
			id := fmt.Sprintf("rc_%d", i)
			c := pendingCase(id, "u-alice", t0)
			c.Status = st
			must(t, "CreateRecoveryCase", s.CreateRecoveryCase(ctx, c))
			wantCode(t, "approval of a "+string(st)+" case",
				s.AddRecoveryApproval(ctx, fullRecoveryApproval(id, "u-officer", at(time.Minute))), airlock.ECONFLICT)
			got, err := s.ListRecoveryApprovals(ctx, id)
			must(t, "ListRecoveryApprovals", err)
			if len(got) != 0 {
				t.Errorf("%s case: %d approvals stored", st, len(got))
			}
		}
	})

	t.Run("fail-after-transition", func(t *testing.T) {
		s := open(t)
		c := pendingCase("rc_1", "u-alice", t0)
		must(t, "CreateRecoveryCase", s.CreateRecoveryCase(ctx, c))
		must(t, "AddRecoveryApproval", s.AddRecoveryApproval(ctx, fullRecoveryApproval("rc_1", "u-o1", at(time.Minute))))
		c.Status = airlock.RecoveryCoolingDown
		must(t, "UpdateRecoveryCase", s.UpdateRecoveryCase(ctx, c))
		wantCode(t, "approval after the quorum moved the case on",
			s.AddRecoveryApproval(ctx, fullRecoveryApproval("rc_1", "u-o2", at(2*time.Minute))), airlock.ECONFLICT)
	})

	t.Run("same-approver-concurrently", func(t *testing.T) {
		s := open(t)
		must(t, "CreateRecoveryCase", s.CreateRecoveryCase(ctx, pendingCase("rc_1", "u-alice", t0)))
		const racers = 12
		wins := race(t, racers, func(i int) error {
			a := fullRecoveryApproval("rc_1", "u-officer", at(time.Minute))
			a.Verification = fmt.Sprint("racer ", i)
			return s.AddRecoveryApproval(ctx, a)
		})
		if wins != 1 {
			t.Errorf("%d of %d concurrent approvals by one officer succeeded, want exactly 1", wins, racers)
		}
		got, err := s.ListRecoveryApprovals(ctx, "rc_1")
		must(t, "ListRecoveryApprovals", err)
		if len(got) != 1 {
			t.Errorf("%d approvals stored, want 1", len(got))
		}
	})
}

func testRecoveryToExpire(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()
	s := open(t)
	now := at(72 * time.Hour)
	add := func(id string, status airlock.RecoveryStatus, expires time.Time) {
		t.Helper()
		c := pendingCase(id, "u-"+id, t0)
		c.Status, c.ExpiresAt = status, expires
		must(t, "CreateRecoveryCase "+id, s.CreateRecoveryCase(ctx, c))
	}
	add("rc_now", airlock.RecoveryPending, now.In(elsewhere)) // exactly now: due
	add("rc_b", airlock.RecoveryCoolingDown, now.Add(-time.Hour))
	add("rc_a", airlock.RecoveryReleased, now.Add(-time.Hour)) // tie with rc_b: by ID
	add("rc_old", airlock.RecoveryPending, now.Add(-48*time.Hour))
	add("rc_zero", airlock.RecoveryPending, time.Time{}) // a zero expiry is long past
	add("rc_later", airlock.RecoveryPending, now.Add(time.Microsecond))
	for i, st := range []airlock.RecoveryStatus{airlock.RecoveryCompleted, airlock.RecoveryCancelled,
		airlock.RecoveryDenied, airlock.RecoveryExpired} {
		add(fmt.Sprintf("rc_final%d", i), st, now.Add(-time.Hour))
	}

	for _, tc := range []struct {
		limit int
		want  []string
	}{
		{0, []string{"rc_zero", "rc_old", "rc_a", "rc_b", "rc_now"}},
		{-3, []string{"rc_zero", "rc_old", "rc_a", "rc_b", "rc_now"}},
		{3, []string{"rc_zero", "rc_old", "rc_a"}},
	} {
		got, err := s.ListRecoveryCasesToExpire(ctx, now, tc.limit)
		must(t, "ListRecoveryCasesToExpire", err)
		if ids := caseIDs(got); !slices.Equal(ids, tc.want) {
			t.Errorf("limit %d: %v, want %v", tc.limit, ids, tc.want)
		}
	}
	got, err := s.ListRecoveryCasesToExpire(ctx, now.Add(-72*time.Hour), 0)
	must(t, "ListRecoveryCasesToExpire early", err)
	if got == nil || !slices.Equal(caseIDs(got), []string{"rc_zero"}) {
		t.Errorf("early sweep: %v, want [rc_zero]", caseIDs(got))
	}
}
