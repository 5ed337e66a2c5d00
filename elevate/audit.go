package elevate

import (
	"encoding/base64"
	"time"

	"airlock"
	"airlock/decide"
	"airlock/passkey"
)

// Audit event types of the elevation path (docs/elevation.md):
//
//	elevation.requested         a request made (success) or refused (denied/failure, with the reason)
//	elevation.approval_started  an approver began the passkey ceremony
//	elevation.approval          an approval stored (success) or refused (denied/failure, with the reason)
//	elevation.approved          a request approved (by its quorum or by policy)
//	elevation.denied            a request denied, with the denier's reason
//	elevation.cancelled         a request withdrawn by its requester (or by the system)
//	elevation.expired           a pending request expired
//	elevation.granted           a grant made
//	elevation.ended             a grant ended, with its end reason
//
// RequestID is the access request, GrantID the grant, DecisionID the
// policy decision on the request, SessionID/DeviceID/CredentialID the
// acting person's (the requester's, the approver's, the holder's); the
// edge's HTTP request id is Details["http_request_id"].

// auditMeta is what the edge knows about the call.
type auditMeta struct {
	IP, UserAgent, HTTPRequestID string
}

func metaOf(ask Ask) auditMeta {
	return auditMeta{IP: ask.IP, UserAgent: ask.UserAgent, HTTPRequestID: ask.RequestID}
}

func fromPasskeyMeta(m passkey.Meta) auditMeta {
	return auditMeta{IP: m.IP, UserAgent: m.UserAgent, HTTPRequestID: m.RequestID}
}

func (m auditMeta) passkey() passkey.Meta {
	return passkey.Meta{IP: m.IP, UserAgent: m.UserAgent, RequestID: m.HTTPRequestID}
}

// event starts an audit event.
func event(typ, outcome string, meta auditMeta) airlock.AuditEvent {
	e := airlock.AuditEvent{Type: typ, Outcome: outcome, IP: meta.IP, Details: map[string]any{}}
	if meta.HTTPRequestID != "" {
		e.Details["http_request_id"] = meta.HTTPRequestID
	}
	if meta.UserAgent != "" {
		e.Details["user_agent"] = clip(meta.UserAgent, 256)
	}
	return e
}

// requestEvent is an event about access request r: its id, decision and
// requester, and what it asks for.
func (s *Service) requestEvent(typ, outcome string, r *airlock.AccessRequest, meta auditMeta) airlock.AuditEvent {
	e := event(typ, outcome, meta)
	e.Subject, e.RequestID, e.DecisionID = r.ID, r.ID, r.DecisionID
	e.UserID, e.SessionID, e.DeviceID = r.RequesterID, r.SessionID, r.DeviceID
	if len(r.CredentialID) > 0 {
		e.CredentialID = b64(r.CredentialID)
	}
	e.Details["requester_id"] = r.RequesterID
	e.Details["scope"] = r.Scope.String()
	e.Details["scope_tier"] = int(r.Scope.Tier)
	if r.Duration > 0 {
		e.Details["duration_s"] = int64(r.Duration / time.Second)
	}
	if r.ApprovalRule != "" {
		e.Details["rule"] = r.ApprovalRule
	}
	return e
}

// grantEvent is an event about grant g.
func (s *Service) grantEvent(typ, outcome string, g *airlock.Grant, meta auditMeta) airlock.AuditEvent {
	e := event(typ, outcome, meta)
	e.Subject, e.GrantID, e.RequestID = g.ID, g.ID, g.RequestID
	e.UserID, e.SessionID, e.DeviceID = g.UserID, g.SessionID, g.DeviceID
	if len(g.CredentialID) > 0 {
		e.CredentialID = b64(g.CredentialID)
	}
	e.Details["scope"] = g.Scope.String()
	e.Details["scope_tier"] = int(g.Scope.Tier)
	e.Details["not_before"] = g.NotBefore.Format(time.RFC3339Nano)
	e.Details["not_after"] = g.NotAfter.Format(time.RFC3339Nano)
	return e
}

// subjectFields makes sub the event's actor, with its session, device and
// passkey.
func subjectFields(e *airlock.AuditEvent, sub decide.Subject) {
	if sub.User == nil || sub.Session == nil {
		return
	}
	e.Actor, e.UserID, e.SessionID = sub.User.ID, sub.User.ID, sub.Session.ID
	e.DeviceID, e.CredentialID = sub.Session.DeviceID, b64(sub.Session.CredentialID)
}

// failureOutcome is "failure" when Airlock failed, "denied" when it
// refused.
func failureOutcome(err error) string {
	switch airlock.ErrorCode(err) {
	case airlock.EINTERNAL, airlock.EUNAVAILABLE:
		return airlock.OutcomeFailure
	}
	return airlock.OutcomeDenied
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
