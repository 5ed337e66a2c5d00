package elevate

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"time"

	"airlock"
	"airlock/decide"
	"airlock/device"
	"airlock/passkey"
)

// View is a request with everything an approver must see.
type View struct {
	Request   *airlock.AccessRequest `json:"request"`
	Requester *airlock.User          `json:"requester"`
	// Device is the requester's device (nil if it left the inventory).
	Device *airlock.Device `json:"device"`
	// DeviceCompliant is the requester device's compliance now.
	DeviceCompliant bool                `json:"device_compliant"`
	Approvals       []*airlock.Approval `json:"approvals"`
	// Rule is the approval rule and Missing what it still lacks.
	Rule    Rule           `json:"rule"`
	Missing []Quorum       `json:"missing"`
	Grant   *airlock.Grant `json:"grant,omitempty"`
}

// findRequest loads request id (ENOTFOUND with a reason if none).
func (s *Service) findRequest(ctx context.Context, id string) (*airlock.AccessRequest, error) {
	if id == "" {
		return nil, refuse(airlock.ENOTFOUND, ReasonUnknownRequest, "unknown access request")
	}
	r, err := s.store.FindAccessRequestByID(ctx, id)
	if airlock.ErrorCode(err) == airlock.ENOTFOUND {
		return nil, refuse(airlock.ENOTFOUND, ReasonUnknownRequest, "unknown access request %q", clip(id, 64))
	}
	return r, err
}

// mayApprove checks the standing part of approver eligibility: not the
// requester, enabled, a member of at least one of the rule's groups, the
// user's and the session's tier at least as privileged as the scope's. It
// returns the approver's groups in the rule.
func mayApprove(r *airlock.AccessRequest, rule Rule, sub decide.Subject) ([]string, error) {
	if sub.User.ID == r.RequesterID {
		return nil, refuse(airlock.EFORBIDDEN, ReasonSelfApproval, "you cannot approve or deny your own request (you may cancel it)")
	}
	if sub.User.Disabled {
		return nil, refuse(airlock.EFORBIDDEN, ReasonUserDisabled, "your account is disabled")
	}
	groups := ruleGroups(rule, sub.User)
	if len(groups) == 0 {
		return nil, refuse(airlock.EFORBIDDEN, ReasonNotInGroup, "approval rule %q needs members of %s; you are in none of them",
			r.ApprovalRule, strings.Join(rule.Groups(), ", "))
	}
	if sub.User.Tier > r.Scope.Tier || sub.Session.Tier > r.Scope.Tier {
		return nil, refuse(airlock.EFORBIDDEN, ReasonApproverTier,
			"%s is a tier-%d scope: an approver needs a tier-%d account and session (yours: account tier %d, session tier %d)",
			r.Scope, r.Scope.Tier, r.Scope.Tier, sub.User.Tier, sub.Session.Tier)
	}
	return groups, nil
}

// pendingRule checks that r is still pending and not expired (an expired
// one is marked expired on the spot: EEXPIRED), that its record still
// hashes to its digest, and returns its rule (a rule no longer configured
// refuses: fail closed).
func (s *Service) pendingRule(ctx context.Context, r *airlock.AccessRequest, now time.Time, meta auditMeta) (Rule, error) {
	if r.Status != airlock.RequestPending {
		return Rule{}, refuse(airlock.ECONFLICT, ReasonNotPending, "this request is already %s", r.Status)
	}
	if !now.Before(r.ExpiresAt) {
		if err := s.expire(ctx, r, now, meta); err != nil && airlock.ErrorCode(err) != airlock.ECONFLICT {
			return Rule{}, err
		}
		return Rule{}, refuse(airlock.EEXPIRED, ReasonRequestExpired, "this request expired at %s", r.ExpiresAt.Format(time.RFC3339))
	}
	if !bytes.Equal(RequestDigest(r), r.Digest) {
		return Rule{}, refuse(airlock.EINTERNAL, ReasonDigestMismatch, "the stored request does not match its digest")
	}
	rule, ok := s.rule(r.ApprovalRule)
	if !ok {
		return Rule{}, refuse(airlock.EFORBIDDEN, ReasonUnknownRule, "approval rule %q is no longer configured; nobody can approve this request", r.ApprovalRule)
	}
	return rule, nil
}

// approvable checks everything that lets approver approve r now, short
// of the passkey assertion: the request pending and unexpired, approver
// eligible (mayApprove), their session live, their device trusted and
// compliant, what the grant would rest on (the requester's session,
// device, passkey and account) still good, and no earlier approval by
// them. It returns their groups.
func (s *Service) approvable(ctx context.Context, r *airlock.AccessRequest, approver decide.Subject, now time.Time, meta auditMeta) ([]string, error) {
	if approver.User.ID == r.RequesterID {
		// Separation of duties first: the requester learns nothing more.
		return nil, refuse(airlock.EFORBIDDEN, ReasonSelfApproval, "you cannot approve your own request")
	}
	rule, err := s.pendingRule(ctx, r, now, meta)
	if err != nil {
		return nil, err
	}
	groups, err := mayApprove(r, rule, approver)
	if err != nil {
		return nil, err
	}
	if !approver.Session.IsLive(now) {
		return nil, refuse(airlock.EUNAUTHORIZED, ReasonSessionEnded, "your session has ended; sign in again")
	}
	if err := s.checkDevice(approver.Device, now); err != nil {
		return nil, err
	}
	// The grant would rest on the requester's session, device, passkey
	// and account: if one of them is no longer good, a grant would be
	// dead on arrival.
	ground := &airlock.Grant{UserID: r.RequesterID, SessionID: r.SessionID, DeviceID: r.DeviceID, CredentialID: r.CredentialID}
	if why, err := s.broken(ctx, ground, newLookup(s.store, nil), now); err != nil {
		return nil, err
	} else if why != "" {
		return nil, refuse(airlock.ECONFLICT, ReasonRequesterInvalid,
			"this request can no longer be granted: the requester's ground is gone (%s); they must ask again", why)
	}
	approvals, err := s.store.ListApprovals(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	for _, a := range approvals {
		if a.ApproverID == approver.User.ID {
			return nil, refuse(airlock.ECONFLICT, ReasonAlreadyApproved, "you already approved this request")
		}
	}
	return groups, nil
}

// Get returns the request with id for viewer: the requester, an eligible
// approver of its rule (a member of one of its groups whose tier reaches
// the scope), or an admin (else EFORBIDDEN). A pending request found past
// its expiry is marked expired first.
func (s *Service) Get(ctx context.Context, id string, viewer decide.Subject) (*View, error) {
	if err := checkSubject(viewer); err != nil {
		return nil, err
	}
	r, err := s.findRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	rule, _ := s.rule(r.ApprovalRule)
	if viewer.User.ID != r.RequesterID && !isAdmin(viewer) {
		if _, err := mayApprove(r, rule, viewer); err != nil || r.ApprovalRule == "" {
			return nil, refuse(airlock.EFORBIDDEN, ReasonNotAllowed, "only the requester, an approver of its rule or an admin may see this request")
		}
	}
	now := s.now()
	if r.Status == airlock.RequestPending && !now.Before(r.ExpiresAt) {
		if err := s.expire(ctx, r, now, auditMeta{}); err != nil && airlock.ErrorCode(err) != airlock.ECONFLICT {
			return nil, err
		}
		if r, err = s.findRequest(ctx, id); err != nil {
			return nil, err
		}
	}
	v := &View{Request: r, Rule: rule, Approvals: []*airlock.Approval{}, Missing: []Quorum{}}
	if v.Requester, err = s.store.FindUserByID(ctx, r.RequesterID); err != nil {
		return nil, err
	}
	d, err := s.store.FindDeviceByID(ctx, r.DeviceID)
	switch airlock.ErrorCode(err) {
	case "":
		v.Device = d
		v.DeviceCompliant = device.Evaluate(d, s.cfg.DeviceRules, now).Compliant
	case airlock.ENOTFOUND:
	default:
		return nil, err
	}
	approvals, err := s.store.ListApprovals(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	if approvals != nil {
		v.Approvals = approvals
	}
	if r.ApprovalRule != "" && r.Status == airlock.RequestPending {
		counted, err := s.countable(ctx, r, approvals)
		if err != nil {
			return nil, err
		}
		if t := Count(rule, counted, r.RequesterID); t.Missing != nil {
			v.Missing = t.Missing
		}
	}
	if r.GrantID != "" {
		if v.Grant, err = s.store.FindGrantByID(ctx, r.GrantID); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// ListRequests returns the requests viewer made (newest first) or, when
// pendingToApprove, the pending, unexpired requests of others that viewer
// may approve and has not approved yet.
func (s *Service) ListRequests(ctx context.Context, viewer decide.Subject, pendingToApprove bool) ([]*airlock.AccessRequest, error) {
	if err := checkSubject(viewer); err != nil {
		return nil, err
	}
	if !pendingToApprove {
		return s.store.ListAccessRequests(ctx, airlock.AccessRequestFilter{RequesterID: viewer.User.ID})
	}
	pending, err := s.store.ListAccessRequests(ctx, airlock.AccessRequestFilter{Status: airlock.RequestPending, Limit: 500})
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := []*airlock.AccessRequest{}
	for _, r := range pending {
		rule, ok := s.rule(r.ApprovalRule)
		if !ok || !now.Before(r.ExpiresAt) {
			continue
		}
		if _, err := mayApprove(r, rule, viewer); err != nil {
			continue
		}
		approvals, err := s.store.ListApprovals(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		done := false
		for _, a := range approvals {
			done = done || a.ApproverID == viewer.User.ID
		}
		if !done {
			out = append(out, r)
		}
	}
	return out, nil
}

// BeginApproval starts the passkey ceremony by which approver approves
// request id: refused for the requester, for someone in none of the rule's
// groups, whose user or session tier is below the scope's, whose device is
// not trusted and compliant, or who already approved, for a request
// not pending (an expired one is marked expired: EEXPIRED), and for one
// whose requester's session, device, passkey or account is no longer good
// (ECONFLICT, ReasonRequesterInvalid: its grant would be dead). The challenge
// is SHA-256(nonce ‖ request digest); only approver's passkeys on their
// session's device that may serve the scope's tier are allowed (a synced
// passkey, tier 2 at most, never approves a tier-0 or tier-1 request). Audited "elevation.approval_started"
// (refusals "elevation.approval", outcome denied).
func (s *Service) BeginApproval(ctx context.Context, id string, approver decide.Subject, meta passkey.Meta) (*passkey.Begin, error) {
	if err := checkSubject(approver); err != nil {
		return nil, err
	}
	am := fromPasskeyMeta(meta)
	r, err := s.findRequest(ctx, id)
	if err != nil {
		return nil, s.refuseApproval(ctx, "begin", id, nil, approver, err, am)
	}
	now := s.now()
	if _, err := s.approvable(ctx, r, approver, now, am); err != nil {
		return nil, s.refuseApproval(ctx, "begin", id, r, approver, err, am)
	}
	// The approving passkey must be fit for the scope's tier (never a
	// synced one for tier 0 or 1).
	c := confirmer(approver)
	c.Tier = r.Scope.Tier
	b, err := s.passkeys.BeginApproval(ctx, c, r.ID, r.Digest)
	if err != nil {
		return nil, s.refuseApproval(ctx, "begin", id, r, approver, err, am)
	}
	e := s.requestEvent("elevation.approval_started", airlock.OutcomeSuccess, r, am)
	subjectFields(&e, approver)
	e.Details["ceremony"] = b.Ceremony
	e.Details["digest"] = b64(r.Digest)
	if err := s.audit.Record(ctx, e); err != nil {
		return nil, err
	}
	return b, nil
}

func confirmer(sub decide.Subject) passkey.Confirmer {
	return passkey.Confirmer{UserID: sub.User.ID, DeviceID: sub.Session.DeviceID, SessionID: sub.Session.ID}
}

// FinishApproval completes an approval ceremony. The ceremony is consumed
// first (single use, even on failure); the request it was begun for is
// then checked again exactly as BeginApproval checks it (so a request that
// expired, was resolved or approved by this person meanwhile is refused),
// and the assertion must be user-verified, by a passkey of approver on
// approver's session device, over the challenge derived from that very
// request's current digest (package passkey, FinishApproval). The approval
// is stored with approver's groups in the rule (and the comment, ≤ 500
// characters), its audit record written first (no record, no approval: a
// stored approval counts at once, also for a concurrent approver; a store
// refusal then follows as a refusal at stage "store"). When the approvals
// that still count (countable: approver still
// enabled, of the scope's tier, in the group, passkey and device not
// revoked) now meet the rule's quorum — one person counting once across all
// quorums (Count) — the request is approved and
// its grant made, in one store transaction, and both are returned. Of
// concurrent final approvals exactly one resolves the request; the others'
// approvals stay recorded and they get the request as it was resolved,
// with its grant. Audited "elevation.approval" (refusals too, with the
// reason), then "elevation.approved" and "elevation.granted".
func (s *Service) FinishApproval(ctx context.Context, ceremonyID string, credentialJSON json.RawMessage, approver decide.Subject, comment string, meta passkey.Meta) (*airlock.AccessRequest, *airlock.Grant, error) {
	if err := checkSubject(approver); err != nil {
		return nil, nil, err
	}
	am := fromPasskeyMeta(meta)
	var (
		r      *airlock.AccessRequest
		groups []string
	)
	digestOf := func(ctx context.Context, ref string) ([]byte, error) {
		var err error
		if r, err = s.findRequest(ctx, ref); err != nil {
			return nil, err
		}
		if why := checkText(comment, MaxReasonLen); why != "" {
			return nil, refuse(airlock.EINVALID, ReasonInvalidComment, "the comment %s", why)
		}
		if groups, err = s.approvable(ctx, r, approver, s.now(), am); err != nil {
			return nil, err
		}
		return r.Digest, nil
	}
	conf, err := s.passkeys.FinishApproval(ctx, ceremonyID, credentialJSON, confirmer(approver), "", digestOf, am.passkey())
	if err != nil {
		id := ""
		if r != nil {
			id = r.ID
		}
		return nil, nil, s.refuseApproval(ctx, "finish", id, r, approver, err, am)
	}
	a := &airlock.Approval{RequestID: r.ID, ApproverID: approver.User.ID, SessionID: approver.Session.ID,
		DeviceID: conf.Device.ID, CredentialID: conf.Credential.ID, Groups: groups, Comment: comment,
		CreatedAt: conf.At.Truncate(time.Microsecond)}
	// The record comes first: a stored approval counts towards the
	// quorum at once (also for a concurrent approver), so none may be
	// stored without its record. If the store then refuses it, an
	// "elevation.approval" refusal at stage "store" follows.
	e := s.requestEvent("elevation.approval", airlock.OutcomeSuccess, r, am)
	subjectFields(&e, approver)
	e.CredentialID = b64(conf.Credential.ID)
	e.Details["groups"] = groups
	e.Details["digest"] = b64(conf.Digest)
	e.Details["challenge"] = conf.Challenge
	e.Details["nonce"] = b64(conf.Nonce)
	e.Details["sign_count"] = conf.Credential.SignCount
	if comment != "" {
		e.Details["comment"] = comment
	}
	if err := s.audit.Record(ctx, e); err != nil {
		return nil, nil, err
	}
	if err := s.store.AddApproval(ctx, a); err != nil {
		if airlock.ErrorCode(err) == airlock.ECONFLICT {
			err = s.conflict(ctx, r.ID, approver.User.ID, err)
		}
		return nil, nil, s.refuseApproval(ctx, "store", r.ID, r, approver, err, am)
	}

	all, err := s.store.ListApprovals(ctx, r.ID)
	if err != nil {
		return nil, nil, err
	}
	approvals, err := s.countable(ctx, r, all)
	if err != nil {
		return nil, nil, err
	}
	rule, _ := s.rule(r.ApprovalRule)
	if !Count(rule, approvals, r.RequesterID).Met {
		return r, nil, nil
	}
	now := s.now()
	g := newGrant(r, now)
	if err := s.store.ResolveAccessRequest(ctx, r.ID, airlock.RequestApproved, approver.User.ID, "", now, g); err != nil {
		if airlock.ErrorCode(err) != airlock.ECONFLICT {
			return nil, nil, err
		}
		// Another final approval (or a denial, a cancel, the expiry) got
		// there first; this approval is recorded all the same.
		return s.resolvedElsewhere(ctx, r.ID)
	}
	r.Status, r.ResolvedAt, r.ResolvedBy, r.GrantID = airlock.RequestApproved, now, approver.User.ID, g.ID
	if err := s.recordGrant(ctx, r, g, approvals, approver.User.ID, am); err != nil {
		return nil, nil, err
	}
	return r, g, nil
}

// resolvedElsewhere returns request id as another call resolved it, with
// its grant if it has one.
func (s *Service) resolvedElsewhere(ctx context.Context, id string) (*airlock.AccessRequest, *airlock.Grant, error) {
	r, err := s.findRequest(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if r.GrantID == "" {
		return r, nil, nil
	}
	g, err := s.store.FindGrantByID(ctx, r.GrantID)
	if err != nil {
		return nil, nil, err
	}
	return r, g, nil
}

// countable returns the approvals of r that still count, each with its
// groups narrowed to those its approver is still a member of: an approver
// since disabled, moved to a tier less privileged than the scope's or out
// of every group they approved for, or whose passkey or device (the ones
// the approval was made with) has since been revoked or lost its trust, no
// longer fills a place in the quorum. The approvals stay on record.
func (s *Service) countable(ctx context.Context, r *airlock.AccessRequest, approvals []*airlock.Approval) ([]*airlock.Approval, error) {
	out := make([]*airlock.Approval, 0, len(approvals))
	for _, a := range approvals {
		u, err := s.store.FindUserByID(ctx, a.ApproverID)
		if airlock.ErrorCode(err) == airlock.ENOTFOUND {
			continue
		} else if err != nil {
			return nil, err
		}
		if u.Disabled || u.Tier > r.Scope.Tier {
			continue
		}
		var groups []string
		for _, g := range a.Groups {
			if contains(u.Roles, g) {
				groups = append(groups, g)
			}
		}
		if len(groups) == 0 {
			continue
		}
		c, err := s.store.FindCredentialByID(ctx, a.CredentialID)
		if airlock.ErrorCode(err) == airlock.ENOTFOUND {
			continue
		} else if err != nil {
			return nil, err
		}
		if c.IsRevoked() || c.UserID != a.ApproverID {
			continue
		}
		d, err := s.store.FindDeviceByID(ctx, a.DeviceID)
		if airlock.ErrorCode(err) == airlock.ENOTFOUND {
			continue
		} else if err != nil {
			return nil, err
		}
		if d.Trust != airlock.TrustTrusted {
			continue
		}
		cp := *a
		cp.Groups = groups
		out = append(out, &cp)
	}
	return out, nil
}

// conflict explains an ECONFLICT from AddApproval: the request left
// pending meanwhile, or this approver's approval is already stored.
func (s *Service) conflict(ctx context.Context, id, approverID string, cause error) error {
	r, err := s.findRequest(ctx, id)
	if err != nil {
		return err
	}
	if r.Status != airlock.RequestPending {
		return &airlock.Error{Code: airlock.ECONFLICT, Message: "this request is already " + string(r.Status), Err: &refusal{reason: ReasonNotPending}}
	}
	return &airlock.Error{Code: airlock.ECONFLICT, Message: "you already approved this request", Err: &refusal{reason: ReasonAlreadyApproved}}
}

// refuseApproval audits a refused approval step ("elevation.approval",
// outcome denied or failure, with the reason) and returns err, or the
// audit error if it could not be recorded.
func (s *Service) refuseApproval(ctx context.Context, stage, id string, r *airlock.AccessRequest, approver decide.Subject, err error, meta auditMeta) error {
	var e airlock.AuditEvent
	if r != nil {
		e = s.requestEvent("elevation.approval", failureOutcome(err), r, meta)
	} else {
		e = event("elevation.approval", failureOutcome(err), meta)
		e.Subject, e.RequestID = id, id
	}
	subjectFields(&e, approver)
	e.Reason = string(ReasonOf(err))
	e.Details["stage"] = stage
	e.Details["message"] = airlock.ErrorMessage(err)
	if aerr := s.audit.Record(ctx, e); aerr != nil {
		return aerr
	}
	return err
}

// Deny denies pending request id with a reason (required: EINVALID
// without; ≤ 500 characters, no control characters), by an eligible
// approver of its rule (a member of one of its groups whose user and
// session tier reach the scope's) or an admin — never the requester
// (EFORBIDDEN: they cancel instead). No passkey assertion is needed: a
// denial grants nothing. Audited "elevation.denied"; the requester is
// notified.
func (s *Service) Deny(ctx context.Context, id string, approver decide.Subject, reason string, meta passkey.Meta) (*airlock.AccessRequest, error) {
	if err := checkSubject(approver); err != nil {
		return nil, err
	}
	am := fromPasskeyMeta(meta)
	r, err := s.findRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	refused := func(err error) error {
		e := s.requestEvent("elevation.denied", failureOutcome(err), r, am)
		subjectFields(&e, approver)
		e.Reason, e.Details["message"] = string(ReasonOf(err)), airlock.ErrorMessage(err)
		if aerr := s.audit.Record(ctx, e); aerr != nil {
			return aerr
		}
		return err
	}
	if approver.User.ID == r.RequesterID {
		return nil, refused(refuse(airlock.EFORBIDDEN, ReasonSelfApproval, "you cannot deny your own request; cancel it instead"))
	}
	if strings.TrimSpace(reason) == "" {
		return nil, refused(refuse(airlock.EINVALID, ReasonReasonRequired, "a denial needs a reason"))
	}
	if why := checkText(reason, MaxReasonLen); why != "" {
		return nil, refused(refuse(airlock.EINVALID, ReasonInvalidReason, "the reason %s", why))
	}
	now := s.now()
	rule, err := s.pendingRule(ctx, r, now, am)
	if err != nil && !(isAdmin(approver) && ReasonOf(err) == ReasonUnknownRule) {
		return nil, refused(err)
	}
	// An eligible approver denies as such; an admin who is not one
	// denies as admin.
	_, notApprover := mayApprove(r, rule, approver)
	asAdmin := notApprover != nil
	if asAdmin && !isAdmin(approver) {
		return nil, refused(notApprover)
	}
	if err := s.store.ResolveAccessRequest(ctx, r.ID, airlock.RequestDenied, approver.User.ID, reason, now, nil); err != nil {
		if airlock.ErrorCode(err) == airlock.ECONFLICT {
			return nil, refused(s.conflict(ctx, r.ID, approver.User.ID, err))
		}
		return nil, err
	}
	r.Status, r.ResolvedAt, r.ResolvedBy, r.Note = airlock.RequestDenied, now, approver.User.ID, reason
	e := s.requestEvent("elevation.denied", airlock.OutcomeSuccess, r, am)
	subjectFields(&e, approver)
	e.Details["reason"] = reason
	e.Details["as_admin"] = asAdmin
	if err := s.audit.Record(ctx, e); err != nil {
		return nil, err
	}
	_ = s.notifier.Notify(ctx, r.RequesterID, NotifyDenied, map[string]any{"request_id": r.ID, "scope": r.Scope.String(),
		"reason": reason, "denied_by": approver.User.Name})
	return r, nil
}

// Cancel withdraws pending request id; only its requester may (anyone else
// EFORBIDDEN). Audited "elevation.cancelled".
func (s *Service) Cancel(ctx context.Context, id string, requester decide.Subject, meta passkey.Meta) (*airlock.AccessRequest, error) {
	if err := checkSubject(requester); err != nil {
		return nil, err
	}
	am := fromPasskeyMeta(meta)
	r, err := s.findRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	if requester.User.ID != r.RequesterID {
		return nil, refuse(airlock.EFORBIDDEN, ReasonNotRequester, "only the requester may cancel a request")
	}
	if r.Status != airlock.RequestPending {
		return nil, refuse(airlock.ECONFLICT, ReasonNotPending, "this request is already %s", r.Status)
	}
	now := s.now()
	if err := s.store.ResolveAccessRequest(ctx, r.ID, airlock.RequestCancelled, requester.User.ID, "", now, nil); err != nil {
		if airlock.ErrorCode(err) == airlock.ECONFLICT {
			return nil, s.conflict(ctx, r.ID, requester.User.ID, err)
		}
		return nil, err
	}
	r.Status, r.ResolvedAt, r.ResolvedBy = airlock.RequestCancelled, now, requester.User.ID
	e := s.requestEvent("elevation.cancelled", airlock.OutcomeSuccess, r, am)
	subjectFields(&e, requester)
	if err := s.audit.Record(ctx, e); err != nil {
		return nil, err
	}
	return r, nil
}

// expire marks pending request r expired (by "system"), audits
// "elevation.expired" and notifies the requester. ECONFLICT if it was
// resolved meanwhile.
func (s *Service) expire(ctx context.Context, r *airlock.AccessRequest, now time.Time, meta auditMeta) error {
	if err := s.store.ResolveAccessRequest(ctx, r.ID, airlock.RequestExpired, "system", "", now, nil); err != nil {
		return err
	}
	r.Status, r.ResolvedAt, r.ResolvedBy = airlock.RequestExpired, now, "system"
	e := s.requestEvent("elevation.expired", airlock.OutcomeSuccess, r, meta)
	e.Actor = "system"
	e.Details["expires_at"] = r.ExpiresAt.Format(time.RFC3339Nano)
	if err := s.audit.Record(ctx, e); err != nil {
		return err
	}
	_ = s.notifier.Notify(ctx, r.RequesterID, NotifyExpired, map[string]any{"request_id": r.ID, "scope": r.Scope.String(),
		"expires_at": r.ExpiresAt})
	return nil
}
