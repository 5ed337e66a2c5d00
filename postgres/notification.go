package postgres

import (
	"context"
	"errors"
	"time"

	"airlock"

	"github.com/jackc/pgx/v5"
)

// DefaultNotificationLimit is how many notifications DueNotifications
// returns when its limit is not positive.
const DefaultNotificationLimit = 100

const notificationColumns = `id, kind, user_id, payload, attempts, next_attempt, last_error, created_at, delivered_at`

// EnqueueNotification stores n and sets n.ID, a new positive number; the ID
// n carried before is ignored.
func (s *Store) EnqueueNotification(ctx context.Context, n *airlock.Notification) error {
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO notifications (kind, user_id, payload, attempts, next_attempt,
		last_error, created_at, delivered_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		n.Kind, n.UserID, blob(n.Payload), n.Attempts, ts(n.NextAttempt), n.LastError, ts(n.CreatedAt),
		ts(n.DeliveredAt)).Scan(&id)
	if err != nil {
		return dbError("enqueue notification", err)
	}
	n.ID = id
	return nil
}

// DueNotifications returns undelivered notifications whose NextAttempt is
// not after now (a zero NextAttempt is due at once), oldest first by
// CreatedAt, at most limit (DefaultNotificationLimit when limit ≤ 0).
func (s *Store) DueNotifications(ctx context.Context, now time.Time, limit int) ([]*airlock.Notification, error) {
	if limit <= 0 {
		limit = DefaultNotificationLimit
	}
	return s.listNotifications(ctx, `WHERE delivered_at IS NULL AND (next_attempt <= $1 OR next_attempt IS NULL)
		ORDER BY created_at NULLS FIRST, id LIMIT $2`, now, limit)
}

// MarkNotificationDelivered sets DeliveredAt. Marking a delivered
// notification again keeps the first time and is not an error; a missing one
// is ENOTFOUND and a zero at EINVALID.
func (s *Store) MarkNotificationDelivered(ctx context.Context, id int64, at time.Time) error {
	if at.IsZero() {
		return airlock.Errorf(airlock.EINVALID, "postgres: zero delivery time")
	}
	tag, err := s.pool.Exec(ctx, `UPDATE notifications SET delivered_at = coalesce(delivered_at, $1) WHERE id = $2`, at, id)
	if err != nil {
		return dbError("mark notification delivered", err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("notification")
	}
	return nil
}

// MarkNotificationFailed records a failed attempt: Attempts+1, LastError =
// errText and NextAttempt = next. A missing notification is ENOTFOUND; a
// delivered one is ECONFLICT and stays as it was.
func (s *Store) MarkNotificationFailed(ctx context.Context, id int64, errText string, next time.Time) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		var delivered time.Time
		err := tx.QueryRow(ctx, `SELECT delivered_at FROM notifications WHERE id = $1 FOR UPDATE`, id).Scan(tsp(&delivered))
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("notification")
		} else if err != nil {
			return dbError("mark notification failed", err)
		}
		if !delivered.IsZero() {
			return airlock.Errorf(airlock.ECONFLICT, "postgres: notification already delivered")
		}
		_, err = tx.Exec(ctx, `UPDATE notifications SET attempts = attempts + 1, last_error = $1,
			next_attempt = $2 WHERE id = $3`, errText, ts(next), id)
		return dbError("mark notification failed", err)
	})
}

// ListNotificationsByUser returns the user's notifications, delivered ones
// included, newest first by CreatedAt.
func (s *Store) ListNotificationsByUser(ctx context.Context, userID string) ([]*airlock.Notification, error) {
	return s.listNotifications(ctx, `WHERE user_id = $1 ORDER BY created_at DESC NULLS LAST, id DESC`, userID)
}

func (s *Store) listNotifications(ctx context.Context, tail string, args ...any) ([]*airlock.Notification, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+notificationColumns+` FROM notifications `+tail, args...)
	return collect(rows, err, "list notifications", func(row pgx.Row) (*airlock.Notification, error) {
		var n airlock.Notification
		if err := row.Scan(&n.ID, &n.Kind, &n.UserID, &n.Payload, &n.Attempts, tsp(&n.NextAttempt), &n.LastError,
			tsp(&n.CreatedAt), tsp(&n.DeliveredAt)); err != nil {
			return nil, err
		}
		n.Payload = nonEmpty(n.Payload)
		return &n, nil
	})
}
