-- 0002: optimistic concurrency for users and devices, and indexes for ending
-- a device's sessions and for sweeping expired sessions. Existing rows start
-- at version 0.

ALTER TABLE users ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

CREATE INDEX sessions_device ON sessions (device_id, ended_at);

-- sessions_expiry orders the sessions that have not ended by their effective
-- deadline: the earlier of the absolute deadline and the idle deadline
-- (last_seen in microseconds plus idle_timeout, nanoseconds, rounded up to a
-- whole microsecond). ListExpiredSessions uses exactly this expression.
CREATE INDEX sessions_expiry ON sessions (min(absolute_deadline, last_seen + (idle_timeout + 999) / 1000))
	WHERE ended_at = 0;
