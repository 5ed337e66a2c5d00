package postgres

import (
	"context"
	"time"

	"airlock"
)

// HitRateLimit adds one hit to key's window of length window that contains
// now, windows being aligned to multiples of window since the Unix epoch,
// and returns the window's count including this hit. The count is one
// INSERT … ON CONFLICT DO UPDATE, so hits from every replica add up.
// Counters of windows that ended by now, of any key, are deleted on the
// way, skipping rows another replica is deleting (so the sweeps never wait
// on, or deadlock with, each other). A window that is not positive is
// EINVALID.
func (s *Store) HitRateLimit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	if window <= 0 {
		return 0, airlock.Errorf(airlock.EINVALID, "postgres: rate-limit window must be positive")
	}
	ns, w := now.UnixNano(), int64(window)
	start := ns - ((ns%w)+w)%w // floor, also before 1970
	if _, err := s.pool.Exec(ctx, `DELETE FROM rate_limits WHERE ctid = ANY (ARRAY (
		SELECT ctid FROM rate_limits WHERE window_end <= $1 LIMIT 1000 FOR UPDATE SKIP LOCKED))`, ns); err != nil {
		return 0, dbError("expire rate limits", err)
	}
	var count int
	err := s.pool.QueryRow(ctx, `INSERT INTO rate_limits (key, window_ns, window_start, window_end, count)
		VALUES ($1, $2, $3, $4, 1)
		ON CONFLICT (key, window_ns, window_start) DO UPDATE SET count = rate_limits.count + 1
		RETURNING count`, key, w, start, start+w).Scan(&count)
	if err != nil {
		return 0, dbError("hit rate limit", err)
	}
	return count, nil
}
