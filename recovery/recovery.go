// Package recovery is account recovery: a user who lost every passkey (or
// whose device was stolen) gets a new one through a case that recovery
// officers approve (M of N per tier, each a user-verified passkey assertion
// bound to the case, neither the subject nor the opener), a cool-down
// during which the subject is notified and any still-valid passkey of the
// subject can cancel, and finally a single-use enrolment token bound to a
// compliant device of the subject. Completing that enrolment revokes the
// subject's earlier passkeys (unless configured otherwise), ends all their
// sessions and grants, and records the "recently recovered" risk signal.
//
// A case never signs anyone in. Every step is audited ("recovery.*"
// events) before it is answered; an audit failure fails the step.
//
// The package knows no HTTP: the edges turn requests into calls of Service.
package recovery

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"airlock"
	"airlock/decide"
	"airlock/device"
	"airlock/elevate"
	"airlock/passkey"
	"airlock/session"
)

// Roles that take part in recovery.
const (
	// RoleOfficer may approve or deny recovery cases (of a tier no more
	// privileged than their own session's).
	RoleOfficer = "airlock-recovery-officer"
	// RoleHelpdesk may open a case for someone else and see cases.
	RoleHelpdesk = "airlock-helpdesk"
)

// Notification kinds sent to the subject (every channel on file: the
// webhook receiver fans out).
const (
	NotifyOpened     = "recovery.opened"
	NotifyCoolDown   = "recovery.cool_down_started"
	NotifyReleased   = "recovery.released"
	NotifyCompleted  = "recovery.completed"
	NotifyCancelled  = "recovery.cancelled"
	NotifyToOfficers = "recovery.approval_needed"
)

// Defaults (DESIGN.md "Defaults worth knowing").
var (
	// DefaultQuorum is the number of officers per tier: tier 0 needs 2,
	// tiers 1–2 need 1.
	DefaultQuorum = [airlock.MaxTier + 1]int{2, 1, 1}
	// DefaultCoolDown is the wait after quorum per tier.
	DefaultCoolDown = [airlock.MaxTier + 1]time.Duration{24 * time.Hour, 4 * time.Hour, time.Hour}
)

// Other defaults.
const (
	// DefaultCaseTTL bounds a case's whole life (approval, cool-down,
	// claim, enrolment).
	DefaultCaseTTL = 7 * 24 * time.Hour
	// DefaultOpensPerDay limits cases opened per subject per day (across
	// replicas), on top of the edge's per-address limit.
	DefaultOpensPerDay = 3
	// MaxReasonLen bounds reasons, verification notes and denial reasons.
	MaxReasonLen = 500
)

// Config configures the service.
type Config struct {
	// Quorum is the number of distinct officers per tier (zero:
	// DefaultQuorum). Each must be ≥ 1.
	Quorum [airlock.MaxTier + 1]int
	// CoolDown is the wait after quorum per tier (zero: DefaultCoolDown).
	CoolDown [airlock.MaxTier + 1]time.Duration
	// CaseTTL bounds a case's life (0: DefaultCaseTTL).
	CaseTTL time.Duration
	// KeepOldCredentials, when true, leaves the subject's earlier passkeys
	// valid after a recovery (default false: they are revoked).
	KeepOldCredentials bool
	// OpensPerDay limits cases per subject per day (0: DefaultOpensPerDay).
	OpensPerDay int
	// BaseURL is the public base URL, for the links in notifications.
	BaseURL string
	// DeviceRules judge the re-enrolment device's compliance.
	DeviceRules device.Rules
	// Logger reports sweep failures of Run; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Auditor records audit events durably; *audit.Log satisfies it.
type Auditor interface {
	Record(ctx context.Context, e airlock.AuditEvent) error
}

// Notifier enqueues a user notification durably; *notify.Outbox satisfies it.
type Notifier interface {
	Notify(ctx context.Context, userID, kind string, payload any) error
}

// Service runs recovery cases.
type Service struct {
	cfg       Config
	store     airlock.Store
	passkeys  *passkey.Service
	sessions  *session.Manager
	elevation *elevate.Service
	audit     Auditor
	notifier  Notifier
}

// New returns a Service and installs its completion hook on passkeys
// (passkey.Service.SetRecoveryHook). Every dependency is required.
// CONTRACT STUB.
func New(cfg Config, store airlock.Store, passkeys *passkey.Service, sessions *session.Manager, elevation *elevate.Service, audit Auditor, notifier Notifier) (*Service, error) {
	s := &Service{cfg: cfg, store: store, passkeys: passkeys, sessions: sessions, elevation: elevation, audit: audit, notifier: notifier}
	passkeys.SetRecoveryHook(s.Complete)
	return s, nil
}

var errTODO = airlock.Errorf(airlock.EUNAVAILABLE, "recovery: not implemented yet")

// Open is a request to open a case.
type Open struct {
	// Subject is the login name of the account to recover.
	Subject string
	// Reason is why (required, at most MaxReasonLen, no control characters).
	Reason string
	// DeviceID optionally fixes the re-enrolment device now (help desk).
	DeviceID string
	// Opener is the signed-in help-desk operator, or nil for a self-service
	// case from the login page.
	Opener *decide.Subject
}

// Opened is the answer to Open.
type Opened struct {
	// Case is nil for a self-service open of an unknown, disabled or
	// break-glass account: the edge answers the same as for a real one, so
	// that nobody learns which accounts exist.
	Case *airlock.RecoveryCase
	// Secret is the claim secret, shown once: with it the claimant follows
	// the case (Status) and claims the enrolment token (Claim).
	Secret string
}

// Open opens a case. CONTRACT STUB.
func (s *Service) Open(ctx context.Context, o Open, meta passkey.Meta) (*Opened, error) {
	return nil, errTODO
}

// View is a case with its approvals and what it still needs.
type View struct {
	Case      *airlock.RecoveryCase      `json:"case"`
	Subject   *airlock.User              `json:"subject"`
	Approvals []*airlock.RecoveryApproval `json:"approvals"`
	// Missing is how many more approvals the case needs (0 once met).
	Missing int `json:"missing"`
	// CanApprove says whether viewer may approve it now (and why not).
	CanApprove bool   `json:"can_approve"`
	WhyNot     string `json:"why_not,omitempty"`
}

// Get returns a case to an officer, help-desk operator or admin. CONTRACT STUB.
func (s *Service) Get(ctx context.Context, id string, viewer decide.Subject) (*View, error) {
	return nil, errTODO
}

// List returns cases to an officer, help-desk operator or admin: the
// pending ones when pendingOnly. CONTRACT STUB.
func (s *Service) List(ctx context.Context, viewer decide.Subject, pendingOnly bool) ([]*airlock.RecoveryCase, error) {
	return nil, errTODO
}

// Status returns the case named by a claim secret (the claimant's view).
// CONTRACT STUB.
func (s *Service) Status(ctx context.Context, secret string) (*airlock.RecoveryCase, error) {
	return nil, errTODO
}

// BeginApproval starts an officer's approval of case id: a
// passkey.KindRecoveryApproval ceremony whose digest covers the case and
// the officer's verification note. CONTRACT STUB.
func (s *Service) BeginApproval(ctx context.Context, id string, officer decide.Subject, verification string, meta passkey.Meta) (*passkey.Begin, error) {
	return nil, errTODO
}

// FinishApproval completes it; the same verification note must be given.
// When the quorum is met the case moves to cooling_down and the subject is
// notified. CONTRACT STUB.
func (s *Service) FinishApproval(ctx context.Context, ceremonyID string, credentialJSON json.RawMessage, officer decide.Subject, verification string, meta passkey.Meta) (*airlock.RecoveryCase, error) {
	return nil, errTODO
}

// Deny refuses a case (an officer, with a reason). CONTRACT STUB.
func (s *Service) Deny(ctx context.Context, id string, officer decide.Subject, reason string, meta passkey.Meta) (*airlock.RecoveryCase, error) {
	return nil, errTODO
}

// Abort cancels a case by its opener or an officer, with a reason.
// CONTRACT STUB.
func (s *Service) Abort(ctx context.Context, id string, by decide.Subject, reason string, meta passkey.Meta) (*airlock.RecoveryCase, error) {
	return nil, errTODO
}

// BeginCancel starts the subject's cancel of case id with any still-valid
// passkey (passkey.BeginHolderConfirm). CONTRACT STUB.
func (s *Service) BeginCancel(ctx context.Context, id string, meta passkey.Meta) (*passkey.Begin, error) {
	return nil, errTODO
}

// FinishCancel completes the subject's cancel. CONTRACT STUB.
func (s *Service) FinishCancel(ctx context.Context, ceremonyID string, credentialJSON json.RawMessage, meta passkey.Meta) (*airlock.RecoveryCase, error) {
	return nil, errTODO
}

// Claim releases the single-use enrolment token of the case named by
// secret, once its cool-down has passed, bound to deviceID (or the device
// fixed at opening): a device of the subject, trusted and compliant. It
// returns the token's secret (for the /enrol link). CONTRACT STUB.
func (s *Service) Claim(ctx context.Context, secret, deviceID string, meta passkey.Meta) (string, *airlock.EnrolmentToken, error) {
	return "", nil, errTODO
}

// Complete is the passkey.RecoveryHook: it runs after a recovery
// enrolment. CONTRACT STUB.
func (s *Service) Complete(ctx context.Context, e *passkey.Enrolled, meta passkey.Meta) error {
	return errTODO
}

// Sweep expires cases past ExpiresAt and returns how many. CONTRACT STUB.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	return 0, nil
}

// Run sweeps every interval until ctx ends.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil && s.cfg.Logger != nil {
				s.cfg.Logger.Error("recovery sweep", "err", err)
			}
		}
	}
}
