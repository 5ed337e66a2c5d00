package sqlite

import (
	"context"
	"database/sql"
	"time"

	"airlock"
)

const ceremonyColumns = `id, kind, user_id, ref, data, created_at, expires_at`

// CreateCeremony inserts c; a ceremony with the same ID is ECONFLICT.
func (s *Store) CreateCeremony(ctx context.Context, c *airlock.Ceremony) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO ceremonies (`+ceremonyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Kind, c.UserID, c.Ref, blob(c.Data), micros(c.CreatedAt), micros(c.ExpiresAt))
	return dbError("create ceremony", err)
}

// ConsumeCeremony deletes and returns ceremony id in one statement on the
// single write connection, so of concurrent callers exactly one gets it and
// the others ENOTFOUND. An expired ceremony is returned too: the caller
// checks ExpiresAt.
func (s *Store) ConsumeCeremony(ctx context.Context, id string) (*airlock.Ceremony, error) {
	var c *airlock.Ceremony
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		c, err = scanCeremony(tx.QueryRowContext(ctx, `DELETE FROM ceremonies WHERE id = ? RETURNING `+ceremonyColumns, id))
		if err == sql.ErrNoRows {
			return notFound("ceremony")
		}
		return dbError("consume ceremony", err)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// DeleteExpiredCeremonies removes the ceremonies whose ExpiresAt is before
// now and returns how many it removed.
func (s *Store) DeleteExpiredCeremonies(ctx context.Context, now time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM ceremonies WHERE expires_at < ?`, micros(now))
	if err != nil {
		return 0, dbError("delete expired ceremonies", err)
	}
	n, err := rowsAffected(res, "delete expired ceremonies")
	return int(n), err
}

func scanCeremony(row scanner) (*airlock.Ceremony, error) {
	var (
		c                airlock.Ceremony
		created, expires int64
	)
	if err := row.Scan(&c.ID, &c.Kind, &c.UserID, &c.Ref, &c.Data, &created, &expires); err != nil {
		return nil, err
	}
	c.Data = nonEmpty(c.Data)
	c.CreatedAt = fromMicros(created)
	c.ExpiresAt = fromMicros(expires)
	return &c, nil
}
