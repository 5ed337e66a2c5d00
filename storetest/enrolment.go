package storetest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"airlock"
)

func fullToken(id string, created time.Time) *airlock.EnrolmentToken {
	return &airlock.EnrolmentToken{
		Hash:      []byte("sha256-of-" + id),
		ID:        id,
		UserID:    "u-1",
		DeviceID:  "d-1",
		Purpose:   airlock.PurposeEnrol,
		CreatedBy: "u-admin",
		CreatedAt: created,
		ExpiresAt: created.Add(15 * time.Minute).In(elsewhere),
		UsedAt:    created.Add(time.Minute),
	}
}

func unusedToken(id string, created time.Time) *airlock.EnrolmentToken {
	tok := fullToken(id, created)
	tok.UsedAt = time.Time{}
	return tok
}

func testEnrolmentTokens(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("round-trip", func(t *testing.T) {
		s := open(t)
		tok := fullToken("t-1", t0)
		checkAllSet(t, tok)
		must(t, "CreateEnrolmentToken", s.CreateEnrolmentToken(ctx, tok))
		byID, err := s.FindEnrolmentTokenByID(ctx, tok.ID)
		must(t, "FindEnrolmentTokenByID", err)
		checkEqual(t, "FindEnrolmentTokenByID", tok, byID)
		byHash, err := s.FindEnrolmentTokenByHash(ctx, tok.Hash)
		must(t, "FindEnrolmentTokenByHash", err)
		checkEqual(t, "FindEnrolmentTokenByHash", tok, byHash)
	})

	t.Run("fail-duplicates", func(t *testing.T) {
		s := open(t)
		must(t, "CreateEnrolmentToken", s.CreateEnrolmentToken(ctx, unusedToken("t-1", t0)))
		dupID := unusedToken("t-1", t0)
		dupID.Hash = []byte("other")
		wantCode(t, "CreateEnrolmentToken (same id)", s.CreateEnrolmentToken(ctx, dupID), airlock.ECONFLICT)
		dupHash := unusedToken("t-2", t0)
		dupHash.Hash = []byte("sha256-of-t-1")
		wantCode(t, "CreateEnrolmentToken (same hash)", s.CreateEnrolmentToken(ctx, dupHash), airlock.ECONFLICT)
		list, err := s.ListEnrolmentTokens(ctx)
		must(t, "ListEnrolmentTokens", err)
		if len(list) != 1 {
			t.Errorf("%d tokens after refused duplicates, want 1", len(list))
		}
	})

	t.Run("fail-not-found", func(t *testing.T) {
		s := open(t)
		must(t, "CreateEnrolmentToken", s.CreateEnrolmentToken(ctx, unusedToken("t-1", t0)))
		_, err := s.FindEnrolmentTokenByID(ctx, "t-404")
		wantCode(t, "FindEnrolmentTokenByID", err, airlock.ENOTFOUND)
		_, err = s.FindEnrolmentTokenByHash(ctx, []byte("sha256-of-t-404"))
		wantCode(t, "FindEnrolmentTokenByHash", err, airlock.ENOTFOUND)
		wantCode(t, "UseEnrolmentToken", s.UseEnrolmentToken(ctx, "t-404", t0), airlock.ENOTFOUND)
	})

	t.Run("use-once", func(t *testing.T) {
		s := open(t)
		tok := unusedToken("t-1", t0)
		other := unusedToken("t-2", t0)
		must(t, "CreateEnrolmentToken", s.CreateEnrolmentToken(ctx, tok))
		must(t, "CreateEnrolmentToken", s.CreateEnrolmentToken(ctx, other))
		must(t, "UseEnrolmentToken", s.UseEnrolmentToken(ctx, tok.ID, at(time.Minute)))
		want := *tok
		want.UsedAt = at(time.Minute)
		got, err := s.FindEnrolmentTokenByID(ctx, tok.ID)
		must(t, "FindEnrolmentTokenByID", err)
		checkEqual(t, "used token", &want, got)

		wantCode(t, "second UseEnrolmentToken", s.UseEnrolmentToken(ctx, tok.ID, at(2*time.Minute)), airlock.ECONFLICT)
		got, err = s.FindEnrolmentTokenByID(ctx, tok.ID)
		must(t, "FindEnrolmentTokenByID", err)
		if !got.UsedAt.Equal(at(time.Minute)) {
			t.Errorf("refused reuse changed UsedAt to %v", got.UsedAt)
		}
		got, err = s.FindEnrolmentTokenByID(ctx, other.ID)
		must(t, "FindEnrolmentTokenByID", err)
		if !got.UsedAt.IsZero() {
			t.Errorf("using one token used another")
		}
	})

	t.Run("use-concurrently", func(t *testing.T) {
		s := open(t)
		const tokens, racers = 4, 12
		for i := range tokens {
			must(t, "CreateEnrolmentToken", s.CreateEnrolmentToken(ctx, unusedToken(fmt.Sprint("t-", i), t0)))
		}
		for i := range tokens {
			id := fmt.Sprint("t-", i)
			var wg sync.WaitGroup
			errs := make([]error, racers)
			for r := range racers {
				wg.Go(func() { errs[r] = s.UseEnrolmentToken(ctx, id, at(time.Duration(r+1)*time.Second)) })
			}
			wg.Wait()
			won := -1
			for r, err := range errs {
				switch airlock.ErrorCode(err) {
				case "":
					if won >= 0 {
						t.Errorf("%s: racers %d and %d both used the token", id, won, r)
					}
					won = r
				case airlock.ECONFLICT:
				default:
					t.Errorf("%s: racer %d: %v, want nil or ECONFLICT", id, r, err)
				}
			}
			if won < 0 {
				t.Fatalf("%s: nobody used the token", id)
			}
			got, err := s.FindEnrolmentTokenByID(ctx, id)
			must(t, "FindEnrolmentTokenByID", err)
			if !got.UsedAt.Equal(at(time.Duration(won+1) * time.Second)) {
				t.Errorf("%s: UsedAt %v is not the winner's time", id, got.UsedAt)
			}
		}
	})

	t.Run("enrol-credential", func(t *testing.T) {
		s := open(t)
		tok := unusedToken("t-1", t0)
		must(t, "CreateEnrolmentToken", s.CreateEnrolmentToken(ctx, tok))
		c := fullCredential(bytesOf(1, 32), "u-1", t0)
		c.RevokedAt = time.Time{}
		must(t, "EnrolCredential", s.EnrolCredential(ctx, tok.ID, c, at(time.Minute)))
		got, err := s.FindCredentialByID(ctx, c.ID)
		must(t, "FindCredentialByID", err)
		checkEqual(t, "enrolled credential", c, got)
		gotTok, err := s.FindEnrolmentTokenByID(ctx, tok.ID)
		must(t, "FindEnrolmentTokenByID", err)
		if !gotTok.UsedAt.Equal(at(time.Minute)) {
			t.Errorf("token UsedAt = %v, want %v", gotTok.UsedAt, at(time.Minute))
		}
	})

	t.Run("fail-enrol-credential-token-used", func(t *testing.T) {
		s := open(t)
		tok := unusedToken("t-1", t0)
		must(t, "CreateEnrolmentToken", s.CreateEnrolmentToken(ctx, tok))
		must(t, "UseEnrolmentToken", s.UseEnrolmentToken(ctx, tok.ID, at(time.Minute)))
		c := liveCredential(bytesOf(1, 32), "u-1", t0)
		wantCode(t, "EnrolCredential (used token)", s.EnrolCredential(ctx, tok.ID, c, at(2*time.Minute)), airlock.ECONFLICT)
		_, err := s.FindCredentialByID(ctx, c.ID)
		wantCode(t, "FindCredentialByID after a refused enrolment", err, airlock.ENOTFOUND)
		got, err := s.FindEnrolmentTokenByID(ctx, tok.ID)
		must(t, "FindEnrolmentTokenByID", err)
		if !got.UsedAt.Equal(at(time.Minute)) {
			t.Errorf("refused enrolment changed UsedAt to %v", got.UsedAt)
		}
		wantCode(t, "EnrolCredential (missing token)", s.EnrolCredential(ctx, "t-404", liveCredential(bytesOf(2, 32), "u-1", t0), at(time.Minute)), airlock.ENOTFOUND)
		_, err = s.FindCredentialByID(ctx, bytesOf(2, 32))
		wantCode(t, "FindCredentialByID after a missing token", err, airlock.ENOTFOUND)
	})

	t.Run("fail-enrol-credential-duplicate-id-keeps-token-unused", func(t *testing.T) {
		s := open(t)
		first := liveCredential(bytesOf(1, 32), "u-1", t0)
		must(t, "CreateCredential", s.CreateCredential(ctx, first))
		tok := unusedToken("t-1", t0)
		must(t, "CreateEnrolmentToken", s.CreateEnrolmentToken(ctx, tok))
		dup := liveCredential(bytesOf(1, 32), "u-2", at(time.Hour))
		wantCode(t, "EnrolCredential (duplicate id)", s.EnrolCredential(ctx, tok.ID, dup, at(time.Minute)), airlock.ECONFLICT)
		got, err := s.FindEnrolmentTokenByID(ctx, tok.ID)
		must(t, "FindEnrolmentTokenByID", err)
		if !got.UsedAt.IsZero() {
			t.Errorf("token used (at %v) by an enrolment whose credential was refused", got.UsedAt)
		}
		gotCred, err := s.FindCredentialByID(ctx, first.ID)
		must(t, "FindCredentialByID", err)
		checkEqual(t, "existing credential", first, gotCred)
	})

	t.Run("enrol-credential-concurrently", func(t *testing.T) {
		s := open(t)
		tok := unusedToken("t-1", t0)
		must(t, "CreateEnrolmentToken", s.CreateEnrolmentToken(ctx, tok))
		const racers = 12
		var wg sync.WaitGroup
		errs := make([]error, racers)
		for r := range racers {
			wg.Go(func() {
				errs[r] = s.EnrolCredential(ctx, tok.ID, liveCredential(bytesOf(byte(r), 32), "u-1", t0), at(time.Duration(r+1)*time.Second))
			})
		}
		wg.Wait()
		won := -1
		for r, err := range errs {
			switch airlock.ErrorCode(err) {
			case "":
				if won >= 0 {
					t.Errorf("racers %d and %d both enrolled with one token", won, r)
				}
				won = r
			case airlock.ECONFLICT:
			default:
				t.Errorf("racer %d: %v, want nil or ECONFLICT", r, err)
			}
		}
		if won < 0 {
			t.Fatal("nobody enrolled")
		}
		list, err := s.ListCredentialsByUser(ctx, "u-1")
		must(t, "ListCredentialsByUser", err)
		if len(list) != 1 || !bytes.Equal(list[0].ID, bytesOf(byte(won), 32)) {
			t.Errorf("%d credentials stored, want only the winner's", len(list))
		}
		got, err := s.FindEnrolmentTokenByID(ctx, tok.ID)
		must(t, "FindEnrolmentTokenByID", err)
		if !got.UsedAt.Equal(at(time.Duration(won+1) * time.Second)) {
			t.Errorf("UsedAt %v is not the winner's time", got.UsedAt)
		}
	})

	t.Run("list-newest-first", func(t *testing.T) {
		s := open(t)
		t1, t2, t3 := fullToken("t-1", at(time.Minute)), unusedToken("t-2", at(3*time.Minute)), unusedToken("t-3", at(2*time.Minute))
		for _, tok := range []*airlock.EnrolmentToken{t1, t2, t3} {
			must(t, "CreateEnrolmentToken", s.CreateEnrolmentToken(ctx, tok))
		}
		list, err := s.ListEnrolmentTokens(ctx)
		must(t, "ListEnrolmentTokens", err)
		checkEqual(t, "ListEnrolmentTokens", []*airlock.EnrolmentToken{t2, t3, t1}, list)
	})
}
