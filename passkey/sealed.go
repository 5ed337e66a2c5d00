package passkey

import (
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
}

// BeginSealed starts a break-glass assertion for the sealed account u with
// the given passkeys (from the store or from the static break-glass
// credential file): the options allow exactly those that are not revoked
// and not backup-eligible (BE=0), require user verification and carry the
// challenge SHA-256(nonce ‖ digest). It touches no store, so that it works
// while the database is down. An account that is not of kind breakglass is
// refused (EFORBIDDEN, ReasonNotBreakGlass). CONTRACT STUB: the break-glass
// engineer implements it.
func (s *Service) BeginSealed(u *airlock.User, creds []*airlock.Credential, digest []byte) (*SealedBegin, error) {
	return nil, fail(airlock.EUNAVAILABLE, ReasonStore, nil, "not implemented yet")
}

// VerifySealed verifies a break-glass assertion against state from
// BeginSealed, re-deriving the challenge from digest: client data (type,
// challenge, exact origin), RP ID hash, UP, UV, BE=0 in the assertion, a
// passkey of u among creds that the ceremony offered, not revoked, its
// signature, and a sign count that increased (a clone signal refuses). It
// touches no store; recording the use (sign count, audit) is the caller's.
// CONTRACT STUB: the break-glass engineer implements it.
func (s *Service) VerifySealed(state []byte, u *airlock.User, creds []*airlock.Credential, digest, credentialJSON []byte) (*SealedResult, error) {
	return nil, fail(airlock.EUNAVAILABLE, ReasonStore, nil, "not implemented yet")
}

// ReasonNotBreakGlass: a normal account on the break-glass path, or a
// break-glass account on the normal login.
const ReasonNotBreakGlass Reason = "breakglass_account_mismatch"
