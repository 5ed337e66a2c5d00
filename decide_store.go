package airlock

import (
	"context"
	"time"
)

// ID prefixes of the decision edge's records.
const (
	PrefixStepUp    = "txn_"
	PrefixException = "exc_"
)

// StepUp is a pending or completed step-up transaction: one exact request
// (action, resource, parameters) of one session that the policy answered
// with step_up. Its WebAuthn challenge is SHA-256(nonce ‖ Digest); finishing
// the ceremony stores the hash of a single-use proof that decide accepts
// once, for the identical request, until ProofExpiresAt.
type StepUp struct {
	ID        string `json:"id"`
	SessionID string `json:"session_id"`
	UserID    string `json:"user_id"`
	DeviceID  string `json:"device_id"`
	Action    string `json:"action"`
	Resource  string `json:"resource"`
	// Params is the canonical JSON of the request's parameters (shown on
	// the step-up page); ParamsDigest is SHA-256 of it.
	Params       []byte `json:"params"`
	ParamsDigest []byte `json:"params_digest"`
	// Client names the requesting application, as the PEP reported it.
	Client     string `json:"client"`
	DecisionID string `json:"decision_id"`
	// Digest is SHA-256 of the canonical encoding of (action, resource,
	// params digest, session, decision id, expiry).
	Digest []byte `json:"digest"`
	// ACR and MaxAge are the decision's obligations; Reason its human text.
	ACR    string `json:"acr"`
	MaxAge int64  `json:"max_age"`
	Reason string `json:"reason"`
	// IP is the end user's address the PEP reported with the request.
	IP        string    `json:"ip"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt bounds when the ceremony may complete.
	ExpiresAt time.Time `json:"expires_at"`

	// Set once by CompleteStepUp.
	ProofHash      []byte    `json:"-"`
	CredentialID   []byte    `json:"credential_id,omitempty"`
	CompletedAt    time.Time `json:"completed_at,omitempty"`
	ProofExpiresAt time.Time `json:"proof_expires_at,omitempty"`
	// UsedAt is set once by ConsumeStepUpProof.
	UsedAt time.Time `json:"used_at,omitempty"`
}

// IsCompleted reports whether the step-up ceremony finished.
func (t *StepUp) IsCompleted() bool { return !t.CompletedAt.IsZero() }

// Exception is a time-bounded, owned deviation from policy (for example
// "waive the step-up of deploy.prod on ci for alice until Friday"), handed to
// the policy engine while live. An empty UserID, Action or Resource matches
// any.
type Exception struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	Action    string    `json:"action"`
	Resource  string    `json:"resource"`
	Effect    string    `json:"effect"`
	Owner     string    `json:"owner"`
	Reason    string    `json:"reason"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt: the exception is live while now is before it.
	ExpiresAt time.Time `json:"expires_at"`
}

// Resource is something actions are done to, with its tier and labels (e.g.
// env=prod). Resources come from config and, through the admin API, from the
// store.
type Resource struct {
	Name      string            `json:"name"`
	Tier      Tier              `json:"tier"`
	Labels    map[string]string `json:"labels"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	// Version counts updates, as User.Version does.
	Version int64 `json:"version"`
}

// GeoPoint is where a GeoIP database placed an address.
type GeoPoint struct {
	Lat     float64 `json:"lat"`
	Lon     float64 `json:"lon"`
	Country string  `json:"country"`
}

// NetworkSighting records that a user made a request from a network (an
// IPv4 /24 or IPv6 /48 in prefix form, e.g. "192.0.2.0/24").
type NetworkSighting struct {
	UserID    string    `json:"user_id"`
	Network   string    `json:"network"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Location is where the latest located sighting was placed; nil when
	// no GeoIP database located it.
	Location *GeoPoint `json:"location,omitempty"`
}

// Risk event kinds counted by SignalStore.
const (
	// RiskCeremonyFailure: a passkey ceremony (login, step-up) of the user
	// failed after the user was identified.
	RiskCeremonyFailure = "ceremony_failure"
	// RiskClone: a sign-count regression on one of the user's credentials.
	RiskClone = "clone"
	// RiskRecovery: the account completed a recovery.
	RiskRecovery = "recovery"
)

// StepUpStore keeps step-up transactions and their single-use proofs.
type StepUpStore interface {
	// CreateStepUp inserts t; a duplicate ID is ECONFLICT.
	CreateStepUp(ctx context.Context, t *StepUp) error
	// FindStepUpByID returns the transaction with id (ENOTFOUND if none).
	FindStepUpByID(ctx context.Context, id string) (*StepUp, error)
	// CompleteStepUp records a finished ceremony once: it sets ProofHash,
	// CredentialID, CompletedAt = at and ProofExpiresAt, only if the
	// transaction is not completed yet (else ECONFLICT, nothing written;
	// ENOTFOUND if missing). A proof hash already stored on any
	// transaction is ECONFLICT. The store does not look at ExpiresAt: the
	// caller checks.
	CompleteStepUp(ctx context.Context, id string, proofHash, credentialID []byte, at, proofExpiresAt time.Time) error
	// ConsumeStepUpProof atomically marks the proof whose hash is
	// proofHash used at at and returns its transaction (UsedAt set), so
	// that of concurrent callers exactly one gets it. An unknown hash is
	// ENOTFOUND, a proof used before ECONFLICT (nothing written). An
	// expired proof is consumed and returned too: the caller checks
	// ProofExpiresAt.
	ConsumeStepUpProof(ctx context.Context, proofHash []byte, at time.Time) (*StepUp, error)
	// DeleteExpiredStepUps removes the transactions whose ExpiresAt and
	// ProofExpiresAt (zero counts as expired) are both before now, and
	// returns how many it removed.
	DeleteExpiredStepUps(ctx context.Context, now time.Time) (int, error)
}

// ExceptionStore keeps policy exceptions.
type ExceptionStore interface {
	// CreateException inserts e; a duplicate ID is ECONFLICT.
	CreateException(ctx context.Context, e *Exception) error
	// FindExceptionByID returns the exception with id (ENOTFOUND if none).
	FindExceptionByID(ctx context.Context, id string) (*Exception, error)
	// ListExceptions returns every stored exception, expired ones
	// included, soonest ExpiresAt first, then by ID.
	ListExceptions(ctx context.Context) ([]*Exception, error)
	// ListLiveExceptions returns the exceptions whose ExpiresAt is after
	// now and whose UserID is empty or userID, in ListExceptions' order.
	ListLiveExceptions(ctx context.Context, userID string, now time.Time) ([]*Exception, error)
	// ListExpiredExceptions returns at most limit (≤ 0: 100) exceptions
	// whose ExpiresAt is not after now, in ListExceptions' order.
	ListExpiredExceptions(ctx context.Context, now time.Time, limit int) ([]*Exception, error)
	// DeleteException removes the exception with id (ENOTFOUND if none).
	DeleteException(ctx context.Context, id string) error
}

// ResourceStore keeps the resources added through the admin API.
type ResourceStore interface {
	// CreateResource inserts r with the Version it has; a duplicate Name is
	// ECONFLICT.
	CreateResource(ctx context.Context, r *Resource) error
	// FindResourceByName returns the resource named name (ENOTFOUND if none).
	FindResourceByName(ctx context.Context, name string) (*Resource, error)
	// ListResources returns every stored resource ordered by name.
	ListResources(ctx context.Context) ([]*Resource, error)
	// UpdateResource replaces Tier, Labels and UpdatedAt of the resource
	// named r.Name, provided the stored Version equals r.Version (else
	// ECONFLICT, nothing written), and increments r.Version.
	UpdateResource(ctx context.Context, r *Resource) error
	// DeleteResource removes the resource named name (ENOTFOUND if none).
	DeleteResource(ctx context.Context, name string) error
}

// SignalStore keeps the history that risk signals are computed from:
// networks a user was seen on (novelty, impossible travel), counted risk
// events (failed ceremonies, clone signals, recoveries) and earlier sessions
// on a device (first use).
type SignalStore interface {
	// SeeNetwork records that userID was seen on network at at: it creates
	// the sighting (FirstSeen = LastSeen = at) or moves LastSeen forward to
	// at (never back). A non-nil loc replaces the stored location unless
	// at is before the stored LastSeen.
	SeeNetwork(ctx context.Context, userID, network string, loc *GeoPoint, at time.Time) error
	// FindNetwork returns the user's sighting of network (ENOTFOUND if none).
	FindNetwork(ctx context.Context, userID, network string) (*NetworkSighting, error)
	// LatestNetwork returns the user's sighting with the latest LastSeen
	// (ENOTFOUND if none; ties broken by network).
	LatestNetwork(ctx context.Context, userID string) (*NetworkSighting, error)
	// DeleteNetworksBefore removes sightings, of any user, whose LastSeen
	// is before before, and returns how many it removed.
	DeleteNetworksBefore(ctx context.Context, before time.Time) (int, error)
	// RecordRiskEvent counts one event of kind for userID at at.
	RecordRiskEvent(ctx context.Context, userID, kind string, at time.Time) error
	// CountRiskEvents returns how many events of kind userID has at or
	// after since.
	CountRiskEvents(ctx context.Context, userID, kind string, since time.Time) (int, error)
	// DeleteRiskEventsBefore removes events, of any user and kind, before
	// before, and returns how many it removed.
	DeleteRiskEventsBefore(ctx context.Context, before time.Time) (int, error)
	// HasEarlierSession reports whether some session of userID on deviceID
	// (ended or not) was created before before.
	HasEarlierSession(ctx context.Context, userID, deviceID string, before time.Time) (bool, error)
}
