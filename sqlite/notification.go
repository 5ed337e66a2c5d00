package sqlite

import (
	"context"
	"database/sql"
	"time"

	"airlock"
)

// DefaultNotificationLimit is how many notifications DueNotifications
// returns when its limit is not positive.
const DefaultNotificationLimit = 100

const notificationColumns = `id, kind, user_id, payload, attempts, next_attempt, last_error, created_at, delivered_at`

// EnqueueNotification stores n and sets n.ID, a new positive number; the ID
// n carried before is ignored.
func (s *Store) EnqueueNotification(ctx context.Context, n *airlock.Notification) error {
	var id int64
	err := s.w.QueryRowContext(ctx, `INSERT INTO notifications (kind, user_id, payload, attempts, next_attempt,
		last_error, created_at, delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		n.Kind, n.UserID, blob(n.Payload), n.Attempts, micros(n.NextAttempt), n.LastError, micros(n.CreatedAt),
		micros(n.DeliveredAt)).Scan(&id)
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
	return s.listNotifications(ctx, `WHERE delivered_at = 0 AND next_attempt <= ? ORDER BY created_at, id LIMIT ?`,
		micros(now), limit)
}

// MarkNotificationDelivered sets DeliveredAt. Marking a delivered
// notification again keeps the first time and is not an error; a missing one
// is ENOTFOUND and a zero at EINVALID.
func (s *Store) MarkNotificationDelivered(ctx context.Context, id int64, at time.Time) error {
	if at.IsZero() {
		return airlock.Errorf(airlock.EINVALID, "sqlite: zero delivery time")
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		var delivered int64
		err := tx.QueryRowContext(ctx, `SELECT delivered_at FROM notifications WHERE id = ?`, id).Scan(&delivered)
		if err == sql.ErrNoRows {
			return notFound("notification")
		} else if err != nil {
			return dbError("mark notification delivered", err)
		}
		if delivered != 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE notifications SET delivered_at = ? WHERE id = ?`, micros(at), id)
		return dbError("mark notification delivered", err)
	})
}

// MarkNotificationFailed records a failed attempt: Attempts+1, LastError =
// errText and NextAttempt = next. A missing notification is ENOTFOUND; a
// delivered one is ECONFLICT and stays as it was.
func (s *Store) MarkNotificationFailed(ctx context.Context, id int64, errText string, next time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var delivered int64
		err := tx.QueryRowContext(ctx, `SELECT delivered_at FROM notifications WHERE id = ?`, id).Scan(&delivered)
		if err == sql.ErrNoRows {
			return notFound("notification")
		} else if err != nil {
			return dbError("mark notification failed", err)
		}
		if delivered != 0 {
			return airlock.Errorf(airlock.ECONFLICT, "sqlite: notification already delivered")
		}
		_, err = tx.ExecContext(ctx, `UPDATE notifications SET attempts = attempts + 1, last_error = ?,
			next_attempt = ? WHERE id = ?`, errText, micros(next), id)
		return dbError("mark notification failed", err)
	})
}

// ListNotificationsByUser returns the user's notifications, delivered ones
// included, newest first by CreatedAt.
func (s *Store) ListNotificationsByUser(ctx context.Context, userID string) ([]*airlock.Notification, error) {
	return s.listNotifications(ctx, `WHERE user_id = ? ORDER BY created_at DESC, id DESC`, userID)
}

func (s *Store) listNotifications(ctx context.Context, tail string, args ...any) ([]*airlock.Notification, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+notificationColumns+` FROM notifications `+tail, args...)
	if err != nil {
		return nil, dbError("list notifications", err)
	}
	defer rows.Close()
	out := []*airlock.Notification{}
	for rows.Next() {
		var (
			n                        airlock.Notification
			next, created, delivered int64
		)
		if err := rows.Scan(&n.ID, &n.Kind, &n.UserID, &n.Payload, &n.Attempts, &next, &n.LastError,
			&created, &delivered); err != nil {
			return nil, dbError("list notifications", err)
		}
		n.Payload = nonEmpty(n.Payload)
		n.NextAttempt = fromMicros(next)
		n.CreatedAt = fromMicros(created)
		n.DeliveredAt = fromMicros(delivered)
		out = append(out, &n)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list notifications", err)
	}
	return out, nil
}
