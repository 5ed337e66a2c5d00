package sqlite

import (
	"context"
	"database/sql"
	"time"

	"airlock"
)

const exceptionColumns = `id, user_id, action, resource, effect, owner, reason, created_by, created_at, expires_at`

// CreateException inserts e; an exception with the same ID is ECONFLICT.
func (s *Store) CreateException(ctx context.Context, e *airlock.Exception) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO exceptions (`+exceptionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.UserID, e.Action, e.Resource, e.Effect, e.Owner, e.Reason, e.CreatedBy, micros(e.CreatedAt), micros(e.ExpiresAt))
	return dbError("create exception", err)
}

// FindExceptionByID returns the exception with id, or ENOTFOUND.
func (s *Store) FindExceptionByID(ctx context.Context, id string) (*airlock.Exception, error) {
	e, err := scanException(s.r.QueryRowContext(ctx, `SELECT `+exceptionColumns+` FROM exceptions WHERE id = ?`, id))
	if err == sql.ErrNoRows {
		return nil, notFound("exception")
	} else if err != nil {
		return nil, dbError("find exception", err)
	}
	return e, nil
}

// ListExceptions returns every exception, soonest expiry first.
func (s *Store) ListExceptions(ctx context.Context) ([]*airlock.Exception, error) {
	return s.listExceptions(ctx, `SELECT `+exceptionColumns+` FROM exceptions ORDER BY expires_at, id`)
}

// ListLiveExceptions returns the exceptions that have not expired at now and
// apply to userID or to every user.
func (s *Store) ListLiveExceptions(ctx context.Context, userID string, now time.Time) ([]*airlock.Exception, error) {
	return s.listExceptions(ctx, `SELECT `+exceptionColumns+` FROM exceptions
		WHERE expires_at > ? AND (user_id = '' OR user_id = ?) ORDER BY expires_at, id`, micros(now), userID)
}

// ListExpiredExceptions returns at most limit (≤ 0: 100) exceptions whose
// expiry is not after now.
func (s *Store) ListExpiredExceptions(ctx context.Context, now time.Time, limit int) ([]*airlock.Exception, error) {
	if limit <= 0 {
		limit = 100
	}
	return s.listExceptions(ctx, `SELECT `+exceptionColumns+` FROM exceptions
		WHERE expires_at <= ? ORDER BY expires_at, id LIMIT ?`, micros(now), limit)
}

func (s *Store) listExceptions(ctx context.Context, query string, args ...any) ([]*airlock.Exception, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbError("list exceptions", err)
	}
	defer rows.Close()
	out := []*airlock.Exception{}
	for rows.Next() {
		e, err := scanException(rows)
		if err != nil {
			return nil, dbError("list exceptions", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list exceptions", err)
	}
	return out, nil
}

// DeleteException removes the exception with id, or returns ENOTFOUND.
func (s *Store) DeleteException(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM exceptions WHERE id = ?`, id)
	if err != nil {
		return dbError("delete exception", err)
	}
	n, err := rowsAffected(res, "delete exception")
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound("exception")
	}
	return nil
}

func scanException(row scanner) (*airlock.Exception, error) {
	var (
		e                airlock.Exception
		created, expires int64
	)
	if err := row.Scan(&e.ID, &e.UserID, &e.Action, &e.Resource, &e.Effect, &e.Owner, &e.Reason, &e.CreatedBy,
		&created, &expires); err != nil {
		return nil, err
	}
	e.CreatedAt, e.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &e, nil
}
