package sqlite

import (
	"context"
	"database/sql"
	"time"

	"airlock"
)

const tokenColumns = `hash, id, user_id, device_id, purpose, created_by, created_at, expires_at, used_at`

// CreateEnrolmentToken inserts t. A token with the same ID or Hash is
// ECONFLICT.
func (s *Store) CreateEnrolmentToken(ctx context.Context, t *airlock.EnrolmentToken) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO enrolment_tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		blob(t.Hash), t.ID, t.UserID, t.DeviceID, t.Purpose, t.CreatedBy, micros(t.CreatedAt),
		micros(t.ExpiresAt), micros(t.UsedAt))
	return dbError("create enrolment token", err)
}

// FindEnrolmentTokenByHash returns the token whose Hash is hash, used or
// expired or not, or ENOTFOUND.
func (s *Store) FindEnrolmentTokenByHash(ctx context.Context, hash []byte) (*airlock.EnrolmentToken, error) {
	if len(hash) == 0 {
		return nil, notFound("enrolment token")
	}
	return s.findToken(ctx, `hash = ?`, hash)
}

// FindEnrolmentTokenByID returns the token with id, or ENOTFOUND.
func (s *Store) FindEnrolmentTokenByID(ctx context.Context, id string) (*airlock.EnrolmentToken, error) {
	return s.findToken(ctx, `id = ?`, id)
}

func (s *Store) findToken(ctx context.Context, where string, arg any) (*airlock.EnrolmentToken, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM enrolment_tokens WHERE `+where, arg))
	if err == sql.ErrNoRows {
		return nil, notFound("enrolment token")
	} else if err != nil {
		return nil, dbError("find enrolment token", err)
	}
	return t, nil
}

// UseEnrolmentToken marks token id used at at, atomically. A token already
// used is ECONFLICT and keeps its UsedAt; a missing one is ENOTFOUND; a zero
// at is EINVALID. It does not check expiry: the caller does.
func (s *Store) UseEnrolmentToken(ctx context.Context, id string, at time.Time) error {
	if at.IsZero() {
		return airlock.Errorf(airlock.EINVALID, "sqlite: zero token use time")
	}
	return s.write(ctx, func(tx *sql.Tx) error { return useToken(ctx, tx, id, at) })
}

// useToken marks token id used at at inside tx: ECONFLICT if it was used
// already, ENOTFOUND if it does not exist.
func useToken(ctx context.Context, tx *sql.Tx, id string, at time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE enrolment_tokens SET used_at = ? WHERE id = ? AND used_at = 0`, micros(at), id)
	if err != nil {
		return dbError("use enrolment token", err)
	}
	if n, err := rowsAffected(res, "use enrolment token"); err != nil {
		return err
	} else if n == 1 {
		return nil
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM enrolment_tokens WHERE id = ?`, id).Scan(&n); err != nil {
		return dbError("use enrolment token", err)
	}
	if n == 0 {
		return notFound("enrolment token")
	}
	return airlock.Errorf(airlock.ECONFLICT, "sqlite: enrolment link already used")
}

// ListEnrolmentTokens returns every token, used and expired ones included,
// newest first by CreatedAt.
func (s *Store) ListEnrolmentTokens(ctx context.Context) ([]*airlock.EnrolmentToken, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+tokenColumns+` FROM enrolment_tokens ORDER BY created_at DESC, rowid DESC`)
	if err != nil {
		return nil, dbError("list enrolment tokens", err)
	}
	defer rows.Close()
	tokens := []*airlock.EnrolmentToken{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, dbError("list enrolment tokens", err)
		}
		tokens = append(tokens, t)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list enrolment tokens", err)
	}
	return tokens, nil
}

func scanToken(row scanner) (*airlock.EnrolmentToken, error) {
	var (
		t                      airlock.EnrolmentToken
		created, expires, used int64
	)
	if err := row.Scan(&t.Hash, &t.ID, &t.UserID, &t.DeviceID, &t.Purpose, &t.CreatedBy, &created, &expires, &used); err != nil {
		return nil, err
	}
	t.Hash = nonEmpty(t.Hash)
	t.CreatedAt = fromMicros(created)
	t.ExpiresAt = fromMicros(expires)
	t.UsedAt = fromMicros(used)
	return &t, nil
}
