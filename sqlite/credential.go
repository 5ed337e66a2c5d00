package sqlite

import (
	"context"
	"database/sql"
	"time"

	"airlock"
)

const credentialColumns = `id, user_id, device_id, name, aaguid, attestation_format, attestation_type,
	attestation_trusted, public_key, algorithm, transports, backup_eligible, backup_state, sign_count,
	tier_cap, created_at, last_used_at, revoked_at`

// CreateCredential inserts c. A credential id registered before, to any
// user, is ECONFLICT; an empty id is EINVALID. It does not check that the
// user or device exists.
func (s *Store) CreateCredential(ctx context.Context, c *airlock.Credential) error {
	if len(c.ID) == 0 {
		return airlock.Errorf(airlock.EINVALID, "sqlite: empty credential id")
	}
	return s.write(ctx, func(tx *sql.Tx) error { return insertCredential(ctx, tx, c) })
}

func insertCredential(ctx context.Context, tx *sql.Tx, c *airlock.Credential) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO credentials (`+credentialColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.UserID, c.DeviceID, c.Name, c.AAGUID, c.AttestationFormat, c.AttestationType,
		boolInt(c.AttestationTrusted), blob(c.PublicKey), c.Algorithm, encodeStrings(c.Transports),
		boolInt(c.BackupEligible), boolInt(c.BackupState), int64(c.SignCount), int64(c.TierCap),
		micros(c.CreatedAt), micros(c.LastUsedAt), micros(c.RevokedAt))
	return dbError("create credential", err)
}

// EnrolCredential marks enrolment token tokenID used at at and inserts c,
// in one transaction: a token already used is ECONFLICT, a duplicate
// credential id ECONFLICT, a missing token ENOTFOUND, an empty id or a zero
// at EINVALID; on any error nothing is written. It does not check the
// token's expiry, user or device: the caller does.
func (s *Store) EnrolCredential(ctx context.Context, tokenID string, c *airlock.Credential, at time.Time) error {
	if len(c.ID) == 0 {
		return airlock.Errorf(airlock.EINVALID, "sqlite: empty credential id")
	}
	if at.IsZero() {
		return airlock.Errorf(airlock.EINVALID, "sqlite: zero token use time")
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := useToken(ctx, tx, tokenID, at); err != nil {
			return err
		}
		return insertCredential(ctx, tx, c)
	})
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

// UpdateCredentialUse records a successful assertion — the new sign count,
// backup state and last-used time — provided the credential is not revoked
// and its stored sign count is still oldCount (a compare-and-set, so that of
// two logins racing on one count, in any process, one wins). Otherwise
// nothing is written: a missing credential is ENOTFOUND, a revoked one or a
// changed count ECONFLICT. It does not check that the count grew: the
// caller does.
func (s *Store) UpdateCredentialUse(ctx context.Context, id []byte, oldCount, newCount uint32, backupState bool, at time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE credentials SET sign_count = ?, backup_state = ?, last_used_at = ?
			WHERE id = ? AND revoked_at = 0 AND sign_count = ?`,
			int64(newCount), boolInt(backupState), micros(at), id, int64(oldCount))
		if err != nil {
			return dbError("update credential", err)
		}
		if n, err := rowsAffected(res, "update credential"); err != nil {
			return err
		} else if n == 1 {
			return nil
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM credentials WHERE id = ?`, id).Scan(&n); err != nil {
			return dbError("update credential", err)
		}
		if n == 0 {
			return notFound("credential")
		}
		return airlock.Errorf(airlock.ECONFLICT, "sqlite: credential revoked or used concurrently")
	})
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
		&c.AttestationType, &c.AttestationTrusted, &c.PublicKey, &c.Algorithm, &transports, &c.BackupEligible, &c.BackupState,
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
