package passkey

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"airlock"
)

// Ceremony kinds of issue 6 (recovery and break-glass). Each is a bound
// assertion (bound.go) under its own kind, so that a ceremony of one kind
// never completes another.
const (
	// KindRecoveryApproval: a recovery officer approves a recovery case
	// (session-bound confirmer; Confirmer.Tier = the case's tier).
	KindRecoveryApproval = "recovery_approval"
	// KindRecoveryCancel: the subject of a recovery case cancels it with any
	// still-valid passkey (no session needed; any device not revoked).
	KindRecoveryCancel = "recovery_cancel"
	// KindBreakGlassReview: a reviewer records the post-incident review of a
	// break-glass event (session-bound confirmer).
	KindBreakGlassReview = "breakglass_review"
)

// confirmKinds are the kinds BeginConfirm and FinishConfirm accept.
var confirmKinds = map[string]bool{KindApproval: true, KindRecoveryApproval: true, KindBreakGlassReview: true}

// BeginConfirm starts a bound ceremony of kind (KindApproval,
// KindRecoveryApproval or KindBreakGlassReview) by which the session-bound
// confirmer c confirms the thing named ref whose digest is digest. It is
// BeginApproval for any of those kinds; see there.
func (s *Service) BeginConfirm(ctx context.Context, kind string, c Confirmer, ref string, digest []byte) (*Begin, error) {
	if !confirmKinds[kind] {
		return nil, fail(airlock.EINTERNAL, ReasonWrongCeremony, nil, "unknown confirmation kind %q", kind)
	}
	if c.UserID == "" || c.DeviceID == "" || c.SessionID == "" || ref == "" {
		return nil, fail(airlock.EINVALID, ReasonWrongConfirmer, nil, "a confirmation needs a signed-in session and the thing it confirms")
	}
	b, err := s.beginBound(ctx, kind, c, ref, digest)
	if err != nil {
		return nil, asFailure(err, kind)
	}
	return b, nil
}

// FinishConfirm completes a ceremony begun by BeginConfirm with the same
// kind. It is FinishApproval for any of the BeginConfirm kinds; see there.
func (s *Service) FinishConfirm(ctx context.Context, kind, ceremonyID string, credentialJSON []byte, c Confirmer, ref string, digestOf DigestFunc, meta Meta) (*Confirmed, error) {
	if !confirmKinds[kind] {
		return nil, fail(airlock.EINTERNAL, ReasonWrongCeremony, nil, "unknown confirmation kind %q", kind)
	}
	res, err := s.finishBound(ctx, kind, ceremonyID, credentialJSON, c, ref, digestOf, meta)
	if err != nil {
		err = asFailure(err, kind)
		s.countFailure(ctx, c.UserID, err)
		return nil, err
	}
	return res, nil
}

// holderKinds are the kinds BeginHolderConfirm and FinishHolderConfirm
// accept.
var holderKinds = map[string]bool{KindRecoveryCancel: true}

// BeginHolderConfirm starts a KindRecoveryCancel ceremony: the options
// allow every unrevoked passkey of userID, on any device that is not
// revoked, of any tier its owner may still use, and require user
// verification; the challenge is SHA-256(nonce ‖ digest). No session is
// needed: a person who can no longer sign in (a device no longer
// compliant) can still prove they hold a valid passkey. A disabled user, a
// break-glass account (ReasonNotBreakGlass) or a user without such a
// passkey (ReasonNoCredential) is refused. Nothing is audited here: the
// caller records the step.
func (s *Service) BeginHolderConfirm(ctx context.Context, kind, userID, ref string, digest []byte) (*Begin, error) {
	if !holderKinds[kind] {
		return nil, fail(airlock.EINTERNAL, ReasonWrongCeremony, nil, "unknown holder confirmation kind %q", kind)
	}
	if userID == "" || ref == "" {
		return nil, fail(airlock.EINVALID, ReasonWrongConfirmer, nil, "a holder confirmation needs a user and the thing it confirms")
	}
	if len(digest) == 0 {
		return nil, fail(airlock.EINTERNAL, ReasonStore, nil, "nothing to confirm: empty digest")
	}
	u, err := s.store.FindUserByID(ctx, userID)
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
		if cr.IsRevoked() {
			continue
		}
		if _, ok := s.effectiveTier(u, cr); !ok {
			continue
		}
		d, err := s.store.FindDeviceByID(ctx, cr.DeviceID)
		if airlock.ErrorCode(err) == airlock.ENOTFOUND {
			continue
		} else if err != nil {
			return nil, storeFail(err, "device lookup")
		}
		if d.Trust == airlock.TrustRevoked {
			continue
		}
		allowed = append(allowed, webauthnCredential(cr, cr.BackupEligible))
	}
	if len(allowed) == 0 {
		return nil, fail(airlock.EFORBIDDEN, ReasonNoCredential, nil, "this account has no valid passkey left")
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
	st := &boundState{SessionData: *session, Nonce: nonce, Tier: airlock.MaxTier}
	return s.storeCeremonyState(ctx, kind, u.ID, ref, &st.SessionData, st, assertion.Response)
}

// FinishHolderConfirm completes a ceremony begun by BeginHolderConfirm: it
// consumes the ceremony (single use, even on failure), checks its kind and
// expiry, refuses it for another ref (ReasonRequestBinding), asks digestOf
// for ref's current digest (its error refuses, keeping code and message)
// and re-derives the challenge from it (ReasonRequestBinding if it differs:
// the thing changed since begin), then verifies the assertion (origin,
// type, challenge, RP ID, UP, UV, BE/BS, a passkey of the ceremony's user
// that it offered, its signature, not revoked, user enabled, not a
// break-glass account, device in the inventory and not revoked, sign
// count / clone rule) and records the use. Every refusal is counted as a
// failed ceremony of the ceremony's user. The result's Device is the
// passkey's device.
func (s *Service) FinishHolderConfirm(ctx context.Context, kind, ceremonyID string, credentialJSON []byte, ref string, digestOf DigestFunc, meta Meta) (*Confirmed, error) {
	if !holderKinds[kind] {
		return nil, fail(airlock.EINTERNAL, ReasonWrongCeremony, nil, "unknown holder confirmation kind %q", kind)
	}
	userID := ""
	res, err := s.finishHolder(ctx, kind, ceremonyID, credentialJSON, ref, digestOf, meta, &userID)
	if err != nil {
		err = asFailure(err, kind)
		s.countFailure(ctx, userID, err)
		return nil, err
	}
	return res, nil
}

func (s *Service) finishHolder(ctx context.Context, kind, ceremonyID string, credentialJSON []byte, ref string, digestOf DigestFunc, meta Meta, userID *string) (*Confirmed, error) {
	cer, _, err := s.consumeCeremony(ctx, ceremonyID, kind)
	if err != nil {
		return nil, err
	}
	*userID = cer.UserID
	var st boundState
	if err := json.Unmarshal(cer.Data, &st); err != nil || len(st.Nonce) == 0 {
		return nil, fail(airlock.EINTERNAL, ReasonStore, err, "stored ceremony state is corrupt")
	}
	st.Expires = time.Time{}
	if ref == "" {
		ref = cer.Ref
	} else if cer.Ref != ref {
		return nil, fail(airlock.EUNAUTHORIZED, ReasonRequestBinding, nil, "this passkey ceremony was started for something else")
	}
	digest, err := digestOf(ctx, ref)
	if err != nil {
		return nil, refRefused(err)
	}
	if st.Challenge != protocol.URLEncodedBase64(StepUpChallenge(st.Nonce, digest)).String() {
		return nil, fail(airlock.EUNAUTHORIZED, ReasonRequestBinding, nil, "the passkey ceremony was not started for this as it is now")
	}
	// The passkey may be on any of the user's devices: find its device
	// first, then verify it as a bound assertion on that device.
	if err := checkCredentialIDLength(credentialJSON); err != nil {
		return nil, err
	}
	raw := rawCredentialID(credentialJSON)
	if len(raw) == 0 {
		return nil, fail(airlock.EINVALID, ReasonParse, nil, "malformed assertion response (expected PublicKeyCredential JSON from credential.toJSON())")
	}
	cred, err := s.store.FindCredentialByID(ctx, raw)
	if airlock.ErrorCode(err) == airlock.ENOTFOUND {
		return nil, fail(airlock.EUNAUTHORIZED, ReasonUnknownCredential, nil, "unknown passkey")
	} else if err != nil {
		return nil, storeFail(err, "credential lookup")
	}
	if cred.UserID != cer.UserID {
		return nil, fail(airlock.EUNAUTHORIZED, ReasonWrongCredential, nil, "this passkey does not belong to the account concerned")
	}
	var credID []byte
	u, d, c, err := s.verifyBound(ctx, &st.SessionData, credentialJSON, cer.UserID, cred.DeviceID, st.Tier, meta, &credID)
	if err != nil {
		return nil, err
	}
	return &Confirmed{Ref: ref, Digest: digest, User: u, Device: d, Credential: c, At: s.now().UTC(),
		Nonce: st.Nonce, Challenge: st.Challenge}, nil
}
