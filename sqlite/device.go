package sqlite

import (
	"context"
	"database/sql"

	"airlock"
)

const deviceColumns = `id, name, owner, kind, trust, managed, disk_encrypted, os_version, patch_level,
	edr_running, screen_lock, posture_reported_at, posture_source, created_at, updated_at, version`

// CreateDevice inserts d with the Version it has (normally 0); a device with
// the same ID is ECONFLICT.
func (s *Store) CreateDevice(ctx context.Context, d *airlock.Device) error {
	p := &d.Posture
	_, err := s.w.ExecContext(ctx, `INSERT INTO devices (`+deviceColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.Name, d.Owner, string(d.Kind), string(d.Trust), boolInt(p.Managed), boolInt(p.DiskEncrypted),
		p.OSVersion, p.PatchLevel, boolInt(p.EDRRunning), boolInt(p.ScreenLock), micros(p.ReportedAt), p.Source,
		micros(d.CreatedAt), micros(d.UpdatedAt), d.Version)
	return dbError("create device", err)
}

// FindDeviceByID returns the device with id, or ENOTFOUND.
func (s *Store) FindDeviceByID(ctx context.Context, id string) (*airlock.Device, error) {
	d, err := scanDevice(s.r.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id = ?`, id))
	if err == sql.ErrNoRows {
		return nil, notFound("device")
	} else if err != nil {
		return nil, dbError("find device", err)
	}
	return d, nil
}

// ListDevices returns every device ordered by name, then ID.
func (s *Store) ListDevices(ctx context.Context) ([]*airlock.Device, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+deviceColumns+` FROM devices ORDER BY name, id`)
	if err != nil {
		return nil, dbError("list devices", err)
	}
	defer rows.Close()
	devices := []*airlock.Device{}
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, dbError("list devices", err)
		}
		devices = append(devices, d)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list devices", err)
	}
	return devices, nil
}

// UpdateDevice replaces Name, Owner, Kind, Posture, Trust and UpdatedAt of
// the device with d.ID, provided its stored version equals d.Version; it then
// increments both the stored version and d.Version. Other fields of d are
// ignored. A missing device is ENOTFOUND; a version mismatch is ECONFLICT,
// and then nothing is written and d is unchanged.
func (s *Store) UpdateDevice(ctx context.Context, d *airlock.Device) error {
	p := &d.Posture
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE devices SET name = ?, owner = ?, kind = ?, trust = ?,
			managed = ?, disk_encrypted = ?, os_version = ?, patch_level = ?, edr_running = ?, screen_lock = ?,
			posture_reported_at = ?, posture_source = ?, updated_at = ?, version = version + 1
			WHERE id = ? AND version = ?`,
			d.Name, d.Owner, string(d.Kind), string(d.Trust), boolInt(p.Managed), boolInt(p.DiskEncrypted),
			p.OSVersion, p.PatchLevel, boolInt(p.EDRRunning), boolInt(p.ScreenLock), micros(p.ReportedAt), p.Source,
			micros(d.UpdatedAt), d.ID, d.Version)
		if err != nil {
			return dbError("update device", err)
		}
		return versionedUpdateResult(ctx, tx, res, "device", "devices", d.ID)
	})
	if err != nil {
		return err
	}
	d.Version++
	return nil
}

func scanDevice(row scanner) (*airlock.Device, error) {
	var (
		d                          airlock.Device
		kind, trust                string
		reported, created, updated int64
	)
	p := &d.Posture
	if err := row.Scan(&d.ID, &d.Name, &d.Owner, &kind, &trust, &p.Managed, &p.DiskEncrypted, &p.OSVersion,
		&p.PatchLevel, &p.EDRRunning, &p.ScreenLock, &reported, &p.Source, &created, &updated, &d.Version); err != nil {
		return nil, err
	}
	d.Kind = airlock.DeviceKind(kind)
	d.Trust = airlock.TrustState(trust)
	p.ReportedAt = fromMicros(reported)
	d.CreatedAt = fromMicros(created)
	d.UpdatedAt = fromMicros(updated)
	return &d, nil
}
