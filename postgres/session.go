package postgres

import (
	"context"
	"errors"
	"sort"
	"time"

	"airlock"

	"github.com/jackc/pgx/v5"
)

const sessionColumns = `id, token_hash, user_id, device_id, credential_id, tier, amr, acr, auth_time,
	last_seen, last_uv_at, absolute_deadline, idle_timeout, ip, user_agent, created_at, ended_at, end_reason, key_thumbprint`

// sessionExpiry is the SQL for a session's effective deadline, given SQL
// expressions for its absolute deadline, last-seen time and idle timeout
// (nanoseconds): the earlier of the absolute deadline and the idle
// deadline, the idle timeout rounded up to a whole microsecond so that a
// session is never reported expired before it is, and a zero (NULL) time
// counting as long past. Every statement that sets last_seen,
// absolute_deadline or idle_timeout sets expires_at with it.
func sessionExpiry(abs, seen, idle string) string {
	return `least(coalesce(` + abs + `, '-infinity'::timestamptz),
		coalesce(` + seen + `, '-infinity'::timestamptz) + ((` + idle + ` + 999) / 1000) * interval '1 microsecond')`
}

// CreateSession inserts s. A session with the same ID or TokenHash is
// ECONFLICT.
func (s *Store) CreateSession(ctx context.Context, sess *airlock.Session) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, `+
		sessionExpiry("$12::timestamptz", "$10::timestamptz", "$13::bigint")+`)`,
		sess.ID, blob(sess.TokenHash), sess.UserID, sess.DeviceID, blob(sess.CredentialID), int64(sess.Tier),
		strs(sess.AMR), sess.ACR, ts(sess.AuthTime), ts(sess.LastSeen), ts(sess.LastUVAt),
		ts(sess.AbsoluteDeadline), int64(sess.IdleTimeout), sess.IP, sess.UserAgent, ts(sess.CreatedAt),
		ts(sess.EndedAt), sess.EndReason, sess.KeyThumbprint)
	return dbError("create session", err)
}

// FindSessionByID returns the session with id, ended or not, or ENOTFOUND.
func (s *Store) FindSessionByID(ctx context.Context, id string) (*airlock.Session, error) {
	return s.findSession(ctx, `id = $1`, id)
}

// FindSessionByTokenHash returns the session whose TokenHash is hash, ended
// or not, or ENOTFOUND.
func (s *Store) FindSessionByTokenHash(ctx context.Context, hash []byte) (*airlock.Session, error) {
	if len(hash) == 0 {
		return nil, notFound("session")
	}
	return s.findSession(ctx, `token_hash = $1`, hash)
}

func (s *Store) findSession(ctx context.Context, where string, arg any) (*airlock.Session, error) {
	sess, err := scanSession(s.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE `+where, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("session")
	} else if err != nil {
		return nil, dbError("find session", err)
	}
	return sess, nil
}

// TouchSession sets LastSeen of a session that has not ended (and with it
// the idle deadline). It does not check the deadlines. A missing session is
// ENOTFOUND, an ended one ECONFLICT.
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE sessions SET last_seen = $1::timestamptz, expires_at = `+
		sessionExpiry("absolute_deadline", "$1::timestamptz", "idle_timeout")+` WHERE id = $2 AND ended_at IS NULL`, ts(at), id)
	return s.liveSessionResult(ctx, tag.RowsAffected(), err, id, "update session")
}

// SetSessionUV sets LastUVAt of a session that has not ended. A missing
// session is ENOTFOUND, an ended one ECONFLICT.
func (s *Store) SetSessionUV(ctx context.Context, id string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE sessions SET last_uv_at = $1 WHERE id = $2 AND ended_at IS NULL`, ts(at), id)
	return s.liveSessionResult(ctx, tag.RowsAffected(), err, id, "update session")
}

// liveSessionResult turns the outcome of an UPDATE … WHERE id = ? AND
// ended_at IS NULL into the caller's error: nil when it changed the row,
// ENOTFOUND when session id does not exist and ECONFLICT when it does (it
// had ended). Sessions are never deleted and never restart.
func (s *Store) liveSessionResult(ctx context.Context, n int64, err error, id, op string) error {
	if err != nil {
		return dbError(op, err)
	}
	if n == 1 {
		return nil
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sessions WHERE id = $1)`, id).Scan(&exists); err != nil {
		return dbError(op, err)
	}
	if !exists {
		return notFound("session")
	}
	return airlock.Errorf(airlock.ECONFLICT, "postgres: session already ended")
}

// EndSession ends session id at at for reason. Ending an ended session is
// ECONFLICT and keeps the first end; a missing one is ENOTFOUND; a zero at
// is EINVALID (it would mean "live").
func (s *Store) EndSession(ctx context.Context, id, reason string, at time.Time) error {
	if at.IsZero() {
		return airlock.Errorf(airlock.EINVALID, "postgres: zero session end time")
	}
	tag, err := s.pool.Exec(ctx, `UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL`,
		at, reason, id)
	return s.liveSessionResult(ctx, tag.RowsAffected(), err, id, "end session")
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
// equals value, in one statement, and returns their sorted IDs. A zero at
// is EINVALID (it would mean "live").
func (s *Store) endSessionsWhere(ctx context.Context, column, value, reason string, at time.Time) ([]string, error) {
	if at.IsZero() {
		return nil, airlock.Errorf(airlock.EINVALID, "postgres: zero session end time")
	}
	rows, err := s.pool.Query(ctx, `UPDATE sessions SET ended_at = $1, end_reason = $2
		WHERE `+column+` = $3 AND ended_at IS NULL RETURNING id`, at, reason, value)
	if err != nil {
		return nil, dbError("end sessions", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, dbError("end sessions", err)
	}
	if ids == nil {
		ids = []string{}
	}
	sort.Strings(ids)
	return ids, nil
}

// DefaultExpiredSessionsLimit is how many sessions ListExpiredSessions
// returns when its limit is 0 or negative.
const DefaultExpiredSessionsLimit = 100

// expiredSessionsQuery selects the expired sessions through the
// sessions_expiry index; its arguments are now and the limit.
const expiredSessionsQuery = `SELECT ` + sessionColumns + ` FROM sessions
	WHERE ended_at IS NULL AND expires_at <= $1 ORDER BY expires_at, ord LIMIT $2`

// ListExpiredSessions returns at most limit (DefaultExpiredSessionsLimit
// when limit ≤ 0) sessions that have not ended but whose absolute or idle
// deadline is not after now, ordered by the earlier of their two deadlines,
// then by insertion order. now is truncated to the microsecond.
func (s *Store) ListExpiredSessions(ctx context.Context, now time.Time, limit int) ([]*airlock.Session, error) {
	if limit <= 0 {
		limit = DefaultExpiredSessionsLimit
	}
	rows, err := s.pool.Query(ctx, expiredSessionsQuery, now, limit)
	return collect(rows, err, "list expired sessions", scanSession)
}

// ListSessionsByUser returns the user's sessions that have not ended (their
// deadlines are not checked), newest first by CreatedAt.
func (s *Store) ListSessionsByUser(ctx context.Context, userID string) ([]*airlock.Session, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = $1 AND ended_at IS NULL ORDER BY created_at DESC NULLS LAST, ord DESC`, userID)
	return collect(rows, err, "list sessions", scanSession)
}

func scanSession(row pgx.Row) (*airlock.Session, error) {
	var (
		s          airlock.Session
		tier, idle int64
	)
	if err := row.Scan(&s.ID, &s.TokenHash, &s.UserID, &s.DeviceID, &s.CredentialID, &tier, &s.AMR, &s.ACR,
		tsp(&s.AuthTime), tsp(&s.LastSeen), tsp(&s.LastUVAt), tsp(&s.AbsoluteDeadline), &idle, &s.IP,
		&s.UserAgent, tsp(&s.CreatedAt), tsp(&s.EndedAt), &s.EndReason, &s.KeyThumbprint); err != nil {
		return nil, err
	}
	s.TokenHash = nonEmpty(s.TokenHash)
	s.CredentialID = nonEmpty(s.CredentialID)
	s.Tier = airlock.Tier(tier)
	s.IdleTimeout = time.Duration(idle)
	s.AMR = nonNil(s.AMR)
	return &s, nil
}
