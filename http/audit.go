package http

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"airlock"
	"airlock/audit"
)

// AuditStatusFunc reports whether the latest audit checkpoint verifies
// (audit.CheckLatest with the server's verifier keys).
type AuditStatusFunc func(ctx context.Context) audit.Status

// auditQuery is a parsed audit listing request.
type auditQuery struct {
	Filter airlock.AuditFilter
	// Desc lists newest first (order=desc).
	Desc bool
}

// parseAuditQuery reads the filters and paging of GET /v1/audit:
// user, session, grant, type (exact, or a prefix ending in "."), since and
// until (RFC 3339; since inclusive, until exclusive), after and before
// (sequence numbers, exclusive), order (asc, the default, or desc) and
// limit (1–1000, default 100).
func parseAuditQuery(q url.Values) (auditQuery, error) {
	aq := auditQuery{Filter: airlock.AuditFilter{UserID: q.Get("user"), SessionID: q.Get("session"),
		GrantID: q.Get("grant"), Type: q.Get("type"), Limit: 100}}
	f := &aq.Filter
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"after", &f.AfterSeq}, {"before", &f.BeforeSeq}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return aq, airlock.Errorf(airlock.EINVALID, "%s must be a sequence number", p.name)
			}
			*p.dst = n
		}
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return aq, airlock.Errorf(airlock.EINVALID, "%s must be an RFC 3339 time", p.name)
			}
			*p.dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return aq, airlock.Errorf(airlock.EINVALID, "limit must be 1-1000")
		}
		f.Limit = n
	}
	switch q.Get("order") {
	case "", "asc":
	case "desc":
		aq.Desc, f.Newest = true, true
	default:
		return aq, airlock.Errorf(airlock.EINVALID, "order must be asc or desc")
	}
	for name, v := range map[string]string{"user": f.UserID, "session": f.SessionID, "grant": f.GrantID, "type": f.Type} {
		if len(v) > 256 {
			return aq, airlock.Errorf(airlock.EINVALID, "%s is too long", name)
		}
	}
	return aq, nil
}

// details returns the query as the details of its audit.read event.
func (aq auditQuery) details(via string) map[string]any {
	f := aq.Filter
	d := map[string]any{"via": via, "limit": f.Limit}
	for k, v := range map[string]string{"user": f.UserID, "session": f.SessionID, "grant": f.GrantID, "type": f.Type} {
		if v != "" {
			d[k] = v
		}
	}
	if f.AfterSeq > 0 {
		d["after"] = f.AfterSeq
	}
	if f.BeforeSeq > 0 {
		d["before"] = f.BeforeSeq
	}
	if !f.Since.IsZero() {
		d["since"] = f.Since.UTC().Format(time.RFC3339Nano)
	}
	if !f.Until.IsZero() {
		d["until"] = f.Until.UTC().Format(time.RFC3339Nano)
	}
	if aq.Desc {
		d["order"] = "desc"
	}
	return d
}

// next returns the query of the following page after evs, or nil.
func (aq auditQuery) next(q url.Values, evs []*airlock.AuditEvent) url.Values {
	if len(evs) < aq.Filter.Limit || len(evs) == 0 {
		return nil
	}
	n := url.Values{}
	for k, v := range q {
		n[k] = v
	}
	last := strconv.FormatInt(evs[len(evs)-1].Seq, 10)
	if aq.Desc {
		n.Set("before", last)
	} else {
		n.Set("after", last)
	}
	return n
}

// auditPage is the body of GET /v1/audit.
type auditPage struct {
	Events []*airlock.AuditEvent `json:"events"`
	// Next is the path and query of the next page, absent on the last.
	Next string `json:"next,omitempty"`
}

// handleAudit serves GET /v1/audit (and its old name /v1/admin/audit):
// admins only, decided as airlock.audit.read, and the read is itself
// audited (audit.read) before anything is returned: a read that cannot be
// recorded returns nothing.
func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	aq, err := parseAuditQuery(q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.record(r, airlock.AuditEvent{Type: "audit.read", Details: aq.details("api")}); err != nil {
		s.writeError(w, r, err)
		return
	}
	evs, err := s.Audit.List(r.Context(), aq.Filter)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	page := auditPage{Events: evs}
	if page.Events == nil {
		page.Events = []*airlock.AuditEvent{}
	}
	if n := aq.next(q, evs); n != nil {
		page.Next = "/v1/audit?" + n.Encode()
	}
	writeJSON(w, http.StatusOK, page)
}

// auditData is what the audit page shows.
type auditData struct {
	Filter airlock.AuditFilter
	Events []*airlock.AuditEvent
	// Older links to the next page of older events, if any.
	Older string
	// Checkpoint is whether the latest checkpoint verifies; nil when the
	// server has no checkpoint verifier configured.
	Checkpoint *audit.Status
}

// dataAudit loads the admin audit page: newest first, filtered by user,
// session, grant and type, with the verdict on the latest checkpoint. The
// read is audited.
func (s *Server) dataAudit(r *http.Request) (any, error) {
	q := r.URL.Query()
	q.Set("order", "desc")
	q.Del("limit")
	aq, err := parseAuditQuery(q)
	if err != nil {
		return nil, err
	}
	aq.Filter.Limit = 200
	if err := s.record(r, airlock.AuditEvent{Type: "audit.read", Details: aq.details("ui")}); err != nil {
		return nil, err
	}
	evs, err := s.Audit.List(r.Context(), aq.Filter)
	if err != nil {
		return nil, err
	}
	d := auditData{Filter: aq.Filter, Events: evs}
	if n := aq.next(q, evs); n != nil {
		n.Del("order")
		d.Older = "/admin/audit?" + n.Encode()
	}
	if s.AuditStatus != nil {
		st := s.AuditStatus(r.Context())
		d.Checkpoint = &st
	}
	return d, nil
}
