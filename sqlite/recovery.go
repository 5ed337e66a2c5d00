package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"airlock"
)

// Recovery cases, their approvals and break-glass events (migration 0007).

const recoveryCaseColumns = `id, subject_id, opened_by, via, reason, tier, required, status, device_id, secret_hash,
	cool_down_until, enrol_token_id, resolved_at, resolved_by, note, created_at, expires_at, updated_at, version`

const recoveryApprovalColumns = `case_id, approver_id, session_id, device_id, credential_id, verification, challenge, at`

const breakGlassEventColumns = `id, account_id, credential_id, justification, scopes, ip, user_agent, token_hash,
	started_at, ends_at, ended_at, end_reason, alert_ids, alert_delivered, offline, reviewed_at, reviewed_by,
	review_notes`

// Fixed queries. The expiry sweep repeats the WHERE of the partial index
// recovery_cases_expiry verbatim and names it (INDEXED BY: without
// statistics SQLite would rather seek the three statuses in
// recovery_cases_status and sort); its arguments are (now, limit), now in
// unix microseconds.
const (
	recoveryCasesToExpireQuery = `SELECT ` + recoveryCaseColumns + ` FROM recovery_cases INDEXED BY recovery_cases_expiry
		WHERE status IN ('pending', 'cooling_down', 'released') AND expires_at <= ? ORDER BY expires_at, id LIMIT ?`
	recoveryApprovalsQuery = `SELECT ` + recoveryApprovalColumns + ` FROM recovery_approvals
		WHERE case_id = ? ORDER BY at, rowid`
)

// CreateRecoveryCase inserts c; a duplicate ID or SecretHash is ECONFLICT,
// an unknown status or an empty SecretHash EINVALID.
func (s *Store) CreateRecoveryCase(ctx context.Context, c *airlock.RecoveryCase) error {
	if !c.Status.Valid() {
		return airlock.Errorf(airlock.EINVALID, "sqlite: recovery case status %q is not valid", c.Status)
	}
	if len(c.SecretHash) == 0 {
		return airlock.Errorf(airlock.EINVALID, "sqlite: recovery case without a claim secret hash")
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO recovery_cases (`+recoveryCaseColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.SubjectID, c.OpenedBy, c.Via, c.Reason, int64(c.Tier), int64(c.Required), string(c.Status), c.DeviceID,
		c.SecretHash, micros(c.CoolDownUntil), c.EnrolTokenID, micros(c.ResolvedAt), c.ResolvedBy, c.Note,
		micros(c.CreatedAt), micros(c.ExpiresAt), micros(c.UpdatedAt), c.Version)
	return dbError("create recovery case", err)
}

// FindRecoveryCaseByID returns the case with id, or ENOTFOUND.
func (s *Store) FindRecoveryCaseByID(ctx context.Context, id string) (*airlock.RecoveryCase, error) {
	return s.findRecoveryCase(ctx, `id = ?`, id)
}

// FindRecoveryCaseBySecret returns the case whose claim secret hashes to
// hash, or ENOTFOUND; an empty hash matches nothing.
func (s *Store) FindRecoveryCaseBySecret(ctx context.Context, hash []byte) (*airlock.RecoveryCase, error) {
	if len(hash) == 0 {
		return nil, notFound("recovery case")
	}
	return s.findRecoveryCase(ctx, `secret_hash = ?`, hash)
}

func (s *Store) findRecoveryCase(ctx context.Context, cond string, arg any) (*airlock.RecoveryCase, error) {
	c, err := scanRecoveryCase(s.r.QueryRowContext(ctx, `SELECT `+recoveryCaseColumns+` FROM recovery_cases WHERE `+cond, arg))
	if err == sql.ErrNoRows {
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
	return list(ctx, s.r, "list recovery cases", scanRecoveryCase, query, args...)
}

// recoveryCasesQuery returns ListRecoveryCases' query and arguments.
func recoveryCasesQuery(f airlock.RecoveryCaseFilter) (string, []any) {
	var (
		where []string
		args  []any
	)
	if f.SubjectID != "" {
		where, args = append(where, `subject_id = ?`), append(args, f.SubjectID)
	}
	switch len(f.Statuses) {
	case 0:
	case 1:
		where, args = append(where, `status = ?`), append(args, string(f.Statuses[0]))
	default:
		where = append(where, `status IN (?`+strings.Repeat(`, ?`, len(f.Statuses)-1)+`)`)
		for _, st := range f.Statuses {
			args = append(args, string(st))
		}
	}
	if f.EnrolTokenID != "" {
		where, args = append(where, `enrol_token_id = ?`), append(args, f.EnrolTokenID)
	}
	if !f.Since.IsZero() {
		where, args = append(where, `created_at >= ?`), append(args, f.Since.UnixMicro())
	}
	return `SELECT ` + recoveryCaseColumns + ` FROM recovery_cases` + whereClause(where) +
		` ORDER BY created_at DESC, id DESC LIMIT ?`, append(args, limitOf(f.Limit))
}

// UpdateRecoveryCase replaces the mutable fields of the case with c.ID if
// its stored Version is c.Version (else ECONFLICT, nothing written), then
// increments c.Version. A missing case is ENOTFOUND, an unknown status
// EINVALID.
func (s *Store) UpdateRecoveryCase(ctx context.Context, c *airlock.RecoveryCase) error {
	if !c.Status.Valid() {
		return airlock.Errorf(airlock.EINVALID, "sqlite: recovery case status %q is not valid", c.Status)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE recovery_cases SET status = ?, device_id = ?, cool_down_until = ?,
			enrol_token_id = ?, resolved_at = ?, resolved_by = ?, note = ?, expires_at = ?, updated_at = ?,
			version = version + 1 WHERE id = ? AND version = ?`,
			string(c.Status), c.DeviceID, micros(c.CoolDownUntil), c.EnrolTokenID, micros(c.ResolvedAt), c.ResolvedBy,
			c.Note, micros(c.ExpiresAt), micros(c.UpdatedAt), c.ID, c.Version)
		if err != nil {
			return dbError("update recovery case", err)
		}
		return versionedUpdateResult(ctx, tx, res, "recovery case", "recovery_cases", c.ID)
	})
	if err != nil {
		return err
	}
	c.Version++
	return nil
}

// AddRecoveryApproval stores a in one write transaction, provided the case
// exists (ENOTFOUND) and is pending (ECONFLICT); a second approval by the
// same approver is ECONFLICT. Nothing is written on error.
func (s *Store) AddRecoveryApproval(ctx context.Context, a *airlock.RecoveryApproval) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var status string
		err := tx.QueryRowContext(ctx, `SELECT status FROM recovery_cases WHERE id = ?`, a.CaseID).Scan(&status)
		if err == sql.ErrNoRows {
			return notFound("recovery case")
		} else if err != nil {
			return dbError("add recovery approval", err)
		}
		if airlock.RecoveryStatus(status) != airlock.RecoveryPending {
			return airlock.Errorf(airlock.ECONFLICT, "sqlite: recovery case is %s, not pending", status)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO recovery_approvals (`+recoveryApprovalColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			a.CaseID, a.ApproverID, a.SessionID, a.DeviceID, blob(a.CredentialID), a.Verification, a.Challenge,
			micros(a.At))
		return dbError("add recovery approval", err)
	})
}

// ListRecoveryApprovals returns the case's approvals, oldest first (then in
// the order they were added).
func (s *Store) ListRecoveryApprovals(ctx context.Context, caseID string) ([]*airlock.RecoveryApproval, error) {
	return list(ctx, s.r, "list recovery approvals", scanRecoveryApproval, recoveryApprovalsQuery, caseID)
}

// ListRecoveryCasesToExpire returns at most limit (≤ 0: 100) cases not in a
// final status whose ExpiresAt is not after now, soonest ExpiresAt first
// (then by ID).
func (s *Store) ListRecoveryCasesToExpire(ctx context.Context, now time.Time, limit int) ([]*airlock.RecoveryCase, error) {
	return list(ctx, s.r, "list recovery cases to expire", scanRecoveryCase, recoveryCasesToExpireQuery,
		now.UnixMicro(), limitOf(limit))
}

// CreateBreakGlassEvent inserts e. A duplicate ID or TokenHash is
// ECONFLICT, and so is a second unreviewed event of the account: the
// partial unique index breakglass_events_unreviewed refuses it in the
// database, whichever process writes. An empty ID, AccountID or TokenHash
// is EINVALID. Nothing is written on error.
func (s *Store) CreateBreakGlassEvent(ctx context.Context, e *airlock.BreakGlassEvent) error {
	if err := checkBreakGlassEvent(e); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO breakglass_events (`+breakGlassEventColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.AccountID, blob(e.CredentialID), e.Justification, encodeStrings(e.Scopes), e.IP, e.UserAgent,
		e.TokenHash, micros(e.StartedAt), micros(e.EndsAt), micros(e.EndedAt), e.EndReason, encodeStrings(e.AlertIDs),
		boolInt(e.AlertDelivered), boolInt(e.Offline), micros(e.ReviewedAt), e.ReviewedBy, e.ReviewNotes)
	return dbError("create break-glass event", err)
}

// checkBreakGlassEvent refuses an event the store cannot key (EINVALID).
func checkBreakGlassEvent(e *airlock.BreakGlassEvent) error {
	switch {
	case e.ID == "":
		return airlock.Errorf(airlock.EINVALID, "sqlite: break-glass event without an id")
	case e.AccountID == "":
		return airlock.Errorf(airlock.EINVALID, "sqlite: break-glass event without an account")
	case len(e.TokenHash) == 0:
		return airlock.Errorf(airlock.EINVALID, "sqlite: break-glass event without a session token hash")
	}
	return nil
}

// FindBreakGlassEventByID returns the event with id, or ENOTFOUND.
func (s *Store) FindBreakGlassEventByID(ctx context.Context, id string) (*airlock.BreakGlassEvent, error) {
	return s.findBreakGlassEvent(ctx, `id = ?`, id)
}

// FindBreakGlassEventByToken returns the event whose session secret hashes
// to hash, or ENOTFOUND; an empty hash matches nothing.
func (s *Store) FindBreakGlassEventByToken(ctx context.Context, hash []byte) (*airlock.BreakGlassEvent, error) {
	if len(hash) == 0 {
		return nil, notFound("break-glass event")
	}
	return s.findBreakGlassEvent(ctx, `token_hash = ?`, hash)
}

func (s *Store) findBreakGlassEvent(ctx context.Context, cond string, arg any) (*airlock.BreakGlassEvent, error) {
	e, err := scanBreakGlassEvent(s.r.QueryRowContext(ctx, `SELECT `+breakGlassEventColumns+` FROM breakglass_events
		WHERE `+cond, arg))
	if err == sql.ErrNoRows {
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
	return list(ctx, s.r, "list break-glass events", scanBreakGlassEvent, query, args...)
}

// breakGlassEventsQuery returns ListBreakGlassEvents' query and arguments.
func breakGlassEventsQuery(f airlock.BreakGlassFilter) (string, []any) {
	var (
		where []string
		args  []any
	)
	if f.AccountID != "" {
		where, args = append(where, `account_id = ?`), append(args, f.AccountID)
	}
	if f.Unreviewed {
		where = append(where, `reviewed_at = 0`)
	}
	return `SELECT ` + breakGlassEventColumns + ` FROM breakglass_events` + whereClause(where) +
		` ORDER BY started_at DESC, id DESC LIMIT ?`, append(args, limitOf(f.Limit))
}

// EndBreakGlassEvent ends the event with id, once: an ended event is
// ECONFLICT and keeps its first end, a missing one ENOTFOUND, a zero at
// EINVALID (it would read back as not ended).
func (s *Store) EndBreakGlassEvent(ctx context.Context, id, reason string, at time.Time) error {
	if at.IsZero() {
		return airlock.Errorf(airlock.EINVALID, "sqlite: zero break-glass end time")
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE breakglass_events SET ended_at = ?, end_reason = ?
			WHERE id = ? AND ended_at = 0`, micros(at), reason, id)
		if err != nil {
			return dbError("end break-glass event", err)
		}
		if n, err := rowsAffected(res, "end break-glass event"); err != nil {
			return err
		} else if n == 1 {
			return nil
		}
		if _, err := breakGlassState(ctx, tx, id, "end break-glass event"); err != nil {
			return err
		}
		return airlock.Errorf(airlock.ECONFLICT, "sqlite: break-glass event already ended")
	})
}

// ReviewBreakGlassEvent records the review of the event with id, once: a
// reviewed event is ECONFLICT and keeps its first review, one not yet
// ended EINVALID, a missing one ENOTFOUND; a zero at or an empty reviewer
// is EINVALID. Nothing is written on error.
func (s *Store) ReviewBreakGlassEvent(ctx context.Context, id, reviewerID, notes string, at time.Time) error {
	if at.IsZero() {
		return airlock.Errorf(airlock.EINVALID, "sqlite: zero break-glass review time")
	}
	if reviewerID == "" {
		return airlock.Errorf(airlock.EINVALID, "sqlite: break-glass review without a reviewer")
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE breakglass_events SET reviewed_at = ?, reviewed_by = ?, review_notes = ?
			WHERE id = ? AND reviewed_at = 0 AND ended_at <> 0`, micros(at), reviewerID, notes, id)
		if err != nil {
			return dbError("review break-glass event", err)
		}
		if n, err := rowsAffected(res, "review break-glass event"); err != nil {
			return err
		} else if n == 1 {
			return nil
		}
		st, err := breakGlassState(ctx, tx, id, "review break-glass event")
		if err != nil {
			return err
		}
		if st.reviewed {
			return airlock.Errorf(airlock.ECONFLICT, "sqlite: break-glass event already reviewed")
		}
		return airlock.Errorf(airlock.EINVALID, "sqlite: break-glass event not ended yet: end it before the review")
	})
}

// breakGlassStatus is what EndBreakGlassEvent and ReviewBreakGlassEvent
// read back to explain a conditional update that changed nothing.
type breakGlassStatus struct{ ended, reviewed bool }

// breakGlassState reads the event's state in tx; ENOTFOUND if it is missing.
func breakGlassState(ctx context.Context, tx *sql.Tx, id, op string) (breakGlassStatus, error) {
	var ended, reviewed int64
	err := tx.QueryRowContext(ctx, `SELECT ended_at, reviewed_at FROM breakglass_events WHERE id = ?`, id).
		Scan(&ended, &reviewed)
	if err == sql.ErrNoRows {
		return breakGlassStatus{}, notFound("break-glass event")
	} else if err != nil {
		return breakGlassStatus{}, dbError(op, err)
	}
	return breakGlassStatus{ended: ended != 0, reviewed: reviewed != 0}, nil
}

func scanRecoveryCase(row scanner) (*airlock.RecoveryCase, error) {
	var (
		c                                         airlock.RecoveryCase
		tier, required                            int64
		status                                    string
		coolDown, resolved, created, exp, updated int64
	)
	if err := row.Scan(&c.ID, &c.SubjectID, &c.OpenedBy, &c.Via, &c.Reason, &tier, &required, &status, &c.DeviceID,
		&c.SecretHash, &coolDown, &c.EnrolTokenID, &resolved, &c.ResolvedBy, &c.Note, &created, &exp, &updated,
		&c.Version); err != nil {
		return nil, err
	}
	c.SecretHash = nonEmpty(c.SecretHash)
	c.Tier, c.Required, c.Status = airlock.Tier(tier), int(required), airlock.RecoveryStatus(status)
	c.CoolDownUntil, c.ResolvedAt = fromMicros(coolDown), fromMicros(resolved)
	c.CreatedAt, c.ExpiresAt, c.UpdatedAt = fromMicros(created), fromMicros(exp), fromMicros(updated)
	return &c, nil
}

func scanRecoveryApproval(row scanner) (*airlock.RecoveryApproval, error) {
	var (
		a  airlock.RecoveryApproval
		at int64
	)
	if err := row.Scan(&a.CaseID, &a.ApproverID, &a.SessionID, &a.DeviceID, &a.CredentialID, &a.Verification,
		&a.Challenge, &at); err != nil {
		return nil, err
	}
	a.CredentialID, a.At = nonEmpty(a.CredentialID), fromMicros(at)
	return &a, nil
}

func scanBreakGlassEvent(row scanner) (*airlock.BreakGlassEvent, error) {
	var (
		e                                 airlock.BreakGlassEvent
		scopes, alertIDs                  string
		delivered, offline                int64
		started, ends, ended, reviewedAtM int64
	)
	if err := row.Scan(&e.ID, &e.AccountID, &e.CredentialID, &e.Justification, &scopes, &e.IP, &e.UserAgent,
		&e.TokenHash, &started, &ends, &ended, &e.EndReason, &alertIDs, &delivered, &offline, &reviewedAtM,
		&e.ReviewedBy, &e.ReviewNotes); err != nil {
		return nil, err
	}
	e.CredentialID, e.TokenHash = nonEmpty(e.CredentialID), nonEmpty(e.TokenHash)
	e.StartedAt, e.EndsAt, e.EndedAt, e.ReviewedAt = fromMicros(started), fromMicros(ends), fromMicros(ended),
		fromMicros(reviewedAtM)
	e.AlertDelivered, e.Offline = delivered != 0, offline != 0
	var err error
	if e.Scopes, err = decodeStrings(scopes); err != nil {
		return nil, err
	}
	if e.AlertIDs, err = decodeStrings(alertIDs); err != nil {
		return nil, err
	}
	return &e, nil
}
