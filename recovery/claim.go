package recovery

import (
	"context"
	"time"

	"airlock"
	"airlock/passkey"
)

// Claim releases the single-use enrolment token of the case named by
// secret, once its cool-down has passed, bound to deviceID (or the device
// fixed at opening): a device of the subject, trusted and compliant. It
// returns the token's secret (for the /enrol link).
//
// The case must be cooling down with CoolDownUntil passed (else
// EFORBIDDEN, ReasonCoolingDown), or released with its token spent
// without completing (a failed enrolment, rolled back) or expired unused —
// a released case whose token is still live is ECONFLICT (ReasonTokenLive).
// A device other than the one fixed at opening, someone else's or a shared
// device, or one not trusted and compliant is refused. The token is issued
// (passkey.IssueEnrolmentToken, SystemIssuer, airlock.PurposeRecovery) and
// the case moves to released with it (compare-and-set: of concurrent
// claims one wins; the loser's token belongs to no case and completes
// nothing). Audited "recovery.released" (refusals too); the subject is
// notified (NotifyReleased).
func (s *Service) Claim(ctx context.Context, secret, deviceID string, meta passkey.Meta) (string, *airlock.EnrolmentToken, error) {
	c, err := s.bySecret(ctx, secret)
	if err != nil {
		return "", nil, s.refused(ctx, "recovery.released", "claim", nil, "", nil, err, meta)
	}
	fail := func(err error) (string, *airlock.EnrolmentToken, error) {
		return "", nil, s.refused(ctx, "recovery.released", "claim", c, c.ID, nil, err, meta)
	}
	now := s.now()
	if err := s.claimable(ctx, c, now); err != nil {
		return fail(err)
	}
	if deviceID == "" {
		deviceID = c.DeviceID
	}
	if deviceID == "" {
		return fail(refuse(airlock.EINVALID, ReasonWrongDevice, "name the device to enrol the new passkey on"))
	}
	if c.DeviceID != "" && deviceID != c.DeviceID {
		return fail(refuse(airlock.EFORBIDDEN, ReasonWrongDevice, "this case is bound to another device"))
	}
	u, err := s.store.FindUserByID(ctx, c.SubjectID)
	if err != nil {
		return fail(err)
	}
	if u.Disabled {
		return fail(refuse(airlock.EFORBIDDEN, ReasonUserDisabled, "account %s is disabled", u.Name))
	}
	d, err := s.subjectDevice(ctx, u, deviceID)
	if err != nil {
		return fail(err)
	}
	if err := s.checkDevice(d, now); err != nil {
		return fail(err)
	}
	tokSecret, tok, err := s.passkeys.IssueEnrolmentToken(ctx, passkey.SystemIssuer, u.ID, d.ID, airlock.PurposeRecovery, meta)
	if err != nil {
		return fail(err)
	}
	was := *c
	next := *c
	next.Status, next.DeviceID, next.EnrolTokenID, next.UpdatedAt = airlock.RecoveryReleased, d.ID, tok.ID, now
	if err := s.store.UpdateRecoveryCase(ctx, &next); err != nil {
		if airlock.ErrorCode(err) == airlock.ECONFLICT {
			err = refuse(airlock.ECONFLICT, ReasonNotClaimable, "this recovery case changed meanwhile; look at it again")
		}
		return fail(err)
	}
	c = &next
	e := caseEvent("recovery.released", airlock.OutcomeSuccess, c, meta)
	e.Actor, e.DeviceID = passkey.SystemIssuer, d.ID
	e.Details["enrol_token_id"] = tok.ID
	e.Details["token_expires_at"] = rfc3339(tok.ExpiresAt)
	if err := s.audit.Record(ctx, e); err != nil {
		// Unaudited, the token must not be usable: the case lets go of it
		// (a token of no case completes nothing).
		was.Version = c.Version
		was.UpdatedAt = s.now()
		if uerr := s.store.UpdateRecoveryCase(ctx, &was); uerr != nil && s.cfg.Logger != nil {
			s.cfg.Logger.Error("recovery: could not withdraw an unaudited release", "case", c.ID, "err", uerr)
		}
		return "", nil, err
	}
	_ = s.notifier.Notify(ctx, c.SubjectID, NotifyReleased, map[string]any{"case_id": c.ID, "device": d.Name,
		"token_expires_at": tok.ExpiresAt, "cancel_url": s.CancelURL(c.ID)})
	return tokSecret, tok, nil
}

// claimable checks that c's enrolment token may be released now.
func (s *Service) claimable(ctx context.Context, c *airlock.RecoveryCase, now time.Time) error {
	if c.Status.Final() {
		return refuse(airlock.ECONFLICT, ReasonNotClaimable, "this recovery case is %s", c.Status)
	}
	if !now.Before(c.ExpiresAt) {
		if err := s.expire(ctx, c); err != nil && airlock.ErrorCode(err) != airlock.ECONFLICT {
			return err
		}
		return refuse(airlock.EEXPIRED, ReasonCaseExpired, "this recovery case expired at %s", rfc3339(c.ExpiresAt))
	}
	switch c.Status {
	case airlock.RecoveryPending:
		return refuse(airlock.EFORBIDDEN, ReasonNotClaimable, "this recovery case still waits for the officers' approval")
	case airlock.RecoveryCoolingDown:
		if now.Before(c.CoolDownUntil) {
			return refuse(airlock.EFORBIDDEN, ReasonCoolingDown, "the cool-down lasts until %s", rfc3339(c.CoolDownUntil))
		}
		return nil
	case airlock.RecoveryReleased:
		tok, err := s.store.FindEnrolmentTokenByID(ctx, c.EnrolTokenID)
		if airlock.ErrorCode(err) == airlock.ENOTFOUND {
			return nil
		} else if err != nil {
			return err
		}
		if tok.UsedAt.IsZero() && now.Before(tok.ExpiresAt) {
			return refuse(airlock.ECONFLICT, ReasonTokenLive, "an enrolment link was already released for this case; it is valid until %s", rfc3339(tok.ExpiresAt))
		}
		return nil
	}
	return refuse(airlock.ECONFLICT, ReasonNotClaimable, "this recovery case is %s", c.Status)
}
