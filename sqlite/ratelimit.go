package sqlite

import (
	"context"
	"database/sql"
	"time"

	"airlock"
)

// HitRateLimit adds one hit to key's window of length window that contains
// now, windows being aligned to multiples of window since the Unix epoch,
// and returns the window's count including this hit. Counters of windows
// that ended by now, of any key, are deleted on the way. A window that is
// not positive is EINVALID.
func (s *Store) HitRateLimit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	if window <= 0 {
		return 0, airlock.Errorf(airlock.EINVALID, "sqlite: rate-limit window must be positive")
	}
	ns, w := now.UnixNano(), int64(window)
	start := ns - ((ns%w)+w)%w // floor, also before 1970
	var count int
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM rate_limits WHERE window_end <= ?`, ns); err != nil {
			return dbError("expire rate limits", err)
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO rate_limits (key, window_ns, window_start, window_end, count)
			VALUES (?, ?, ?, ?, 1)
			ON CONFLICT (key, window_ns, window_start) DO UPDATE SET count = count + 1
			RETURNING count`, key, w, start, start+w).Scan(&count)
		return dbError("hit rate limit", err)
	})
	if err != nil {
		return 0, err
	}
	return count, nil
}
