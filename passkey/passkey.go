// Package passkey runs Airlock's WebAuthn ceremonies: enrolment of a passkey
// with a single-use enrolment token, bound to one user, one inventory device
// and a tier cap, and discoverable (username-less) login that proves who,
// with which credential, on which device, with user verification, and at
// which effective tier.
//
// Verification is done by github.com/go-webauthn/webauthn; this package adds
// what a library cannot know (WebAuthn Level 3 §7.1 and §7.2 leave these to
// the Relying Party): challenges that are stored, single use and expire on an
// injected clock; the credential id registered to nobody else; the
// backup-eligibility and attestation rules that decide which tiers a passkey
// may serve; the reaction to a sign count that did not increase; and an audit
// record of every success and failure.
//
// The package proves facts; it decides nothing about actions (that is the
// policy engine's job).
package passkey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"airlock"
	"airlock/device"
)

// Default lifetimes.
const (
	// DefaultCeremonyTTL is how long a begun ceremony may be finished.
	DefaultCeremonyTTL = 5 * time.Minute
	// DefaultTokenTTL is how long an enrolment token is valid.
	DefaultTokenTTL = 15 * time.Minute
)

// Ceremony kinds stored in airlock.Ceremony.Kind.
const (
	KindEnrol = "enrol"
	KindLogin = "login"
)

// NotifyPasskeyAdded is the notification kind sent when a passkey is bound
// to an account.
const NotifyPasskeyAdded = "passkey.added"

// BootstrapUserName and BootstrapDeviceName name the user and device that
// Bootstrap creates (or reuses) on an empty installation.
const (
	BootstrapUserName   = "admin"
	BootstrapDeviceName = "bootstrap"
)

// TierPolicy says which passkeys may serve one tier. The zero value admits
// any device-bound passkey and refuses synced ones.
type TierPolicy struct {
	// AllowSynced lets backup-eligible (BE=1, "synced") passkeys serve the
	// tier. NIST SP 800-63B-4: syncable authenticators are not AAL3.
	AllowSynced bool `yaml:"allow_synced" json:"allow_synced"`
	// RequireAttestation admits only a passkey whose attestation proves its
	// model: a statement that verified, whose format is not "none", whose
	// type is not self attestation ("basic_surrogate"), and whose x5c
	// certificate chain verifies against AttestationRoots. A self-signed
	// batch certificate, or one chaining to any other CA, does not count.
	// It needs AttestationRoots (New refuses it without).
	RequireAttestation bool `yaml:"require_attestation" json:"require_attestation"`
	// AttestationRoots are paths of PEM files holding the CA certificates
	// (e.g. a vendor's FIDO attestation root) an attestation chain must
	// verify against. New reads them; a file that cannot be read or holds
	// no certificate is a configuration error. A credential whose chain
	// verified against the roots of any tier is recorded as
	// Credential.AttestationTrusted.
	AttestationRoots []string `yaml:"attestation_roots" json:"attestation_roots"`
	// AAGUIDs is an allow-list of authenticator models (UUID text, any case).
	// Empty admits any; the AAGUID is recorded either way. A non-empty list is
	// enforced whether or not RequireAttestation is set, but only with
	// RequireAttestation and AttestationRoots is the AAGUID vouched for by
	// a trusted certificate: without them it is only the authenticator's
	// own claim, which any software authenticator can make.
	AAGUIDs []string `yaml:"aaguids" json:"aaguids"`
}

// DefaultTierPolicies returns the embedded default: tiers 0 and 1 refuse
// synced passkeys, tier 2 admits them; no attestation and no allow-list are
// required anywhere.
func DefaultTierPolicies() [3]TierPolicy {
	return [3]TierPolicy{{}, {}, {AllowSynced: true}}
}

// Config configures a Service.
type Config struct {
	// RPID is the WebAuthn Relying Party ID (a registrable domain, or
	// "localhost").
	RPID string
	// RPName is shown by authenticators; empty means "Airlock".
	RPName string
	// Origins is the exact allow-list of origins (scheme, host and port) a
	// ceremony may come from. A top origin (cross-origin iframe) is never
	// accepted.
	Origins []string
	// Tiers holds the passkey policy of each tier, indexed by tier.
	Tiers [3]TierPolicy
	// CeremonyTTL bounds begin-to-finish time; 0 means DefaultCeremonyTTL.
	CeremonyTTL time.Duration
	// TokenTTL is an enrolment token's lifetime; 0 means DefaultTokenTTL.
	TokenTTL time.Duration
	// ProofTTL is how long a step-up proof stays valid after its ceremony;
	// 0 means DefaultProofTTL.
	ProofTTL time.Duration
	// DeviceRules decide whether the device named by an enrolment token is
	// compliant.
	DeviceRules device.Rules
	// Now is the clock of every expiry check; nil means time.Now.
	Now func() time.Time
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

// Meta is what the edge knows about the request, for the audit trail.
type Meta struct {
	IP        string
	UserAgent string
	RequestID string
	// ViaSession names the session that performed a ceremony on behalf of
	// another of the same user on the same device (a browser confirming a
	// CLI session's step-up); empty otherwise. It is recorded in the audit
	// event beside the session the ceremony was for.
	ViaSession string
}

// Begin is the answer to a ceremony's begin step.
type Begin struct {
	// Ceremony is the opaque id the finish step must name.
	Ceremony string `json:"ceremony"`
	// PublicKey is the W3C PublicKeyCredentialCreationOptions (enrol) or
	// PublicKeyCredentialRequestOptions (login) in their JSON form, binary
	// members base64url; pass it to parseCreationOptionsFromJSON /
	// parseRequestOptionsFromJSON.
	PublicKey any `json:"publicKey"`
}

// Enrolled is the result of a successful enrolment.
type Enrolled struct {
	User       *airlock.User
	Device     *airlock.Device
	Credential *airlock.Credential
	Token      *airlock.EnrolmentToken
}

// LoginResult is what a successful login proves.
type LoginResult struct {
	User       *airlock.User
	Device     *airlock.Device
	Credential *airlock.Credential
	// Tier is the effective tier: the user's tier limited by the
	// credential's cap (and by the current tier policy).
	Tier airlock.Tier
	// UV reports whether this assertion's authenticator data had the UV flag
	// (always true on success: UV is required).
	UV bool
	// AMR lists RFC 8176 methods: ["hwk","user","mfa"] for a device-bound
	// passkey (BE=0), ["swk","user","mfa"] for a synced one.
	AMR []string
}

// Service runs enrolment and login ceremonies. It is safe for concurrent
// use; all state lives in the store.
type Service struct {
	cfg      Config
	store    airlock.Store
	audit    Auditor
	notifier Notifier
	wa       *webauthn.WebAuthn
	now      func() time.Time
	rpIDHash [32]byte
	tiers    [3]tierRule
	// credLocks serialize logins of one credential within this process,
	// so that two racing assertions cannot both pass the sign-count check
	// against the same stored count (W11). See credLock.
	credLocks [256]sync.Mutex
	// recoveryHook completes a recovery enrolment (SetRecoveryHook).
	recoveryHook RecoveryHook
}

// RecoveryHook finishes what a recovery enrolment means once the new
// passkey is stored, notified and audited: package recovery revokes the
// subject's earlier passkeys, ends their sessions and grants, records the
// recovery risk signal and completes the case. An error rolls the
// enrolment back (the new passkey is revoked).
type RecoveryHook func(ctx context.Context, e *Enrolled, meta Meta) error

// SetRecoveryHook installs the hook run after every enrolment with an
// airlock.PurposeRecovery token. Without one, such enrolments are refused
// (rolled back): a recovery that cannot end the old credentials must not
// add a new one. Call it before serving.
func (s *Service) SetRecoveryHook(h RecoveryHook) { s.recoveryHook = h }

// credLock returns the mutex of the stripe credential id falls in.
func (s *Service) credLock(id []byte) *sync.Mutex {
	h := sha256.Sum256(id)
	return &s.credLocks[h[0]]
}

type tierRule struct {
	allowSynced bool
	requireAtt  bool
	roots       *x509.CertPool // nil when the tier has no attestation roots
	aaguids     []string       // canonical lower-case UUID text
}

// credParams are the only algorithms offered (W7): ES256, EdDSA, RS256.
var credParams = []protocol.CredentialParameter{
	{Type: protocol.PublicKeyCredentialType, Algorithm: -7},
	{Type: protocol.PublicKeyCredentialType, Algorithm: -8},
	{Type: protocol.PublicKeyCredentialType, Algorithm: -257},
}

// New returns a Service. It reports a configuration error for a missing RP
// ID, an empty or malformed origin list, a malformed AAGUID, a tier that
// requires attestation without attestation roots, an attestation roots file
// that cannot be read or holds no certificate, bad device rules or a nil
// dependency.
func New(cfg Config, store airlock.Store, audit Auditor, notifier Notifier) (*Service, error) {
	if store == nil || audit == nil || notifier == nil {
		return nil, errors.New("passkey: store, auditor and notifier are required")
	}
	if cfg.RPID == "" {
		return nil, errors.New("passkey: RP ID is required")
	}
	if cfg.RPName == "" {
		cfg.RPName = "Airlock"
	}
	if len(cfg.Origins) == 0 {
		return nil, errors.New("passkey: at least one origin is required")
	}
	for _, o := range cfg.Origins {
		if err := validateOrigin(o); err != nil {
			return nil, err
		}
	}
	if cfg.CeremonyTTL < 0 || cfg.TokenTTL < 0 {
		return nil, errors.New("passkey: ceremony and token lifetimes must not be negative")
	}
	if cfg.CeremonyTTL == 0 {
		cfg.CeremonyTTL = DefaultCeremonyTTL
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.ProofTTL < 0 {
		return nil, errors.New("passkey: the step-up proof lifetime must not be negative")
	}
	if cfg.ProofTTL == 0 {
		cfg.ProofTTL = DefaultProofTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := cfg.DeviceRules.Validate(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, store: store, audit: audit, notifier: notifier, now: cfg.Now}
	for t, p := range cfg.Tiers {
		r := tierRule{allowSynced: p.AllowSynced, requireAtt: p.RequireAttestation}
		if p.RequireAttestation && len(p.AttestationRoots) == 0 {
			return nil, fmt.Errorf("passkey: tiers[%d].require_attestation needs attestation_roots: without a trust root an attestation proves nothing", t)
		}
		if len(p.AttestationRoots) > 0 {
			pool, err := loadRoots(t, p.AttestationRoots)
			if err != nil {
				return nil, err
			}
			r.roots = pool
		}
		for _, a := range p.AAGUIDs {
			id, err := uuid.Parse(strings.TrimSpace(a))
			if err != nil {
				return nil, fmt.Errorf("passkey: tier %d: aaguid %q is not a UUID", t, a)
			}
			r.aaguids = append(r.aaguids, id.String())
		}
		s.tiers[t] = r
	}
	uv := protocol.VerificationRequired
	wa, err := webauthn.New(&webauthn.Config{
		RPID:          cfg.RPID,
		RPDisplayName: cfg.RPName,
		RPOrigins:     slices.Clone(cfg.Origins),
		// W3: a topOrigin must be in the same allow-list. go-webauthn only
		// looks at topOrigin when crossOrigin is true, and cross-origin
		// ceremonies are refused (RPAllowCrossOrigin false), so in effect any
		// topOrigin is refused; checkClientData says so clearly first.
		RPTopOrigins:                slices.Clone(cfg.Origins),
		RPTopOriginVerificationMode: protocol.TopOriginExplicitVerificationMode,
		RPAllowCrossOrigin:          false,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			RequireResidentKey: protocol.ResidentKeyRequired(),
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			UserVerification:   uv,
		},
		// Expiry is enforced by this package on cfg.Now (SessionData.Expires
		// stays zero); these values are only the hint sent to the client.
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: cfg.CeremonyTTL, TimeoutUVD: cfg.CeremonyTTL},
			Registration: webauthn.TimeoutConfig{Timeout: cfg.CeremonyTTL, TimeoutUVD: cfg.CeremonyTTL},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkey: webauthn config: %w", err)
	}
	s.wa = wa
	s.rpIDHash = sha256.Sum256([]byte(cfg.RPID))
	return s, nil
}

// loadRoots reads the PEM files of tier t's attestation roots into a pool.
func loadRoots(t int, paths []string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("passkey: tiers[%d].attestation_roots: cannot read %s: %w", t, path, err)
		}
		n := 0
		for rest := data; ; {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("passkey: tiers[%d].attestation_roots: %s: certificate %d: %w", t, path, n+1, err)
			}
			pool.AddCert(c)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("passkey: tiers[%d].attestation_roots: %s holds no PEM CERTIFICATE", t, path)
		}
	}
	return pool, nil
}

func validateOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("passkey: origin %q must be scheme://host[:port] (http or https)", o)
	}
	return nil
}

// Reason is a machine-readable code for why a ceremony or token check was
// refused. It is recorded as the audit event's Reason and carried in the
// returned error (see ReasonOf).
type Reason string

// Reasons.
const (
	ReasonUnknownCeremony    Reason = "unknown_ceremony"
	ReasonWrongCeremony      Reason = "wrong_ceremony"
	ReasonExpired            Reason = "expired"
	ReasonParse              Reason = "parse"
	ReasonBadType            Reason = "bad_type"
	ReasonBadChallenge       Reason = "bad_challenge"
	ReasonBadOrigin          Reason = "bad_origin"
	ReasonBadTopOrigin       Reason = "bad_top_origin"
	ReasonCrossOrigin        Reason = "cross_origin"
	ReasonBadRPID            Reason = "bad_rp_id"
	ReasonUPMissing          Reason = "up_missing"
	ReasonUVMissing          Reason = "uv_missing"
	ReasonBadBackupFlags     Reason = "bad_backup_flags"
	ReasonAlgNotOffered      Reason = "alg_not_offered"
	ReasonCredIDTooLong      Reason = "credential_id_too_long"
	ReasonBadAttestation     Reason = "bad_attestation"
	ReasonBadSignature       Reason = "bad_signature"
	ReasonVerify             Reason = "verify_failed"
	ReasonDuplicate          Reason = "duplicate_credential"
	ReasonTierPolicy         Reason = "tier_policy"
	ReasonBootstrapBound     Reason = "bootstrap_needs_device_bound"
	ReasonBootstrapClosed    Reason = "bootstrap_closed"
	ReasonBreakGlassBound    Reason = "breakglass_needs_device_bound"
	ReasonRecoveryHook       Reason = "recovery_failed"
	ReasonUnknownToken       Reason = "unknown_token"
	ReasonTokenUsed          Reason = "token_used"
	ReasonTokenExpired       Reason = "token_expired"
	ReasonUserDisabled       Reason = "user_disabled"
	ReasonDeviceNotCompliant Reason = "device_not_compliant"
	ReasonDeviceRevoked      Reason = "device_revoked"
	ReasonDeviceMissing      Reason = "device_missing"
	ReasonDeviceOwnerChanged Reason = "device_owner_changed"
	ReasonUnknownCredential  Reason = "unknown_credential"
	ReasonCredentialRevoked  Reason = "credential_revoked"
	ReasonNoUserHandle       Reason = "no_user_handle"
	ReasonUserHandle         Reason = "user_handle_mismatch"
	ReasonBEChanged          Reason = "be_changed"
	ReasonClone              Reason = "clone"
	ReasonNotifyFailed       Reason = "notify_failed"
	ReasonRollbackFailed     Reason = "rollback_failed"
	ReasonStore              Reason = "store"
)

// Failure is the internal cause inside the *airlock.Error returned for a
// refused ceremony: the reason code and, if any, the library's error (never
// shown to clients).
type Failure struct {
	Reason Reason
	Err    error
}

// Error implements error.
func (f *Failure) Error() string {
	if f.Err != nil {
		return fmt.Sprintf("passkey: %s: %v", f.Reason, f.Err)
	}
	return "passkey: " + string(f.Reason)
}

// Unwrap returns the underlying cause.
func (f *Failure) Unwrap() error { return f.Err }

// ReasonOf returns the Reason carried by err, or "" if err carries none.
func ReasonOf(err error) Reason {
	var f *Failure
	if errors.As(err, &f) {
		return f.Reason
	}
	return ""
}

// fail returns an *airlock.Error with a client-safe message whose cause is a
// *Failure with reason r. Messages carry no "passkey:" prefix because the
// HTTP edge shows them to users as they are.
func fail(code string, r Reason, cause error, format string, args ...any) *airlock.Error {
	return &airlock.Error{Code: code, Message: fmt.Sprintf(format, args...), Err: &Failure{Reason: r, Err: cause}}
}

// storeFail classifies an unexpected store error, keeping its code.
func storeFail(err error, what string) *airlock.Error {
	code := airlock.ErrorCode(err)
	if code == airlock.ENOTFOUND || code == airlock.ECONFLICT || code == "" {
		code = airlock.EINTERNAL
	}
	return fail(code, ReasonStore, err, "%s failed", what)
}

// asFailure makes sure err carries a Reason (store errors get ReasonStore).
func asFailure(err error, what string) error {
	if ReasonOf(err) != "" {
		return err
	}
	return storeFail(err, what)
}

func randomID(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", airlock.Wrap(airlock.EINTERNAL, "random source failed", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// clip shortens attacker-controlled text before it goes into a message.
func clip(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// auditEvent fills the request metadata of an event.
func auditEvent(typ string, outcome string, meta Meta) airlock.AuditEvent {
	e := airlock.AuditEvent{Type: typ, Outcome: outcome, IP: meta.IP, RequestID: meta.RequestID, Details: map[string]any{}}
	if meta.UserAgent != "" {
		e.Details["user_agent"] = meta.UserAgent
	}
	return e
}
