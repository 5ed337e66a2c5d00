package breakglass

import (
	"context"
	"encoding/base64"
	"encoding/json"

	"airlock"
	"airlock/passkey"
	"airlock/session"
)

// Finish completes a use: it consumes the ceremony, re-resolves the
// account (a normal account is refused again), verifies the sealed
// passkey (passkey.VerifySealed: UV, exact origin, BE=0, signature, the
// challenge re-derived from the account, justification and policy, clone
// counter), refuses a locked account, stores the new sign count (in memory
// while the store is down), raises the alert (delivered to a target or
// durably spooled, else refused: ReasonAlertFailed), records the event
// (the store's one-unreviewed-event rule is the final lock across
// replicas; offline the local audit file is the record) and audits
// "breakglass.started" — only then does it return the session token
// (shown once). Every refusal is audited "breakglass.refused".
func (s *Service) Finish(ctx context.Context, ceremonyID string, credentialJSON json.RawMessage, meta passkey.Meta) (string, *Session, error) {
	var st *ceremonyState
	token, sess, err := s.finish(ctx, ceremonyID, credentialJSON, meta, &st)
	if err != nil {
		e := event("breakglass.refused", airlock.OutcomeDenied, meta)
		if unavailable(err) || airlock.ErrorCode(err) == airlock.EINTERNAL {
			e.Outcome = airlock.OutcomeFailure
		}
		e.Reason = string(passkey.ReasonOf(err))
		e.Details["message"] = airlock.ErrorMessage(err)
		e.Details["stage"] = "finish"
		if st != nil {
			e.Subject, e.UserID = st.AccountID, st.AccountID
			e.Details["account"] = st.Account
		}
		if aerr := s.record(ctx, e); aerr != nil {
			s.logger.Error("break-glass refusal not audited", "err", aerr)
		}
		return "", nil, err
	}
	return token, sess, nil
}

func (s *Service) finish(ctx context.Context, ceremonyID string, credentialJSON []byte, meta passkey.Meta, stp **ceremonyState) (string, *Session, error) {
	st, err := s.takeCeremony(ctx, ceremonyID)
	if err != nil {
		return "", nil, err
	}
	*stp = st
	u, creds, offline, err := s.account(ctx, st.Account)
	if err != nil {
		return "", nil, err
	}
	if u.ID != st.AccountID {
		return "", nil, refuse(airlock.EFORBIDDEN, passkey.ReasonNotBreakGlass, "the break-glass account changed since the ceremony began; start again")
	}
	res, err := s.passkeys.VerifySealed(st.Sealed, u, creds, s.digest(u.ID, u.Name, st.Justification), credentialJSON)
	if err != nil {
		return "", nil, err
	}
	// One use at a time in this process, from the lock check to the
	// record: offline, the local audit file is the only lock there is.
	// (Across replicas the store's one-unreviewed-event rule decides.)
	s.useMu.Lock()
	defer s.useMu.Unlock()
	if l, err := s.locked(ctx, u.ID); err != nil {
		return "", nil, err
	} else if l {
		return "", nil, refuse(airlock.EFORBIDDEN, ReasonLocked, "break-glass account %s was used and its post-incident review is not recorded yet; it stays locked until then", u.Name)
	}
	cred := res.Credential
	now := s.now().UTC()
	if !offline {
		err := s.store.UpdateCredentialUse(ctx, cred.ID, res.OldSignCount, cred.SignCount, false, now)
		switch {
		case err == nil:
		case unavailable(err):
			offline = true
		case airlock.ErrorCode(err) == airlock.ECONFLICT:
			return "", nil, refuse(airlock.EUNAUTHORIZED, passkey.ReasonClone, "the passkey was revoked or used by another break-glass use at the same time")
		default:
			return "", nil, err
		}
	}
	s.noteSignCount(cred.ID, cred.SignCount)

	token, err := randomID()
	if err != nil {
		return "", nil, err
	}
	token = TokenPrefix + token
	ev := &airlock.BreakGlassEvent{ID: airlock.NewID(PrefixEvent), AccountID: u.ID, CredentialID: cred.ID,
		Justification: st.Justification, Scopes: append([]string(nil), s.cfg.Scopes...), IP: meta.IP, UserAgent: meta.UserAgent,
		TokenHash: session.HashToken(token), StartedAt: now, EndsAt: now.Add(s.cfg.Duration), Offline: offline}

	// The alert, before access.
	a := &Alert{ID: airlock.NewID("bga_"), Kind: NotifyUsed, Severity: "critical", EventID: ev.ID, AccountID: u.ID, Account: u.Name,
		Justification: ev.Justification, Scopes: ev.Scopes, IP: ev.IP, UserAgent: ev.UserAgent, Time: now, EndsAt: ev.EndsAt, Offline: offline}
	delivered, spooled := s.raise(ctx, a)
	ae := event("breakglass.alert", airlock.OutcomeSuccess, meta)
	ae.Subject, ae.UserID, ae.CredentialID = u.ID, u.ID, b64(cred.ID)
	ae.Details["alert_id"], ae.Details["event_id"] = a.ID, ev.ID
	ae.Details["delivered"], ae.Details["spooled"] = delivered, spooled
	if !delivered && !spooled {
		ae.Outcome = airlock.OutcomeFailure
		_ = s.record(ctx, ae)
		return "", nil, refuse(airlock.EUNAVAILABLE, ReasonAlertFailed, "the critical alert could be neither delivered nor queued; break-glass access is refused")
	}
	if err := s.record(ctx, ae); err != nil {
		return "", nil, err
	}
	ev.AlertIDs, ev.AlertDelivered = []string{a.ID}, delivered

	if !offline {
		err := s.store.CreateBreakGlassEvent(ctx, ev)
		switch {
		case err == nil:
		case unavailable(err):
			offline, ev.Offline = true, true
		case airlock.ErrorCode(err) == airlock.ECONFLICT:
			return "", nil, refuse(airlock.EFORBIDDEN, ReasonLocked, "break-glass account %s has another use without a review; it stays locked until then", u.Name)
		default:
			return "", nil, err
		}
	}
	se := event("breakglass.started", airlock.OutcomeSuccess, meta)
	se.Actor, se.Subject, se.UserID, se.CredentialID = u.ID, u.ID, u.ID, b64(cred.ID)
	se.Details = startedDetails{EventID: ev.ID, AccountID: u.ID, Account: u.Name, Justification: ev.Justification,
		Scopes: ev.Scopes, UserAgent: ev.UserAgent, TokenHash: b64(ev.TokenHash), StartedAt: ev.StartedAt, EndsAt: ev.EndsAt,
		AlertIDs: ev.AlertIDs, AlertDelivered: delivered, SignCount: cred.SignCount, OldSignCount: res.OldSignCount,
		Offline: offline}.details()
	se.Details["challenge"] = res.Challenge
	if err := s.record(ctx, se); err != nil {
		if !offline {
			// Not audited, so not started: the event ends at once (it
			// still locks the account until reviewed — fail closed).
			_ = s.store.EndBreakGlassEvent(ctx, ev.ID, "audit_failed", s.now().UTC())
		}
		return "", nil, err
	}
	sess := &Session{Event: ev, Account: u}
	s.mu.Lock()
	s.sessions[string(ev.TokenHash)] = sess
	s.mu.Unlock()
	if !offline {
		s.notifyAdmins(ctx, a)
	}
	return token, sess.snapshot(), nil
}

// notifyAdmins enqueues NotifyUsed for every enabled airlock-admin. The
// alert was raised already; a failure here is logged, not returned.
func (s *Service) notifyAdmins(ctx context.Context, a *Alert) {
	if s.cfg.Notifier == nil {
		return
	}
	users, err := s.store.ListUsers(ctx)
	if err != nil {
		s.logger.Warn("break-glass: admins not notified", "alert", a.ID, "err", err)
		return
	}
	for _, u := range users {
		if u.Disabled || u.Kind == airlock.UserBreakGlass || !hasRole(u, airlock.RoleAdmin) {
			continue
		}
		if err := s.cfg.Notifier.Notify(ctx, u.ID, NotifyUsed, a); err != nil {
			s.logger.Warn("break-glass: admin not notified", "alert", a.ID, "user", u.ID, "err", err)
		}
	}
}

func hasRole(u *airlock.User, role string) bool {
	for _, r := range u.Roles {
		if r == role {
			return true
		}
	}
	return false
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
