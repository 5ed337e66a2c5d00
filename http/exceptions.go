package http

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"time"

	"airlock"
	"airlock/decide"
)

// --- exceptions ---

type exceptionRequest struct {
	User      string    `json:"user"`
	Action    string    `json:"action"`
	Resource  string    `json:"resource"`
	Effect    string    `json:"effect"`
	Owner     string    `json:"owner"`
	Reason    string    `json:"reason"`
	ExpiresAt time.Time `json:"expires_at"`
	// TTL is an alternative to ExpiresAt, in seconds from now.
	TTL int64 `json:"ttl_s"`
}

type exceptionJSON struct {
	*airlock.Exception
	Live bool `json:"live"`
}

func (s *Server) exceptionView(x *airlock.Exception) exceptionJSON {
	return exceptionJSON{Exception: x, Live: s.Now().Before(x.ExpiresAt)}
}

func (s *Server) handleListExceptions(w http.ResponseWriter, r *http.Request) {
	xs, err := s.Store.ListExceptions(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]exceptionJSON, 0, len(xs))
	for _, x := range xs {
		out = append(out, s.exceptionView(x))
	}
	writeJSON(w, http.StatusOK, map[string]any{"exceptions": out})
}

// handleCreateException is POST /v1/admin/exceptions (a sensitive action:
// decided, and stepped up, like any other admin change). An exception
// scoped to the creator's own account is refused (no self-exemption), as
// is one for an account more privileged than the creator's session. One for
// every user (no user) needs a tier-0 session, and decisions never apply it
// to its creator.
func (s *Server) handleCreateException(w http.ResponseWriter, r *http.Request) {
	a := sessionFrom(r.Context())
	var req exceptionRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.Decide == nil {
		s.writeError(w, r, airlock.Errorf(airlock.EUNAVAILABLE, "no policy decision point is configured"))
		return
	}
	now := s.Now().UTC()
	x := &airlock.Exception{ID: airlock.NewID(airlock.PrefixException), Action: req.Action, Resource: req.Resource,
		Effect: req.Effect, Owner: req.Owner, Reason: req.Reason, CreatedBy: a.User.ID, CreatedAt: now, ExpiresAt: req.ExpiresAt.UTC()}
	switch {
	case req.TTL != 0 && !req.ExpiresAt.IsZero():
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "give expires_at or ttl_s, not both"))
		return
	case req.TTL < 0:
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "ttl_s must be positive"))
		return
	case req.TTL > 0:
		x.ExpiresAt = now.Add(time.Duration(min(req.TTL, int64(decide.MaxExceptionLifetime/time.Second)+1)) * time.Second)
	}
	if req.User != "" {
		u, err := s.findUser(r, req.User)
		if err != nil {
			s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "user: %s", airlock.ErrorMessage(err)))
			return
		}
		if u.ID == a.User.ID {
			s.writeError(w, r, airlock.Errorf(airlock.EFORBIDDEN, "you cannot grant yourself an exception; ask another admin"))
			return
		}
		if err := mayManage(a, u.Tier); err != nil {
			s.writeError(w, r, err)
			return
		}
		x.UserID = u.ID
	} else if a.Session.Tier != 0 {
		// No user: every account, tier-0 ones included (never the
		// creator's: decide skips it for them).
		s.writeError(w, r, airlock.Errorf(airlock.EFORBIDDEN, "an exception for every user covers tier-0 accounts: only a tier-0 session may create one"))
		return
	}
	if err := s.Decide.ValidateException(r.Context(), x, now); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Store.CreateException(r.Context(), x); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.record(r, airlock.AuditEvent{Type: "policy.exception_created", Subject: x.ID, UserID: x.UserID, DecisionID: decisionID(r),
		Details: map[string]any{"exception": exceptionDetails(x)}}); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.exceptionView(x))
}

func exceptionDetails(x *airlock.Exception) map[string]any {
	return map[string]any{"id": x.ID, "user_id": x.UserID, "action": x.Action, "resource": x.Resource, "effect": x.Effect,
		"owner": x.Owner, "reason": x.Reason, "created_by": x.CreatedBy, "expires_at": x.ExpiresAt.Format(time.RFC3339Nano)}
}

func (s *Server) handleDeleteException(w http.ResponseWriter, r *http.Request) {
	x, err := s.Store.FindExceptionByID(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Store.DeleteException(r.Context(), x.ID); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.record(r, airlock.AuditEvent{Type: "policy.exception_deleted", Subject: x.ID, UserID: x.UserID, DecisionID: decisionID(r),
		Details: map[string]any{"exception": exceptionDetails(x)}}); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": x.ID})
}

// --- resources ---

type resourceJSON struct {
	Name   string            `json:"name"`
	Tier   int               `json:"tier"`
	Labels map[string]string `json:"labels"`
	// Source is "config" (read-only here) or "api".
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	Version   int64     `json:"version"`
}

func storedResourceView(r *airlock.Resource) resourceJSON {
	return resourceJSON{Name: r.Name, Tier: int(r.Tier), Labels: r.Labels, Source: "api", CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Version: r.Version}
}

func (s *Server) catalog() decide.Catalog {
	if s.Decide == nil {
		return decide.Catalog{}
	}
	return s.Decide.Catalog
}

func (s *Server) handleListResources(w http.ResponseWriter, r *http.Request) {
	out := []resourceJSON{}
	for _, c := range s.catalog().Resources {
		labels := c.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		out = append(out, resourceJSON{Name: c.Name, Tier: int(c.Tier), Labels: labels, Source: "config"})
	}
	stored, err := s.Store.ListResources(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, st := range stored {
		out = append(out, storedResourceView(st))
	}
	writeJSON(w, http.StatusOK, map[string]any{"resources": out})
}

type resourceRequest struct {
	Name   *string            `json:"name"`
	Tier   *int               `json:"tier"`
	Labels *map[string]string `json:"labels"`
}

// mayDefineResource refuses a resource more privileged than the admin's
// session: defining what tier-0 means is for tier-0 sessions.
func mayDefineResource(a *authn, tier airlock.Tier) error {
	if tier < a.Session.Tier {
		return airlock.Errorf(airlock.EFORBIDDEN, "a tier-%d session cannot define or change tier-%d resources", a.Session.Tier, tier)
	}
	return nil
}

func (s *Server) configured(name string) error {
	if _, ok := s.catalog().Resource(name); ok {
		return airlock.Errorf(airlock.EFORBIDDEN, "resource %s is defined in the configuration; change it there", name)
	}
	return nil
}

func (s *Server) handleCreateResource(w http.ResponseWriter, r *http.Request) {
	a := sessionFrom(r.Context())
	var req resourceRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Name == nil || req.Tier == nil {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "name and tier are required"))
		return
	}
	now := s.Now().UTC()
	res := &airlock.Resource{Name: *req.Name, Tier: airlock.Tier(*req.Tier), Labels: map[string]string{}, CreatedAt: now, UpdatedAt: now}
	if req.Labels != nil && *req.Labels != nil {
		res.Labels = *req.Labels
	}
	if err := decide.ValidateResource(res.Name, res.Tier, res.Labels); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.configured(res.Name); err != nil {
		s.writeError(w, r, airlock.Errorf(airlock.ECONFLICT, "%s", airlock.ErrorMessage(err)))
		return
	}
	if err := mayDefineResource(a, res.Tier); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Store.CreateResource(r.Context(), res); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.record(r, airlock.AuditEvent{Type: "resource.created", Subject: res.Name, DecisionID: decisionID(r),
		Details: map[string]any{"name": res.Name, "tier": int(res.Tier), "labels": res.Labels}}); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, storedResourceView(res))
}

func (s *Server) storedResource(r *http.Request) (*airlock.Resource, error) {
	name := r.PathValue("name")
	if err := s.configured(name); err != nil {
		return nil, err
	}
	return s.Store.FindResourceByName(r.Context(), name)
}

func (s *Server) handleUpdateResource(w http.ResponseWriter, r *http.Request) {
	a := sessionFrom(r.Context())
	res, err := s.storedResource(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req resourceRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Name != nil && *req.Name != res.Name {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "a resource's name cannot change"))
		return
	}
	if err := mayDefineResource(a, res.Tier); err != nil {
		s.writeError(w, r, err)
		return
	}
	before := *res
	if req.Tier != nil {
		res.Tier = airlock.Tier(*req.Tier)
	}
	if req.Labels != nil {
		res.Labels = map[string]string{}
		if *req.Labels != nil {
			res.Labels = *req.Labels
		}
	}
	if err := decide.ValidateResource(res.Name, res.Tier, res.Labels); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := mayDefineResource(a, res.Tier); err != nil {
		s.writeError(w, r, err)
		return
	}
	res.UpdatedAt = s.Now().UTC()
	if err := s.Store.UpdateResource(r.Context(), res); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.record(r, airlock.AuditEvent{Type: "resource.updated", Subject: res.Name, DecisionID: decisionID(r), Details: map[string]any{
		"before": map[string]any{"tier": int(before.Tier), "labels": before.Labels},
		"after":  map[string]any{"tier": int(res.Tier), "labels": res.Labels},
	}}); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, storedResourceView(res))
}

func (s *Server) handleDeleteResource(w http.ResponseWriter, r *http.Request) {
	a := sessionFrom(r.Context())
	res, err := s.storedResource(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := mayDefineResource(a, res.Tier); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Store.DeleteResource(r.Context(), res.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.record(r, airlock.AuditEvent{Type: "resource.deleted", Subject: res.Name, DecisionID: decisionID(r),
		Details: map[string]any{"name": res.Name, "tier": int(res.Tier), "labels": res.Labels}}); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": res.Name})
}

// handleCatalog lists the action catalog: every action with its
// sensitivity and per-resource overrides.
func (s *Server) handleCatalog(w http.ResponseWriter, r *http.Request) {
	acts := s.catalog().Actions
	out := make([]map[string]any, 0, len(acts))
	for _, name := range slices.Sorted(maps.Keys(acts)) {
		a := acts[name]
		e := map[string]any{"name": name, "sensitivity": a.Sensitivity}
		if len(a.Resources) > 0 {
			e["resources"] = a.Resources
		}
		out = append(out, e)
	}
	version := ""
	if s.Decide != nil && s.Decide.Engine != nil {
		if set := s.Decide.Engine.Set(); set != nil {
			version = set.Version()
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"actions": out, "policy_version": version})
}

// handlePolicyReload is POST /v1/admin/policy/reload: load the policy
// directory now instead of waiting for the watcher (a sensitive action).
func (s *Server) handlePolicyReload(w http.ResponseWriter, r *http.Request) {
	if s.ReloadPolicy == nil {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "no policy_dir is configured: the embedded default policy set is in use"))
		return
	}
	version, err := s.ReloadPolicy(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.record(r, airlock.AuditEvent{Type: "policy.reload_requested", Subject: version, DecisionID: decisionID(r),
		Details: map[string]any{"policy_version": version}}); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"policy_version": version})
}

// PolicyReloader reloads the policy set and returns its version; an invalid
// set is an error and keeps the one in use.
type PolicyReloader func(ctx context.Context) (string, error)
