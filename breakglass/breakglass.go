// Package breakglass is the emergency path: sealed accounts (kind
// breakglass) whose passkeys live on hardware kept in a safe (registered at
// set-up, BE=0). They cannot sign in through the normal login, and normal
// accounts cannot use this path.
//
// A use takes the passkey plus a written justification. It bypasses device
// trust and the normal policy but obeys the break-glass policy of the config
// (scopes; at most 60 minutes; no extension). It raises a critical alert
// at once — webhooks and the log — and access begins only after the alert
// was delivered or durably queued. It works when the normal policy is
// broken or missing and, with a static credential file, when the store is
// unavailable: audit events then go to a local append-only file that Merge
// folds into the log when the store is back.
//
// After a use the account is locked ("review required") until a reviewer
// other than the account records a post-incident review; the config can
// require re-sealing (a new passkey) before reuse. A break-glass session can
// get an SSH certificate with source-address and no forwarding.
//
// The package knows no HTTP: the edges turn requests into calls of Service.
//
// Files in Config.Dir (each JSON lines, appended with O_APPEND and fsynced
// per record, mode 0600; a torn last line left by a crash is ignored on
// read and cut off before the next append):
//
//	audit-fallback.jsonl         audit events recorded while the store was down
//	alerts.jsonl                 critical alerts and their deliveries
//	revoked-credentials.jsonl    passkeys revoked by a re-sealing review, so
//	                             that the static file cannot revive them
package breakglass

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"airlock"
	"airlock/audit"
	"airlock/passkey"
	"airlock/sshca"
)

// Limits of the break-glass policy.
const (
	// MaxDuration is the longest break-glass session; it is never extended.
	MaxDuration = 60 * time.Minute
	// MaxJustificationLen bounds the written justification (and review
	// notes), in bytes.
	MaxJustificationLen = 2000
	// TokenPrefix starts every break-glass session token. No normal session
	// token contains a '.', so the two never mix.
	TokenPrefix = "bg."
	// CeremonyTTL is how long a begun use may be finished.
	CeremonyTTL = 5 * time.Minute
	// DefaultAlertTimeout bounds the alert delivery made before access.
	DefaultAlertTimeout = 5 * time.Second
	// PrefixEvent starts every break-glass event id.
	PrefixEvent = "bge_"
	// NotifyUsed is the notification kind sent to every admin after a use.
	NotifyUsed = "breakglass.used"
)

// Refusal reasons of the break-glass path (beside passkey's ceremony
// reasons, e.g. passkey.ReasonNotBreakGlass for a normal account). They
// are carried like passkey's: passkey.ReasonOf(err).
const (
	// ReasonLocked: the account has a use without a post-incident review.
	ReasonLocked passkey.Reason = "breakglass_review_required"
	// ReasonAlertFailed: the alert was neither delivered nor spooled.
	ReasonAlertFailed passkey.Reason = "breakglass_alert_failed"
	// ReasonJustification: the justification (or review notes) is missing,
	// too long or not printable text.
	ReasonJustification passkey.Reason = "breakglass_justification"
	// ReasonNoCredentials: the store is unavailable and there is no static
	// credential file (or it does not know the account).
	ReasonNoCredentials passkey.Reason = "breakglass_no_credentials"
	// ReasonSessionEnded: the break-glass session ended or expired.
	ReasonSessionEnded passkey.Reason = "breakglass_session_ended"
	// ReasonOutOfScope: outside the break-glass policy's scopes.
	ReasonOutOfScope passkey.Reason = "breakglass_out_of_scope"
	// ReasonReviewer: the reviewer may not record this review (role, tier,
	// the account itself).
	ReasonReviewer passkey.Reason = "breakglass_reviewer"
	// ReasonNotEnded: a review of a use that has not ended.
	ReasonNotEnded passkey.Reason = "breakglass_not_ended"
)

// AlertTarget is a webhook that receives critical break-glass alerts,
// signed like notifications (notify.Sign, X-Airlock-Signature).
type AlertTarget struct {
	URL    string
	Secret string
}

// Config configures the service: the break-glass policy and its alerting.
type Config struct {
	// Scopes are what a break-glass session may do ("role@resource" or
	// "tier:N", airlock.ParseScope); at least one.
	Scopes []string
	// Duration is a session's length (0: MaxDuration; more is refused).
	Duration time.Duration
	// RequireReseal, when true, revokes the used passkey when the review is
	// recorded: the account needs a newly enrolled passkey before reuse.
	RequireReseal bool
	// Alerts receive the critical alert; at least one, each with a secret
	// (the receiver must be able to tell a real alert from a forged one).
	Alerts []AlertTarget
	// AlertTimeout bounds the delivery attempt made before access begins
	// (0: DefaultAlertTimeout); past it the alert counts as queued if it
	// was spooled.
	AlertTimeout time.Duration
	// Dir holds the local append-only files: the fallback audit file, the
	// alert spool and the local revocation list. Required; created 0700.
	Dir string
	// CredentialsFile is the static break-glass credential file (public keys
	// and credential ids, ExportCredentials): used when the store is down.
	// Optional; read by New.
	CredentialsFile string
	// SourceAddresses, when set, are the SSH certificates' source-address
	// (CIDRs); empty: the client's IP as Airlock sees it.
	SourceAddresses []string
	// ReviewerRole may record reviews (empty: airlock.RoleAdmin).
	ReviewerRole string
	// ResourceTier returns a resource's tier from the in-memory catalog,
	// for tier scopes while the store is down. Optional.
	ResourceTier func(name string) (airlock.Tier, bool)
	// Notifier, when set, receives a NotifyUsed notification for every
	// airlock-admin user after a use while the store is up (the durable
	// outbox: *notify.Outbox). Optional.
	Notifier passkey.Notifier
	// HTTPClient delivers alerts (nil: a client with AlertTimeout).
	HTTPClient *http.Client
	// Logger receives the critical alert line and diagnostics (nil:
	// slog.Default()).
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service runs the break-glass path. It is safe for concurrent use.
type Service struct {
	cfg      Config
	scopes   []airlock.Scope
	store    airlock.Store
	passkeys *passkey.Service
	log      *audit.Log
	ca       *sshca.CA
	static   *Credentials
	now      func() time.Time
	logger   *slog.Logger
	client   *http.Client

	auditSpool   *spool
	alertSpool   *spool
	revokedSpool *spool

	mu         sync.Mutex
	ceremonies map[string]*memCeremony
	sessions   map[string]*Session // by string(token hash)
	// signCounts are the sign counts of passkeys used while the store was
	// down, by string(credential id): the static file's may be stale.
	signCounts map[string]uint32

	// mergeMu serializes Merge; useMu serializes the end of Finish (lock
	// check to record).
	mergeMu sync.Mutex
	useMu   sync.Mutex
}

// New returns a Service. store, passkeys and log are required; ca may be
// nil (no SSH certificates). It refuses a config without scopes, with a
// scope that does not parse, a duration over MaxDuration or negative, no
// alert target, a target that is not an absolute http(s) URL or has no
// secret, no Dir, or a credential file that cannot be read or parsed.
func New(cfg Config, store airlock.Store, passkeys *passkey.Service, log *audit.Log, ca *sshca.CA) (*Service, error) {
	if store == nil || passkeys == nil || log == nil {
		return nil, errors.New("breakglass: store, passkey service and audit log are required")
	}
	if len(cfg.Scopes) == 0 {
		return nil, errors.New("breakglass: the break-glass policy needs at least one scope")
	}
	var scopes []airlock.Scope
	for _, text := range cfg.Scopes {
		sc, err := airlock.ParseScope(text)
		if err != nil {
			return nil, fmt.Errorf("breakglass: scopes: %s", airlock.ErrorMessage(err))
		}
		scopes = append(scopes, sc)
	}
	switch {
	case cfg.Duration < 0:
		return nil, errors.New("breakglass: duration must not be negative")
	case cfg.Duration == 0:
		cfg.Duration = MaxDuration
	case cfg.Duration > MaxDuration:
		return nil, fmt.Errorf("breakglass: duration %s is over the %s a break-glass session may last", cfg.Duration, MaxDuration)
	}
	if len(cfg.Alerts) == 0 {
		return nil, errors.New("breakglass: at least one alert target is required (a use must raise an alert)")
	}
	for i, a := range cfg.Alerts {
		u, err := url.Parse(a.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			// The URL often carries a secret: never quote it.
			return nil, fmt.Errorf("breakglass: alerts[%d]: the url must be an absolute http(s) URL", i)
		}
		if a.Secret == "" {
			return nil, fmt.Errorf("breakglass: alerts[%d]: a secret is required to sign alerts", i)
		}
	}
	if cfg.AlertTimeout < 0 {
		return nil, errors.New("breakglass: alert timeout must not be negative")
	}
	if cfg.AlertTimeout == 0 {
		cfg.AlertTimeout = DefaultAlertTimeout
	}
	if cfg.Dir == "" {
		return nil, errors.New("breakglass: a directory for the local audit file and alert spool is required")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("breakglass: %w", err)
	}
	for _, a := range cfg.SourceAddresses {
		if _, err := sshca.SourceAddressOption([]string{a}); err != nil {
			return nil, fmt.Errorf("breakglass: source_addresses: %s", airlock.ErrorMessage(err))
		}
	}
	if cfg.ReviewerRole == "" {
		cfg.ReviewerRole = airlock.RoleAdmin
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Service{cfg: cfg, scopes: scopes, store: store, passkeys: passkeys, log: log, ca: ca,
		now: cfg.Now, logger: cfg.Logger, client: cfg.HTTPClient,
		auditSpool:   &spool{path: filepath.Join(cfg.Dir, "audit-fallback.jsonl")},
		alertSpool:   &spool{path: filepath.Join(cfg.Dir, "alerts.jsonl")},
		revokedSpool: &spool{path: filepath.Join(cfg.Dir, "revoked-credentials.jsonl")},
		ceremonies:   map[string]*memCeremony{}, sessions: map[string]*Session{}, signCounts: map[string]uint32{},
	}
	if s.client == nil {
		// A redirect is not a delivery: following it would turn the POST
		// into a GET that some other page answers 200.
		s.client = &http.Client{Timeout: cfg.AlertTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.CredentialsFile != "" {
		c, err := LoadCredentials(cfg.CredentialsFile)
		if err != nil {
			return nil, err
		}
		s.static = c
	}
	// Offline uses recorded before a restart still count: their sign
	// counts are the floor for the next offline use.
	if err := s.loadOfflineCounts(); err != nil {
		return nil, err
	}
	return s, nil
}

// Scopes returns the break-glass policy's scopes.
func (s *Service) Scopes() []airlock.Scope { return append([]airlock.Scope(nil), s.scopes...) }

// IsToken reports whether token is a break-glass session token.
func IsToken(token string) bool { return strings.HasPrefix(token, TokenPrefix) }

// refuse returns an *airlock.Error carrying reason r (passkey.ReasonOf).
func refuse(code string, r passkey.Reason, format string, args ...any) *airlock.Error {
	return &airlock.Error{Code: code, Message: fmt.Sprintf(format, args...), Err: &passkey.Failure{Reason: r}}
}

// unavailable reports whether err says the store cannot serve.
func unavailable(err error) bool { return airlock.ErrorCode(err) == airlock.EUNAVAILABLE }

// checkText checks a justification or review notes: 1..MaxJustificationLen
// bytes of valid UTF-8, not only spaces, no control characters but line
// breaks and tabs.
func checkText(what, text string) error {
	if strings.TrimSpace(text) == "" {
		return refuse(airlock.EINVALID, ReasonJustification, "a written %s is required", what)
	}
	if len(text) > MaxJustificationLen {
		return refuse(airlock.EINVALID, ReasonJustification, "the %s is %d bytes; at most %d are allowed", what, len(text), MaxJustificationLen)
	}
	if !utf8.ValidString(text) {
		return refuse(airlock.EINVALID, ReasonJustification, "the %s is not valid UTF-8", what)
	}
	for _, r := range text {
		if r != '\n' && r != '\t' && r != '\r' && (unicode.IsControl(r) || r == '\u2028' || r == '\u2029') {
			return refuse(airlock.EINVALID, ReasonJustification, "the %s contains a control character", what)
		}
	}
	return nil
}

// event fills the request metadata of an audit event.
func event(typ, outcome string, meta passkey.Meta) airlock.AuditEvent {
	e := airlock.AuditEvent{Type: typ, Outcome: outcome, IP: meta.IP, RequestID: meta.RequestID, Details: map[string]any{}}
	if meta.UserAgent != "" {
		e.Details["user_agent"] = meta.UserAgent
	}
	return e
}

// record stores e in the audit log; if the log is unavailable (the store is
// down), it appends e to the local fallback file instead (fsynced: durable
// either way), marked Details["offline"] and with a unique
// Details["spool_id"], for Merge. Only when both fail is the error
// returned: the caller must then refuse what it was about to do.
func (s *Service) record(ctx context.Context, e airlock.AuditEvent) error {
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	if e.Outcome == "" {
		e.Outcome = airlock.OutcomeSuccess
	}
	err := s.log.Record(ctx, e)
	if err == nil || !unavailable(err) {
		return err
	}
	e.Details["offline"] = true
	e.Details["spool_id"] = airlock.NewID("bgs_")
	if ferr := s.auditSpool.append(e); ferr != nil {
		s.logger.Error("break-glass audit event lost: the store and the local audit file both failed",
			"type", e.Type, "err", err, "file_err", ferr)
		return airlock.Wrap(airlock.EUNAVAILABLE, "audit log and local audit file unavailable", errors.Join(err, ferr))
	}
	s.logger.Warn("break-glass audit event written to the local audit file (store unavailable)", "type", e.Type, "spool_id", e.Details["spool_id"])
	return nil
}
