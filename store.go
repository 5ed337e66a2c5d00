package airlock

import (
	"context"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Store is everything Airlock keeps. Times are stored with microsecond
// precision in UTC; the zero time means "never". Every implementation (sqlite, postgres)
// must pass the storetest conformance suite. Methods return *Error values
// with ENOTFOUND for a missing row and ECONFLICT for a uniqueness or
// single-use violation; any other failure is EINTERNAL or EUNAVAILABLE.
type Store interface {
	UserStore
	DeviceStore
	CredentialStore
	SessionStore
	EnrolmentTokenStore
	CeremonyStore
	AuditStore
	NotificationStore
	RateLimitStore
	// The decision edge's stores (decide_store.go).
	StepUpStore
	ExceptionStore
	ResourceStore
	SignalStore
	// Elevation: access requests, approvals, grants, SSH certificates
	// (elevation.go).
	ElevationStore
	// Recovery cases (recovery.go) and break-glass events (breakglass.go).
	RecoveryStore
	BreakGlassStore
	// Ping reports an error when the store cannot serve requests.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}

// UserStore keeps users.
type UserStore interface {
	// CreateUser inserts u. ID, Name and Handle must be unique (ECONFLICT).
	CreateUser(ctx context.Context, u *User) error
	// FindUserByID returns the user with id (ENOTFOUND if none).
	FindUserByID(ctx context.Context, id string) (*User, error)
	// FindUserByName returns the user with the login name (ENOTFOUND if none).
	FindUserByName(ctx context.Context, name string) (*User, error)
	// FindUserByHandle finds the user whose WebAuthn user handle is h.
	FindUserByHandle(ctx context.Context, h []byte) (*User, error)
	// ListUsers returns every user ordered by name.
	ListUsers(ctx context.Context) ([]*User, error)
	// UpdateUser replaces the mutable fields (DisplayName, Kind, Tier, Roles,
	// Disabled, Window, UpdatedAt) of the user with u.ID, provided the stored
	// Version equals u.Version (else ECONFLICT, nothing written), and
	// increments u.Version.
	UpdateUser(ctx context.Context, u *User) error
	// HasActiveTier0Admin reports whether some enabled tier-0 user with the
	// RoleAdmin role holds an unrevoked credential whose tier cap is 0 on a
	// device whose trust is trusted: someone who can still administer.
	HasActiveTier0Admin(ctx context.Context) (bool, error)
}

// DeviceStore keeps the device inventory.
type DeviceStore interface {
	// CreateDevice inserts d; a duplicate ID is ECONFLICT.
	CreateDevice(ctx context.Context, d *Device) error
	// FindDeviceByID returns the device with id (ENOTFOUND if none).
	FindDeviceByID(ctx context.Context, id string) (*Device, error)
	// ListDevices returns every device ordered by name, then ID.
	ListDevices(ctx context.Context) ([]*Device, error)
	// UpdateDevice replaces the mutable fields (Name, Owner, Kind, Posture,
	// Trust, UpdatedAt) of the device with d.ID, provided the stored Version
	// equals d.Version (else ECONFLICT, nothing written), and increments
	// d.Version.
	UpdateDevice(ctx context.Context, d *Device) error
}

// CredentialStore keeps passkeys.
type CredentialStore interface {
	// CreateCredential inserts c; a credential id registered before, to
	// anyone, is ECONFLICT.
	CreateCredential(ctx context.Context, c *Credential) error
	// FindCredentialByID returns the credential with the WebAuthn id (ENOTFOUND if none).
	FindCredentialByID(ctx context.Context, id []byte) (*Credential, error)
	// ListCredentialsByUser returns the user's credentials, revoked ones
	// included, oldest first.
	ListCredentialsByUser(ctx context.Context, userID string) ([]*Credential, error)
	// EnrolCredential binds a new passkey in one transaction: it marks the
	// enrolment token tokenID used at at and inserts c. A token already
	// used is ECONFLICT ("enrolment link already used"), a credential id
	// registered before, to anyone, is ECONFLICT, a missing token is
	// ENOTFOUND; on any error nothing is written (the token stays unused).
	EnrolCredential(ctx context.Context, tokenID string, c *Credential, at time.Time) error
	// UpdateCredentialUse records a successful assertion — the new sign
	// count, backup state and last-used time — as a compare-and-set: only
	// if the credential is not revoked and its stored sign count still
	// equals oldCount. Otherwise nothing is written and it returns
	// ENOTFOUND for a missing id, else ECONFLICT (revoked, or used
	// concurrently by another login).
	UpdateCredentialUse(ctx context.Context, id []byte, oldCount, newCount uint32, backupState bool, at time.Time) error
	// RevokeCredential sets RevokedAt; revoking twice succeeds and keeps the
	// first time.
	RevokeCredential(ctx context.Context, id []byte, at time.Time) error
}

// SessionStore keeps sessions.
type SessionStore interface {
	// CreateSession inserts s; a duplicate ID or token hash is ECONFLICT.
	CreateSession(ctx context.Context, s *Session) error
	// FindSessionByID returns the session with id, ended or not (ENOTFOUND if none).
	FindSessionByID(ctx context.Context, id string) (*Session, error)
	// FindSessionByTokenHash returns the session whose secret hashes to hash, ended or not (ENOTFOUND if none).
	FindSessionByTokenHash(ctx context.Context, hash []byte) (*Session, error)
	// TouchSession sets LastSeen of a session; an ended one is ECONFLICT.
	TouchSession(ctx context.Context, id string, at time.Time) error
	// SetSessionUV sets LastUVAt (a fresh user-verified assertion); an ended
	// session is ECONFLICT.
	SetSessionUV(ctx context.Context, id string, at time.Time) error
	// EndSession ends a session once; ending an ended session is ECONFLICT.
	EndSession(ctx context.Context, id, reason string, at time.Time) error
	// EndUserSessions ends every session of the user that has not ended
	// and returns their IDs, in no particular order.
	EndUserSessions(ctx context.Context, userID, reason string, at time.Time) ([]string, error)
	// EndDeviceSessions ends every session on the device that has not ended
	// and returns their IDs, in no particular order.
	EndDeviceSessions(ctx context.Context, deviceID, reason string, at time.Time) ([]string, error)
	// ListExpiredSessions returns at most limit sessions that have not ended
	// but whose absolute deadline or idle deadline (LastSeen + IdleTimeout)
	// is not after now, oldest deadline first.
	ListExpiredSessions(ctx context.Context, now time.Time, limit int) ([]*Session, error)
	// ListSessionsByUser returns the user's sessions that have not ended,
	// newest first.
	ListSessionsByUser(ctx context.Context, userID string) ([]*Session, error)
}

// EnrolmentTokenStore keeps enrolment tokens.
type EnrolmentTokenStore interface {
	// CreateEnrolmentToken inserts t; a duplicate ID or hash is ECONFLICT.
	CreateEnrolmentToken(ctx context.Context, t *EnrolmentToken) error
	// FindEnrolmentTokenByHash returns the token whose secret hashes to hash (ENOTFOUND if none).
	FindEnrolmentTokenByHash(ctx context.Context, hash []byte) (*EnrolmentToken, error)
	// FindEnrolmentTokenByID returns the token with id (ENOTFOUND if none).
	FindEnrolmentTokenByID(ctx context.Context, id string) (*EnrolmentToken, error)
	// UseEnrolmentToken marks the token used at at, atomically: a token
	// already used is ECONFLICT and stays as it was.
	UseEnrolmentToken(ctx context.Context, id string, at time.Time) error
	// ListEnrolmentTokens returns tokens newest first.
	ListEnrolmentTokens(ctx context.Context) ([]*EnrolmentToken, error)
}

// CeremonyStore keeps WebAuthn ceremony state.
type CeremonyStore interface {
	// CreateCeremony stores c; a duplicate ID is ECONFLICT.
	CreateCeremony(ctx context.Context, c *Ceremony) error
	// ConsumeCeremony deletes and returns the ceremony atomically, so that
	// of two concurrent callers exactly one gets it (the other ENOTFOUND).
	// It returns the ceremony even when expired: the caller checks.
	ConsumeCeremony(ctx context.Context, id string) (*Ceremony, error)
	// DeleteExpiredCeremonies removes ceremonies that expired before now.
	DeleteExpiredCeremonies(ctx context.Context, now time.Time) (int, error)
}

// AuditStore is the append-only, tamper-evident audit log: a Merkle tree
// (RFC 9162, golang.org/x/mod/sumdb/tlog) over the events' canonical JSON
// leaves, its stored hashes, signed checkpoints and delivery cursors. The
// storetest package doc pins down the contract in detail.
type AuditStore interface {
	// AppendAudit appends events in one transaction, all or nothing:
	// serialized with every other append to the same store (across
	// processes too), it reads the tree size N, computes the records with
	// PrepareAuditAppend (Seq N+1, N+2, … in argument order, leaves and
	// stored hashes) and stores them durably. Only after the commit does it
	// set each event's Seq; on error no event is stored and no Seq is set.
	// An invalid event (see AuditLeaf) is EINVALID. No events is a no-op.
	AppendAudit(ctx context.Context, events ...*AuditEvent) error
	// AuditTreeSize returns the number of events in the log: the largest
	// Seq, 0 when empty.
	AuditTreeSize(ctx context.Context) (int64, error)
	// ReadAuditHashes returns the tlog stored hashes with the given
	// indexes, in order (a tlog.HashReader); an index not stored is
	// ENOTFOUND.
	ReadAuditHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
	// ReadAuditEntries returns at most limit stored records with Seq >
	// afterSeq in ascending Seq order (limit 0: a store default; negative:
	// EINVALID), as stored, without checking them: verify, export and
	// streaming read the log through it.
	ReadAuditEntries(ctx context.Context, afterSeq int64, limit int) ([]*AuditEntry, error)
	// ListAudit returns events matching f in ascending Seq order (descending
	// when f.Newest), parsed from their leaves.
	ListAudit(ctx context.Context, f AuditFilter) ([]*AuditEvent, error)
	// AddAuditCheckpoint stores a signed checkpoint. Size must be between
	// 1 and the tree size (else EINVALID). A checkpoint for a size already
	// stored is a no-op when its Text is identical, else ECONFLICT.
	AddAuditCheckpoint(ctx context.Context, c *AuditCheckpoint) error
	// LatestAuditCheckpoint returns the checkpoint with the largest Size
	// (ENOTFOUND if none).
	LatestAuditCheckpoint(ctx context.Context) (*AuditCheckpoint, error)
	// ListAuditCheckpoints returns at most limit checkpoints with Size >
	// afterSize in ascending Size order (limit 0: a store default;
	// negative: EINVALID).
	ListAuditCheckpoints(ctx context.Context, afterSize int64, limit int) ([]*AuditCheckpoint, error)
	// AuditCursor returns the Seq up to which the named delivery sink has
	// delivered events, 0 if it never has.
	AuditCursor(ctx context.Context, name string) (int64, error)
	// SetAuditCursor durably records that sink name has delivered every
	// event up to seq. A cursor never moves backwards (a smaller seq than
	// stored is ECONFLICT, an equal one a no-op); an empty name, a negative
	// seq or one beyond the tree size is EINVALID.
	SetAuditCursor(ctx context.Context, name string, seq int64) error
}

// NotificationStore is the durable outbox of user notifications.
type NotificationStore interface {
	// EnqueueNotification stores n and assigns n.ID.
	EnqueueNotification(ctx context.Context, n *Notification) error
	// DueNotifications returns undelivered notifications whose NextAttempt
	// is not after now, oldest CreatedAt first, at most limit (limit ≤ 0
	// means a store default).
	DueNotifications(ctx context.Context, now time.Time, limit int) ([]*Notification, error)
	// MarkNotificationDelivered sets DeliveredAt; marking twice keeps the
	// first time.
	MarkNotificationDelivered(ctx context.Context, id int64, at time.Time) error
	// MarkNotificationFailed records a failed attempt: Attempts+1, the
	// error text and the time of the next attempt. A delivered notification
	// is ECONFLICT.
	MarkNotificationFailed(ctx context.Context, id int64, errText string, next time.Time) error
	// ListNotificationsByUser returns the user's notifications, newest first.
	ListNotificationsByUser(ctx context.Context, userID string) ([]*Notification, error)
}

// RateLimitStore counts hits per key in fixed windows, so that limits hold
// across replicas.
type RateLimitStore interface {
	// HitRateLimit adds one hit to key's window that contains now (windows
	// are aligned to multiples of window since the Unix epoch) and returns
	// the count in that window including this hit.
	HitRateLimit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error)
}
