package breakglass

import (
	"context"
	"time"

	"airlock"
	"airlock/decide"
	"airlock/passkey"
	"airlock/policy"
	"airlock/session"
)

// Session is a live break-glass session.
type Session struct {
	Event   *airlock.BreakGlassEvent
	Account *airlock.User
}

// snapshot returns a copy the caller may keep.
func (s *Session) snapshot() *Session {
	ev := *s.Event
	u := *s.Account
	return &Session{Event: &ev, Account: &u}
}

// live reports whether ev may still be used at now: not ended and before
// its end (never extended).
func live(ev *airlock.BreakGlassEvent, now time.Time) bool {
	return ev.EndedAt.IsZero() && now.Before(ev.EndsAt)
}

// Authenticate returns the live session of token: from the store when it
// answers (so that an end recorded by another replica counts), else — or
// for an offline use not merged yet — from this replica's memory. An
// unknown token is EUNAUTHORIZED; an ended or expired session is
// EUNAUTHORIZED with ReasonSessionEnded.
func (s *Service) Authenticate(ctx context.Context, token string) (*Session, error) {
	if !IsToken(token) || len(token) > 128 {
		return nil, refuse(airlock.EUNAUTHORIZED, ReasonSessionEnded, "not a break-glass session token")
	}
	hash := session.HashToken(token)
	sess, err := s.lookup(ctx, hash)
	if err != nil {
		return nil, err
	}
	if !live(sess.Event, s.now()) {
		return nil, refuse(airlock.EUNAUTHORIZED, ReasonSessionEnded, "this break-glass session has ended")
	}
	return sess, nil
}

// lookup finds the session of a token hash (live or not).
func (s *Service) lookup(ctx context.Context, hash []byte) (*Session, error) {
	ev, err := s.store.FindBreakGlassEventByToken(ctx, hash)
	if err == nil {
		s.mu.Lock()
		mem := s.sessions[string(hash)]
		s.mu.Unlock()
		var u *airlock.User
		if mem != nil {
			u = mem.Account
			// An end recorded offline here counts even if the store
			// row was merged before it.
			if !mem.Event.EndedAt.IsZero() && ev.EndedAt.IsZero() {
				ev.EndedAt, ev.EndReason = mem.Event.EndedAt, mem.Event.EndReason
			}
		} else if u, err = s.store.FindUserByID(ctx, ev.AccountID); err != nil {
			return nil, err
		}
		return (&Session{Event: ev, Account: u}).snapshot(), nil
	}
	if airlock.ErrorCode(err) != airlock.ENOTFOUND && !unavailable(err) {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if mem := s.sessions[string(hash)]; mem != nil {
		return mem.snapshot(), nil
	}
	if unavailable(err) {
		return nil, refuse(airlock.EUNAUTHORIZED, ReasonSessionEnded, "unknown break-glass session (the store is unavailable and this replica did not start it)")
	}
	return nil, refuse(airlock.EUNAUTHORIZED, ReasonSessionEnded, "unknown break-glass session")
}

// End ends a session early. An ended session is ECONFLICT. Audited
// "breakglass.ended" (to the local audit file while the store is down).
func (s *Service) End(ctx context.Context, sess *Session, reason string, meta passkey.Meta) error {
	if sess == nil || sess.Event == nil {
		return airlock.Errorf(airlock.EINVALID, "no break-glass session")
	}
	return s.end(ctx, sess.Event.ID, sess.Event.TokenHash, sess.Event.AccountID, "", reason, meta)
}

// EndEvent ends the use id for a reviewer (Config.ReviewerRole, a tier-0
// session, not the account itself) — e.g. before the review.
func (s *Service) EndEvent(ctx context.Context, id string, by decide.Subject, reason string, meta passkey.Meta) error {
	if err := s.checkReviewer(by, ""); err != nil {
		return err
	}
	ev, err := s.store.FindBreakGlassEventByID(ctx, id)
	if err != nil {
		return err
	}
	if ev.AccountID == by.User.ID {
		return refuse(airlock.EFORBIDDEN, ReasonReviewer, "a break-glass account cannot end its own use here")
	}
	return s.end(ctx, ev.ID, ev.TokenHash, ev.AccountID, by.User.ID, reason, meta)
}

func (s *Service) end(ctx context.Context, id string, tokenHash []byte, accountID, actor, reason string, meta passkey.Meta) error {
	if reason == "" {
		reason = "ended"
	}
	if len(reason) > 200 || !printable(reason) {
		return airlock.Errorf(airlock.EINVALID, "the end reason must be 1..200 printable characters")
	}
	now := s.now().UTC()
	s.mu.Lock()
	mem := s.sessions[string(tokenHash)]
	if mem != nil && !mem.Event.EndedAt.IsZero() {
		s.mu.Unlock()
		return airlock.Errorf(airlock.ECONFLICT, "this break-glass session has already ended")
	}
	s.mu.Unlock()
	err := s.store.EndBreakGlassEvent(ctx, id, reason, now)
	switch {
	case err == nil:
	case unavailable(err), airlock.ErrorCode(err) == airlock.ENOTFOUND && mem != nil:
		// Offline (or an offline use not merged yet): this replica's
		// memory and the local audit file are the record.
	default:
		return err
	}
	if mem != nil {
		s.mu.Lock()
		mem.Event.EndedAt, mem.Event.EndReason = now, reason
		s.mu.Unlock()
	}
	e := event("breakglass.ended", airlock.OutcomeSuccess, meta)
	e.Actor, e.Subject, e.UserID = actor, accountID, accountID
	if actor == "" {
		e.Actor = accountID
	}
	e.Details["event_id"], e.Details["end_reason"] = id, reason
	return s.record(ctx, e)
}

// Decide answers a decision for a break-glass session: allow when the
// policy's scopes cover the resource (a role scope: the resource's name; a
// tier scope: the resource's tier from the store, or Config.ResourceTier
// while it is down), else deny; SSH agent and port forwarding are always
// denied. No Cedar policy is consulted, so it works with the normal policy
// broken or missing. Audited "breakglass.decision" before it is returned;
// an audit failure is an error (fail closed).
func (s *Service) Decide(ctx context.Context, sess *Session, action, resource string, meta passkey.Meta) (*decide.Result, error) {
	if sess == nil || sess.Event == nil || !live(sess.Event, s.now()) {
		return nil, refuse(airlock.EUNAUTHORIZED, ReasonSessionEnded, "this break-glass session has ended")
	}
	d := policy.Decision{ID: airlock.NewID(policy.PrefixDecision), Outcome: policy.Deny, PolicyVersion: "breakglass"}
	matched := ""
	if action != actionSSHAgentForwarding && action != actionSSHPortForwarding {
		tier, known := s.resourceTier(ctx, resource)
		for _, sc := range s.scopes {
			if sc.IsTier {
				if known && sc.Covers(resource, tier) {
					matched = sc.String()
					break
				}
			} else if sc.Resource == resource {
				matched = sc.String()
				break
			}
		}
	}
	if matched != "" {
		d.Outcome = policy.Allow
		d.Reasons = []policy.Reason{{Policy: "breakglass:" + sess.Event.ID, Text: "break-glass session " + sess.Event.ID + " covers " + matched}}
	} else {
		d.Reasons = []policy.Reason{{Policy: "breakglass-out-of-scope", Text: "outside the break-glass policy's scopes (forwarding is never allowed)"}}
	}
	e := event("breakglass.decision", string(d.Outcome), meta)
	if d.Outcome == policy.Allow {
		e.Outcome = airlock.OutcomeSuccess
	} else {
		e.Outcome = airlock.OutcomeDenied
		e.Reason = string(ReasonOutOfScope)
	}
	e.Actor, e.Subject, e.UserID, e.DecisionID = sess.Account.ID, sess.Account.ID, sess.Account.ID, d.ID
	e.Details["event_id"], e.Details["action"], e.Details["resource"] = sess.Event.ID, clip(action), clip(resource)
	e.Details["decision"] = string(d.Outcome)
	if matched != "" {
		e.Details["scope"] = matched
	}
	if err := s.record(ctx, e); err != nil {
		return nil, err
	}
	return &decide.Result{Decision: d}, nil
}

// The forwarding actions of the SSH edge (http.ActionSSH…): never allowed
// to a break-glass session.
const (
	actionSSHAgentForwarding = "ssh.agent_forwarding"
	actionSSHPortForwarding  = "ssh.port_forwarding"
)

// resourceTier is the tier of resource: the store's, else the in-memory
// catalog's while the store is down.
func (s *Service) resourceTier(ctx context.Context, name string) (airlock.Tier, bool) {
	r, err := s.store.FindResourceByName(ctx, name)
	if err == nil {
		return r.Tier, true
	}
	if unavailable(err) && s.cfg.ResourceTier != nil {
		return s.cfg.ResourceTier(name)
	}
	return 0, false
}

// Sweep ends every session of this replica past its end, and every stored
// unreviewed event past its end that nobody ended (a replica that died),
// with reason "expired".
func (s *Service) Sweep(ctx context.Context) {
	now := s.now()
	s.mu.Lock()
	var due []*Session
	for _, sess := range s.sessions {
		if sess.Event.EndedAt.IsZero() && !now.Before(sess.Event.EndsAt) {
			due = append(due, sess.snapshot())
		}
	}
	// Ended sessions past their end are of no further use here.
	for k, sess := range s.sessions {
		if !sess.Event.EndedAt.IsZero() && !now.Before(sess.Event.EndsAt) {
			delete(s.sessions, k)
		}
	}
	s.mu.Unlock()
	for _, sess := range due {
		if err := s.End(ctx, sess, "expired", passkey.Meta{}); err != nil && airlock.ErrorCode(err) != airlock.ECONFLICT {
			s.logger.Warn("break-glass: expired session not ended", "event", sess.Event.ID, "err", err)
		}
	}
	evs, err := s.store.ListBreakGlassEvents(ctx, airlock.BreakGlassFilter{Unreviewed: true, Limit: 100})
	if err != nil {
		return
	}
	for _, ev := range evs {
		if ev.EndedAt.IsZero() && !now.Before(ev.EndsAt) {
			if err := s.end(ctx, ev.ID, ev.TokenHash, ev.AccountID, "", "expired", passkey.Meta{}); err != nil && airlock.ErrorCode(err) != airlock.ECONFLICT {
				s.logger.Warn("break-glass: expired event not ended", "event", ev.ID, "err", err)
			}
		}
	}
}

// Run sweeps expired sessions, retries queued alerts and merges the local
// audit file (when the store answers) every interval until ctx ends.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.Sweep(ctx)
		if _, err := s.RetryAlerts(ctx); err != nil && ctx.Err() == nil {
			s.logger.Error("break-glass alert retry", "err", err)
		}
		if s.store.Ping(ctx) == nil {
			if _, err := s.Merge(ctx); err != nil && ctx.Err() == nil {
				s.logger.Error("break-glass merge of the local audit file", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
