package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"airlock"
)

func fullSession(id, userID string, created time.Time) *airlock.Session {
	return &airlock.Session{
		ID:               id,
		TokenHash:        bytesOf(id[len(id)-1], 32),
		UserID:           userID,
		DeviceID:         "d-1",
		CredentialID:     bytesOf(9, 48),
		Tier:             1,
		AMR:              []string{"hwk", "user", "mfa"},
		ACR:              "phr",
		AuthTime:         created,
		LastSeen:         created.Add(time.Minute),
		LastUVAt:         created.Add(2 * time.Minute).In(elsewhere),
		AbsoluteDeadline: created.Add(24 * time.Hour),
		IdleTimeout:      time.Hour,
		IP:               "2001:db8::1",
		UserAgent:        "Mozilla/5.0 (X11; Linux x86_64)",
		KeyThumbprint:    "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
		CreatedAt:        created,
		EndedAt:          created.Add(3 * time.Minute),
		EndReason:        "logout",
	}
}

// liveSession returns a session that has not ended; its token hash is
// derived from id.
func liveSession(id, userID string, created time.Time) *airlock.Session {
	s := fullSession(id, userID, created)
	s.TokenHash = []byte("hash-of-" + id)
	s.EndedAt, s.EndReason = time.Time{}, ""
	return s
}

func testSessions(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("round-trip", func(t *testing.T) {
		s := open(t)
		sess := fullSession("s-1", "u-1", t0)
		checkAllSet(t, sess)
		must(t, "CreateSession", s.CreateSession(ctx, sess))
		byID, err := s.FindSessionByID(ctx, sess.ID)
		must(t, "FindSessionByID", err)
		checkEqual(t, "FindSessionByID", sess, byID)
		byHash, err := s.FindSessionByTokenHash(ctx, sess.TokenHash)
		must(t, "FindSessionByTokenHash", err)
		checkEqual(t, "FindSessionByTokenHash", sess, byHash)

		bare := &airlock.Session{ID: "s-2", TokenHash: []byte("h2"), UserID: "u-1", Tier: 2, IdleTimeout: 15 * time.Minute, CreatedAt: t0, LastSeen: t0, AbsoluteDeadline: at(time.Hour)}
		must(t, "CreateSession", s.CreateSession(ctx, bare))
		got, err := s.FindSessionByID(ctx, bare.ID)
		must(t, "FindSessionByID", err)
		checkEqual(t, "bare session", bare, got)
		if got.AMR == nil || len(got.AMR) != 0 {
			t.Errorf("AMR = %#v, want empty non-nil", got.AMR)
		}
		if !got.IsLive(t0) {
			t.Errorf("bare session is not live at t0: %+v", got)
		}
	})

	t.Run("fail-duplicates", func(t *testing.T) {
		s := open(t)
		must(t, "CreateSession", s.CreateSession(ctx, liveSession("s-1", "u-1", t0)))
		dupID := liveSession("s-1", "u-1", t0)
		dupID.TokenHash = []byte("another")
		wantCode(t, "CreateSession (same id)", s.CreateSession(ctx, dupID), airlock.ECONFLICT)
		dupHash := liveSession("s-2", "u-1", t0)
		dupHash.TokenHash = []byte("hash-of-s-1")
		wantCode(t, "CreateSession (same token hash)", s.CreateSession(ctx, dupHash), airlock.ECONFLICT)
		if _, err := s.FindSessionByID(ctx, "s-2"); airlock.ErrorCode(err) != airlock.ENOTFOUND {
			t.Errorf("refused session was stored: %v", err)
		}
	})

	t.Run("fail-not-found", func(t *testing.T) {
		s := open(t)
		must(t, "CreateSession", s.CreateSession(ctx, liveSession("s-1", "u-1", t0)))
		_, err := s.FindSessionByID(ctx, "s-404")
		wantCode(t, "FindSessionByID", err, airlock.ENOTFOUND)
		_, err = s.FindSessionByTokenHash(ctx, []byte("hash-of-s-404"))
		wantCode(t, "FindSessionByTokenHash", err, airlock.ENOTFOUND)
		wantCode(t, "TouchSession", s.TouchSession(ctx, "s-404", t0), airlock.ENOTFOUND)
		wantCode(t, "SetSessionUV", s.SetSessionUV(ctx, "s-404", t0), airlock.ENOTFOUND)
		wantCode(t, "EndSession", s.EndSession(ctx, "s-404", "logout", t0), airlock.ENOTFOUND)
	})

	t.Run("touch-and-uv", func(t *testing.T) {
		s := open(t)
		sess := liveSession("s-1", "u-1", t0)
		other := liveSession("s-2", "u-1", t0)
		must(t, "CreateSession", s.CreateSession(ctx, sess))
		must(t, "CreateSession", s.CreateSession(ctx, other))

		must(t, "TouchSession", s.TouchSession(ctx, sess.ID, at(10*time.Minute)))
		want := *sess
		want.LastSeen = at(10 * time.Minute)
		got, err := s.FindSessionByID(ctx, sess.ID)
		must(t, "FindSessionByID", err)
		checkEqual(t, "touched session", &want, got)

		must(t, "SetSessionUV", s.SetSessionUV(ctx, sess.ID, at(11*time.Minute)))
		want.LastUVAt = at(11 * time.Minute)
		got, err = s.FindSessionByID(ctx, sess.ID)
		must(t, "FindSessionByID", err)
		checkEqual(t, "user-verified session", &want, got)

		gotOther, err := s.FindSessionByID(ctx, other.ID)
		must(t, "FindSessionByID", err)
		checkEqual(t, "untouched session", other, gotOther)
	})

	t.Run("end-once", func(t *testing.T) {
		s := open(t)
		sess := liveSession("s-1", "u-1", t0)
		must(t, "CreateSession", s.CreateSession(ctx, sess))
		must(t, "EndSession", s.EndSession(ctx, sess.ID, "logout", at(time.Hour)))
		got, err := s.FindSessionByID(ctx, sess.ID)
		must(t, "FindSessionByID", err)
		if !got.EndedAt.Equal(at(time.Hour)) || got.EndReason != "logout" {
			t.Errorf("ended session: EndedAt %v reason %q", got.EndedAt, got.EndReason)
		}
		if got.IsLive(t0) {
			t.Errorf("ended session is live")
		}

		wantCode(t, "second EndSession", s.EndSession(ctx, sess.ID, "revoked", at(2*time.Hour)), airlock.ECONFLICT)
		wantCode(t, "TouchSession (ended)", s.TouchSession(ctx, sess.ID, at(3*time.Hour)), airlock.ECONFLICT)
		wantCode(t, "SetSessionUV (ended)", s.SetSessionUV(ctx, sess.ID, at(3*time.Hour)), airlock.ECONFLICT)
		after, err := s.FindSessionByID(ctx, sess.ID)
		must(t, "FindSessionByID", err)
		checkEqual(t, "session after refused changes", got, after)
	})

	t.Run("end-user-sessions", func(t *testing.T) {
		s := open(t)
		a := liveSession("s-a", "u-1", at(time.Minute))
		b := liveSession("s-b", "u-1", at(2*time.Minute))
		ended := liveSession("s-c", "u-1", at(3*time.Minute))
		other := liveSession("s-d", "u-2", at(4*time.Minute))
		for _, sess := range []*airlock.Session{a, b, ended, other} {
			must(t, "CreateSession", s.CreateSession(ctx, sess))
		}
		must(t, "EndSession", s.EndSession(ctx, ended.ID, "logout", at(5*time.Minute)))

		ids, err := s.EndUserSessions(ctx, "u-1", "credential-revoked", at(time.Hour))
		must(t, "EndUserSessions", err)
		slices.Sort(ids)
		checkEqual(t, "EndUserSessions ids", []string{"s-a", "s-b"}, ids)
		for _, id := range []string{"s-a", "s-b"} {
			got, err := s.FindSessionByID(ctx, id)
			must(t, "FindSessionByID", err)
			if !got.EndedAt.Equal(at(time.Hour)) || got.EndReason != "credential-revoked" {
				t.Errorf("%s: EndedAt %v reason %q", id, got.EndedAt, got.EndReason)
			}
		}
		got, err := s.FindSessionByID(ctx, ended.ID)
		must(t, "FindSessionByID", err)
		if !got.EndedAt.Equal(at(5*time.Minute)) || got.EndReason != "logout" {
			t.Errorf("already-ended session changed: EndedAt %v reason %q", got.EndedAt, got.EndReason)
		}
		got, err = s.FindSessionByID(ctx, other.ID)
		must(t, "FindSessionByID", err)
		if !got.EndedAt.IsZero() {
			t.Errorf("other user's session ended")
		}

		ids, err = s.EndUserSessions(ctx, "u-1", "again", at(2*time.Hour))
		must(t, "EndUserSessions (again)", err)
		if len(ids) != 0 {
			t.Errorf("second EndUserSessions ended %v", ids)
		}
		ids, err = s.EndUserSessions(ctx, "u-404", "x", at(2*time.Hour))
		must(t, "EndUserSessions (unknown user)", err)
		if len(ids) != 0 {
			t.Errorf("EndUserSessions of unknown user ended %v", ids)
		}
	})

	t.Run("end-device-sessions", func(t *testing.T) {
		s := open(t)
		a := liveSession("s-a", "u-1", at(time.Minute))
		b := liveSession("s-b", "u-2", at(2*time.Minute)) // another user, same device
		ended := liveSession("s-c", "u-1", at(3*time.Minute))
		other := liveSession("s-d", "u-1", at(4*time.Minute)) // same user, another device
		other.DeviceID = "d-2"
		for _, sess := range []*airlock.Session{a, b, ended, other} {
			must(t, "CreateSession", s.CreateSession(ctx, sess))
		}
		must(t, "EndSession", s.EndSession(ctx, ended.ID, "logout", at(5*time.Minute)))

		ids, err := s.EndDeviceSessions(ctx, "d-1", "device-revoked", at(time.Hour))
		must(t, "EndDeviceSessions", err)
		slices.Sort(ids)
		checkEqual(t, "EndDeviceSessions ids", []string{"s-a", "s-b"}, ids)
		for _, sess := range []*airlock.Session{a, b} {
			got, err := s.FindSessionByID(ctx, sess.ID)
			must(t, "FindSessionByID", err)
			want := *sess
			want.EndedAt, want.EndReason = at(time.Hour), "device-revoked"
			checkEqual(t, "ended session", &want, got)
		}
		got, err := s.FindSessionByID(ctx, ended.ID)
		must(t, "FindSessionByID", err)
		if !got.EndedAt.Equal(at(5*time.Minute)) || got.EndReason != "logout" {
			t.Errorf("already-ended session changed: EndedAt %v reason %q", got.EndedAt, got.EndReason)
		}
		got, err = s.FindSessionByID(ctx, other.ID)
		must(t, "FindSessionByID", err)
		checkEqual(t, "session on another device", other, got)

		ids, err = s.EndDeviceSessions(ctx, "d-1", "again", at(2*time.Hour))
		must(t, "EndDeviceSessions (again)", err)
		if len(ids) != 0 {
			t.Errorf("second EndDeviceSessions ended %v", ids)
		}
		ids, err = s.EndDeviceSessions(ctx, "d-404", "x", at(2*time.Hour))
		must(t, "EndDeviceSessions (unknown device)", err)
		if len(ids) != 0 {
			t.Errorf("EndDeviceSessions of unknown device ended %v", ids)
		}
	})

	t.Run("list-expired", func(t *testing.T) {
		s := open(t)
		now := at(10 * time.Hour)
		const us = time.Microsecond
		// mk returns a live session whose idle deadline is idle after
		// lastSeen and whose absolute deadline is abs.
		mk := func(id string, lastSeen time.Time, idle time.Duration, abs time.Time) *airlock.Session {
			sess := liveSession(id, "u-1", at(0))
			sess.LastSeen, sess.IdleTimeout, sess.AbsoluteDeadline = lastSeen, idle, abs
			return sess
		}
		far := now.Add(24 * time.Hour)
		sessions := []*airlock.Session{
			mk("abs-exact", now.Add(-time.Minute), time.Hour, now),                     // absolute deadline == now: expired
			mk("abs-after", now.Add(-time.Minute), time.Hour, now.Add(us)),             // 1µs short: live
			mk("idle-exact", now.Add(-30*time.Minute), 30*time.Minute, far),            // idle deadline == now: expired
			mk("idle-after", now.Add(-30*time.Minute+us), 30*time.Minute, far),         // 1µs short: live
			mk("abs-past", now.Add(-time.Minute), time.Hour, now.Add(-3*time.Hour)),    // recently seen, but past its absolute deadline
			mk("idle-past", now.Add(-3*time.Hour), time.Hour, far),                     // deadline now-2h
			mk("both-past", now.Add(-5*time.Hour), time.Hour, now.Add(-time.Hour)),     // idle deadline now-4h is the earlier
			mk("touched", now.Add(-3*time.Hour), time.Hour, far),                       // idle past until touched below
			mk("ended", now.Add(-9*time.Hour), time.Hour, now.Add(-8*time.Hour)),       // past both, but ended
			mk("live", now.Add(-time.Minute), time.Hour, far),                          // live
			mk("abs-past-idle-forever", now, 1000*time.Hour, now.Add(-90*time.Minute)), // deadline now-90m
		}
		for _, sess := range sessions {
			must(t, "CreateSession", s.CreateSession(ctx, sess))
		}
		must(t, "EndSession", s.EndSession(ctx, "ended", "logout", at(time.Hour)))
		must(t, "TouchSession", s.TouchSession(ctx, "touched", now.Add(-time.Minute)))

		ids := func(list []*airlock.Session) []string {
			out := []string{}
			for _, sess := range list {
				out = append(out, sess.ID)
			}
			return out
		}
		list, err := s.ListExpiredSessions(ctx, now.In(elsewhere), 0)
		must(t, "ListExpiredSessions", err)
		got := ids(list)
		// The last two share their deadline (now): either order.
		if len(got) == 6 {
			slices.Sort(got[4:])
		}
		checkEqual(t, "expired sessions, oldest deadline first",
			[]string{"both-past", "abs-past", "idle-past", "abs-past-idle-forever", "abs-exact", "idle-exact"}, got)
		for _, l := range list {
			if l.ID == "idle-past" {
				checkEqual(t, "listed session", sessions[5], l)
			}
		}

		list, err = s.ListExpiredSessions(ctx, now, 2)
		must(t, "ListExpiredSessions (limit 2)", err)
		checkEqual(t, "expired sessions, limit 2", []string{"both-past", "abs-past"}, ids(list))

		list, err = s.ListExpiredSessions(ctx, now.Add(-us), 100)
		must(t, "ListExpiredSessions (1µs before)", err)
		checkEqual(t, "expired sessions 1µs earlier", []string{"both-past", "abs-past", "idle-past", "abs-past-idle-forever"}, ids(list))

		list, err = s.ListExpiredSessions(ctx, now.Add(-6*time.Hour), 100)
		must(t, "ListExpiredSessions (long ago)", err)
		if len(list) != 0 {
			t.Errorf("6h earlier, expired sessions %v, want none", ids(list))
		}

		// Ending one removes it from the list.
		must(t, "EndSession", s.EndSession(ctx, "both-past", "expired", now))
		list, err = s.ListExpiredSessions(ctx, now, 1)
		must(t, "ListExpiredSessions", err)
		checkEqual(t, "expired sessions after ending one", []string{"abs-past"}, ids(list))
	})

	t.Run("list-expired-default-limit", func(t *testing.T) {
		s := open(t)
		const n = 101
		for i := range n {
			sess := liveSession(fmt.Sprintf("s-%03d", i), "u-1", at(0))
			sess.AbsoluteDeadline = at(time.Duration(i+1) * time.Second)
			must(t, "CreateSession", s.CreateSession(ctx, sess))
		}
		for _, limit := range []int{0, -1} {
			list, err := s.ListExpiredSessions(ctx, at(time.Hour), limit)
			must(t, "ListExpiredSessions", err)
			if len(list) != 100 {
				t.Errorf("limit %d: %d sessions, want the default 100", limit, len(list))
			} else if list[0].ID != "s-000" || list[99].ID != "s-099" {
				t.Errorf("limit %d: first %s, last %s, want s-000 … s-099", limit, list[0].ID, list[99].ID)
			}
		}
		list, err := s.ListExpiredSessions(ctx, at(time.Hour), n+10)
		must(t, "ListExpiredSessions", err)
		if len(list) != n {
			t.Errorf("limit %d: %d sessions, want %d", n+10, len(list), n)
		}
	})

	t.Run("list-live-newest-first", func(t *testing.T) {
		s := open(t)
		s1 := liveSession("s-1", "u-1", at(time.Minute))
		s3 := liveSession("s-3", "u-1", at(3*time.Minute))
		s2 := liveSession("s-2", "u-1", at(2*time.Minute))
		ended := liveSession("s-4", "u-1", at(4*time.Minute))
		other := liveSession("s-5", "u-2", at(5*time.Minute))
		// A session past its deadlines but not ended is still listed.
		stale := liveSession("s-0", "u-1", at(-48*time.Hour))
		for _, sess := range []*airlock.Session{s1, s3, s2, ended, other, stale} {
			must(t, "CreateSession", s.CreateSession(ctx, sess))
		}
		must(t, "EndSession", s.EndSession(ctx, ended.ID, "logout", at(time.Hour)))
		list, err := s.ListSessionsByUser(ctx, "u-1")
		must(t, "ListSessionsByUser", err)
		checkEqual(t, "ListSessionsByUser", []*airlock.Session{s3, s2, s1, stale}, list)
		list, err = s.ListSessionsByUser(ctx, "u-404")
		must(t, "ListSessionsByUser (unknown user)", err)
		if len(list) != 0 {
			t.Errorf("unknown user has %d sessions", len(list))
		}
	})
}
