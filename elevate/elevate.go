// Package elevate is just-in-time elevation: access requests decided by the
// policy engine, M-of-N approvals with separation of duties (each a
// user-verified passkey assertion bound to the request's digest), grants
// bound to the requesting session, and their end — at not_after, when the
// user marks the task done, when an admin revokes them, or when the
// session, device, passkey or user they rest on is no longer good.
//
// SKELETON: the API below is the contract the HTTP and CLI edges code
// against (issue 5); the bodies are being written.
package elevate

import (
	"context"
	"encoding/json"
	"time"

	"airlock"
	"airlock/decide"
	"airlock/device"
	"airlock/passkey"
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
const DefaultRule = "default"

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
	// BaseURL is the public base URL: approval pages are BaseURL/approve/{id}.
	BaseURL string
	// DeviceRules judge device compliance (a grant ends when its device
	// falls out of compliance).
	DeviceRules device.Rules
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Decider decides requests; *decide.Service satisfies it.
type Decider interface {
	Decide(ctx context.Context, sub decide.Subject, req decide.Request) (*decide.Result, error)
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
// concurrent use.
type Service struct {
	cfg      Config
	store    airlock.Store
	decider  Decider
	passkeys *passkey.Service
	audit    Auditor
	notifier Notifier
}

// New returns a Service. Every dependency is required.
func New(cfg Config, store airlock.Store, decider Decider, passkeys *passkey.Service, audit Auditor, notifier Notifier) (*Service, error) {
	return &Service{cfg: cfg, store: store, decider: decider, passkeys: passkeys, audit: audit, notifier: notifier}, nil
}

func notYet() error { return airlock.Errorf(airlock.EUNAVAILABLE, "elevate: not implemented yet") }

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

func (e *StepUpRequired) Error() string {
	return "elevate: this request needs a passkey confirmation first"
}

// Request makes an access request from sub's session. The scope must name
// a known resource (or a valid tier) that the requester's tier may reach;
// the duration is capped to the scope tier's maximum; the reason is
// required. The policy engine decides ActionRequest: allow makes the grant
// at once (ResolvedBy "policy"), approval_required stores a pending request
// under the named rule and notifies every eligible approver, step_up
// returns *StepUpRequired, deny an EFORBIDDEN error carrying the reasons.
// Audited "elevation.requested" (and "elevation.granted").
func (s *Service) Request(ctx context.Context, sub decide.Subject, ask Ask) (*airlock.AccessRequest, *airlock.Grant, error) {
	return nil, nil, notYet()
}

// View is a request with everything an approver must see.
type View struct {
	Request   *airlock.AccessRequest `json:"request"`
	Requester *airlock.User          `json:"requester"`
	Device    *airlock.Device        `json:"device"`
	// DeviceCompliant is the requester device's compliance now.
	DeviceCompliant bool                `json:"device_compliant"`
	Approvals       []*airlock.Approval `json:"approvals"`
	// Rule is the approval rule and Missing what it still lacks.
	Rule    Rule           `json:"rule"`
	Missing []Quorum       `json:"missing"`
	Grant   *airlock.Grant `json:"grant,omitempty"`
}

// Get returns the request with id for viewer: the requester, an eligible
// approver of its rule, or an admin (else EFORBIDDEN).
func (s *Service) Get(ctx context.Context, id string, viewer decide.Subject) (*View, error) {
	return nil, notYet()
}

// ListRequests returns the requests viewer made and, when pendingToApprove,
// the pending ones viewer may approve.
func (s *Service) ListRequests(ctx context.Context, viewer decide.Subject, pendingToApprove bool) ([]*airlock.AccessRequest, error) {
	return nil, notYet()
}

// BeginApproval starts the passkey ceremony by which approver approves
// request id: refused for the requester, for someone in none of the rule's
// groups, whose tier is below the scope's, or who already approved, and for
// a request not pending. The challenge is SHA-256(nonce ‖ request digest).
func (s *Service) BeginApproval(ctx context.Context, id string, approver decide.Subject, meta passkey.Meta) (*passkey.Begin, error) {
	return nil, notYet()
}

// FinishApproval completes an approval ceremony: the assertion must be
// user-verified, by a passkey of approver on approver's session device,
// over the challenge derived from that very request's digest. The
// approval is stored; when it completes the rule's quorum, the request is
// approved and its grant made (returned), in one transaction.
func (s *Service) FinishApproval(ctx context.Context, ceremonyID string, credentialJSON json.RawMessage, approver decide.Subject, comment string, meta passkey.Meta) (*airlock.AccessRequest, *airlock.Grant, error) {
	return nil, nil, notYet()
}

// Deny denies pending request id with a reason (required), by an eligible
// approver (not the requester) or an admin.
func (s *Service) Deny(ctx context.Context, id string, approver decide.Subject, reason string, meta passkey.Meta) (*airlock.AccessRequest, error) {
	return nil, notYet()
}

// Cancel withdraws pending request id; only its requester may.
func (s *Service) Cancel(ctx context.Context, id string, requester decide.Subject, meta passkey.Meta) (*airlock.AccessRequest, error) {
	return nil, notYet()
}

// ActiveGrants returns the grants in force for sub's session: not ended,
// inside their window, and resting on a live session, a trusted and
// compliant device, an unrevoked passkey and an enabled user. A grant
// found resting on something no longer good is ended on the spot (with
// its reason, audited).
func (s *Service) ActiveGrants(ctx context.Context, sub decide.Subject) ([]*airlock.Grant, error) {
	return nil, notYet()
}

// Grants returns sub's user's grants, newest first, active or not.
func (s *Service) Grants(ctx context.Context, sub decide.Subject) ([]*airlock.Grant, error) {
	return nil, notYet()
}

// UsableGrant returns grant id if it is one of ActiveGrants(sub) (else
// ENOTFOUND for someone else's grant, EFORBIDDEN/EEXPIRED for one not in
// force): what SSH certificates and grant tokens are issued from.
func (s *Service) UsableGrant(ctx context.Context, id string, sub decide.Subject) (*airlock.Grant, error) {
	return nil, notYet()
}

// EndGrant ends grant id early: by its holder (reason EndDone) or by an
// admin (EndRevokedByAdmin). Audited "elevation.ended".
func (s *Service) EndGrant(ctx context.Context, id string, by decide.Subject, meta passkey.Meta) (*airlock.Grant, error) {
	return nil, notYet()
}

// Target names what EndGrantsFor ends grants for; exactly one field set.
type Target struct {
	SessionID    string
	DeviceID     string
	UserID       string
	CredentialID []byte
}

// EndGrantsFor ends every grant resting on t, with reason, at once (the
// hooks of session end, device trust change, credential revocation, user
// disablement). actor is a user ID or "system".
func (s *Service) EndGrantsFor(ctx context.Context, t Target, reason, actor string) error {
	return notYet()
}

// Sweep expires pending requests past their ExpiresAt, ends grants past
// NotAfter, and ends active grants whose session, device, passkey or user
// is no longer good. It returns how many records it changed.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	return 0, notYet()
}

// Run sweeps every interval until ctx is done.
func (s *Service) Run(ctx context.Context, interval time.Duration) {}

// ApprovalURL is the page where approvers review request id.
func (s *Service) ApprovalURL(id string) string { return s.cfg.BaseURL + "/approve/" + id }
