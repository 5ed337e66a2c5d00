package postgres

import (
	"context"
	"errors"
	"time"

	"airlock"

	"github.com/jackc/pgx/v5"
)

// Recovery cases, their approvals and break-glass events (migration 0004).

const recoveryCaseColumns = `id, subject_id, opened_by, via, reason, tier, required, status, device_id, secret_hash,
	cool_down_until, enrol_token_id, resolved_at, resolved_by, note, created_at, expires_at, updated_at, version`

const recoveryApprovalColumns = `case_id, approver_id, session_id, device_id, credential_id, verification, challenge, at`

const breakGlassEventColumns = `id, account_id, credential_id, justification, scopes, ip, user_agent, token_hash,
	started_at, ends_at, ended_at, end_reason, alert_ids, alert_delivered, offline, reviewed_at, reviewed_by,
	review_notes`

// Fixed queries, on exactly the expressions of the indexes of migration
// 0004. A zero (NULL) expiry counts as long past, as it does in the SQLite
// store.
const (
	recoveryCasesToExpireQuery = `SELECT ` + recoveryCaseColumns + ` FROM recovery_cases
		WHERE status IN ('pending', 'cooling_down', 'released')
		AND coalesce(expires_at, '-infinity'::timestamptz) <= $1
		ORDER BY coalesce(expires_at, '-infinity'::timestamptz), id LIMIT $2`
	recoveryApprovalsQuery = `SELECT ` + recoveryApprovalColumns + ` FROM recovery_approvals
		WHERE case_id = $1 ORDER BY at NULLS FIRST, ord`
)

// CreateRecoveryCase inserts c; a duplicate ID or SecretHash is ECONFLICT,
// an unknown status or an empty SecretHash EINVALID.
func (s *Store) CreateRecoveryCase(ctx context.Context, c *airlock.RecoveryCase) error {
	if !c.Status.Valid() {
		return airlock.Errorf(airlock.EINVALID, "postgres: recovery case status %q is not valid", c.Status)
	}
	if len(c.SecretHash) == 0 {
		return airlock.Errorf(airlock.EINVALID, "postgres: recovery case without a claim secret hash")
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO recovery_cases (`+recoveryCaseColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
		c.ID, c.SubjectID, c.OpenedBy, c.Via, c.Reason, int64(c.Tier), int64(c.Required), string(c.Status), c.DeviceID,
		c.SecretHash, ts(c.CoolDownUntil), c.EnrolTokenID, ts(c.ResolvedAt), c.ResolvedBy, c.Note, ts(c.CreatedAt),
		ts(c.ExpiresAt), ts(c.UpdatedAt), c.Version)
	return dbError("create recovery case", err)
}

// FindRecoveryCaseByID returns the case with id, or ENOTFOUND.
func (s *Store) FindRecoveryCaseByID(ctx context.Context, id string) (*airlock.RecoveryCase, error) {
	return s.findRecoveryCase(ctx, `id = $1`, id)
}

// FindRecoveryCaseBySecret returns the case whose claim secret hashes to
// hash, or ENOTFOUND; an empty hash matches nothing.
func (s *Store) FindRecoveryCaseBySecret(ctx context.Context, hash []byte) (*airlock.RecoveryCase, error) {
	if len(hash) == 0 {
		return nil, notFound("recovery case")
	}
	return s.findRecoveryCase(ctx, `secret_hash = $1`, hash)
}

func (s *Store) findRecoveryCase(ctx context.Context, cond string, arg any) (*airlock.RecoveryCase, error) {
	c, err := scanRecoveryCase(s.pool.QueryRow(ctx, `SELECT `+recoveryCaseColumns+` FROM recovery_cases WHERE `+cond, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("recovery case")
	} else if err != nil {
		return nil, dbError("find recovery case", err)
	}
	return c, nil
}

// ListRecoveryCases returns at most f.Limit (≤ 0: 100) cases matching f,
// newest CreatedAt first, then by descending ID.
func (s *Store) ListRecoveryCases(ctx context.Context, f airlock.RecoveryCaseFilter) ([]*airlock.RecoveryCase, error) {
	query, args := recoveryCasesQuery(f)
	rows, err := s.pool.Query(ctx, query, args...)
	return collect(rows, err, "list recovery cases", scanRecoveryCase)
}

// recoveryCasesQuery returns ListRecoveryCases' query and arguments.
func recoveryCasesQuery(f airlock.RecoveryCaseFilter) (string, []any) {
	var w where
	if f.SubjectID != "" {
		w.add(`subject_id = $`, f.SubjectID)
	}
	switch len(f.Statuses) {
	case 0:
	case 1:
		w.add(`status = $`, string(f.Statuses[0]))
	default:
		statuses := make([]string, len(f.Statuses))
		for i, st := range f.Statuses {
			statuses[i] = string(st)
		}
		w.conds = append(w.conds, `status = ANY(`+w.arg(statuses)+`)`)
	}
	if f.EnrolTokenID != "" {
		w.add(`enrol_token_id = $`, f.EnrolTokenID)
	}
	if !f.Since.IsZero() {
		w.add(`created_at >= $`, f.Since)
	}
	cond := w.clause()
	limit := w.arg(limitOf(f.Limit))
	return `SELECT ` + recoveryCaseColumns + ` FROM recovery_cases` + cond +
		` ORDER BY created_at DESC NULLS LAST, id DESC LIMIT ` + limit, w.args
}

// UpdateRecoveryCase replaces the mutable fields of the case with c.ID if
// its stored Version is c.Version (else ECONFLICT, nothing written), then
// increments c.Version. The conditional UPDATE takes the row lock: of
// updates racing from one version on any replicas the first commits and
// the others, re-reading the row after it, find another version. A
// pending approval (AddRecoveryApproval holds the row FOR SHARE) commits
// before the update goes ahead. A missing case is ENOTFOUND, an unknown
// status EINVALID.
func (s *Store) UpdateRecoveryCase(ctx context.Context, c *airlock.RecoveryCase) error {
	if !c.Status.Valid() {
		return airlock.Errorf(airlock.EINVALID, "postgres: recovery case status %q is not valid", c.Status)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE recovery_cases SET status = $1, device_id = $2, cool_down_until = $3,
		enrol_token_id = $4, resolved_at = $5, resolved_by = $6, note = $7, expires_at = $8, updated_at = $9,
		version = version + 1 WHERE id = $10 AND version = $11`,
		string(c.Status), c.DeviceID, ts(c.CoolDownUntil), c.EnrolTokenID, ts(c.ResolvedAt), c.ResolvedBy, c.Note,
		ts(c.ExpiresAt), ts(c.UpdatedAt), c.ID, c.Version)
	if err := s.versionedUpdateResult(ctx, tag, err, "recovery case", "recovery_cases", c.ID); err != nil {
		return err
	}
	c.Version++
	return nil
}

// AddRecoveryApproval stores a, provided the case exists (ENOTFOUND) and is
// pending (ECONFLICT); a second approval by the same approver is ECONFLICT.
// The case's row is locked FOR SHARE until the approval commits, so a
// concurrent update (the quorum's transition, a denial…) on any replica
// waits for it, and an approval waiting on an update finds the case no
// longer pending. Nothing is written on error.
func (s *Store) AddRecoveryApproval(ctx context.Context, a *airlock.RecoveryApproval) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		var status string
		err := tx.QueryRow(ctx, `SELECT status FROM recovery_cases WHERE id = $1 FOR SHARE`, a.CaseID).Scan(&status)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("recovery case")
		} else if err != nil {
			return dbError("add recovery approval", err)
		}
		if airlock.RecoveryStatus(status) != airlock.RecoveryPending {
			return airlock.Errorf(airlock.ECONFLICT, "postgres: recovery case is %s, not pending", status)
		}
		_, err = tx.Exec(ctx, `INSERT INTO recovery_approvals (`+recoveryApprovalColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			a.CaseID, a.ApproverID, a.SessionID, a.DeviceID, blob(a.CredentialID), a.Verification, a.Challenge, ts(a.At))
		return dbError("add recovery approval", err)
	})
}

// ListRecoveryApprovals returns the case's approvals, oldest first (then in
// the order they were added).
func (s *Store) ListRecoveryApprovals(ctx context.Context, caseID string) ([]*airlock.RecoveryApproval, error) {
	rows, err := s.pool.Query(ctx, recoveryApprovalsQuery, caseID)
	return collect(rows, err, "list recovery approvals", scanRecoveryApproval)
}

// ListRecoveryCasesToExpire returns at most limit (≤ 0: 100) cases not in a
// final status whose ExpiresAt is not after now (a zero one counting as
// long past), soonest ExpiresAt first (then by ID).
func (s *Store) ListRecoveryCasesToExpire(ctx context.Context, now time.Time, limit int) ([]*airlock.RecoveryCase, error) {
	rows, err := s.pool.Query(ctx, recoveryCasesToExpireQuery, now, limitOf(limit))
	return collect(rows, err, "list recovery cases to expire", scanRecoveryCase)
}

// CreateBreakGlassEvent inserts e. A duplicate ID or TokenHash is
// ECONFLICT, and so is a second unreviewed event of the account: the
// partial unique index breakglass_events_unreviewed refuses it in the
// database, whichever replica writes. An empty ID, AccountID or TokenHash
// is EINVALID. Nothing is written on error.
func (s *Store) CreateBreakGlassEvent(ctx context.Context, e *airlock.BreakGlassEvent) error {
	switch {
	case e.ID == "":
		return airlock.Errorf(airlock.EINVALID, "postgres: break-glass event without an id")
	case e.AccountID == "":
		return airlock.Errorf(airlock.EINVALID, "postgres: break-glass event without an account")
	case len(e.TokenHash) == 0:
		return airlock.Errorf(airlock.EINVALID, "postgres: break-glass event without a session token hash")
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO breakglass_events (`+breakGlassEventColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		e.ID, e.AccountID, blob(e.CredentialID), e.Justification, strs(e.Scopes), e.IP, e.UserAgent, e.TokenHash,
		ts(e.StartedAt), ts(e.EndsAt), ts(e.EndedAt), e.EndReason, strs(e.AlertIDs), e.AlertDelivered, e.Offline,
		ts(e.ReviewedAt), e.ReviewedBy, e.ReviewNotes)
	return dbError("create break-glass event", err)
}

// FindBreakGlassEventByID returns the event with id, or ENOTFOUND.
func (s *Store) FindBreakGlassEventByID(ctx context.Context, id string) (*airlock.BreakGlassEvent, error) {
	return s.findBreakGlassEvent(ctx, `id = $1`, id)
}

// FindBreakGlassEventByToken returns the event whose session secret hashes
// to hash, or ENOTFOUND; an empty hash matches nothing.
func (s *Store) FindBreakGlassEventByToken(ctx context.Context, hash []byte) (*airlock.BreakGlassEvent, error) {
	if len(hash) == 0 {
		return nil, notFound("break-glass event")
	}
	return s.findBreakGlassEvent(ctx, `token_hash = $1`, hash)
}

func (s *Store) findBreakGlassEvent(ctx context.Context, cond string, arg any) (*airlock.BreakGlassEvent, error) {
	e, err := scanBreakGlassEvent(s.pool.QueryRow(ctx, `SELECT `+breakGlassEventColumns+` FROM breakglass_events
		WHERE `+cond, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("break-glass event")
	} else if err != nil {
		return nil, dbError("find break-glass event", err)
	}
	return e, nil
}

// ListBreakGlassEvents returns at most f.Limit (≤ 0: 100) events matching f,
// newest StartedAt first, then by descending ID.
func (s *Store) ListBreakGlassEvents(ctx context.Context, f airlock.BreakGlassFilter) ([]*airlock.BreakGlassEvent, error) {
	query, args := breakGlassEventsQuery(f)
	rows, err := s.pool.Query(ctx, query, args...)
	return collect(rows, err, "list break-glass events", scanBreakGlassEvent)
}

// breakGlassEventsQuery returns ListBreakGlassEvents' query and arguments.
func breakGlassEventsQuery(f airlock.BreakGlassFilter) (string, []any) {
	var w where
	if f.AccountID != "" {
		w.add(`account_id = $`, f.AccountID)
	}
	if f.Unreviewed {
		w.conds = append(w.conds, `reviewed_at IS NULL`)
	}
	cond := w.clause()
	limit := w.arg(limitOf(f.Limit))
	return `SELECT ` + breakGlassEventColumns + ` FROM breakglass_events` + cond +
		` ORDER BY started_at DESC NULLS LAST, id DESC LIMIT ` + limit, w.args
}

// EndBreakGlassEvent ends the event with id, once, in one conditional
// UPDATE: an ended event is ECONFLICT and keeps its first end (of racing
// replicas one wins), a missing one ENOTFOUND, a zero at EINVALID (it would
// read back as not ended).
func (s *Store) EndBreakGlassEvent(ctx context.Context, id, reason string, at time.Time) error {
	if at.IsZero() {
		return airlock.Errorf(airlock.EINVALID, "postgres: zero break-glass end time")
	}
	tag, err := s.pool.Exec(ctx, `UPDATE breakglass_events SET ended_at = $1, end_reason = $2
		WHERE id = $3 AND ended_at IS NULL`, at, reason, id)
	if err != nil {
		return dbError("end break-glass event", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	if _, err := s.breakGlassState(ctx, id, "end break-glass event"); err != nil {
		return err
	}
	return airlock.Errorf(airlock.ECONFLICT, "postgres: break-glass event already ended")
}

// ReviewBreakGlassEvent records the review of the event with id, once, in
// one conditional UPDATE: a reviewed event is ECONFLICT and keeps its first
// review (of racing replicas one wins), one not yet ended EINVALID, a
// missing one ENOTFOUND; a zero at or an empty reviewer is EINVALID.
// Nothing is written on error. Events are never un-ended or un-reviewed,
// so the state read after a refused update explains it.
func (s *Store) ReviewBreakGlassEvent(ctx context.Context, id, reviewerID, notes string, at time.Time) error {
	if at.IsZero() {
		return airlock.Errorf(airlock.EINVALID, "postgres: zero break-glass review time")
	}
	if reviewerID == "" {
		return airlock.Errorf(airlock.EINVALID, "postgres: break-glass review without a reviewer")
	}
	tag, err := s.pool.Exec(ctx, `UPDATE breakglass_events SET reviewed_at = $1, reviewed_by = $2, review_notes = $3
		WHERE id = $4 AND reviewed_at IS NULL AND ended_at IS NOT NULL`, at, reviewerID, notes, id)
	if err != nil {
		return dbError("review break-glass event", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	st, err := s.breakGlassState(ctx, id, "review break-glass event")
	if err != nil {
		return err
	}
	if st.reviewed {
		return airlock.Errorf(airlock.ECONFLICT, "postgres: break-glass event already reviewed")
	}
	return airlock.Errorf(airlock.EINVALID, "postgres: break-glass event not ended yet: end it before the review")
}

// breakGlassStatus is what EndBreakGlassEvent and ReviewBreakGlassEvent
// read back to explain a conditional update that changed nothing.
type breakGlassStatus struct{ ended, reviewed bool }

// breakGlassState reads the event's state; ENOTFOUND if it is missing.
func (s *Store) breakGlassState(ctx context.Context, id, op string) (breakGlassStatus, error) {
	var st breakGlassStatus
	err := s.pool.QueryRow(ctx, `SELECT ended_at IS NOT NULL, reviewed_at IS NOT NULL FROM breakglass_events
		WHERE id = $1`, id).Scan(&st.ended, &st.reviewed)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, notFound("break-glass event")
	} else if err != nil {
		return st, dbError(op, err)
	}
	return st, nil
}

func scanRecoveryCase(row pgx.Row) (*airlock.RecoveryCase, error) {
	var (
		c              airlock.RecoveryCase
		tier, required int64
		status         string
	)
	if err := row.Scan(&c.ID, &c.SubjectID, &c.OpenedBy, &c.Via, &c.Reason, &tier, &required, &status, &c.DeviceID,
		&c.SecretHash, tsp(&c.CoolDownUntil), &c.EnrolTokenID, tsp(&c.ResolvedAt), &c.ResolvedBy, &c.Note,
		tsp(&c.CreatedAt), tsp(&c.ExpiresAt), tsp(&c.UpdatedAt), &c.Version); err != nil {
		return nil, err
	}
	c.SecretHash = nonEmpty(c.SecretHash)
	c.Tier, c.Required, c.Status = airlock.Tier(tier), int(required), airlock.RecoveryStatus(status)
	return &c, nil
}

func scanRecoveryApproval(row pgx.Row) (*airlock.RecoveryApproval, error) {
	var a airlock.RecoveryApproval
	if err := row.Scan(&a.CaseID, &a.ApproverID, &a.SessionID, &a.DeviceID, &a.CredentialID, &a.Verification,
		&a.Challenge, tsp(&a.At)); err != nil {
		return nil, err
	}
	a.CredentialID = nonEmpty(a.CredentialID)
	return &a, nil
}

func scanBreakGlassEvent(row pgx.Row) (*airlock.BreakGlassEvent, error) {
	var e airlock.BreakGlassEvent
	if err := row.Scan(&e.ID, &e.AccountID, &e.CredentialID, &e.Justification, &e.Scopes, &e.IP, &e.UserAgent,
		&e.TokenHash, tsp(&e.StartedAt), tsp(&e.EndsAt), tsp(&e.EndedAt), &e.EndReason, &e.AlertIDs,
		&e.AlertDelivered, &e.Offline, tsp(&e.ReviewedAt), &e.ReviewedBy, &e.ReviewNotes); err != nil {
		return nil, err
	}
	e.CredentialID, e.TokenHash = nonEmpty(e.CredentialID), nonEmpty(e.TokenHash)
	e.Scopes, e.AlertIDs = nonNil(e.Scopes), nonNil(e.AlertIDs)
	return &e, nil
}
