package http

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"airlock"
	"airlock/decide"
	"airlock/elevate"
	"airlock/pep"
)

// routesElevation registers just-in-time elevation (issue 5): the JSON API
// for access requests, the approval ceremony and grants, and the pages
// /elevate, /approvals and /approve/{id}. Every route needs a session;
// without an elevation service (s.Elevation nil) the API answers 503.
func (s *Server) routesElevation(handle func(pattern string, h http.HandlerFunc)) {
	handle("POST /v1/elevation/requests", s.authed(s.withElevation(s.handleCreateAccessRequest)))
	handle("GET /v1/elevation/requests", s.authed(s.withElevation(s.handleListAccessRequests)))
	handle("GET /v1/elevation/requests/{id}", s.authed(s.withElevation(s.handleGetAccessRequest)))
	handle("POST /v1/elevation/requests/{id}/deny", s.authed(s.withElevation(s.handleDenyAccessRequest)))
	handle("POST /v1/elevation/requests/{id}/cancel", s.authed(s.withElevation(s.handleCancelAccessRequest)))
	handle("POST /v1/approval/begin", s.rateLimited("approval", s.authed(s.withElevation(s.handleApprovalBegin))))
	handle("POST /v1/approval/finish", s.authed(s.withElevation(s.handleApprovalFinish)))
	handle("GET /v1/grants", s.authed(s.withElevation(s.handleListGrants)))
	handle("GET /v1/grants/{id}", s.authed(s.withElevation(s.handleGetGrant)))
	handle("POST /v1/grants/{id}/end", s.authed(s.withElevation(s.handleEndGrant)))
	handle("GET /v1/admin/grants", s.admin(s.withElevation(s.handleAdminListGrants)))
	handle("POST /v1/admin/grants/{id}/revoke", s.sensitive(decide.ActionGrantRevoke, s.withElevation(s.handleAdminRevokeGrant)))

	handle("GET /elevate", s.pageElevate)
	handle("GET /approvals", s.pageApprovals)
	handle("GET /approve/{id}", s.pageApprove)
}

// withElevation answers 503 when no elevation service is configured.
func (s *Server) withElevation(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.Elevation == nil {
			s.writeError(w, r, airlock.Errorf(airlock.EUNAVAILABLE, "just-in-time elevation is not configured on this server"))
			return
		}
		h(w, r)
	}
}

// subject is the decide.Subject of an authenticated request: its session,
// user and device, and how long the session was idle before this request.
func subject(a *authn) decide.Subject {
	idle := int64(0)
	if !a.PrevSeen.IsZero() {
		idle = int64(a.Session.LastSeen.Sub(a.PrevSeen) / time.Second)
	}
	return decide.Subject{Session: a.Session, User: a.User, Device: a.Device, IdleS: idle}
}

// --- wire forms ---

// accessRequestJSON is the wire form of an access request. Durations are
// in seconds (DESIGN.md); optional times are omitted while unset.
type accessRequestJSON struct {
	ID          string                `json:"id"`
	RequesterID string                `json:"requester_id"`
	SessionID   string                `json:"session_id"`
	DeviceID    string                `json:"device_id"`
	Scope       string                `json:"scope"`
	ScopeTier   int                   `json:"scope_tier"`
	Reason      string                `json:"reason"`
	Ticket      string                `json:"ticket,omitempty"`
	DurationS   int64                 `json:"duration_s"`
	DecisionID  string                `json:"decision_id"`
	Rule        string                `json:"approval_rule,omitempty"`
	Risk        int                   `json:"risk"`
	IP          string                `json:"ip"`
	UserAgent   string                `json:"user_agent"`
	Digest      string                `json:"digest"`
	Status      airlock.RequestStatus `json:"status"`
	CreatedAt   time.Time             `json:"created_at"`
	ExpiresAt   time.Time             `json:"expires_at"`
	ResolvedAt  *time.Time            `json:"resolved_at,omitempty"`
	ResolvedBy  string                `json:"resolved_by,omitempty"`
	Note        string                `json:"note,omitempty"`
	GrantID     string                `json:"grant_id,omitempty"`
	ApprovalURL string                `json:"approval_url"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *Server) accessRequestView(q *airlock.AccessRequest) accessRequestJSON {
	return accessRequestJSON{ID: q.ID, RequesterID: q.RequesterID, SessionID: q.SessionID, DeviceID: q.DeviceID,
		Scope: q.Scope.String(), ScopeTier: int(q.Scope.Tier), Reason: q.Reason, Ticket: q.Ticket,
		DurationS: int64(q.Duration / time.Second), DecisionID: q.DecisionID, Rule: q.ApprovalRule, Risk: q.Risk,
		IP: q.IP, UserAgent: q.UserAgent, Digest: b64(q.Digest), Status: q.Status, CreatedAt: q.CreatedAt,
		ExpiresAt: q.ExpiresAt, ResolvedAt: optTime(q.ResolvedAt), ResolvedBy: q.ResolvedBy, Note: q.Note,
		GrantID: q.GrantID, ApprovalURL: s.Elevation.ApprovalURL(q.ID)}
}

// grantJSON is the wire form of a grant. Active is the grant's own window
// at the time of the answer (IsActive); whether its session, device and
// passkey still hold is checked when it is used.
type grantJSON struct {
	ID        string     `json:"id"`
	RequestID string     `json:"request_id"`
	UserID    string     `json:"user_id"`
	SessionID string     `json:"session_id"`
	DeviceID  string     `json:"device_id"`
	Scope     string     `json:"scope"`
	ScopeTier int        `json:"scope_tier"`
	NotBefore time.Time  `json:"not_before"`
	NotAfter  time.Time  `json:"not_after"`
	CreatedAt time.Time  `json:"created_at"`
	Active    bool       `json:"active"`
	ExpiresIn int64      `json:"expires_in_s"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	EndReason string     `json:"end_reason,omitempty"`
	EndedBy   string     `json:"ended_by,omitempty"`
}

func (s *Server) grantView(g *airlock.Grant) grantJSON {
	now := s.Now()
	out := grantJSON{ID: g.ID, RequestID: g.RequestID, UserID: g.UserID, SessionID: g.SessionID, DeviceID: g.DeviceID,
		Scope: g.Scope.String(), ScopeTier: int(g.Scope.Tier), NotBefore: g.NotBefore, NotAfter: g.NotAfter,
		CreatedAt: g.CreatedAt, Active: g.IsActive(now), EndedAt: optTime(g.EndedAt), EndReason: g.EndReason, EndedBy: g.EndedBy}
	if out.Active {
		out.ExpiresIn = int64(g.NotAfter.Sub(now) / time.Second)
	}
	return out
}

func (s *Server) grantViews(gs []*airlock.Grant) []grantJSON {
	out := make([]grantJSON, 0, len(gs))
	for _, g := range gs {
		out = append(out, s.grantView(g))
	}
	return out
}

func (s *Server) optGrantView(g *airlock.Grant) *grantJSON {
	if g == nil {
		return nil
	}
	v := s.grantView(g)
	return &v
}

type approvalJSON struct {
	ApproverID string    `json:"approver_id"`
	SessionID  string    `json:"session_id"`
	DeviceID   string    `json:"device_id"`
	Groups     []string  `json:"groups"`
	Comment    string    `json:"comment,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// requestViewJSON is GET /v1/elevation/requests/{id}: the request with
// everything an approver must see.
type requestViewJSON struct {
	Request   accessRequestJSON `json:"request"`
	Requester *userJSON         `json:"requester,omitempty"`
	Device    *deviceJSON       `json:"device,omitempty"`
	// DeviceCompliant is the requester device's compliance now.
	DeviceCompliant bool             `json:"device_compliant"`
	Approvals       []approvalJSON   `json:"approvals"`
	Rule            elevate.Rule     `json:"rule"`
	Missing         []elevate.Quorum `json:"missing"`
	Grant           *grantJSON       `json:"grant,omitempty"`
}

func (s *Server) requestView(v *elevate.View) requestViewJSON {
	out := requestViewJSON{Request: s.accessRequestView(v.Request), DeviceCompliant: v.DeviceCompliant,
		Approvals: []approvalJSON{}, Rule: v.Rule, Missing: v.Missing, Grant: s.optGrantView(v.Grant)}
	if out.Rule.AllOf == nil {
		out.Rule.AllOf = []elevate.Quorum{}
	}
	if out.Missing == nil {
		out.Missing = []elevate.Quorum{}
	}
	if v.Requester != nil {
		u := userView(v.Requester)
		out.Requester = &u
	}
	if v.Device != nil {
		d := s.deviceView(v.Device)
		out.Device = &d
	}
	for _, a := range v.Approvals {
		groups := a.Groups
		if groups == nil {
			groups = []string{}
		}
		out.Approvals = append(out.Approvals, approvalJSON{ApproverID: a.ApproverID, SessionID: a.SessionID, DeviceID: a.DeviceID,
			Groups: groups, Comment: a.Comment, CreatedAt: a.CreatedAt})
	}
	return out
}

// createdJSON answers POST /v1/elevation/requests and the approval finish:
// the request, and its grant when one was made.
type createdJSON struct {
	Request     accessRequestJSON `json:"request"`
	Grant       *grantJSON        `json:"grant,omitempty"`
	ApprovalURL string            `json:"approval_url,omitempty"`
}

// --- access requests ---

type createAccessRequest struct {
	Scope     string `json:"scope"`
	DurationS int64  `json:"duration_s"`
	Reason    string `json:"reason"`
	Ticket    string `json:"ticket"`
	// StepUp is the proof of a completed step-up of this identical ask
	// (also accepted in the Airlock-StepUp header).
	StepUp string `json:"stepup"`
}

// maxDurationS bounds duration_s before it becomes a time.Duration (no
// overflow); the tier caps then apply.
const maxDurationS = 366 * 24 * 3600

// handleCreateAccessRequest is POST /v1/elevation/requests. The policy's
// answer decides the status: 201 with the grant (auto-approved) or with
// the approval URL (approval_required); 401 with the RFC 9470 challenge
// when it wants a passkey confirmation of this very ask first (repeat it
// with "stepup": proof); 403 with the reasons when it denies.
func (s *Server) handleCreateAccessRequest(w http.ResponseWriter, r *http.Request) {
	var req createAccessRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.DurationS <= 0 || req.DurationS > maxDurationS {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "duration_s must be a positive number of seconds"))
		return
	}
	proof := req.StepUp
	if proof == "" {
		proof = strings.TrimSpace(r.Header.Get(pep.HeaderStepUp))
	}
	a := sessionFrom(r.Context())
	m := s.meta(r)
	q, g, err := s.Elevation.Request(r.Context(), subject(a), elevate.Ask{Scope: req.Scope, Duration: time.Duration(req.DurationS) * time.Second,
		Reason: req.Reason, Ticket: req.Ticket, Proof: proof, IP: m.IP, UserAgent: m.UserAgent, RequestID: m.RequestID})
	if err != nil {
		s.writeElevationError(w, r, err)
		return
	}
	out := createdJSON{Request: s.accessRequestView(q), Grant: s.optGrantView(g)}
	if q.Status == airlock.RequestPending {
		out.ApprovalURL = s.Elevation.ApprovalURL(q.ID)
	}
	writeJSON(w, http.StatusCreated, out)
}

// writeElevationError answers an elevation error: a step-up the policy
// wants as the RFC 9470 challenge (the same shape as the PEP's), a policy
// deny as 403 with the decision's reasons when the error carries them,
// anything else by its code.
func (s *Server) writeElevationError(w http.ResponseWriter, r *http.Request, err error) {
	var su *elevate.StepUpRequired
	if errors.As(err, &su) && su.Result != nil {
		pep.Challenge(w, decisionView(su.Result))
		return
	}
	var dr interface{ DecisionResult() *decide.Result }
	if errors.As(err, &dr) && dr.DecisionResult() != nil && airlock.ErrorCode(err) == airlock.EFORBIDDEN {
		d := decisionView(dr.DecisionResult())
		var body struct {
			errorBody
			DecisionID string       `json:"decision_id"`
			Reasons    []pep.Reason `json:"reasons"`
		}
		body.Error.Code, body.Error.Message = airlock.EFORBIDDEN, airlock.ErrorMessage(err)
		body.DecisionID, body.Reasons = d.DecisionID, d.Reasons
		writeJSON(w, http.StatusForbidden, body)
		return
	}
	s.writeError(w, r, err)
}

// handleListAccessRequests is GET /v1/elevation/requests?view=mine (the
// default: the caller's own requests) or ?view=to_approve (pending
// requests of others the caller may approve).
func (s *Server) handleListAccessRequests(w http.ResponseWriter, r *http.Request) {
	a := sessionFrom(r.Context())
	var toApprove bool
	switch r.URL.Query().Get("view") {
	case "", "mine":
	case "to_approve":
		toApprove = true
	default:
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "view must be mine or to_approve"))
		return
	}
	qs, err := s.listRequests(r.Context(), a, toApprove)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]accessRequestJSON, 0, len(qs))
	for _, q := range qs {
		out = append(out, s.accessRequestView(q))
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": out})
}

// listRequests returns the caller's own requests, or the pending requests
// of others the caller may approve (the service decides who may; this
// keeps each list to its own kind).
func (s *Server) listRequests(ctx context.Context, a *authn, toApprove bool) ([]*airlock.AccessRequest, error) {
	qs, err := s.Elevation.ListRequests(ctx, subject(a), toApprove)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(qs, func(q *airlock.AccessRequest) bool {
		if toApprove {
			return q.RequesterID == a.User.ID || q.Status != airlock.RequestPending
		}
		return q.RequesterID != a.User.ID
	}), nil
}

// handleGetAccessRequest is GET /v1/elevation/requests/{id}: for the
// requester, an eligible approver or an admin.
func (s *Server) handleGetAccessRequest(w http.ResponseWriter, r *http.Request) {
	v, err := s.Elevation.Get(r.Context(), r.PathValue("id"), subject(sessionFrom(r.Context())))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.requestView(v))
}

type denyRequest struct {
	Reason string `json:"reason"`
}

// handleDenyAccessRequest is POST /v1/elevation/requests/{id}/deny
// {reason}: a reason is required.
func (s *Server) handleDenyAccessRequest(w http.ResponseWriter, r *http.Request) {
	var req denyRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if strings.TrimSpace(req.Reason) == "" {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "a denial needs a reason"))
		return
	}
	q, err := s.Elevation.Deny(r.Context(), r.PathValue("id"), subject(sessionFrom(r.Context())), req.Reason, s.meta(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"request": s.accessRequestView(q)})
}

// handleCancelAccessRequest is POST /v1/elevation/requests/{id}/cancel:
// only the requester may withdraw a pending request.
func (s *Server) handleCancelAccessRequest(w http.ResponseWriter, r *http.Request) {
	if err := decodeOptional(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	q, err := s.Elevation.Cancel(r.Context(), r.PathValue("id"), subject(sessionFrom(r.Context())), s.meta(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"request": s.accessRequestView(q)})
}

// --- the approval ceremony ---

type approvalBeginRequest struct {
	Request string `json:"request"`
}

// handleApprovalBegin is POST /v1/approval/begin {"request": id}: the
// service refuses the requester, someone outside the rule's groups or of a
// lower tier, a second approval and a request not pending.
func (s *Server) handleApprovalBegin(w http.ResponseWriter, r *http.Request) {
	var req approvalBeginRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Request == "" {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "request is required"))
		return
	}
	b, err := s.Elevation.BeginApproval(r.Context(), req.Request, subject(sessionFrom(r.Context())), s.meta(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

type approvalFinishRequest struct {
	Ceremony   string          `json:"ceremony"`
	Credential json.RawMessage `json:"credential"`
	Comment    string          `json:"comment"`
}

// maxCommentLen bounds an approval's comment.
const maxCommentLen = 500

// handleApprovalFinish is POST /v1/approval/finish {ceremony, credential,
// comment} → {request, grant?}: the grant is there when this approval
// completed the rule's quorum.
func (s *Server) handleApprovalFinish(w http.ResponseWriter, r *http.Request) {
	var req approvalFinishRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Ceremony == "" || len(req.Credential) == 0 {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "ceremony and credential are required"))
		return
	}
	if len(req.Comment) > maxCommentLen {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "comment is longer than %d bytes", maxCommentLen))
		return
	}
	q, g, err := s.Elevation.FinishApproval(r.Context(), req.Ceremony, req.Credential, subject(sessionFrom(r.Context())), req.Comment, s.meta(r))
	s.logins.WithLabelValues("approval", outcome(err)).Inc()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, createdJSON{Request: s.accessRequestView(q), Grant: s.optGrantView(g)})
}

// --- grants ---

// handleListGrants is GET /v1/grants: the caller's grants, newest first;
// with ?active=1 only those in force for this session (each checked
// against its session, device, passkey and user).
func (s *Server) handleListGrants(w http.ResponseWriter, r *http.Request) {
	a := sessionFrom(r.Context())
	var (
		gs  []*airlock.Grant
		err error
	)
	switch r.URL.Query().Get("active") {
	case "", "0", "false":
		gs, err = s.Elevation.Grants(r.Context(), subject(a))
	case "1", "true":
		gs, err = s.Elevation.ActiveGrants(r.Context(), subject(a))
	default:
		err = airlock.Errorf(airlock.EINVALID, "active must be 1 or 0")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"grants": s.grantViews(gs)})
}

// handleGetGrant is GET /v1/grants/{id}: the holder's (or an admin's)
// view; anyone else gets 404, as if it did not exist.
func (s *Server) handleGetGrant(w http.ResponseWriter, r *http.Request) {
	a := sessionFrom(r.Context())
	g, err := s.Store.FindGrantByID(r.Context(), r.PathValue("id"))
	if err == nil && g.UserID != a.User.ID && s.checkAdmin(a) != nil {
		err = airlock.Errorf(airlock.ENOTFOUND, "no grant %q", r.PathValue("id"))
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.grantView(g))
}

// handleEndGrant is POST /v1/grants/{id}/end: the holder marks the task
// done (someone else's grant is not found).
func (s *Server) handleEndGrant(w http.ResponseWriter, r *http.Request) {
	if err := decodeOptional(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	a := sessionFrom(r.Context())
	g, err := s.Store.FindGrantByID(r.Context(), r.PathValue("id"))
	if err == nil && g.UserID != a.User.ID {
		// Ending someone else's grant is the admin revoke route, decided by
		// the policy; here it does not exist.
		err = airlock.Errorf(airlock.ENOTFOUND, "no grant %q", r.PathValue("id"))
	}
	if err == nil {
		g, err = s.Elevation.EndGrant(r.Context(), g.ID, subject(a), s.meta(r))
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.grantView(g))
}

// handleAdminListGrants is GET /v1/admin/grants[?user=ID|name][&active=1].
func (s *Server) handleAdminListGrants(w http.ResponseWriter, r *http.Request) {
	var f airlock.GrantFilter
	q := r.URL.Query()
	if ref := q.Get("user"); ref != "" {
		u, err := s.findUser(r, ref)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		f.UserID = u.ID
	}
	switch q.Get("active") {
	case "", "0", "false":
	case "1", "true":
		f.ActiveAt = s.Now()
	default:
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "active must be 1 or 0"))
		return
	}
	f.Limit = 500
	gs, err := s.Store.ListGrants(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"grants": s.grantViews(gs)})
}

// handleAdminRevokeGrant is POST /v1/admin/grants/{id}/revoke: an admin
// ends anyone's grant (reason revoked_by_admin), decided by the policy as
// decide.ActionGrantRevoke.
func (s *Server) handleAdminRevokeGrant(w http.ResponseWriter, r *http.Request) {
	if err := decodeOptional(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	g, err := s.Elevation.EndGrant(r.Context(), r.PathValue("id"), subject(sessionFrom(r.Context())), s.meta(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.grantView(g))
}

// --- pages ---

// shown is a user-supplied string made safe to show: html/template escapes
// markup, and decide.DisplayText quotes anything with invisible, control
// or direction-changing characters so it cannot pass for other text.
func shown(v string) string {
	if v == "" {
		return ""
	}
	return decide.DisplayText(v)
}

// requestRow is one access request in a page's list.
type requestRow struct {
	ID, Scope, Reason, Ticket, Requester string
	Status                               airlock.RequestStatus
	Duration                             string
	CreatedAt, ExpiresAt                 time.Time
	Note, GrantID                        string
	Pending                              bool
}

func (s *Server) requestRow(ctx context.Context, q *airlock.AccessRequest, names map[string]string) requestRow {
	return requestRow{ID: q.ID, Scope: q.Scope.String(), Reason: shown(q.Reason), Ticket: shown(q.Ticket),
		Requester: s.userLabel(ctx, q.RequesterID, names), Status: q.Status, Duration: fmtDuration(q.Duration),
		CreatedAt: q.CreatedAt, ExpiresAt: q.ExpiresAt, Note: shown(q.Note), GrantID: q.GrantID, Pending: q.Status == airlock.RequestPending}
}

// userLabel is "name (display name)" of user id, made safe to show, or the
// id when the user cannot be found.
func (s *Server) userLabel(ctx context.Context, id string, cache map[string]string) string {
	if l, ok := cache[id]; ok {
		return l
	}
	l := id
	if u, err := s.Store.FindUserByID(ctx, id); err == nil {
		l = shown(u.Name)
		if u.DisplayName != "" {
			l += " (" + shown(u.DisplayName) + ")"
		}
	}
	cache[id] = l
	return l
}

// grantRow is one grant on the elevate page.
type grantRow struct {
	ID, Scope, Left, EndReason string
	NotBefore, NotAfter        time.Time
	Active                     bool
}

func fmtDuration(d time.Duration) string {
	d = d.Round(time.Second)
	if d <= 0 {
		return "0s"
	}
	out := d.String() // e.g. "1h30m0s"
	if t, ok := strings.CutSuffix(out, "m0s"); ok {
		out = t + "m"
	}
	if t, ok := strings.CutSuffix(out, "h0m"); ok {
		out = t + "h"
	}
	return out
}

type elevateData struct {
	Requests []requestRow
	Grants   []grantRow
}

// pageElevate is GET /elevate: the request form, the caller's requests and
// grants (with an End button for those in force).
func (s *Server) pageElevate(w http.ResponseWriter, r *http.Request) {
	a, ok := s.pageAuth(w, r)
	if !ok {
		return
	}
	const title = "Request access"
	p := page{Title: title, Auth: a}
	if s.Elevation == nil {
		p.Error = "Just-in-time elevation is not configured on this server."
		s.render(w, r, http.StatusServiceUnavailable, "elevate", p)
		return
	}
	qs, err := s.listRequests(r.Context(), a, false)
	if err != nil {
		p.Error = airlock.ErrorMessage(err)
		s.render(w, r, statusOf(airlock.ErrorCode(err)), "elevate", p)
		return
	}
	gs, err := s.Elevation.Grants(r.Context(), subject(a))
	if err != nil {
		p.Error = airlock.ErrorMessage(err)
		s.render(w, r, statusOf(airlock.ErrorCode(err)), "elevate", p)
		return
	}
	var d elevateData
	names := map[string]string{}
	for _, q := range qs {
		d.Requests = append(d.Requests, s.requestRow(r.Context(), q, names))
	}
	now := s.Now()
	for _, g := range gs {
		row := grantRow{ID: g.ID, Scope: g.Scope.String(), NotBefore: g.NotBefore, NotAfter: g.NotAfter,
			Active: g.IsActive(now), EndReason: g.EndReason}
		if row.Active {
			row.Left = fmtDuration(g.NotAfter.Sub(now))
		} else if row.EndReason == "" {
			row.EndReason = airlock.EndExpired
		}
		d.Grants = append(d.Grants, row)
	}
	p.Data = d
	s.render(w, r, http.StatusOK, "elevate", p)
}

// pageApprovals is GET /approvals: the pending requests the caller may
// approve.
func (s *Server) pageApprovals(w http.ResponseWriter, r *http.Request) {
	a, ok := s.pageAuth(w, r)
	if !ok {
		return
	}
	p := page{Title: "Requests waiting for you", Auth: a}
	if s.Elevation == nil {
		p.Error = "Just-in-time elevation is not configured on this server."
		s.render(w, r, http.StatusServiceUnavailable, "approvals", p)
		return
	}
	qs, err := s.listRequests(r.Context(), a, true)
	if err != nil {
		p.Error = airlock.ErrorMessage(err)
		s.render(w, r, statusOf(airlock.ErrorCode(err)), "approvals", p)
		return
	}
	rows := []requestRow{}
	names := map[string]string{}
	for _, q := range qs {
		rows = append(rows, s.requestRow(r.Context(), q, names))
	}
	p.Data = rows
	s.render(w, r, http.StatusOK, "approvals", p)
}

// approveData is what the approval page shows. Every string a person
// typed (names, reason, ticket, device name, comments, user agent) has
// gone through shown.
type approveData struct {
	Req                          requestRow
	RequesterName, DisplayName   string
	RequesterKind                airlock.UserKind
	RequesterTier                int
	ScopeTier                    int
	Rule                         string
	DecisionID                   string
	Risk                         int
	IP, UserAgent                string
	DeviceName                   string
	DeviceKind                   airlock.DeviceKind
	DeviceTrust                  airlock.TrustState
	DeviceCompliant              bool
	DeviceReasons                []string
	Approvals                    []approvalRow
	Missing                      []elevate.Quorum
	Quorums                      []elevate.Quorum
	GrantID                      string
	ApprovalURL                  string
	ExpiresIn                    string
	Expired                      bool
	IsRequester, AlreadyApproved bool
	// CanApprove: the viewer may try the approval ceremony (the service
	// checks again); CanDeny: the viewer may deny.
	CanApprove, CanDeny bool
}

type approvalRow struct {
	Approver, Comment string
	Groups            []string
	At                time.Time
}

// pageApprove is GET /approve/{id}: the whole request — who, what, why,
// how long, from which device, at what risk, the approvals so far and what
// the rule still lacks — with "Approve with passkey" and "Deny" for an
// approver. The requester sees the status only.
func (s *Server) pageApprove(w http.ResponseWriter, r *http.Request) {
	a, ok := s.pageAuth(w, r)
	if !ok {
		return
	}
	p := page{Title: "Access request", Auth: a}
	if s.Elevation == nil {
		p.Error = "Just-in-time elevation is not configured on this server."
		s.render(w, r, http.StatusServiceUnavailable, "approve", p)
		return
	}
	v, err := s.Elevation.Get(r.Context(), r.PathValue("id"), subject(a))
	if err != nil {
		p.Error = airlock.ErrorMessage(err)
		s.render(w, r, statusOf(airlock.ErrorCode(err)), "approve", p)
		return
	}
	q := v.Request
	now := s.Now()
	names := map[string]string{}
	d := approveData{Req: s.requestRow(r.Context(), q, names), ScopeTier: int(q.Scope.Tier), Rule: q.ApprovalRule,
		DecisionID: q.DecisionID, Risk: q.Risk, IP: shown(q.IP), UserAgent: shown(q.UserAgent), DeviceCompliant: v.DeviceCompliant,
		Missing: v.Missing, Quorums: v.Rule.AllOf, Expired: !now.Before(q.ExpiresAt), IsRequester: q.RequesterID == a.User.ID}
	if v.Grant != nil {
		d.GrantID = v.Grant.ID
	}
	d.ApprovalURL = s.Elevation.ApprovalURL(q.ID)
	if !d.Expired {
		d.ExpiresIn = fmtDuration(q.ExpiresAt.Sub(now))
	}
	if u := v.Requester; u != nil {
		d.RequesterName, d.DisplayName, d.RequesterKind, d.RequesterTier = shown(u.Name), shown(u.DisplayName), u.Kind, int(u.Tier)
	}
	if dev := v.Device; dev != nil {
		dv := s.deviceView(dev)
		d.DeviceName, d.DeviceKind, d.DeviceTrust, d.DeviceReasons = shown(dev.Name), dev.Kind, dev.Trust, dv.Reasons
	}
	for _, ap := range v.Approvals {
		if ap.ApproverID == a.User.ID {
			d.AlreadyApproved = true
		}
		d.Approvals = append(d.Approvals, approvalRow{Approver: s.userLabel(r.Context(), ap.ApproverID, names),
			Comment: shown(ap.Comment), Groups: ap.Groups, At: ap.CreatedAt})
	}
	pending := q.Status == airlock.RequestPending && !d.Expired
	inGroup := slices.ContainsFunc(v.Rule.AllOf, func(qu elevate.Quorum) bool { return slices.Contains(a.User.Roles, qu.Group) })
	d.CanApprove = pending && !d.IsRequester && !d.AlreadyApproved && inGroup
	d.CanDeny = pending && !d.IsRequester && (inGroup || s.checkAdmin(a) == nil)
	switch {
	case q.Status != airlock.RequestPending:
		p.Title = "Access request (" + string(q.Status) + ")"
	case d.Expired:
		p.Error = "This request expired before it was approved."
	}
	p.Data = d
	s.render(w, r, http.StatusOK, "approve", p)
}
