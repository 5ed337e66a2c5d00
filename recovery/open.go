package recovery

import (
	"context"
	"time"

	"airlock"
	"airlock/decide"
	"airlock/passkey"
)

// Open is a request to open a case.
type Open struct {
	// Subject is the login name of the account to recover.
	Subject string
	// Reason is why (required, at most MaxReasonLen, no control characters).
	Reason string
	// DeviceID optionally fixes the re-enrolment device now (help desk).
	DeviceID string
	// Opener is the signed-in help-desk operator, or nil for a self-service
	// case from the login page.
	Opener *decide.Subject
}

// Opened is the answer to Open.
type Opened struct {
	// Case is nil for a self-service open of an unknown, disabled or
	// break-glass account (or one refused by the per-subject limits): the
	// edge answers the same as for a real one, so that nobody learns which
	// accounts exist.
	Case *airlock.RecoveryCase
	// Secret is the claim secret, shown once: with it the claimant follows
	// the case (Status) and claims the enrolment token (Claim).
	Secret string
}

// liveStatuses are the statuses of a case that is not final.
var liveStatuses = []airlock.RecoveryStatus{airlock.RecoveryPending, airlock.RecoveryCoolingDown, airlock.RecoveryReleased}

// Open opens a case for the account named o.Subject, with a reason
// (required, ≤ MaxReasonLen characters, no control characters: EINVALID).
//
// Self-service (o.Opener nil, from the login page): the answer is the same
// whether or not a case was opened — a claim secret and no error. An
// unknown, disabled or break-glass account, a subject over its daily
// limit (OpensPerDay) or with a case already live gets a random secret that
// matches nothing (Opened.Case nil); nothing is stored but the
// "recovery.open_refused" audit record, whose reason is never shown.
// A device cannot be fixed by the claimant (EINVALID).
//
// Help desk (o.Opener set): the session's user must hold RoleHelpdesk or
// the airlock-admin role (EFORBIDDEN); refusals are errors (ENOTFOUND,
// EFORBIDDEN, ERATELIMIT, ECONFLICT for a live case), audited. A DeviceID
// given must be a device of the subject that is not revoked.
//
// The case is pending, needs Quorum[subject tier] officers and expires
// after CaseTTL. It is audited "recovery.opened"; the subject is notified
// at once (NotifyOpened, with the cancel URL) and the officers who could
// approve it are told (NotifyToOfficers). If the record or the subject's
// notice cannot be written, the case is cancelled and the error returned.
func (s *Service) Open(ctx context.Context, o Open, meta passkey.Meta) (*Opened, error) {
	self := o.Opener == nil
	var opener *decide.Subject
	if !self {
		if err := checkSubject(*o.Opener); err != nil {
			return nil, err
		}
		opener = o.Opener
	}
	refused := func(stage string, err error) error {
		e := event("recovery.open_refused", failureOutcome(err), meta)
		e.Reason = string(ReasonOf(err))
		e.Details["stage"] = stage
		e.Details["message"] = airlock.ErrorMessage(err)
		e.Details["account"] = clip(o.Subject, 128)
		if self {
			e.Details["via"] = airlock.OpenedBySelf
		} else {
			e.Details["via"] = airlock.OpenedByHelpdesk
			actorFields(&e, *opener)
		}
		if aerr := s.audit.Record(ctx, e); aerr != nil {
			return aerr
		}
		return err
	}
	if !self && !hasRole(*opener, RoleHelpdesk, airlock.RoleAdmin) {
		return nil, refused("role", refuse(airlock.EFORBIDDEN, ReasonNotHelpdesk, "only help-desk operators (%s) open recovery cases for others", RoleHelpdesk))
	}
	if o.Subject == "" || len(o.Subject) > 256 {
		return nil, refused("input", refuse(airlock.EINVALID, ReasonInvalidAccount, "the account name is required (at most 256 bytes)"))
	}
	if why := checkText(o.Reason); why != "" {
		return nil, refused("input", refuse(airlock.EINVALID, ReasonInvalidReason, "the reason %s", why))
	}
	if self && o.DeviceID != "" {
		return nil, refused("input", refuse(airlock.EINVALID, ReasonWrongDevice, "only the help desk fixes the device when opening a case"))
	}
	secret, err := newSecret()
	if err != nil {
		return nil, err
	}
	// neutral is the self-service answer to a refused open: the same shape
	// as a real one, after the refusal is on record.
	neutral := func(stage string, err error) (*Opened, error) {
		if !self || failureOutcome(err) == airlock.OutcomeFailure {
			return nil, refused(stage, err)
		}
		if aerr := refused(stage, err); aerr != err {
			return nil, aerr
		}
		return &Opened{Secret: secret}, nil
	}

	u, err := s.store.FindUserByName(ctx, o.Subject)
	if airlock.ErrorCode(err) == airlock.ENOTFOUND {
		return neutral("account", refuse(airlock.ENOTFOUND, ReasonUnknownAccount, "no account named %q", clip(o.Subject, 64)))
	} else if err != nil {
		return nil, refused("account", err)
	}
	switch {
	case u.Kind == airlock.UserBreakGlass:
		return neutral("account", refuse(airlock.EFORBIDDEN, ReasonBreakGlass, "break-glass accounts are not recovered this way: an administrator re-seals them"))
	case u.Disabled:
		return neutral("account", refuse(airlock.EFORBIDDEN, ReasonUserDisabled, "account %s is disabled", u.Name))
	case !u.Tier.Valid():
		return nil, refused("account", airlock.Errorf(airlock.EINTERNAL, "account %s has an invalid tier", u.Name))
	}
	now := s.now()
	var dev *airlock.Device
	if o.DeviceID != "" {
		if dev, err = s.subjectDevice(ctx, u, o.DeviceID); err != nil {
			return nil, refused("device", err)
		}
	}
	n, err := s.store.HitRateLimit(ctx, "recovery-open:"+u.ID, 24*time.Hour, now)
	if err != nil {
		return nil, refused("rate_limit", err)
	}
	if n > s.cfg.OpensPerDay {
		return neutral("rate_limit", refuse(airlock.ERATELIMIT, ReasonRateLimited, "too many recovery cases for %s today; try again tomorrow", u.Name))
	}

	s.openMu.Lock()
	defer s.openMu.Unlock()
	live, err := s.store.ListRecoveryCases(ctx, airlock.RecoveryCaseFilter{SubjectID: u.ID, Statuses: liveStatuses, Limit: 1})
	if err != nil {
		return nil, refused("store", err)
	}
	if len(live) > 0 {
		return neutral("live_case", refuse(airlock.ECONFLICT, ReasonCaseOpen, "%s already has a recovery case in progress (%s)", u.Name, live[0].ID))
	}
	c := &airlock.RecoveryCase{ID: airlock.NewID(airlock.PrefixRecoveryCase), SubjectID: u.ID, OpenedBy: u.ID, Via: airlock.OpenedBySelf,
		Reason: o.Reason, Tier: u.Tier, Required: s.cfg.Quorum[u.Tier], Status: airlock.RecoveryPending,
		SecretHash: secretHash(secret), CreatedAt: now, ExpiresAt: now.Add(s.cfg.CaseTTL), UpdatedAt: now}
	if !self {
		c.OpenedBy, c.Via = opener.User.ID, airlock.OpenedByHelpdesk
	}
	if dev != nil {
		c.DeviceID = dev.ID
	}
	if err := s.store.CreateRecoveryCase(ctx, c); err != nil {
		return nil, refused("store", err)
	}
	e := caseEvent("recovery.opened", airlock.OutcomeSuccess, c, meta)
	if opener != nil {
		actorFields(&e, *opener)
	} else {
		e.Actor = u.ID
	}
	e.Details["reason"] = c.Reason
	e.Details["expires_at"] = rfc3339(c.ExpiresAt)
	if err := s.audit.Record(ctx, e); err != nil {
		s.abandon(ctx, c, "the case could not be audited")
		return nil, err
	}
	openerName := u.Name
	if opener != nil {
		openerName = opener.User.Name
	}
	// The subject learns of every case at once: an attacker's case is
	// their cue to cancel it.
	if err := s.notifier.Notify(ctx, u.ID, NotifyOpened, map[string]any{"case_id": c.ID, "opened_by": openerName, "via": c.Via,
		"reason": decide.DisplayText(c.Reason), "ip": meta.IP, "expires_at": c.ExpiresAt, "cancel_url": s.CancelURL(c.ID)}); err != nil {
		s.abandon(ctx, c, "the subject could not be notified")
		return nil, err
	}
	if err := s.notifyOfficers(ctx, c, u, openerName); err != nil {
		// The officers' notice is a convenience: the case is listed for
		// them all the same.
		if s.cfg.Logger != nil {
			s.cfg.Logger.Warn("recovery: officers not notified", "case", c.ID, "err", err)
		}
	}
	return &Opened{Case: c, Secret: secret}, nil
}

// abandon cancels case c after a failed step (best effort: the step's own
// error is what the caller returns).
func (s *Service) abandon(ctx context.Context, c *airlock.RecoveryCase, note string) {
	cp := *c
	now := s.now()
	cp.Status, cp.ResolvedAt, cp.ResolvedBy, cp.Note, cp.UpdatedAt = airlock.RecoveryCancelled, now, "system", note, now
	if err := s.store.UpdateRecoveryCase(ctx, &cp); err == nil {
		*c = cp
	} else if s.cfg.Logger != nil {
		s.cfg.Logger.Error("recovery: could not cancel a case after a failed step", "case", c.ID, "err", err)
	}
}

// notifyOfficers tells every officer who could approve c (NotifyToOfficers).
func (s *Service) notifyOfficers(ctx context.Context, c *airlock.RecoveryCase, subject *airlock.User, openerName string) error {
	users, err := s.store.ListUsers(ctx)
	if err != nil {
		return err
	}
	payload := map[string]any{"case_id": c.ID, "subject": subject.Name, "subject_display_name": decide.DisplayText(subject.DisplayName),
		"opened_by": openerName, "via": c.Via, "reason": decide.DisplayText(c.Reason), "tier": int(c.Tier), "required": c.Required,
		"expires_at": c.ExpiresAt, "approval_url": s.ApprovalURL(c.ID)}
	for _, u := range users {
		if u.ID == c.SubjectID || u.ID == c.OpenedBy || u.Disabled || u.Tier > c.Tier || !hasRole(decide.Subject{User: u}, RoleOfficer) {
			continue
		}
		if err := s.notifier.Notify(ctx, u.ID, NotifyToOfficers, payload); err != nil {
			return err
		}
	}
	return nil
}

// subjectDevice returns device id if it is the subject's own (not shared)
// and not revoked.
func (s *Service) subjectDevice(ctx context.Context, u *airlock.User, id string) (*airlock.Device, error) {
	d, err := s.store.FindDeviceByID(ctx, id)
	if airlock.ErrorCode(err) == airlock.ENOTFOUND {
		return nil, refuse(airlock.EINVALID, ReasonWrongDevice, "unknown device %q", clip(id, 64))
	} else if err != nil {
		return nil, err
	}
	if d.Owner != u.ID {
		return nil, refuse(airlock.EFORBIDDEN, ReasonWrongDevice, "device %s is not %s's own device (a shared or someone else's device cannot receive a recovery)", d.Name, u.Name)
	}
	if d.Trust == airlock.TrustRevoked {
		return nil, refuse(airlock.EFORBIDDEN, ReasonDeviceUntrusted, "device %s is revoked", d.Name)
	}
	return d, nil
}

// Status returns the case named by a claim secret (the claimant's view).
// An unknown secret — also the one a refused self-service open returned —
// is ENOTFOUND with a message that does not say which: the edge shows it
// like a case still waiting.
func (s *Service) Status(ctx context.Context, secret string) (*airlock.RecoveryCase, error) {
	c, err := s.bySecret(ctx, secret)
	if err != nil {
		return nil, err
	}
	if !c.Status.Final() && !s.now().Before(c.ExpiresAt) {
		if err := s.expire(ctx, c); err != nil && airlock.ErrorCode(err) != airlock.ECONFLICT {
			return nil, err
		}
		return s.store.FindRecoveryCaseByID(ctx, c.ID)
	}
	return c, nil
}

// bySecret finds the case of a claim secret.
func (s *Service) bySecret(ctx context.Context, secret string) (*airlock.RecoveryCase, error) {
	if secret == "" || len(secret) > 128 {
		return nil, refuse(airlock.ENOTFOUND, ReasonUnknownCase, "no recovery case can be followed with this code")
	}
	c, err := s.store.FindRecoveryCaseBySecret(ctx, secretHash(secret))
	if airlock.ErrorCode(err) == airlock.ENOTFOUND {
		return nil, refuse(airlock.ENOTFOUND, ReasonUnknownCase, "no recovery case can be followed with this code")
	}
	return c, err
}

// findCase loads case id (ENOTFOUND with a reason if none).
func (s *Service) findCase(ctx context.Context, id string) (*airlock.RecoveryCase, error) {
	if id == "" || len(id) > 64 {
		return nil, refuse(airlock.ENOTFOUND, ReasonUnknownCase, "unknown recovery case")
	}
	c, err := s.store.FindRecoveryCaseByID(ctx, id)
	if airlock.ErrorCode(err) == airlock.ENOTFOUND {
		return nil, refuse(airlock.ENOTFOUND, ReasonUnknownCase, "unknown recovery case %q", clip(id, 64))
	}
	return c, err
}

// mayView reports whether viewer may see cases: an officer, a help-desk
// operator or an admin, on a live session.
func (s *Service) mayView(viewer decide.Subject) error {
	if err := checkSubject(viewer); err != nil {
		return err
	}
	if !hasRole(viewer, RoleOfficer, RoleHelpdesk, airlock.RoleAdmin) {
		return refuse(airlock.EFORBIDDEN, ReasonNotAllowed, "only recovery officers, the help desk and admins see recovery cases")
	}
	if !viewer.Session.IsLive(s.now()) {
		return refuse(airlock.EUNAUTHORIZED, ReasonSessionEnded, "your session has ended; sign in again")
	}
	return nil
}

// View is a case with its approvals and what it still needs.
type View struct {
	Case      *airlock.RecoveryCase       `json:"case"`
	Subject   *airlock.User               `json:"subject"`
	Approvals []*airlock.RecoveryApproval `json:"approvals"`
	// Missing is how many more approvals the case needs (0 once met).
	Missing int `json:"missing"`
	// CanApprove says whether viewer may approve it now (and why not).
	CanApprove bool   `json:"can_approve"`
	WhyNot     string `json:"why_not,omitempty"`
}

// Get returns case id to an officer, help-desk operator or admin (else
// EFORBIDDEN), with its approvals, how many it still misses and whether
// viewer may approve it now. A case found past its life is expired first.
func (s *Service) Get(ctx context.Context, id string, viewer decide.Subject) (*View, error) {
	if err := s.mayView(viewer); err != nil {
		return nil, err
	}
	c, err := s.findCase(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if !c.Status.Final() && !now.Before(c.ExpiresAt) {
		if err := s.expire(ctx, c); err != nil && airlock.ErrorCode(err) != airlock.ECONFLICT {
			return nil, err
		}
		if c, err = s.findCase(ctx, id); err != nil {
			return nil, err
		}
	}
	v := &View{Case: c, Approvals: []*airlock.RecoveryApproval{}}
	if v.Subject, err = s.store.FindUserByID(ctx, c.SubjectID); err != nil {
		return nil, err
	}
	as, err := s.store.ListRecoveryApprovals(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	if as != nil {
		v.Approvals = as
	}
	if c.Status == airlock.RecoveryPending {
		counted, err := s.countable(ctx, c, as)
		if err != nil {
			return nil, err
		}
		v.Missing = max(c.Required-counted, 0)
	}
	if err := s.approvable(ctx, c, viewer, now); err != nil {
		v.WhyNot = airlock.ErrorMessage(err)
	} else {
		v.CanApprove = true
	}
	return v, nil
}

// List returns cases to an officer, help-desk operator or admin (else
// EFORBIDDEN), newest first: the pending ones when pendingOnly.
func (s *Service) List(ctx context.Context, viewer decide.Subject, pendingOnly bool) ([]*airlock.RecoveryCase, error) {
	if err := s.mayView(viewer); err != nil {
		return nil, err
	}
	f := airlock.RecoveryCaseFilter{Limit: 500}
	if pendingOnly {
		f.Statuses = []airlock.RecoveryStatus{airlock.RecoveryPending}
	}
	cs, err := s.store.ListRecoveryCases(ctx, f)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		cs = []*airlock.RecoveryCase{}
	}
	return cs, nil
}
