package recovery

import (
	"context"
	"encoding/json"
	"time"

	"airlock"
	"airlock/passkey"
)

// cancellable checks that c may still be cancelled: pending, cooling down
// or released, and not past its life (one found past it is expired).
func (s *Service) cancellable(ctx context.Context, c *airlock.RecoveryCase, now time.Time) error {
	if c.Status.Final() {
		return refuse(airlock.ECONFLICT, ReasonNotCancellable, "this recovery case is already %s", c.Status)
	}
	if !now.Before(c.ExpiresAt) {
		if err := s.expire(ctx, c); err != nil && airlock.ErrorCode(err) != airlock.ECONFLICT {
			return err
		}
		return refuse(airlock.EEXPIRED, ReasonCaseExpired, "this recovery case expired at %s", rfc3339(c.ExpiresAt))
	}
	return nil
}

// BeginCancel starts the subject's cancel of case id with any still-valid
// passkey (passkey.BeginHolderConfirm, KindRecoveryCancel, over
// CaseDigest): no session is needed. Refused for a case that is final or
// expired, and when the subject has no valid passkey left. Refusals are
// audited "recovery.cancelled" (outcome denied, stage begin).
func (s *Service) BeginCancel(ctx context.Context, id string, meta passkey.Meta) (*passkey.Begin, error) {
	c, err := s.findCase(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.cancellable(ctx, c, s.now()); err != nil {
		return nil, s.refused(ctx, "recovery.cancelled", "begin", c, id, nil, err, meta)
	}
	b, err := s.passkeys.BeginHolderConfirm(ctx, passkey.KindRecoveryCancel, c.SubjectID, c.ID, CaseDigest(c))
	if err != nil {
		return nil, s.refused(ctx, "recovery.cancelled", "begin", c, id, nil, err, meta)
	}
	return b, nil
}

// FinishCancel completes the subject's cancel: the assertion must be
// user-verified, by an unrevoked passkey of the subject on a device not
// revoked, over the challenge derived from the case's current digest (a
// ceremony of another case, or of a case changed since, is refused). The
// case becomes cancelled (ResolvedBy = the subject), audited
// "recovery.cancelled" (refusals too), and the subject is notified.
func (s *Service) FinishCancel(ctx context.Context, ceremonyID string, credentialJSON json.RawMessage, meta passkey.Meta) (*airlock.RecoveryCase, error) {
	var c *airlock.RecoveryCase
	digestOf := func(ctx context.Context, ref string) ([]byte, error) {
		var err error
		if c, err = s.findCase(ctx, ref); err != nil {
			return nil, err
		}
		if err := s.cancellable(ctx, c, s.now()); err != nil {
			return nil, err
		}
		return CaseDigest(c), nil
	}
	conf, err := s.passkeys.FinishHolderConfirm(ctx, passkey.KindRecoveryCancel, ceremonyID, credentialJSON, "", digestOf, meta)
	if err != nil {
		return nil, s.refused(ctx, "recovery.cancelled", "finish", c, "", nil, err, meta)
	}
	if conf.User.ID != c.SubjectID {
		// FinishHolderConfirm only accepts the ceremony user's passkeys;
		// this is a second lock on the same door.
		err := refuse(airlock.EFORBIDDEN, ReasonNotAllowed, "only the subject of the case cancels it with a passkey")
		return nil, s.refused(ctx, "recovery.cancelled", "finish", c, "", nil, err, meta)
	}
	if err := s.resolve(ctx, c, airlock.RecoveryCancelled, c.SubjectID, "cancelled by the subject", s.now()); err != nil {
		return nil, s.refused(ctx, "recovery.cancelled", "store", c, c.ID, nil, err, meta)
	}
	e := caseEvent("recovery.cancelled", airlock.OutcomeSuccess, c, meta)
	e.Actor, e.DeviceID, e.CredentialID = c.SubjectID, conf.Device.ID, b64(conf.Credential.ID)
	e.Details["by_subject"] = true
	e.Details["challenge"] = conf.Challenge
	if err := s.audit.Record(ctx, e); err != nil {
		return nil, err
	}
	_ = s.notifier.Notify(ctx, c.SubjectID, NotifyCancelled, map[string]any{"case_id": c.ID, "status": string(c.Status), "by": "you"})
	return c, nil
}
