package passkey

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"airlock"
)

// maxCredentialIDLength is WebAuthn L3 §7.1 step 25 (W8).
const maxCredentialIDLength = 1023

// The checks below repeat, before go-webauthn runs, the steps whose failure
// a user or operator must be able to tell apart (W1–W6), so that each gets a
// specific message and audit reason. go-webauthn then verifies everything
// again, including the signature and attestation; its verdict is final.

// checkClientData verifies the collected client data: WebAuthn L3 §7.1
// steps 7–10 (registration) and §7.2 steps 11–14 (assertion).
func (s *Service) checkClientData(cd *protocol.CollectedClientData, want protocol.CeremonyType, challenge string) error {
	// §7.1 step 7 / §7.2 step 11 (W1): the type must be exactly right, so a
	// signature made for one ceremony cannot be replayed in the other.
	if cd.Type != want {
		return fail(airlock.EUNAUTHORIZED, ReasonBadType, nil, "clientDataJSON.type is %q, expected %q", clip(string(cd.Type)), want)
	}
	// §7.1 step 8 / §7.2 step 12 (W2): the challenge of this ceremony.
	if subtle.ConstantTimeCompare([]byte(cd.Challenge), []byte(challenge)) != 1 {
		return fail(airlock.EUNAUTHORIZED, ReasonBadChallenge, nil, "the response answers a different challenge than this ceremony's")
	}
	// §7.1 step 9 / §7.2 step 13 (W3): exact origin allow-list.
	if !protocol.IsOriginInHaystack(cd.Origin, s.cfg.Origins) {
		return fail(airlock.EUNAUTHORIZED, ReasonBadOrigin, nil, "origin %q is not an allowed origin", clip(cd.Origin))
	}
	// The library compares only scheme and host[:port]. An origin is
	// exactly scheme://host[:port]: browsers never send a path, query,
	// fragment or user info, so a response carrying one was not made by
	// a browser for this page.
	if err := exactOrigin(cd.Origin); err != nil {
		return err
	}
	// §7.1 step 10 / §7.2 step 14 (W3): a top origin must be allowed too;
	// Airlock is never framed by another origin, so cross-origin ceremonies
	// are refused altogether.
	if cd.TopOrigin != "" && !protocol.IsOriginInHaystack(cd.TopOrigin, s.cfg.Origins) {
		return fail(airlock.EUNAUTHORIZED, ReasonBadTopOrigin, nil, "top origin %q is not an allowed origin", clip(cd.TopOrigin))
	}
	if cd.CrossOrigin || cd.TopOrigin != "" {
		return fail(airlock.EUNAUTHORIZED, ReasonCrossOrigin, nil, "cross-origin (embedded) ceremonies are not allowed")
	}
	return nil
}

// exactOrigin refuses an origin with a path (even "/"), a query, a
// fragment or user info (W3).
func exactOrigin(origin string) error {
	u, err := url.Parse(origin)
	if err != nil {
		return fail(airlock.EUNAUTHORIZED, ReasonBadOrigin, err, "origin %q is not a valid origin", clip(origin))
	}
	var extra string
	switch {
	case u.User != nil:
		extra = "user info"
	case u.Path != "" || u.RawPath != "" || u.Opaque != "":
		extra = "a path"
	case u.RawQuery != "" || u.ForceQuery:
		extra = "a query"
	case u.Fragment != "" || strings.Contains(origin, "#"):
		extra = "a fragment"
	}
	if extra != "" {
		return fail(airlock.EUNAUTHORIZED, ReasonBadOrigin, nil, "origin %q has %s; an origin is only scheme://host[:port]", clip(origin), extra)
	}
	return nil
}

// checkAuthData verifies the flags and RP ID hash: WebAuthn L3 §7.1 steps
// 13–16 and §7.2 steps 15–18.
func (s *Service) checkAuthData(ad *protocol.AuthenticatorData) error {
	// W4: rpIdHash = SHA-256(RP ID).
	if subtle.ConstantTimeCompare(ad.RPIDHash, s.rpIDHash[:]) != 1 {
		return fail(airlock.EUNAUTHORIZED, ReasonBadRPID, nil, "authenticator data is for a different RP ID (rpIdHash mismatch)")
	}
	// W5: user presence always, user verification always (UV is required
	// for every Airlock ceremony) — read from this response, not the
	// stored credential.
	if !ad.Flags.HasUserPresent() {
		return fail(airlock.EUNAUTHORIZED, ReasonUPMissing, nil, "user presence (UP) flag is not set")
	}
	if !ad.Flags.HasUserVerified() {
		return fail(airlock.EUNAUTHORIZED, ReasonUVMissing, nil, "user verification (UV) flag is not set; unlock the passkey with a PIN or biometric")
	}
	// W6: BS=1 without BE=1 is an invalid combination.
	if !ad.Flags.HasBackupEligible() && ad.Flags.HasBackupState() {
		return fail(airlock.EINVALID, ReasonBadBackupFlags, nil, "invalid authenticator flags: backed up (BS=1) but not backup eligible (BE=0)")
	}
	return nil
}

// checkAlgorithm is WebAuthn L3 §7.1 step 19 (W7): the credential key's
// algorithm must be one that was offered.
func checkAlgorithm(coseKey []byte) (int64, error) {
	var pk webauthncose.PublicKeyData
	if err := webauthncbor.Unmarshal(coseKey, &pk); err != nil {
		return 0, fail(airlock.EINVALID, ReasonParse, err, "credential public key is not a valid COSE key")
	}
	for _, p := range credParams {
		if int64(p.Algorithm) == pk.Algorithm {
			return pk.Algorithm, nil
		}
	}
	return pk.Algorithm, fail(airlock.EINVALID, ReasonAlgNotOffered, nil,
		"credential algorithm %d was not offered (only ES256 -7, EdDSA -8, RS256 -257)", pk.Algorithm)
}

// rawCredentialID extracts rawId from a credential JSON without the full
// parse, so that an over-long id is named as such (go-webauthn reports only
// a generic parse error for it).
func rawCredentialID(credentialJSON []byte) []byte {
	var v struct {
		RawID string `json:"rawId"`
	}
	if json.Unmarshal(credentialJSON, &v) != nil {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(v.RawID)
	if err != nil {
		b, err = base64.URLEncoding.DecodeString(v.RawID)
		if err != nil {
			return nil
		}
	}
	return b
}

// checkCredentialIDLength is WebAuthn L3 §7.1 step 25 (W8).
func checkCredentialIDLength(credentialJSON []byte) error {
	if id := rawCredentialID(credentialJSON); len(id) > maxCredentialIDLength {
		return fail(airlock.EINVALID, ReasonCredIDTooLong, nil, "credential id is %d bytes; at most %d are allowed", len(id), maxCredentialIDLength)
	}
	return nil
}

// libraryFailure turns a go-webauthn verification error into an
// *airlock.Error with a short, specific, client-safe message. The library's
// error stays inside as the internal cause.
func libraryFailure(err error) error {
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		return fail(airlock.EUNAUTHORIZED, ReasonVerify, err, "the passkey response failed verification")
	}
	switch pe.Type {
	case protocol.ErrAssertionSignature.Type:
		return fail(airlock.EUNAUTHORIZED, ReasonBadSignature, err, "the assertion signature does not verify")
	case protocol.ErrAttestation.Type, protocol.ErrInvalidAttestation.Type, protocol.ErrAttestationCertificate.Type:
		return fail(airlock.EUNAUTHORIZED, ReasonBadAttestation, err, "the attestation statement does not verify")
	case protocol.ErrUnsupportedKey.Type, protocol.ErrUnsupportedAlgorithm.Type:
		return fail(airlock.EINVALID, ReasonAlgNotOffered, err, "the credential public key uses an unsupported algorithm")
	case protocol.ErrParsingData.Type:
		return fail(airlock.EINVALID, ReasonParse, err, "the passkey response is malformed")
	}
	// Only the fixed texts of verification errors are shown; others (e.g.
	// bad-request details) may quote internal errors.
	if pe.Type == protocol.ErrVerification.Type && pe.Details != "" {
		return fail(airlock.EUNAUTHORIZED, ReasonVerify, err, "the passkey response failed verification: %s", clip(pe.Details))
	}
	return fail(airlock.EUNAUTHORIZED, ReasonVerify, err, "the passkey response failed verification")
}
