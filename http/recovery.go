package http

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"airlock"
	"airlock/decide"
	"airlock/passkey"
	"airlock/pep"
	"airlock/recovery"
)

// routesRecovery registers account recovery (issue 6, docs/api.md
// "Recovery"): opening a case (self-service without a session, or a
// help-desk operator's session), the officers' views, approval ceremony,
// denial and abort, the subject's cancel with a still-valid passkey (no
// session), and the claimant's status and claim with the claim secret
// (POST bodies: the secret never goes into a URL or an access log). Pages:
// /recover, /recover/status, /recover/cancel/{id}, /recovery and
// /recovery/{id}. Without a recovery service the API answers 503.
func (s *Server) routesRecovery(handle func(pattern string, h http.HandlerFunc)) {
	handle("POST /v1/recovery/cases", s.rateLimited("recovery-open", s.withRecovery(s.handleRecoveryOpen)))
	handle("GET /v1/recovery/cases", s.authed(s.withRecovery(s.handleRecoveryList)))
	handle("GET /v1/recovery/cases/{id}", s.authed(s.withRecovery(s.handleRecoveryGet)))
	handle("POST /v1/recovery/cases/{id}/deny", s.authed(s.withRecovery(s.handleRecoveryDeny)))
	handle("POST /v1/recovery/cases/{id}/abort", s.authed(s.withRecovery(s.handleRecoveryAbort)))
	handle("POST /v1/recovery/begin", s.rateLimited("recovery-approval", s.authed(s.withRecovery(s.handleRecoveryBegin))))
	handle("POST /v1/recovery/finish", s.authed(s.withRecovery(s.handleRecoveryFinish)))
	handle("POST /v1/recovery/cancel/begin", s.rateLimited("recovery-cancel", s.withRecovery(s.handleRecoveryCancelBegin)))
	handle("POST /v1/recovery/cancel/finish", s.withRecovery(s.handleRecoveryCancelFinish))
	handle("POST /v1/recovery/status", s.rateLimited("recovery-status", s.withRecovery(s.handleRecoveryStatus)))
	handle("POST /v1/recovery/claim", s.rateLimited("recovery-claim", s.withRecovery(s.handleRecoveryClaim)))

	handle("GET /recover", s.pageRecover)
	handle("GET /recover/status", s.pageRecoverStatus)
	handle("GET /recover/cancel/{id}", s.pageRecoverCancel)
	handle("GET /recovery", s.pageRecoveryList)
	handle("GET /recovery/{id}", s.pageRecoveryCase)
}

func init() {
	for _, name := range []string{"recover", "recover_status", "recover_cancel", "recovery_list", "recovery_case"} {
		pages[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
}

// withRecovery answers 503 when no recovery service is configured.
func (s *Server) withRecovery(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.Recovery == nil {
			s.writeError(w, r, airlock.Errorf(airlock.EUNAVAILABLE, "account recovery is not configured on this server"))
			return
		}
		h(w, r)
	}
}

// --- wire forms ---

// recoveryCaseJSON is the wire form of a case for officers, the help desk
// and admins. The claim secret's hash is never shown.
type recoveryCaseJSON struct {
	ID            string                 `json:"id"`
	SubjectID     string                 `json:"subject_id"`
	OpenedBy      string                 `json:"opened_by"`
	Via           string                 `json:"via"`
	Reason        string                 `json:"reason"`
	Tier          int                    `json:"tier"`
	Required      int                    `json:"required"`
	Status        airlock.RecoveryStatus `json:"status"`
	DeviceID      string                 `json:"device_id,omitempty"`
	CoolDownUntil *time.Time             `json:"cool_down_until,omitempty"`
	EnrolTokenID  string                 `json:"enrol_token_id,omitempty"`
	ResolvedAt    *time.Time             `json:"resolved_at,omitempty"`
	ResolvedBy    string                 `json:"resolved_by,omitempty"`
	Note          string                 `json:"note,omitempty"`
	CreatedAt     time.Time              `json:"created_at"`
	ExpiresAt     time.Time              `json:"expires_at"`
	ApprovalURL   string                 `json:"approval_url"`
	CancelURL     string                 `json:"cancel_url"`
}

func (s *Server) recoveryCaseView(c *airlock.RecoveryCase) recoveryCaseJSON {
	return recoveryCaseJSON{ID: c.ID, SubjectID: c.SubjectID, OpenedBy: c.OpenedBy, Via: c.Via, Reason: c.Reason,
		Tier: int(c.Tier), Required: c.Required, Status: c.Status, DeviceID: c.DeviceID, CoolDownUntil: optTime(c.CoolDownUntil),
		EnrolTokenID: c.EnrolTokenID, ResolvedAt: optTime(c.ResolvedAt), ResolvedBy: c.ResolvedBy, Note: c.Note,
		CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt, ApprovalURL: s.Recovery.ApprovalURL(c.ID), CancelURL: s.Recovery.CancelURL(c.ID)}
}

type recoveryApprovalJSON struct {
	ApproverID   string    `json:"approver_id"`
	SessionID    string    `json:"session_id"`
	DeviceID     string    `json:"device_id"`
	CredentialID string    `json:"credential_id"`
	Verification string    `json:"verification"`
	At           time.Time `json:"at"`
}

// recoveryViewJSON is GET /v1/recovery/cases/{id}.
type recoveryViewJSON struct {
	Case       recoveryCaseJSON       `json:"case"`
	Subject    *userJSON              `json:"subject,omitempty"`
	Approvals  []recoveryApprovalJSON `json:"approvals"`
	Missing    int                    `json:"missing"`
	CanApprove bool                   `json:"can_approve"`
	WhyNot     string                 `json:"why_not,omitempty"`
}

func (s *Server) recoveryView(v *recovery.View) recoveryViewJSON {
	out := recoveryViewJSON{Case: s.recoveryCaseView(v.Case), Approvals: []recoveryApprovalJSON{}, Missing: v.Missing,
		CanApprove: v.CanApprove, WhyNot: v.WhyNot}
	if v.Subject != nil {
		u := userView(v.Subject)
		out.Subject = &u
	}
	for _, a := range v.Approvals {
		out.Approvals = append(out.Approvals, recoveryApprovalJSON{ApproverID: a.ApproverID, SessionID: a.SessionID,
			DeviceID: a.DeviceID, CredentialID: b64(a.CredentialID), Verification: a.Verification, At: a.At})
	}
	return out
}

// claimantJSON is what the holder of a claim secret sees: only what a
// refused self-service open (a secret that matches nothing) can show just
// as well — the status, and once the quorum approved, the end of the
// cool-down.
type claimantJSON struct {
	Status        airlock.RecoveryStatus `json:"status"`
	CoolDownUntil *time.Time             `json:"cool_down_until,omitempty"`
	// Claimable: the enrolment token can be claimed now.
	Claimable bool `json:"claimable"`
}

func (s *Server) claimantView(c *airlock.RecoveryCase) claimantJSON {
	out := claimantJSON{Status: c.Status}
	if c.Status == airlock.RecoveryCoolingDown || c.Status == airlock.RecoveryReleased {
		out.CoolDownUntil = optTime(c.CoolDownUntil)
		out.Claimable = !s.Now().Before(c.CoolDownUntil)
	}
	return out
}

// --- opening ---

type recoveryOpenRequest struct {
	User     string `json:"user"`
	Reason   string `json:"reason"`
	DeviceID string `json:"device_id"`
}

// hasCredentials reports whether the request carries any session
// credential (bearer, DPoP or the cookie).
func (s *Server) hasCredentials(r *http.Request) bool {
	if pep.BearerToken(r) != "" || dpopToken(r) != "" {
		return true
	}
	_, err := r.Cookie(s.cookieName())
	return err == nil
}

// handleRecoveryOpen is POST /v1/recovery/cases. Without any session
// credential it is self-service ("lost my passkey"): {user, reason} → 202
// {claim_secret, status_url}, the same answer whether or not the account
// exists. With a session (it must be valid: a help-desk operator or an
// admin) {user, reason, device_id?} → 201 {case, claim_secret}.
func (s *Server) handleRecoveryOpen(w http.ResponseWriter, r *http.Request) {
	var req recoveryOpenRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	o := recovery.Open{Subject: req.User, Reason: req.Reason, DeviceID: req.DeviceID}
	if s.hasCredentials(r) {
		a, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		sub := subject(a)
		o.Opener = &sub
	}
	opened, err := s.Recovery.Open(r.Context(), o, s.meta(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if o.Opener == nil {
		// Neutral: nothing in this answer depends on the account.
		writeJSON(w, http.StatusAccepted, map[string]any{"claim_secret": opened.Secret, "status_url": s.origin() + "/recover/status"})
		return
	}
	if opened.Case == nil {
		s.writeError(w, r, airlock.Errorf(airlock.EINTERNAL, "the recovery service opened no case"))
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"case": s.recoveryCaseView(opened.Case), "claim_secret": opened.Secret,
		"status_url": s.origin() + "/recover/status"})
}

// origin is the public base URL (the first allowed origin).
func (s *Server) origin() string {
	if len(s.Origins) > 0 {
		return s.Origins[0]
	}
	return ""
}

// --- officers, help desk, admins ---

// handleRecoveryList is GET /v1/recovery/cases[?pending=1].
func (s *Server) handleRecoveryList(w http.ResponseWriter, r *http.Request) {
	var pending bool
	switch r.URL.Query().Get("pending") {
	case "", "0", "false":
	case "1", "true":
		pending = true
	default:
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "pending must be 1 or 0"))
		return
	}
	cs, err := s.Recovery.List(r.Context(), subject(sessionFrom(r.Context())), pending)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]recoveryCaseJSON, 0, len(cs))
	for _, c := range cs {
		out = append(out, s.recoveryCaseView(c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"cases": out})
}

// handleRecoveryGet is GET /v1/recovery/cases/{id}.
func (s *Server) handleRecoveryGet(w http.ResponseWriter, r *http.Request) {
	v, err := s.Recovery.Get(r.Context(), r.PathValue("id"), subject(sessionFrom(r.Context())))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.recoveryView(v))
}

// handleRecoveryDeny is POST /v1/recovery/cases/{id}/deny {reason}.
func (s *Server) handleRecoveryDeny(w http.ResponseWriter, r *http.Request) {
	s.resolveCase(w, r, s.Recovery.Deny)
}

// handleRecoveryAbort is POST /v1/recovery/cases/{id}/abort {reason}.
func (s *Server) handleRecoveryAbort(w http.ResponseWriter, r *http.Request) {
	s.resolveCase(w, r, s.Recovery.Abort)
}

type resolveFunc = func(context.Context, string, decide.Subject, string, passkey.Meta) (*airlock.RecoveryCase, error)

func (s *Server) resolveCase(w http.ResponseWriter, r *http.Request, f resolveFunc) {
	var req denyRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if strings.TrimSpace(req.Reason) == "" {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "a reason is required"))
		return
	}
	c, err := f(r.Context(), r.PathValue("id"), subject(sessionFrom(r.Context())), req.Reason, s.meta(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"case": s.recoveryCaseView(c)})
}

type recoveryBeginRequest struct {
	Case         string `json:"case"`
	Verification string `json:"verification"`
}

// handleRecoveryBegin is POST /v1/recovery/begin {case, verification}: an
// officer's approval ceremony, bound to the case and the note of how they
// verified the person.
func (s *Server) handleRecoveryBegin(w http.ResponseWriter, r *http.Request) {
	var req recoveryBeginRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Case == "" {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "case is required"))
		return
	}
	b, err := s.Recovery.BeginApproval(r.Context(), req.Case, subject(sessionFrom(r.Context())), req.Verification, s.meta(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

type recoveryFinishRequest struct {
	Ceremony     string          `json:"ceremony"`
	Credential   json.RawMessage `json:"credential"`
	Verification string          `json:"verification"`
}

// handleRecoveryFinish is POST /v1/recovery/finish {ceremony, credential,
// verification} → {case}: the same note as at begin.
func (s *Server) handleRecoveryFinish(w http.ResponseWriter, r *http.Request) {
	var req recoveryFinishRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Ceremony == "" || len(req.Credential) == 0 {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "ceremony and credential are required"))
		return
	}
	c, err := s.Recovery.FinishApproval(r.Context(), req.Ceremony, req.Credential, subject(sessionFrom(r.Context())), req.Verification, s.meta(r))
	s.logins.WithLabelValues("recovery_approval", outcome(err)).Inc()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"case": s.recoveryCaseView(c)})
}

// --- the subject's cancel (no session: a still-valid passkey) ---

type recoveryCancelBeginRequest struct {
	Case string `json:"case"`
}

// handleRecoveryCancelBegin is POST /v1/recovery/cancel/begin {case}.
func (s *Server) handleRecoveryCancelBegin(w http.ResponseWriter, r *http.Request) {
	var req recoveryCancelBeginRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Case == "" {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "case is required"))
		return
	}
	b, err := s.Recovery.BeginCancel(r.Context(), req.Case, s.meta(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// handleRecoveryCancelFinish is POST /v1/recovery/cancel/finish {ceremony,
// credential} → {case: {id, status}}.
func (s *Server) handleRecoveryCancelFinish(w http.ResponseWriter, r *http.Request) {
	req, err := s.decodeFinish(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Bearer {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "malformed JSON body: unknown field \"bearer\""))
		return
	}
	c, err := s.Recovery.FinishCancel(r.Context(), req.Ceremony, req.Credential, s.meta(r))
	s.logins.WithLabelValues("recovery_cancel", outcome(err)).Inc()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"case": map[string]any{"id": c.ID, "status": c.Status}})
}

// --- the claimant (the claim secret) ---

type recoveryStatusRequest struct {
	Secret string `json:"secret"`
}

// handleRecoveryStatus is POST /v1/recovery/status {secret}. A secret that
// matches no case — also the one a refused self-service open handed out —
// reads as a case still waiting for approval.
func (s *Server) handleRecoveryStatus(w http.ResponseWriter, r *http.Request) {
	var req recoveryStatusRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	req.Secret = strings.TrimSpace(req.Secret)
	if req.Secret == "" {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "secret is required"))
		return
	}
	c, err := s.Recovery.Status(r.Context(), req.Secret)
	if airlock.ErrorCode(err) == airlock.ENOTFOUND {
		writeJSON(w, http.StatusOK, claimantJSON{Status: airlock.RecoveryPending})
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.claimantView(c))
}

type recoveryClaimRequest struct {
	Secret   string `json:"secret"`
	DeviceID string `json:"device_id"`
}

// handleRecoveryClaim is POST /v1/recovery/claim {secret, device_id} →
// {enrol_url, expires_at}: after the cool-down, the single-use enrolment
// link for a device of the subject.
func (s *Server) handleRecoveryClaim(w http.ResponseWriter, r *http.Request) {
	var req recoveryClaimRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	req.Secret, req.DeviceID = strings.TrimSpace(req.Secret), strings.TrimSpace(req.DeviceID)
	if req.Secret == "" || len(req.DeviceID) > 64 {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "secret is required (and device_id at most 64 bytes)"))
		return
	}
	secret, tok, err := s.Recovery.Claim(r.Context(), req.Secret, req.DeviceID, s.meta(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"enrol_url": s.origin() + "/enrol?token=" + url.QueryEscape(secret), "expires_at": tok.ExpiresAt})
}

// --- pages ---

// recoverData is what the public recovery pages need.
type recoverData struct {
	MaxLen int
	CaseID string
}

// pageRecover is GET /recover ("Lost my passkey?"): account name and
// reason; the claim secret is shown once by the page's script. No session.
func (s *Server) pageRecover(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Lost your passkey?", Data: recoverData{MaxLen: recovery.MaxReasonLen}}
	if s.Recovery == nil {
		p.Error = "Account recovery is not configured on this server; ask your administrator."
		s.render(w, r, http.StatusServiceUnavailable, "recover", p)
		return
	}
	s.render(w, r, http.StatusOK, "recover", p)
}

// pageRecoverStatus is GET /recover/status: enter the claim secret, see
// the case's status, and once it is claimable name the device and get the
// enrolment link.
func (s *Server) pageRecoverStatus(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Recovery status"}
	if s.Recovery == nil {
		p.Error = "Account recovery is not configured on this server; ask your administrator."
		s.render(w, r, http.StatusServiceUnavailable, "recover_status", p)
		return
	}
	s.render(w, r, http.StatusOK, "recover_status", p)
}

// pageRecoverCancel is GET /recover/cancel/{id}: the subject, warned of a
// case they did not open, cancels it with any passkey they still hold. It
// shows nothing of the case: whoever has the link learns nothing from it.
func (s *Server) pageRecoverCancel(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Cancel an account recovery", Data: recoverData{CaseID: r.PathValue("id")}}
	if s.Recovery == nil {
		p.Error = "Account recovery is not configured on this server."
		s.render(w, r, http.StatusServiceUnavailable, "recover_cancel", p)
		return
	}
	s.render(w, r, http.StatusOK, "recover_cancel", p)
}

// recoveryRow is one case in a page; every typed string went through shown.
type recoveryRow struct {
	ID, Subject, Opener, Via, Reason, Note string
	Status                                 airlock.RecoveryStatus
	Tier, Required                         int
	DeviceID                               string
	CreatedAt, ExpiresAt, CoolDownUntil    time.Time
	Pending                                bool
}

func (s *Server) recoveryRow(ctx context.Context, c *airlock.RecoveryCase, names map[string]string) recoveryRow {
	return recoveryRow{ID: c.ID, Subject: s.userLabel(ctx, c.SubjectID, names), Opener: s.userLabel(ctx, c.OpenedBy, names),
		Via: c.Via, Reason: shown(c.Reason), Note: shown(c.Note), Status: c.Status, Tier: int(c.Tier), Required: c.Required,
		DeviceID: shown(c.DeviceID), CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt, CoolDownUntil: c.CoolDownUntil,
		Pending: c.Status == airlock.RecoveryPending}
}

type recoveryListData struct {
	Cases    []recoveryRow
	Helpdesk bool
	MaxLen   int
}

// pageRecoveryList is GET /recovery: the cases, for officers, the help
// desk and admins; the help desk (and admins) can open one for someone.
func (s *Server) pageRecoveryList(w http.ResponseWriter, r *http.Request) {
	a, ok := s.pageAuth(w, r)
	if !ok {
		return
	}
	p := page{Title: "Recovery cases", Auth: a}
	if s.Recovery == nil {
		p.Error = "Account recovery is not configured on this server."
		s.render(w, r, http.StatusServiceUnavailable, "recovery_list", p)
		return
	}
	cs, err := s.Recovery.List(r.Context(), subject(a), false)
	if err != nil {
		p.Error = airlock.ErrorMessage(err)
		s.render(w, r, statusOf(airlock.ErrorCode(err)), "recovery_list", p)
		return
	}
	d := recoveryListData{Cases: []recoveryRow{}, MaxLen: recovery.MaxReasonLen,
		Helpdesk: slices.Contains(a.User.Roles, recovery.RoleHelpdesk) || slices.Contains(a.User.Roles, airlock.RoleAdmin)}
	names := map[string]string{}
	for _, c := range cs {
		d.Cases = append(d.Cases, s.recoveryRow(r.Context(), c, names))
	}
	p.Data = d
	s.render(w, r, http.StatusOK, "recovery_list", p)
}

// recoveryCaseData is the officer's approval page.
type recoveryCaseData struct {
	Case                        recoveryRow
	SubjectName, SubjectDisplay string
	SubjectKind                 airlock.UserKind
	SubjectTier                 int
	Approvals                   []recoveryApprovalRow
	Missing                     int
	CanApprove                  bool
	WhyNot                      string
	CanDeny, CanAbort           bool
	MaxLen                      int
}

type recoveryApprovalRow struct {
	Approver, Verification string
	At                     time.Time
}

// pageRecoveryCase is GET /recovery/{id}: the subject, the opener, the
// reason, the tier and quorum, the approvals with their verification
// notes and what is missing; an officer who may approve writes how they
// verified the person and approves with a passkey, or denies.
func (s *Server) pageRecoveryCase(w http.ResponseWriter, r *http.Request) {
	a, ok := s.pageAuth(w, r)
	if !ok {
		return
	}
	p := page{Title: "Recovery case", Auth: a}
	if s.Recovery == nil {
		p.Error = "Account recovery is not configured on this server."
		s.render(w, r, http.StatusServiceUnavailable, "recovery_case", p)
		return
	}
	v, err := s.Recovery.Get(r.Context(), r.PathValue("id"), subject(a))
	if err != nil {
		p.Error = airlock.ErrorMessage(err)
		s.render(w, r, statusOf(airlock.ErrorCode(err)), "recovery_case", p)
		return
	}
	names := map[string]string{}
	c := v.Case
	d := recoveryCaseData{Case: s.recoveryRow(r.Context(), c, names), Missing: v.Missing, CanApprove: v.CanApprove,
		WhyNot: shown(v.WhyNot), MaxLen: recovery.MaxReasonLen}
	if u := v.Subject; u != nil {
		d.SubjectName, d.SubjectDisplay, d.SubjectKind, d.SubjectTier = shown(u.Name), shown(u.DisplayName), u.Kind, int(u.Tier)
	}
	for _, ap := range v.Approvals {
		d.Approvals = append(d.Approvals, recoveryApprovalRow{Approver: s.userLabel(r.Context(), ap.ApproverID, names),
			Verification: shown(ap.Verification), At: ap.At})
	}
	officer := slices.Contains(a.User.Roles, recovery.RoleOfficer)
	live := !c.Status.Final()
	d.CanDeny = c.Status == airlock.RecoveryPending && officer && a.User.ID != c.SubjectID
	d.CanAbort = live && (officer || a.User.ID == c.OpenedBy) && a.User.ID != c.SubjectID
	if c.Status != airlock.RecoveryPending {
		p.Title = "Recovery case (" + string(c.Status) + ")"
	}
	p.Data = d
	s.render(w, r, http.StatusOK, "recovery_case", p)
}
