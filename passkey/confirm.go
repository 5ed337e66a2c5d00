package passkey

import (
	"context"

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

// BeginHolderConfirm starts a KindRecoveryCancel ceremony: the options
// allow every unrevoked passkey of userID, on any device that is not
// revoked, of any tier, and require user verification; the challenge is
// SHA-256(nonce ‖ digest). No session is needed: a person who can no longer
// sign in (a device no longer compliant) can still prove they hold a valid
// passkey. CONTRACT STUB: the recovery engineer implements it.
func (s *Service) BeginHolderConfirm(ctx context.Context, kind, userID, ref string, digest []byte) (*Begin, error) {
	return nil, fail(airlock.EUNAVAILABLE, ReasonStore, nil, "not implemented yet")
}

// FinishHolderConfirm completes a ceremony begun by BeginHolderConfirm: it
// consumes the ceremony (single use), re-derives the challenge from
// digestOf(ref) and verifies the assertion (origin, type, challenge, RP ID,
// UP, UV, BE/BS, a passkey of the ceremony's user that it offered, its
// signature, not revoked, user enabled, device not revoked, sign count).
// CONTRACT STUB: the recovery engineer implements it.
func (s *Service) FinishHolderConfirm(ctx context.Context, kind, ceremonyID string, credentialJSON []byte, ref string, digestOf DigestFunc, meta Meta) (*Confirmed, error) {
	return nil, fail(airlock.EUNAVAILABLE, ReasonStore, nil, "not implemented yet")
}
