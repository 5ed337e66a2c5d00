package passkey

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"airlock"
)

// KindBreakGlass is the ceremony kind of a break-glass use: the sealed
// account's passkey over the digest of the account, the justification and
// the break-glass policy. Its state is kept by package breakglass (in the
// store, or in memory when the store is down), not by this Service.
const KindBreakGlass = "breakglass"

// SealedBegin is a started break-glass assertion: the options for the
// browser and the state to keep until Finish.
type SealedBegin struct {
	// Options is the W3C PublicKeyCredentialRequestOptions JSON form, as
	// Begin.PublicKey.
	Options any
	// State is opaque: pass it back to VerifySealed.
	State []byte
}

// SealedResult is what a verified break-glass assertion proves.
type SealedResult struct {
	// Credential is the passkey used, with SignCount and LastUsedAt set to
	// the new values (the caller stores them when it can).
	Credential *airlock.Credential
	// Challenge is base64url(SHA-256(nonce ‖ digest)), for the audit trail.
	Challenge string
	// OldSignCount is the sign count the passkey had before this use (the
	// compare-and-set value for UpdateCredentialUse).
	OldSignCount uint32
}

// sealedState is the state of a break-glass assertion between BeginSealed
// and VerifySealed.
type sealedState struct {
	webauthn.SessionData
	Nonce []byte `json:"airlock_nonce"`
}

// sealedUsable reports whether c may be offered to the break-glass account
// u: its own, not revoked, device-bound (BE=0).
func sealedUsable(u *airlock.User, c *airlock.Credential) bool {
	return c != nil && c.UserID == u.ID && !c.IsRevoked() && !c.BackupEligible
}

// BeginSealed starts a break-glass assertion for the sealed account u with
// the given passkeys (from the store or from the static break-glass
// credential file): the options allow exactly those that are not revoked
// and not backup-eligible (BE=0), require user verification and carry the
// challenge SHA-256(nonce ‖ digest). It touches no store, so that it works
// while the database is down. An account that is not of kind breakglass is
// refused (EFORBIDDEN, ReasonNotBreakGlass); one that is disabled, or has
// no such passkey, too.
func (s *Service) BeginSealed(u *airlock.User, creds []*airlock.Credential, digest []byte) (*SealedBegin, error) {
	if u == nil || u.Kind != airlock.UserBreakGlass {
		return nil, fail(airlock.EFORBIDDEN, ReasonNotBreakGlass, nil, "not a break-glass account")
	}
	if len(digest) == 0 {
		return nil, fail(airlock.EINTERNAL, ReasonStore, nil, "nothing to confirm: empty digest")
	}
	if u.Disabled {
		return nil, fail(airlock.EFORBIDDEN, ReasonUserDisabled, nil, "user %s is disabled", u.Name)
	}
	var allowed []webauthn.Credential
	for _, c := range creds {
		if sealedUsable(u, c) {
			allowed = append(allowed, webauthnCredential(c, false))
		}
	}
	if len(allowed) == 0 {
		return nil, fail(airlock.EFORBIDDEN, ReasonNoCredential, nil, "break-glass account %s has no usable sealed passkey", u.Name)
	}
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, airlock.Wrap(airlock.EINTERNAL, "random source failed", err)
	}
	assertion, session, err := s.wa.BeginLogin(&waUser{u: u, creds: allowed},
		webauthn.WithChallenge(StepUpChallenge(nonce, digest)),
		webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, airlock.Wrap(airlock.EINTERNAL, "could not start the break-glass ceremony", err)
	}
	// Expiry is the caller's, on its clock (go-webauthn would compare
	// SessionData.Expires against the real time.Now).
	session.Expires = time.Time{}
	st := sealedState{SessionData: *session, Nonce: nonce}
	data, err := json.Marshal(&st)
	if err != nil {
		return nil, airlock.Wrap(airlock.EINTERNAL, "could not encode ceremony state", err)
	}
	return &SealedBegin{Options: assertion.Response, State: data}, nil
}

// VerifySealed verifies a break-glass assertion against state from
// BeginSealed, re-deriving the challenge from digest: client data (type,
// challenge, exact origin), RP ID hash, UP, UV, BE=0 in the assertion, a
// passkey of u among creds that the ceremony offered, not revoked, its
// signature, and a sign count that increased (a clone signal refuses). It
// touches no store; recording the use (sign count, audit) is the caller's.
func (s *Service) VerifySealed(state []byte, u *airlock.User, creds []*airlock.Credential, digest, credentialJSON []byte) (*SealedResult, error) {
	if u == nil || u.Kind != airlock.UserBreakGlass {
		return nil, fail(airlock.EFORBIDDEN, ReasonNotBreakGlass, nil, "not a break-glass account")
	}
	var st sealedState
	if err := json.Unmarshal(state, &st); err != nil || len(st.Nonce) == 0 || st.Challenge == "" {
		return nil, fail(airlock.EINTERNAL, ReasonStore, err, "break-glass ceremony state is corrupt")
	}
	st.SessionData.Expires = time.Time{}
	// The challenge must have been derived from the digest as it is now:
	// a changed justification, account or policy invalidates the ceremony.
	want := protocol.URLEncodedBase64(StepUpChallenge(st.Nonce, digest)).String()
	if st.Challenge != want {
		return nil, fail(airlock.EUNAUTHORIZED, ReasonRequestBinding, nil, "the passkey ceremony was not started for this justification, account and policy")
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(credentialJSON)
	if err != nil {
		return nil, fail(airlock.EINVALID, ReasonParse, err, "malformed assertion response (expected PublicKeyCredential JSON from credential.toJSON())")
	}
	if err := s.checkClientData(&parsed.Response.CollectedClientData, protocol.AssertCeremony, st.Challenge); err != nil {
		return nil, err
	}
	ad := &parsed.Response.AuthenticatorData
	if err := s.checkAuthData(ad); err != nil {
		return nil, err
	}
	// A sealed passkey is device-bound: an assertion claiming backup
	// eligibility is not from the hardware registered at set-up.
	if ad.Flags.HasBackupEligible() {
		return nil, fail(airlock.EUNAUTHORIZED, ReasonBreakGlassBound, nil, "the assertion is from a backup-eligible (synced) passkey; break-glass needs the sealed device-bound one")
	}
	var cred *airlock.Credential
	for _, c := range creds {
		if c != nil && bytes.Equal(c.ID, parsed.RawID) {
			cred = c
			break
		}
	}
	if cred == nil || cred.UserID != u.ID {
		return nil, fail(airlock.EUNAUTHORIZED, ReasonUnknownCredential, nil, "this passkey is not a sealed passkey of break-glass account %s", u.Name)
	}
	if h := parsed.Response.UserHandle; len(h) > 0 && !bytes.Equal(h, u.Handle) {
		return nil, fail(airlock.EUNAUTHORIZED, ReasonUserHandle, nil, "the assertion's userHandle does not belong to the passkey's owner")
	}
	offered := false
	for _, id := range st.AllowedCredentialIDs {
		offered = offered || bytes.Equal(id, cred.ID)
	}
	if !offered {
		return nil, fail(airlock.EUNAUTHORIZED, ReasonWrongCredential, nil, "this passkey was not offered for this break-glass use")
	}
	one := st.SessionData
	one.AllowedCredentialIDs = [][]byte{cred.ID}
	wc, err := s.wa.ValidateLogin(&waUser{u: u, creds: []webauthn.Credential{webauthnCredential(cred, false)}}, one, parsed)
	if err != nil {
		return nil, libraryFailure(err)
	}
	// The caller proved possession of the key: specific messages now.
	if cred.IsRevoked() {
		return nil, fail(airlock.EUNAUTHORIZED, ReasonCredentialRevoked, nil, "this passkey has been revoked")
	}
	if cred.BackupEligible {
		return nil, fail(airlock.EUNAUTHORIZED, ReasonBreakGlassBound, nil, "this passkey is backup-eligible; break-glass needs a device-bound one")
	}
	if u.Disabled {
		return nil, fail(airlock.EFORBIDDEN, ReasonUserDisabled, nil, "user %s is disabled", u.Name)
	}
	// W11 at every tier: a sealed key whose count did not increase may
	// have been copied.
	if wc.Authenticator.CloneWarning {
		return nil, fail(airlock.EUNAUTHORIZED, ReasonClone, nil, "sign count did not increase (stored %d, asserted %d): possible cloned authenticator", cred.SignCount, ad.Counter)
	}
	out := *cred
	out.SignCount = wc.Authenticator.SignCount
	out.BackupState = false
	out.LastUsedAt = s.now().UTC()
	return &SealedResult{Credential: &out, Challenge: st.Challenge, OldSignCount: cred.SignCount}, nil
}

// ReasonNotBreakGlass: a normal account on the break-glass path, or a
// break-glass account on the normal login.
const ReasonNotBreakGlass Reason = "breakglass_account_mismatch"
