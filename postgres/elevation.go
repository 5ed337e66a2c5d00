package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"airlock"

	"github.com/jackc/pgx/v5"
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

// Queries of the sweeps and fixed lists, on exactly the expressions of the
// indexes of migration 0003. A zero (NULL) expiry or end counts as long
// past, as it does in the SQLite store.
const (
	expiredRequestsQuery = `SELECT ` + accessRequestColumns + ` FROM access_requests
		WHERE status = 'pending' AND coalesce(expires_at, '-infinity'::timestamptz) <= $1
		ORDER BY coalesce(expires_at, '-infinity'::timestamptz), id LIMIT $2`
	grantsToEndQuery = `SELECT ` + grantColumns + ` FROM grants
		WHERE ended_at IS NULL AND coalesce(not_after, '-infinity'::timestamptz) <= $1
		ORDER BY coalesce(not_after, '-infinity'::timestamptz), id LIMIT $2`
	sshCertificatesQuery = `SELECT ` + sshCertificateColumns + ` FROM ssh_certificates
		WHERE grant_id = $1 ORDER BY issued_at NULLS FIRST, ord`
	approvalsQuery = `SELECT ` + approvalColumns + ` FROM approvals
		WHERE request_id = $1 ORDER BY created_at NULLS FIRST, ord`
)

// CreateAccessRequest inserts r; a duplicate ID is ECONFLICT, an unknown
// status EINVALID.
func (s *Store) CreateAccessRequest(ctx context.Context, r *airlock.AccessRequest) error {
	if !r.Status.Valid() {
		return airlock.Errorf(airlock.EINVALID, "postgres: access request status %q is not valid", r.Status)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO access_requests (`+accessRequestColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
		$23, $24, $25)`,
		r.ID, r.RequesterID, r.SessionID, r.DeviceID, blob(r.CredentialID), r.Scope.Role, r.Scope.Resource,
		int64(r.Scope.Tier), r.Scope.IsTier, r.Reason, r.Ticket, int64(r.Duration), r.DecisionID, r.ApprovalRule,
		int64(r.Risk), r.IP, r.UserAgent, blob(r.Digest), string(r.Status), ts(r.CreatedAt), ts(r.ExpiresAt),
		ts(r.ResolvedAt), r.ResolvedBy, r.Note, r.GrantID)
	return dbError("create access request", err)
}

// FindAccessRequestByID returns the request with id, or ENOTFOUND.
func (s *Store) FindAccessRequestByID(ctx context.Context, id string) (*airlock.AccessRequest, error) {
	r, err := scanAccessRequest(s.pool.QueryRow(ctx, `SELECT `+accessRequestColumns+` FROM access_requests WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
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
	rows, err := s.pool.Query(ctx, query, args...)
	return collect(rows, err, "list access requests", scanAccessRequest)
}

// accessRequestsQuery returns ListAccessRequests' query and arguments.
func accessRequestsQuery(f airlock.AccessRequestFilter) (string, []any) {
	var w where
	if f.RequesterID != "" {
		w.add(`requester_id = $`, f.RequesterID)
	}
	if f.Status != "" {
		w.add(`status = $`, string(f.Status))
	}
	cond := w.clause()
	limit := w.arg(limitOf(f.Limit))
	return `SELECT ` + accessRequestColumns + ` FROM access_requests` + cond +
		` ORDER BY created_at DESC NULLS LAST, id DESC LIMIT ` + limit, w.args
}

// AddApproval stores a, provided the request exists (ENOTFOUND) and is
// pending (ECONFLICT); a second approval by the same approver is ECONFLICT.
// The request's row is locked FOR SHARE until the approval commits, so a
// concurrent resolution (on any replica) waits for it, and an approval
// waiting on a resolution finds the request no longer pending. Nothing is
// written on error.
func (s *Store) AddApproval(ctx context.Context, a *airlock.Approval) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		var status string
		err := tx.QueryRow(ctx, `SELECT status FROM access_requests WHERE id = $1 FOR SHARE`, a.RequestID).Scan(&status)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("access request")
		} else if err != nil {
			return dbError("add approval", err)
		}
		if airlock.RequestStatus(status) != airlock.RequestPending {
			return airlock.Errorf(airlock.ECONFLICT, "postgres: access request is %s, not pending", status)
		}
		_, err = tx.Exec(ctx, `INSERT INTO approvals (`+approvalColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			a.RequestID, a.ApproverID, a.SessionID, a.DeviceID, blob(a.CredentialID), strs(a.Groups), a.Comment,
			ts(a.CreatedAt))
		return dbError("add approval", err)
	})
}

// ListApprovals returns the request's approvals, oldest first (then in the
// order they were added).
func (s *Store) ListApprovals(ctx context.Context, requestID string) ([]*airlock.Approval, error) {
	rows, err := s.pool.Query(ctx, approvalsQuery, requestID)
	return collect(rows, err, "list approvals", scanApproval)
}

// ResolveAccessRequest moves a pending request to status and, with g, inserts
// the grant and links it, in one transaction. The conditional UPDATE (status
// still pending) takes the request's row lock: of resolvers racing on any
// replicas the first commits and the others, re-reading the row after it,
// find it resolved (ECONFLICT) and roll back, so exactly one grant is made.
// The grant is inserted after the update, in the same transaction: if
// either fails nothing is written. Arguments airlock.CheckResolution refuses
// are EINVALID.
func (s *Store) ResolveAccessRequest(ctx context.Context, id string, status airlock.RequestStatus, by, note string, at time.Time, g *airlock.Grant) error {
	if err := airlock.CheckResolution(id, status, at, g); err != nil {
		return err
	}
	grantID := ""
	if g != nil {
		grantID = g.ID
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE access_requests SET status = $1, resolved_at = $2, resolved_by = $3, note = $4,
			grant_id = $5 WHERE id = $6 AND status = 'pending'`, string(status), at, by, note, grantID, id)
		if err != nil {
			return dbError("resolve access request", err)
		}
		if tag.RowsAffected() == 0 {
			var current string
			err := tx.QueryRow(ctx, `SELECT status FROM access_requests WHERE id = $1`, id).Scan(&current)
			if errors.Is(err, pgx.ErrNoRows) {
				return notFound("access request")
			} else if err != nil {
				return dbError("resolve access request", err)
			}
			return airlock.Errorf(airlock.ECONFLICT, "postgres: access request already %s", current)
		}
		if g == nil {
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO grants (`+grantColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
			g.ID, g.RequestID, g.UserID, g.SessionID, g.DeviceID, blob(g.CredentialID), g.Scope.Role, g.Scope.Resource,
			int64(g.Scope.Tier), g.Scope.IsTier, ts(g.NotBefore), ts(g.NotAfter), ts(g.CreatedAt), ts(g.EndedAt),
			g.EndReason, g.EndedBy)
		return dbError("create grant", err)
	})
}

// ListExpiredAccessRequests returns at most limit (≤ 0: 100) pending
// requests whose ExpiresAt is not after now (a zero one counting as long
// past), soonest ExpiresAt first (then by ID).
func (s *Store) ListExpiredAccessRequests(ctx context.Context, now time.Time, limit int) ([]*airlock.AccessRequest, error) {
	rows, err := s.pool.Query(ctx, expiredRequestsQuery, now, limitOf(limit))
	return collect(rows, err, "list expired access requests", scanAccessRequest)
}

// FindGrantByID returns the grant with id, or ENOTFOUND.
func (s *Store) FindGrantByID(ctx context.Context, id string) (*airlock.Grant, error) {
	g, err := scanGrant(s.pool.QueryRow(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("grant")
	} else if err != nil {
		return nil, dbError("find grant", err)
	}
	return g, nil
}

// ListGrants returns at most f.Limit (≤ 0: 100) grants matching f, newest
// CreatedAt first, then by descending ID. With ActiveAt, a grant is active
// iff it has not ended and NotBefore ≤ ActiveAt < NotAfter (a zero NotBefore
// is no lower bound, a zero NotAfter never active), as Grant.IsActive says
// of the stored grant.
func (s *Store) ListGrants(ctx context.Context, f airlock.GrantFilter) ([]*airlock.Grant, error) {
	query, args := grantsQuery(f)
	rows, err := s.pool.Query(ctx, query, args...)
	return collect(rows, err, "list grants", scanGrant)
}

// grantsQuery returns ListGrants' query and arguments.
func grantsQuery(f airlock.GrantFilter) (string, []any) {
	var w where
	if f.UserID != "" {
		w.add(`user_id = $`, f.UserID)
	}
	if f.SessionID != "" {
		w.add(`session_id = $`, f.SessionID)
	}
	if !f.ActiveAt.IsZero() {
		t := w.arg(f.ActiveAt)
		w.conds = append(w.conds, `ended_at IS NULL AND coalesce(not_before, '-infinity'::timestamptz) <= `+t+
			` AND not_after > `+t)
	}
	cond := w.clause()
	limit := w.arg(limitOf(f.Limit))
	return `SELECT ` + grantColumns + ` FROM grants` + cond +
		` ORDER BY created_at DESC NULLS LAST, id DESC LIMIT ` + limit, w.args
}

// ListGrantsToEnd returns at most limit (≤ 0: 100) grants not ended whose
// NotAfter is not after now (a zero one counting as long past), oldest
// NotAfter first (then by ID).
func (s *Store) ListGrantsToEnd(ctx context.Context, now time.Time, limit int) ([]*airlock.Grant, error) {
	rows, err := s.pool.Query(ctx, grantsToEndQuery, now, limitOf(limit))
	return collect(rows, err, "list grants to end", scanGrant)
}

// EndGrant ends the grant with id, once, in one conditional UPDATE: an
// ended grant is ECONFLICT and keeps its first end (of racing replicas one
// wins), a missing one ENOTFOUND, a zero at EINVALID (it would read back as
// not ended).
func (s *Store) EndGrant(ctx context.Context, id, reason, by string, at time.Time) error {
	if at.IsZero() {
		return airlock.Errorf(airlock.EINVALID, "postgres: zero grant end time")
	}
	tag, err := s.pool.Exec(ctx, `UPDATE grants SET ended_at = $1, end_reason = $2, ended_by = $3
		WHERE id = $4 AND ended_at IS NULL`, at, reason, by, id)
	if err != nil {
		return dbError("end grant", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM grants WHERE id = $1)`, id).Scan(&exists); err != nil {
		return dbError("end grant", err)
	}
	if !exists {
		return notFound("grant")
	}
	return airlock.Errorf(airlock.ECONFLICT, "postgres: grant already ended")
}

// CreateSSHCertificate records c; a serial already recorded is ECONFLICT.
// The uint64 serial is stored as the bigint with the same bits.
func (s *Store) CreateSSHCertificate(ctx context.Context, c *airlock.SSHCertificate) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO ssh_certificates (`+sshCertificateColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		int64(c.Serial), c.KeyID, c.GrantID, c.UserID, c.SessionID, strs(c.Principals), c.PublicKey,
		ts(c.ValidAfter), ts(c.ValidBefore), c.SourceAddress, strs(c.Extensions), ts(c.IssuedAt))
	return dbError("create SSH certificate", err)
}

// ListSSHCertificates returns the certificates issued for grantID, oldest
// IssuedAt first (then in the order they were recorded).
func (s *Store) ListSSHCertificates(ctx context.Context, grantID string) ([]*airlock.SSHCertificate, error) {
	rows, err := s.pool.Query(ctx, sshCertificatesQuery, grantID)
	return collect(rows, err, "list SSH certificates", scanSSHCertificate)
}

func scanAccessRequest(row pgx.Row) (*airlock.AccessRequest, error) {
	var (
		r                    airlock.AccessRequest
		tier, duration, risk int64
		status               string
	)
	if err := row.Scan(&r.ID, &r.RequesterID, &r.SessionID, &r.DeviceID, &r.CredentialID, &r.Scope.Role,
		&r.Scope.Resource, &tier, &r.Scope.IsTier, &r.Reason, &r.Ticket, &duration, &r.DecisionID, &r.ApprovalRule,
		&risk, &r.IP, &r.UserAgent, &r.Digest, &status, tsp(&r.CreatedAt), tsp(&r.ExpiresAt), tsp(&r.ResolvedAt),
		&r.ResolvedBy, &r.Note, &r.GrantID); err != nil {
		return nil, err
	}
	r.CredentialID, r.Digest = nonEmpty(r.CredentialID), nonEmpty(r.Digest)
	r.Scope.Tier = airlock.Tier(tier)
	r.Duration, r.Risk, r.Status = time.Duration(duration), int(risk), airlock.RequestStatus(status)
	return &r, nil
}

func scanApproval(row pgx.Row) (*airlock.Approval, error) {
	var a airlock.Approval
	if err := row.Scan(&a.RequestID, &a.ApproverID, &a.SessionID, &a.DeviceID, &a.CredentialID, &a.Groups, &a.Comment,
		tsp(&a.CreatedAt)); err != nil {
		return nil, err
	}
	a.CredentialID, a.Groups = nonEmpty(a.CredentialID), nonNil(a.Groups)
	return &a, nil
}

func scanGrant(row pgx.Row) (*airlock.Grant, error) {
	var (
		g    airlock.Grant
		tier int64
	)
	if err := row.Scan(&g.ID, &g.RequestID, &g.UserID, &g.SessionID, &g.DeviceID, &g.CredentialID, &g.Scope.Role,
		&g.Scope.Resource, &tier, &g.Scope.IsTier, tsp(&g.NotBefore), tsp(&g.NotAfter), tsp(&g.CreatedAt),
		tsp(&g.EndedAt), &g.EndReason, &g.EndedBy); err != nil {
		return nil, err
	}
	g.CredentialID = nonEmpty(g.CredentialID)
	g.Scope.Tier = airlock.Tier(tier)
	return &g, nil
}

func scanSSHCertificate(row pgx.Row) (*airlock.SSHCertificate, error) {
	var (
		c      airlock.SSHCertificate
		serial int64
	)
	if err := row.Scan(&serial, &c.KeyID, &c.GrantID, &c.UserID, &c.SessionID, &c.Principals, &c.PublicKey,
		tsp(&c.ValidAfter), tsp(&c.ValidBefore), &c.SourceAddress, &c.Extensions, tsp(&c.IssuedAt)); err != nil {
		return nil, err
	}
	c.Serial = uint64(serial)
	c.Principals, c.Extensions = nonNil(c.Principals), nonNil(c.Extensions)
	return &c, nil
}

// where builds a WHERE clause with numbered parameters.
type where struct {
	conds []string
	args  []any
}

// arg adds v as the next parameter and returns its placeholder ("$n").
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + itoa(len(w.args))
}

// add adds the condition cond, which ends with "$", with v as its parameter.
func (w *where) add(cond string, v any) {
	w.conds = append(w.conds, strings.TrimSuffix(cond, "$")+w.arg(v))
}

// clause returns the conditions joined with AND into a WHERE clause ("" for
// none).
func (w *where) clause() string {
	if len(w.conds) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(w.conds, ` AND `)
}

// limitOf returns limit, or defaultElevationLimit when it is 0 or negative.
func limitOf(limit int) int {
	if limit <= 0 {
		return defaultElevationLimit
	}
	return limit
}
