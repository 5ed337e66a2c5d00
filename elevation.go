package airlock

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ID prefixes of elevation records.
const (
	PrefixAccessRequest = "req_"
	PrefixGrant         = "grt_"
)

// RequestStatus is where an access request stands. Only a pending request
// changes, and only once: to approved, denied, expired or cancelled.
type RequestStatus string

// Request statuses.
const (
	RequestPending   RequestStatus = "pending"
	RequestApproved  RequestStatus = "approved"
	RequestDenied    RequestStatus = "denied"
	RequestExpired   RequestStatus = "expired"
	RequestCancelled RequestStatus = "cancelled"
)

// Valid reports whether s is a known request status.
func (s RequestStatus) Valid() bool {
	switch s {
	case RequestPending, RequestApproved, RequestDenied, RequestExpired, RequestCancelled:
		return true
	}
	return false
}

// Scope is what an access request asks for: a role on a resource
// ("dba@db-prod") or a whole tier ("tier:1", every resource of that tier or
// a less privileged one). The zero value is no scope.
type Scope struct {
	Role     string `json:"role,omitempty"`
	Resource string `json:"resource,omitempty"`
	// Tier is the scope's tier: the resource's tier for a role scope, the
	// named tier for a tier scope.
	Tier Tier `json:"tier"`
	// IsTier says the scope is a whole tier (Role and Resource empty).
	IsTier bool `json:"is_tier,omitempty"`
}

// String is the scope's canonical text: "role@resource" or "tier:N". It is
// also the principal of SSH certificates issued for the scope.
func (s Scope) String() string {
	if s.IsTier {
		return "tier:" + strconv.Itoa(int(s.Tier))
	}
	return s.Role + "@" + s.Resource
}

// ParseScope parses "role@resource" or "tier:N". It checks the syntax only
// (names of 1–64 characters from [A-Za-z0-9._-], a valid tier); whether the
// resource exists, and its tier, is for the caller to fill in. A role
// scope's Tier is left 0.
func ParseScope(text string) (Scope, error) {
	if t, ok := strings.CutPrefix(text, "tier:"); ok {
		n, err := strconv.Atoi(t)
		if err != nil || strconv.Itoa(n) != t || !Tier(n).Valid() {
			return Scope{}, Errorf(EINVALID, "scope %q: tier must be 0..%d", clipText(text), MaxTier)
		}
		return Scope{Tier: Tier(n), IsTier: true}, nil
	}
	role, res, ok := strings.Cut(text, "@")
	if !ok || !scopeName(role) || !scopeName(res) {
		return Scope{}, Errorf(EINVALID, "scope %q: want ROLE@RESOURCE or tier:N (names of 1-64 letters, digits, '.', '_', '-')", clipText(text))
	}
	return Scope{Role: role, Resource: res}, nil
}

func scopeName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func clipText(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Covers reports whether a grant of scope s covers the resource named name
// of tier t: a role scope covers its own resource, a tier scope every
// resource of its tier or a less privileged one. Either way the resource's
// tier t must be no more privileged than the scope's: a resource
// reclassified to a more privileged tier after the grant was approved (for
// the tier it had then) is no longer covered.
func (s Scope) Covers(name string, t Tier) bool {
	if s.IsTier {
		return t >= s.Tier
	}
	return s.Resource == name && t >= s.Tier
}

// AccessRequest is a user's request for time-bounded privilege: a scope, for
// a task, for a duration. The policy engine decided it when it was made:
// auto-approved (a grant at once), approval_required (ApprovalRule names
// the rule whose quorum must approve) or denied.
type AccessRequest struct {
	ID          string `json:"id"`
	RequesterID string `json:"requester_id"`
	// SessionID, DeviceID and CredentialID are the requesting session's:
	// the grant is bound to that session.
	SessionID    string `json:"session_id"`
	DeviceID     string `json:"device_id"`
	CredentialID []byte `json:"credential_id"`
	Scope        Scope  `json:"scope"`
	// Reason is the task in the requester's words; Ticket an optional
	// ticket id.
	Reason string `json:"reason"`
	Ticket string `json:"ticket,omitempty"`
	// Duration is how long the grant lasts once approved, already capped
	// to the scope tier's maximum.
	Duration time.Duration `json:"duration"`
	// DecisionID is the policy decision on the request; ApprovalRule the
	// rule it named (empty when no approval is needed).
	DecisionID   string `json:"decision_id"`
	ApprovalRule string `json:"approval_rule,omitempty"`
	// Risk is the decision's risk score, shown to approvers.
	Risk int `json:"risk"`
	// IP and UserAgent are the requester's, shown to approvers.
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent"`
	// Digest is SHA-256 of the request's canonical encoding (RequestDigest
	// in package elevate): every approval's WebAuthn challenge is derived
	// from it.
	Digest    []byte        `json:"digest"`
	Status    RequestStatus `json:"status"`
	CreatedAt time.Time     `json:"created_at"`
	// ExpiresAt: a request still pending then expires (default 1 h).
	ExpiresAt time.Time `json:"expires_at"`
	// Set once when the request leaves pending.
	ResolvedAt time.Time `json:"resolved_at,omitempty"`
	// ResolvedBy is the user who denied or cancelled it, the last approver
	// whose approval made the quorum, "policy" for an auto-approval, or
	// "system" for an expiry.
	ResolvedBy string `json:"resolved_by,omitempty"`
	// Note is the denial's reason (required to deny) or another
	// resolution's remark.
	Note    string `json:"note,omitempty"`
	GrantID string `json:"grant_id,omitempty"`
}

// Approval is one approver's passkey-confirmed yes to one access request.
// Each is a user-verified assertion whose challenge was derived from the
// request's Digest.
type Approval struct {
	RequestID    string `json:"request_id"`
	ApproverID   string `json:"approver_id"`
	SessionID    string `json:"session_id"`
	DeviceID     string `json:"device_id"`
	CredentialID []byte `json:"credential_id"`
	// Groups are the approver's groups (roles) named by the approval rule,
	// as they were at approval time.
	Groups    []string  `json:"groups"`
	Comment   string    `json:"comment,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Grant end reasons.
const (
	EndExpired            = "expired"             // not_after passed
	EndDone               = "done"                // the user marked the task done
	EndRevokedByAdmin     = "revoked_by_admin"    // an admin revoked it
	EndSessionEnded       = "session_ended"       // its session ended or was revoked
	EndDeviceUntrusted    = "device_untrusted"    // the device lost trust
	EndDeviceNonCompliant = "device_noncompliant" // the device fell out of compliance
	EndCredentialRevoked  = "credential_revoked"  // the session's passkey was revoked
	EndUserDisabled       = "user_disabled"       // the user was disabled
	// EndAuditFailed: the grant's own audit records (elevation.approved,
	// elevation.granted) could not be written, so it was ended the moment
	// it was made — an unaudited grant is never usable.
	EndAuditFailed = "audit_failed"
)

// Grant is time-bounded privilege: a scope held by one user, through the
// session that requested it, from NotBefore until NotAfter or until ended.
type Grant struct {
	ID           string    `json:"id"`
	RequestID    string    `json:"request_id"`
	UserID       string    `json:"user_id"`
	SessionID    string    `json:"session_id"`
	DeviceID     string    `json:"device_id"`
	CredentialID []byte    `json:"credential_id"`
	Scope        Scope     `json:"scope"`
	NotBefore    time.Time `json:"not_before"`
	NotAfter     time.Time `json:"not_after"`
	CreatedAt    time.Time `json:"created_at"`
	// Set once when the grant ends before NotAfter (or is swept after it).
	EndedAt   time.Time `json:"ended_at,omitempty"`
	EndReason string    `json:"end_reason,omitempty"`
	EndedBy   string    `json:"ended_by,omitempty"` // a user ID or "system"
}

// IsActive reports whether the grant is in force at now, by its own
// record: not ended, NotBefore ≤ now < NotAfter. Whether its session,
// device, passkey and user are still good is for package elevate to check.
func (g *Grant) IsActive(now time.Time) bool {
	return g.EndedAt.IsZero() && !now.Before(g.NotBefore) && now.Before(g.NotAfter)
}

// SSHCertificate records one OpenSSH user certificate Airlock issued, so
// that serials stay unique and sshd's log lines ("ID <key id> (serial N)")
// join the grant's audit record.
type SSHCertificate struct {
	Serial uint64 `json:"serial"`
	// KeyID is "<user name>/<grant id>".
	KeyID      string   `json:"key_id"`
	GrantID    string   `json:"grant_id"`
	UserID     string   `json:"user_id"`
	SessionID  string   `json:"session_id"`
	Principals []string `json:"principals"`
	// PublicKey is the SHA-256 fingerprint of the certified key
	// ("SHA256:…", as ssh-keygen prints it).
	PublicKey   string    `json:"public_key"`
	ValidAfter  time.Time `json:"valid_after"`
	ValidBefore time.Time `json:"valid_before"`
	// SourceAddress is the source-address critical option, if any.
	SourceAddress string    `json:"source_address,omitempty"`
	Extensions    []string  `json:"extensions"`
	IssuedAt      time.Time `json:"issued_at"`
}

// AccessRequestFilter selects access requests; zero fields match all.
type AccessRequestFilter struct {
	RequesterID string
	Status      RequestStatus
	// Limit bounds the result (≤ 0: a store default of 100).
	Limit int
}

// GrantFilter selects grants; zero fields match all.
type GrantFilter struct {
	UserID    string
	SessionID string
	// ActiveAt, if not zero, keeps only grants with IsActive(ActiveAt).
	ActiveAt time.Time
	// Limit bounds the result (≤ 0: a store default of 100).
	Limit int
}

// ElevationStore keeps access requests, their approvals, grants and issued
// SSH certificates. Resolving a request and creating its grant happen in one
// transaction, so that concurrent approvals on several replicas make exactly
// one grant.
type ElevationStore interface {
	// CreateAccessRequest inserts r; a duplicate ID is ECONFLICT.
	CreateAccessRequest(ctx context.Context, r *AccessRequest) error
	// FindAccessRequestByID returns the request with id (ENOTFOUND if none).
	FindAccessRequestByID(ctx context.Context, id string) (*AccessRequest, error)
	// ListAccessRequests returns requests matching f, newest CreatedAt
	// first (then by ID).
	ListAccessRequests(ctx context.Context, f AccessRequestFilter) ([]*AccessRequest, error)
	// AddApproval stores a, provided the request exists (ENOTFOUND) and is
	// pending (else ECONFLICT); a second approval by the same approver is
	// ECONFLICT. Nothing is written on error.
	AddApproval(ctx context.Context, a *Approval) error
	// ListApprovals returns the request's approvals, oldest first.
	ListApprovals(ctx context.Context, requestID string) ([]*Approval, error)
	// ResolveAccessRequest moves the request with id from pending to
	// status (approved, denied, expired or cancelled) with ResolvedAt = at,
	// ResolvedBy = by and Note = note, and, when g is not nil, inserts the
	// grant g and sets the request's GrantID = g.ID — all in one
	// transaction. A request not pending is ECONFLICT (nothing written); a
	// missing one ENOTFOUND; arguments CheckResolution refuses are
	// EINVALID (nothing written).
	ResolveAccessRequest(ctx context.Context, id string, status RequestStatus, by, note string, at time.Time, g *Grant) error
	// ListExpiredAccessRequests returns at most limit (≤ 0: 100) pending
	// requests whose ExpiresAt is not after now, oldest first.
	ListExpiredAccessRequests(ctx context.Context, now time.Time, limit int) ([]*AccessRequest, error)
	// FindGrantByID returns the grant with id (ENOTFOUND if none).
	FindGrantByID(ctx context.Context, id string) (*Grant, error)
	// ListGrants returns grants matching f, newest CreatedAt first (then
	// by ID).
	ListGrants(ctx context.Context, f GrantFilter) ([]*Grant, error)
	// ListGrantsToEnd returns at most limit (≤ 0: 100) grants not ended
	// whose NotAfter is not after now (due to be swept), oldest NotAfter
	// first.
	ListGrantsToEnd(ctx context.Context, now time.Time, limit int) ([]*Grant, error)
	// EndGrant sets EndedAt = at, EndReason and EndedBy on the grant with
	// id, once: a grant already ended is ECONFLICT (nothing written), a
	// missing one ENOTFOUND.
	EndGrant(ctx context.Context, id, reason, by string, at time.Time) error
	// CreateSSHCertificate records an issued certificate; a Serial already
	// recorded is ECONFLICT (the issuer draws another).
	CreateSSHCertificate(ctx context.Context, c *SSHCertificate) error
	// ListSSHCertificates returns the certificates issued for grantID,
	// oldest IssuedAt first.
	ListSSHCertificates(ctx context.Context, grantID string) ([]*SSHCertificate, error)
}

// CheckResolution checks the arguments of ResolveAccessRequest before a
// store touches its database: status must be valid and not pending, at not
// zero (it would read back as unresolved), and a grant, when given, goes
// only with status approved, has an ID and names the request (g.RequestID
// = id). Any of these failing is EINVALID.
func CheckResolution(id string, status RequestStatus, at time.Time, g *Grant) error {
	if !status.Valid() || status == RequestPending {
		return Errorf(EINVALID, "cannot resolve an access request to status %q", status)
	}
	if at.IsZero() {
		return Errorf(EINVALID, "zero access request resolution time")
	}
	if g == nil {
		return nil
	}
	if status != RequestApproved {
		return Errorf(EINVALID, "a grant goes only with an approved request, not a %s one", status)
	}
	if g.ID == "" {
		return Errorf(EINVALID, "the grant has no ID")
	}
	if g.RequestID != id {
		return Errorf(EINVALID, "the grant names request %q, not %q", g.RequestID, id)
	}
	return nil
}

// DefaultGrantCaps are the longest grants per tier (DESIGN.md): tier 0 1 h,
// tier 1 4 h, tier 2 8 h.
var DefaultGrantCaps = [MaxTier + 1]time.Duration{time.Hour, 4 * time.Hour, 8 * time.Hour}

// CapDuration returns d limited to caps[t]; an invalid tier gets the tier-0
// cap (fail towards the shorter grant).
func CapDuration(d time.Duration, t Tier, caps [MaxTier + 1]time.Duration) time.Duration {
	c := caps[0]
	if t.Valid() {
		c = caps[t]
	}
	if d > c {
		return c
	}
	return d
}

// GoString helps test failure messages.
func (s Scope) GoString() string {
	return fmt.Sprintf("airlock.Scope(%q, tier %d)", s.String(), s.Tier)
}
