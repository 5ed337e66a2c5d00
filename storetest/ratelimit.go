package storetest

import (
	"context"
	"testing"
	"time"

	"airlock"
)

func testRateLimit(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()
	const window = time.Minute
	// base is the start of a window: a multiple of window since the epoch.
	base := t0.Truncate(window)

	hit := func(t *testing.T, s airlock.Store, key string, now time.Time, want int) {
		t.Helper()
		got, err := s.HitRateLimit(ctx, key, window, now)
		must(t, "HitRateLimit", err)
		if got != want {
			t.Errorf("HitRateLimit(%q, %s) = %d, want %d", key, now.Sub(base), got, want)
		}
	}

	t.Run("counts-within-window", func(t *testing.T) {
		s := open(t)
		hit(t, s, "login:alice", base, 1)
		hit(t, s, "login:alice", base.Add(time.Second), 2)
		hit(t, s, "login:alice", base.Add(30*time.Second).In(elsewhere), 3)
		hit(t, s, "login:alice", base.Add(window-time.Microsecond), 4)
	})

	t.Run("new-window-resets", func(t *testing.T) {
		s := open(t)
		hit(t, s, "k", base.Add(50*time.Second), 1)
		hit(t, s, "k", base.Add(59*time.Second), 2)
		// 20 s after the first hit, but in the next aligned window.
		hit(t, s, "k", base.Add(window), 1)
		hit(t, s, "k", base.Add(window+time.Second), 2)
		hit(t, s, "k", base.Add(5*window+time.Second), 1)
	})

	t.Run("keys-independent", func(t *testing.T) {
		s := open(t)
		hit(t, s, "login:alice", base, 1)
		hit(t, s, "login:alice", base, 2)
		hit(t, s, "login:bob", base, 1)
		hit(t, s, "login:alice", base, 3)
		hit(t, s, "ip:192.0.2.1", base, 1)
		hit(t, s, "login:bob", base, 2)
	})
}
