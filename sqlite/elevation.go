package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"airlock"
)

// defaultElevationLimit is the page size of the elevation lists when the
// caller's limit is 0 or negative.
const defaultElevationLimit = 100

const accessRequestColumns = `id, requester_id, session_id, device_id, credential_id, scope_role, scope_resource,
	scope_tier, scope_is_tier, reason, ticket, duration, decision_id, approval_rule, risk, ip, user_agent, digest,
	status, created_at, expires_at, resolved_at, resolved_by, note, grant_id`

const approvalColumns = `request_id, approver_id, session_id, device_id, credential_id, groups, comment, created_at`

const grantColumns = `id, request_id, user_id, session_id, device_id, credential_id, scope_role, scope_resource,
	scope_tier, scope_is_tier, not_before, not_after, created_at, ended_at, end_reason, ended_by`

const sshCertificateColumns = `serial, key_id, grant_id, user_id, session_id, principals, public_key, valid_after,
	valid_before, source_address, extensions, issued_at`

// Queries of the sweeps; their arguments are (status, now, limit) and (now,
// limit), now in unix microseconds.
const (
	expiredRequestsQuery = `SELECT ` + accessRequestColumns + ` FROM access_requests
		WHERE status = ? AND expires_at <= ? ORDER BY expires_at, id LIMIT ?`
	grantsToEndQuery = `SELECT ` + grantColumns + ` FROM grants
		WHERE ended_at = 0 AND not_after <= ? ORDER BY not_after, id LIMIT ?`
	sshCertificatesQuery = `SELECT ` + sshCertificateColumns + ` FROM ssh_certificates
		WHERE grant_id = ? ORDER BY issued_at, rowid`
	approvalsQuery = `SELECT ` + approvalColumns + ` FROM approvals WHERE request_id = ? ORDER BY created_at, rowid`
)

// CreateAccessRequest inserts r; a duplicate ID is ECONFLICT, an unknown
// status EINVALID.
func (s *Store) CreateAccessRequest(ctx context.Context, r *airlock.AccessRequest) error {
	if !r.Status.Valid() {
		return airlock.Errorf(airlock.EINVALID, "sqlite: access request status %q is not valid", r.Status)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO access_requests (`+accessRequestColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.RequesterID, r.SessionID, r.DeviceID, blob(r.CredentialID), r.Scope.Role, r.Scope.Resource,
		int64(r.Scope.Tier), boolInt(r.Scope.IsTier), r.Reason, r.Ticket, int64(r.Duration), r.DecisionID,
		r.ApprovalRule, int64(r.Risk), r.IP, r.UserAgent, blob(r.Digest), string(r.Status), micros(r.CreatedAt),
		micros(r.ExpiresAt), micros(r.ResolvedAt), r.ResolvedBy, r.Note, r.GrantID)
	return dbError("create access request", err)
}

// FindAccessRequestByID returns the request with id, or ENOTFOUND.
func (s *Store) FindAccessRequestByID(ctx context.Context, id string) (*airlock.AccessRequest, error) {
	r, err := scanAccessRequest(s.r.QueryRowContext(ctx, `SELECT `+accessRequestColumns+` FROM access_requests WHERE id = ?`, id))
	if err == sql.ErrNoRows {
		return nil, notFound("access request")
	} else if err != nil {
		return nil, dbError("find access request", err)
	}
	return r, nil
}

// ListAccessRequests returns at most f.Limit (≤ 0: 100) requests matching f,
// newest CreatedAt first, then by descending ID.
func (s *Store) ListAccessRequests(ctx context.Context, f airlock.AccessRequestFilter) ([]*airlock.AccessRequest, error) {
	query, args := accessRequestsQuery(f)
	return list(ctx, s.r, "list access requests", scanAccessRequest, query, args...)
}

// accessRequestsQuery returns ListAccessRequests' query and arguments.
func accessRequestsQuery(f airlock.AccessRequestFilter) (string, []any) {
	var (
		where []string
		args  []any
	)
	if f.RequesterID != "" {
		where, args = append(where, `requester_id = ?`), append(args, f.RequesterID)
	}
	if f.Status != "" {
		where, args = append(where, `status = ?`), append(args, string(f.Status))
	}
	return `SELECT ` + accessRequestColumns + ` FROM access_requests` + whereClause(where) +
		` ORDER BY created_at DESC, id DESC LIMIT ?`, append(args, limitOf(f.Limit))
}

// AddApproval stores a in one write transaction, provided the request
// exists (ENOTFOUND) and is pending (ECONFLICT); a second approval by the
// same approver is ECONFLICT. Nothing is written on error.
func (s *Store) AddApproval(ctx context.Context, a *airlock.Approval) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var status string
		err := tx.QueryRowContext(ctx, `SELECT status FROM access_requests WHERE id = ?`, a.RequestID).Scan(&status)
		if err == sql.ErrNoRows {
			return notFound("access request")
		} else if err != nil {
			return dbError("add approval", err)
		}
		if airlock.RequestStatus(status) != airlock.RequestPending {
			return airlock.Errorf(airlock.ECONFLICT, "sqlite: access request is %s, not pending", status)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO approvals (`+approvalColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			a.RequestID, a.ApproverID, a.SessionID, a.DeviceID, blob(a.CredentialID), encodeStrings(a.Groups),
			a.Comment, micros(a.CreatedAt))
		return dbError("add approval", err)
	})
}

// ListApprovals returns the request's approvals, oldest first (then in the
// order they were added).
func (s *Store) ListApprovals(ctx context.Context, requestID string) ([]*airlock.Approval, error) {
	return list(ctx, s.r, "list approvals", scanApproval, approvalsQuery, requestID)
}

// ResolveAccessRequest moves a pending request to status and, with g, inserts
// the grant and links it, all in one write transaction on the single write
// connection: of concurrent resolvers exactly one finds the request pending;
// the others get ECONFLICT and write nothing. Arguments
// airlock.CheckResolution refuses are EINVALID.
func (s *Store) ResolveAccessRequest(ctx context.Context, id string, status airlock.RequestStatus, by, note string, at time.Time, g *airlock.Grant) error {
	if err := airlock.CheckResolution(id, status, at, g); err != nil {
		return err
	}
	grantID := ""
	if g != nil {
		grantID = g.ID
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE access_requests SET status = ?, resolved_at = ?, resolved_by = ?, note = ?,
			grant_id = ? WHERE id = ? AND status = ?`, string(status), micros(at), by, note, grantID, id, string(airlock.RequestPending))
		if err != nil {
			return dbError("resolve access request", err)
		}
		if n, err := rowsAffected(res, "resolve access request"); err != nil {
			return err
		} else if n == 0 {
			var current string
			err := tx.QueryRowContext(ctx, `SELECT status FROM access_requests WHERE id = ?`, id).Scan(&current)
			if err == sql.ErrNoRows {
				return notFound("access request")
			} else if err != nil {
				return dbError("resolve access request", err)
			}
			return airlock.Errorf(airlock.ECONFLICT, "sqlite: access request already %s", current)
		}
		if g == nil {
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO grants (`+grantColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			g.ID, g.RequestID, g.UserID, g.SessionID, g.DeviceID, blob(g.CredentialID), g.Scope.Role, g.Scope.Resource,
			int64(g.Scope.Tier), boolInt(g.Scope.IsTier), micros(g.NotBefore), micros(g.NotAfter), micros(g.CreatedAt),
			micros(g.EndedAt), g.EndReason, g.EndedBy)
		return dbError("create grant", err)
	})
}

// ListExpiredAccessRequests returns at most limit (≤ 0: 100) pending
// requests whose ExpiresAt is not after now, soonest ExpiresAt first (then
// by ID).
func (s *Store) ListExpiredAccessRequests(ctx context.Context, now time.Time, limit int) ([]*airlock.AccessRequest, error) {
	return list(ctx, s.r, "list expired access requests", scanAccessRequest, expiredRequestsQuery,
		string(airlock.RequestPending), micros(now), limitOf(limit))
}

// FindGrantByID returns the grant with id, or ENOTFOUND.
func (s *Store) FindGrantByID(ctx context.Context, id string) (*airlock.Grant, error) {
	g, err := scanGrant(s.r.QueryRowContext(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = ?`, id))
	if err == sql.ErrNoRows {
		return nil, notFound("grant")
	} else if err != nil {
		return nil, dbError("find grant", err)
	}
	return g, nil
}

// ListGrants returns at most f.Limit (≤ 0: 100) grants matching f, newest
// CreatedAt first, then by descending ID. With ActiveAt, a grant is active
// iff it has not ended and NotBefore ≤ ActiveAt < NotAfter (compared in
// microseconds, which matches Grant.IsActive on the stored times).
func (s *Store) ListGrants(ctx context.Context, f airlock.GrantFilter) ([]*airlock.Grant, error) {
	query, args := grantsQuery(f)
	return list(ctx, s.r, "list grants", scanGrant, query, args...)
}

// grantsQuery returns ListGrants' query and arguments.
func grantsQuery(f airlock.GrantFilter) (string, []any) {
	var (
		where []string
		args  []any
	)
	if f.UserID != "" {
		where, args = append(where, `user_id = ?`), append(args, f.UserID)
	}
	if f.SessionID != "" {
		where, args = append(where, `session_id = ?`), append(args, f.SessionID)
	}
	if !f.ActiveAt.IsZero() {
		t := f.ActiveAt.UnixMicro()
		where, args = append(where, `ended_at = 0 AND not_before <= ? AND not_after > ?`), append(args, t, t)
	}
	return `SELECT ` + grantColumns + ` FROM grants` + whereClause(where) +
		` ORDER BY created_at DESC, id DESC LIMIT ?`, append(args, limitOf(f.Limit))
}

// ListGrantsToEnd returns at most limit (≤ 0: 100) grants not ended whose
// NotAfter is not after now, oldest NotAfter first (then by ID).
func (s *Store) ListGrantsToEnd(ctx context.Context, now time.Time, limit int) ([]*airlock.Grant, error) {
	return list(ctx, s.r, "list grants to end", scanGrant, grantsToEndQuery, now.UnixMicro(), limitOf(limit))
}

// EndGrant ends the grant with id, once: an ended grant is ECONFLICT and
// keeps its first end, a missing one ENOTFOUND, a zero at EINVALID (it
// would read back as not ended).
func (s *Store) EndGrant(ctx context.Context, id, reason, by string, at time.Time) error {
	if at.IsZero() {
		return airlock.Errorf(airlock.EINVALID, "sqlite: zero grant end time")
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE grants SET ended_at = ?, end_reason = ?, ended_by = ?
			WHERE id = ? AND ended_at = 0`, micros(at), reason, by, id)
		if err != nil {
			return dbError("end grant", err)
		}
		if n, err := rowsAffected(res, "end grant"); err != nil {
			return err
		} else if n == 1 {
			return nil
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM grants WHERE id = ?`, id).Scan(&n); err != nil {
			return dbError("end grant", err)
		}
		if n == 0 {
			return notFound("grant")
		}
		return airlock.Errorf(airlock.ECONFLICT, "sqlite: grant already ended")
	})
}

// CreateSSHCertificate records c; a serial already recorded is ECONFLICT.
// The uint64 serial is stored as the int64 with the same bits.
func (s *Store) CreateSSHCertificate(ctx context.Context, c *airlock.SSHCertificate) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO ssh_certificates (`+sshCertificateColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		int64(c.Serial), c.KeyID, c.GrantID, c.UserID, c.SessionID, encodeStrings(c.Principals), c.PublicKey,
		micros(c.ValidAfter), micros(c.ValidBefore), c.SourceAddress, encodeStrings(c.Extensions), micros(c.IssuedAt))
	return dbError("create SSH certificate", err)
}

// ListSSHCertificates returns the certificates issued for grantID, oldest
// IssuedAt first (then in the order they were recorded).
func (s *Store) ListSSHCertificates(ctx context.Context, grantID string) ([]*airlock.SSHCertificate, error) {
	return list(ctx, s.r, "list SSH certificates", scanSSHCertificate, sshCertificatesQuery, grantID)
}

func scanAccessRequest(row scanner) (*airlock.AccessRequest, error) {
	var (
		r                                 airlock.AccessRequest
		tier, isTier, duration, risk      int64
		status                            string
		created, expires, resolvedAtMicro int64
	)
	if err := row.Scan(&r.ID, &r.RequesterID, &r.SessionID, &r.DeviceID, &r.CredentialID, &r.Scope.Role,
		&r.Scope.Resource, &tier, &isTier, &r.Reason, &r.Ticket, &duration, &r.DecisionID, &r.ApprovalRule, &risk,
		&r.IP, &r.UserAgent, &r.Digest, &status, &created, &expires, &resolvedAtMicro, &r.ResolvedBy, &r.Note,
		&r.GrantID); err != nil {
		return nil, err
	}
	r.CredentialID, r.Digest = nonEmpty(r.CredentialID), nonEmpty(r.Digest)
	r.Scope.Tier, r.Scope.IsTier = airlock.Tier(tier), isTier != 0
	r.Duration, r.Risk, r.Status = time.Duration(duration), int(risk), airlock.RequestStatus(status)
	r.CreatedAt, r.ExpiresAt, r.ResolvedAt = fromMicros(created), fromMicros(expires), fromMicros(resolvedAtMicro)
	return &r, nil
}

func scanApproval(row scanner) (*airlock.Approval, error) {
	var (
		a       airlock.Approval
		groups  string
		created int64
	)
	if err := row.Scan(&a.RequestID, &a.ApproverID, &a.SessionID, &a.DeviceID, &a.CredentialID, &groups, &a.Comment,
		&created); err != nil {
		return nil, err
	}
	a.CredentialID, a.CreatedAt = nonEmpty(a.CredentialID), fromMicros(created)
	var err error
	if a.Groups, err = decodeStrings(groups); err != nil {
		return nil, err
	}
	return &a, nil
}

func scanGrant(row scanner) (*airlock.Grant, error) {
	var (
		g                                   airlock.Grant
		tier, isTier                        int64
		notBefore, notAfter, created, ended int64
	)
	if err := row.Scan(&g.ID, &g.RequestID, &g.UserID, &g.SessionID, &g.DeviceID, &g.CredentialID, &g.Scope.Role,
		&g.Scope.Resource, &tier, &isTier, &notBefore, &notAfter, &created, &ended, &g.EndReason, &g.EndedBy); err != nil {
		return nil, err
	}
	g.CredentialID = nonEmpty(g.CredentialID)
	g.Scope.Tier, g.Scope.IsTier = airlock.Tier(tier), isTier != 0
	g.NotBefore, g.NotAfter = fromMicros(notBefore), fromMicros(notAfter)
	g.CreatedAt, g.EndedAt = fromMicros(created), fromMicros(ended)
	return &g, nil
}

func scanSSHCertificate(row scanner) (*airlock.SSHCertificate, error) {
	var (
		c                            airlock.SSHCertificate
		serial                       int64
		principals, extensions       string
		validAfter, validBefore, iss int64
	)
	if err := row.Scan(&serial, &c.KeyID, &c.GrantID, &c.UserID, &c.SessionID, &principals, &c.PublicKey, &validAfter,
		&validBefore, &c.SourceAddress, &extensions, &iss); err != nil {
		return nil, err
	}
	c.Serial = uint64(serial)
	c.ValidAfter, c.ValidBefore, c.IssuedAt = fromMicros(validAfter), fromMicros(validBefore), fromMicros(iss)
	var err error
	if c.Principals, err = decodeStrings(principals); err != nil {
		return nil, err
	}
	if c.Extensions, err = decodeStrings(extensions); err != nil {
		return nil, err
	}
	return &c, nil
}

// list runs query on db and scans every row; op names it in errors. The
// result is empty, not nil, when no row matches.
func list[T any](ctx context.Context, db *sql.DB, op string, scan func(scanner) (*T, error), query string, args ...any) ([]*T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbError(op, err)
	}
	defer rows.Close()
	out := []*T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, dbError(op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(op, err)
	}
	return out, nil
}

// whereClause joins conditions with AND into a WHERE clause ("" for none).
func whereClause(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(conds, ` AND `)
}

// limitOf returns limit, or defaultElevationLimit when it is 0 or negative.
func limitOf(limit int) int {
	if limit <= 0 {
		return defaultElevationLimit
	}
	return limit
}
