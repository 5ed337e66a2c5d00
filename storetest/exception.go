package storetest

import (
	"context"
	"testing"
	"time"

	"airlock"
)

func fullException(id, userID string, expires time.Time) *airlock.Exception {
	return &airlock.Exception{
		ID:        id,
		UserID:    userID,
		Action:    "deploy.prod",
		Resource:  "ci",
		Effect:    "skip_step_up",
		Owner:     "platform-team",
		Reason:    "release freeze ticket OPS-1234",
		CreatedBy: "u-admin",
		CreatedAt: expires.Add(-24 * time.Hour),
		ExpiresAt: expires.In(elsewhere),
	}
}

func exceptionIDs(es []*airlock.Exception) []string {
	ids := []string{}
	for _, e := range es {
		ids = append(ids, e.ID)
	}
	return ids
}

func testExceptions(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("round-trip", func(t *testing.T) {
		s := open(t)
		e := fullException("e-1", "u-1", at(time.Hour))
		checkAllSet(t, e)
		must(t, "CreateException", s.CreateException(ctx, e))
		got, err := s.FindExceptionByID(ctx, e.ID)
		must(t, "FindExceptionByID", err)
		checkEqual(t, "exception", e, got)
		wild := &airlock.Exception{ID: "e-any", Effect: "allow", Owner: "o", Reason: "r", CreatedAt: t0, ExpiresAt: at(time.Hour)}
		must(t, "CreateException", s.CreateException(ctx, wild))
		got, err = s.FindExceptionByID(ctx, wild.ID)
		must(t, "FindExceptionByID", err)
		checkEqual(t, "exception with empty scope", wild, got)
	})

	t.Run("fail-duplicate-and-missing", func(t *testing.T) {
		s := open(t)
		must(t, "CreateException", s.CreateException(ctx, fullException("e-1", "u-1", at(time.Hour))))
		dup := fullException("e-1", "u-2", at(48*time.Hour))
		wantCode(t, "CreateException (duplicate)", s.CreateException(ctx, dup), airlock.ECONFLICT)
		got, err := s.FindExceptionByID(ctx, "e-1")
		must(t, "FindExceptionByID", err)
		checkEqual(t, "original exception", fullException("e-1", "u-1", at(time.Hour)), got)
		_, err = s.FindExceptionByID(ctx, "e-404")
		wantCode(t, "FindExceptionByID (missing)", err, airlock.ENOTFOUND)
		wantCode(t, "DeleteException (missing)", s.DeleteException(ctx, "e-404"), airlock.ENOTFOUND)
	})

	t.Run("lists", func(t *testing.T) {
		s := open(t)
		for _, e := range []*airlock.Exception{
			fullException("e-c", "u-1", at(3*time.Hour)),
			fullException("e-a", "", at(time.Hour)),    // every user
			fullException("e-b", "u-2", at(time.Hour)), // same expiry as e-a: ID breaks the tie
			fullException("e-exact", "u-1", t0),        // expires exactly now: not live
			fullException("e-old", "u-1", at(-time.Hour)),
			fullException("e-old-any", "", at(-time.Minute)),
		} {
			must(t, "CreateException", s.CreateException(ctx, e))
		}
		all, err := s.ListExceptions(ctx)
		must(t, "ListExceptions", err)
		checkEqual(t, "ListExceptions order", []string{"e-old", "e-old-any", "e-exact", "e-a", "e-b", "e-c"}, exceptionIDs(all))

		live, err := s.ListLiveExceptions(ctx, "u-1", t0)
		must(t, "ListLiveExceptions", err)
		checkEqual(t, "live exceptions of u-1", []string{"e-a", "e-c"}, exceptionIDs(live))
		checkEqual(t, "live exception", fullException("e-c", "u-1", at(3*time.Hour)), live[len(live)-1])
		live, err = s.ListLiveExceptions(ctx, "u-2", t0.In(elsewhere))
		must(t, "ListLiveExceptions", err)
		checkEqual(t, "live exceptions of u-2", []string{"e-a", "e-b"}, exceptionIDs(live))
		live, err = s.ListLiveExceptions(ctx, "u-nobody", at(2*time.Hour))
		must(t, "ListLiveExceptions", err)
		checkEqual(t, "live exceptions of another user later", []string{}, exceptionIDs(live))
		if live == nil {
			t.Error("ListLiveExceptions returned nil, want an empty slice")
		}

		expired, err := s.ListExpiredExceptions(ctx, t0, 0)
		must(t, "ListExpiredExceptions", err)
		checkEqual(t, "expired exceptions", []string{"e-old", "e-old-any", "e-exact"}, exceptionIDs(expired))
		expired, err = s.ListExpiredExceptions(ctx, t0, 2)
		must(t, "ListExpiredExceptions (limit 2)", err)
		checkEqual(t, "expired exceptions, limit 2", []string{"e-old", "e-old-any"}, exceptionIDs(expired))

		must(t, "DeleteException", s.DeleteException(ctx, "e-old"))
		wantCode(t, "DeleteException twice", s.DeleteException(ctx, "e-old"), airlock.ENOTFOUND)
		all, err = s.ListExceptions(ctx)
		must(t, "ListExceptions", err)
		checkEqual(t, "after delete", []string{"e-old-any", "e-exact", "e-a", "e-b", "e-c"}, exceptionIDs(all))
	})

	t.Run("empty-store", func(t *testing.T) {
		s := open(t)
		all, err := s.ListExceptions(ctx)
		must(t, "ListExceptions", err)
		if all == nil || len(all) != 0 {
			t.Errorf("ListExceptions on an empty store = %#v, want empty non-nil", all)
		}
	})
}
