// Package elevate is just-in-time elevation: access requests decided by the
// policy engine, M-of-N approvals with separation of duties (each a
// user-verified passkey assertion bound to the request's digest), grants
// bound to the requesting session, and their end — at not_after, when the
// user marks the task done, when an admin revokes them, or when the
// session, device, passkey or user they rest on is no longer good.
//
// Every step is audited before it is answered ("elevation.*" events, with
// the access request in the event's RequestID, the grant in GrantID, the
// decision in DecisionID); an audit failure fails the step, and a grant
// whose grant record could not be audited is ended at once. Refusals carry
// a Reason (ReasonOf) that is also the audit event's reason.
//
// The package knows no HTTP: the edges (http, the CLI through it) turn
// requests into calls of Service.
package elevate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"airlock"
	"airlock/decide"
	"airlock/device"
	"airlock/passkey"
	"airlock/policy"
)

// Actions the elevation path decides with the policy engine.
const (
	// ActionRequest is decided on the scope's resource (a tier scope on a
	// synthetic resource "tier:N" of that tier) when an access request is
	// made: allow auto-approves, approval_required names the rule.
	ActionRequest = "elevation.request"
)

// DefaultRequestTTL is how long a request may stay pending.
const DefaultRequestTTL = time.Hour

// DefaultRule is the approval rule used when the policy asks for approval
// without naming one.
const DefaultRule = policy.DefaultApprovalRule

// DefaultRequestsPerHour is how many access requests one user may make per
// hour (Config.RequestsPerHour).
const DefaultRequestsPerHour = 20

// Limits on what a requester or approver writes.
const (
	MaxReasonLen  = 500 // characters of a request's reason, a denial's reason, an approval's comment
	MaxTicketLen  = 100 // characters of a ticket id
	maxRuleSlots  = 16  // approvals a rule may require in all
	maxScanGrants = 50000
)

// Notification kinds sent by the service (through Notifier, delivered by
// the webhook).
const (
	// NotifyRequested goes to every eligible approver of a new pending
	// request.
	NotifyRequested = "elevation.requested"
	// NotifyApproved, NotifyDenied and NotifyExpired go to the requester.
	NotifyApproved = "elevation.approved"
	NotifyDenied   = "elevation.denied"
	NotifyExpired  = "elevation.expired"
	// NotifyRevoked goes to a grant's holder when someone else (an admin)
	// ends it.
	NotifyRevoked = "elevation.revoked"
)

// Quorum is "Min approvals from members of Group" (a group is a user role).
type Quorum struct {
	Group string `yaml:"group" json:"group"`
	Min   int    `yaml:"min" json:"min"`
}

// Rule is an approval rule: every quorum must be met (AND), one person
// counting once across all of them.
type Rule struct {
	AllOf []Quorum `yaml:"all_of" json:"all_of"`
}

// Validate reports a rule that could never be met or is malformed: no
// quorum, a quorum without a group or with Min < 1, or more than 16
// approvals in all.
func (r Rule) Validate() error {
	if len(r.AllOf) == 0 {
		return errors.New("elevate: all_of is empty: an approval rule needs at least one quorum")
	}
	total := 0
	for i, q := range r.AllOf {
		if q.Group == "" || q.Min < 1 {
			return fmt.Errorf("elevate: all_of[%d]: a quorum needs a group and min ≥ 1", i)
		}
		total += q.Min
	}
	if total > maxRuleSlots {
		return fmt.Errorf("elevate: the rule requires %d approvals; at most %d are supported", total, maxRuleSlots)
	}
	return nil
}

// Groups returns the rule's groups, each once, in rule order.
func (r Rule) Groups() []string {
	var out []string
	for _, q := range r.AllOf {
		if !contains(out, q.Group) {
			out = append(out, q.Group)
		}
	}
	return out
}

// Config configures the service.
type Config struct {
	// Rules are the approval rules by name; the policy's @approval_rule
	// names one (DefaultRule when it names none). A rule the config does
	// not define refuses the request (fail closed).
	Rules map[string]Rule
	// Caps are the longest grants per tier (zero: airlock.DefaultGrantCaps).
	Caps [airlock.MaxTier + 1]time.Duration
	// RequestTTL bounds how long a request stays pending (0: 1 h).
	RequestTTL time.Duration
	// RequestsPerHour limits how many requests one user may make per hour,
	// across replicas (0: DefaultRequestsPerHour).
	RequestsPerHour int
	// BaseURL is the public base URL: approval pages are BaseURL/approve/{id}.
	BaseURL string
	// DeviceRules judge device compliance (a grant ends when its device
	// falls out of compliance).
	DeviceRules device.Rules
	// Logger reports sweep failures of Run; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Decider decides requests and finds resources; *decide.Service satisfies
// it.
type Decider interface {
	Decide(ctx context.Context, sub decide.Subject, req decide.Request) (*decide.Result, error)
	// LookupResource finds a resource by name (ENOTFOUND if unknown).
	LookupResource(ctx context.Context, name string) (*airlock.Resource, error)
}

// Auditor records audit events durably; *audit.Log satisfies it.
type Auditor interface {
	Record(ctx context.Context, e airlock.AuditEvent) error
}

// Notifier enqueues a user notification durably; *notify.Outbox satisfies
// it.
type Notifier interface {
	Notify(ctx context.Context, userID, kind string, payload any) error
}

// Service runs access requests, approvals and grants. It is safe for
// concurrent use: all state lives in the store, and the store's
// single-transaction resolution decides races between replicas.
type Service struct {
	cfg      Config
	store    airlock.Store
	decider  Decider
	passkeys *passkey.Service
	audit    Auditor
	notifier Notifier
	log      *slog.Logger
}

// New returns a Service. Every dependency is required; the rules must be
// valid (Rule.Validate), caps positive where set, durations not negative.
func New(cfg Config, store airlock.Store, decider Decider, passkeys *passkey.Service, audit Auditor, notifier Notifier) (*Service, error) {
	if store == nil || decider == nil || passkeys == nil || audit == nil || notifier == nil {
		return nil, errors.New("elevate: store, decider, passkeys, auditor and notifier are required")
	}
	for name, r := range cfg.Rules {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("elevate: approval rule %q: %w", name, err)
		}
	}
	if cfg.Caps == ([airlock.MaxTier + 1]time.Duration{}) {
		cfg.Caps = airlock.DefaultGrantCaps
	}
	for t, c := range cfg.Caps {
		if c <= 0 {
			return nil, fmt.Errorf("elevate: the grant cap of tier %d must be positive", t)
		}
	}
	if cfg.RequestTTL < 0 || cfg.RequestsPerHour < 0 {
		return nil, errors.New("elevate: request TTL and requests per hour must not be negative")
	}
	if cfg.RequestTTL == 0 {
		cfg.RequestTTL = DefaultRequestTTL
	}
	if cfg.RequestsPerHour == 0 {
		cfg.RequestsPerHour = DefaultRequestsPerHour
	}
	if err := cfg.DeviceRules.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, store: store, decider: decider, passkeys: passkeys, audit: audit, notifier: notifier, log: log}, nil
}

// now is the clock at the store's precision (microseconds, UTC), so that a
// record's times, and the digest computed from them, read back the same.
func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// Ask is an access request as the requester states it.
type Ask struct {
	// Scope is "role@resource" or "tier:N".
	Scope    string
	Duration time.Duration
	Reason   string
	Ticket   string
	// Proof is a step-up proof when the policy answered step_up to an
	// earlier identical ask.
	Proof     string
	IP        string
	UserAgent string
	RequestID string
}

// StepUpRequired is returned by Request when the policy wants a fresh
// passkey confirmation of this very ask first: the caller completes the
// step-up (Result.URL) and repeats the ask with the proof.
type StepUpRequired struct {
	Result *decide.Result
}

// Error implements error.
func (e *StepUpRequired) Error() string {
	return "elevate: this request needs a passkey confirmation first"
}

// ApprovalURL is the page where approvers review request id.
func (s *Service) ApprovalURL(id string) string { return trimSlash(s.cfg.BaseURL) + "/approve/" + id }

// Reason is a machine-readable code for why the service refused something.
// It is the audit event's Reason and is carried in the returned error
// (ReasonOf).
type Reason string

// Refusal reasons. Approval ceremonies refused by package passkey carry
// passkey's reasons instead (ReasonOf reports them too).
const (
	ReasonInvalidSubject     Reason = "invalid_subject"
	ReasonInvalidScope       Reason = "invalid_scope"
	ReasonUnknownResource    Reason = "unknown_resource"
	ReasonTierTooLow         Reason = "tier_too_low"
	ReasonInvalidReason      Reason = "invalid_reason"
	ReasonInvalidTicket      Reason = "invalid_ticket"
	ReasonInvalidDuration    Reason = "invalid_duration"
	ReasonInvalidComment     Reason = "invalid_comment"
	ReasonRateLimited        Reason = "rate_limited"
	ReasonDeviceUntrusted    Reason = "device_untrusted"
	ReasonDeviceNonCompliant Reason = "device_noncompliant"
	ReasonSessionEnded       Reason = "session_ended"
	ReasonUserDisabled       Reason = "user_disabled"
	ReasonPolicyDeny         Reason = "policy_deny"
	ReasonStepUpRequired     Reason = "step_up_required"
	ReasonUnknownRule        Reason = "unknown_rule"
	ReasonUnknownRequest     Reason = "unknown_request"
	ReasonSelfApproval       Reason = "self_approval"
	ReasonNotInGroup         Reason = "not_in_group"
	ReasonApproverTier       Reason = "approver_tier"
	// ReasonRequesterInvalid: what the grant would rest on — the
	// requester's session, device, passkey or account — is no longer
	// good, so the request can no longer be approved.
	ReasonRequesterInvalid  Reason = "requester_invalid"
	ReasonAlreadyApproved   Reason = "already_approved"
	ReasonNotPending        Reason = "not_pending"
	ReasonRequestExpired    Reason = "request_expired"
	ReasonDigestMismatch    Reason = "digest_mismatch"
	ReasonReasonRequired    Reason = "reason_required"
	ReasonNotRequester      Reason = "not_requester"
	ReasonNotAllowed        Reason = "not_allowed"
	ReasonNotifyFailed      Reason = "notify_failed"
	ReasonUnknownGrant      Reason = "unknown_grant"
	ReasonGrantOtherSession Reason = "grant_other_session"
	ReasonGrantEnded        Reason = "grant_ended"
	ReasonGrantExpired      Reason = "grant_expired"
	ReasonGrantNotYet       Reason = "grant_not_yet_valid"
)

// refusal is the internal cause inside the *airlock.Error of a refusal.
// For a policy deny it carries the decision, which the HTTP edge shows
// (DecisionResult).
type refusal struct {
	reason Reason
	result *decide.Result
}

func (r *refusal) Error() string { return "elevate: " + string(r.reason) }

// DecisionResult is the policy decision behind a deny (nil otherwise).
func (r *refusal) DecisionResult() *decide.Result { return r.result }

// refuse returns an *airlock.Error with a client-safe message carrying
// reason r.
func refuse(code string, r Reason, format string, args ...any) *airlock.Error {
	return &airlock.Error{Code: code, Message: fmt.Sprintf(format, args...), Err: &refusal{reason: r}}
}

// ReasonOf returns the refusal reason carried by err: the service's own,
// or that of the passkey ceremony; "" if it carries none.
func ReasonOf(err error) Reason {
	var r *refusal
	if errors.As(err, &r) {
		return r.reason
	}
	return Reason(passkey.ReasonOf(err))
}

// checkSubject refuses a subject the edge did not fill in.
func checkSubject(sub decide.Subject) error {
	if sub.Session == nil || sub.User == nil || sub.Device == nil || sub.Session.UserID != sub.User.ID || sub.Session.DeviceID != sub.Device.ID {
		return refuse(airlock.EUNAUTHORIZED, ReasonInvalidSubject, "no valid session")
	}
	return nil
}

// isAdmin reports whether sub may act as an Airlock administrator here:
// the airlock-admin role, enabled, on a tier-0 or tier-1 session (as the
// admin API requires).
func isAdmin(sub decide.Subject) bool {
	return sub.User != nil && sub.Session != nil && !sub.User.Disabled &&
		contains(sub.User.Roles, airlock.RoleAdmin) && sub.Session.Tier <= 1
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}
