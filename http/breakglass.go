package http

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"airlock"
	"airlock/breakglass"
	"airlock/pep"
	"airlock/sshca"
)

// routesBreakGlass registers the break-glass path (issue 6, docs/api.md
// "Break-glass"):
//
//   - POST /v1/breakglass/begin and /finish: no session; they work with the
//     store down, so no store-backed middleware guards them (the per-address
//     limit falls back to this process's memory when the store is
//     unavailable).
//   - GET /v1/breakglass/session, POST /v1/breakglass/end and
//     /v1/breakglass/ssh-certificate: the break-glass token ("bg." prefix)
//     as a Bearer token, never a cookie and never a normal session.
//   - the reviewer's API (a normal signed-in session; the service checks
//     the reviewer role and the tier-0 session).
//   - the pages /breakglass and /admin/breakglass.
//
// POST /v1/decide accepts a break-glass token as "session" (decide.go).
func (s *Server) routesBreakGlass(handle func(pattern string, h http.HandlerFunc)) {
	lim := &memLimiter{}
	handle("POST /v1/breakglass/begin", s.withBreakGlass(s.bgLimited(lim, "breakglass", s.handleBreakGlassBegin)))
	handle("POST /v1/breakglass/finish", s.withBreakGlass(s.handleBreakGlassFinish))
	handle("GET /v1/breakglass/session", s.withBreakGlass(s.bgAuthed(s.handleBreakGlassSession)))
	handle("POST /v1/breakglass/end", s.withBreakGlass(s.bgAuthed(s.handleBreakGlassEnd)))
	handle("POST /v1/breakglass/ssh-certificate", s.withBreakGlass(s.bgAuthed(s.bgLimited(lim, "breakglass-ssh", s.handleBreakGlassSSH))))

	handle("GET /v1/admin/breakglass/events", s.authed(s.withBreakGlass(s.handleBreakGlassEvents)))
	handle("POST /v1/admin/breakglass/events/{id}/end", s.authed(s.withBreakGlass(s.handleBreakGlassEndEvent)))
	handle("POST /v1/breakglass/review/begin", s.rateLimited("breakglass-review", s.authed(s.withBreakGlass(s.handleBreakGlassReviewBegin))))
	handle("POST /v1/breakglass/review/finish", s.authed(s.withBreakGlass(s.handleBreakGlassReviewFinish)))

	handle("GET /breakglass", s.pageBreakGlass)
	handle("GET /admin/breakglass", s.pageAdminBreakGlass)
}

func init() {
	for _, name := range []string{"breakglass", "breakglass_admin"} {
		pages[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
}

// withBreakGlass answers 503 when break-glass is not configured.
func (s *Server) withBreakGlass(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.BreakGlass == nil {
			s.writeError(w, r, airlock.Errorf(airlock.EUNAVAILABLE, "break-glass is not configured on this server"))
			return
		}
		h(w, r)
	}
}

// memLimiter counts hits per key in fixed one-minute windows, in this
// process's memory: the break-glass routes' fallback when the store (which
// holds the shared counters) is unavailable.
type memLimiter struct {
	mu     sync.Mutex
	start  time.Time
	counts map[string]int
}

// hit counts one hit on key at now and returns the count in the window.
func (l *memLimiter) hit(key string, now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil || now.Sub(l.start) >= time.Minute || now.Before(l.start) {
		l.start, l.counts = now, map[string]int{}
	}
	l.counts[key]++
	return l.counts[key]
}

// bgLimited is s.rateLimited for the break-glass routes: the per-address
// counter is the store's, but when the store is unavailable it is this
// process's memory instead of a refusal (break-glass must work with the
// store down). Any other store failure refuses (fail closed).
func (s *Server) bgLimited(lim *memLimiter, kind string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := "begin:" + kind + ":" + rateKey(clientIP(r))
		now := s.Now()
		n, err := s.Store.HitRateLimit(r.Context(), key, time.Minute, now)
		if err != nil {
			if airlock.ErrorCode(err) != airlock.EUNAVAILABLE {
				s.writeError(w, r, err)
				return
			}
			n = lim.hit(key, now)
		}
		if n > s.BeginPerMinute {
			w.Header().Set("Retry-After", "60")
			s.writeError(w, r, airlock.Errorf(airlock.ERATELIMIT, "too many attempts from your address; wait a minute and try again"))
			return
		}
		h(w, r)
	}
}

type keyBGSession struct{}

// bgAuthed authenticates a break-glass session: only a break-glass token
// as "Authorization: Bearer bg.…". A normal session (bearer, DPoP or
// cookie) is refused here, as a break-glass token is refused everywhere a
// normal session is expected.
func (s *Server) bgAuthed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := pep.BearerToken(r)
		if !breakglass.IsToken(token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="airlock-breakglass"`)
			s.writeError(w, r, airlock.Errorf(airlock.EUNAUTHORIZED, "this route needs a break-glass session token (Authorization: Bearer bg.…); normal sessions are not accepted"))
			return
		}
		sess, err := s.BreakGlass.Authenticate(r.Context(), token)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="airlock-breakglass", error="invalid_token"`)
			s.writeError(w, r, err)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), keyBGSession{}, sess)))
	}
}

func bgSessionFrom(ctx context.Context) *breakglass.Session {
	sess, _ := ctx.Value(keyBGSession{}).(*breakglass.Session)
	return sess
}

// --- wire forms ---

// breakGlassEventJSON is the wire form of a break-glass use.
type breakGlassEventJSON struct {
	ID             string     `json:"id"`
	AccountID      string     `json:"account_id"`
	Account        string     `json:"account,omitempty"`
	CredentialID   string     `json:"credential_id"`
	Justification  string     `json:"justification"`
	Scopes         []string   `json:"scopes"`
	IP             string     `json:"ip,omitempty"`
	UserAgent      string     `json:"user_agent,omitempty"`
	StartedAt      time.Time  `json:"started_at"`
	EndsAt         time.Time  `json:"ends_at"`
	EndedAt        *time.Time `json:"ended_at,omitempty"`
	EndReason      string     `json:"end_reason,omitempty"`
	Live           bool       `json:"live"`
	AlertIDs       []string   `json:"alert_ids"`
	AlertDelivered bool       `json:"alert_delivered"`
	Offline        bool       `json:"offline,omitempty"`
	ReviewedAt     *time.Time `json:"reviewed_at,omitempty"`
	ReviewedBy     string     `json:"reviewed_by,omitempty"`
	ReviewNotes    string     `json:"review_notes,omitempty"`
}

func (s *Server) breakGlassEventView(ev *airlock.BreakGlassEvent, account string) breakGlassEventJSON {
	scopes, alerts := ev.Scopes, ev.AlertIDs
	if scopes == nil {
		scopes = []string{}
	}
	if alerts == nil {
		alerts = []string{}
	}
	return breakGlassEventJSON{ID: ev.ID, AccountID: ev.AccountID, Account: account, CredentialID: b64(ev.CredentialID),
		Justification: ev.Justification, Scopes: scopes, IP: ev.IP, UserAgent: ev.UserAgent, StartedAt: ev.StartedAt,
		EndsAt: ev.EndsAt, EndedAt: optTime(ev.EndedAt), EndReason: ev.EndReason,
		Live: ev.EndedAt.IsZero() && s.Now().Before(ev.EndsAt), AlertIDs: alerts, AlertDelivered: ev.AlertDelivered,
		Offline: ev.Offline, ReviewedAt: optTime(ev.ReviewedAt), ReviewedBy: ev.ReviewedBy, ReviewNotes: ev.ReviewNotes}
}

// --- the break-glass use ---

type breakGlassBeginRequest struct {
	Account       string `json:"account"`
	Justification string `json:"justification"`
}

// maxAccountLen bounds an account name in a request.
const maxAccountLen = 256

// handleBreakGlassBegin is POST /v1/breakglass/begin {account,
// justification}: the service refuses a normal account, a locked one and
// a missing or oversized justification (each audited).
func (s *Server) handleBreakGlassBegin(w http.ResponseWriter, r *http.Request) {
	var req breakGlassBeginRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if strings.TrimSpace(req.Account) == "" || len(req.Account) > maxAccountLen {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "account is required (at most %d bytes)", maxAccountLen))
		return
	}
	b, err := s.BreakGlass.Begin(r.Context(), req.Account, req.Justification, s.meta(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// breakGlassStartedJSON answers the finish: the token is shown once.
type breakGlassStartedJSON struct {
	Token     string              `json:"token"`
	Event     breakGlassEventJSON `json:"event"`
	ExpiresAt time.Time           `json:"expires_at"`
}

// handleBreakGlassFinish is POST /v1/breakglass/finish {ceremony,
// credential} → {token, event, expires_at}. The service answers only after
// the alert was delivered or durably queued and the use recorded.
func (s *Server) handleBreakGlassFinish(w http.ResponseWriter, r *http.Request) {
	req, err := s.decodeFinish(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Bearer {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "malformed JSON body: unknown field \"bearer\""))
		return
	}
	token, sess, err := s.BreakGlass.Finish(r.Context(), req.Ceremony, req.Credential, s.meta(r))
	s.logins.WithLabelValues("breakglass", outcome(err)).Inc()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, breakGlassStartedJSON{Token: token, Event: s.breakGlassEventView(sess.Event, sess.Account.Name),
		ExpiresAt: sess.Event.EndsAt})
}

// handleBreakGlassSession is GET /v1/breakglass/session: the live session
// of the break-glass token.
func (s *Server) handleBreakGlassSession(w http.ResponseWriter, r *http.Request) {
	sess := bgSessionFrom(r.Context())
	left := sess.Event.EndsAt.Sub(s.Now())
	if left < 0 {
		left = 0
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"event":        s.breakGlassEventView(sess.Event, sess.Account.Name),
		"account":      map[string]any{"id": sess.Account.ID, "name": sess.Account.Name, "kind": sess.Account.Kind},
		"expires_at":   sess.Event.EndsAt,
		"expires_in_s": int64(left / time.Second),
	})
}

type endRequest struct {
	Reason string `json:"reason"`
}

// decodeEnd reads an optional {reason} body.
func decodeEnd(r *http.Request) (string, error) {
	var req endRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", err
		}
		return "", airlock.Errorf(airlock.EINVALID, "malformed JSON body: %s", jsonErrText(err))
	}
	if dec.More() {
		return "", airlock.Errorf(airlock.EINVALID, "malformed JSON body: trailing data")
	}
	return req.Reason, nil
}

// handleBreakGlassEnd is POST /v1/breakglass/end [{reason}]: the holder
// ends the session early.
func (s *Server) handleBreakGlassEnd(w http.ResponseWriter, r *http.Request) {
	reason, err := decodeEnd(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if reason == "" {
		reason = "ended by the user"
	}
	sess := bgSessionFrom(r.Context())
	if err := s.BreakGlass.End(r.Context(), sess, reason, s.meta(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ended": sess.Event.ID})
}

type breakGlassSSHRequest struct {
	// PublicKey is the key to certify, as an authorized_keys line.
	PublicKey string `json:"public_key"`
	// Principal is one of the policy's role scopes ("role@resource").
	Principal string `json:"principal"`
}

// handleBreakGlassSSH is POST /v1/breakglass/ssh-certificate {public_key,
// principal}: a certificate with source-address and no forwarding, valid
// at most until the session ends.
func (s *Server) handleBreakGlassSSH(w http.ResponseWriter, r *http.Request) {
	var req breakGlassSSHRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Principal == "" || len(req.Principal) > 300 {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "principal is required: one of the break-glass policy's role scopes (role@resource)"))
		return
	}
	pub, err := sshca.ParsePublicKey(req.PublicKey)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cert, err := s.BreakGlass.IssueSSHCertificate(r.Context(), bgSessionFrom(r.Context()), pub, req.Principal, clientIP(r), s.meta(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	exts := make([]string, 0, len(cert.Extensions))
	for k := range cert.Extensions {
		exts = append(exts, k)
	}
	out := map[string]any{
		"certificate":  strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert))),
		"serial":       cert.Serial,
		"key_id":       cert.KeyId,
		"principals":   cert.ValidPrincipals,
		"valid_after":  time.Unix(int64(cert.ValidAfter), 0).UTC(),
		"valid_before": time.Unix(int64(cert.ValidBefore), 0).UTC(),
		"extensions":   exts,
	}
	if sa, ok := cert.CriticalOptions["source-address"]; ok {
		out["source_address"] = sa
	}
	writeJSON(w, http.StatusOK, out)
}

// --- the reviewer's API ---

// handleBreakGlassEvents is GET /v1/admin/breakglass/events[?unreviewed=1]:
// for a reviewer (the service checks role and tier).
func (s *Server) handleBreakGlassEvents(w http.ResponseWriter, r *http.Request) {
	var unreviewed bool
	switch r.URL.Query().Get("unreviewed") {
	case "", "0", "false":
	case "1", "true":
		unreviewed = true
	default:
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "unreviewed must be 1 or 0"))
		return
	}
	evs, err := s.BreakGlass.List(r.Context(), subject(sessionFrom(r.Context())), unreviewed)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	names := map[string]string{}
	out := make([]breakGlassEventJSON, 0, len(evs))
	for _, ev := range evs {
		out = append(out, s.breakGlassEventView(ev, s.accountName(r.Context(), ev.AccountID, names)))
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out})
}

// accountName is the login name of user id (cached), or "" if unknown.
func (s *Server) accountName(ctx context.Context, id string, cache map[string]string) string {
	if n, ok := cache[id]; ok {
		return n
	}
	n := ""
	if u, err := s.Store.FindUserByID(ctx, id); err == nil {
		n = u.Name
	}
	cache[id] = n
	return n
}

// handleBreakGlassEndEvent is POST /v1/admin/breakglass/events/{id}/end
// [{reason}]: a reviewer ends a use (e.g. before reviewing it).
func (s *Server) handleBreakGlassEndEvent(w http.ResponseWriter, r *http.Request) {
	reason, err := decodeEnd(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if reason == "" {
		reason = "ended by a reviewer"
	}
	id := r.PathValue("id")
	if err := s.BreakGlass.EndEvent(r.Context(), id, subject(sessionFrom(r.Context())), reason, s.meta(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ended": id})
}

type reviewBeginRequest struct {
	Event string `json:"event"`
	Notes string `json:"notes"`
}

// handleBreakGlassReviewBegin is POST /v1/breakglass/review/begin {event,
// notes}: the reviewer's passkey ceremony over the use and the notes.
func (s *Server) handleBreakGlassReviewBegin(w http.ResponseWriter, r *http.Request) {
	var req reviewBeginRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Event == "" || len(req.Event) > 64 {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "event is required"))
		return
	}
	b, err := s.BreakGlass.BeginReview(r.Context(), req.Event, subject(sessionFrom(r.Context())), req.Notes, s.meta(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

type reviewFinishRequest struct {
	Ceremony   string          `json:"ceremony"`
	Credential json.RawMessage `json:"credential"`
	Notes      string          `json:"notes"`
}

// handleBreakGlassReviewFinish is POST /v1/breakglass/review/finish
// {ceremony, credential, notes} → {event}: the same notes as at begin.
func (s *Server) handleBreakGlassReviewFinish(w http.ResponseWriter, r *http.Request) {
	var req reviewFinishRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Ceremony == "" || len(req.Credential) == 0 {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "ceremony and credential are required"))
		return
	}
	ev, err := s.BreakGlass.FinishReview(r.Context(), req.Ceremony, req.Credential, subject(sessionFrom(r.Context())), req.Notes, s.meta(r))
	s.logins.WithLabelValues("breakglass_review", outcome(err)).Inc()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"event": s.breakGlassEventView(ev, s.accountName(r.Context(), ev.AccountID, map[string]string{}))})
}

// --- pages ---

// breakGlassPageData is what /breakglass shows before a use.
type breakGlassPageData struct {
	Scopes   []string
	Duration string
	Origin   string
	MaxLen   int
}

// pageBreakGlass is GET /breakglass: the account, the written
// justification and the sealed passkey; the token, its scopes, its end and
// how to use it are shown once by the page's script. It needs no session
// and no store.
func (s *Server) pageBreakGlass(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Break-glass access"}
	if s.BreakGlass == nil {
		p.Error = "Break-glass is not configured on this server."
		s.render(w, r, http.StatusServiceUnavailable, "breakglass", p)
		return
	}
	var d breakGlassPageData
	for _, sc := range s.BreakGlass.Scopes() {
		d.Scopes = append(d.Scopes, sc.String())
	}
	d.Duration = "at most " + strconv.Itoa(int(breakglass.MaxDuration/time.Minute)) + " minutes, never extended"
	if len(s.Origins) > 0 {
		d.Origin = s.Origins[0]
	}
	d.MaxLen = breakglass.MaxJustificationLen
	p.Data = d
	s.render(w, r, http.StatusOK, "breakglass", p)
}

// breakGlassRow is one use on /admin/breakglass; every typed string went
// through shown.
type breakGlassRow struct {
	ID, Account, Justification, IP, Scopes string
	StartedAt, EndsAt, EndedAt, ReviewedAt time.Time
	EndReason, ReviewedBy, ReviewNotes     string
	Live, Ended, Reviewed, Offline         bool
	AlertDelivered                         bool
}

// pageAdminBreakGlass is GET /admin/breakglass: every use, newest first,
// with End for a live one and the post-incident review (notes + passkey)
// for an ended, unreviewed one.
func (s *Server) pageAdminBreakGlass(w http.ResponseWriter, r *http.Request) {
	a, ok := s.pageAuth(w, r)
	if !ok {
		return
	}
	p := page{Title: "Break-glass uses", Auth: a}
	if s.BreakGlass == nil {
		p.Error = "Break-glass is not configured on this server."
		s.render(w, r, http.StatusServiceUnavailable, "breakglass_admin", p)
		return
	}
	evs, err := s.BreakGlass.List(r.Context(), subject(a), false)
	if err != nil {
		p.Error = airlock.ErrorMessage(err)
		s.render(w, r, statusOf(airlock.ErrorCode(err)), "breakglass_admin", p)
		return
	}
	rows := []breakGlassRow{}
	names := map[string]string{}
	now := s.Now()
	for _, ev := range evs {
		rows = append(rows, breakGlassRow{ID: ev.ID, Account: s.userLabel(r.Context(), ev.AccountID, names),
			Justification: shown(ev.Justification), IP: shown(ev.IP), Scopes: strings.Join(ev.Scopes, ", "),
			StartedAt: ev.StartedAt, EndsAt: ev.EndsAt, EndedAt: ev.EndedAt, ReviewedAt: ev.ReviewedAt,
			EndReason: shown(ev.EndReason), ReviewedBy: s.userLabel(r.Context(), ev.ReviewedBy, names), ReviewNotes: shown(ev.ReviewNotes),
			Live: ev.EndedAt.IsZero() && now.Before(ev.EndsAt), Ended: !ev.EndedAt.IsZero() || !now.Before(ev.EndsAt),
			Reviewed: ev.Reviewed(), Offline: ev.Offline, AlertDelivered: ev.AlertDelivered})
		if !ev.Reviewed() {
			rows[len(rows)-1].ReviewedBy = ""
		}
	}
	p.Data = rows
	s.render(w, r, http.StatusOK, "breakglass_admin", p)
}

// decideBreakGlass answers POST /v1/decide for a break-glass token given as
// "session": the break-glass policy's scopes decide (no Cedar, no store
// needed), in the same response shape as a normal decision.
func (s *Server) decideBreakGlass(w http.ResponseWriter, r *http.Request, req pep.Request) {
	if s.BreakGlass == nil {
		s.writeError(w, r, airlock.Errorf(airlock.EUNAVAILABLE, "break-glass is not configured on this server"))
		return
	}
	sess, err := s.BreakGlass.Authenticate(r.Context(), req.Session)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	m := s.meta(r)
	m.IP = req.Context.IP
	if req.Context.UserAgent != "" {
		m.UserAgent = truncate(req.Context.UserAgent, 300)
	}
	res, err := s.BreakGlass.Decide(r.Context(), sess, req.Action, req.Resource, m)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, decisionView(res))
}
