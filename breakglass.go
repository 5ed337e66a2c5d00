package airlock

import (
	"context"
	"time"
)

// BreakGlassEvent is one use of a sealed break-glass account: who (the
// account and the passkey), why (the written justification), what (the
// scopes of the break-glass policy) and when. After it the account is
// locked — "review required" — until a reviewer other than the account
// records a post-incident review.
type BreakGlassEvent struct {
	ID           string `json:"id"`
	AccountID    string `json:"account_id"`
	CredentialID []byte `json:"credential_id"`
	// Justification is the written reason given with the passkey; required.
	Justification string `json:"justification"`
	// Scopes are the break-glass policy's scopes at the time of use
	// ("role@resource" or "tier:N").
	Scopes    []string `json:"scopes"`
	IP        string   `json:"ip,omitempty"`
	UserAgent string   `json:"user_agent,omitempty"`
	// TokenHash is SHA-256 of the break-glass session's bearer secret.
	TokenHash []byte    `json:"-"`
	StartedAt time.Time `json:"started_at"`
	// EndsAt is StartedAt plus the policy's duration (at most 60 minutes);
	// it is never extended.
	EndsAt time.Time `json:"ends_at"`
	// EndedAt is zero while the session may still be live; EndReason says
	// why it ended (expired, ended by the user, by an admin…).
	EndedAt   time.Time `json:"ended_at,omitempty"`
	EndReason string    `json:"end_reason,omitempty"`
	// AlertIDs name the critical alerts raised before access began;
	// AlertDelivered says whether one was delivered at once (else they were
	// durably queued).
	AlertIDs       []string `json:"alert_ids"`
	AlertDelivered bool     `json:"alert_delivered"`
	// Offline says the use happened while the store was unavailable (static
	// credential file, local audit file); the event was recorded when the
	// store came back.
	Offline bool `json:"offline,omitempty"`
	// ReviewedAt is zero until the post-incident review is recorded.
	ReviewedAt  time.Time `json:"reviewed_at,omitempty"`
	ReviewedBy  string    `json:"reviewed_by,omitempty"`
	ReviewNotes string    `json:"review_notes,omitempty"`
}

// Reviewed reports whether the event's post-incident review is recorded.
func (e *BreakGlassEvent) Reviewed() bool { return !e.ReviewedAt.IsZero() }

// BreakGlassFilter selects break-glass events; zero fields match everything.
type BreakGlassFilter struct {
	AccountID string
	// Unreviewed keeps only events without a review.
	Unreviewed bool
	Limit      int // ≤ 0: 100
}

// BreakGlassStore keeps break-glass events.
type BreakGlassStore interface {
	// CreateBreakGlassEvent inserts e. It is ECONFLICT — and nothing is
	// written — when the ID or TokenHash exists, or when the account
	// already has an unreviewed event: at most one unreviewed event per
	// account, enforced by the store across replicas (the account is
	// locked until review).
	CreateBreakGlassEvent(ctx context.Context, e *BreakGlassEvent) error
	// FindBreakGlassEventByID returns the event with id (ENOTFOUND if none).
	FindBreakGlassEventByID(ctx context.Context, id string) (*BreakGlassEvent, error)
	// FindBreakGlassEventByToken returns the event whose session secret
	// hashes to hash (ENOTFOUND if none).
	FindBreakGlassEventByToken(ctx context.Context, hash []byte) (*BreakGlassEvent, error)
	// ListBreakGlassEvents returns events matching f, newest StartedAt
	// first (then by ID).
	ListBreakGlassEvents(ctx context.Context, f BreakGlassFilter) ([]*BreakGlassEvent, error)
	// EndBreakGlassEvent sets EndedAt = at and EndReason once: an event
	// already ended is ECONFLICT (nothing written), a missing one ENOTFOUND.
	EndBreakGlassEvent(ctx context.Context, id, reason string, at time.Time) error
	// ReviewBreakGlassEvent records the review once: an event already
	// reviewed is ECONFLICT, one not yet ended EINVALID (nothing written),
	// a missing one ENOTFOUND.
	ReviewBreakGlassEvent(ctx context.Context, id, reviewerID, notes string, at time.Time) error
}
