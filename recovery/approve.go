package recovery

import (
	"context"
	"encoding/json"
	"time"

	"airlock"
	"airlock/decide"
	"airlock/device"
	"airlock/passkey"
)

// officerOf checks the standing part of an officer's eligibility for case
// c: never the subject, never the opener, enabled with RoleOfficer, the
// account's and the session's tier at least as privileged as the case's.
func officerOf(c *airlock.RecoveryCase, sub decide.Subject) error {
	if sub.User.ID == c.SubjectID {
		return refuse(airlock.EFORBIDDEN, ReasonSelfApproval, "you cannot approve or deny the recovery of your own account")
	}
	if sub.User.ID == c.OpenedBy {
		return refuse(airlock.EFORBIDDEN, ReasonOpenerApproval, "you opened this case: someone else must approve or deny it")
	}
	if !hasRole(sub, RoleOfficer) {
		return refuse(airlock.EFORBIDDEN, ReasonNotOfficer, "only recovery officers (%s) approve or deny recovery cases", RoleOfficer)
	}
	if sub.User.Tier > c.Tier || sub.Session.Tier > c.Tier {
		return refuse(airlock.EFORBIDDEN, ReasonOfficerTier,
			"this is a tier-%d account: its recovery needs an officer with a tier-%d account and session (yours: account tier %d, session tier %d)",
			c.Tier, c.Tier, sub.User.Tier, sub.Session.Tier)
	}
	return nil
}

// pending checks that c is pending and not past its life (one found past
// it is expired on the spot: EEXPIRED).
func (s *Service) pending(ctx context.Context, c *airlock.RecoveryCase, now time.Time) error {
	if c.Status != airlock.RecoveryPending {
		return refuse(airlock.ECONFLICT, ReasonNotPending, "this recovery case is %s, not pending", c.Status)
	}
	if !now.Before(c.ExpiresAt) {
		if err := s.expire(ctx, c); err != nil && airlock.ErrorCode(err) != airlock.ECONFLICT {
			return err
		}
		return refuse(airlock.EEXPIRED, ReasonCaseExpired, "this recovery case expired at %s", rfc3339(c.ExpiresAt))
	}
	return nil
}

// checkDevice refuses a device that is not trusted and compliant.
func (s *Service) checkDevice(d *airlock.Device, now time.Time) error {
	if d == nil || d.Trust != airlock.TrustTrusted {
		name, trust := "", airlock.TrustState("")
		if d != nil {
			name, trust = d.Name, d.Trust
		}
		return refuse(airlock.EFORBIDDEN, ReasonDeviceUntrusted, "device %s is not trusted (%s)", name, trust)
	}
	if c := device.Evaluate(d, s.cfg.DeviceRules, now); !c.Compliant {
		return refuse(airlock.EFORBIDDEN, ReasonDeviceNonCompliant, "device %s is not compliant: %s", d.Name, c)
	}
	return nil
}

// approvable checks everything that lets officer approve c now, short of
// the passkey assertion: separation of duties and role (officerOf), the
// case pending and alive, the session live, the device trusted and
// compliant, no earlier approval by them.
func (s *Service) approvable(ctx context.Context, c *airlock.RecoveryCase, officer decide.Subject, now time.Time) error {
	if err := officerOf(c, officer); err != nil {
		return err
	}
	if err := s.pending(ctx, c, now); err != nil {
		return err
	}
	if !officer.Session.IsLive(now) {
		return refuse(airlock.EUNAUTHORIZED, ReasonSessionEnded, "your session has ended; sign in again")
	}
	if err := s.checkDevice(officer.Device, now); err != nil {
		return err
	}
	as, err := s.store.ListRecoveryApprovals(ctx, c.ID)
	if err != nil {
		return err
	}
	for _, a := range as {
		if a.ApproverID == officer.User.ID {
			return refuse(airlock.ECONFLICT, ReasonAlreadyApproved, "you already approved this recovery case")
		}
	}
	return nil
}

// countable returns how many distinct officers' approvals of c still
// count: the officer still enabled, an officer, of the case's tier, and
// neither the subject nor the opener, their passkey not revoked.
func (s *Service) countable(ctx context.Context, c *airlock.RecoveryCase, as []*airlock.RecoveryApproval) (int, error) {
	seen := map[string]bool{}
	for _, a := range as {
		if seen[a.ApproverID] || a.ApproverID == c.SubjectID || a.ApproverID == c.OpenedBy {
			continue
		}
		u, err := s.store.FindUserByID(ctx, a.ApproverID)
		if airlock.ErrorCode(err) == airlock.ENOTFOUND {
			continue
		} else if err != nil {
			return 0, err
		}
		if u.Tier > c.Tier || !hasRole(decide.Subject{User: u}, RoleOfficer) {
			continue
		}
		cr, err := s.store.FindCredentialByID(ctx, a.CredentialID)
		if airlock.ErrorCode(err) == airlock.ENOTFOUND {
			continue
		} else if err != nil {
			return 0, err
		}
		if cr.IsRevoked() || cr.UserID != a.ApproverID {
			continue
		}
		seen[a.ApproverID] = true
	}
	return len(seen), nil
}

func confirmer(sub decide.Subject, tier airlock.Tier) passkey.Confirmer {
	return passkey.Confirmer{UserID: sub.User.ID, DeviceID: sub.Session.DeviceID, SessionID: sub.Session.ID, Tier: tier}
}

// BeginApproval starts officer's approval of case id: a
// passkey.KindRecoveryApproval ceremony whose challenge is SHA-256(nonce ‖
// ApprovalDigest(case, verification)). Refused (audited
// "recovery.approval_refused", stage begin) for the subject, the opener, a
// non-officer, an officer whose account or session tier is less privileged
// than the case's, a session no longer live, a device not trusted and
// compliant, an officer who already approved, a case not pending (or
// expired), a verification note missing or malformed (EINVALID), and when
// the officer has no passkey on the session's device fit for the case's
// tier (never a synced one for tier 0).
func (s *Service) BeginApproval(ctx context.Context, id string, officer decide.Subject, verification string, meta passkey.Meta) (*passkey.Begin, error) {
	if err := checkSubject(officer); err != nil {
		return nil, err
	}
	c, err := s.findCase(ctx, id)
	if err != nil {
		return nil, s.refused(ctx, "recovery.approval_refused", "begin", nil, id, &officer, err, meta)
	}
	if err := s.approvable(ctx, c, officer, s.now()); err != nil {
		return nil, s.refused(ctx, "recovery.approval_refused", "begin", c, id, &officer, err, meta)
	}
	if why := checkText(verification); why != "" {
		err := refuse(airlock.EINVALID, ReasonInvalidVerification, "how you verified the person's identity %s", why)
		return nil, s.refused(ctx, "recovery.approval_refused", "begin", c, id, &officer, err, meta)
	}
	b, err := s.passkeys.BeginConfirm(ctx, passkey.KindRecoveryApproval, confirmer(officer, c.Tier), c.ID, ApprovalDigest(c, verification))
	if err != nil {
		return nil, s.refused(ctx, "recovery.approval_refused", "begin", c, id, &officer, err, meta)
	}
	return b, nil
}

// FinishApproval completes it; the same verification note must be given
// (the challenge was derived from it: another note is refused,
// passkey.ReasonRequestBinding). The ceremony is consumed first (single
// use); the case it was begun for is checked again as at begin; the
// assertion must be user-verified, by a passkey of officer on the session's
// device fit for the case's tier, over the challenge derived from the
// case's current digest and the note. The approval's record
// ("recovery.approved") is written before it is stored. When the distinct
// officers whose approvals still count reach Required, the case moves
// (compare-and-set: of concurrent final approvals one moves it) to
// cooling_down until now + CoolDown[tier], audited "recovery.quorum_met",
// and the subject is notified (NotifyCoolDown, with the cancel URL).
// Refusals are audited "recovery.approval_refused".
func (s *Service) FinishApproval(ctx context.Context, ceremonyID string, credentialJSON json.RawMessage, officer decide.Subject, verification string, meta passkey.Meta) (*airlock.RecoveryCase, error) {
	if err := checkSubject(officer); err != nil {
		return nil, err
	}
	var c *airlock.RecoveryCase
	digestOf := func(ctx context.Context, ref string) ([]byte, error) {
		var err error
		if c, err = s.findCase(ctx, ref); err != nil {
			return nil, err
		}
		if err := s.approvable(ctx, c, officer, s.now()); err != nil {
			return nil, err
		}
		if why := checkText(verification); why != "" {
			return nil, refuse(airlock.EINVALID, ReasonInvalidVerification, "how you verified the person's identity %s", why)
		}
		return ApprovalDigest(c, verification), nil
	}
	conf, err := s.passkeys.FinishConfirm(ctx, passkey.KindRecoveryApproval, ceremonyID, credentialJSON, confirmer(officer, 0), "", digestOf, meta)
	if err != nil {
		return nil, s.refused(ctx, "recovery.approval_refused", "finish", c, "", &officer, err, meta)
	}
	a := &airlock.RecoveryApproval{CaseID: c.ID, ApproverID: officer.User.ID, SessionID: officer.Session.ID, DeviceID: conf.Device.ID,
		CredentialID: conf.Credential.ID, Verification: verification, Challenge: conf.Challenge, At: conf.At.Truncate(time.Microsecond)}
	e := caseEvent("recovery.approved", airlock.OutcomeSuccess, c, meta)
	actorFields(&e, officer)
	e.CredentialID = b64(conf.Credential.ID)
	e.Details["verification"] = verification
	e.Details["digest"] = b64(conf.Digest)
	e.Details["challenge"] = conf.Challenge
	e.Details["nonce"] = b64(conf.Nonce)
	if err := s.audit.Record(ctx, e); err != nil {
		return nil, err
	}
	if err := s.store.AddRecoveryApproval(ctx, a); err != nil {
		if airlock.ErrorCode(err) == airlock.ECONFLICT {
			err = s.approvalConflict(ctx, c.ID, officer.User.ID, err)
		}
		return nil, s.refused(ctx, "recovery.approval_refused", "store", c, c.ID, &officer, err, meta)
	}
	return s.checkQuorum(ctx, c.ID, officer, meta)
}

// approvalConflict explains an ECONFLICT from AddRecoveryApproval.
func (s *Service) approvalConflict(ctx context.Context, id, officerID string, cause error) error {
	c, err := s.findCase(ctx, id)
	if err != nil {
		return err
	}
	if c.Status != airlock.RecoveryPending {
		return &airlock.Error{Code: airlock.ECONFLICT, Message: "this recovery case is already " + string(c.Status), Err: &refusal{reason: ReasonNotPending}}
	}
	return &airlock.Error{Code: airlock.ECONFLICT, Message: "you already approved this recovery case", Err: &refusal{reason: ReasonAlreadyApproved}}
}

// checkQuorum moves case id to cooling_down if its countable approvals
// reach Required, and returns the case as it now stands.
func (s *Service) checkQuorum(ctx context.Context, id string, officer decide.Subject, meta passkey.Meta) (*airlock.RecoveryCase, error) {
	c, err := s.findCase(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Status != airlock.RecoveryPending {
		return c, nil
	}
	as, err := s.store.ListRecoveryApprovals(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	n, err := s.countable(ctx, c, as)
	if err != nil {
		return nil, err
	}
	if n < c.Required {
		return c, nil
	}
	now := s.now()
	next := *c
	next.Status, next.CoolDownUntil, next.UpdatedAt = airlock.RecoveryCoolingDown, now.Add(s.cfg.CoolDown[c.Tier]), now
	if err := s.store.UpdateRecoveryCase(ctx, &next); err != nil {
		if airlock.ErrorCode(err) != airlock.ECONFLICT {
			return nil, err
		}
		// Another final approval (or a cancel, the expiry) got there
		// first; this approval is recorded all the same.
		return s.findCase(ctx, id)
	}
	c = &next
	approvers := make([]string, 0, len(as))
	for _, a := range as {
		approvers = append(approvers, a.ApproverID)
	}
	e := caseEvent("recovery.quorum_met", airlock.OutcomeSuccess, c, meta)
	actorFields(&e, officer)
	e.Details["approvers"] = approvers
	e.Details["cool_down_until"] = rfc3339(c.CoolDownUntil)
	if err := s.audit.Record(ctx, e); err != nil {
		return nil, err
	}
	if err := s.notifier.Notify(ctx, c.SubjectID, NotifyCoolDown, map[string]any{"case_id": c.ID, "cool_down_until": c.CoolDownUntil,
		"reason": decide.DisplayText(c.Reason), "cancel_url": s.CancelURL(c.ID)}); err != nil {
		// The subject must hear of it before a token can be released:
		// the case is cancelled rather than left silent.
		s.abandon(ctx, c, "the subject could not be notified of the cool-down")
		return nil, err
	}
	return c, nil
}

// Deny refuses pending case id, by an officer eligible for it (officerOf:
// not the subject nor the opener, a recovery officer of the case's tier)
// or an admin who is neither the subject nor the opener, with a reason
// (required: EINVALID). No passkey assertion is needed: a denial grants
// nothing. Audited "recovery.denied" (refusals too); the subject is
// notified (NotifyCancelled with status denied).
func (s *Service) Deny(ctx context.Context, id string, officer decide.Subject, reason string, meta passkey.Meta) (*airlock.RecoveryCase, error) {
	if err := checkSubject(officer); err != nil {
		return nil, err
	}
	c, err := s.findCase(ctx, id)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*airlock.RecoveryCase, error) {
		return nil, s.refused(ctx, "recovery.denied", "deny", c, id, &officer, err, meta)
	}
	if err := officerOf(c, officer); err != nil {
		if ReasonOf(err) == ReasonSelfApproval || ReasonOf(err) == ReasonOpenerApproval || !isAdmin(officer) {
			return fail(err)
		}
	}
	if why := checkText(reason); why != "" {
		return fail(refuse(airlock.EINVALID, ReasonInvalidReason, "the reason %s", why))
	}
	now := s.now()
	if !officer.Session.IsLive(now) {
		return fail(refuse(airlock.EUNAUTHORIZED, ReasonSessionEnded, "your session has ended; sign in again"))
	}
	if err := s.pending(ctx, c, now); err != nil {
		return fail(err)
	}
	if err := s.resolve(ctx, c, airlock.RecoveryDenied, officer.User.ID, reason, now); err != nil {
		return fail(err)
	}
	e := caseEvent("recovery.denied", airlock.OutcomeSuccess, c, meta)
	actorFields(&e, officer)
	e.Details["reason"] = reason
	if err := s.audit.Record(ctx, e); err != nil {
		return nil, err
	}
	_ = s.notifier.Notify(ctx, c.SubjectID, NotifyCancelled, map[string]any{"case_id": c.ID, "status": string(c.Status),
		"by": officer.User.Name, "reason": decide.DisplayText(reason)})
	return c, nil
}

// Abort cancels case id (pending, cooling down or released) by its
// help-desk opener, an officer eligible for it, or an admin who is not the
// subject, with a reason (required). Audited "recovery.cancelled"
// (refusals too); the subject is notified.
func (s *Service) Abort(ctx context.Context, id string, by decide.Subject, reason string, meta passkey.Meta) (*airlock.RecoveryCase, error) {
	if err := checkSubject(by); err != nil {
		return nil, err
	}
	c, err := s.findCase(ctx, id)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*airlock.RecoveryCase, error) {
		return nil, s.refused(ctx, "recovery.cancelled", "abort", c, id, &by, err, meta)
	}
	opener := c.Via == airlock.OpenedByHelpdesk && by.User.ID == c.OpenedBy && !by.User.Disabled
	if !opener && by.User.ID != c.SubjectID && !isAdmin(by) {
		if err := officerOf(c, by); err != nil {
			return fail(err)
		}
	}
	if by.User.ID == c.SubjectID && !opener {
		return fail(refuse(airlock.EFORBIDDEN, ReasonNotAllowed, "the subject cancels their case with a passkey (the cancel link of the notice)"))
	}
	if why := checkText(reason); why != "" {
		return fail(refuse(airlock.EINVALID, ReasonInvalidReason, "the reason %s", why))
	}
	now := s.now()
	if !by.Session.IsLive(now) {
		return fail(refuse(airlock.EUNAUTHORIZED, ReasonSessionEnded, "your session has ended; sign in again"))
	}
	if err := s.cancellable(ctx, c, now); err != nil {
		return fail(err)
	}
	if err := s.resolve(ctx, c, airlock.RecoveryCancelled, by.User.ID, reason, now); err != nil {
		return fail(err)
	}
	e := caseEvent("recovery.cancelled", airlock.OutcomeSuccess, c, meta)
	actorFields(&e, by)
	e.Details["reason"] = reason
	e.Details["by_subject"] = false
	if err := s.audit.Record(ctx, e); err != nil {
		return nil, err
	}
	_ = s.notifier.Notify(ctx, c.SubjectID, NotifyCancelled, map[string]any{"case_id": c.ID, "status": string(c.Status),
		"by": by.User.Name, "reason": decide.DisplayText(reason)})
	return c, nil
}

// resolve moves c to a final status (compare-and-set on its version); a
// case changed meanwhile is ECONFLICT naming its status now.
func (s *Service) resolve(ctx context.Context, c *airlock.RecoveryCase, status airlock.RecoveryStatus, by, note string, now time.Time) error {
	next := *c
	next.Status, next.ResolvedAt, next.ResolvedBy, next.Note, next.UpdatedAt = status, now, by, note, now
	if err := s.store.UpdateRecoveryCase(ctx, &next); err != nil {
		if airlock.ErrorCode(err) != airlock.ECONFLICT {
			return err
		}
		cur, ferr := s.findCase(ctx, c.ID)
		if ferr != nil {
			return ferr
		}
		return refuse(airlock.ECONFLICT, ReasonNotCancellable, "this recovery case changed meanwhile: it is %s", cur.Status)
	}
	*c = next
	return nil
}

// expire marks c expired (by "system") and audits "recovery.expired";
// ECONFLICT if it changed meanwhile.
func (s *Service) expire(ctx context.Context, c *airlock.RecoveryCase) error {
	now := s.now()
	next := *c
	next.Status, next.ResolvedAt, next.ResolvedBy, next.UpdatedAt = airlock.RecoveryExpired, now, "system", now
	if err := s.store.UpdateRecoveryCase(ctx, &next); err != nil {
		return err
	}
	was := c.Status
	*c = next
	e := caseEvent("recovery.expired", airlock.OutcomeSuccess, c, passkey.Meta{})
	e.Actor = "system"
	e.Details["was"] = string(was)
	e.Details["expires_at"] = rfc3339(c.ExpiresAt)
	return s.audit.Record(ctx, e)
}
