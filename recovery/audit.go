package recovery

import (
	"context"
	"encoding/base64"
	"time"

	"airlock"
	"airlock/decide"
	"airlock/passkey"
)

// Audit event types of the recovery path (docs/recovery.md):
//
//	recovery.opened             a case opened (self-service or help desk)
//	recovery.open_refused       an open refused (unknown, disabled or break-glass account, rate limit, a live case…), with the reason
//	recovery.approved           one officer's approval stored
//	recovery.approval_refused   an approval refused at begin, finish or store, with the reason
//	recovery.quorum_met         the quorum approved: the cool-down started
//	recovery.denied             an officer denied the case (refusals too, outcome denied)
//	recovery.cancelled          the subject, the opener or an officer cancelled it (refusals too)
//	recovery.released           the enrolment token was issued to the claimant (refusals too)
//	recovery.completed          the re-enrolment completed (refusals too)
//	recovery.expired            the case ran past its life
//
// Subject is the subject's user ID and Details["case_id"] the case; Actor
// is who acted ("system" for the sweep and the completion hook).

// event starts an audit event with the edge's metadata.
func event(typ, outcome string, meta passkey.Meta) airlock.AuditEvent {
	e := airlock.AuditEvent{Type: typ, Outcome: outcome, IP: meta.IP, Details: map[string]any{}}
	if meta.RequestID != "" {
		e.Details["http_request_id"] = meta.RequestID
	}
	if meta.UserAgent != "" {
		e.Details["user_agent"] = clip(meta.UserAgent, 256)
	}
	return e
}

// caseEvent is an event about case c.
func caseEvent(typ, outcome string, c *airlock.RecoveryCase, meta passkey.Meta) airlock.AuditEvent {
	e := event(typ, outcome, meta)
	e.Subject, e.UserID = c.SubjectID, c.SubjectID
	e.Details["case_id"] = c.ID
	e.Details["status"] = string(c.Status)
	e.Details["tier"] = int(c.Tier)
	e.Details["required"] = c.Required
	e.Details["via"] = c.Via
	e.Details["opened_by"] = c.OpenedBy
	if c.DeviceID != "" {
		e.Details["device_id"] = c.DeviceID
	}
	return e
}

// actorFields makes sub the event's actor, with its session, device and
// passkey. The event's UserID stays the subject's.
func actorFields(e *airlock.AuditEvent, sub decide.Subject) {
	if sub.User == nil || sub.Session == nil {
		return
	}
	e.Actor, e.SessionID = sub.User.ID, sub.Session.ID
	e.DeviceID, e.CredentialID = sub.Session.DeviceID, b64(sub.Session.CredentialID)
}

// refused audits a refused step (outcome denied, or failure when Airlock
// failed) and returns err, or the audit error if it could not be
// recorded.
func (s *Service) refused(ctx context.Context, typ, stage string, c *airlock.RecoveryCase, id string, actor *decide.Subject, err error, meta passkey.Meta) error {
	var e airlock.AuditEvent
	if c != nil {
		e = caseEvent(typ, failureOutcome(err), c, meta)
	} else {
		e = event(typ, failureOutcome(err), meta)
		if id != "" {
			e.Details["case_id"] = id
		}
	}
	if actor != nil {
		actorFields(&e, *actor)
	}
	e.Reason = string(ReasonOf(err))
	e.Details["stage"] = stage
	e.Details["message"] = airlock.ErrorMessage(err)
	if aerr := s.audit.Record(ctx, e); aerr != nil {
		return aerr
	}
	return err
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

// rfc3339 formats t for payloads and details.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func clip(s string, max int) string {
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max]) + "…"
}
