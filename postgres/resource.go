package postgres

import (
	"context"
	"encoding/json"
	"errors"

	"airlock"

	"github.com/jackc/pgx/v5"
)

const resourceColumns = `name, tier, labels, created_at, updated_at, version`

// CreateResource inserts r with the Version it has; a resource with the same
// name is ECONFLICT.
func (s *Store) CreateResource(ctx context.Context, r *airlock.Resource) error {
	labels, err := encodeLabels(r.Labels)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO resources (`+resourceColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		r.Name, int64(r.Tier), labels, ts(r.CreatedAt), ts(r.UpdatedAt), r.Version)
	return dbError("create resource", err)
}

// FindResourceByName returns the resource named name, or ENOTFOUND.
func (s *Store) FindResourceByName(ctx context.Context, name string) (*airlock.Resource, error) {
	r, err := scanResource(s.pool.QueryRow(ctx, `SELECT `+resourceColumns+` FROM resources WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("resource")
	} else if err != nil {
		return nil, dbError("find resource", err)
	}
	return r, nil
}

// ListResources returns every stored resource ordered by name (byte order).
func (s *Store) ListResources(ctx context.Context) ([]*airlock.Resource, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+resourceColumns+` FROM resources ORDER BY name`)
	return collect(rows, err, "list resources", scanResource)
}

// UpdateResource replaces Tier, Labels and UpdatedAt of the resource named
// r.Name when its stored version equals r.Version, then increments both. A
// missing resource is ENOTFOUND; a version mismatch is ECONFLICT, and then
// nothing is written and r is unchanged.
func (s *Store) UpdateResource(ctx context.Context, r *airlock.Resource) error {
	labels, err := encodeLabels(r.Labels)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE resources SET tier = $1, labels = $2, updated_at = $3, version = version + 1
		WHERE name = $4 AND version = $5`, int64(r.Tier), labels, ts(r.UpdatedAt), r.Name, r.Version)
	if err != nil {
		return dbError("update resource", err)
	}
	if tag.RowsAffected() != 1 {
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM resources WHERE name = $1)`, r.Name).Scan(&exists); err != nil {
			return dbError("update resource", err)
		}
		if !exists {
			return notFound("resource")
		}
		return airlock.Errorf(airlock.ECONFLICT, "postgres: resource %s was changed concurrently; reload and retry", r.Name)
	}
	r.Version++
	return nil
}

// DeleteResource removes the resource named name, or returns ENOTFOUND.
func (s *Store) DeleteResource(ctx context.Context, name string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM resources WHERE name = $1`, name)
	if err != nil {
		return dbError("delete resource", err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("resource")
	}
	return nil
}

// encodeLabels returns labels as a JSON object ("{}" for nil).
func encodeLabels(labels map[string]string) (string, error) {
	if len(labels) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(labels)
	if err != nil {
		return "", airlock.Wrap(airlock.EINVALID, "postgres: resource labels", err)
	}
	return string(b), nil
}

func scanResource(row pgx.Row) (*airlock.Resource, error) {
	var (
		r      airlock.Resource
		tier   int64
		labels string
	)
	if err := row.Scan(&r.Name, &tier, &labels, tsp(&r.CreatedAt), tsp(&r.UpdatedAt), &r.Version); err != nil {
		return nil, err
	}
	r.Tier = airlock.Tier(tier)
	if err := json.Unmarshal([]byte(labels), &r.Labels); err != nil {
		return nil, airlock.Wrap(airlock.EINTERNAL, "postgres: corrupt resource labels", err)
	}
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	return &r, nil
}
