package airlock

import (
	"context"
	"time"
)

// ID prefixes of recovery and break-glass records.
const (
	PrefixRecoveryCase    = "rc_"
	PrefixBreakGlassEvent = "bg_"
)

// PurposeRecovery is the purpose of the enrolment token a recovery case
// issues once its cool-down has passed: completing it revokes the subject's
// earlier passkeys (unless configured otherwise), ends every session and
// grant of the subject and records a RiskRecovery event.
const PurposeRecovery = "recovery"

// RecoveryStatus is where a recovery case stands.
//
//	pending ──quorum──▶ cooling_down ──claim after CoolDownUntil──▶ released ──enrolment──▶ completed
//	   │                     │                                        │
//	   └─▶ denied/expired    └─▶ cancelled (subject, officer)         └─▶ cancelled/expired
type RecoveryStatus string

// Recovery statuses.
const (
	// RecoveryPending: waiting for the officers' quorum.
	RecoveryPending RecoveryStatus = "pending"
	// RecoveryCoolingDown: the quorum approved; the subject has been
	// notified and may cancel until CoolDownUntil.
	RecoveryCoolingDown RecoveryStatus = "cooling_down"
	// RecoveryReleased: the cool-down passed and the claimant was issued the
	// single-use enrolment token EnrolTokenID.
	RecoveryReleased RecoveryStatus = "released"
	// RecoveryCompleted: the subject enrolled a new passkey through the
	// case; old credentials, sessions and grants were ended.
	RecoveryCompleted RecoveryStatus = "completed"
	// RecoveryCancelled: cancelled by the subject (a still-valid passkey),
	// an officer or the opener.
	RecoveryCancelled RecoveryStatus = "cancelled"
	// RecoveryDenied: an officer refused it.
	RecoveryDenied RecoveryStatus = "denied"
	// RecoveryExpired: it ran past ExpiresAt before completing.
	RecoveryExpired RecoveryStatus = "expired"
)

// Valid reports whether s is a known recovery status.
func (s RecoveryStatus) Valid() bool {
	switch s {
	case RecoveryPending, RecoveryCoolingDown, RecoveryReleased, RecoveryCompleted,
		RecoveryCancelled, RecoveryDenied, RecoveryExpired:
		return true
	}
	return false
}

// Final reports whether s is a status a case never leaves.
func (s RecoveryStatus) Final() bool {
	switch s {
	case RecoveryCompleted, RecoveryCancelled, RecoveryDenied, RecoveryExpired:
		return true
	}
	return false
}

// Recovery openers.
const (
	// OpenedBySelf: the subject opened the case from the login page ("lost
	// my passkey"), without signing in. OpenedBy is then the subject's ID.
	OpenedBySelf = "self"
	// OpenedByHelpdesk: a signed-in help-desk operator opened it for the
	// subject. OpenedBy is the operator's user ID.
	OpenedByHelpdesk = "helpdesk"
)

// RecoveryCase is one attempt to give a user who lost every passkey (or
// whose device was stolen) a new one. A case never signs anyone in: at its
// end it releases a single-use enrolment token bound to a compliant device
// of the subject.
type RecoveryCase struct {
	ID        string `json:"id"`
	SubjectID string `json:"subject_id"`
	// OpenedBy is who opened it: the subject's ID (Via = OpenedBySelf) or
	// the help-desk operator's (Via = OpenedByHelpdesk). Neither the subject
	// nor the opener may approve.
	OpenedBy string `json:"opened_by"`
	Via      string `json:"via"`
	Reason   string `json:"reason"`
	// Tier is the subject's tier when the case was opened: it sets the
	// quorum (Required) and the cool-down.
	Tier Tier `json:"tier"`
	// Required is the number of distinct recovery officers that must
	// approve.
	Required int            `json:"required"`
	Status   RecoveryStatus `json:"status"`
	// DeviceID is the inventory device the re-enrolment is bound to: set at
	// opening by a help-desk operator, or at claim. It must belong to the
	// subject and be trusted and compliant when the token is issued and
	// used.
	DeviceID string `json:"device_id,omitempty"`
	// SecretHash is SHA-256 of the claim secret handed (once) to whoever
	// opened the case: with it the claimant follows the case and, after the
	// cool-down, claims the enrolment token. Never shown.
	SecretHash []byte `json:"-"`
	// CoolDownUntil is set when the quorum is met: the earliest time the
	// enrolment token may be released.
	CoolDownUntil time.Time `json:"cool_down_until,omitempty"`
	// EnrolTokenID is the enrolment token released at claim.
	EnrolTokenID string `json:"enrol_token_id,omitempty"`
	// ResolvedAt, ResolvedBy and Note record the final step (completion,
	// cancel, denial, expiry) and its reason.
	ResolvedAt time.Time `json:"resolved_at,omitempty"`
	ResolvedBy string    `json:"resolved_by,omitempty"`
	Note       string    `json:"note,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	// ExpiresAt: a case not completed by then expires.
	ExpiresAt time.Time `json:"expires_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Version counts updates; UpdateRecoveryCase is a compare-and-set on it.
	Version int64 `json:"version"`
}

// RecoveryApproval is one officer's approval of a case: a user-verified
// passkey assertion over the case's digest and the officer's account of how
// they verified the subject's identity.
type RecoveryApproval struct {
	CaseID       string `json:"case_id"`
	ApproverID   string `json:"approver_id"`
	SessionID    string `json:"session_id"`
	DeviceID     string `json:"device_id"`
	CredentialID []byte `json:"credential_id"`
	// Verification is how the officer verified the person (e.g. "video
	// call, photo ID matched HR record"); required.
	Verification string `json:"verification"`
	// Challenge is the assertion's challenge, base64url(SHA-256(nonce ‖
	// digest)), for the audit trail.
	Challenge string    `json:"challenge"`
	At        time.Time `json:"at"`
}

// RecoveryCaseFilter selects recovery cases; zero fields match everything.
type RecoveryCaseFilter struct {
	SubjectID string
	// Statuses, when not empty, keeps cases in one of them.
	Statuses     []RecoveryStatus
	EnrolTokenID string
	// Since keeps cases created at or after it.
	Since time.Time
	Limit int // ≤ 0: 100
}

// RecoveryStore keeps recovery cases and their approvals.
type RecoveryStore interface {
	// CreateRecoveryCase inserts c; a duplicate ID or SecretHash is
	// ECONFLICT.
	CreateRecoveryCase(ctx context.Context, c *RecoveryCase) error
	// FindRecoveryCaseByID returns the case with id (ENOTFOUND if none).
	FindRecoveryCaseByID(ctx context.Context, id string) (*RecoveryCase, error)
	// FindRecoveryCaseBySecret returns the case whose claim secret hashes
	// to hash (ENOTFOUND if none).
	FindRecoveryCaseBySecret(ctx context.Context, hash []byte) (*RecoveryCase, error)
	// ListRecoveryCases returns cases matching f, newest CreatedAt first
	// (then by ID).
	ListRecoveryCases(ctx context.Context, f RecoveryCaseFilter) ([]*RecoveryCase, error)
	// UpdateRecoveryCase replaces the mutable fields (Status, DeviceID,
	// CoolDownUntil, EnrolTokenID, ResolvedAt, ResolvedBy, Note, ExpiresAt,
	// UpdatedAt) of the case with c.ID, provided the stored Version equals
	// c.Version (else ECONFLICT, nothing written), and increments
	// c.Version. A missing case is ENOTFOUND; an invalid status EINVALID.
	UpdateRecoveryCase(ctx context.Context, c *RecoveryCase) error
	// AddRecoveryApproval stores a, provided the case exists (ENOTFOUND)
	// and is pending (else ECONFLICT); a second approval by the same
	// approver is ECONFLICT. Nothing is written on error.
	AddRecoveryApproval(ctx context.Context, a *RecoveryApproval) error
	// ListRecoveryApprovals returns the case's approvals, oldest first.
	ListRecoveryApprovals(ctx context.Context, caseID string) ([]*RecoveryApproval, error)
	// ListRecoveryCasesToExpire returns at most limit (≤ 0: 100) cases not
	// in a final status whose ExpiresAt is not after now, oldest first.
	ListRecoveryCasesToExpire(ctx context.Context, now time.Time, limit int) ([]*RecoveryCase, error)
}
