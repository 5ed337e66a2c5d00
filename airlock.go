// Package airlock holds Airlock's domain types, the store interfaces every
// backend implements, and the error codes shared by all parts.
//
// The root package performs no I/O: it imports neither net/http nor
// database/sql. Domain parts (passkey, device, session, audit, notify) use the
// interfaces declared here; edges (http, cmd/airlock) wire them to a concrete
// store (sqlite, later postgres).
package airlock

import (
	"fmt"
	"time"
)

// Tier is a privilege tier: 0 is the most privileged, MaxTier the least.
type Tier int

// MaxTier is the least privileged tier.
const MaxTier Tier = 2

// Valid reports whether t is one of the tiers 0..MaxTier.
func (t Tier) Valid() bool { return t >= 0 && t <= MaxTier }

// String returns "tier-N".
func (t Tier) String() string { return fmt.Sprintf("tier-%d", int(t)) }

// LeastPrivileged returns the less privileged (numerically larger) of a and b.
func LeastPrivileged(a, b Tier) Tier {
	if a > b {
		return a
	}
	return b
}

// UserKind says what sort of account a user is.
type UserKind string

// User kinds.
const (
	UserEmployee   UserKind = "employee"
	UserContractor UserKind = "contractor"
	UserBreakGlass UserKind = "breakglass"
)

// Valid reports whether k is a known user kind.
func (k UserKind) Valid() bool {
	switch k {
	case UserEmployee, UserContractor, UserBreakGlass:
		return true
	}
	return false
}

// AccessWindow bounds when a contractor may work. The zero value places no
// bound. Hours are in TimeZone (IANA name; empty means UTC).
type AccessWindow struct {
	NotBefore time.Time      `json:"not_before,omitempty"`
	NotAfter  time.Time      `json:"not_after,omitempty"`
	Weekdays  []time.Weekday `json:"weekdays,omitempty"`
	StartHour int            `json:"start_hour,omitempty"` // inclusive, 0-23
	EndHour   int            `json:"end_hour,omitempty"`   // exclusive, 1-24; 0 means no hour bound
	TimeZone  string         `json:"time_zone,omitempty"`
}

// User is a person (or a sealed break-glass account) who can hold passkeys.
type User struct {
	ID          string        `json:"id"`
	Name        string        `json:"name"` // unique login name
	DisplayName string        `json:"display_name"`
	Kind        UserKind      `json:"kind"`
	Tier        Tier          `json:"tier"`
	Roles       []string      `json:"roles"`
	Disabled    bool          `json:"disabled"`
	Window      *AccessWindow `json:"window,omitempty"`
	// Handle is the WebAuthn user handle: 32 random bytes, never the ID or
	// name, so that an authenticator learns nothing about the account.
	Handle    []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Version counts updates. UpdateUser succeeds only when it equals the
	// stored version (so a read-modify-write never silently undoes a
	// concurrent change) and then increments it.
	Version int64 `json:"version"`
}

// DeviceKind says how a device is owned and managed.
type DeviceKind string

// Device kinds.
const (
	DeviceManaged          DeviceKind = "managed"
	DeviceSharedStation    DeviceKind = "shared-station"
	DeviceContractorIssued DeviceKind = "contractor-issued"
	DeviceUnmanaged        DeviceKind = "unmanaged"
)

// Valid reports whether k is a known device kind.
func (k DeviceKind) Valid() bool {
	switch k {
	case DeviceManaged, DeviceSharedStation, DeviceContractorIssued, DeviceUnmanaged:
		return true
	}
	return false
}

// TrustState is the inventory's verdict on a device.
type TrustState string

// Trust states.
const (
	TrustPending TrustState = "pending"
	TrustTrusted TrustState = "trusted"
	TrustRevoked TrustState = "revoked"
)

// Valid reports whether s is a known trust state.
func (s TrustState) Valid() bool {
	switch s {
	case TrustPending, TrustTrusted, TrustRevoked:
		return true
	}
	return false
}

// Posture is the last reported security state of a device. ReportedAt and
// Source say when and by whom; a zero ReportedAt means never reported.
type Posture struct {
	Managed       bool      `json:"managed"`
	DiskEncrypted bool      `json:"disk_encrypted"`
	OSVersion     string    `json:"os_version"`
	PatchLevel    string    `json:"patch_level"` // YYYY-MM-DD of the latest security patch
	EDRRunning    bool      `json:"edr_running"`
	ScreenLock    bool      `json:"screen_lock"`
	ReportedAt    time.Time `json:"reported_at"`
	Source        string    `json:"source"`
}

// SharedOwner is the Owner of a device that belongs to no single user.
const SharedOwner = "shared"

// Device is an inventory record for a computer a passkey may live on.
type Device struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Owner     string     `json:"owner"` // a user ID, or SharedOwner
	Kind      DeviceKind `json:"kind"`
	Posture   Posture    `json:"posture"`
	Trust     TrustState `json:"trust"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	// Version counts updates, as User.Version does.
	Version int64 `json:"version"`
}

// Credential is a registered passkey, bound to one user and one device.
type Credential struct {
	ID                []byte `json:"id"` // WebAuthn credential id, at most 1023 bytes
	UserID            string `json:"user_id"`
	DeviceID          string `json:"device_id"`
	Name              string `json:"name"`
	AAGUID            string `json:"aaguid"` // canonical UUID text
	AttestationFormat string `json:"attestation_format"`
	AttestationType   string `json:"attestation_type"`
	// AttestationTrusted is true only when, at enrolment, the attestation
	// statement carried a certificate chain (format not "none", type not
	// self attestation) that verified against the attestation roots of
	// some tier. Without it the AAGUID is only the authenticator's claim,
	// and the credential cannot serve a tier that requires attestation.
	AttestationTrusted bool      `json:"attestation_trusted"`
	PublicKey          []byte    `json:"-"` // COSE key
	Algorithm          int64     `json:"algorithm"`
	Transports         []string  `json:"transports"`
	BackupEligible     bool      `json:"backup_eligible"`
	BackupState        bool      `json:"backup_state"`
	SignCount          uint32    `json:"sign_count"`
	TierCap            Tier      `json:"tier_cap"` // the most privileged tier it may serve
	CreatedAt          time.Time `json:"created_at"`
	LastUsedAt         time.Time `json:"last_used_at,omitempty"`
	// RevokedAt is zero while the credential is usable.
	RevokedAt time.Time `json:"revoked_at,omitempty"`
}

// IsRevoked reports whether the credential has been revoked.
func (c *Credential) IsRevoked() bool { return !c.RevokedAt.IsZero() }

// Session is a signed-in browser or API client. The bearer secret is never
// stored: TokenHash is SHA-256 of it.
type Session struct {
	ID           string    `json:"id"` // public correlation id
	TokenHash    []byte    `json:"-"`
	UserID       string    `json:"user_id"`
	DeviceID     string    `json:"device_id"`
	CredentialID []byte    `json:"credential_id"`
	Tier         Tier      `json:"tier"` // effective tier: user tier limited by the credential's cap
	AMR          []string  `json:"amr"`
	ACR          string    `json:"acr"`
	AuthTime     time.Time `json:"auth_time"`
	LastSeen     time.Time `json:"last_seen"`
	LastUVAt     time.Time `json:"last_uv_at"`
	// AbsoluteDeadline is when the session ends whatever its activity.
	AbsoluteDeadline time.Time `json:"absolute_deadline"`
	// IdleTimeout ends the session when LastSeen is older than it.
	IdleTimeout time.Duration `json:"idle_timeout"`
	IP          string        `json:"ip"`
	UserAgent   string        `json:"user_agent"`
	// KeyThumbprint, when not empty, binds the bearer token to a key pair
	// (a CLI session from `airlock login`): it is the RFC 7638 JWK SHA-256
	// thumbprint (base64url) of the public key, and every request with the
	// token must carry a DPoP proof (RFC 9449) signed by that key. Empty
	// for browser sessions.
	KeyThumbprint string    `json:"key_thumbprint,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	// EndedAt is zero while the session is live.
	EndedAt   time.Time `json:"ended_at,omitempty"`
	EndReason string    `json:"end_reason,omitempty"`
}

// IdleDeadline is when the session ends if it sees no further activity.
func (s *Session) IdleDeadline() time.Time { return s.LastSeen.Add(s.IdleTimeout) }

// IsLive reports whether the session has not ended and neither deadline has
// passed at now.
func (s *Session) IsLive(now time.Time) bool {
	return s.EndedAt.IsZero() && now.Before(s.AbsoluteDeadline) && now.Before(s.IdleDeadline())
}

// Enrolment token purposes.
const (
	PurposeEnrol     = "enrol"
	PurposeBootstrap = "bootstrap"
)

// EnrolmentToken lets one user enrol one passkey on one device, once. Only
// the SHA-256 of the secret is stored.
type EnrolmentToken struct {
	Hash      []byte    `json:"-"`
	ID        string    `json:"id"` // public id for audit and listing
	UserID    string    `json:"user_id"`
	DeviceID  string    `json:"device_id"`
	Purpose   string    `json:"purpose"`
	CreatedBy string    `json:"created_by"` // user ID of the issuer, or "system"
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// UsedAt is zero until the token has enrolled a passkey.
	UsedAt time.Time `json:"used_at,omitempty"`
}

// Ceremony is the server-side state of one WebAuthn ceremony (its challenge
// and options). It is single use and expires.
type Ceremony struct {
	ID        string
	Kind      string // "enrol", "login", …
	UserID    string // empty for discoverable login
	Ref       string // kind-specific reference, e.g. the enrolment token's ID
	Data      []byte // opaque to the store: the serialized WebAuthn session data
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Audit outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeDenied  = "denied"
)

// AuditEvent is one entry of the audit trail. Seq is assigned by the store.
// Its leaf in the audit Merkle tree is its canonical JSON (AuditLeaf); events
// read back from a store are parsed from that leaf, so numbers in Details
// come back as json.Number, exactly as recorded.
type AuditEvent struct {
	Seq           int64          `json:"seq"`
	Time          time.Time      `json:"time"`
	Type          string         `json:"type"`
	Actor         string         `json:"actor,omitempty"`
	Subject       string         `json:"subject,omitempty"`
	Outcome       string         `json:"outcome"`
	Reason        string         `json:"reason,omitempty"`
	UserID        string         `json:"user_id,omitempty"`
	SessionID     string         `json:"session_id,omitempty"`
	DeviceID      string         `json:"device_id,omitempty"`
	CredentialID  string         `json:"credential_id,omitempty"` // base64url
	DecisionID    string         `json:"decision_id,omitempty"`
	TransactionID string         `json:"transaction_id,omitempty"`
	RequestID     string         `json:"request_id,omitempty"`
	GrantID       string         `json:"grant_id,omitempty"`
	SSHSessionID  string         `json:"ssh_session_id,omitempty"`
	IP            string         `json:"ip,omitempty"`
	Details       map[string]any `json:"details,omitempty"`
}

// AuditFilter selects audit events. Zero fields match everything; Limit 0
// means the store's default page size.
type AuditFilter struct {
	AfterSeq int64
	// BeforeSeq, if positive, keeps only events with Seq < BeforeSeq.
	BeforeSeq int64
	// Newest returns the newest Limit matching events in descending Seq
	// order instead of the oldest in ascending order.
	Newest    bool
	UserID    string
	SessionID string
	GrantID   string
	Type      string // exact type, or a prefix ending in "." (e.g. "auth.")
	// Since, if not zero, keeps only events with Time ≥ Since.
	Since time.Time
	// Until, if not zero, keeps only events with Time < Until.
	Until time.Time
	Limit int
}

// Notification is a message to a user waiting in the durable outbox until a
// receiver has accepted it.
type Notification struct {
	ID          int64     `json:"id"`
	Kind        string    `json:"kind"` // e.g. "passkey.added"
	UserID      string    `json:"user_id"`
	Payload     []byte    `json:"payload"` // JSON body delivered to the receiver
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	LastError   string    `json:"last_error,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	// DeliveredAt is zero until a receiver accepted it.
	DeliveredAt time.Time `json:"delivered_at,omitempty"`
}

// RoleAdmin is the role that, with a tier-0 or tier-1 session, opens
// Airlock's own admin API. The bootstrap administrator holds it.
const RoleAdmin = "airlock-admin"
