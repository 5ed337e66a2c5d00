package postgres

import (
	"context"
	"errors"
	"time"

	"airlock"

	"github.com/jackc/pgx/v5"
)

const networkColumns = `user_id, network, first_seen, last_seen, located, lat, lon, country`

// SeeNetwork creates or advances the user's sighting of network in one
// upsert (concurrent sightings from several replicas all land): LastSeen
// only moves forward, and a location replaces the stored one unless at is
// older than the stored LastSeen.
func (s *Store) SeeNetwork(ctx context.Context, userID, network string, loc *airlock.GeoPoint, at time.Time) error {
	var (
		located  bool
		lat, lon float64
		country  string
	)
	if loc != nil {
		located, lat, lon, country = true, loc.Lat, loc.Lon, loc.Country
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO networks_seen (`+networkColumns+`)
		VALUES ($1, $2, $3::timestamptz, $3::timestamptz, $4::boolean, $5, $6, $7)
		ON CONFLICT (user_id, network) DO UPDATE SET
			located = CASE WHEN $4 AND $3 >= networks_seen.last_seen THEN true ELSE networks_seen.located END,
			lat     = CASE WHEN $4 AND $3 >= networks_seen.last_seen THEN $5 ELSE networks_seen.lat END,
			lon     = CASE WHEN $4 AND $3 >= networks_seen.last_seen THEN $6 ELSE networks_seen.lon END,
			country = CASE WHEN $4 AND $3 >= networks_seen.last_seen THEN $7 ELSE networks_seen.country END,
			last_seen = greatest(networks_seen.last_seen, $3)`,
		userID, network, ts(at), located, lat, lon, country)
	return dbError("record network", err)
}

// FindNetwork returns the user's sighting of network, or ENOTFOUND.
func (s *Store) FindNetwork(ctx context.Context, userID, network string) (*airlock.NetworkSighting, error) {
	n, err := scanNetwork(s.pool.QueryRow(ctx, `SELECT `+networkColumns+` FROM networks_seen
		WHERE user_id = $1 AND network = $2`, userID, network))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("network sighting")
	} else if err != nil {
		return nil, dbError("find network", err)
	}
	return n, nil
}

// LatestNetwork returns the user's most recently seen network (ties broken
// by network), or ENOTFOUND.
func (s *Store) LatestNetwork(ctx context.Context, userID string) (*airlock.NetworkSighting, error) {
	n, err := scanNetwork(s.pool.QueryRow(ctx, `SELECT `+networkColumns+` FROM networks_seen
		WHERE user_id = $1 ORDER BY last_seen DESC NULLS LAST, network LIMIT 1`, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("network sighting")
	} else if err != nil {
		return nil, dbError("latest network", err)
	}
	return n, nil
}

// DeleteNetworksBefore removes sightings last seen before before.
func (s *Store) DeleteNetworksBefore(ctx context.Context, before time.Time) (int, error) {
	return s.deleteCount(ctx, "delete old networks",
		`DELETE FROM networks_seen WHERE last_seen < $1 OR last_seen IS NULL`, before)
}

// RecordRiskEvent counts one event of kind for userID at at.
func (s *Store) RecordRiskEvent(ctx context.Context, userID, kind string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO risk_events (user_id, kind, at) VALUES ($1, $2, $3)`, userID, kind, ts(at))
	return dbError("record risk event", err)
}

// CountRiskEvents counts the user's events of kind at or after since.
func (s *Store) CountRiskEvents(ctx context.Context, userID, kind string, since time.Time) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM risk_events WHERE user_id = $1 AND kind = $2
		AND coalesce(at, '-infinity'::timestamptz) >= coalesce($3, '-infinity'::timestamptz)`,
		userID, kind, ts(since)).Scan(&n)
	if err != nil {
		return 0, dbError("count risk events", err)
	}
	return n, nil
}

// DeleteRiskEventsBefore removes events before before.
func (s *Store) DeleteRiskEventsBefore(ctx context.Context, before time.Time) (int, error) {
	return s.deleteCount(ctx, "delete old risk events", `DELETE FROM risk_events WHERE at < $1 OR at IS NULL`, before)
}

// HasEarlierSession reports whether userID had a session, ended or not, on
// deviceID created before before.
func (s *Store) HasEarlierSession(ctx context.Context, userID, deviceID string, before time.Time) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sessions WHERE user_id = $1 AND device_id = $2
		AND coalesce(created_at, '-infinity'::timestamptz) < $3)`, userID, deviceID, before).Scan(&ok)
	if err != nil {
		return false, dbError("find earlier session", err)
	}
	return ok, nil
}

func (s *Store) deleteCount(ctx context.Context, op, query string, args ...any) (int, error) {
	tag, err := s.pool.Exec(ctx, query, args...)
	if err != nil {
		return 0, dbError(op, err)
	}
	return int(tag.RowsAffected()), nil
}

func scanNetwork(row pgx.Row) (*airlock.NetworkSighting, error) {
	var (
		n       airlock.NetworkSighting
		located bool
		loc     airlock.GeoPoint
	)
	if err := row.Scan(&n.UserID, &n.Network, tsp(&n.FirstSeen), tsp(&n.LastSeen), &located, &loc.Lat, &loc.Lon,
		&loc.Country); err != nil {
		return nil, err
	}
	if located {
		n.Location = &loc
	}
	return &n, nil
}
