package sqlite

import (
	"context"
	"database/sql"
	"time"

	"airlock"
)

const stepUpColumns = `id, session_id, user_id, device_id, action, resource, params, params_digest, client, decision_id,
	digest, acr, max_age, reason, ip, created_at, expires_at, proof_hash, credential_id, completed_at, proof_expires_at, used_at`

// CreateStepUp inserts t; a transaction with the same ID (or a proof hash
// already stored) is ECONFLICT.
func (s *Store) CreateStepUp(ctx context.Context, t *airlock.StepUp) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO stepups (`+stepUpColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.SessionID, t.UserID, t.DeviceID, t.Action, t.Resource, blob(t.Params), blob(t.ParamsDigest), t.Client,
		t.DecisionID, blob(t.Digest), t.ACR, t.MaxAge, t.Reason, t.IP, micros(t.CreatedAt), micros(t.ExpiresAt),
		blob(t.ProofHash), blob(t.CredentialID), micros(t.CompletedAt), micros(t.ProofExpiresAt), micros(t.UsedAt))
	return dbError("create step-up", err)
}

// FindStepUpByID returns the transaction with id, or ENOTFOUND.
func (s *Store) FindStepUpByID(ctx context.Context, id string) (*airlock.StepUp, error) {
	t, err := scanStepUp(s.r.QueryRowContext(ctx, `SELECT `+stepUpColumns+` FROM stepups WHERE id = ?`, id))
	if err == sql.ErrNoRows {
		return nil, notFound("step-up transaction")
	} else if err != nil {
		return nil, dbError("find step-up", err)
	}
	return t, nil
}

// CompleteStepUp stores the proof hash, credential and times of a finished
// ceremony, once: a completed transaction is ECONFLICT and stays as it was.
func (s *Store) CompleteStepUp(ctx context.Context, id string, proofHash, credentialID []byte, at, proofExpiresAt time.Time) error {
	if len(proofHash) == 0 {
		return airlock.Errorf(airlock.EINVALID, "sqlite: a step-up proof hash is required")
	}
	if at.IsZero() {
		// Stored as 0, a zero time would read back as "not completed".
		return airlock.Errorf(airlock.EINVALID, "sqlite: zero step-up completion time")
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		var completed int64
		err := tx.QueryRowContext(ctx, `SELECT completed_at FROM stepups WHERE id = ?`, id).Scan(&completed)
		if err == sql.ErrNoRows {
			return notFound("step-up transaction")
		} else if err != nil {
			return dbError("complete step-up", err)
		}
		if completed != 0 {
			return airlock.Errorf(airlock.ECONFLICT, "sqlite: step-up already completed")
		}
		_, err = tx.ExecContext(ctx, `UPDATE stepups SET proof_hash = ?, credential_id = ?, completed_at = ?, proof_expires_at = ?
			WHERE id = ?`, proofHash, blob(credentialID), micros(at), micros(proofExpiresAt), id)
		return dbError("complete step-up", err)
	})
}

// ConsumeStepUpProof marks the proof used in one conditional UPDATE on the
// single write connection, so of concurrent callers exactly one gets the
// transaction; the others see ECONFLICT.
func (s *Store) ConsumeStepUpProof(ctx context.Context, proofHash []byte, at time.Time) (*airlock.StepUp, error) {
	if len(proofHash) == 0 {
		return nil, notFound("step-up proof")
	}
	if at.IsZero() {
		// Stored as 0, a zero use time would leave the proof reusable.
		return nil, airlock.Errorf(airlock.EINVALID, "sqlite: zero step-up proof use time")
	}
	var t *airlock.StepUp
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = scanStepUp(tx.QueryRowContext(ctx, `UPDATE stepups SET used_at = ?
			WHERE proof_hash = ? AND used_at = 0 RETURNING `+stepUpColumns, micros(at), proofHash))
		if err != sql.ErrNoRows {
			return dbError("consume step-up proof", err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM stepups WHERE proof_hash = ?`, proofHash).Scan(&n); err != nil {
			return dbError("consume step-up proof", err)
		}
		if n == 0 {
			return notFound("step-up proof")
		}
		return airlock.Errorf(airlock.ECONFLICT, "sqlite: step-up proof already used")
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// DeleteExpiredStepUps removes the transactions whose ceremony deadline and
// proof expiry are both before now.
func (s *Store) DeleteExpiredStepUps(ctx context.Context, now time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM stepups WHERE max(expires_at, proof_expires_at) < ?`, micros(now))
	if err != nil {
		return 0, dbError("delete expired step-ups", err)
	}
	n, err := rowsAffected(res, "delete expired step-ups")
	return int(n), err
}

func scanStepUp(row scanner) (*airlock.StepUp, error) {
	var (
		t                                             airlock.StepUp
		created, expires, completed, proofExp, usedAt int64
	)
	if err := row.Scan(&t.ID, &t.SessionID, &t.UserID, &t.DeviceID, &t.Action, &t.Resource, &t.Params, &t.ParamsDigest,
		&t.Client, &t.DecisionID, &t.Digest, &t.ACR, &t.MaxAge, &t.Reason, &t.IP, &created, &expires, &t.ProofHash,
		&t.CredentialID, &completed, &proofExp, &usedAt); err != nil {
		return nil, err
	}
	t.Params, t.ParamsDigest, t.Digest = nonEmpty(t.Params), nonEmpty(t.ParamsDigest), nonEmpty(t.Digest)
	t.ProofHash, t.CredentialID = nonEmpty(t.ProofHash), nonEmpty(t.CredentialID)
	t.CreatedAt, t.ExpiresAt = fromMicros(created), fromMicros(expires)
	t.CompletedAt, t.ProofExpiresAt, t.UsedAt = fromMicros(completed), fromMicros(proofExp), fromMicros(usedAt)
	return &t, nil
}
