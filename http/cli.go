package http

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"airlock"
	"airlock/passkey"
	"airlock/session"
)

// The CLI's loopback login (`airlock login`, RFC 8252 style): the CLI
// makes a key pair, listens on 127.0.0.1 and opens /cli/login; the person
// signs in there with a passkey (a fresh login) and confirms; the page
// gets a one-time code and hands it to the CLI's loopback listener; the
// CLI trades the code, with a DPoP proof by its key, for a token bound to
// that key (POST /v1/cli/token).

// Limits of the loopback login.
const (
	// cliCodeTTL is how long a one-time login code lives.
	cliCodeTTL = 2 * time.Minute
	// cliFreshUV is how recent the authorising session's user-verified
	// passkey use must be: the person signed in on the page just now.
	cliFreshUV = 2 * time.Minute
	// defaultCLITokenTTL is a CLI session's lifetime when CLITokenTTL is 0.
	defaultCLITokenTTL = time.Hour
	// cliMaxState bounds the CLI's opaque state.
	cliMaxState = 128
	// cliCodeKind is the CeremonyStore kind of a login code.
	cliCodeKind = "cli_code"
)

var cliPages = map[string]*template.Template{
	"cli_login": template.Must(template.New("cli_login").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/cli_login.html")),
}

func (s *Server) routesCLI(handle func(pattern string, h http.HandlerFunc)) {
	handle("GET /cli/login", s.pageCLILogin)
	handle("POST /v1/cli/authorize", s.rateLimited("cli-authorize", s.authed(s.handleCLIAuthorize)))
	handle("POST /v1/cli/token", s.rateLimited("cli-token", s.handleCLIToken))
}

// cliTarget is where a login code goes: the CLI's loopback listener.
type cliTarget struct {
	// Host is "127.0.0.1" or "::1": only loopback IP literals ("localhost"
	// could resolve elsewhere, RFC 8252 §8.3).
	Host string `json:"host,omitempty"`
	Port int    `json:"port"`
	// State is the CLI's opaque value, echoed back so that it can tell its
	// own login from one someone else started.
	State string `json:"state"`
	// JKT is the RFC 7638 thumbprint of the CLI's public key.
	JKT string `json:"jkt"`
}

// check validates the target: a loopback IP literal, a port 1024–65535,
// a state of 1–128 URL-safe characters, a thumbprint of SHA-256's size.
func (t *cliTarget) check() error {
	if t.Host == "" {
		t.Host = "127.0.0.1"
	}
	if t.Host != "127.0.0.1" && t.Host != "::1" {
		return airlock.Errorf(airlock.EINVALID, "the CLI must listen on 127.0.0.1 or [::1], not %q", clip(t.Host, 64))
	}
	if t.Port < 1024 || t.Port > 65535 {
		return airlock.Errorf(airlock.EINVALID, "port must be 1024-65535")
	}
	if len(t.State) == 0 || len(t.State) > cliMaxState || !urlSafe(t.State) {
		return airlock.Errorf(airlock.EINVALID, "state must be 1-%d characters from A-Z a-z 0-9 - . _ ~", cliMaxState)
	}
	if b, err := base64.RawURLEncoding.DecodeString(t.JKT); err != nil || len(b) != sha256.Size {
		return airlock.Errorf(airlock.EINVALID, "jkt must be a base64url SHA-256 JWK thumbprint")
	}
	return nil
}

func urlSafe(v string) bool {
	for _, c := range []byte(v) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// callback is the loopback URL the page sends the browser to.
func (t *cliTarget) callback(q url.Values) string {
	q.Set("state", t.State)
	u := url.URL{Scheme: "http", Host: net.JoinHostPort(t.Host, strconv.Itoa(t.Port)), Path: "/callback", RawQuery: q.Encode()}
	return u.String()
}

// cliLoginData is what the CLI login page shows.
type cliLoginData struct {
	Target cliTarget
	// Cancel is the callback URL that tells the CLI the person refused.
	Cancel string
	// TTL is how long the CLI's token will live at most, in minutes.
	TTL int
}

// pageCLILogin is GET /cli/login?port=P&state=S&jkt=T[&host=::1]: the page
// where the person signs in with a passkey (always a fresh login, whatever
// cookie the browser holds) and confirms that the Airlock CLI on this
// computer, with the key shown, may act as them.
func (s *Server) pageCLILogin(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	t := cliTarget{Host: q.Get("host"), State: q.Get("state"), JKT: q.Get("jkt")}
	t.Port, _ = strconv.Atoi(q.Get("port"))
	p := page{Title: "Sign in the Airlock CLI"}
	if err := t.check(); err != nil {
		p.Error = "This link is not a valid CLI login link (" + airlock.ErrorMessage(err) + "). Run airlock login again."
		s.renderCLI(w, http.StatusBadRequest, p)
		return
	}
	p.Data = cliLoginData{Target: t, Cancel: t.callback(url.Values{"error": {"access_denied"}}), TTL: int(s.cliTTL() / time.Minute)}
	s.renderCLI(w, http.StatusOK, p)
}

func (s *Server) renderCLI(w http.ResponseWriter, status int, p page) {
	var buf bytes.Buffer
	if err := cliPages["cli_login"].ExecuteTemplate(&buf, "cli_login.html", p); err != nil {
		s.Logger.Error("template", "page", "cli_login", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) cliTTL() time.Duration {
	if s.CLITokenTTL > 0 {
		return s.CLITokenTTL
	}
	return defaultCLITokenTTL
}

// cliCode is the stored side of a login code (only its hash is the key).
type cliCode struct {
	JKT     string `json:"jkt"`
	Session string `json:"session"`
}

func cliCodeID(code string) string {
	h := sha256.Sum256([]byte(code))
	return "cli_" + hex.EncodeToString(h[:])
}

// handleCLIAuthorize is POST /v1/cli/authorize {host?, port, state, jkt}:
// from a browser session whose passkey login is at most 2 minutes old, a
// one-time code (2 minutes, single use, stored as its hash) for the key
// jkt, and the loopback URL to hand it to.
func (s *Server) handleCLIAuthorize(w http.ResponseWriter, r *http.Request) {
	a := sessionFrom(r.Context())
	var t cliTarget
	err := decode(r, &t)
	if err == nil {
		err = t.check()
	}
	now := s.Now()
	if err == nil && a.Session.KeyThumbprint != "" {
		err = airlock.Errorf(airlock.EFORBIDDEN, "a CLI session cannot authorise another CLI; sign in in the browser")
	}
	if err == nil && (a.Session.LastUVAt.IsZero() || now.Sub(a.Session.LastUVAt) > cliFreshUV) {
		err = airlock.Errorf(airlock.EFRESHAUTH, "authorising the CLI needs a passkey sign-in within the last %s: sign in on this page again", cliFreshUV)
	}
	var code string
	if err == nil {
		code, err = s.storeCLICode(r.Context(), a, t.JKT, now)
	}
	ev := airlock.AuditEvent{
		Type: "cli.authorized", Actor: a.User.ID, Subject: a.Session.ID, Outcome: airlock.OutcomeSuccess,
		UserID: a.User.ID, SessionID: a.Session.ID, DeviceID: a.Device.ID, CredentialID: b64(a.Session.CredentialID),
		RequestID: requestIDFrom(r.Context()), IP: clientIP(r),
		Details: map[string]any{"jkt": t.JKT, "host": t.Host, "port": t.Port},
	}
	if err != nil {
		ev.Outcome, ev.Reason = airlock.OutcomeDenied, airlock.ErrorMessage(err)
		if airlock.ErrorCode(err) == airlock.EINTERNAL || airlock.ErrorCode(err) == airlock.EUNAVAILABLE {
			ev.Outcome = airlock.OutcomeFailure
		}
	}
	if aerr := s.Audit.Record(r.Context(), ev); aerr != nil && err == nil {
		err = aerr
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"redirect":   t.callback(url.Values{"code": {code}}),
		"expires_at": now.Add(cliCodeTTL).UTC(),
	})
}

func (s *Server) storeCLICode(ctx context.Context, a *authn, jkt string, now time.Time) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", airlock.Wrap(airlock.EINTERNAL, "random source failed", err)
	}
	code := base64.RawURLEncoding.EncodeToString(b)
	data, _ := json.Marshal(cliCode{JKT: jkt, Session: a.Session.ID})
	err := s.Store.CreateCeremony(ctx, &airlock.Ceremony{
		ID: cliCodeID(code), Kind: cliCodeKind, UserID: a.User.ID, Ref: a.Session.ID, Data: data,
		CreatedAt: now, ExpiresAt: now.Add(cliCodeTTL),
	})
	return code, err
}

type cliTokenRequest struct {
	Code string `json:"code"`
}

// handleCLIToken is POST /v1/cli/token {code} with a DPoP proof: the code
// is consumed (single use, even when what follows fails), the proof must
// be signed by the key the code was issued for, and the browser session
// that authorised it must still be good. The answer is a NEW session for
// the same user, device, passkey, tier and AMR, bound to the key, living
// at most CLITokenTTL and never past the browser session's deadline.
func (s *Server) handleCLIToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ev := airlock.AuditEvent{Type: "cli.login", Outcome: airlock.OutcomeSuccess, RequestID: requestIDFrom(ctx), IP: clientIP(r)}
	res, sess, err := s.cliToken(r, &ev)
	if err != nil {
		ev.Outcome, ev.Reason = airlock.OutcomeDenied, airlock.ErrorMessage(err)
		var de *dpopError
		if errors.As(err, &de) {
			ev.Reason = "dpop: " + string(de.Reason)
		}
		if c := airlock.ErrorCode(err); c == airlock.EINTERNAL || c == airlock.EUNAVAILABLE {
			ev.Outcome = airlock.OutcomeFailure
		}
	}
	if aerr := s.Audit.Record(ctx, ev); aerr != nil && err == nil {
		// An unaudited CLI session must not be usable.
		if sess != nil {
			_ = s.Sessions.End(ctx, sess, "audit_failed", "system")
		}
		err = aerr
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) cliToken(r *http.Request, ev *airlock.AuditEvent) (map[string]any, *airlock.Session, error) {
	ctx := r.Context()
	var req cliTokenRequest
	if err := decode(r, &req); err != nil {
		return nil, nil, err
	}
	if req.Code == "" || len(req.Code) > 100 {
		return nil, nil, airlock.Errorf(airlock.EINVALID, "code is required")
	}
	c, err := s.Store.ConsumeCeremony(ctx, cliCodeID(req.Code))
	if airlock.ErrorCode(err) == airlock.ENOTFOUND || (err == nil && c.Kind != cliCodeKind) {
		return nil, nil, airlock.Errorf(airlock.EUNAUTHORIZED, "unknown or already used login code: run airlock login again")
	} else if err != nil {
		return nil, nil, err
	}
	ev.UserID, ev.Actor = c.UserID, c.UserID
	var cc cliCode
	if err := json.Unmarshal(c.Data, &cc); err != nil {
		return nil, nil, airlock.Wrap(airlock.EINTERNAL, "stored login code unreadable", err)
	}
	ev.Details = map[string]any{"jkt": cc.JKT, "browser_session": cc.Session}
	now := s.Now()
	if !now.Before(c.ExpiresAt) {
		return nil, nil, airlock.Errorf(airlock.EEXPIRED, "the login code expired: run airlock login again")
	}
	if err := s.verifyDPoP(ctx, r, "", cc.JKT); err != nil {
		return nil, nil, err
	}
	browser, err := s.Store.FindSessionByID(ctx, cc.Session)
	if err != nil {
		return nil, nil, err
	}
	ev.DeviceID, ev.CredentialID = browser.DeviceID, b64(browser.CredentialID)
	if !browser.IsLive(now) || browser.KeyThumbprint != "" || browser.UserID != c.UserID {
		return nil, nil, airlock.Errorf(airlock.EUNAUTHORIZED, "the browser session that authorised this login has ended: run airlock login again")
	}
	a, err := s.sessionBasis(ctx, browser)
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(s.cliTTL())
	if browser.AbsoluteDeadline.Before(notAfter) {
		notAfter = browser.AbsoluteDeadline
	}
	m := s.meta(r)
	token, sess, err := s.Sessions.Create(ctx, session.Start{
		User: a.User, Device: a.Device, Credential: a.Credential, Tier: browser.Tier, AMR: browser.AMR,
		LastUVAt: browser.LastUVAt, NotAfter: notAfter, KeyThumbprint: cc.JKT,
		IP: m.IP, UserAgent: m.UserAgent, RequestID: m.RequestID,
	})
	if err != nil {
		return nil, nil, err
	}
	ev.Subject, ev.SessionID = sess.ID, sess.ID
	ev.Details["expires_at"] = sess.AbsoluteDeadline
	return map[string]any{
		"token":      token,
		"session":    s.sessionView(&authn{Session: sess, User: a.User, Device: a.Device}),
		"expires_at": sess.AbsoluteDeadline,
		"user":       userView(a.User),
	}, sess, nil
}

// stepUpSession is the session on whose behalf the caller's session a runs
// the step-up ceremony of transaction txID: a's own, or — when the
// transaction belongs to a live key-bound CLI session of the same user on
// the same device — that CLI session. A terminal cannot show a passkey
// prompt: the person confirms the CLI's request in their browser (the page
// shows exactly what) and gives the single-use proof to the CLI, whose
// session alone can redeem it. Anything else stays a's own session, and
// the ceremony refuses a transaction of another session as before.
func (s *Server) stepUpSession(ctx context.Context, a *authn, txID string) string {
	if txID == "" || a.Session.KeyThumbprint != "" {
		return a.Session.ID
	}
	t, err := s.Store.FindStepUpByID(ctx, txID)
	if err != nil || !s.confirmsForCLI(ctx, a, t) {
		return a.Session.ID
	}
	return t.SessionID
}

// confirmsForCLI reports whether the browser session a may confirm the
// step-up t on behalf of t's session: a live key-bound CLI session of the
// same user on the same device (see stepUpSession).
func (s *Server) confirmsForCLI(ctx context.Context, a *authn, t *airlock.StepUp) bool {
	if a.Session.KeyThumbprint != "" || t.SessionID == a.Session.ID {
		return false
	}
	cli, err := s.Store.FindSessionByID(ctx, t.SessionID)
	return err == nil && cli.KeyThumbprint != "" && cli.IsLive(s.Now()) && cli.UserID == a.User.ID && cli.DeviceID == a.Session.DeviceID
}

// stepUpAs is the session the ceremony of txID runs for (stepUpSession)
// and the request's meta, naming a's session as ViaSession when that is
// another session.
func (s *Server) stepUpAs(r *http.Request, a *authn, txID string) (string, passkey.Meta) {
	m := s.meta(r)
	sid := s.stepUpSession(r.Context(), a, txID)
	if sid != a.Session.ID {
		m.ViaSession = a.Session.ID
	}
	return sid, m
}
