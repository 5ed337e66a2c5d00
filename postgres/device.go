package postgres

import (
	"context"
	"errors"

	"airlock"

	"github.com/jackc/pgx/v5"
)

const deviceColumns = `id, name, owner, kind, trust, managed, disk_encrypted, os_version, patch_level,
	edr_running, screen_lock, posture_reported_at, posture_source, created_at, updated_at, version`

// CreateDevice inserts d with the Version it has (normally 0); a device with
// the same ID is ECONFLICT.
func (s *Store) CreateDevice(ctx context.Context, d *airlock.Device) error {
	p := &d.Posture
	_, err := s.pool.Exec(ctx, `INSERT INTO devices (`+deviceColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		d.ID, d.Name, d.Owner, string(d.Kind), string(d.Trust), p.Managed, p.DiskEncrypted,
		p.OSVersion, p.PatchLevel, p.EDRRunning, p.ScreenLock, ts(p.ReportedAt), p.Source,
		ts(d.CreatedAt), ts(d.UpdatedAt), d.Version)
	return dbError("create device", err)
}

// FindDeviceByID returns the device with id, or ENOTFOUND.
func (s *Store) FindDeviceByID(ctx context.Context, id string) (*airlock.Device, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("device")
	} else if err != nil {
		return nil, dbError("find device", err)
	}
	return d, nil
}

// ListDevices returns every device ordered by name, then ID (byte order).
func (s *Store) ListDevices(ctx context.Context) ([]*airlock.Device, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deviceColumns+` FROM devices ORDER BY name, id`)
	return collect(rows, err, "list devices", scanDevice)
}

// UpdateDevice replaces Name, Owner, Kind, Posture, Trust and UpdatedAt of
// the device with d.ID, provided its stored version equals d.Version; it then
// increments both the stored version and d.Version. Other fields of d are
// ignored. A missing device is ENOTFOUND; a version mismatch is ECONFLICT,
// and then nothing is written and d is unchanged.
func (s *Store) UpdateDevice(ctx context.Context, d *airlock.Device) error {
	p := &d.Posture
	tag, err := s.pool.Exec(ctx, `UPDATE devices SET name = $1, owner = $2, kind = $3, trust = $4,
		managed = $5, disk_encrypted = $6, os_version = $7, patch_level = $8, edr_running = $9, screen_lock = $10,
		posture_reported_at = $11, posture_source = $12, updated_at = $13, version = version + 1
		WHERE id = $14 AND version = $15`,
		d.Name, d.Owner, string(d.Kind), string(d.Trust), p.Managed, p.DiskEncrypted,
		p.OSVersion, p.PatchLevel, p.EDRRunning, p.ScreenLock, ts(p.ReportedAt), p.Source,
		ts(d.UpdatedAt), d.ID, d.Version)
	if err := s.versionedUpdateResult(ctx, tag, err, "device", "devices", d.ID); err != nil {
		return err
	}
	d.Version++
	return nil
}

func scanDevice(row pgx.Row) (*airlock.Device, error) {
	var (
		d           airlock.Device
		kind, trust string
	)
	p := &d.Posture
	if err := row.Scan(&d.ID, &d.Name, &d.Owner, &kind, &trust, &p.Managed, &p.DiskEncrypted, &p.OSVersion,
		&p.PatchLevel, &p.EDRRunning, &p.ScreenLock, tsp(&p.ReportedAt), &p.Source, tsp(&d.CreatedAt),
		tsp(&d.UpdatedAt), &d.Version); err != nil {
		return nil, err
	}
	d.Kind = airlock.DeviceKind(kind)
	d.Trust = airlock.TrustState(trust)
	return &d, nil
}
