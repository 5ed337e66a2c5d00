package postgres

import (
	"context"
	"errors"
	"time"

	"airlock"

	"github.com/jackc/pgx/v5"
)

const credentialColumns = `id, user_id, device_id, name, aaguid, attestation_format, attestation_type,
	attestation_trusted, public_key, algorithm, transports, backup_eligible, backup_state, sign_count,
	tier_cap, created_at, last_used_at, revoked_at`

// CreateCredential inserts c. A credential id registered before, to any
// user, is ECONFLICT; an empty id is EINVALID. It does not check that the
// user or device exists.
func (s *Store) CreateCredential(ctx context.Context, c *airlock.Credential) error {
	if len(c.ID) == 0 {
		return airlock.Errorf(airlock.EINVALID, "postgres: empty credential id")
	}
	_, err := s.pool.Exec(ctx, insertCredential, credentialArgs(c)...)
	return dbError("create credential", err)
}

const insertCredential = `INSERT INTO credentials (` + credentialColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`

func credentialArgs(c *airlock.Credential) []any {
	return []any{c.ID, c.UserID, c.DeviceID, c.Name, c.AAGUID, c.AttestationFormat, c.AttestationType,
		c.AttestationTrusted, blob(c.PublicKey), c.Algorithm, strs(c.Transports),
		c.BackupEligible, c.BackupState, int64(c.SignCount), int64(c.TierCap),
		ts(c.CreatedAt), ts(c.LastUsedAt), ts(c.RevokedAt)}
}

// EnrolCredential marks enrolment token tokenID used at at and inserts c,
// in one transaction: a token already used is ECONFLICT, a duplicate
// credential id ECONFLICT, a missing token ENOTFOUND, an empty id or a zero
// at EINVALID; on any error nothing is written. Of concurrent calls on one
// token, in any replica, the token's row lock lets exactly one through. It
// does not check the token's expiry, user or device: the caller does.
func (s *Store) EnrolCredential(ctx context.Context, tokenID string, c *airlock.Credential, at time.Time) error {
	if len(c.ID) == 0 {
		return airlock.Errorf(airlock.EINVALID, "postgres: empty credential id")
	}
	if at.IsZero() {
		return airlock.Errorf(airlock.EINVALID, "postgres: zero token use time")
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		if err := useToken(ctx, tx, tokenID, at); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, insertCredential, credentialArgs(c)...)
		return dbError("create credential", err)
	})
}

// FindCredentialByID returns the credential with id, revoked or not, or
// ENOTFOUND.
func (s *Store) FindCredentialByID(ctx context.Context, id []byte) (*airlock.Credential, error) {
	if len(id) == 0 {
		return nil, notFound("credential")
	}
	c, err := scanCredential(s.pool.QueryRow(ctx, `SELECT `+credentialColumns+` FROM credentials WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
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
	rows, err := s.pool.Query(ctx, `SELECT `+credentialColumns+` FROM credentials
		WHERE user_id = $1 ORDER BY created_at NULLS FIRST, ord`, userID)
	return collect(rows, err, "list credentials", scanCredential)
}

// UpdateCredentialUse records a successful assertion — the new sign count,
// backup state and last-used time — provided the credential is not revoked
// and its stored sign count is still oldCount: one conditional UPDATE, so
// that of two logins racing on one count, in any replica, one wins.
// Otherwise nothing is written: a missing credential is ENOTFOUND, a
// revoked one or a changed count ECONFLICT. It does not check that the
// count grew: the caller does.
func (s *Store) UpdateCredentialUse(ctx context.Context, id []byte, oldCount, newCount uint32, backupState bool, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE credentials SET sign_count = $1, backup_state = $2, last_used_at = $3
		WHERE id = $4 AND revoked_at IS NULL AND sign_count = $5`,
		int64(newCount), backupState, ts(at), id, int64(oldCount))
	if err != nil {
		return dbError("update credential", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM credentials WHERE id = $1)`, id).Scan(&exists); err != nil {
		return dbError("update credential", err)
	}
	if !exists {
		return notFound("credential")
	}
	return airlock.Errorf(airlock.ECONFLICT, "postgres: credential revoked or used concurrently")
}

// RevokeCredential sets RevokedAt to at; revoking a revoked credential keeps
// the first time and is not an error. A missing credential is ENOTFOUND and
// a zero at is EINVALID (it would mean "not revoked").
func (s *Store) RevokeCredential(ctx context.Context, id []byte, at time.Time) error {
	if at.IsZero() {
		return airlock.Errorf(airlock.EINVALID, "postgres: zero revocation time")
	}
	tag, err := s.pool.Exec(ctx, `UPDATE credentials SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2`, at, id)
	if err != nil {
		return dbError("revoke credential", err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("credential")
	}
	return nil
}

func scanCredential(row pgx.Row) (*airlock.Credential, error) {
	var (
		c                  airlock.Credential
		signCount, tierCap int64
	)
	if err := row.Scan(&c.ID, &c.UserID, &c.DeviceID, &c.Name, &c.AAGUID, &c.AttestationFormat,
		&c.AttestationType, &c.AttestationTrusted, &c.PublicKey, &c.Algorithm, &c.Transports, &c.BackupEligible,
		&c.BackupState, &signCount, &tierCap, tsp(&c.CreatedAt), tsp(&c.LastUsedAt), tsp(&c.RevokedAt)); err != nil {
		return nil, err
	}
	c.PublicKey = nonEmpty(c.PublicKey)
	c.SignCount = uint32(signCount)
	c.TierCap = airlock.Tier(tierCap)
	c.Transports = nonNil(c.Transports)
	return &c, nil
}
