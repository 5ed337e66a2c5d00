package breakglass

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"time"

	"airlock"
	"airlock/passkey"
)

// memCeremony is a begun use kept in this process's memory because the
// store could not take it.
type memCeremony struct {
	c *airlock.Ceremony
}

// ceremonyState is a begun use's state (the ceremony's Data).
type ceremonyState struct {
	AccountID     string `json:"account_id"`
	Account       string `json:"account"`
	Justification string `json:"justification"`
	Sealed        []byte `json:"sealed"`
}

// digest is what the break-glass assertion signs (through its challenge):
// the account, the justification and the break-glass policy.
func (s *Service) digest(accountID, account, justification string) []byte {
	b, _ := json.Marshal(struct {
		V             int      `json:"v"`
		AccountID     string   `json:"account_id"`
		Account       string   `json:"account"`
		Justification string   `json:"justification"`
		Scopes        []string `json:"scopes"`
		DurationS     int64    `json:"duration_s"`
	}{1, accountID, account, justification, s.cfg.Scopes, int64(s.cfg.Duration / time.Second)})
	h := sha256.Sum256(b)
	return h[:]
}

// account resolves the break-glass account named name and its passkeys:
// from the store when it answers, else from the static credential file
// (offline is then true). A name that is not a break-glass account (a
// normal one, or none) is EFORBIDDEN with passkey.ReasonNotBreakGlass —
// the same answer for both, so that this unauthenticated path tells
// nobody which names exist.
func (s *Service) account(ctx context.Context, name string) (u *airlock.User, creds []*airlock.Credential, offline bool, err error) {
	notBG := refuse(airlock.EFORBIDDEN, passkey.ReasonNotBreakGlass, "%q is not a break-glass account; this path is for break-glass accounts only", clip(name))
	if name == "" || len(name) > maxName {
		return nil, nil, false, notBG
	}
	u, err = s.store.FindUserByName(ctx, name)
	if err == nil {
		if u.Kind != airlock.UserBreakGlass {
			return u, nil, false, notBG
		}
		creds, err = s.store.ListCredentialsByUser(ctx, u.ID)
		if err == nil {
			return u, creds, false, nil
		}
	}
	if airlock.ErrorCode(err) == airlock.ENOTFOUND {
		return nil, nil, false, notBG
	}
	if !unavailable(err) {
		return nil, nil, false, err
	}
	// The store is down: the static file.
	if s.static == nil {
		return nil, nil, true, refuse(airlock.EUNAVAILABLE, ReasonNoCredentials, "the store is unavailable and no static break-glass credential file is configured")
	}
	fu, fcreds, ok := s.static.account(name)
	if !ok {
		return nil, nil, true, notBG
	}
	revoked, rerr := s.locallyRevoked()
	if rerr != nil {
		return nil, nil, true, airlock.Wrap(airlock.EUNAVAILABLE, "local revocation list", rerr)
	}
	s.mu.Lock()
	for _, c := range fcreds {
		if revoked[string(c.ID)] {
			c.RevokedAt = time.Unix(0, 0).UTC()
		}
		if n := s.signCounts[string(c.ID)]; n > c.SignCount {
			c.SignCount = n
		}
	}
	s.mu.Unlock()
	return fu, fcreds, true, nil
}

// locked reports whether the account may not be used: an unreviewed event
// in the store (when it answers) or an unmerged offline use in the local
// audit file.
func (s *Service) locked(ctx context.Context, accountID string) (bool, error) {
	if l, err := s.offlineLocked(accountID); err != nil || l {
		return true, err
	}
	evs, err := s.store.ListBreakGlassEvents(ctx, airlock.BreakGlassFilter{AccountID: accountID, Unreviewed: true, Limit: 1})
	if err != nil {
		if unavailable(err) {
			return false, nil // the local file said what this replica knows
		}
		return true, err
	}
	return len(evs) > 0, nil
}

// Begin starts a use of the break-glass account named account with a
// written justification: a passkey.KindBreakGlass ceremony whose digest
// covers the account, the justification and the policy. It refuses a
// justification that is missing, too long or not text (EINVALID), a name
// that is not a break-glass account (EFORBIDDEN, ReasonNotBreakGlass), a
// locked account (EFORBIDDEN, ReasonLocked) and, with the store down, an
// account the static file does not know. The ceremony is stored (single
// use, CeremonyTTL) or, while the store is down, kept in memory. Every
// refusal is audited "breakglass.begin_refused".
func (s *Service) Begin(ctx context.Context, account, justification string, meta passkey.Meta) (*passkey.Begin, error) {
	b, accountID, err := s.begin(ctx, account, justification)
	if err != nil {
		e := event("breakglass.begin_refused", airlock.OutcomeDenied, meta)
		e.Subject, e.UserID = accountID, accountID
		e.Reason = string(passkey.ReasonOf(err))
		e.Details["account"] = clip(account)
		e.Details["message"] = airlock.ErrorMessage(err)
		if aerr := s.record(ctx, e); aerr != nil {
			return nil, aerr
		}
		return nil, err
	}
	return b, nil
}

func (s *Service) begin(ctx context.Context, account, justification string) (*passkey.Begin, string, error) {
	if err := checkText("justification", justification); err != nil {
		return nil, "", err
	}
	u, creds, offline, err := s.account(ctx, account)
	if err != nil {
		id := ""
		if u != nil {
			id = u.ID
		}
		return nil, id, err
	}
	if l, err := s.locked(ctx, u.ID); err != nil {
		return nil, u.ID, err
	} else if l {
		return nil, u.ID, refuse(airlock.EFORBIDDEN, ReasonLocked, "break-glass account %s was used and its post-incident review is not recorded yet; it stays locked until then", u.Name)
	}
	sb, err := s.passkeys.BeginSealed(u, creds, s.digest(u.ID, u.Name, justification))
	if err != nil {
		return nil, u.ID, err
	}
	data, err := json.Marshal(ceremonyState{AccountID: u.ID, Account: u.Name, Justification: justification, Sealed: sb.State})
	if err != nil {
		return nil, u.ID, airlock.Wrap(airlock.EINTERNAL, "encode ceremony state", err)
	}
	id, err := randomID()
	if err != nil {
		return nil, u.ID, err
	}
	now := s.now().UTC()
	c := &airlock.Ceremony{ID: id, Kind: passkey.KindBreakGlass, UserID: u.ID, Data: data, CreatedAt: now, ExpiresAt: now.Add(CeremonyTTL)}
	if !offline {
		err = s.store.CreateCeremony(ctx, c)
		if err != nil && !unavailable(err) {
			return nil, u.ID, err
		}
		offline = err != nil
	}
	if offline {
		s.mu.Lock()
		s.ceremonies[id] = &memCeremony{c: c}
		s.mu.Unlock()
	}
	return &passkey.Begin{Ceremony: id, PublicKey: sb.Options}, u.ID, nil
}

// takeCeremony consumes the ceremony id (single use, even on failure):
// from memory, else from the store; and checks its kind and expiry.
func (s *Service) takeCeremony(ctx context.Context, id string) (*ceremonyState, error) {
	unknown := refuse(airlock.EUNAUTHORIZED, passkey.ReasonUnknownCeremony, "unknown or already used break-glass ceremony")
	if raw, err := base64.RawURLEncoding.DecodeString(id); err != nil || len(raw) != 32 {
		return nil, unknown
	}
	s.mu.Lock()
	mc := s.ceremonies[id]
	delete(s.ceremonies, id)
	// Drop the expired ones while here.
	for k, v := range s.ceremonies {
		if !s.now().Before(v.c.ExpiresAt) {
			delete(s.ceremonies, k)
		}
	}
	s.mu.Unlock()
	var c *airlock.Ceremony
	if mc != nil {
		c = mc.c
	} else {
		var err error
		c, err = s.store.ConsumeCeremony(ctx, id)
		if airlock.ErrorCode(err) == airlock.ENOTFOUND || unavailable(err) {
			return nil, unknown
		} else if err != nil {
			return nil, err
		}
	}
	if c.Kind != passkey.KindBreakGlass {
		return nil, refuse(airlock.EUNAUTHORIZED, passkey.ReasonWrongCeremony, "ceremony is a %s ceremony, not a break-glass one", clip(c.Kind))
	}
	if !s.now().Before(c.ExpiresAt) {
		return nil, refuse(airlock.EEXPIRED, passkey.ReasonExpired, "break-glass ceremony expired; start again")
	}
	var st ceremonyState
	if err := json.Unmarshal(c.Data, &st); err != nil || st.AccountID == "" {
		return nil, refuse(airlock.EINTERNAL, passkey.ReasonStore, "stored break-glass ceremony state is corrupt")
	}
	return &st, nil
}

// randomID is 32 random bytes, base64url: a ceremony id or session secret.
func randomID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", airlock.Wrap(airlock.EINTERNAL, "random source failed", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
