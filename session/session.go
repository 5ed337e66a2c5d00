// Package session creates and checks Airlock sessions: a random bearer
// secret (stored only as its SHA-256), an effective tier, and absolute and
// idle deadlines per tier (NIST SP 800-63B-4 reauthentication limits).
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"

	"airlock"
)

// Limits are the reauthentication deadlines of one kind of session.
type Limits struct {
	Absolute time.Duration `yaml:"absolute" json:"absolute"`
	Idle     time.Duration `yaml:"idle" json:"idle"`
}

// Config sets the deadlines. Tiers is indexed by effective tier.
// SharedStation, when non-zero, caps the deadlines of sessions on
// shared-station devices.
type Config struct {
	Tiers         [3]Limits
	SharedStation Limits
	Now           func() time.Time
}

// DefaultConfig returns the DESIGN.md defaults: tier 0 12 h / 15 min, tiers
// 1–2 24 h / 1 h, shared stations 8 h / 5 min.
func DefaultConfig() Config {
	return Config{
		Tiers: [3]Limits{
			{Absolute: 12 * time.Hour, Idle: 15 * time.Minute},
			{Absolute: 24 * time.Hour, Idle: time.Hour},
			{Absolute: 24 * time.Hour, Idle: time.Hour},
		},
		SharedStation: Limits{Absolute: 8 * time.Hour, Idle: 5 * time.Minute},
	}
}

// Auditor records audit events durably.
type Auditor interface {
	Record(ctx context.Context, e airlock.AuditEvent) error
}

// Manager creates, authenticates and ends sessions.
type Manager struct {
	cfg   Config
	store airlock.SessionStore
	audit Auditor
	onEnd EndHook
}

// EndHook runs after sessions ended (logout, revocation, a deadline, the
// sessions of a user or a device ended together), with their ids, the
// reason and the actor (a user ID or "system"). Elevation grants, which
// belong to the session that requested them, end through it.
type EndHook func(ctx context.Context, sessionIDs []string, reason, actor string) error

// OnEnd registers f to run after every session end. Register it while
// wiring, before the Manager is used. f's error is returned by the call
// that ended the sessions (they have ended all the same); a nil f removes
// the hook.
func (m *Manager) OnEnd(f EndHook) { m.onEnd = f }

// ended runs the end hook, if any, for sessions just ended.
func (m *Manager) ended(ctx context.Context, ids []string, reason, actor string) error {
	if m.onEnd == nil || len(ids) == 0 {
		return nil
	}
	return m.onEnd(ctx, ids, reason, actor)
}

// New returns a Manager. Zero limits in cfg (and a zero SharedStation) are
// filled from DefaultConfig.
func New(cfg Config, store airlock.SessionStore, audit Auditor) *Manager {
	def := DefaultConfig()
	for i := range cfg.Tiers {
		if cfg.Tiers[i].Absolute <= 0 {
			cfg.Tiers[i].Absolute = def.Tiers[i].Absolute
		}
		if cfg.Tiers[i].Idle <= 0 {
			cfg.Tiers[i].Idle = def.Tiers[i].Idle
		}
	}
	if cfg.SharedStation == (Limits{}) {
		cfg.SharedStation = def.SharedStation
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Manager{cfg: cfg, store: store, audit: audit}
}

// LimitsFor returns the deadlines for a session of tier on a device of kind.
func (m *Manager) LimitsFor(tier airlock.Tier, kind airlock.DeviceKind) Limits {
	if !tier.Valid() {
		tier = airlock.MaxTier
	}
	l := m.cfg.Tiers[tier]
	if kind == airlock.DeviceSharedStation {
		if s := m.cfg.SharedStation; s.Absolute > 0 && s.Absolute < l.Absolute {
			l.Absolute = s.Absolute
		}
		if s := m.cfg.SharedStation; s.Idle > 0 && s.Idle < l.Idle {
			l.Idle = s.Idle
		}
	}
	return l
}

// Start describes a completed login that becomes a session.
type Start struct {
	User       *airlock.User
	Device     *airlock.Device
	Credential *airlock.Credential
	Tier       airlock.Tier
	UV         bool
	AMR        []string
	IP         string
	UserAgent  string
	RequestID  string
	// KeyThumbprint binds the new session's token to a key pair (see
	// airlock.Session.KeyThumbprint); empty for a browser session.
	KeyThumbprint string
	// LastUVAt, when not zero and UV is false, is carried over as the new
	// session's last user-verified passkey use (a CLI session inherits its
	// browser session's).
	LastUVAt time.Time
	// NotAfter, when not zero, caps the absolute deadline (a CLI session
	// never outlives the browser session it came from).
	NotAfter time.Time
}

// HashToken returns the stored form of a bearer secret.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Create starts a new session with a fresh id and secret (never reusing an
// earlier one: a new session id at every login) and returns the secret.
func (m *Manager) Create(ctx context.Context, in Start) (string, *airlock.Session, error) {
	now := m.cfg.Now().UTC()
	token, err := randomString(32)
	if err != nil {
		return "", nil, err
	}
	limits := m.LimitsFor(in.Tier, in.Device.Kind)
	s := &airlock.Session{
		ID:               airlock.NewID(airlock.PrefixSession),
		TokenHash:        HashToken(token),
		UserID:           in.User.ID,
		DeviceID:         in.Device.ID,
		CredentialID:     in.Credential.ID,
		Tier:             in.Tier,
		AMR:              in.AMR,
		ACR:              ACRForTier(in.Tier),
		AuthTime:         now,
		LastSeen:         now,
		AbsoluteDeadline: now.Add(limits.Absolute),
		IdleTimeout:      limits.Idle,
		IP:               in.IP,
		UserAgent:        in.UserAgent,
		KeyThumbprint:    in.KeyThumbprint,
		CreatedAt:        now,
	}
	if !in.NotAfter.IsZero() && in.NotAfter.Before(s.AbsoluteDeadline) {
		s.AbsoluteDeadline = in.NotAfter.UTC()
	}
	if in.UV {
		s.LastUVAt = now
	} else if !in.LastUVAt.IsZero() {
		s.LastUVAt = in.LastUVAt.UTC()
	}
	if err := m.store.CreateSession(ctx, s); err != nil {
		return "", nil, err
	}
	if err := m.audit.Record(ctx, airlock.AuditEvent{
		Type: "session.created", Actor: in.User.ID, Subject: s.ID, UserID: in.User.ID, SessionID: s.ID,
		DeviceID: in.Device.ID, CredentialID: base64.RawURLEncoding.EncodeToString(in.Credential.ID),
		RequestID: in.RequestID, IP: in.IP,
		Details: map[string]any{"tier": int(in.Tier), "amr": in.AMR, "absolute_deadline": s.AbsoluteDeadline, "idle_timeout_s": int(limits.Idle / time.Second)},
	}); err != nil {
		// An unaudited session must not be usable.
		_ = m.store.EndSession(ctx, s.ID, "audit_failed", now)
		return "", nil, err
	}
	return token, s, nil
}

// ACRForTier returns the authentication context class Airlock reports for
// a session of tier: "airlock:tier0" and so on.
func ACRForTier(t airlock.Tier) string {
	return "airlock:tier" + string(rune('0'+int(t)))
}

// Authenticate returns the live session named by token and records the
// activity (resetting the idle deadline). A session past a deadline is ended
// (audited "session.expired") and EUNAUTHORIZED is returned.
func (m *Manager) Authenticate(ctx context.Context, token string) (*airlock.Session, error) {
	s, _, err := m.AuthenticateSeen(ctx, token)
	return s, err
}

// TouchInterval is how stale LastSeen may get before a request records the
// activity: requests of one session closer together than this share one
// write, so an idle deadline may come up to this much early.
const TouchInterval = time.Second

// AuthenticateSeen is Authenticate that also returns when the session was
// last seen before this request (for the idle-time risk signal).
func (m *Manager) AuthenticateSeen(ctx context.Context, token string) (*airlock.Session, time.Time, error) {
	return m.AuthenticateChecked(ctx, token, nil)
}

// AuthenticateChecked is AuthenticateSeen with a check run on the live
// session before its activity is recorded: a request the check refuses
// (e.g. a key-bound token without its DPoP proof) neither touches the
// session nor moves its idle deadline. A nil check accepts.
func (m *Manager) AuthenticateChecked(ctx context.Context, token string, check func(*airlock.Session) error) (*airlock.Session, time.Time, error) {
	s, err := m.authenticate(ctx, token)
	if err != nil {
		return nil, time.Time{}, err
	}
	if check != nil {
		if err := check(s); err != nil {
			return nil, time.Time{}, err
		}
	}
	prev := s.LastSeen
	now := m.cfg.Now().UTC()
	if now.Sub(prev) < TouchInterval && !now.Before(prev) {
		// Seen within the last TouchInterval: the idle deadline moves by
		// less than that, not worth a durable write per request (a busy
		// client would otherwise cost one fsync per call).
		return s, prev, nil
	}
	if err := m.store.TouchSession(ctx, s.ID, now); airlock.ErrorCode(err) == airlock.ECONFLICT {
		// Ended between the lookup and the touch.
		return nil, time.Time{}, airlock.Errorf(airlock.EUNAUTHORIZED, "session has ended")
	} else if err != nil {
		return nil, time.Time{}, err
	}
	s.LastSeen = now
	return s, prev, nil
}

// authenticate finds the live session of token, ending it if a deadline
// has passed; it does not touch it.
func (m *Manager) authenticate(ctx context.Context, token string) (*airlock.Session, error) {
	if token == "" || len(token) > 200 {
		return nil, airlock.Errorf(airlock.EUNAUTHORIZED, "no valid session")
	}
	s, err := m.store.FindSessionByTokenHash(ctx, HashToken(token))
	if airlock.ErrorCode(err) == airlock.ENOTFOUND {
		return nil, airlock.Errorf(airlock.EUNAUTHORIZED, "no valid session")
	} else if err != nil {
		return nil, err
	}
	now := m.cfg.Now().UTC()
	if !s.EndedAt.IsZero() {
		return nil, airlock.Errorf(airlock.EUNAUTHORIZED, "session has ended (%s)", s.EndReason)
	}
	if reason := expiry(s, now); reason != "" {
		if err := m.end(ctx, s, reason, "system", now); err != nil && airlock.ErrorCode(err) != airlock.ECONFLICT {
			return nil, err
		}
		return nil, airlock.Errorf(airlock.EUNAUTHORIZED, "session expired (%s); sign in again", reason)
	}
	return s, nil
}

func expiry(s *airlock.Session, now time.Time) string {
	if !now.Before(s.AbsoluteDeadline) {
		return "absolute_timeout"
	}
	if !now.Before(s.IdleDeadline()) {
		return "idle_timeout"
	}
	return ""
}

// End ends the session s for reason on behalf of actor (a user ID or
// "system") and audits it.
func (m *Manager) End(ctx context.Context, s *airlock.Session, reason, actor string) error {
	return m.end(ctx, s, reason, actor, m.cfg.Now().UTC())
}

func (m *Manager) end(ctx context.Context, s *airlock.Session, reason, actor string, now time.Time) error {
	if err := m.store.EndSession(ctx, s.ID, reason, now); err != nil {
		return err
	}
	typ := "session.ended"
	if reason == "absolute_timeout" || reason == "idle_timeout" {
		typ = "session.expired"
	}
	err := m.audit.Record(ctx, airlock.AuditEvent{
		Type: typ, Actor: actor, Subject: s.ID, Reason: reason, UserID: s.UserID, SessionID: s.ID, DeviceID: s.DeviceID,
		CredentialID: base64.RawURLEncoding.EncodeToString(s.CredentialID),
	})
	return errors.Join(err, m.ended(ctx, []string{s.ID}, reason, actor))
}

// EndUser ends every live session of userID (user disabled, credential
// revoked…) and audits each.
func (m *Manager) EndUser(ctx context.Context, userID, reason, actor string) error {
	ids, err := m.store.EndUserSessions(ctx, userID, reason, m.cfg.Now().UTC())
	if err != nil {
		return err
	}
	return errors.Join(m.auditEnded(ctx, ids, reason, actor), m.ended(ctx, ids, reason, actor))
}

// EndDevice ends every live session on deviceID (the device lost its
// trust) and audits each.
func (m *Manager) EndDevice(ctx context.Context, deviceID, reason, actor string) error {
	ids, err := m.store.EndDeviceSessions(ctx, deviceID, reason, m.cfg.Now().UTC())
	if err != nil {
		return err
	}
	return errors.Join(m.auditEnded(ctx, ids, reason, actor), m.ended(ctx, ids, reason, actor))
}

// auditEnded records "session.ended" for sessions just ended, with every
// correlation id the session carries.
func (m *Manager) auditEnded(ctx context.Context, ids []string, reason, actor string) error {
	for _, id := range ids {
		e := airlock.AuditEvent{Type: "session.ended", Actor: actor, Subject: id, Reason: reason, SessionID: id}
		if s, err := m.store.FindSessionByID(ctx, id); err == nil {
			e.UserID, e.DeviceID, e.CredentialID = s.UserID, s.DeviceID, base64.RawURLEncoding.EncodeToString(s.CredentialID)
		}
		if err := m.audit.Record(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// ExpireStale ends and audits every session whose deadline has passed
// without it being presented again, so that the trail shows when each
// session really ended.
func (m *Manager) ExpireStale(ctx context.Context) error {
	now := m.cfg.Now().UTC()
	for {
		stale, err := m.store.ListExpiredSessions(ctx, now, 100)
		if err != nil {
			return err
		}
		for _, s := range stale {
			reason := expiry(s, now)
			if reason == "" {
				continue
			}
			if err := m.end(ctx, s, reason, "system", now); err != nil && airlock.ErrorCode(err) != airlock.ECONFLICT {
				return err
			}
		}
		if len(stale) < 100 {
			return nil
		}
	}
}

// MarkUV records a fresh user-verified passkey use in the session.
func (m *Manager) MarkUV(ctx context.Context, s *airlock.Session) error {
	now := m.cfg.Now().UTC()
	if err := m.store.SetSessionUV(ctx, s.ID, now); err != nil {
		return err
	}
	s.LastUVAt = now
	return nil
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", airlock.Wrap(airlock.EINTERNAL, "random source failed", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
