package http

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"

	"airlock"
	"airlock/device"
	"airlock/elevate"
	"airlock/pep"
	"airlock/session"
)

// cookieName is the session cookie's name: with the __Host- prefix when
// served over https, so that it is Secure, host-only and path=/.
func (s *Server) cookieName() string {
	if s.Secure {
		return "__Host-airlock_session"
	}
	return "airlock_session"
}

func (s *Server) setSessionCookie(w http.ResponseWriter, token string, sess *airlock.Session) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(), Value: token, Path: "/", Expires: sess.AbsoluteDeadline,
		HttpOnly: true, Secure: s.Secure, SameSite: http.SameSiteStrictMode,
	})
}

func (s *Server) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.Secure, SameSite: http.SameSiteStrictMode,
	})
}

// authn is the signed-in context of a request.
type authn struct {
	Session *airlock.Session
	User    *airlock.User
	Device  *airlock.Device
	// Credential is the session's passkey, as sessionBasis found it.
	Credential *airlock.Credential
	// PrevSeen is when the session was last seen before this request.
	PrevSeen time.Time
}

func sessionFrom(ctx context.Context) *authn {
	a, _ := ctx.Value(keySession).(*authn)
	return a
}

// authenticate finds the request's session from the Authorization header
// (Bearer, or DPoP for a key-bound CLI session) or, failing that, the
// cookie. The user must still be enabled. A key-bound session's token is
// accepted only as "Authorization: DPoP" with a valid DPoP proof signed by
// its key (RFC 9449), never as Bearer or as a cookie; the check runs
// before the session's activity is recorded.
func (s *Server) authenticate(r *http.Request) (*authn, error) {
	token, scheme := pep.BearerToken(r), "bearer"
	if token == "" {
		if token = dpopToken(r); token != "" {
			scheme = "dpop"
		}
	}
	if token == "" {
		if c, err := r.Cookie(s.cookieName()); err == nil {
			token, scheme = c.Value, "cookie"
		}
	}
	if token == "" {
		return nil, airlock.Errorf(airlock.EUNAUTHORIZED, "sign in first")
	}
	return s.authenticateWith(r.Context(), token, func(sess *airlock.Session) error {
		return s.checkKeyBinding(r, token, scheme, sess)
	})
}

// checkKeyBinding applies DPoP to one request: a key-bound session needs
// the DPoP scheme and a proof by its key; an unbound one must not claim
// the DPoP scheme. A refusal of a live key-bound session's token is
// audited (someone holds the token without its key, or the CLI is broken).
func (s *Server) checkKeyBinding(r *http.Request, token, scheme string, sess *airlock.Session) error {
	if sess.KeyThumbprint == "" {
		if scheme == "dpop" {
			return dpopFail(dpopWrongScheme, "this token is not bound to a key; send it as a Bearer token")
		}
		return nil
	}
	var err error
	if scheme != "dpop" {
		err = dpopFail(dpopWrongScheme, "this token is bound to a key: send it as \"Authorization: DPoP\" with a DPoP proof (run airlock login)")
	} else {
		err = s.verifyDPoP(r.Context(), r, token, sess.KeyThumbprint)
	}
	var de *dpopError
	if errors.As(err, &de) {
		_ = s.Audit.Record(r.Context(), airlock.AuditEvent{
			Type: "cli.dpop_refused", Actor: sess.UserID, Outcome: airlock.OutcomeDenied, Reason: string(de.Reason),
			UserID: sess.UserID, SessionID: sess.ID, DeviceID: sess.DeviceID, RequestID: requestIDFrom(r.Context()), IP: clientIP(r),
			Details: map[string]any{"method": r.Method, "path": r.URL.Path, "scheme": scheme},
		})
	}
	return err
}

// refuseKeyBound is the key-binding check of a token that arrives without
// its request (in a JSON body, e.g. /v1/decide's "session" from an
// enforcement point): no DPoP proof can come with it, so a key-bound
// session is refused there.
func refuseKeyBound(sess *airlock.Session) error {
	if sess.KeyThumbprint != "" {
		return dpopFail(dpopWrongScheme, "this session is bound to a key (a CLI session) and cannot be passed on; its requests need a DPoP proof")
	}
	return nil
}

// authenticateToken finds the session of a bearer secret passed on by
// another party (a request body) and checks that its user, device and
// passkey are still valid. Key-bound sessions are refused.
func (s *Server) authenticateToken(ctx context.Context, token string) (*authn, error) {
	return s.authenticateWith(ctx, token, refuseKeyBound)
}

// authenticateWith finds the session of token, runs check on it before
// recording its activity, and checks that its user, device and passkey are
// still valid.
func (s *Server) authenticateWith(ctx context.Context, token string, check func(*airlock.Session) error) (*authn, error) {
	sess, prev, err := s.Sessions.AuthenticateChecked(ctx, token, check)
	if err != nil {
		return nil, err
	}
	a, err := s.sessionBasis(ctx, sess)
	if err != nil {
		return nil, err
	}
	a.PrevSeen = prev
	return a, nil
}

// sessionBasis checks that what a live session rests on is still good —
// its user enabled and not lowered in tier, its device not revoked, its
// passkey not revoked — ending the session (audited) when not.
func (s *Server) sessionBasis(ctx context.Context, sess *airlock.Session) (*authn, error) {
	user, err := s.Store.FindUserByID(ctx, sess.UserID)
	if err != nil {
		return nil, err
	}
	if user.Disabled {
		_ = s.endGrants(ctx, elevate.Target{SessionID: sess.ID}, airlock.EndUserDisabled, "system")
		_ = s.Sessions.End(ctx, sess, "user_disabled", "system")
		return nil, airlock.Errorf(airlock.EUNAUTHORIZED, "account disabled")
	}
	dev, err := s.Store.FindDeviceByID(ctx, sess.DeviceID)
	if err != nil {
		return nil, err
	}
	if dev.Trust == airlock.TrustRevoked {
		_ = s.endGrants(ctx, elevate.Target{SessionID: sess.ID}, airlock.EndDeviceUntrusted, "system")
		_ = s.Sessions.End(ctx, sess, "device_revoked", "system")
		return nil, airlock.Errorf(airlock.EUNAUTHORIZED, "this device's trust was revoked")
	}
	// Whatever raced with this session's creation, a revoked passkey or a
	// lowered account tier never keeps a session alive.
	cred, err := s.Store.FindCredentialByID(ctx, sess.CredentialID)
	if err != nil && airlock.ErrorCode(err) != airlock.ENOTFOUND {
		return nil, err
	}
	if cred == nil || cred.IsRevoked() {
		_ = s.endGrants(ctx, elevate.Target{SessionID: sess.ID}, airlock.EndCredentialRevoked, "system")
		_ = s.Sessions.End(ctx, sess, "credential_revoked", "system")
		return nil, airlock.Errorf(airlock.EUNAUTHORIZED, "the passkey of this session was revoked")
	}
	if user.Tier > sess.Tier {
		_ = s.Sessions.End(ctx, sess, "tier_changed", "system")
		return nil, airlock.Errorf(airlock.EUNAUTHORIZED, "your account's tier changed; sign in again")
	}
	return &authn{Session: sess, User: user, Device: dev, Credential: cred}, nil
}

func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, err := s.authenticate(r)
		if err != nil {
			var de *dpopError
			if errors.As(err, &de) {
				w.Header().Set("WWW-Authenticate", `DPoP error="invalid_dpop_proof", algs="EdDSA ES256"`)
			}
			s.writeError(w, r, err)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), keySession, a)))
	}
}

// checkAdmin applies the admin rule: role airlock-admin and a session of
// tier 0 or 1. How fresh the passkey verification must be is no longer a
// fixed rule here: every sensitive admin action is decided by the policy
// engine (s.sensitive), which asks for a step-up bound to the exact change
// when the policy wants one.
func (s *Server) checkAdmin(a *authn) error {
	if !slices.Contains(a.User.Roles, airlock.RoleAdmin) {
		return airlock.Errorf(airlock.EFORBIDDEN, "the admin API needs the %s role", airlock.RoleAdmin)
	}
	if a.Session.Tier > 1 {
		return airlock.Errorf(airlock.EFORBIDDEN, "the admin API needs a tier-0 or tier-1 session; this session is tier %d (sign in with a device-bound passkey)", a.Session.Tier)
	}
	return nil
}

// freshUV reports whether the session's last user-verified passkey use is
// within SelfServiceFreshUV.
func (s *Server) freshUV(a *authn) bool {
	return !a.Session.LastUVAt.IsZero() && s.Now().Sub(a.Session.LastUVAt) <= s.SelfServiceFreshUV
}

func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return s.authed(func(w http.ResponseWriter, r *http.Request) {
		a := sessionFrom(r.Context())
		if err := s.checkAdmin(a); err != nil {
			_ = s.Audit.Record(r.Context(), airlock.AuditEvent{
				Type: "admin.denied", Actor: a.User.ID, Outcome: airlock.OutcomeDenied, Reason: airlock.ErrorMessage(err),
				UserID: a.User.ID, SessionID: a.Session.ID, DeviceID: a.Device.ID, RequestID: requestIDFrom(r.Context()), IP: clientIP(r),
				Details: map[string]any{"method": r.Method, "path": r.URL.Path},
			})
			s.writeError(w, r, err)
			return
		}
		h(w, r)
	})
}

// --- ceremonies ---

type enrolBeginRequest struct {
	Token string `json:"token"`
}

type finishRequest struct {
	Ceremony   string          `json:"ceremony"`
	Credential json.RawMessage `json:"credential"`
	// Bearer asks login finish to return the session secret in the body for
	// an API client (the cookie is set as well).
	Bearer bool `json:"bearer,omitempty"`
}

func (s *Server) handleEnrolBegin(w http.ResponseWriter, r *http.Request) {
	var req enrolBeginRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	b, err := s.Passkeys.BeginEnrol(r.Context(), req.Token, s.meta(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) decodeFinish(r *http.Request) (finishRequest, error) {
	var req finishRequest
	if err := decode(r, &req); err != nil {
		return req, err
	}
	if req.Ceremony == "" || len(req.Credential) == 0 {
		return req, airlock.Errorf(airlock.EINVALID, "ceremony and credential are required")
	}
	return req, nil
}

func (s *Server) handleEnrolFinish(w http.ResponseWriter, r *http.Request) {
	req, err := s.decodeFinish(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.Passkeys.FinishEnrol(r.Context(), req.Ceremony, req.Credential, s.meta(r))
	s.logins.WithLabelValues("enrol", outcome(err)).Inc()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"user":       userView(res.User),
		"device":     s.deviceView(res.Device),
		"credential": credentialView(res.Credential),
	})
}

func outcome(err error) string {
	if err != nil {
		return "failure"
	}
	return "success"
}

func (s *Server) handleLoginBegin(w http.ResponseWriter, r *http.Request) {
	if err := decodeOptional(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	b, err := s.Passkeys.BeginLogin(r.Context(), s.meta(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// decodeOptional accepts an empty body or an empty JSON object.
func decodeOptional(r *http.Request) error {
	var v struct{}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil && !errors.Is(err, io.EOF) {
		return airlock.Errorf(airlock.EINVALID, "malformed JSON body: %s", jsonErrText(err))
	}
	return nil
}

func (s *Server) handleLoginFinish(w http.ResponseWriter, r *http.Request) {
	req, err := s.decodeFinish(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	m := s.meta(r)
	res, err := s.Passkeys.FinishLogin(r.Context(), req.Ceremony, req.Credential, m)
	s.logins.WithLabelValues("login", outcome(err)).Inc()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	token, sess, err := s.Sessions.Create(r.Context(), session.Start{
		User: res.User, Device: res.Device, Credential: res.Credential, Tier: res.Tier, UV: res.UV, AMR: res.AMR,
		IP: m.IP, UserAgent: m.UserAgent, RequestID: m.RequestID,
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The passkey was used from this network: it is known to the user from
	// now on (network novelty). A failure leaves it "new", the safe side.
	if err := s.seen(r.Context(), res.User.ID, m.IP); err != nil {
		s.Logger.Warn("recording the login network failed", "user", res.User.ID, "err", err)
	}
	// A login replaces the browser's earlier session rather than leaving it
	// live beside the new one.
	if old, err := s.authenticate(r); err == nil {
		_ = s.Sessions.End(r.Context(), old.Session, "replaced", old.User.ID)
	}
	s.setSessionCookie(w, token, sess)
	body := map[string]any{"session": s.sessionView(&authn{Session: sess, User: res.User, Device: res.Device})}
	if req.Bearer {
		body["token"] = token
	}
	writeJSON(w, http.StatusOK, body)
}

// handleLogout ends the caller's session. A browser (not key-bound)
// session's logout first ends the live CLI sessions of the same user on the
// same device: the terminals signed in from a browser there (sessions
// record no parent; user and device are what links a CLI session to its
// browser, as for step-up). A CLI session's logout ends only itself.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	a := sessionFrom(r.Context())
	if a.Session.KeyThumbprint == "" {
		if err := s.endCLISessions(r.Context(), a); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if err := s.Sessions.End(r.Context(), a.Session, "logout", a.User.ID); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.clearSessionCookie(w)
	writeJSON(w, http.StatusOK, map[string]any{"ended": a.Session.ID})
}

// endCLISessions ends, with reason "browser_logout", the live key-bound
// sessions of a's user on a's device (their grants end through the
// session end hook).
func (s *Server) endCLISessions(ctx context.Context, a *authn) error {
	live, err := s.Store.ListSessionsByUser(ctx, a.User.ID)
	if err != nil {
		return err
	}
	now := s.Now()
	for _, cli := range live {
		if cli.KeyThumbprint == "" || cli.DeviceID != a.Session.DeviceID || cli.ID == a.Session.ID || !cli.IsLive(now) {
			continue
		}
		if err := s.Sessions.End(ctx, cli, "browser_logout", a.User.ID); err != nil && airlock.ErrorCode(err) != airlock.ECONFLICT {
			return err
		}
	}
	return nil
}

// --- views ---

type sessionJSON struct {
	ID               string     `json:"id"`
	User             userJSON   `json:"user"`
	Device           deviceJSON `json:"device"`
	Tier             int        `json:"tier"`
	Credential       string     `json:"credential"`
	AuthTime         time.Time  `json:"auth_time"`
	LastUVAt         time.Time  `json:"last_uv_at"`
	AbsoluteDeadline time.Time  `json:"absolute_deadline"`
	IdleDeadline     time.Time  `json:"idle_deadline"`
	AMR              []string   `json:"amr"`
	ACR              string     `json:"acr"`
}

func (s *Server) sessionView(a *authn) sessionJSON {
	return sessionJSON{
		ID: a.Session.ID, User: userView(a.User), Device: s.deviceView(a.Device), Tier: int(a.Session.Tier),
		Credential: b64(a.Session.CredentialID), AuthTime: a.Session.AuthTime, LastUVAt: a.Session.LastUVAt,
		AbsoluteDeadline: a.Session.AbsoluteDeadline, IdleDeadline: a.Session.IdleDeadline(),
		AMR: a.Session.AMR, ACR: a.Session.ACR,
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

type userJSON struct {
	ID          string                `json:"id"`
	Name        string                `json:"name"`
	DisplayName string                `json:"display_name"`
	Kind        airlock.UserKind      `json:"kind"`
	Tier        int                   `json:"tier"`
	Roles       []string              `json:"roles"`
	Disabled    bool                  `json:"disabled"`
	Window      *airlock.AccessWindow `json:"window,omitempty"`
	CreatedAt   time.Time             `json:"created_at"`
	UpdatedAt   time.Time             `json:"updated_at"`
}

func userView(u *airlock.User) userJSON {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return userJSON{ID: u.ID, Name: u.Name, DisplayName: u.DisplayName, Kind: u.Kind, Tier: int(u.Tier), Roles: roles,
		Disabled: u.Disabled, Window: u.Window, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

type deviceJSON struct {
	ID         string             `json:"id"`
	Name       string             `json:"name"`
	Owner      string             `json:"owner"`
	Kind       airlock.DeviceKind `json:"kind"`
	Trust      airlock.TrustState `json:"trust"`
	Posture    airlock.Posture    `json:"posture"`
	Compliant  bool               `json:"compliant"`
	Reasons    []string           `json:"noncompliance"`
	PostureAge int64              `json:"posture_age_s"`
	CreatedAt  time.Time          `json:"created_at"`
	UpdatedAt  time.Time          `json:"updated_at"`
}

func (s *Server) deviceView(d *airlock.Device) deviceJSON {
	c := device.Evaluate(d, s.DeviceRules, s.Now())
	return deviceJSON{ID: d.ID, Name: d.Name, Owner: d.Owner, Kind: d.Kind, Trust: d.Trust, Posture: d.Posture,
		Compliant: c.Compliant, Reasons: c.Reasons, PostureAge: int64(c.PostureAge / time.Second),
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
}

type credentialJSON struct {
	ID                string `json:"id"`
	UserID            string `json:"user_id"`
	DeviceID          string `json:"device_id"`
	AAGUID            string `json:"aaguid"`
	AttestationFormat string `json:"attestation_format"`
	AttestationType   string `json:"attestation_type"`
	// AttestationTrusted reports whether the attestation chained to a
	// configured root.
	AttestationTrusted bool      `json:"attestation_trusted"`
	BackupEligible     bool      `json:"backup_eligible"`
	BackupState        bool      `json:"backup_state"`
	SignCount          uint32    `json:"sign_count"`
	TierCap            int       `json:"tier_cap"`
	CreatedAt          time.Time `json:"created_at"`
	LastUsedAt         time.Time `json:"last_used_at"`
	Revoked            bool      `json:"revoked"`
}

func credentialView(c *airlock.Credential) credentialJSON {
	return credentialJSON{ID: b64(c.ID), UserID: c.UserID, DeviceID: c.DeviceID, AAGUID: c.AAGUID,
		AttestationFormat: c.AttestationFormat, AttestationType: c.AttestationType, AttestationTrusted: c.AttestationTrusted, BackupEligible: c.BackupEligible,
		BackupState: c.BackupState, SignCount: c.SignCount, TierCap: int(c.TierCap), CreatedAt: c.CreatedAt,
		LastUsedAt: c.LastUsedAt, Revoked: c.IsRevoked()}
}

func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.sessionView(sessionFrom(r.Context())))
}

type myTokenRequest struct {
	Device string `json:"device"`
}

// handleMyEnrolmentToken lets a person add a passkey to their own account:
// only from a session at the account's own tier (its highest assurance,
// NIST SP 800-63B-4) with a fresh passkey verification, for one of their own
// (or a shared) devices. The user is notified when the passkey is added.
func (s *Server) handleMyEnrolmentToken(w http.ResponseWriter, r *http.Request) {
	a := sessionFrom(r.Context())
	var req myTokenRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if a.Session.Tier != a.User.Tier {
		s.writeError(w, r, airlock.Errorf(airlock.EFORBIDDEN, "adding a passkey needs a session at your account's tier (%d); this one is tier %d", a.User.Tier, a.Session.Tier))
		return
	}
	if !s.freshUV(a) {
		s.writeError(w, r, airlock.Errorf(airlock.EFRESHAUTH, "adding a passkey needs a passkey verification within %s: sign in again", s.SelfServiceFreshUV))
		return
	}
	s.issueLink(w, r, a, a.User, req.Device)
}

func (s *Server) handleMyCredentials(w http.ResponseWriter, r *http.Request) {
	a := sessionFrom(r.Context())
	creds, err := s.Store.ListCredentialsByUser(r.Context(), a.User.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]credentialJSON, 0, len(creds))
	for _, c := range creds {
		out = append(out, credentialView(c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"credentials": out})
}

func withAuth(r *http.Request, a *authn) context.Context {
	return context.WithValue(r.Context(), keySession, a)
}
