package postgres

import (
	"context"
	"errors"
	"time"

	"airlock"

	"github.com/jackc/pgx/v5"
)

const exceptionColumns = `id, user_id, action, resource, effect, owner, reason, created_by, created_at, expires_at`

// exceptionOrder is every list's order: soonest expiry first (a zero expiry
// before all), then ID.
const exceptionOrder = ` ORDER BY expires_at NULLS FIRST, id`

// CreateException inserts e; an exception with the same ID is ECONFLICT.
func (s *Store) CreateException(ctx context.Context, e *airlock.Exception) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO exceptions (`+exceptionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		e.ID, e.UserID, e.Action, e.Resource, e.Effect, e.Owner, e.Reason, e.CreatedBy, ts(e.CreatedAt), ts(e.ExpiresAt))
	return dbError("create exception", err)
}

// FindExceptionByID returns the exception with id, or ENOTFOUND.
func (s *Store) FindExceptionByID(ctx context.Context, id string) (*airlock.Exception, error) {
	e, err := scanException(s.pool.QueryRow(ctx, `SELECT `+exceptionColumns+` FROM exceptions WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("exception")
	} else if err != nil {
		return nil, dbError("find exception", err)
	}
	return e, nil
}

// ListExceptions returns every exception, soonest expiry first.
func (s *Store) ListExceptions(ctx context.Context) ([]*airlock.Exception, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+exceptionColumns+` FROM exceptions`+exceptionOrder)
	return collect(rows, err, "list exceptions", scanException)
}

// ListLiveExceptions returns the exceptions whose expiry is after now and
// that apply to userID or to every user.
func (s *Store) ListLiveExceptions(ctx context.Context, userID string, now time.Time) ([]*airlock.Exception, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+exceptionColumns+` FROM exceptions
		WHERE expires_at > $1 AND (user_id = '' OR user_id = $2)`+exceptionOrder, now, userID)
	return collect(rows, err, "list exceptions", scanException)
}

// ListExpiredExceptions returns at most limit (≤ 0: 100) exceptions whose
// expiry is not after now.
func (s *Store) ListExpiredExceptions(ctx context.Context, now time.Time, limit int) ([]*airlock.Exception, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT `+exceptionColumns+` FROM exceptions
		WHERE expires_at <= $1 OR expires_at IS NULL`+exceptionOrder+` LIMIT $2`, now, limit)
	return collect(rows, err, "list exceptions", scanException)
}

// DeleteException removes the exception with id, or returns ENOTFOUND.
func (s *Store) DeleteException(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM exceptions WHERE id = $1`, id)
	if err != nil {
		return dbError("delete exception", err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("exception")
	}
	return nil
}

func scanException(row pgx.Row) (*airlock.Exception, error) {
	var e airlock.Exception
	if err := row.Scan(&e.ID, &e.UserID, &e.Action, &e.Resource, &e.Effect, &e.Owner, &e.Reason, &e.CreatedBy,
		tsp(&e.CreatedAt), tsp(&e.ExpiresAt)); err != nil {
		return nil, err
	}
	return &e, nil
}
