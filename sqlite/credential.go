package sqlite

import (
	"context"
	"database/sql"
	"time"

	"airlock"
)

const credentialColumns = `id, user_id, device_id, name, aaguid, attestation_format, attestation_type,
	public_key, algorithm, transports, backup_eligible, backup_state, sign_count, tier_cap, created_at,
	last_used_at, revoked_at`

// CreateCredential inserts c. A credential id registered before, to any
// user, is ECONFLICT; an empty id is EINVALID. It does not check that the
// user or device exists.
func (s *Store) CreateCredential(ctx context.Context, c *airlock.Credential) error {
	if len(c.ID) == 0 {
		return airlock.Errorf(airlock.EINVALID, "sqlite: empty credential id")
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO credentials (`+credentialColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.UserID, c.DeviceID, c.Name, c.AAGUID, c.AttestationFormat, c.AttestationType,
		blob(c.PublicKey), c.Algorithm, encodeStrings(c.Transports), boolInt(c.BackupEligible),
		boolInt(c.BackupState), int64(c.SignCount), int64(c.TierCap), micros(c.CreatedAt),
		micros(c.LastUsedAt), micros(c.RevokedAt))
	return dbError("create credential", err)
}

// FindCredentialByID returns the credential with id, revoked or not, or
// ENOTFOUND.
func (s *Store) FindCredentialByID(ctx context.Context, id []byte) (*airlock.Credential, error) {
	if len(id) == 0 {
		return nil, notFound("credential")
	}
	c, err := scanCredential(s.r.QueryRowContext(ctx, `SELECT `+credentialColumns+` FROM credentials WHERE id = ?`, id))
	if err == sql.ErrNoRows {
		return nil, notFound("credential")
	} else if err != nil {
		return nil, dbError("find credential", err)
	}
	return c, nil
}

// ListCredentialsByUser returns the user's credentials, revoked ones
// included, oldest first (by CreatedAt, then insertion order). An unknown
// user has none.
func (s *Store) ListCredentialsByUser(ctx context.Context, userID string) ([]*airlock.Credential, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+credentialColumns+` FROM credentials
		WHERE user_id = ? ORDER BY created_at, rowid`, userID)
	if err != nil {
		return nil, dbError("list credentials", err)
	}
	defer rows.Close()
	creds := []*airlock.Credential{}
	for rows.Next() {
		c, err := scanCredential(rows)
		if err != nil {
			return nil, dbError("list credentials", err)
		}
		creds = append(creds, c)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list credentials", err)
	}
	return creds, nil
}

// UpdateCredentialUse records a successful assertion: the new sign count,
// backup state and last-used time. It does not check that the count grew
// or that the credential is unrevoked: the caller does. A missing
// credential is ENOTFOUND.
func (s *Store) UpdateCredentialUse(ctx context.Context, id []byte, signCount uint32, backupState bool, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE credentials SET sign_count = ?, backup_state = ?, last_used_at = ?
		WHERE id = ?`, int64(signCount), boolInt(backupState), micros(at), id)
	if err != nil {
		return dbError("update credential", err)
	}
	if n, err := rowsAffected(res, "update credential"); err != nil {
		return err
	} else if n == 0 {
		return notFound("credential")
	}
	return nil
}

// RevokeCredential sets RevokedAt to at; revoking a revoked credential keeps
// the first time and is not an error. A missing credential is ENOTFOUND and
// a zero at is EINVALID (it would mean "not revoked").
func (s *Store) RevokeCredential(ctx context.Context, id []byte, at time.Time) error {
	if at.IsZero() {
		return airlock.Errorf(airlock.EINVALID, "sqlite: zero revocation time")
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		var revoked int64
		err := tx.QueryRowContext(ctx, `SELECT revoked_at FROM credentials WHERE id = ?`, id).Scan(&revoked)
		if err == sql.ErrNoRows {
			return notFound("credential")
		} else if err != nil {
			return dbError("revoke credential", err)
		}
		if revoked != 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE credentials SET revoked_at = ? WHERE id = ?`, micros(at), id)
		return dbError("revoke credential", err)
	})
}

func scanCredential(row scanner) (*airlock.Credential, error) {
	var (
		c                      airlock.Credential
		transports             string
		signCount, tierCap     int64
		created, used, revoked int64
	)
	if err := row.Scan(&c.ID, &c.UserID, &c.DeviceID, &c.Name, &c.AAGUID, &c.AttestationFormat,
		&c.AttestationType, &c.PublicKey, &c.Algorithm, &transports, &c.BackupEligible, &c.BackupState,
		&signCount, &tierCap, &created, &used, &revoked); err != nil {
		return nil, err
	}
	c.PublicKey = nonEmpty(c.PublicKey)
	c.SignCount = uint32(signCount)
	c.TierCap = airlock.Tier(tierCap)
	c.CreatedAt = fromMicros(created)
	c.LastUsedAt = fromMicros(used)
	c.RevokedAt = fromMicros(revoked)
	var err error
	if c.Transports, err = decodeStrings(transports); err != nil {
		return nil, err
	}
	return &c, nil
}
