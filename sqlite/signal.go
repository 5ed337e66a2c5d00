package sqlite

import (
	"context"
	"database/sql"
	"time"

	"airlock"
)

const networkColumns = `user_id, network, first_seen, last_seen, located, lat, lon, country`

// SeeNetwork creates or advances the user's sighting of network in one
// upsert: LastSeen only moves forward, and a location replaces the stored
// one unless at is older than the stored LastSeen.
func (s *Store) SeeNetwork(ctx context.Context, userID, network string, loc *airlock.GeoPoint, at time.Time) error {
	var (
		located  int
		lat, lon float64
		country  string
	)
	if loc != nil {
		located, lat, lon, country = 1, loc.Lat, loc.Lon, loc.Country
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO networks_seen (`+networkColumns+`) VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7)
		ON CONFLICT (user_id, network) DO UPDATE SET
			located = CASE WHEN ?4 = 1 AND ?3 >= last_seen THEN 1 ELSE located END,
			lat     = CASE WHEN ?4 = 1 AND ?3 >= last_seen THEN ?5 ELSE lat END,
			lon     = CASE WHEN ?4 = 1 AND ?3 >= last_seen THEN ?6 ELSE lon END,
			country = CASE WHEN ?4 = 1 AND ?3 >= last_seen THEN ?7 ELSE country END,
			last_seen = max(last_seen, ?3)`,
		userID, network, micros(at), located, lat, lon, country)
	return dbError("record network", err)
}

// FindNetwork returns the user's sighting of network, or ENOTFOUND.
func (s *Store) FindNetwork(ctx context.Context, userID, network string) (*airlock.NetworkSighting, error) {
	n, err := scanNetwork(s.r.QueryRowContext(ctx, `SELECT `+networkColumns+` FROM networks_seen
		WHERE user_id = ? AND network = ?`, userID, network))
	if err == sql.ErrNoRows {
		return nil, notFound("network sighting")
	} else if err != nil {
		return nil, dbError("find network", err)
	}
	return n, nil
}

// LatestNetwork returns the user's most recently seen network, or ENOTFOUND.
func (s *Store) LatestNetwork(ctx context.Context, userID string) (*airlock.NetworkSighting, error) {
	n, err := scanNetwork(s.r.QueryRowContext(ctx, `SELECT `+networkColumns+` FROM networks_seen
		WHERE user_id = ? ORDER BY last_seen DESC, network LIMIT 1`, userID))
	if err == sql.ErrNoRows {
		return nil, notFound("network sighting")
	} else if err != nil {
		return nil, dbError("latest network", err)
	}
	return n, nil
}

// DeleteNetworksBefore removes sightings last seen before before.
func (s *Store) DeleteNetworksBefore(ctx context.Context, before time.Time) (int, error) {
	return s.deleteCount(ctx, "delete old networks", `DELETE FROM networks_seen WHERE last_seen < ?`, micros(before))
}

// RecordRiskEvent counts one event of kind for userID at at.
func (s *Store) RecordRiskEvent(ctx context.Context, userID, kind string, at time.Time) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO risk_events (user_id, kind, at) VALUES (?, ?, ?)`, userID, kind, micros(at))
	return dbError("record risk event", err)
}

// CountRiskEvents counts the user's events of kind at or after since.
func (s *Store) CountRiskEvents(ctx context.Context, userID, kind string, since time.Time) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM risk_events WHERE user_id = ? AND kind = ? AND at >= ?`,
		userID, kind, micros(since)).Scan(&n)
	if err != nil {
		return 0, dbError("count risk events", err)
	}
	return n, nil
}

// DeleteRiskEventsBefore removes events before before.
func (s *Store) DeleteRiskEventsBefore(ctx context.Context, before time.Time) (int, error) {
	return s.deleteCount(ctx, "delete old risk events", `DELETE FROM risk_events WHERE at < ?`, micros(before))
}

// HasEarlierSession reports whether userID had a session on deviceID
// created before before.
func (s *Store) HasEarlierSession(ctx context.Context, userID, deviceID string, before time.Time) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sessions WHERE user_id = ? AND device_id = ? AND created_at < ?)`,
		userID, deviceID, micros(before)).Scan(&n)
	if err != nil {
		return false, dbError("find earlier session", err)
	}
	return n == 1, nil
}

func (s *Store) deleteCount(ctx context.Context, op, query string, args ...any) (int, error) {
	res, err := s.w.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, dbError(op, err)
	}
	n, err := rowsAffected(res, op)
	return int(n), err
}

func scanNetwork(row scanner) (*airlock.NetworkSighting, error) {
	var (
		n           airlock.NetworkSighting
		first, last int64
		located     int
		loc         airlock.GeoPoint
	)
	if err := row.Scan(&n.UserID, &n.Network, &first, &last, &located, &loc.Lat, &loc.Lon, &loc.Country); err != nil {
		return nil, err
	}
	n.FirstSeen, n.LastSeen = fromMicros(first), fromMicros(last)
	if located == 1 {
		n.Location = &loc
	}
	return &n, nil
}
