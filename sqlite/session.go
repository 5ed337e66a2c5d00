package sqlite

import (
	"context"
	"database/sql"
	"sort"
	"time"

	"airlock"
)

const sessionColumns = `id, token_hash, user_id, device_id, credential_id, tier, amr, acr, auth_time,
	last_seen, last_uv_at, absolute_deadline, idle_timeout, ip, user_agent, created_at, ended_at, end_reason, key_thumbprint`

// CreateSession inserts s. A session with the same ID or TokenHash is
// ECONFLICT.
func (s *Store) CreateSession(ctx context.Context, sess *airlock.Session) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO sessions (`+sessionColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sess.ID, blob(sess.TokenHash), sess.UserID, sess.DeviceID, blob(sess.CredentialID), int64(sess.Tier),
		encodeStrings(sess.AMR), sess.ACR, micros(sess.AuthTime), micros(sess.LastSeen), micros(sess.LastUVAt),
		micros(sess.AbsoluteDeadline), int64(sess.IdleTimeout), sess.IP, sess.UserAgent, micros(sess.CreatedAt),
		micros(sess.EndedAt), sess.EndReason, sess.KeyThumbprint)
	return dbError("create session", err)
}

// FindSessionByID returns the session with id, ended or not, or ENOTFOUND.
func (s *Store) FindSessionByID(ctx context.Context, id string) (*airlock.Session, error) {
	return s.findSession(ctx, `id = ?`, id)
}

// FindSessionByTokenHash returns the session whose TokenHash is hash, ended
// or not, or ENOTFOUND.
func (s *Store) FindSessionByTokenHash(ctx context.Context, hash []byte) (*airlock.Session, error) {
	if len(hash) == 0 {
		return nil, notFound("session")
	}
	return s.findSession(ctx, `token_hash = ?`, hash)
}

func (s *Store) findSession(ctx context.Context, where string, arg any) (*airlock.Session, error) {
	sess, err := scanSession(s.r.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE `+where, arg))
	if err == sql.ErrNoRows {
		return nil, notFound("session")
	} else if err != nil {
		return nil, dbError("find session", err)
	}
	return sess, nil
}

// TouchSession sets LastSeen of a session that has not ended. It does not
// check the deadlines. A missing session is ENOTFOUND, an ended one
// ECONFLICT.
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	return s.updateLiveSession(ctx, id, `last_seen`, micros(at))
}

// SetSessionUV sets LastUVAt of a session that has not ended. A missing
// session is ENOTFOUND, an ended one ECONFLICT.
func (s *Store) SetSessionUV(ctx context.Context, id string, at time.Time) error {
	return s.updateLiveSession(ctx, id, `last_uv_at`, micros(at))
}

// updateLiveSession sets column (a constant) of the unended session id.
func (s *Store) updateLiveSession(ctx context.Context, id, column string, value any) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET `+column+` = ? WHERE id = ? AND ended_at = 0`, value, id)
		if err != nil {
			return dbError("update session", err)
		}
		if n, err := rowsAffected(res, "update session"); err != nil {
			return err
		} else if n == 1 {
			return nil
		}
		return sessionMissingOrEnded(ctx, tx, id)
	})
}

// sessionMissingOrEnded returns ENOTFOUND if session id does not exist and
// ECONFLICT if it does (the caller found it ended).
func sessionMissingOrEnded(ctx context.Context, tx *sql.Tx, id string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sessions WHERE id = ?`, id).Scan(&n); err != nil {
		return dbError("find session", err)
	}
	if n == 0 {
		return notFound("session")
	}
	return airlock.Errorf(airlock.ECONFLICT, "sqlite: session already ended")
}

// EndSession ends session id at at for reason. Ending an ended session is
// ECONFLICT and keeps the first end; a missing one is ENOTFOUND; a zero at
// is EINVALID (it would mean "live").
func (s *Store) EndSession(ctx context.Context, id, reason string, at time.Time) error {
	if at.IsZero() {
		return airlock.Errorf(airlock.EINVALID, "sqlite: zero session end time")
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at = 0`,
			micros(at), reason, id)
		if err != nil {
			return dbError("end session", err)
		}
		if n, err := rowsAffected(res, "end session"); err != nil {
			return err
		} else if n == 1 {
			return nil
		}
		return sessionMissingOrEnded(ctx, tx, id)
	})
}

// EndUserSessions ends every session of the user that has not ended and
// returns their IDs in ascending order (empty, not nil, when there were
// none). Sessions already ended keep their end time and reason.
func (s *Store) EndUserSessions(ctx context.Context, userID, reason string, at time.Time) ([]string, error) {
	return s.endSessionsWhere(ctx, `user_id`, userID, reason, at)
}

// EndDeviceSessions ends every session on the device that has not ended and
// returns their IDs in ascending order (empty, not nil, when there were
// none). Sessions already ended keep their end time and reason.
func (s *Store) EndDeviceSessions(ctx context.Context, deviceID, reason string, at time.Time) ([]string, error) {
	return s.endSessionsWhere(ctx, `device_id`, deviceID, reason, at)
}

// endSessionsWhere ends the unended sessions whose column (a constant)
// equals value, in one transaction, and returns their sorted IDs. A zero at
// is EINVALID (it would mean "live").
func (s *Store) endSessionsWhere(ctx context.Context, column, value, reason string, at time.Time) ([]string, error) {
	if at.IsZero() {
		return nil, airlock.Errorf(airlock.EINVALID, "sqlite: zero session end time")
	}
	ids := []string{}
	err := s.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE sessions SET ended_at = ?, end_reason = ?
			WHERE `+column+` = ? AND ended_at = 0 RETURNING id`, micros(at), reason, value)
		if err != nil {
			return dbError("end sessions", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return dbError("end sessions", err)
			}
			ids = append(ids, id)
		}
		return dbError("end sessions", rows.Err())
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(ids)
	return ids, nil
}

// DefaultExpiredSessionsLimit is how many sessions ListExpiredSessions
// returns when its limit is 0 or negative.
const DefaultExpiredSessionsLimit = 100

// sessionDeadline is a session's effective deadline in unix microseconds: the
// earlier of its absolute deadline and its idle deadline, the idle timeout
// (nanoseconds) rounded up to a whole microsecond so that a session is never
// reported expired before it is. The sessions_expiry index (migration 0002)
// is on exactly this expression; with rowid (which every index entry ends
// with) as the tie-break, ListExpiredSessions reads the oldest deadlines
// first without sorting.
const sessionDeadline = `min(absolute_deadline, last_seen + (idle_timeout + 999) / 1000)`

// expiredSessionsQuery selects the expired sessions; its arguments are now
// (unix microseconds) and the limit.
const expiredSessionsQuery = `SELECT ` + sessionColumns + ` FROM sessions
	WHERE ended_at = 0 AND ` + sessionDeadline + ` <= ? ORDER BY ` + sessionDeadline + `, rowid LIMIT ?`

// ListExpiredSessions returns at most limit (DefaultExpiredSessionsLimit
// when limit ≤ 0) sessions that have not ended but whose absolute or idle
// deadline is not after now, ordered by the earlier of their two deadlines,
// then by insertion order. now is truncated to the microsecond.
func (s *Store) ListExpiredSessions(ctx context.Context, now time.Time, limit int) ([]*airlock.Session, error) {
	if limit <= 0 {
		limit = DefaultExpiredSessionsLimit
	}
	rows, err := s.r.QueryContext(ctx, expiredSessionsQuery, now.UnixMicro(), limit)
	if err != nil {
		return nil, dbError("list expired sessions", err)
	}
	defer rows.Close()
	sessions := []*airlock.Session{}
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, dbError("list expired sessions", err)
		}
		sessions = append(sessions, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list expired sessions", err)
	}
	return sessions, nil
}

// ListSessionsByUser returns the user's sessions that have not ended (their
// deadlines are not checked), newest first by CreatedAt.
func (s *Store) ListSessionsByUser(ctx context.Context, userID string) ([]*airlock.Session, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = ? AND ended_at = 0 ORDER BY created_at DESC, rowid DESC`, userID)
	if err != nil {
		return nil, dbError("list sessions", err)
	}
	defer rows.Close()
	sessions := []*airlock.Session{}
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, dbError("list sessions", err)
		}
		sessions = append(sessions, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list sessions", err)
	}
	return sessions, nil
}

func scanSession(row scanner) (*airlock.Session, error) {
	var (
		s                               airlock.Session
		amr                             string
		tier, idle                      int64
		authTime, lastSeen, lastUV, abs int64
		created, ended                  int64
	)
	if err := row.Scan(&s.ID, &s.TokenHash, &s.UserID, &s.DeviceID, &s.CredentialID, &tier, &amr, &s.ACR,
		&authTime, &lastSeen, &lastUV, &abs, &idle, &s.IP, &s.UserAgent, &created, &ended, &s.EndReason, &s.KeyThumbprint); err != nil {
		return nil, err
	}
	s.TokenHash = nonEmpty(s.TokenHash)
	s.CredentialID = nonEmpty(s.CredentialID)
	s.Tier = airlock.Tier(tier)
	s.IdleTimeout = time.Duration(idle)
	s.AuthTime = fromMicros(authTime)
	s.LastSeen = fromMicros(lastSeen)
	s.LastUVAt = fromMicros(lastUV)
	s.AbsoluteDeadline = fromMicros(abs)
	s.CreatedAt = fromMicros(created)
	s.EndedAt = fromMicros(ended)
	var err error
	if s.AMR, err = decodeStrings(amr); err != nil {
		return nil, err
	}
	return &s, nil
}
