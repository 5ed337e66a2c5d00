package passkey

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

	"airlock"
)

// KindApproval is the ceremony kind of an approval: a person's
// user-verified passkey assertion over the digest of an access request
// (package elevate). Recovery approvals and break-glass reviews are the
// same bound ceremony under their own kinds (confirm.go), so that a
// ceremony of one kind never completes another.
const KindApproval = "approval"

// Refusal reasons of bound confirmations, beside the ceremony reasons
// shared with login and step-up.
const (
	// ReasonRequestBinding: the ceremony was begun for another request
	// (its Ref), or its challenge was not derived from the request's
	// current digest.
	ReasonRequestBinding Reason = "request_binding"
	// ReasonWrongConfirmer: the ceremony was begun by another user,
	// device or session than the one finishing it.
	ReasonWrongConfirmer Reason = "wrong_confirmer"
	// ReasonSessionEnded: the confirming session ended meanwhile.
	ReasonSessionEnded Reason = "session_ended"
	// ReasonRefRefused: the caller refused the thing being confirmed (its
	// digestOf answered an error: the request is no longer pending, the
	// approver no longer eligible…). The error keeps the caller's code and
	// message.
	ReasonRefRefused Reason = "ref_refused"
)

// Confirmed is what a completed bound assertion proves: who (User), with
// which passkey (Credential) on which device (Device), when (At), with
// user verification (always: UV is required), over which digest (Digest,
// as digestOf returned it at finish) of which thing (Ref).
type Confirmed struct {
	Ref        string
	Digest     []byte
	User       *airlock.User
	Device     *airlock.Device
	Credential *airlock.Credential
	At         time.Time
	// Nonce and Challenge are the ceremony's: Challenge =
	// base64url(SHA-256(Nonce ‖ Digest)), for the audit trail.
	Nonce     []byte
	Challenge string
}

// DigestFunc returns the current digest of the thing named ref, or an
// error refusing it. It runs after the ceremony was consumed and before the
// assertion is verified: the place for the caller to re-check that ref may
// still be confirmed by this person.
type DigestFunc func(ctx context.Context, ref string) ([]byte, error)

// BeginApproval starts the ceremony by which c approves the thing named
// ref (an access request id) whose digest is digest. The options allow
// exactly c's unrevoked passkeys on c's device that may serve c.Tier (the
// scope's tier; stored with the ceremony) and require user
// verification; the challenge is SHA-256(nonce ‖ digest) (StepUpChallenge).
// Whether c may approve ref at all is the caller's decision, made before.
// Nothing is audited here: the caller records the approval step with its
// own correlation ids.
func (s *Service) BeginApproval(ctx context.Context, c Confirmer, ref string, digest []byte) (*Begin, error) {
	return s.BeginConfirm(ctx, KindApproval, c, ref, digest)
}

// FinishApproval completes an approval begun by BeginApproval. It consumes
// the ceremony first (single use, even on failure) and checks its kind and
// expiry; refuses it unless it was begun by c (same user, device and
// session) for ref (an empty ref takes the one the ceremony was begun
// for, reported in Confirmed.Ref); asks digestOf for ref's current digest (an error from
// it refuses the approval, keeping its code and message) and re-derives the
// challenge from it, so that a ceremony begun for one request, or a request
// changed since, cannot be approved; then verifies the assertion like a
// step-up (verifyBound: origin, type, challenge, rpIdHash, UP, UV from this
// assertion, BE/BS, a passkey of c's user on c's device that the ceremony
// offered, its signature, not revoked, user enabled, device not revoked, a
// tier at least as privileged as the one stored at begin still served,
// sign count / clone rule) and
// refreshes the session's last user verification. Every refusal is counted
// as a failed ceremony of c's user. Nothing is audited here but what
// acceptAssertion audits (BE change, clone warning): the caller records the
// approval and its failures.
func (s *Service) FinishApproval(ctx context.Context, ceremonyID string, credentialJSON []byte, c Confirmer, ref string, digestOf DigestFunc, meta Meta) (*Confirmed, error) {
	return s.FinishConfirm(ctx, KindApproval, ceremonyID, credentialJSON, c, ref, digestOf, meta)
}

// finishBound is FinishApproval for a ceremony of kind.
func (s *Service) finishBound(ctx context.Context, kind, ceremonyID string, credentialJSON []byte, c Confirmer, ref string, digestOf DigestFunc, meta Meta) (*Confirmed, error) {
	cer, _, err := s.consumeCeremony(ctx, ceremonyID, kind)
	if err != nil {
		return nil, err
	}
	var st boundState
	if err := json.Unmarshal(cer.Data, &st); err != nil || len(st.Nonce) == 0 {
		return nil, fail(airlock.EINTERNAL, ReasonStore, err, "stored ceremony state is corrupt")
	}
	st.Expires = time.Time{}
	// Only the session that began it may finish it, as its own user on
	// its own device.
	if c.UserID == "" || c.SessionID == "" ||
		subtle.ConstantTimeCompare([]byte(cer.UserID), []byte(c.UserID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(st.DeviceID), []byte(c.DeviceID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(st.SessionID), []byte(c.SessionID)) != 1 {
		return nil, fail(airlock.EFORBIDDEN, ReasonWrongConfirmer, nil, "this approval was started by another session; finish it where it was started")
	}
	if ref == "" {
		// The caller takes the request the ceremony names; digestOf
		// decides whether it may still be approved.
		ref = cer.Ref
	} else if cer.Ref != ref {
		return nil, fail(airlock.EUNAUTHORIZED, ReasonRequestBinding, nil, "this passkey ceremony was started for another request")
	}
	digest, err := digestOf(ctx, ref)
	if err != nil {
		return nil, refRefused(err)
	}
	// The challenge was derived from the digest the request has now: a
	// ceremony of one request cannot approve another, nor a request that
	// changed since.
	want := StepUpChallenge(st.Nonce, digest)
	if st.Challenge != protocol.URLEncodedBase64(want).String() {
		return nil, fail(airlock.EUNAUTHORIZED, ReasonRequestBinding, nil, "the passkey ceremony was not started for this request as it is now")
	}
	var credID []byte
	u, d, cred, err := s.verifyBound(ctx, &st.SessionData, credentialJSON, c.UserID, c.DeviceID, st.Tier, meta, &credID)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	// An approval is a fresh user-verified assertion of this session.
	if err := s.store.SetSessionUV(ctx, c.SessionID, now); airlock.ErrorCode(err) == airlock.ECONFLICT {
		return nil, fail(airlock.EUNAUTHORIZED, ReasonSessionEnded, err, "your session has ended; sign in again")
	} else if err != nil {
		return nil, storeFail(err, "session update")
	}
	return &Confirmed{Ref: ref, Digest: digest, User: u, Device: d, Credential: cred, At: now,
		Nonce: st.Nonce, Challenge: st.Challenge}, nil
}

// refRefused carries the caller's refusal of the ref through, with its
// code and message, under ReasonRefRefused (a reason the caller's own
// error already carries is kept).
func refRefused(err error) error {
	if ReasonOf(err) != "" {
		return err
	}
	var ae *airlock.Error
	if errors.As(err, &ae) {
		return &airlock.Error{Code: ae.Code, Message: ae.Message, Err: &Failure{Reason: ReasonRefRefused, Err: err}}
	}
	return fail(airlock.EINTERNAL, ReasonRefRefused, err, "the request could not be checked")
}
