package http

import (
	"context"
	"net/http"
	"net/netip"
	"slices"

	"airlock"
	"airlock/breakglass"
	"airlock/decide"
	"airlock/pep"
	"airlock/policy"
)

// routesDecide adds the decision edge: POST /v1/decide, the step-up
// ceremony and page, exceptions, resources and policy reload.
func (s *Server) routesDecide(handle func(string, http.HandlerFunc)) {
	handle("POST /v1/decide", s.handleDecide)
	handle("POST /v1/stepup/begin", s.rateLimited("stepup", s.authed(s.handleStepUpBegin)))
	handle("POST /v1/stepup/finish", s.authed(s.handleStepUpFinish))
	handle("GET /stepup/{id}", s.pageStepUp)

	handle("GET /v1/admin/exceptions", s.admin(s.handleListExceptions))
	handle("POST /v1/admin/exceptions", s.sensitive(decide.ActionExceptionCreate, s.handleCreateException))
	handle("DELETE /v1/admin/exceptions/{id}", s.sensitive(decide.ActionExceptionDelete, s.handleDeleteException))
	handle("GET /v1/admin/resources", s.admin(s.handleListResources))
	handle("POST /v1/admin/resources", s.sensitive(decide.ActionResourceChange, s.handleCreateResource))
	handle("PATCH /v1/admin/resources/{name}", s.sensitive(decide.ActionResourceChange, s.handleUpdateResource))
	handle("DELETE /v1/admin/resources/{name}", s.sensitive(decide.ActionResourceChange, s.handleDeleteResource))
	handle("GET /v1/admin/catalog", s.admin(s.handleCatalog))
	handle("POST /v1/admin/policy/reload", s.sensitive(decide.ActionPolicyChange, s.handlePolicyReload))
}

// sensitive guards an admin handler twice: the admin rule (role, tier) and
// then a policy decision about action on the resource "airlock", with the
// request's method, path and JSON body as parameters — so a step-up proof
// confirms exactly this change. It replaces the foundation's fixed
// "passkey verification within 5 minutes" rule.
func (s *Server) sensitive(action string, h http.HandlerFunc) http.HandlerFunc {
	guard := pep.Guard{
		Decider: pep.DeciderFunc(s.decideInProcess), Action: action, Resource: decide.ResourceAirlock,
		Params: adminParams, Client: "airlock admin API", ClientIP: clientIP,
		// The in-process decider takes the session authed already found.
		Session: func(*http.Request) string { return "" },
	}.Wrap(h)
	return s.admin(guard.ServeHTTP)
}

// adminParams are the parameters of an admin request: what is changed
// (method and path) and how (the JSON body).
func adminParams(r *http.Request) (any, error) {
	body, err := pep.JSONBody(r)
	if err != nil {
		return nil, airlock.Errorf(airlock.EINVALID, "%v", err)
	}
	return map[string]any{"request": r.Method + " " + r.URL.Path, "body": body}, nil
}

// decideInProcess is the pep.Decider of Airlock's own API: the session is
// the one authed put in the context (or, failing that, req.Session).
func (s *Server) decideInProcess(ctx context.Context, req pep.Request) (*pep.Decision, error) {
	a := sessionFrom(ctx)
	if a == nil {
		if req.Session == "" {
			return nil, airlock.Errorf(airlock.EUNAUTHORIZED, "sign in first")
		}
		var err error
		if a, err = s.authenticateToken(ctx, req.Session); err != nil {
			return nil, err
		}
	}
	res, err := s.decide(ctx, a, req)
	if err != nil {
		return nil, err
	}
	return decisionView(res), nil
}

func (s *Server) decide(ctx context.Context, a *authn, req pep.Request) (*decide.Result, error) {
	if s.Decide == nil {
		return nil, airlock.Errorf(airlock.EUNAVAILABLE, "no policy decision point is configured")
	}
	return s.Decide.Decide(ctx, subject(a), decide.Request{
		Action: req.Action, Resource: req.Resource, Params: req.Params, IP: req.Context.IP,
		UserAgent: truncate(req.Context.UserAgent, 300), Client: req.Context.Client, Proof: req.StepUp,
		RequestID: requestIDFrom(ctx),
	})
}

// decisionView is the wire form of a decision (POST /v1/decide's answer).
func decisionView(res *decide.Result) *pep.Decision {
	d := res.Decision
	out := &pep.Decision{Decision: string(d.Outcome), DecisionID: d.ID, PolicyVersion: d.PolicyVersion,
		Reasons: []pep.Reason{}, Risk: pep.Risk{Score: d.Risk.Score, Signals: []pep.Contribution{}}, Exceptions: d.Exceptions}
	for _, r := range d.Reasons {
		out.Reasons = append(out.Reasons, pep.Reason{Policy: r.Policy, Text: r.Text})
	}
	for _, c := range d.Risk.Signals {
		out.Risk.Signals = append(out.Risk.Signals, pep.Contribution{Signal: c.Signal, Points: c.Points, Text: c.Text})
	}
	if d.Outcome == policy.StepUp && res.StepUp != nil {
		out.StepUp = &pep.StepUpChallenge{Transaction: res.StepUp.ID, MaxAge: d.Obligations.MaxAge, ACR: d.Obligations.ACR,
			URL: res.URL, ExpiresAt: res.StepUp.ExpiresAt}
	}
	return out
}

// handleDecide is POST /v1/decide. The session is the end user's token in
// the body (an enforcement point forwards it), or else the caller's own
// session: its bearer token, or its cookie from a same-origin page.
// context.ip defaults to the caller's address.
func (s *Server) handleDecide(w http.ResponseWriter, r *http.Request) {
	var req pep.Request
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Action == "" || req.Resource == "" || len(req.Action) > 200 || len(req.Resource) > 200 {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "action and resource are required"))
		return
	}
	if req.Context.IP == "" {
		req.Context.IP = clientIP(r)
	} else if _, err := netip.ParseAddr(req.Context.IP); err != nil {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "context.ip %q is not an IP address", truncate(req.Context.IP, 64)))
		return
	}
	if req.Context.UserAgent == "" && req.Session == "" {
		req.Context.UserAgent = r.UserAgent()
	}
	// Break-glass (issue 6): a break-glass token is decided by the
	// break-glass policy (breakglass.go), never by a normal session lookup.
	if breakglass.IsToken(req.Session) {
		s.decideBreakGlass(w, r, req)
		return
	}
	var (
		a   *authn
		err error
	)
	switch {
	case req.Session != "":
		a, err = s.authenticateToken(r.Context(), req.Session)
	case pep.BearerToken(r) != "" || dpopToken(r) != "":
		a, err = s.authenticate(r)
	default:
		// The caller's cookie: only from one of our own pages (checkOrigin
		// lets /v1/decide through for enforcement points, which send no
		// Origin and no cookie).
		if _, cerr := r.Cookie(s.cookieName()); cerr != nil {
			err = airlock.Errorf(airlock.EUNAUTHORIZED, "no session: pass the end user's session token as \"session\"")
		} else if origin := r.Header.Get("Origin"); !slices.Contains(s.Origins, origin) {
			err = airlock.Errorf(airlock.EFORBIDDEN, "request origin %q is not allowed", origin)
		} else {
			a, err = s.authenticate(r)
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.decide(r.Context(), a, req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, decisionView(res))
}

// seen records that user made an accepted request from ip (network
// novelty); without a decision point it does nothing.
func (s *Server) seen(ctx context.Context, userID, ip string) error {
	if s.Decide == nil || s.Decide.Signals == nil {
		return nil
	}
	return s.Decide.Signals.Seen(ctx, userID, ip)
}

// decisionID is the id of the decision that allowed this request, if a
// guard made one.
func decisionID(r *http.Request) string {
	if d := pep.FromContext(r.Context()); d != nil {
		return d.DecisionID
	}
	return ""
}
