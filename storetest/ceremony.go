package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"airlock"
)

func fullCeremony(id string, expires time.Time) *airlock.Ceremony {
	return &airlock.Ceremony{
		ID:        id,
		Kind:      "enrol",
		UserID:    "u-1",
		Ref:       "t-1",
		Data:      append([]byte(`{"challenge":"`+id+`"}`), 0, 0xff),
		CreatedAt: expires.Add(-5 * time.Minute),
		ExpiresAt: expires.In(elsewhere),
	}
}

func testCeremonies(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("consume-once", func(t *testing.T) {
		s := open(t)
		c := fullCeremony("c-1", at(5*time.Minute))
		checkAllSet(t, c)
		other := fullCeremony("c-2", at(5*time.Minute))
		must(t, "CreateCeremony", s.CreateCeremony(ctx, c))
		must(t, "CreateCeremony", s.CreateCeremony(ctx, other))
		got, err := s.ConsumeCeremony(ctx, c.ID)
		must(t, "ConsumeCeremony", err)
		checkEqual(t, "consumed ceremony", c, got)
		_, err = s.ConsumeCeremony(ctx, c.ID)
		wantCode(t, "second ConsumeCeremony", err, airlock.ENOTFOUND)
		got, err = s.ConsumeCeremony(ctx, other.ID)
		must(t, "ConsumeCeremony (other)", err)
		checkEqual(t, "other ceremony", other, got)
	})

	t.Run("discoverable-login", func(t *testing.T) {
		s := open(t)
		c := &airlock.Ceremony{ID: "c-1", Kind: "login", Data: []byte("x"), CreatedAt: t0, ExpiresAt: at(5 * time.Minute)}
		must(t, "CreateCeremony", s.CreateCeremony(ctx, c))
		got, err := s.ConsumeCeremony(ctx, c.ID)
		must(t, "ConsumeCeremony", err)
		checkEqual(t, "ceremony", c, got)
	})

	t.Run("fail-duplicate-id", func(t *testing.T) {
		s := open(t)
		must(t, "CreateCeremony", s.CreateCeremony(ctx, fullCeremony("c-1", at(time.Minute))))
		dup := fullCeremony("c-1", at(time.Hour))
		dup.Data = []byte("attacker")
		wantCode(t, "CreateCeremony", s.CreateCeremony(ctx, dup), airlock.ECONFLICT)
		got, err := s.ConsumeCeremony(ctx, "c-1")
		must(t, "ConsumeCeremony", err)
		checkEqual(t, "original ceremony", fullCeremony("c-1", at(time.Minute)), got)
	})

	t.Run("fail-missing", func(t *testing.T) {
		s := open(t)
		_, err := s.ConsumeCeremony(ctx, "c-404")
		wantCode(t, "ConsumeCeremony", err, airlock.ENOTFOUND)
	})

	t.Run("expired-still-returned", func(t *testing.T) {
		s := open(t)
		c := fullCeremony("c-1", at(-time.Hour))
		must(t, "CreateCeremony", s.CreateCeremony(ctx, c))
		got, err := s.ConsumeCeremony(ctx, c.ID)
		must(t, "ConsumeCeremony", err)
		checkEqual(t, "expired ceremony", c, got)
	})

	t.Run("consume-concurrently", func(t *testing.T) {
		s := open(t)
		const ceremonies, racers = 5, 16
		for i := range ceremonies {
			must(t, "CreateCeremony", s.CreateCeremony(ctx, fullCeremony(fmt.Sprint("c-", i), at(time.Minute))))
		}
		for i := range ceremonies {
			id := fmt.Sprint("c-", i)
			var (
				wg   sync.WaitGroup
				mu   sync.Mutex
				wins int
			)
			start := make(chan struct{})
			for range racers {
				wg.Go(func() {
					<-start
					c, err := s.ConsumeCeremony(ctx, id)
					switch airlock.ErrorCode(err) {
					case "":
						if c == nil || c.ID != id {
							t.Errorf("%s: winner got %+v", id, c)
						}
						mu.Lock()
						wins++
						mu.Unlock()
					case airlock.ENOTFOUND:
					default:
						t.Errorf("%s: %v, want nil or ENOTFOUND", id, err)
					}
				})
			}
			close(start)
			wg.Wait()
			if wins != 1 {
				t.Errorf("%s: %d of %d concurrent consumers won, want exactly 1", id, wins, racers)
			}
		}
	})

	t.Run("delete-expired", func(t *testing.T) {
		s := open(t)
		before := fullCeremony("c-before", at(-time.Microsecond))
		exact := fullCeremony("c-exact", t0)
		after := fullCeremony("c-after", at(time.Microsecond))
		for _, c := range []*airlock.Ceremony{before, exact, after} {
			must(t, "CreateCeremony", s.CreateCeremony(ctx, c))
		}
		n, err := s.DeleteExpiredCeremonies(ctx, t0)
		must(t, "DeleteExpiredCeremonies", err)
		if n != 1 {
			t.Errorf("DeleteExpiredCeremonies = %d, want 1 (only the one that expired before now)", n)
		}
		_, err = s.ConsumeCeremony(ctx, before.ID)
		wantCode(t, "ConsumeCeremony (deleted)", err, airlock.ENOTFOUND)
		for _, c := range []*airlock.Ceremony{exact, after} {
			if _, err := s.ConsumeCeremony(ctx, c.ID); err != nil {
				t.Errorf("ConsumeCeremony(%s) after cleanup: %v", c.ID, err)
			}
		}
		n, err = s.DeleteExpiredCeremonies(ctx, at(time.Hour))
		must(t, "DeleteExpiredCeremonies", err)
		if n != 0 {
			t.Errorf("DeleteExpiredCeremonies on an empty store = %d", n)
		}
	})
}
