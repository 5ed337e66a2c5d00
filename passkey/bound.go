package passkey

import (
	"bytes"
	"context"
	"crypto/rand"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"airlock"
)

// A bound assertion is a user-verified WebAuthn assertion whose challenge
// is SHA-256(nonce ‖ digest) of one exact thing being confirmed — a step-up
// transaction, an access request being approved — by one person on one
// device (DESIGN.md "Transaction"). Step-up and approval share the
// ceremony below; they differ in what the digest covers and in what the
// caller does with the verified facts.

// Confirmer is who may complete a bound assertion: the signed-in user, on
// the device of the session, and (where set) only that session. Only the
// user's unrevoked passkeys bound to that device are offered and
// accepted.
type Confirmer struct {
	UserID   string
	DeviceID string
	// SessionID, when set, is the only session that may finish the
	// ceremony, and the one whose last user verification it refreshes.
	SessionID string
	// Tier is the tier the confirmation is for (an approval: the scope's
	// tier): only passkeys that may serve it — or a more privileged one —
	// are offered and accepted, so a synced passkey (tier 2 at most) never
	// approves a tier-0 or tier-1 request. The zero value is tier 0, the
	// strictest. It is stored with the ceremony at begin; at finish the
	// stored tier applies. A step-up asks for its session's tier.
	Tier airlock.Tier
}

// boundState is the stored state of a bound ceremony: go-webauthn's
// session data, the nonce the challenge was derived from and, for
// ceremonies begun by a session (approvals), that session and its device.
// A step-up keeps its session and device on its transaction instead.
type boundState struct {
	webauthn.SessionData
	Nonce     []byte `json:"airlock_nonce"`
	DeviceID  string `json:"airlock_device,omitempty"`
	SessionID string `json:"airlock_session,omitempty"`
	// Tier is the Confirmer's: the least privileged tier the confirming
	// passkey may serve.
	Tier airlock.Tier `json:"airlock_tier"`
}

// errBreakGlassConfirm refuses a bound ceremony of a break-glass account:
// such an account never steps up, approves or confirms anything (it has no
// normal session; its one ceremony is the break-glass use).
func errBreakGlassConfirm() error {
	return fail(airlock.EFORBIDDEN, ReasonNotBreakGlass, nil, "break-glass accounts cannot step up, approve or confirm")
}

// beginBound starts a ceremony of kind that c confirms, bound to ref (the
// ceremony's Ref: what it confirms) through digest: the options allow
// exactly c's unrevoked passkeys on c's device that may serve c.Tier,
// require user verification,
// and carry the challenge SHA-256(nonce ‖ digest) with a fresh 32-byte
// nonce. A disabled user, a break-glass account (ReasonNotBreakGlass) or
// a user without such a passkey is refused.
func (s *Service) beginBound(ctx context.Context, kind string, c Confirmer, ref string, digest []byte) (*Begin, error) {
	if len(digest) == 0 {
		return nil, fail(airlock.EINTERNAL, ReasonStore, nil, "nothing to confirm: empty digest")
	}
	u, err := s.store.FindUserByID(ctx, c.UserID)
	if err != nil {
		return nil, storeFail(err, "user lookup")
	}
	if u.Disabled {
		return nil, fail(airlock.EFORBIDDEN, ReasonUserDisabled, nil, "user %s is disabled", u.Name)
	}
	if u.Kind == airlock.UserBreakGlass {
		return nil, errBreakGlassConfirm()
	}
	creds, err := s.store.ListCredentialsByUser(ctx, u.ID)
	if err != nil {
		return nil, storeFail(err, "credential lookup")
	}
	var allowed []webauthn.Credential
	for _, cr := range creds {
		if cr.DeviceID != c.DeviceID || cr.IsRevoked() {
			continue
		}
		if t, ok := s.effectiveTier(u, cr); !ok || t > c.Tier {
			continue
		}
		allowed = append(allowed, webauthnCredential(cr, cr.BackupEligible))
	}
	if len(allowed) == 0 {
		return nil, fail(airlock.EFORBIDDEN, ReasonNoCredential, nil, "you have no usable passkey on this session's device")
	}
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, airlock.Wrap(airlock.EINTERNAL, "random source failed", err)
	}
	assertion, session, err := s.wa.BeginLogin(&waUser{u: u, creds: allowed},
		webauthn.WithChallenge(StepUpChallenge(nonce, digest)),
		webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, airlock.Wrap(airlock.EINTERNAL, "could not start the "+kind+" ceremony", err)
	}
	st := &boundState{SessionData: *session, Nonce: nonce, Tier: c.Tier}
	if kind != KindStepUp {
		st.DeviceID, st.SessionID = c.DeviceID, c.SessionID
	}
	return s.storeCeremonyState(ctx, kind, u.ID, ref, &st.SessionData, st, assertion.Response)
}

// verifyBound verifies an assertion answering the ceremony whose stored
// session data is sd (WebAuthn L3 §7.2): client data (type, challenge,
// origin), UP and UV from this assertion, the RP ID hash, BE/BS; a
// credential of userID bound to deviceID, its signature, then — once the
// caller proved possession of the key — not revoked, the user enabled and
// not a break-glass account, the
// device in the inventory and not revoked, a tier at least as privileged
// as maxTier still served, and the
// backup-eligibility and sign-count rules of acceptAssertion (which also
// records the use). The passkey must be one the ceremony offered (its
// allow-list); go-webauthn is then shown that passkey alone, as the whole
// allow-list (it refuses a list naming credentials it was not given, which
// made every confirmation fail for a person with two passkeys on the
// device). The raw credential id, once parsed, is stored in
// *credID for the caller's failure record. Whether the challenge was
// derived from the right digest is the caller's check, made before.
func (s *Service) verifyBound(ctx context.Context, sd *webauthn.SessionData, credentialJSON []byte, userID, deviceID string, maxTier airlock.Tier, meta Meta, credID *[]byte) (*airlock.User, *airlock.Device, *airlock.Credential, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(credentialJSON)
	if err != nil {
		return nil, nil, nil, fail(airlock.EINVALID, ReasonParse, err, "malformed assertion response (expected PublicKeyCredential JSON from credential.toJSON())")
	}
	if len(parsed.RawID) <= maxCredentialIDLength {
		*credID = parsed.RawID
	}
	if err := s.checkClientData(&parsed.Response.CollectedClientData, protocol.AssertCeremony, sd.Challenge); err != nil {
		return nil, nil, nil, err
	}
	ad := &parsed.Response.AuthenticatorData
	// UP, UV (required for every bound assertion: W5) and the RP ID hash,
	// from this assertion.
	if err := s.checkAuthData(ad); err != nil {
		return nil, nil, nil, err
	}

	mu := s.credLock(parsed.RawID)
	mu.Lock()
	defer mu.Unlock()
	cred, err := s.store.FindCredentialByID(ctx, parsed.RawID)
	if airlock.ErrorCode(err) == airlock.ENOTFOUND {
		return nil, nil, nil, fail(airlock.EUNAUTHORIZED, ReasonUnknownCredential, nil, "unknown passkey")
	} else if err != nil {
		return nil, nil, nil, storeFail(err, "credential lookup")
	}
	// The passkey must be the confirming user's, on the session's device:
	// another device's or another person's passkey confirms nothing here.
	if cred.UserID != userID || cred.DeviceID != deviceID {
		return nil, nil, nil, fail(airlock.EUNAUTHORIZED, ReasonWrongCredential, nil, "this passkey is not bound to the signed-in user and device of the request")
	}
	u, err := s.store.FindUserByID(ctx, userID)
	if err != nil {
		return nil, nil, nil, storeFail(err, "user lookup")
	}
	if h := parsed.Response.UserHandle; len(h) > 0 && !bytes.Equal(h, u.Handle) {
		return nil, nil, nil, fail(airlock.EUNAUTHORIZED, ReasonUserHandle, nil, "the assertion's userHandle does not belong to the passkey's owner")
	}
	// WebAuthn L3 §7.2 step 1: the credential is one of allowCredentials.
	offered := len(sd.AllowedCredentialIDs) == 0
	for _, id := range sd.AllowedCredentialIDs {
		offered = offered || bytes.Equal(id, cred.ID)
	}
	if !offered {
		return nil, nil, nil, fail(airlock.EUNAUTHORIZED, ReasonWrongCredential, nil, "this passkey was not offered for this confirmation")
	}
	one := *sd
	one.AllowedCredentialIDs = [][]byte{cred.ID}
	assertedBE := ad.Flags.HasBackupEligible()
	wc, err := s.wa.ValidateLogin(&waUser{u: u, creds: []webauthn.Credential{webauthnCredential(cred, assertedBE)}}, one, parsed)
	if err != nil {
		return nil, nil, nil, libraryFailure(err)
	}
	if cred.IsRevoked() {
		return nil, nil, nil, fail(airlock.EUNAUTHORIZED, ReasonCredentialRevoked, nil, "this passkey has been revoked")
	}
	if u.Disabled {
		return nil, nil, nil, fail(airlock.EFORBIDDEN, ReasonUserDisabled, nil, "user %s is disabled", u.Name)
	}
	if u.Kind == airlock.UserBreakGlass {
		return nil, nil, nil, errBreakGlassConfirm()
	}
	d, err := s.store.FindDeviceByID(ctx, cred.DeviceID)
	if airlock.ErrorCode(err) == airlock.ENOTFOUND {
		return nil, nil, nil, fail(airlock.EFORBIDDEN, ReasonDeviceMissing, nil, "the passkey's device is no longer in the inventory")
	} else if err != nil {
		return nil, nil, nil, storeFail(err, "device lookup")
	}
	if d.Trust == airlock.TrustRevoked {
		return nil, nil, nil, fail(airlock.EFORBIDDEN, ReasonDeviceRevoked, nil, "device %s is revoked", d.Name)
	}
	tier, ok := s.effectiveTier(u, cred)
	if !ok {
		return nil, nil, nil, fail(airlock.EFORBIDDEN, ReasonTierPolicy, nil, "this passkey no longer satisfies the policy of any tier the user may use")
	}
	if tier > maxTier {
		return nil, nil, nil, fail(airlock.EFORBIDDEN, ReasonTierPolicy, nil,
			"this passkey may serve tier %d at most; confirming this needs a passkey fit for tier %d (a device-bound one)", tier, maxTier)
	}
	if err := s.acceptAssertion(ctx, u, d, cred, ad, wc, tier, meta); err != nil {
		return nil, nil, nil, err
	}
	return u, d, cred, nil
}
