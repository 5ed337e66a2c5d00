package postgres

import (
	"context"
	"errors"
	"time"

	"airlock"

	"github.com/jackc/pgx/v5"
)

const ceremonyColumns = `id, kind, user_id, ref, data, created_at, expires_at`

// CreateCeremony inserts c; a ceremony with the same ID is ECONFLICT.
func (s *Store) CreateCeremony(ctx context.Context, c *airlock.Ceremony) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO ceremonies (`+ceremonyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		c.ID, c.Kind, c.UserID, c.Ref, blob(c.Data), ts(c.CreatedAt), ts(c.ExpiresAt))
	return dbError("create ceremony", err)
}

// ConsumeCeremony deletes and returns ceremony id in one DELETE … RETURNING,
// so of concurrent callers, in any replica, exactly one gets it and the
// others ENOTFOUND. An expired ceremony is returned too: the caller checks
// ExpiresAt.
func (s *Store) ConsumeCeremony(ctx context.Context, id string) (*airlock.Ceremony, error) {
	c, err := scanCeremony(s.pool.QueryRow(ctx, `DELETE FROM ceremonies WHERE id = $1 RETURNING `+ceremonyColumns, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("ceremony")
	} else if err != nil {
		return nil, dbError("consume ceremony", err)
	}
	return c, nil
}

// DeleteExpiredCeremonies removes the ceremonies whose ExpiresAt is before
// now and returns how many it removed.
func (s *Store) DeleteExpiredCeremonies(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM ceremonies WHERE expires_at < $1 OR expires_at IS NULL`, now)
	if err != nil {
		return 0, dbError("delete expired ceremonies", err)
	}
	return int(tag.RowsAffected()), nil
}

func scanCeremony(row pgx.Row) (*airlock.Ceremony, error) {
	var c airlock.Ceremony
	if err := row.Scan(&c.ID, &c.Kind, &c.UserID, &c.Ref, &c.Data, tsp(&c.CreatedAt), tsp(&c.ExpiresAt)); err != nil {
		return nil, err
	}
	c.Data = nonEmpty(c.Data)
	return &c, nil
}
