package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"

	"airlock"
)

const resourceColumns = `name, tier, labels, created_at, updated_at, version`

// CreateResource inserts r with the Version it has; a resource with the same
// name is ECONFLICT.
func (s *Store) CreateResource(ctx context.Context, r *airlock.Resource) error {
	labels, err := encodeLabels(r.Labels)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO resources (`+resourceColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		r.Name, int64(r.Tier), labels, micros(r.CreatedAt), micros(r.UpdatedAt), r.Version)
	return dbError("create resource", err)
}

// FindResourceByName returns the resource named name, or ENOTFOUND.
func (s *Store) FindResourceByName(ctx context.Context, name string) (*airlock.Resource, error) {
	r, err := scanResource(s.r.QueryRowContext(ctx, `SELECT `+resourceColumns+` FROM resources WHERE name = ?`, name))
	if err == sql.ErrNoRows {
		return nil, notFound("resource")
	} else if err != nil {
		return nil, dbError("find resource", err)
	}
	return r, nil
}

// ListResources returns every stored resource ordered by name.
func (s *Store) ListResources(ctx context.Context) ([]*airlock.Resource, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+resourceColumns+` FROM resources ORDER BY name`)
	if err != nil {
		return nil, dbError("list resources", err)
	}
	defer rows.Close()
	out := []*airlock.Resource{}
	for rows.Next() {
		r, err := scanResource(rows)
		if err != nil {
			return nil, dbError("list resources", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list resources", err)
	}
	return out, nil
}

// UpdateResource replaces Tier, Labels and UpdatedAt of the resource named
// r.Name when its stored version equals r.Version, then increments both.
func (s *Store) UpdateResource(ctx context.Context, r *airlock.Resource) error {
	labels, err := encodeLabels(r.Labels)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE resources SET tier = ?, labels = ?, updated_at = ?, version = version + 1
			WHERE name = ? AND version = ?`, int64(r.Tier), labels, micros(r.UpdatedAt), r.Name, r.Version)
		if err != nil {
			return dbError("update resource", err)
		}
		n, err := rowsAffected(res, "update resource")
		if err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM resources WHERE name = ?`, r.Name).Scan(&exists); err != nil {
			return dbError("update resource", err)
		}
		if exists == 0 {
			return notFound("resource")
		}
		return airlock.Errorf(airlock.ECONFLICT, "sqlite: resource %s was changed concurrently; reload and retry", r.Name)
	})
	if err != nil {
		return err
	}
	r.Version++
	return nil
}

// DeleteResource removes the resource named name, or returns ENOTFOUND.
func (s *Store) DeleteResource(ctx context.Context, name string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM resources WHERE name = ?`, name)
	if err != nil {
		return dbError("delete resource", err)
	}
	n, err := rowsAffected(res, "delete resource")
	if err != nil {
		return err
	}
	if n == 0 {
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
		return "", airlock.Wrap(airlock.EINVALID, "sqlite: resource labels", err)
	}
	return string(b), nil
}

func scanResource(row scanner) (*airlock.Resource, error) {
	var (
		r                airlock.Resource
		tier             int64
		labels           string
		created, updated int64
	)
	if err := row.Scan(&r.Name, &tier, &labels, &created, &updated, &r.Version); err != nil {
		return nil, err
	}
	r.Tier = airlock.Tier(tier)
	r.Labels = map[string]string{}
	if err := json.Unmarshal([]byte(labels), &r.Labels); err != nil {
		return nil, airlock.Wrap(airlock.EINTERNAL, "sqlite: corrupt resource labels", err)
	}
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	r.CreatedAt, r.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &r, nil
}
