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
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

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

// Service runs recovery cases. It is safe for concurrent use: all state
// lives in the store, whose compare-and-set on a case's Version decides
// races between replicas.
type Service struct {
	cfg       Config
	store     airlock.Store
	passkeys  *passkey.Service
	sessions  *session.Manager
	elevation *elevate.Service
	audit     Auditor
	notifier  Notifier
	// openMu serializes this process's check for a live case of a subject
	// with the creation of a new one.
	openMu sync.Mutex
}

// New returns a Service and installs its completion hook on passkeys
// (passkey.Service.SetRecoveryHook). Every dependency is required. A zero
// quorum or cool-down of a tier takes that tier's default; a negative one,
// a negative CaseTTL or OpensPerDay, or device rules that do not validate
// are refused.
func New(cfg Config, store airlock.Store, passkeys *passkey.Service, sessions *session.Manager, elevation *elevate.Service, audit Auditor, notifier Notifier) (*Service, error) {
	if store == nil || passkeys == nil || sessions == nil || elevation == nil || audit == nil || notifier == nil {
		return nil, errors.New("recovery: store, passkeys, sessions, elevation, auditor and notifier are required")
	}
	for t := range cfg.Quorum {
		switch {
		case cfg.Quorum[t] < 0:
			return nil, fmt.Errorf("recovery: the quorum of tier %d must not be negative", t)
		case cfg.Quorum[t] == 0:
			cfg.Quorum[t] = DefaultQuorum[t]
		}
		switch {
		case cfg.CoolDown[t] < 0:
			return nil, fmt.Errorf("recovery: the cool-down of tier %d must not be negative", t)
		case cfg.CoolDown[t] == 0:
			cfg.CoolDown[t] = DefaultCoolDown[t]
		}
	}
	if cfg.CaseTTL < 0 || cfg.OpensPerDay < 0 {
		return nil, errors.New("recovery: case TTL and opens per day must not be negative")
	}
	if cfg.CaseTTL == 0 {
		cfg.CaseTTL = DefaultCaseTTL
	}
	if cfg.OpensPerDay == 0 {
		cfg.OpensPerDay = DefaultOpensPerDay
	}
	if err := cfg.DeviceRules.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{cfg: cfg, store: store, passkeys: passkeys, sessions: sessions, elevation: elevation, audit: audit, notifier: notifier}
	passkeys.SetRecoveryHook(s.Complete)
	return s, nil
}

// now is the clock at the store's precision (microseconds, UTC), so that a
// case's times, and the digest computed from them, read back the same.
func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// CancelURL is the page where the subject cancels case id with a
// still-valid passkey.
func (s *Service) CancelURL(id string) string {
	return strings.TrimRight(s.cfg.BaseURL, "/") + "/recover/cancel/" + id
}

// ApprovalURL is the officers' page of case id.
func (s *Service) ApprovalURL(id string) string {
	return strings.TrimRight(s.cfg.BaseURL, "/") + "/recovery/" + id
}

// EndRecovered is the end reason of the grants and sessions a completed
// recovery ends.
const EndRecovered = "recovered"

// Reason says why a step was refused; it is also the audit event's reason
// (ReasonOf).
type Reason string

// Refusal reasons. Ceremonies refused by package passkey carry passkey's
// reasons instead (ReasonOf reports them too).
const (
	ReasonInvalidSubject      Reason = "invalid_subject"
	ReasonInvalidReason       Reason = "invalid_reason"
	ReasonInvalidVerification Reason = "invalid_verification"
	ReasonInvalidAccount      Reason = "invalid_account"
	ReasonUnknownAccount      Reason = "unknown_account"
	ReasonUserDisabled        Reason = "user_disabled"
	ReasonBreakGlass          Reason = "breakglass_account"
	ReasonNotHelpdesk         Reason = "not_helpdesk"
	ReasonNotAllowed          Reason = "not_allowed"
	ReasonRateLimited         Reason = "rate_limited"
	ReasonCaseOpen            Reason = "case_open"
	ReasonUnknownCase         Reason = "unknown_case"
	ReasonSelfApproval        Reason = "self_approval"
	ReasonOpenerApproval      Reason = "opener_approval"
	ReasonNotOfficer          Reason = "not_officer"
	ReasonOfficerTier         Reason = "officer_tier"
	ReasonSessionEnded        Reason = "session_ended"
	ReasonDeviceUntrusted     Reason = "device_untrusted"
	ReasonDeviceNonCompliant  Reason = "device_noncompliant"
	ReasonWrongDevice         Reason = "wrong_device"
	ReasonAlreadyApproved     Reason = "already_approved"
	ReasonNotPending          Reason = "not_pending"
	ReasonNotCancellable      Reason = "not_cancellable"
	ReasonCaseExpired         Reason = "case_expired"
	ReasonCoolingDown         Reason = "cooling_down"
	ReasonNotClaimable        Reason = "not_claimable"
	ReasonTokenLive           Reason = "token_live"
	ReasonWrongEnrolment      Reason = "wrong_enrolment"
)

// refusal is the internal cause inside the *airlock.Error of a refusal.
type refusal struct{ reason Reason }

func (r *refusal) Error() string { return "recovery: " + string(r.reason) }

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

// hasRole reports whether sub is enabled and holds one of roles.
func hasRole(sub decide.Subject, roles ...string) bool {
	if sub.User == nil || sub.User.Disabled {
		return false
	}
	for _, r := range roles {
		if slices.Contains(sub.User.Roles, r) {
			return true
		}
	}
	return false
}

// isAdmin reports whether sub may act as an Airlock administrator here:
// the airlock-admin role, enabled, on a tier-0 or tier-1 session (as the
// admin API requires).
func isAdmin(sub decide.Subject) bool {
	return hasRole(sub, airlock.RoleAdmin) && sub.Session != nil && sub.Session.Tier <= 1
}

// checkText validates free text a person writes (a reason, a verification
// note): required, valid UTF-8, at most MaxReasonLen characters, no control
// or text-direction characters. It returns why not, or "".
func checkText(s string) string {
	if strings.TrimSpace(s) == "" {
		return "is required"
	}
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	if n := utf8.RuneCountInString(s); n > MaxReasonLen {
		return "is longer than " + strconv.Itoa(MaxReasonLen) + " characters"
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return "contains control characters (tabs and line breaks included)"
		}
		if c == 0x061C || c == 0x200E || c == 0x200F || (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) {
			return "contains text-direction control characters"
		}
	}
	return ""
}

// secretHash is what the store keeps of a claim secret.
func secretHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// newSecret returns 32 random bytes, base64url.
func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", airlock.Wrap(airlock.EINTERNAL, "random source failed", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// digestDomain separates case digests from every other digest.
const digestDomain = "airlock recovery case v1\x00"

// CaseDigest is SHA-256 over the case's fixed facts — id, subject, opener,
// how it was opened, reason, tier, required quorum, device and creation
// time — each as its name, its length (8 bytes big-endian) and its value,
// so that no two different cases encode alike. The subject's cancel
// signs it; approvals sign ApprovalDigest.
func CaseDigest(c *airlock.RecoveryCase) []byte {
	var b bytes.Buffer
	b.WriteString(digestDomain)
	field := func(name, value string) {
		b.WriteString(name)
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(value)))
		b.Write(n[:])
		b.WriteString(value)
	}
	field("id", c.ID)
	field("subject", c.SubjectID)
	field("opened_by", c.OpenedBy)
	field("via", c.Via)
	field("reason", c.Reason)
	field("tier", strconv.Itoa(int(c.Tier)))
	field("required", strconv.Itoa(c.Required))
	field("device", c.DeviceID)
	field("created", strconv.FormatInt(c.CreatedAt.UnixMicro(), 10))
	h := sha256.Sum256(b.Bytes())
	return h[:]
}

// ApprovalDigest is SHA-256(CaseDigest ‖ 0x00 ‖ verification): an
// officer's passkey signs the case and their account of how they verified
// the person.
func ApprovalDigest(c *airlock.RecoveryCase, verification string) []byte {
	h := sha256.New()
	h.Write(CaseDigest(c))
	h.Write([]byte{0})
	h.Write([]byte(verification))
	return h.Sum(nil)
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
