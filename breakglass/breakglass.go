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
package breakglass

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"airlock"
	"airlock/audit"
	"airlock/decide"
	"airlock/passkey"
	"airlock/sshca"
)

// Limits of the break-glass policy.
const (
	// MaxDuration is the longest break-glass session; it is never extended.
	MaxDuration = 60 * time.Minute
	// MaxJustificationLen bounds the written justification.
	MaxJustificationLen = 2000
	// TokenPrefix starts every break-glass session token. No normal session
	// token contains a '.', so the two never mix.
	TokenPrefix = "bg."
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
	// Alerts receive the critical alert; at least one.
	Alerts []AlertTarget
	// AlertTimeout bounds the delivery attempt made before access begins
	// (0: 5 s); past it the alert counts as queued if it was spooled.
	AlertTimeout time.Duration
	// Dir holds the local append-only files: the fallback audit file and
	// the alert spool. Required.
	Dir string
	// CredentialsFile is the static break-glass credential file (public keys
	// and credential ids, ExportCredentials): used when the store is down.
	// Optional.
	CredentialsFile string
	// SourceAddresses, when set, are the SSH certificates' source-address
	// (CIDRs); empty: the client's IP as Airlock sees it.
	SourceAddresses []string
	// ReviewerRole may record reviews (empty: airlock.RoleAdmin).
	ReviewerRole string
	// ResourceTier returns a resource's tier from the in-memory catalog,
	// for tier scopes while the store is down. Optional.
	ResourceTier func(name string) (airlock.Tier, bool)
	// Logger receives the critical alert line and diagnostics.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service runs the break-glass path.
type Service struct {
	cfg      Config
	store    airlock.Store
	passkeys *passkey.Service
	log      *audit.Log
	ca       *sshca.CA
}

// New returns a Service. store, passkeys and log are required; ca may be
// nil (no SSH certificates). CONTRACT STUB.
func New(cfg Config, store airlock.Store, passkeys *passkey.Service, log *audit.Log, ca *sshca.CA) (*Service, error) {
	return &Service{cfg: cfg, store: store, passkeys: passkeys, log: log, ca: ca}, nil
}

var errTODO = airlock.Errorf(airlock.EUNAVAILABLE, "breakglass: not implemented yet")

// IsToken reports whether token is a break-glass session token.
func IsToken(token string) bool { return strings.HasPrefix(token, TokenPrefix) }

// Session is a live break-glass session.
type Session struct {
	Event   *airlock.BreakGlassEvent
	Account *airlock.User
}

// Begin starts a use of the break-glass account named account with a
// written justification: a passkey.KindBreakGlass ceremony whose digest
// covers the account, the justification and the policy. CONTRACT STUB.
func (s *Service) Begin(ctx context.Context, account, justification string, meta passkey.Meta) (*passkey.Begin, error) {
	return nil, errTODO
}

// Finish completes a use: it verifies the passkey, refuses a locked
// account, raises the alert (delivered or durably queued, else refused),
// records the event and returns the session token (shown once).
// CONTRACT STUB.
func (s *Service) Finish(ctx context.Context, ceremonyID string, credentialJSON json.RawMessage, meta passkey.Meta) (string, *Session, error) {
	return "", nil, errTODO
}

// Authenticate returns the live session of token. CONTRACT STUB.
func (s *Service) Authenticate(ctx context.Context, token string) (*Session, error) {
	return nil, errTODO
}

// Decide answers a decision for a break-glass session: allow when the
// policy's scopes cover the resource, else deny; no Cedar policy is
// consulted. Audited "breakglass.decision". CONTRACT STUB.
func (s *Service) Decide(ctx context.Context, sess *Session, action, resource string, meta passkey.Meta) (*decide.Result, error) {
	return nil, errTODO
}

// IssueSSHCertificate signs pub for principal (one of the session's role
// scopes), with source-address and no forwarding, valid at most until the
// session ends. CONTRACT STUB.
func (s *Service) IssueSSHCertificate(ctx context.Context, sess *Session, pub ssh.PublicKey, principal, clientIP string, meta passkey.Meta) (*ssh.Certificate, error) {
	return nil, errTODO
}

// End ends a session early. CONTRACT STUB.
func (s *Service) End(ctx context.Context, sess *Session, reason string, meta passkey.Meta) error {
	return errTODO
}

// List returns events to a reviewer (unreviewed only when asked).
// CONTRACT STUB.
func (s *Service) List(ctx context.Context, viewer decide.Subject, unreviewedOnly bool) ([]*airlock.BreakGlassEvent, error) {
	return nil, errTODO
}

// BeginReview starts a reviewer's post-incident review of event id
// (passkey.KindBreakGlassReview over the event and the notes).
// CONTRACT STUB.
func (s *Service) BeginReview(ctx context.Context, id string, reviewer decide.Subject, notes string, meta passkey.Meta) (*passkey.Begin, error) {
	return nil, errTODO
}

// FinishReview records the review (the same notes must be given).
// CONTRACT STUB.
func (s *Service) FinishReview(ctx context.Context, ceremonyID string, credentialJSON json.RawMessage, reviewer decide.Subject, notes string, meta passkey.Meta) (*airlock.BreakGlassEvent, error) {
	return nil, errTODO
}

// Merge folds the local fallback audit file into the log and records the
// events of offline uses in the store, once the store is back. It returns
// how many audit events it merged. CONTRACT STUB.
func (s *Service) Merge(ctx context.Context) (int, error) {
	return 0, nil
}

// Run ends sessions past their end, retries queued alerts and merges the
// local audit file every interval until ctx ends. CONTRACT STUB.
func (s *Service) Run(ctx context.Context, interval time.Duration) {}

// ExportCredentials returns the static credential file for every
// break-glass account in store: public keys and credential ids only.
// CONTRACT STUB.
func ExportCredentials(ctx context.Context, store airlock.Store) ([]byte, error) {
	return nil, errTODO
}
