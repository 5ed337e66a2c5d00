package postgres

import (
	"context"
	"errors"
	"time"

	"airlock"

	"github.com/jackc/pgx/v5"
)

const tokenColumns = `hash, id, user_id, device_id, purpose, created_by, created_at, expires_at, used_at`

// CreateEnrolmentToken inserts t. A token with the same ID or Hash is
// ECONFLICT.
func (s *Store) CreateEnrolmentToken(ctx context.Context, t *airlock.EnrolmentToken) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO enrolment_tokens (`+tokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		blob(t.Hash), t.ID, t.UserID, t.DeviceID, t.Purpose, t.CreatedBy, ts(t.CreatedAt), ts(t.ExpiresAt), ts(t.UsedAt))
	return dbError("create enrolment token", err)
}

// FindEnrolmentTokenByHash returns the token whose Hash is hash, used or
// expired or not, or ENOTFOUND.
func (s *Store) FindEnrolmentTokenByHash(ctx context.Context, hash []byte) (*airlock.EnrolmentToken, error) {
	if len(hash) == 0 {
		return nil, notFound("enrolment token")
	}
	return s.findToken(ctx, `hash = $1`, hash)
}

// FindEnrolmentTokenByID returns the token with id, or ENOTFOUND.
func (s *Store) FindEnrolmentTokenByID(ctx context.Context, id string) (*airlock.EnrolmentToken, error) {
	return s.findToken(ctx, `id = $1`, id)
}

func (s *Store) findToken(ctx context.Context, where string, arg any) (*airlock.EnrolmentToken, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM enrolment_tokens WHERE `+where, arg))
	if errors.Is(err, pgx.ErrNoRows) {
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
		return airlock.Errorf(airlock.EINVALID, "postgres: zero token use time")
	}
	return s.write(ctx, func(tx pgx.Tx) error { return useToken(ctx, tx, id, at) })
}

// useToken marks token id used at at inside tx with one conditional UPDATE
// (racing replicas: the row lock lets one through, the others then see it
// used): ECONFLICT if it was used already, ENOTFOUND if it does not exist.
func useToken(ctx context.Context, tx pgx.Tx, id string, at time.Time) error {
	tag, err := tx.Exec(ctx, `UPDATE enrolment_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL`, at, id)
	if err != nil {
		return dbError("use enrolment token", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM enrolment_tokens WHERE id = $1)`, id).Scan(&exists); err != nil {
		return dbError("use enrolment token", err)
	}
	if !exists {
		return notFound("enrolment token")
	}
	return airlock.Errorf(airlock.ECONFLICT, "postgres: enrolment link already used")
}

// ListEnrolmentTokens returns every token, used and expired ones included,
// newest first by CreatedAt.
func (s *Store) ListEnrolmentTokens(ctx context.Context) ([]*airlock.EnrolmentToken, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM enrolment_tokens ORDER BY created_at DESC NULLS LAST, ord DESC`)
	return collect(rows, err, "list enrolment tokens", scanToken)
}

func scanToken(row pgx.Row) (*airlock.EnrolmentToken, error) {
	var t airlock.EnrolmentToken
	if err := row.Scan(&t.Hash, &t.ID, &t.UserID, &t.DeviceID, &t.Purpose, &t.CreatedBy, tsp(&t.CreatedAt),
		tsp(&t.ExpiresAt), tsp(&t.UsedAt)); err != nil {
		return nil, err
	}
	t.Hash = nonEmpty(t.Hash)
	return &t, nil
}
