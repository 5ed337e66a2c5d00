package elevate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"airlock"
	"airlock/decide"
	"airlock/device"
	"airlock/policy"
)

// digestDomain separates request digests from every other SHA-256 Airlock
// computes (a step-up transaction's digest has its own encoding).
const digestDomain = "airlock access request v1"

// RequestDigest is SHA-256 of the canonical encoding of what an approver
// approves: request id, requester, session, device, scope (its text and
// tier), duration in whole seconds, reason, ticket, approval rule, created
// and expires (Unix microseconds, the store's precision). The encoding is
// a domain string followed by each field as its name, the length of its
// value as 8 bytes big-endian, and the value — so no two different
// requests encode alike. Every approval's WebAuthn challenge is
// SHA-256(nonce ‖ digest): the approver's passkey signs this exact request.
// Not covered: the decision id, risk, IP and user agent (context shown to
// approvers, not the request itself), nor status fields.
func RequestDigest(r *airlock.AccessRequest) []byte {
	var b bytes.Buffer
	b.WriteString(digestDomain)
	field := func(name, value string) {
		b.WriteString(name)
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(value)))
		b.Write(n[:])
		b.WriteString(value)
	}
	field("id", r.ID)
	field("requester", r.RequesterID)
	field("session", r.SessionID)
	field("device", r.DeviceID)
	field("scope", r.Scope.String())
	field("scope_tier", strconv.Itoa(int(r.Scope.Tier)))
	field("duration_s", strconv.FormatInt(int64(r.Duration/time.Second), 10))
	field("reason", r.Reason)
	field("ticket", r.Ticket)
	field("rule", r.ApprovalRule)
	field("created", strconv.FormatInt(r.CreatedAt.UnixMicro(), 10))
	field("expires", strconv.FormatInt(r.ExpiresAt.UnixMicro(), 10))
	h := sha256.Sum256(b.Bytes())
	return h[:]
}

// checkText validates free text a person writes (a reason, a ticket id, a
// comment): valid UTF-8, at most max characters, no control characters
// and no text-direction controls (they could hide or fake lines, or
// reorder words, on the approval page, in notifications and in the log).
func checkText(s string, max int) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	if n := utf8.RuneCountInString(s); n > max {
		return "is longer than " + strconv.Itoa(max) + " characters"
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return "contains control characters (tabs and line breaks included)"
		}
		if isBidiControl(c) {
			return "contains text-direction control characters"
		}
	}
	return ""
}

// isBidiControl reports whether c changes the display order of text
// (Unicode UAX #9 explicit formatting characters and marks), which could
// make a reason read differently from what it says.
func isBidiControl(c rune) bool {
	return c == 0x061C || c == 0x200E || c == 0x200F || (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069)
}

// checkAsk validates what the requester wrote and returns the scope with
// its syntax checked and the duration in whole seconds.
func checkAsk(ask Ask) (airlock.Scope, time.Duration, error) {
	scope, err := airlock.ParseScope(ask.Scope)
	if err != nil {
		return scope, 0, refuse(airlock.EINVALID, ReasonInvalidScope, "%s", airlock.ErrorMessage(err))
	}
	if strings.TrimSpace(ask.Reason) == "" {
		return scope, 0, refuse(airlock.EINVALID, ReasonInvalidReason, "a reason (the task) is required")
	}
	if why := checkText(ask.Reason, MaxReasonLen); why != "" {
		return scope, 0, refuse(airlock.EINVALID, ReasonInvalidReason, "the reason %s", why)
	}
	if why := checkText(ask.Ticket, MaxTicketLen); why != "" {
		return scope, 0, refuse(airlock.EINVALID, ReasonInvalidTicket, "the ticket %s", why)
	}
	d := ask.Duration.Truncate(time.Second)
	if d <= 0 {
		return scope, 0, refuse(airlock.EINVALID, ReasonInvalidDuration, "the duration must be at least one second")
	}
	return scope, d, nil
}

// resolveScope fills the scope's tier and returns the resource the request
// is decided on: the named resource of a role scope, the synthetic
// resource "tier:N" of a tier scope.
func (s *Service) resolveScope(ctx context.Context, scope airlock.Scope) (airlock.Scope, *airlock.Resource, error) {
	if scope.IsTier {
		return scope, &airlock.Resource{Name: scope.String(), Tier: scope.Tier, Labels: map[string]string{}}, nil
	}
	res, err := s.decider.LookupResource(ctx, scope.Resource)
	if airlock.ErrorCode(err) == airlock.ENOTFOUND {
		return scope, nil, refuse(airlock.ENOTFOUND, ReasonUnknownResource, "resource %q is not known", scope.Resource)
	} else if err != nil {
		return scope, nil, err
	}
	if !res.Tier.Valid() {
		return scope, nil, airlock.Errorf(airlock.EINTERNAL, "resource %q has an invalid tier", res.Name)
	}
	scope.Tier = res.Tier
	return scope, res, nil
}

// checkDevice refuses a device that is not trusted and compliant: a grant
// could not rest on it, nor an approval be given from it.
func (s *Service) checkDevice(d *airlock.Device, now time.Time) error {
	if d.Trust != airlock.TrustTrusted {
		return refuse(airlock.EFORBIDDEN, ReasonDeviceUntrusted, "device %s is not trusted (%s)", d.Name, d.Trust)
	}
	if c := device.Evaluate(d, s.cfg.DeviceRules, now); !c.Compliant {
		return refuse(airlock.EFORBIDDEN, ReasonDeviceNonCompliant, "device %s is not compliant: %s", d.Name, c)
	}
	return nil
}

// Request makes an access request from sub's session. The scope must name
// a known resource (or a valid tier) that the requester's tier — the
// user's and the session's — may reach; the reason is required (≤ 500
// characters, no control characters), the ticket optional (≤ 100); the
// duration is whole seconds, at least one, capped to the scope tier's
// maximum (both are audited); the session's device must be trusted and
// compliant; a user may make Config.RequestsPerHour requests per hour
// (ERATELIMIT). The policy engine decides ActionRequest on the scope's
// resource with params {scope, duration_s, reason, ticket}: allow stores
// the request and resolves it approved by "policy" with its grant (one
// store transaction), approval_required stores a pending request under the
// named rule (DefaultRule if none; a rule the config lacks refuses the
// request) and notifies every eligible approver, step_up returns
// *StepUpRequired, deny an EFORBIDDEN error carrying the decision's
// reasons. The grant's window is [approval, approval + Duration). Audited
// "elevation.requested" (refusals too, outcome denied with the reason),
// then "elevation.approved" and "elevation.granted" for an auto-approval.
func (s *Service) Request(ctx context.Context, sub decide.Subject, ask Ask) (*airlock.AccessRequest, *airlock.Grant, error) {
	if err := checkSubject(sub); err != nil {
		return nil, nil, err
	}
	meta := metaOf(ask)
	now := s.now()
	r := &airlock.AccessRequest{ID: airlock.NewID(airlock.PrefixAccessRequest), RequesterID: sub.User.ID,
		SessionID: sub.Session.ID, DeviceID: sub.Device.ID, CredentialID: sub.Session.CredentialID,
		Reason: ask.Reason, Ticket: ask.Ticket, IP: ask.IP, UserAgent: clip(ask.UserAgent, 256),
		Status: airlock.RequestPending, CreatedAt: now, ExpiresAt: now.Add(s.cfg.RequestTTL)}
	scope, asked, err := checkAsk(ask)
	r.Scope = scope
	if err != nil {
		return nil, nil, s.refuseRequest(ctx, sub, r, ask, asked, nil, err, meta)
	}
	if r.Scope, err = s.checkRequester(ctx, sub, scope, now); err != nil {
		return nil, nil, s.refuseRequest(ctx, sub, r, ask, asked, nil, err, meta)
	}
	r.Duration = airlock.CapDuration(asked, r.Scope.Tier, s.cfg.Caps)

	n, err := s.store.HitRateLimit(ctx, "elevation.request:"+sub.User.ID, time.Hour, now)
	if err != nil {
		return nil, nil, err
	}
	if n > s.cfg.RequestsPerHour {
		return nil, nil, s.refuseRequest(ctx, sub, r, ask, asked, nil,
			refuse(airlock.ERATELIMIT, ReasonRateLimited, "too many access requests (at most %d an hour); try again later", s.cfg.RequestsPerHour), meta)
	}

	params, err := json.Marshal(map[string]any{"scope": r.Scope.String(), "duration_s": int64(r.Duration / time.Second),
		"reason": r.Reason, "ticket": r.Ticket})
	if err != nil {
		return nil, nil, airlock.Wrap(airlock.EINTERNAL, "request parameters", err)
	}
	dreq := decide.Request{Action: ActionRequest, Resource: r.Scope.Resource, Params: params, IP: ask.IP,
		UserAgent: ask.UserAgent, Client: "airlock elevation", Proof: ask.Proof, RequestID: ask.RequestID, AccessRequestID: r.ID}
	if r.Scope.IsTier {
		dreq.Resource = r.Scope.String()
		dreq.Target = &airlock.Resource{Name: dreq.Resource, Tier: r.Scope.Tier, Labels: map[string]string{}}
	}
	res, err := s.decider.Decide(ctx, sub, dreq)
	if err != nil {
		// No decision: fail closed.
		return nil, nil, err
	}
	r.DecisionID, r.Risk = res.Decision.ID, res.Decision.Risk.Score
	switch res.Decision.Outcome {
	case policy.Allow:
	case policy.ApprovalRequired:
		r.ApprovalRule = res.Decision.Obligations.ApprovalRule
		if r.ApprovalRule == "" {
			r.ApprovalRule = DefaultRule
		}
		if _, ok := s.rule(r.ApprovalRule); !ok {
			return nil, nil, s.refuseRequest(ctx, sub, r, ask, asked, res, refuse(airlock.EFORBIDDEN, ReasonUnknownRule,
				"the policy wants approval rule %q, which is not configured; the request is refused (tell an operator)", clip(r.ApprovalRule, 64)), meta)
		}
	case policy.StepUp:
		why := refuse(airlock.EFORBIDDEN, ReasonStepUpRequired, "a passkey confirmation is required first")
		if err := s.refuseRequest(ctx, sub, r, ask, asked, res, why, meta); err != error(why) {
			return nil, nil, err
		}
		return nil, nil, &StepUpRequired{Result: res}
	default:
		var texts []string
		for _, why := range res.Decision.Reasons {
			texts = append(texts, why.Text)
		}
		msg := "the policy denies this request"
		if len(texts) > 0 {
			msg += ": " + strings.Join(texts, "; ")
		}
		e := refuse(airlock.EFORBIDDEN, ReasonPolicyDeny, "%s", msg)
		e.Err.(*refusal).result = res
		return nil, nil, s.refuseRequest(ctx, sub, r, ask, asked, res, e, meta)
	}
	r.Digest = RequestDigest(r)

	if err := s.store.CreateAccessRequest(ctx, r); err != nil {
		return nil, nil, err
	}
	e := s.requestEvent("elevation.requested", airlock.OutcomeSuccess, r, meta)
	subjectFields(&e, sub)
	e.Details["asked_duration_s"] = int64(asked / time.Second)
	e.Details["outcome"] = string(res.Decision.Outcome)
	e.Details["reason"] = r.Reason
	if r.Ticket != "" {
		e.Details["ticket"] = r.Ticket
	}
	e.Details["risk"] = r.Risk
	e.Details["digest"] = b64(r.Digest)
	if res.StepUp != nil {
		e.TransactionID = res.StepUp.ID
	}
	if err := s.audit.Record(ctx, e); err != nil {
		// An unaudited request must not stand.
		_ = s.store.ResolveAccessRequest(ctx, r.ID, airlock.RequestCancelled, "system", "audit failed", now, nil)
		return nil, nil, err
	}

	if res.Decision.Outcome == policy.Allow {
		g := newGrant(r, now)
		if err := s.store.ResolveAccessRequest(ctx, r.ID, airlock.RequestApproved, "policy", "", now, g); err != nil {
			return nil, nil, err
		}
		r.Status, r.ResolvedAt, r.ResolvedBy, r.GrantID = airlock.RequestApproved, now, "policy", g.ID
		if err := s.recordGrant(ctx, r, g, nil, "policy", meta); err != nil {
			return nil, nil, err
		}
		return r, g, nil
	}
	if err := s.notifyApprovers(ctx, r, sub.User); err != nil {
		// Nobody would know of the request: withdraw it.
		if rerr := s.store.ResolveAccessRequest(ctx, r.ID, airlock.RequestCancelled, "system", "approvers could not be notified", now, nil); rerr == nil {
			ce := s.requestEvent("elevation.cancelled", airlock.OutcomeFailure, r, meta)
			ce.Actor, ce.Reason = "system", string(ReasonNotifyFailed)
			_ = s.audit.Record(ctx, ce)
		}
		return nil, nil, airlock.Wrap(airlock.EUNAVAILABLE, "approvers could not be notified; try again", err)
	}
	return r, nil, nil
}

// checkRequester resolves the scope and checks that sub may ask for it:
// the user's and the session's tier at least as privileged as the
// scope's, the device trusted and compliant.
func (s *Service) checkRequester(ctx context.Context, sub decide.Subject, scope airlock.Scope, now time.Time) (airlock.Scope, error) {
	scope, _, err := s.resolveScope(ctx, scope)
	if err != nil {
		return scope, err
	}
	if sub.User.Tier > scope.Tier || sub.Session.Tier > scope.Tier {
		return scope, refuse(airlock.EFORBIDDEN, ReasonTierTooLow,
			"%s is a tier-%d scope; your account is tier %d and this session tier %d", scope, scope.Tier, sub.User.Tier, sub.Session.Tier)
	}
	if err := s.checkDevice(sub.Device, now); err != nil {
		return scope, err
	}
	return scope, nil
}

// refuseRequest audits a refused request ("elevation.requested", outcome
// denied, or failure for Airlock's own errors) and returns err, or the
// audit error if the refusal could not be recorded.
func (s *Service) refuseRequest(ctx context.Context, sub decide.Subject, r *airlock.AccessRequest, ask Ask, asked time.Duration, res *decide.Result, err error, meta auditMeta) error {
	e := s.requestEvent("elevation.requested", failureOutcome(err), r, meta)
	subjectFields(&e, sub)
	e.Reason = string(ReasonOf(err))
	e.Details["message"] = airlock.ErrorMessage(err)
	e.Details["scope"] = clip(ask.Scope, 140)
	if r.Scope == (airlock.Scope{}) {
		delete(e.Details, "scope_tier") // the scope did not parse
	}
	e.Details["asked_duration_s"] = int64(asked / time.Second)
	e.Details["reason"] = clip(ask.Reason, MaxReasonLen+10)
	if res != nil {
		e.DecisionID = res.Decision.ID
		e.Details["outcome"] = string(res.Decision.Outcome)
		if res.StepUp != nil {
			e.TransactionID = res.StepUp.ID
		}
	}
	if aerr := s.audit.Record(ctx, e); aerr != nil {
		return aerr
	}
	return err
}

// newGrant is the grant of approved request r, in force from now for its
// duration, bound to the requesting session. Its window starts on the
// whole second (now rounded down, before the grant exists, so nothing is
// usable earlier): SSH certificates and token dates are whole seconds that
// must not start before the grant, and a fractional start would leave a
// new grant's certificate "not yet valid" at sshd for up to a second.
func newGrant(r *airlock.AccessRequest, now time.Time) *airlock.Grant {
	start := now.Truncate(time.Second)
	return &airlock.Grant{ID: airlock.NewID(airlock.PrefixGrant), RequestID: r.ID, UserID: r.RequesterID,
		SessionID: r.SessionID, DeviceID: r.DeviceID, CredentialID: r.CredentialID, Scope: r.Scope,
		NotBefore: start, NotAfter: start.Add(r.Duration), CreatedAt: now}
}

// recordGrant audits an approval that made grant g ("elevation.approved",
// "elevation.granted") and notifies the requester. If either record fails
// the grant is ended at once (an unaudited grant must not be usable) and
// the audit error returned. last is the approver whose approval completed
// the quorum (nil for an auto-approval by policy).
func (s *Service) recordGrant(ctx context.Context, r *airlock.AccessRequest, g *airlock.Grant, approvals []*airlock.Approval, by string, meta auditMeta) error {
	e := s.requestEvent("elevation.approved", airlock.OutcomeSuccess, r, meta)
	e.Actor, e.GrantID = by, g.ID
	if approvals != nil {
		var ids []string
		for _, a := range approvals {
			ids = append(ids, a.ApproverID)
		}
		e.Details["approvers"] = ids
	}
	err := s.audit.Record(ctx, e)
	if err == nil {
		ge := s.grantEvent("elevation.granted", airlock.OutcomeSuccess, g, meta)
		ge.Actor, ge.DecisionID = by, r.DecisionID
		err = s.audit.Record(ctx, ge)
	}
	if err != nil {
		_ = s.store.EndGrant(ctx, g.ID, airlock.EndAuditFailed, "system", s.now())
		return err
	}
	if by != "policy" {
		// The requester learns of an approval by others; an auto-approval
		// is the answer to their own call.
		_ = s.notifier.Notify(ctx, r.RequesterID, NotifyApproved, map[string]any{"request_id": r.ID, "grant_id": g.ID,
			"scope": r.Scope.String(), "not_after": g.NotAfter, "approval_url": s.ApprovalURL(r.ID)})
	}
	return nil
}

// notifyApprovers tells every eligible approver of pending request r about
// it (NotifyRequested).
func (s *Service) notifyApprovers(ctx context.Context, r *airlock.AccessRequest, requester *airlock.User) error {
	rule, _ := s.rule(r.ApprovalRule)
	users, err := s.store.ListUsers(ctx)
	if err != nil {
		return err
	}
	payload := map[string]any{"request_id": r.ID, "requester": requester.Name, "requester_display_name": requester.DisplayName,
		"scope": r.Scope.String(), "reason": r.Reason, "ticket": r.Ticket, "duration_s": int64(r.Duration / time.Second),
		"rule": r.ApprovalRule, "expires_at": r.ExpiresAt, "approval_url": s.ApprovalURL(r.ID)}
	for _, u := range users {
		if u.ID == r.RequesterID || u.Disabled || u.Tier > r.Scope.Tier || len(ruleGroups(rule, u)) == 0 {
			continue
		}
		if err := s.notifier.Notify(ctx, u.ID, NotifyRequested, payload); err != nil {
			return err
		}
	}
	return nil
}

// ruleGroups returns the groups of rule that u is a member of.
func ruleGroups(rule Rule, u *airlock.User) []string {
	var out []string
	for _, g := range rule.Groups() {
		if contains(u.Roles, g) {
			out = append(out, g)
		}
	}
	return out
}

func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	// Cut on a character boundary.
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max] + "…"
}
