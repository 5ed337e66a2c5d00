package storetest

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"airlock"
)

func fullCredential(id []byte, userID string, created time.Time) *airlock.Credential {
	return &airlock.Credential{
		ID:                 id,
		UserID:             userID,
		DeviceID:           "d-1",
		Name:               "YubiKey 5C",
		AAGUID:             "ee882879-721c-4913-9775-3dfcce97072a",
		AttestationFormat:  "packed",
		AttestationType:    "basic_full",
		AttestationTrusted: true,
		PublicKey:          bytesOf(0xa5, 77),
		Algorithm:          -7,
		Transports:         []string{"usb", "nfc"},
		BackupEligible:     true,
		BackupState:        true,
		SignCount:          math.MaxUint32,
		TierCap:            1,
		CreatedAt:          created,
		LastUsedAt:         created.Add(time.Minute).In(elsewhere),
		RevokedAt:          created.Add(time.Hour),
	}
}

func liveCredential(id []byte, userID string, created time.Time) *airlock.Credential {
	return &airlock.Credential{ID: id, UserID: userID, DeviceID: "d-1", PublicKey: []byte{1}, Algorithm: -8, CreatedAt: created}
}

func testCredentials(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("round-trip", func(t *testing.T) {
		s := open(t)
		c := fullCredential(bytesOf(0, 64), "u-1", t0)
		checkAllSet(t, c)
		must(t, "CreateCredential", s.CreateCredential(ctx, c))
		got, err := s.FindCredentialByID(ctx, c.ID)
		must(t, "FindCredentialByID", err)
		checkEqual(t, "credential", c, got)

		// The longest id WebAuthn allows, and nil transports.
		long := liveCredential(bytesOf(3, 1023), "u-1", t0)
		must(t, "CreateCredential", s.CreateCredential(ctx, long))
		got, err = s.FindCredentialByID(ctx, long.ID)
		must(t, "FindCredentialByID", err)
		checkEqual(t, "credential", long, got)
		if got.Transports == nil || len(got.Transports) != 0 {
			t.Errorf("Transports = %#v, want empty non-nil", got.Transports)
		}
		if got.IsRevoked() || !got.LastUsedAt.IsZero() {
			t.Errorf("fresh credential: revoked %v, last used %v", got.IsRevoked(), got.LastUsedAt)
		}
	})

	t.Run("fail-duplicate-id", func(t *testing.T) {
		s := open(t)
		id := bytesOf(1, 32)
		must(t, "CreateCredential", s.CreateCredential(ctx, liveCredential(id, "u-1", t0)))
		for _, tc := range []struct{ name, user string }{
			{"fail-same-user", "u-1"},
			{"fail-other-user", "u-2"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantCode(t, "CreateCredential", s.CreateCredential(ctx, liveCredential(id, tc.user, t0)), airlock.ECONFLICT)
			})
		}
		got, err := s.FindCredentialByID(ctx, id)
		must(t, "FindCredentialByID", err)
		if got.UserID != "u-1" {
			t.Errorf("credential now belongs to %q", got.UserID)
		}
		list, err := s.ListCredentialsByUser(ctx, "u-2")
		must(t, "ListCredentialsByUser", err)
		if len(list) != 0 {
			t.Errorf("u-2 has %d credentials after a refused duplicate", len(list))
		}
	})

	t.Run("fail-not-found", func(t *testing.T) {
		s := open(t)
		must(t, "CreateCredential", s.CreateCredential(ctx, liveCredential(bytesOf(1, 32), "u-1", t0)))
		missing := bytesOf(1, 31)
		_, err := s.FindCredentialByID(ctx, missing)
		wantCode(t, "FindCredentialByID", err, airlock.ENOTFOUND)
		wantCode(t, "UpdateCredentialUse", s.UpdateCredentialUse(ctx, missing, 0, 1, false, t0), airlock.ENOTFOUND)
		wantCode(t, "RevokeCredential", s.RevokeCredential(ctx, missing, t0), airlock.ENOTFOUND)
	})

	t.Run("list-by-user-oldest-first", func(t *testing.T) {
		s := open(t)
		c2 := liveCredential(bytesOf(2, 16), "u-1", at(2*time.Hour))
		c1 := liveCredential(bytesOf(1, 16), "u-1", at(time.Hour))
		c3 := liveCredential(bytesOf(3, 16), "u-1", at(3*time.Hour))
		other := liveCredential(bytesOf(4, 16), "u-2", at(0))
		for _, c := range []*airlock.Credential{c2, c1, c3, other} {
			must(t, "CreateCredential", s.CreateCredential(ctx, c))
		}
		must(t, "RevokeCredential", s.RevokeCredential(ctx, c1.ID, at(4*time.Hour)))
		list, err := s.ListCredentialsByUser(ctx, "u-1")
		must(t, "ListCredentialsByUser", err)
		c1.RevokedAt = at(4 * time.Hour)
		checkEqual(t, "ListCredentialsByUser", []*airlock.Credential{c1, c2, c3}, list)
		list, err = s.ListCredentialsByUser(ctx, "u-404")
		must(t, "ListCredentialsByUser (unknown user)", err)
		if len(list) != 0 {
			t.Errorf("unknown user has %d credentials", len(list))
		}
	})

	t.Run("update-use", func(t *testing.T) {
		s := open(t)
		c := fullCredential(bytesOf(1, 16), "u-1", t0)
		c.RevokedAt = time.Time{}
		other := liveCredential(bytesOf(2, 16), "u-1", t0)
		must(t, "CreateCredential", s.CreateCredential(ctx, c))
		must(t, "CreateCredential", s.CreateCredential(ctx, other))
		must(t, "UpdateCredentialUse", s.UpdateCredentialUse(ctx, c.ID, math.MaxUint32, 42, false, at(time.Hour)))
		want := *c
		want.SignCount, want.BackupState, want.LastUsedAt = 42, false, at(time.Hour)
		got, err := s.FindCredentialByID(ctx, c.ID)
		must(t, "FindCredentialByID", err)
		checkEqual(t, "used credential", &want, got)
		must(t, "UpdateCredentialUse", s.UpdateCredentialUse(ctx, c.ID, 42, math.MaxUint32, true, at(2*time.Hour)))
		got, err = s.FindCredentialByID(ctx, c.ID)
		must(t, "FindCredentialByID", err)
		if got.SignCount != math.MaxUint32 || !got.BackupState || !got.LastUsedAt.Equal(at(2*time.Hour)) {
			t.Errorf("second use: count %d, BS %v, last used %v", got.SignCount, got.BackupState, got.LastUsedAt)
		}
		gotOther, err := s.FindCredentialByID(ctx, other.ID)
		must(t, "FindCredentialByID", err)
		checkEqual(t, "untouched credential", other, gotOther)
	})

	t.Run("fail-update-use-stale-count", func(t *testing.T) {
		s := open(t)
		c := liveCredential(bytesOf(1, 16), "u-1", t0)
		c.SignCount = 7
		must(t, "CreateCredential", s.CreateCredential(ctx, c))
		for _, old := range []uint32{6, 8, 0} {
			wantCode(t, fmt.Sprintf("UpdateCredentialUse (old count %d, stored 7)", old),
				s.UpdateCredentialUse(ctx, c.ID, old, 9, true, at(time.Hour)), airlock.ECONFLICT)
		}
		got, err := s.FindCredentialByID(ctx, c.ID)
		must(t, "FindCredentialByID", err)
		checkEqual(t, "credential after refused updates", c, got)
	})

	t.Run("fail-update-use-revoked", func(t *testing.T) {
		s := open(t)
		c := liveCredential(bytesOf(1, 16), "u-1", t0)
		c.SignCount = 7
		must(t, "CreateCredential", s.CreateCredential(ctx, c))
		must(t, "RevokeCredential", s.RevokeCredential(ctx, c.ID, at(time.Minute)))
		wantCode(t, "UpdateCredentialUse (revoked)", s.UpdateCredentialUse(ctx, c.ID, 7, 8, true, at(time.Hour)), airlock.ECONFLICT)
		got, err := s.FindCredentialByID(ctx, c.ID)
		must(t, "FindCredentialByID", err)
		want := *c
		want.RevokedAt = at(time.Minute)
		checkEqual(t, "revoked credential after a refused update", &want, got)
	})

	t.Run("update-use-concurrently", func(t *testing.T) {
		s := open(t)
		c := liveCredential(bytesOf(1, 16), "u-1", t0)
		c.SignCount = 7
		must(t, "CreateCredential", s.CreateCredential(ctx, c))
		const racers = 12
		for round := range uint32(3) {
			old := 7 + round*100
			var wg sync.WaitGroup
			errs := make([]error, racers)
			for r := range racers {
				wg.Go(func() {
					errs[r] = s.UpdateCredentialUse(ctx, c.ID, old, old+100, false, at(time.Duration(r+1)*time.Second))
				})
			}
			wg.Wait()
			won := -1
			for r, err := range errs {
				switch airlock.ErrorCode(err) {
				case "":
					if won >= 0 {
						t.Errorf("round %d: racers %d and %d both updated from count %d", round, won, r, old)
					}
					won = r
				case airlock.ECONFLICT:
				default:
					t.Errorf("round %d: racer %d: %v, want nil or ECONFLICT", round, r, err)
				}
			}
			if won < 0 {
				t.Fatalf("round %d: nobody updated the credential", round)
			}
			got, err := s.FindCredentialByID(ctx, c.ID)
			must(t, "FindCredentialByID", err)
			if got.SignCount != old+100 || !got.LastUsedAt.Equal(at(time.Duration(won+1)*time.Second)) {
				t.Errorf("round %d: count %d last used %v; want %d and the winner's time", round, got.SignCount, got.LastUsedAt, old+100)
			}
		}
	})

	t.Run("revoke-keeps-first-time", func(t *testing.T) {
		s := open(t)
		c := liveCredential(bytesOf(1, 16), "u-1", t0)
		must(t, "CreateCredential", s.CreateCredential(ctx, c))
		must(t, "RevokeCredential", s.RevokeCredential(ctx, c.ID, at(time.Hour)))
		if err := s.RevokeCredential(ctx, c.ID, at(2*time.Hour)); err != nil {
			t.Errorf("second RevokeCredential: %v, want nil", err)
		}
		got, err := s.FindCredentialByID(ctx, c.ID)
		must(t, "FindCredentialByID", err)
		if !got.IsRevoked() || !got.RevokedAt.Equal(at(time.Hour)) {
			t.Errorf("RevokedAt = %v, want %v", got.RevokedAt, at(time.Hour))
		}
	})
}
