package breakglass

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"time"

	"airlock"
	"airlock/decide"
	"airlock/passkey"
)

// checkReviewer refuses a subject that may not review (or end) a use of
// accountID ("" for any): a session of Config.ReviewerRole at tier 0, not
// the account itself, not a break-glass account.
func (s *Service) checkReviewer(by decide.Subject, accountID string) error {
	if by.User == nil || by.Session == nil || by.Device == nil {
		return refuse(airlock.EUNAUTHORIZED, ReasonReviewer, "a signed-in reviewer session is required")
	}
	if !hasRole(by.User, s.cfg.ReviewerRole) || by.User.Kind == airlock.UserBreakGlass || by.User.Disabled {
		return refuse(airlock.EFORBIDDEN, ReasonReviewer, "break-glass reviews need the %s role", s.cfg.ReviewerRole)
	}
	if by.Session.Tier != 0 {
		return refuse(airlock.EFORBIDDEN, ReasonReviewer, "break-glass reviews need a tier-0 session (this one is %s)", by.Session.Tier)
	}
	if accountID != "" && by.User.ID == accountID {
		return refuse(airlock.EFORBIDDEN, ReasonReviewer, "a break-glass account cannot review its own use")
	}
	return nil
}

// List returns events to a reviewer (unreviewed only when asked), newest
// first.
func (s *Service) List(ctx context.Context, viewer decide.Subject, unreviewedOnly bool) ([]*airlock.BreakGlassEvent, error) {
	if err := s.checkReviewer(viewer, ""); err != nil {
		return nil, err
	}
	return s.store.ListBreakGlassEvents(ctx, airlock.BreakGlassFilter{Unreviewed: unreviewedOnly})
}

// eventDigest covers what a review attests: the use as recorded.
func eventDigest(ev *airlock.BreakGlassEvent) []byte {
	b, _ := json.Marshal(struct {
		V             int      `json:"v"`
		ID            string   `json:"id"`
		AccountID     string   `json:"account_id"`
		CredentialID  []byte   `json:"credential_id"`
		Justification string   `json:"justification"`
		Scopes        []string `json:"scopes"`
		IP            string   `json:"ip"`
		StartedAt     int64    `json:"started_at_us"`
		EndsAt        int64    `json:"ends_at_us"`
		EndedAt       int64    `json:"ended_at_us"`
		EndReason     string   `json:"end_reason"`
		AlertIDs      []string `json:"alert_ids"`
		Offline       bool     `json:"offline"`
	}{1, ev.ID, ev.AccountID, ev.CredentialID, ev.Justification, ev.Scopes, ev.IP,
		ev.StartedAt.UnixMicro(), ev.EndsAt.UnixMicro(), ev.EndedAt.UnixMicro(), ev.EndReason, ev.AlertIDs, ev.Offline})
	h := sha256.Sum256(b)
	return h[:]
}

// reviewDigest is SHA-256(event digest ‖ 0x00 ‖ notes).
func reviewDigest(ev *airlock.BreakGlassEvent, notes string) []byte {
	h := sha256.New()
	h.Write(eventDigest(ev))
	h.Write([]byte{0})
	h.Write([]byte(notes))
	return h.Sum(nil)
}

// reviewable loads event id and refuses what may not be reviewed by by:
// the reviewer (checkReviewer), a use not ended yet (ReasonNotEnded: end
// it first; a use past its end is ended here as expired) and one reviewed
// already (ECONFLICT).
func (s *Service) reviewable(ctx context.Context, id string, by decide.Subject, meta passkey.Meta) (*airlock.BreakGlassEvent, error) {
	if err := s.checkReviewer(by, ""); err != nil {
		return nil, err
	}
	ev, err := s.store.FindBreakGlassEventByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.checkReviewer(by, ev.AccountID); err != nil {
		return nil, err
	}
	if ev.Reviewed() {
		return nil, airlock.Errorf(airlock.ECONFLICT, "break-glass use %s was reviewed already", ev.ID)
	}
	if ev.EndedAt.IsZero() {
		if s.now().Before(ev.EndsAt) {
			return nil, refuse(airlock.EINVALID, ReasonNotEnded, "break-glass use %s is still live; end it before the review", ev.ID)
		}
		if err := s.end(ctx, ev.ID, ev.TokenHash, ev.AccountID, "", "expired", meta); err != nil && airlock.ErrorCode(err) != airlock.ECONFLICT {
			return nil, err
		}
		if ev, err = s.store.FindBreakGlassEventByID(ctx, id); err != nil {
			return nil, err
		}
	}
	return ev, nil
}

// confirmer is the reviewer as a bound-ceremony confirmer: their session,
// on its device, with a passkey fit for tier 0.
func confirmer(by decide.Subject) passkey.Confirmer {
	return passkey.Confirmer{UserID: by.User.ID, DeviceID: by.Session.DeviceID, SessionID: by.Session.ID, Tier: 0}
}

// BeginReview starts a reviewer's post-incident review of event id
// (passkey.KindBreakGlassReview over SHA-256(event digest ‖ 0 ‖ notes)):
// notes are required; see reviewable for who may review what.
func (s *Service) BeginReview(ctx context.Context, id string, reviewer decide.Subject, notes string, meta passkey.Meta) (*passkey.Begin, error) {
	if err := checkText("review notes", notes); err != nil {
		return nil, err
	}
	ev, err := s.reviewable(ctx, id, reviewer, meta)
	if err != nil {
		return nil, err
	}
	return s.passkeys.BeginConfirm(ctx, passkey.KindBreakGlassReview, confirmer(reviewer), ev.ID, reviewDigest(ev, notes))
}

// FinishReview records the review (the same notes must be given: they are
// bound into the challenge). It re-checks everything BeginReview did,
// verifies the reviewer's passkey assertion, records the review (once),
// audits "breakglass.reviewed" and, with RequireReseal, revokes the passkey
// that was used (audited "credential.revoked"; also noted in the local
// revocation list so that the static file cannot revive it).
func (s *Service) FinishReview(ctx context.Context, ceremonyID string, credentialJSON json.RawMessage, reviewer decide.Subject, notes string, meta passkey.Meta) (*airlock.BreakGlassEvent, error) {
	if err := checkText("review notes", notes); err != nil {
		return nil, err
	}
	if err := s.checkReviewer(reviewer, ""); err != nil {
		return nil, err
	}
	var ev *airlock.BreakGlassEvent
	digestOf := func(ctx context.Context, ref string) ([]byte, error) {
		var err error
		ev, err = s.reviewable(ctx, ref, reviewer, meta)
		if err != nil {
			return nil, err
		}
		return reviewDigest(ev, notes), nil
	}
	conf, err := s.passkeys.FinishConfirm(ctx, passkey.KindBreakGlassReview, ceremonyID, credentialJSON, confirmer(reviewer), "", digestOf, meta)
	if err != nil {
		e := event("breakglass.review_refused", airlock.OutcomeDenied, meta)
		e.Actor, e.SessionID = reviewer.User.ID, reviewer.Session.ID
		e.Reason = string(passkey.ReasonOf(err))
		e.Details["message"] = airlock.ErrorMessage(err)
		if ev != nil {
			e.Subject, e.UserID = ev.AccountID, ev.AccountID
			e.Details["event_id"] = ev.ID
		}
		_ = s.record(ctx, e)
		return nil, err
	}
	now := s.now().UTC()
	if err := s.store.ReviewBreakGlassEvent(ctx, ev.ID, reviewer.User.ID, notes, now); err != nil {
		return nil, err
	}
	e := event("breakglass.reviewed", airlock.OutcomeSuccess, meta)
	e.Actor, e.Subject, e.UserID, e.SessionID, e.DeviceID = reviewer.User.ID, ev.AccountID, ev.AccountID, reviewer.Session.ID, conf.Device.ID
	e.CredentialID = b64(conf.Credential.ID)
	e.Details["event_id"], e.Details["notes"], e.Details["challenge"] = ev.ID, notes, conf.Challenge
	e.Details["reseal"] = s.cfg.RequireReseal
	if err := s.record(ctx, e); err != nil {
		return nil, err
	}
	if s.cfg.RequireReseal && len(ev.CredentialID) > 0 {
		if err := s.revokeUsed(ctx, ev, reviewer, meta); err != nil {
			return nil, err
		}
	}
	return s.store.FindBreakGlassEventByID(ctx, ev.ID)
}

// revokeUsed revokes the passkey a use was made with (re-sealing).
func (s *Service) revokeUsed(ctx context.Context, ev *airlock.BreakGlassEvent, reviewer decide.Subject, meta passkey.Meta) error {
	now := s.now().UTC()
	if err := s.revokedSpool.append(revokedRecord{CredentialID: ev.CredentialID, At: now, EventID: ev.ID}); err != nil {
		s.logger.Error("break-glass: the local revocation list could not be written; re-export the static credential file", "err", err)
	}
	err := s.store.RevokeCredential(ctx, ev.CredentialID, now)
	e := event("credential.revoked", airlock.OutcomeSuccess, meta)
	e.Actor, e.Subject, e.UserID, e.CredentialID = reviewer.User.ID, ev.AccountID, ev.AccountID, b64(ev.CredentialID)
	e.Reason = "breakglass_reseal"
	e.Details["event_id"] = ev.ID
	if err != nil {
		e.Outcome = airlock.OutcomeFailure
		e.Details["message"] = airlock.ErrorMessage(err)
	}
	if aerr := s.record(ctx, e); aerr != nil {
		return aerr
	}
	return err
}

// revokedRecord is a line of the local revocation list.
type revokedRecord struct {
	CredentialID b64url    `json:"credential_id"`
	At           time.Time `json:"at"`
	EventID      string    `json:"event_id"`
}

// locallyRevoked returns the credential ids of the local revocation list.
func (s *Service) locallyRevoked() (map[string]bool, error) {
	lines, err := s.revokedSpool.read()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, l := range lines {
		var r revokedRecord
		if err := json.Unmarshal(l, &r); err != nil {
			return nil, err
		}
		out[string(r.CredentialID)] = true
	}
	return out, nil
}
