package elevate

import (
	"bytes"
	"context"
	"errors"
	"time"

	"airlock"
	"airlock/decide"
	"airlock/device"
	"airlock/passkey"
)

// lookup loads what grants rest on, once per call, starting from what the
// edge already loaded for the caller (sub).
type lookup struct {
	store    airlock.Store
	sessions map[string]*airlock.Session
	devices  map[string]*airlock.Device
	users    map[string]*airlock.User
	creds    map[string]*airlock.Credential
}

func newLookup(store airlock.Store, sub *decide.Subject) *lookup {
	lk := &lookup{store: store, sessions: map[string]*airlock.Session{}, devices: map[string]*airlock.Device{},
		users: map[string]*airlock.User{}, creds: map[string]*airlock.Credential{}}
	if sub != nil {
		lk.sessions[sub.Session.ID] = sub.Session
		lk.devices[sub.Device.ID] = sub.Device
		lk.users[sub.User.ID] = sub.User
	}
	return lk
}

// load returns m[key], else fetches it; a missing record is nil.
func load[T any](ctx context.Context, m map[string]*T, key string, fetch func() (*T, error)) (*T, error) {
	if v, ok := m[key]; ok {
		return v, nil
	}
	v, err := fetch()
	if airlock.ErrorCode(err) == airlock.ENOTFOUND {
		v, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	m[key] = v
	return v, nil
}

// broken says why grant g no longer rests on good things — its session
// live, its device trusted and compliant, its passkey unrevoked, its user
// enabled — as an End* reason, or "" when it does.
func (s *Service) broken(ctx context.Context, g *airlock.Grant, lk *lookup, now time.Time) (string, error) {
	ss, err := load(ctx, lk.sessions, g.SessionID, func() (*airlock.Session, error) { return s.store.FindSessionByID(ctx, g.SessionID) })
	if err != nil {
		return "", err
	}
	if ss == nil || !ss.IsLive(now) {
		return airlock.EndSessionEnded, nil
	}
	d, err := load(ctx, lk.devices, g.DeviceID, func() (*airlock.Device, error) { return s.store.FindDeviceByID(ctx, g.DeviceID) })
	if err != nil {
		return "", err
	}
	if d == nil || d.Trust != airlock.TrustTrusted {
		return airlock.EndDeviceUntrusted, nil
	}
	if !device.Evaluate(d, s.cfg.DeviceRules, now).Compliant {
		return airlock.EndDeviceNonCompliant, nil
	}
	c, err := load(ctx, lk.creds, string(g.CredentialID), func() (*airlock.Credential, error) {
		return s.store.FindCredentialByID(ctx, g.CredentialID)
	})
	if err != nil {
		return "", err
	}
	if c == nil || c.IsRevoked() || c.UserID != g.UserID {
		return airlock.EndCredentialRevoked, nil
	}
	u, err := load(ctx, lk.users, g.UserID, func() (*airlock.User, error) { return s.store.FindUserByID(ctx, g.UserID) })
	if err != nil {
		return "", err
	}
	if u == nil || u.Disabled {
		return airlock.EndUserDisabled, nil
	}
	return "", nil
}

// endGrant ends g for reason on behalf of actor (a user ID or "system")
// and audits "elevation.ended". A grant already ended is ECONFLICT
// (nothing audited).
func (s *Service) endGrant(ctx context.Context, g *airlock.Grant, reason, actor string, meta auditMeta) error {
	now := s.now()
	if err := s.store.EndGrant(ctx, g.ID, reason, actor, now); err != nil {
		return err
	}
	g.EndedAt, g.EndReason, g.EndedBy = now, reason, actor
	e := s.grantEvent("elevation.ended", airlock.OutcomeSuccess, g, meta)
	e.Actor, e.Reason = actor, reason
	if !now.Before(g.NotAfter) {
		e.Details["overdue_s"] = int64(now.Sub(g.NotAfter) / time.Second)
	}
	return s.audit.Record(ctx, e)
}

// ActiveGrants returns the grants in force for sub's session: not ended,
// inside their window, and resting on a live session, a trusted and
// compliant device, an unrevoked passkey and an enabled user. A grant
// belongs to the session that requested it and never serves another
// session of the same user. A grant found resting on something no longer
// good is ended on the spot (with its End* reason, audited
// "elevation.ended") and left out. A store error is returned (the caller
// fails closed).
func (s *Service) ActiveGrants(ctx context.Context, sub decide.Subject) ([]*airlock.Grant, error) {
	if err := checkSubject(sub); err != nil {
		return nil, err
	}
	now := s.now()
	gs, err := s.store.ListGrants(ctx, airlock.GrantFilter{SessionID: sub.Session.ID, ActiveAt: now, Limit: 1000})
	if err != nil {
		return nil, err
	}
	lk := newLookup(s.store, &sub)
	out := []*airlock.Grant{}
	for _, g := range gs {
		if g.SessionID != sub.Session.ID || g.UserID != sub.User.ID || !g.IsActive(now) {
			continue
		}
		why, err := s.broken(ctx, g, lk, now)
		if err != nil {
			return nil, err
		}
		if why != "" {
			if err := s.endGrant(ctx, g, why, "system", auditMeta{}); err != nil && airlock.ErrorCode(err) != airlock.ECONFLICT {
				return nil, err
			}
			continue
		}
		out = append(out, g)
	}
	return out, nil
}

// Grants returns sub's user's grants, newest first, active or not (at
// most 100).
func (s *Service) Grants(ctx context.Context, sub decide.Subject) ([]*airlock.Grant, error) {
	if err := checkSubject(sub); err != nil {
		return nil, err
	}
	return s.store.ListGrants(ctx, airlock.GrantFilter{UserID: sub.User.ID})
}

// UsableGrant returns grant id if it is one of ActiveGrants(sub): what SSH
// certificates and grant tokens are issued from. Someone else's grant (or
// none) is ENOTFOUND; one of the user's other sessions, ended, not yet
// valid or resting on something no longer good (it is ended then) is
// EFORBIDDEN; one past its NotAfter is EEXPIRED (and ended as expired).
func (s *Service) UsableGrant(ctx context.Context, id string, sub decide.Subject) (*airlock.Grant, error) {
	if err := checkSubject(sub); err != nil {
		return nil, err
	}
	g, err := s.store.FindGrantByID(ctx, id)
	if airlock.ErrorCode(err) == airlock.ENOTFOUND || (err == nil && g.UserID != sub.User.ID) {
		return nil, refuse(airlock.ENOTFOUND, ReasonUnknownGrant, "unknown grant %q", clip(id, 64))
	} else if err != nil {
		return nil, err
	}
	if g.SessionID != sub.Session.ID {
		return nil, refuse(airlock.EFORBIDDEN, ReasonGrantOtherSession,
			"grant %s belongs to the session that requested it, not this one", g.ID)
	}
	if !g.EndedAt.IsZero() {
		return nil, refuse(airlock.EFORBIDDEN, ReasonGrantEnded, "grant %s has ended (%s)", g.ID, g.EndReason)
	}
	now := s.now()
	if !now.Before(g.NotAfter) {
		if err := s.endGrant(ctx, g, airlock.EndExpired, "system", auditMeta{}); err != nil && airlock.ErrorCode(err) != airlock.ECONFLICT {
			return nil, err
		}
		return nil, refuse(airlock.EEXPIRED, ReasonGrantExpired, "grant %s expired at %s", g.ID, g.NotAfter.Format(time.RFC3339))
	}
	if now.Before(g.NotBefore) {
		return nil, refuse(airlock.EFORBIDDEN, ReasonGrantNotYet, "grant %s is valid from %s", g.ID, g.NotBefore.Format(time.RFC3339))
	}
	why, err := s.broken(ctx, g, newLookup(s.store, &sub), now)
	if err != nil {
		return nil, err
	}
	if why != "" {
		if err := s.endGrant(ctx, g, why, "system", auditMeta{}); err != nil && airlock.ErrorCode(err) != airlock.ECONFLICT {
			return nil, err
		}
		return nil, refuse(airlock.EFORBIDDEN, ReasonGrantEnded, "grant %s has ended (%s)", g.ID, why)
	}
	return g, nil
}

// EndGrant ends grant id early: by its holder (reason EndDone: the task is
// done) or by an admin (EndRevokedByAdmin; the holder is notified). For
// anyone else the grant does not exist (ENOTFOUND); one already ended is
// ECONFLICT. Audited "elevation.ended".
func (s *Service) EndGrant(ctx context.Context, id string, by decide.Subject, meta passkey.Meta) (*airlock.Grant, error) {
	if err := checkSubject(by); err != nil {
		return nil, err
	}
	g, err := s.store.FindGrantByID(ctx, id)
	holder := err == nil && g.UserID == by.User.ID
	if airlock.ErrorCode(err) == airlock.ENOTFOUND || (err == nil && !holder && !isAdmin(by)) {
		return nil, refuse(airlock.ENOTFOUND, ReasonUnknownGrant, "unknown grant %q", clip(id, 64))
	} else if err != nil {
		return nil, err
	}
	if !g.EndedAt.IsZero() {
		return nil, refuse(airlock.ECONFLICT, ReasonGrantEnded, "grant %s has already ended (%s)", g.ID, g.EndReason)
	}
	reason := airlock.EndDone
	if !holder {
		reason = airlock.EndRevokedByAdmin
	}
	am := fromPasskeyMeta(meta)
	if err := s.endGrant(ctx, g, reason, by.User.ID, am); err != nil {
		if airlock.ErrorCode(err) == airlock.ECONFLICT {
			return nil, refuse(airlock.ECONFLICT, ReasonGrantEnded, "grant %s has already ended", g.ID)
		}
		return nil, err
	}
	if !holder {
		_ = s.notifier.Notify(ctx, g.UserID, NotifyRevoked, map[string]any{"grant_id": g.ID, "request_id": g.RequestID,
			"scope": g.Scope.String(), "revoked_by": by.User.Name})
	}
	return g, nil
}

// Target names what EndGrantsFor ends grants for; exactly one field set.
type Target struct {
	SessionID    string
	DeviceID     string
	UserID       string
	CredentialID []byte
}

// EndGrantsFor ends every grant in force resting on t, with reason, at once
// (the hooks of session end, device trust or compliance change, credential
// revocation, user disablement), each audited "elevation.ended". actor is a
// user ID or "system". Grants ended meanwhile by someone else are skipped;
// the first other error is returned after trying them all.
func (s *Service) EndGrantsFor(ctx context.Context, t Target, reason, actor string) error {
	n := 0
	for _, set := range []bool{t.SessionID != "", t.DeviceID != "", t.UserID != "", len(t.CredentialID) > 0} {
		if set {
			n++
		}
	}
	if n != 1 || reason == "" || actor == "" {
		return airlock.Errorf(airlock.EINVALID, "elevate: EndGrantsFor needs exactly one target, a reason and an actor")
	}
	f := airlock.GrantFilter{SessionID: t.SessionID, UserID: t.UserID, ActiveAt: s.now(), Limit: maxScanGrants}
	if len(t.CredentialID) > 0 {
		// A passkey's grants are its owner's: list only theirs when the
		// passkey is still on record (else look at every grant).
		c, err := s.store.FindCredentialByID(ctx, t.CredentialID)
		if err == nil {
			f.UserID = c.UserID
		} else if airlock.ErrorCode(err) != airlock.ENOTFOUND {
			return err
		}
	}
	gs, err := s.store.ListGrants(ctx, f)
	if err != nil {
		return err
	}
	var errs []error
	for _, g := range gs {
		if (t.DeviceID != "" && g.DeviceID != t.DeviceID) || (len(t.CredentialID) > 0 && !bytes.Equal(g.CredentialID, t.CredentialID)) {
			continue
		}
		if err := s.endGrant(ctx, g, reason, actor, auditMeta{}); err != nil && airlock.ErrorCode(err) != airlock.ECONFLICT {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// SessionsEnded ends the grants of sessions that just ended, with reason
// EndSessionEnded (the session's own reason is in its "session.ended"
// event). It is the session manager's end hook (session.EndHook), so that
// a logout, a revocation or an expiry ends the session's grants at once.
func (s *Service) SessionsEnded(ctx context.Context, sessionIDs []string, reason, actor string) error {
	var errs []error
	for _, id := range sessionIDs {
		if err := s.EndGrantsFor(ctx, Target{SessionID: id}, airlock.EndSessionEnded, actor); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sweepBatch is how many records one sweep query handles.
const sweepBatch = 100

// Sweep expires pending requests past their ExpiresAt (audited
// "elevation.expired", the requester notified), ends grants past NotAfter
// (EndExpired), and ends grants in force whose session, device, passkey or
// user is no longer good (their End* reason), each audited
// "elevation.ended". It returns how many records it changed.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	now := s.now()
	changed := 0
	for {
		rs, err := s.store.ListExpiredAccessRequests(ctx, now, sweepBatch)
		if err != nil {
			return changed, err
		}
		for _, r := range rs {
			if err := s.expire(ctx, r, now, auditMeta{}); err == nil {
				changed++
			} else if airlock.ErrorCode(err) != airlock.ECONFLICT {
				return changed, err
			}
		}
		if len(rs) < sweepBatch {
			break
		}
	}
	for {
		gs, err := s.store.ListGrantsToEnd(ctx, now, sweepBatch)
		if err != nil {
			return changed, err
		}
		for _, g := range gs {
			if err := s.endGrant(ctx, g, airlock.EndExpired, "system", auditMeta{}); err == nil {
				changed++
			} else if airlock.ErrorCode(err) != airlock.ECONFLICT {
				return changed, err
			}
		}
		if len(gs) < sweepBatch {
			break
		}
	}
	gs, err := s.store.ListGrants(ctx, airlock.GrantFilter{ActiveAt: now, Limit: maxScanGrants})
	if err != nil {
		return changed, err
	}
	lk := newLookup(s.store, nil)
	for _, g := range gs {
		why, err := s.broken(ctx, g, lk, now)
		if err != nil {
			return changed, err
		}
		if why == "" {
			continue
		}
		if err := s.endGrant(ctx, g, why, "system", auditMeta{}); err == nil {
			changed++
		} else if airlock.ErrorCode(err) != airlock.ECONFLICT {
			return changed, err
		}
	}
	return changed, nil
}

// Run sweeps every interval (≤ 0: 30 s) until ctx is done; failures are
// logged and the next round tries again.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 30 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.Sweep(ctx); err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
				s.log.Error("elevation sweep", "err", err)
			}
		}
	}
}
