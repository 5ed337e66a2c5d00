package recovery

import (
	"bytes"
	"context"
	"errors"

	"airlock"
	"airlock/decide"
	"airlock/elevate"
	"airlock/passkey"
)

// Complete is the passkey.RecoveryHook: it runs after a recovery enrolment
// stored the new passkey. The case released with this very token must
// exist (ReasonWrongEnrolment otherwise: a token of no case, or of a case
// cancelled meanwhile, completes nothing), be alive, and name the enrolled
// user and device; the device must still be trusted and compliant. The
// case moves to completed first (compare-and-set, so a concurrent cancel
// either wins or loses cleanly); then every other passkey of the subject
// is revoked (unless KeepOldCredentials; each audited "credential.revoked"),
// every session of the subject ended and every grant ended (EndRecovered),
// the RiskRecovery signal recorded, and "recovery.completed" audited. If
// any of that fails the case goes back to released (its token spent, so it
// may be claimed again) and the error is returned: package passkey then
// revokes the new passkey. What was already revoked or ended stays so
// (fail closed).
func (s *Service) Complete(ctx context.Context, e *passkey.Enrolled, meta passkey.Meta) error {
	if e == nil || e.Token == nil || e.User == nil || e.Device == nil || e.Credential == nil || e.Token.Purpose != airlock.PurposeRecovery {
		return refuse(airlock.EINTERNAL, ReasonWrongEnrolment, "not a recovery enrolment")
	}
	fail := func(c *airlock.RecoveryCase, err error) error {
		return s.refused(ctx, "recovery.completed", "complete", c, "", nil, err, meta)
	}
	cs, err := s.store.ListRecoveryCases(ctx, airlock.RecoveryCaseFilter{EnrolTokenID: e.Token.ID, Limit: 2})
	if err != nil {
		return fail(nil, err)
	}
	if len(cs) != 1 {
		return fail(nil, refuse(airlock.EFORBIDDEN, ReasonWrongEnrolment, "this enrolment link belongs to no recovery case"))
	}
	c := cs[0]
	now := s.now()
	switch {
	case c.Status != airlock.RecoveryReleased:
		return fail(c, refuse(airlock.ECONFLICT, ReasonNotClaimable, "this recovery case is %s", c.Status))
	case !now.Before(c.ExpiresAt):
		return fail(c, refuse(airlock.EEXPIRED, ReasonCaseExpired, "this recovery case expired at %s", rfc3339(c.ExpiresAt)))
	case e.User.ID != c.SubjectID || e.Device.ID != c.DeviceID || e.Credential.UserID != c.SubjectID:
		return fail(c, refuse(airlock.EFORBIDDEN, ReasonWrongEnrolment, "this enrolment does not match its recovery case"))
	}
	d, err := s.store.FindDeviceByID(ctx, c.DeviceID)
	if err != nil {
		return fail(c, err)
	}
	if err := s.checkDevice(d, now); err != nil {
		return fail(c, err)
	}
	released := *c
	if err := s.resolve(ctx, c, airlock.RecoveryCompleted, c.SubjectID, "recovered", now); err != nil {
		return fail(c, err)
	}
	revoked, err := s.endOld(ctx, c, e, meta)
	if err == nil {
		ev := caseEvent("recovery.completed", airlock.OutcomeSuccess, c, meta)
		ev.Actor, ev.DeviceID, ev.CredentialID = passkey.SystemIssuer, d.ID, b64(e.Credential.ID)
		ev.Details["enrol_token_id"] = e.Token.ID
		ev.Details["revoked_credentials"] = revoked
		ev.Details["kept_old_credentials"] = s.cfg.KeepOldCredentials
		err = s.audit.Record(ctx, ev)
	}
	if err != nil {
		// Back to released: the token is spent, so the claimant may claim
		// a new one; the new passkey is revoked by package passkey.
		back := released
		back.Version, back.UpdatedAt = c.Version, s.now()
		if uerr := s.store.UpdateRecoveryCase(ctx, &back); uerr != nil && s.cfg.Logger != nil {
			s.cfg.Logger.Error("recovery: could not reopen a case whose completion failed", "case", c.ID, "err", uerr)
		}
		return fail(&back, err)
	}
	_ = s.notifier.Notify(ctx, c.SubjectID, NotifyCompleted, map[string]any{"case_id": c.ID, "device": decide.DisplayText(d.Name),
		"revoked_credentials": len(revoked), "cancel_url": s.CancelURL(c.ID)})
	return nil
}

// endOld revokes the subject's other passkeys (unless configured to keep
// them), ends their sessions and grants and records the risk signal. It
// returns the ids of the passkeys it revoked.
func (s *Service) endOld(ctx context.Context, c *airlock.RecoveryCase, en *passkey.Enrolled, meta passkey.Meta) ([]string, error) {
	var revoked []string
	if !s.cfg.KeepOldCredentials {
		creds, err := s.store.ListCredentialsByUser(ctx, c.SubjectID)
		if err != nil {
			return nil, err
		}
		for _, cr := range creds {
			if cr.IsRevoked() || bytes.Equal(cr.ID, en.Credential.ID) {
				continue
			}
			err := s.store.RevokeCredential(ctx, cr.ID, s.now())
			if airlock.ErrorCode(err) == airlock.ECONFLICT {
				err = nil // revoked meanwhile
			}
			ev := event("credential.revoked", airlock.OutcomeSuccess, meta)
			ev.Actor, ev.Subject, ev.UserID, ev.DeviceID, ev.CredentialID = passkey.SystemIssuer, b64(cr.ID), c.SubjectID, cr.DeviceID, b64(cr.ID)
			ev.Reason = EndRecovered
			ev.Details["case_id"] = c.ID
			if err != nil {
				ev.Outcome = airlock.OutcomeFailure
				ev.Details["message"] = airlock.ErrorMessage(err)
			}
			if aerr := s.audit.Record(ctx, ev); aerr != nil {
				return revoked, errors.Join(err, aerr)
			}
			if err != nil {
				return revoked, err
			}
			revoked = append(revoked, b64(cr.ID))
		}
	}
	if err := s.sessions.EndUser(ctx, c.SubjectID, EndRecovered, passkey.SystemIssuer); err != nil {
		return revoked, err
	}
	if err := s.elevation.EndGrantsFor(ctx, elevate.Target{UserID: c.SubjectID}, EndRecovered, passkey.SystemIssuer); err != nil {
		return revoked, err
	}
	if err := s.store.RecordRiskEvent(ctx, c.SubjectID, airlock.RiskRecovery, s.now()); err != nil {
		return revoked, err
	}
	return revoked, nil
}

// Sweep expires cases past ExpiresAt (audited "recovery.expired") and
// returns how many.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	n := 0
	for {
		cs, err := s.store.ListRecoveryCasesToExpire(ctx, s.now(), 100)
		if err != nil {
			return n, err
		}
		done := 0
		for _, c := range cs {
			if err := s.expire(ctx, c); err != nil {
				if airlock.ErrorCode(err) == airlock.ECONFLICT {
					continue
				}
				return n, err
			}
			n++
			done++
		}
		if len(cs) < 100 || done == 0 {
			return n, nil
		}
	}
}
