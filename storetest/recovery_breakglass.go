package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"airlock"
)

// Break-glass events (airlock.BreakGlassStore). Beyond the interface docs
// the suite pins down:
//
//   - The lock: a second unreviewed event of an account is ECONFLICT
//     whatever its ID and TokenHash, and its message says "break-glass
//     account is locked until the review of its last use". Ending the event
//     does not lift the lock; only the review does. An event created
//     already reviewed (an offline use merged after its review) takes no
//     lock.
//   - CreateBreakGlassEvent refuses an empty ID, AccountID or TokenHash
//     (EINVALID, nothing written); FindBreakGlassEventByToken of an empty
//     hash is ENOTFOUND.
//   - EndBreakGlassEvent and ReviewBreakGlassEvent at the zero time, and a
//     review without a reviewer, are EINVALID; a refused end or review
//     writes nothing and keeps the first one. A review of an event that is
//     both reviewed and not ended is ECONFLICT.
//   - ListBreakGlassEvents orders ties of StartedAt by descending ID; it is
//     empty, non-nil when nothing matches; a limit ≤ 0 means 100. Scopes
//     and AlertIDs come back empty, non-nil when stored nil or empty.

// lockedMessage is what a refused second unreviewed event says.
const lockedMessage = "break-glass account is locked until the review of its last use"

// fullBreakGlass is an ended, reviewed event with every field set;
// liveBreakGlass returns it live (neither ended nor reviewed).
func fullBreakGlass(id, account string, started time.Time) *airlock.BreakGlassEvent {
	return &airlock.BreakGlassEvent{
		ID:             id,
		AccountID:      account,
		CredentialID:   bytesOf(41, 64),
		Justification:  "INC-5000: SSO down, payroll database unreachable",
		Scopes:         []string{"dba@db-prod", "tier:1"},
		IP:             "2001:db8::77",
		UserAgent:      "Mozilla/5.0 (X11; Linux x86_64)",
		TokenHash:      append(bytesOf(3, 30), []byte(id)...),
		StartedAt:      started,
		EndsAt:         started.Add(time.Hour).In(elsewhere),
		EndedAt:        started.Add(40 * time.Minute),
		EndReason:      "ended by the user",
		AlertIDs:       []string{"al_1", "al_2"},
		AlertDelivered: true,
		Offline:        true,
		ReviewedAt:     started.Add(26 * time.Hour).In(elsewhere),
		ReviewedBy:     "u-reviewer",
		ReviewNotes:    "justified: SSO outage INC-5000; credential re-sealed",
	}
}

func liveBreakGlass(id, account string, started time.Time) *airlock.BreakGlassEvent {
	e := fullBreakGlass(id, account, started)
	e.EndedAt, e.EndReason = time.Time{}, ""
	e.ReviewedAt, e.ReviewedBy, e.ReviewNotes = time.Time{}, "", ""
	e.Offline = false
	return e
}

func eventIDs(list []*airlock.BreakGlassEvent) []string {
	return ids(list, func(e *airlock.BreakGlassEvent) string { return e.ID })
}

func testBreakGlass(t *testing.T, open func(t *testing.T) airlock.Store) {
	t.Run("Events", func(t *testing.T) { testBreakGlassEvents(t, open) })
	t.Run("Lock", func(t *testing.T) { testBreakGlassLock(t, open) })
	t.Run("End", func(t *testing.T) { testBreakGlassEnd(t, open) })
	t.Run("Review", func(t *testing.T) { testBreakGlassReview(t, open) })
	t.Run("List", func(t *testing.T) { testBreakGlassList(t, open) })
}

func testBreakGlassEvents(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("round-trip", func(t *testing.T) {
		s := open(t)
		full := fullBreakGlass("bg_1", "u-bg1", t0)
		checkAllSet(t, full)
		live := liveBreakGlass("bg_2", "u-bg2", t0)
		bare := &airlock.BreakGlassEvent{ID: "bg_3", AccountID: "u-bg3", TokenHash: []byte{0, 0xff}}
		for _, e := range []*airlock.BreakGlassEvent{full, live, bare} {
			must(t, "CreateBreakGlassEvent "+e.ID, s.CreateBreakGlassEvent(ctx, e))
			got, err := s.FindBreakGlassEventByID(ctx, e.ID)
			must(t, "FindBreakGlassEventByID "+e.ID, err)
			checkEqual(t, "event "+e.ID, e, got)
			if got.Scopes == nil || got.AlertIDs == nil {
				t.Errorf("event %s: Scopes %#v, AlertIDs %#v, want non-nil", e.ID, got.Scopes, got.AlertIDs)
			}
			got, err = s.FindBreakGlassEventByToken(ctx, e.TokenHash)
			must(t, "FindBreakGlassEventByToken "+e.ID, err)
			checkEqual(t, "event by token "+e.ID, e, got)
		}
		if got, _ := s.FindBreakGlassEventByID(ctx, "bg_2"); got.Reviewed() {
			t.Error("a live event reads back as reviewed")
		}
		if got, _ := s.FindBreakGlassEventByID(ctx, "bg_1"); !got.Reviewed() {
			t.Error("a reviewed event reads back as not reviewed")
		}
	})

	t.Run("fail-duplicate-id", func(t *testing.T) {
		s := open(t)
		e := liveBreakGlass("bg_1", "u-bg1", t0)
		must(t, "CreateBreakGlassEvent", s.CreateBreakGlassEvent(ctx, e))
		dup := liveBreakGlass("bg_1", "u-bg2", at(time.Hour))
		dup.TokenHash = []byte("another token")
		wantCode(t, "duplicate id", s.CreateBreakGlassEvent(ctx, dup), airlock.ECONFLICT)
		got, err := s.FindBreakGlassEventByID(ctx, "bg_1")
		must(t, "FindBreakGlassEventByID", err)
		checkEqual(t, "event after a duplicate id", e, got)
		_, err = s.FindBreakGlassEventByToken(ctx, dup.TokenHash)
		wantCode(t, "token of the refused duplicate", err, airlock.ENOTFOUND)
	})

	t.Run("fail-duplicate-token", func(t *testing.T) {
		s := open(t)
		e := fullBreakGlass("bg_1", "u-bg1", t0) // reviewed: no lock in the way
		must(t, "CreateBreakGlassEvent", s.CreateBreakGlassEvent(ctx, e))
		dup := liveBreakGlass("bg_2", "u-bg2", at(time.Hour))
		dup.TokenHash = e.TokenHash
		wantCode(t, "duplicate token hash", s.CreateBreakGlassEvent(ctx, dup), airlock.ECONFLICT)
		_, err := s.FindBreakGlassEventByID(ctx, "bg_2")
		wantCode(t, "event with the refused token", err, airlock.ENOTFOUND)
		got, err := s.FindBreakGlassEventByToken(ctx, e.TokenHash)
		must(t, "FindBreakGlassEventByToken", err)
		if got.ID != "bg_1" {
			t.Errorf("token finds %s, want bg_1", got.ID)
		}
	})

	t.Run("fail-invalid", func(t *testing.T) {
		s := open(t)
		for name, e := range map[string]*airlock.BreakGlassEvent{
			"no id":         {AccountID: "u-bg1", TokenHash: []byte{1}},
			"no account":    {ID: "bg_2", TokenHash: []byte{2}},
			"no token hash": {ID: "bg_3", AccountID: "u-bg3"},
			"empty token":   {ID: "bg_4", AccountID: "u-bg4", TokenHash: []byte{}},
		} {
			wantCode(t, name, s.CreateBreakGlassEvent(ctx, e), airlock.EINVALID)
			list, err := s.ListBreakGlassEvents(ctx, airlock.BreakGlassFilter{})
			must(t, "ListBreakGlassEvents", err)
			if len(list) != 0 {
				t.Errorf("%s: %v stored", name, eventIDs(list))
			}
		}
	})

	t.Run("fail-not-found", func(t *testing.T) {
		s := open(t)
		e := liveBreakGlass("bg_1", "u-bg1", t0)
		must(t, "CreateBreakGlassEvent", s.CreateBreakGlassEvent(ctx, e))
		_, err := s.FindBreakGlassEventByID(ctx, "bg_2")
		wantCode(t, "FindBreakGlassEventByID missing", err, airlock.ENOTFOUND)
		for name, h := range map[string][]byte{"other": []byte("no such token"), "nil": nil, "empty": {},
			"prefix": e.TokenHash[:len(e.TokenHash)-1]} {
			_, err := s.FindBreakGlassEventByToken(ctx, h)
			wantCode(t, "FindBreakGlassEventByToken "+name, err, airlock.ENOTFOUND)
		}
	})
}

func testBreakGlassLock(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("locked-until-review", func(t *testing.T) {
		s := open(t)
		first := liveBreakGlass("bg_1", "u-bg", t0)
		must(t, "first use", s.CreateBreakGlassEvent(ctx, first))

		// Another id and token, same account: locked, live or ended.
		second := liveBreakGlass("bg_2", "u-bg", at(time.Minute))
		err := s.CreateBreakGlassEvent(ctx, second)
		wantCode(t, "second use while the first is live", err, airlock.ECONFLICT)
		if msg := airlock.ErrorMessage(err); !strings.HasSuffix(msg, lockedMessage) {
			t.Errorf("lock message %q, want it to end with %q", msg, lockedMessage)
		}
		_, err = s.FindBreakGlassEventByID(ctx, "bg_2")
		wantCode(t, "refused event", err, airlock.ENOTFOUND)

		// Another account is not locked.
		must(t, "use of another account", s.CreateBreakGlassEvent(ctx, liveBreakGlass("bg_other", "u-bg-other", at(time.Minute))))

		must(t, "EndBreakGlassEvent", s.EndBreakGlassEvent(ctx, "bg_1", "expired", at(time.Hour)))
		third := liveBreakGlass("bg_3", "u-bg", at(2*time.Hour))
		wantCode(t, "use after the end, before the review", s.CreateBreakGlassEvent(ctx, third), airlock.ECONFLICT)

		must(t, "ReviewBreakGlassEvent", s.ReviewBreakGlassEvent(ctx, "bg_1", "u-reviewer", "fine", at(3*time.Hour)))
		must(t, "use after the review", s.CreateBreakGlassEvent(ctx, third))
		// … which locks the account again.
		fourth := liveBreakGlass("bg_4", "u-bg", at(4*time.Hour))
		wantCode(t, "use after the second use", s.CreateBreakGlassEvent(ctx, fourth), airlock.ECONFLICT)

		list, err := s.ListBreakGlassEvents(ctx, airlock.BreakGlassFilter{AccountID: "u-bg", Unreviewed: true})
		must(t, "ListBreakGlassEvents", err)
		if !slices.Equal(eventIDs(list), []string{"bg_3"}) {
			t.Errorf("unreviewed events of the account: %v, want [bg_3]", eventIDs(list))
		}
	})

	t.Run("reviewed-event-takes-no-lock", func(t *testing.T) {
		s := open(t)
		must(t, "reviewed event", s.CreateBreakGlassEvent(ctx, fullBreakGlass("bg_1", "u-bg", t0)))
		must(t, "second reviewed event", s.CreateBreakGlassEvent(ctx, fullBreakGlass("bg_2", "u-bg", at(time.Hour))))
		must(t, "live event", s.CreateBreakGlassEvent(ctx, liveBreakGlass("bg_3", "u-bg", at(2*time.Hour))))
		must(t, "reviewed event beside the live one",
			s.CreateBreakGlassEvent(ctx, fullBreakGlass("bg_4", "u-bg", at(3*time.Hour))))
		wantCode(t, "second live event", s.CreateBreakGlassEvent(ctx, liveBreakGlass("bg_5", "u-bg", at(4*time.Hour))),
			airlock.ECONFLICT)
	})

	t.Run("one-winner-concurrently", func(t *testing.T) {
		s := open(t)
		const racers = 12
		wins := race(t, racers, func(i int) error {
			return s.CreateBreakGlassEvent(ctx, liveBreakGlass(fmt.Sprintf("bg_%02d", i), "u-bg", at(time.Duration(i)*time.Second)))
		})
		if wins != 1 {
			t.Errorf("%d of %d concurrent uses of one account succeeded, want exactly 1", wins, racers)
		}
		list, err := s.ListBreakGlassEvents(ctx, airlock.BreakGlassFilter{AccountID: "u-bg"})
		must(t, "ListBreakGlassEvents", err)
		if len(list) != 1 {
			t.Errorf("%d events stored, want 1", len(list))
		}
	})
}

func testBreakGlassEnd(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("once", func(t *testing.T) {
		s := open(t)
		e := liveBreakGlass("bg_1", "u-bg", t0)
		must(t, "CreateBreakGlassEvent", s.CreateBreakGlassEvent(ctx, e))
		must(t, "EndBreakGlassEvent", s.EndBreakGlassEvent(ctx, "bg_1", "ended by the user", at(10*time.Minute).In(elsewhere)))
		wantCode(t, "second end", s.EndBreakGlassEvent(ctx, "bg_1", "expired", at(time.Hour)), airlock.ECONFLICT)
		got, err := s.FindBreakGlassEventByID(ctx, "bg_1")
		must(t, "FindBreakGlassEventByID", err)
		want := *e
		want.EndedAt, want.EndReason = at(10*time.Minute), "ended by the user"
		checkEqual(t, "ended event", &want, got)
	})

	t.Run("fail-missing", func(t *testing.T) {
		s := open(t)
		wantCode(t, "end of a missing event", s.EndBreakGlassEvent(ctx, "bg_none", "expired", t0), airlock.ENOTFOUND)
	})

	t.Run("fail-zero-time", func(t *testing.T) {
		s := open(t)
		e := liveBreakGlass("bg_1", "u-bg", t0)
		must(t, "CreateBreakGlassEvent", s.CreateBreakGlassEvent(ctx, e))
		wantCode(t, "end at the zero time", s.EndBreakGlassEvent(ctx, "bg_1", "expired", time.Time{}), airlock.EINVALID)
		got, err := s.FindBreakGlassEventByID(ctx, "bg_1")
		must(t, "FindBreakGlassEventByID", err)
		checkEqual(t, "event after a zero end", e, got)
	})

	t.Run("one-winner-concurrently", func(t *testing.T) {
		s := open(t)
		must(t, "CreateBreakGlassEvent", s.CreateBreakGlassEvent(ctx, liveBreakGlass("bg_1", "u-bg", t0)))
		const racers = 12
		wins := race(t, racers, func(i int) error {
			return s.EndBreakGlassEvent(ctx, "bg_1", fmt.Sprint("racer ", i), at(time.Duration(i+1)*time.Minute))
		})
		if wins != 1 {
			t.Errorf("%d of %d concurrent ends succeeded, want exactly 1", wins, racers)
		}
	})
}

func testBreakGlassReview(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("once-after-end", func(t *testing.T) {
		s := open(t)
		e := liveBreakGlass("bg_1", "u-bg", t0)
		must(t, "CreateBreakGlassEvent", s.CreateBreakGlassEvent(ctx, e))
		must(t, "EndBreakGlassEvent", s.EndBreakGlassEvent(ctx, "bg_1", "expired", at(time.Hour)))
		must(t, "ReviewBreakGlassEvent", s.ReviewBreakGlassEvent(ctx, "bg_1", "u-reviewer", "justified", at(2*time.Hour).In(elsewhere)))
		wantCode(t, "second review", s.ReviewBreakGlassEvent(ctx, "bg_1", "u-other", "again", at(3*time.Hour)), airlock.ECONFLICT)
		got, err := s.FindBreakGlassEventByID(ctx, "bg_1")
		must(t, "FindBreakGlassEventByID", err)
		want := *e
		want.EndedAt, want.EndReason = at(time.Hour), "expired"
		want.ReviewedAt, want.ReviewedBy, want.ReviewNotes = at(2*time.Hour), "u-reviewer", "justified"
		checkEqual(t, "reviewed event", &want, got)
		// An event already reviewed (merged reviewed) is ECONFLICT, not EINVALID,
		// even if it was never ended.
		odd := fullBreakGlass("bg_2", "u-bg", at(time.Hour))
		odd.EndedAt, odd.EndReason = time.Time{}, ""
		must(t, "CreateBreakGlassEvent reviewed, not ended", s.CreateBreakGlassEvent(ctx, odd))
		wantCode(t, "review of a reviewed event never ended",
			s.ReviewBreakGlassEvent(ctx, "bg_2", "u-other", "again", at(3*time.Hour)), airlock.ECONFLICT)
	})

	t.Run("fail-not-ended", func(t *testing.T) {
		s := open(t)
		e := liveBreakGlass("bg_1", "u-bg", t0)
		must(t, "CreateBreakGlassEvent", s.CreateBreakGlassEvent(ctx, e))
		wantCode(t, "review before the end", s.ReviewBreakGlassEvent(ctx, "bg_1", "u-reviewer", "early", at(time.Minute)),
			airlock.EINVALID)
		got, err := s.FindBreakGlassEventByID(ctx, "bg_1")
		must(t, "FindBreakGlassEventByID", err)
		checkEqual(t, "event after a refused review", e, got)
		// Still locked.
		wantCode(t, "use after a refused review", s.CreateBreakGlassEvent(ctx, liveBreakGlass("bg_2", "u-bg", at(time.Hour))),
			airlock.ECONFLICT)
	})

	t.Run("fail-missing", func(t *testing.T) {
		s := open(t)
		wantCode(t, "review of a missing event", s.ReviewBreakGlassEvent(ctx, "bg_none", "u-reviewer", "x", t0),
			airlock.ENOTFOUND)
	})

	t.Run("fail-bad-arguments", func(t *testing.T) {
		s := open(t)
		e := liveBreakGlass("bg_1", "u-bg", t0)
		must(t, "CreateBreakGlassEvent", s.CreateBreakGlassEvent(ctx, e))
		must(t, "EndBreakGlassEvent", s.EndBreakGlassEvent(ctx, "bg_1", "expired", at(time.Hour)))
		wantCode(t, "review at the zero time", s.ReviewBreakGlassEvent(ctx, "bg_1", "u-reviewer", "x", time.Time{}),
			airlock.EINVALID)
		wantCode(t, "review by nobody", s.ReviewBreakGlassEvent(ctx, "bg_1", "", "x", at(2*time.Hour)), airlock.EINVALID)
		got, err := s.FindBreakGlassEventByID(ctx, "bg_1")
		must(t, "FindBreakGlassEventByID", err)
		if got.Reviewed() || got.ReviewedBy != "" || got.ReviewNotes != "" {
			t.Errorf("refused reviews wrote %+v", got)
		}
	})

	t.Run("one-winner-concurrently", func(t *testing.T) {
		s := open(t)
		must(t, "CreateBreakGlassEvent", s.CreateBreakGlassEvent(ctx, liveBreakGlass("bg_1", "u-bg", t0)))
		must(t, "EndBreakGlassEvent", s.EndBreakGlassEvent(ctx, "bg_1", "expired", at(time.Hour)))
		const racers = 12
		wins := race(t, racers, func(i int) error {
			return s.ReviewBreakGlassEvent(ctx, "bg_1", fmt.Sprint("u-reviewer-", i), "notes", at(2*time.Hour))
		})
		if wins != 1 {
			t.Errorf("%d of %d concurrent reviews succeeded, want exactly 1", wins, racers)
		}
	})
}

func testBreakGlassList(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()
	s := open(t)
	add := func(e *airlock.BreakGlassEvent) {
		t.Helper()
		must(t, "CreateBreakGlassEvent "+e.ID, s.CreateBreakGlassEvent(ctx, e))
	}
	add(fullBreakGlass("bg_a", "u-bg1", at(time.Minute)))   // reviewed
	add(liveBreakGlass("bg_b", "u-bg2", at(time.Minute)))   // tie with bg_a
	add(liveBreakGlass("bg_c", "u-bg1", at(2*time.Minute))) // newest
	add(fullBreakGlass("bg_d", "u-bg1", at(0)))             // oldest, reviewed
	add(liveBreakGlass("bg_e", "u-bg3", at(time.Minute/2))) // unreviewed
	add(fullBreakGlass("bg_f", "u-bg3", at(time.Minute/4))) // reviewed
	for _, tc := range []struct {
		name string
		f    airlock.BreakGlassFilter
		want []string
	}{
		{"all", airlock.BreakGlassFilter{}, []string{"bg_c", "bg_b", "bg_a", "bg_e", "bg_f", "bg_d"}},
		{"negative-limit", airlock.BreakGlassFilter{Limit: -5}, []string{"bg_c", "bg_b", "bg_a", "bg_e", "bg_f", "bg_d"}},
		{"limit", airlock.BreakGlassFilter{Limit: 3}, []string{"bg_c", "bg_b", "bg_a"}},
		{"account", airlock.BreakGlassFilter{AccountID: "u-bg1"}, []string{"bg_c", "bg_a", "bg_d"}},
		{"unreviewed", airlock.BreakGlassFilter{Unreviewed: true}, []string{"bg_c", "bg_b", "bg_e"}},
		{"account-unreviewed", airlock.BreakGlassFilter{AccountID: "u-bg3", Unreviewed: true}, []string{"bg_e"}},
		{"unreviewed-limit", airlock.BreakGlassFilter{Unreviewed: true, Limit: 1}, []string{"bg_c"}},
		{"unknown-account", airlock.BreakGlassFilter{AccountID: "u-nobody"}, []string{}},
		{"unknown-account-unreviewed", airlock.BreakGlassFilter{AccountID: "u-nobody", Unreviewed: true}, []string{}},
	} {
		got, err := s.ListBreakGlassEvents(ctx, tc.f)
		must(t, "ListBreakGlassEvents "+tc.name, err)
		if got == nil {
			t.Errorf("%s: nil list, want empty non-nil", tc.name)
		}
		if ids := eventIDs(got); !slices.Equal(ids, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, ids, tc.want)
		}
	}

	t.Run("default-limit", func(t *testing.T) {
		s := open(t)
		for i := range 101 {
			e := fullBreakGlass(fmt.Sprintf("bg_%03d", i), "u-bg", at(time.Duration(i)*time.Second))
			must(t, "CreateBreakGlassEvent", s.CreateBreakGlassEvent(ctx, e))
		}
		got, err := s.ListBreakGlassEvents(ctx, airlock.BreakGlassFilter{})
		must(t, "ListBreakGlassEvents", err)
		if len(got) != 100 || got[0].ID != "bg_100" || got[99].ID != "bg_001" {
			t.Errorf("default page: %d events, want 100 from bg_100 to bg_001", len(got))
		}
	})
}
