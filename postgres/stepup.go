package postgres

import (
	"context"
	"errors"
	"time"

	"airlock"

	"github.com/jackc/pgx/v5"
)

const stepUpColumns = `id, session_id, user_id, device_id, action, resource, params, params_digest, client, decision_id,
	digest, acr, max_age, reason, ip, created_at, expires_at, proof_hash, credential_id, completed_at, proof_expires_at, used_at`

// CreateStepUp inserts t; a transaction with the same ID (or a proof hash
// already stored) is ECONFLICT.
func (s *Store) CreateStepUp(ctx context.Context, t *airlock.StepUp) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO stepups (`+stepUpColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)`,
		t.ID, t.SessionID, t.UserID, t.DeviceID, t.Action, t.Resource, blob(t.Params), blob(t.ParamsDigest), t.Client,
		t.DecisionID, blob(t.Digest), t.ACR, t.MaxAge, t.Reason, t.IP, ts(t.CreatedAt), ts(t.ExpiresAt),
		blob(t.ProofHash), blob(t.CredentialID), ts(t.CompletedAt), ts(t.ProofExpiresAt), ts(t.UsedAt))
	return dbError("create step-up", err)
}

// FindStepUpByID returns the transaction with id, or ENOTFOUND.
func (s *Store) FindStepUpByID(ctx context.Context, id string) (*airlock.StepUp, error) {
	t, err := scanStepUp(s.pool.QueryRow(ctx, `SELECT `+stepUpColumns+` FROM stepups WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("step-up transaction")
	} else if err != nil {
		return nil, dbError("find step-up", err)
	}
	return t, nil
}

// CompleteStepUp stores the proof hash, credential and times of a finished
// ceremony, once, in one conditional UPDATE: a completed transaction is
// ECONFLICT and stays as it was (of racing replicas one wins), a missing
// one ENOTFOUND, a proof hash already stored on any transaction ECONFLICT.
// An empty proof hash or a zero at is EINVALID.
func (s *Store) CompleteStepUp(ctx context.Context, id string, proofHash, credentialID []byte, at, proofExpiresAt time.Time) error {
	if len(proofHash) == 0 {
		return airlock.Errorf(airlock.EINVALID, "postgres: a step-up proof hash is required")
	}
	if at.IsZero() {
		return airlock.Errorf(airlock.EINVALID, "postgres: zero step-up completion time")
	}
	tag, err := s.pool.Exec(ctx, `UPDATE stepups SET proof_hash = $1, credential_id = $2, completed_at = $3,
		proof_expires_at = $4 WHERE id = $5 AND completed_at IS NULL`,
		proofHash, blob(credentialID), at, ts(proofExpiresAt), id)
	if err != nil {
		return dbError("complete step-up", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM stepups WHERE id = $1)`, id).Scan(&exists); err != nil {
		return dbError("complete step-up", err)
	}
	if !exists {
		return notFound("step-up transaction")
	}
	return airlock.Errorf(airlock.ECONFLICT, "postgres: step-up already completed")
}

// ConsumeStepUpProof marks the proof used in one conditional UPDATE …
// RETURNING, so of concurrent callers, in any replica, exactly one gets the
// transaction: the row lock makes the others wait and then find it used
// (ECONFLICT). An unknown or empty hash is ENOTFOUND; a zero at is EINVALID
// (it would leave the proof unused). An expired proof is consumed and
// returned too: the caller checks ProofExpiresAt.
func (s *Store) ConsumeStepUpProof(ctx context.Context, proofHash []byte, at time.Time) (*airlock.StepUp, error) {
	if len(proofHash) == 0 {
		return nil, notFound("step-up proof")
	}
	if at.IsZero() {
		return nil, airlock.Errorf(airlock.EINVALID, "postgres: zero step-up proof use time")
	}
	t, err := scanStepUp(s.pool.QueryRow(ctx, `UPDATE stepups SET used_at = $1
		WHERE proof_hash = $2 AND used_at IS NULL RETURNING `+stepUpColumns, at, proofHash))
	if err == nil {
		return t, nil
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return nil, dbError("consume step-up proof", err)
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM stepups WHERE proof_hash = $1)`, proofHash).Scan(&exists); err != nil {
		return nil, dbError("consume step-up proof", err)
	}
	if !exists {
		return nil, notFound("step-up proof")
	}
	return nil, airlock.Errorf(airlock.ECONFLICT, "postgres: step-up proof already used")
}

// DeleteExpiredStepUps removes the transactions whose ceremony deadline and
// proof expiry (a zero one counting as expired) are both before now.
func (s *Store) DeleteExpiredStepUps(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM stepups WHERE greatest(coalesce(expires_at, '-infinity'::timestamptz),
		coalesce(proof_expires_at, '-infinity'::timestamptz)) < $1`, now)
	if err != nil {
		return 0, dbError("delete expired step-ups", err)
	}
	return int(tag.RowsAffected()), nil
}

func scanStepUp(row pgx.Row) (*airlock.StepUp, error) {
	var t airlock.StepUp
	if err := row.Scan(&t.ID, &t.SessionID, &t.UserID, &t.DeviceID, &t.Action, &t.Resource, &t.Params, &t.ParamsDigest,
		&t.Client, &t.DecisionID, &t.Digest, &t.ACR, &t.MaxAge, &t.Reason, &t.IP, tsp(&t.CreatedAt), tsp(&t.ExpiresAt),
		&t.ProofHash, &t.CredentialID, tsp(&t.CompletedAt), tsp(&t.ProofExpiresAt), tsp(&t.UsedAt)); err != nil {
		return nil, err
	}
	t.Params, t.ParamsDigest, t.Digest = nonEmpty(t.Params), nonEmpty(t.ParamsDigest), nonEmpty(t.Digest)
	t.ProofHash, t.CredentialID = nonEmpty(t.ProofHash), nonEmpty(t.CredentialID)
	return &t, nil
}
