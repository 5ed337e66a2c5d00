package passkey

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

	"airlock"
)

// KindStepUp is the ceremony kind of a transaction-bound step-up.
const KindStepUp = "stepup"

// DefaultProofTTL is how long a step-up proof is valid (DESIGN.md defaults).
const DefaultProofTTL = 2 * time.Minute

// Step-up refusal reasons, beside the ceremony reasons shared with login.
const (
	ReasonUnknownTransaction Reason = "unknown_transaction"
	ReasonWrongSession       Reason = "wrong_session"
	ReasonTxCompleted        Reason = "transaction_completed"
	ReasonTxExpired          Reason = "transaction_expired"
	ReasonNoCredential       Reason = "no_credential_on_device"
	ReasonWrongCredential    Reason = "credential_not_bound"
	ReasonTxBinding          Reason = "transaction_binding"
)

// StepUpChallenge is the WebAuthn challenge of a step-up: SHA-256(nonce ‖
// digest), so that the assertion's clientDataJSON commits to the exact
// transaction (action, resource, parameters, session, decision, expiry)
// through its digest.
func StepUpChallenge(nonce, digest []byte) []byte {
	h := sha256.New()
	h.Write(nonce)
	h.Write(digest)
	return h.Sum(nil)
}

// ProofHash is what the store keeps of a step-up proof: SHA-256 of its text.
func ProofHash(proof string) []byte {
	h := sha256.Sum256([]byte(proof))
	return h[:]
}

// StepUpResult is a completed step-up: the single-use proof (shown once;
// only its hash is stored) and the transaction it completed.
type StepUpResult struct {
	Proof       string
	Transaction *airlock.StepUp
	Credential  *airlock.Credential
}

// BeginStepUp starts the ceremony that confirms transaction txID. Only the
// transaction's own session may begin it (sessionID), before the
// transaction expires and while it is not completed. The options allow
// exactly the unrevoked passkeys of the session's user bound to the
// session's device that may serve the session's tier (a synced passkey,
// tier 2 at most, never confirms on a tier-0 or tier-1 session), require
// user verification, and carry the challenge
// SHA-256(nonce ‖ transaction digest). Audited "stepup.begin" (refusals
// "stepup.failure").
func (s *Service) BeginStepUp(ctx context.Context, txID, sessionID string, meta Meta) (*Begin, error) {
	t, b, err := s.beginStepUp(ctx, txID, sessionID)
	if err != nil {
		s.recordStepUpFailure(ctx, "begin", t, sessionID, nil, err, meta)
		return nil, asFailure(err, "step-up")
	}
	e := stepUpEvent("stepup.begin", airlock.OutcomeSuccess, t, meta)
	e.Details["ceremony"] = b.Ceremony
	if err := s.audit.Record(ctx, e); err != nil {
		return nil, err
	}
	return b, nil
}

func (s *Service) beginStepUp(ctx context.Context, txID, sessionID string) (*airlock.StepUp, *Begin, error) {
	t, err := s.openTransaction(ctx, txID, sessionID)
	if err != nil {
		return t, nil, err
	}
	// A step-up confirms for the session's tier: only passkeys that may
	// serve it (never a synced one on a tier-0 or tier-1 session).
	sess, err := s.store.FindSessionByID(ctx, t.SessionID)
	if err != nil {
		return t, nil, storeFail(err, "session lookup")
	}
	b, err := s.beginBound(ctx, KindStepUp, Confirmer{UserID: t.UserID, DeviceID: t.DeviceID, Tier: sess.Tier}, t.ID, t.Digest)
	return t, b, err
}

// openTransaction loads a transaction that the session may still confirm.
func (s *Service) openTransaction(ctx context.Context, txID, sessionID string) (*airlock.StepUp, error) {
	if txID == "" {
		return nil, fail(airlock.ENOTFOUND, ReasonUnknownTransaction, nil, "unknown step-up transaction")
	}
	t, err := s.store.FindStepUpByID(ctx, txID)
	if airlock.ErrorCode(err) == airlock.ENOTFOUND {
		return nil, fail(airlock.ENOTFOUND, ReasonUnknownTransaction, nil, "unknown step-up transaction")
	} else if err != nil {
		return nil, storeFail(err, "transaction lookup")
	}
	if subtle.ConstantTimeCompare([]byte(t.SessionID), []byte(sessionID)) != 1 {
		return t, fail(airlock.EFORBIDDEN, ReasonWrongSession, nil,
			"this step-up belongs to another session; confirm it where the request was made (sign in there again if needed)")
	}
	if t.IsCompleted() {
		return t, fail(airlock.ECONFLICT, ReasonTxCompleted, nil, "this step-up was already confirmed")
	}
	if !s.now().Before(t.ExpiresAt) {
		return t, fail(airlock.EEXPIRED, ReasonTxExpired, nil, "this step-up expired; repeat the request to start a new one")
	}
	return t, nil
}

// FinishStepUp completes a step-up begun by BeginStepUp. It consumes the
// ceremony first (single use, even on failure), re-checks the transaction
// (the caller's session, not completed, not expired) and that the stored
// challenge is SHA-256(nonce ‖ digest) of that very transaction, verifies
// the assertion (WebAuthn L3 §7.2, UV required and read from this
// assertion) for a credential that belongs to the transaction's user AND
// device, was offered, still serves the session's tier (as at begin) and is
// not revoked, applies the same backup-eligibility and
// sign-count rules as login (acceptAssertion), and then, once: stores the
// hash of a new random proof on the transaction (valid Config.ProofTTL),
// refreshes the session's last user verification, and audits
// "stepup.success". Every refusal is audited "stepup.failure" with a reason
// code and counted as a failed ceremony of the user.
func (s *Service) FinishStepUp(ctx context.Context, ceremonyID string, credentialJSON []byte, sessionID string, meta Meta) (*StepUpResult, error) {
	var t *airlock.StepUp
	var credID []byte
	res, err := s.finishStepUp(ctx, ceremonyID, credentialJSON, sessionID, meta, &t, &credID)
	if err != nil {
		err = asFailure(err, "step-up")
		s.recordStepUpFailure(ctx, "finish", t, sessionID, credID, err, meta)
		return nil, err
	}
	return res, nil
}

func (s *Service) finishStepUp(ctx context.Context, ceremonyID string, credentialJSON []byte, sessionID string, meta Meta, tp **airlock.StepUp, credID *[]byte) (*StepUpResult, error) {
	c, _, err := s.consumeCeremony(ctx, ceremonyID, KindStepUp)
	if err != nil {
		return nil, err
	}
	var st boundState
	if err := json.Unmarshal(c.Data, &st); err != nil || len(st.Nonce) == 0 {
		return nil, fail(airlock.EINTERNAL, ReasonStore, err, "stored ceremony state is corrupt")
	}
	st.Expires = time.Time{}
	t, err := s.openTransaction(ctx, c.Ref, sessionID)
	*tp = t
	if err != nil {
		return nil, err
	}
	// The challenge was derived from this transaction's digest: a
	// ceremony of one transaction cannot complete another.
	want := StepUpChallenge(st.Nonce, t.Digest)
	if c.UserID != t.UserID || st.Challenge != protocol.URLEncodedBase64(want).String() {
		return nil, fail(airlock.EUNAUTHORIZED, ReasonTxBinding, nil, "the ceremony was not started for this transaction")
	}

	// WebAuthn L3 §7.2 with UV required, for a passkey of the
	// transaction's user on the transaction's device.
	_, _, cred, err := s.verifyBound(ctx, &st.SessionData, credentialJSON, t.UserID, t.DeviceID, st.Tier, meta, credID)
	if err != nil {
		return nil, err
	}

	proof, err := randomID(32)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	expires := now.Add(s.cfg.ProofTTL)
	if err := s.store.CompleteStepUp(ctx, t.ID, ProofHash(proof), cred.ID, now, expires); err != nil {
		if airlock.ErrorCode(err) == airlock.ECONFLICT {
			return nil, fail(airlock.ECONFLICT, ReasonTxCompleted, err, "this step-up was already confirmed")
		}
		return nil, storeFail(err, "transaction update")
	}
	t.ProofHash, t.CredentialID, t.CompletedAt, t.ProofExpiresAt = ProofHash(proof), cred.ID, now, expires
	// A step-up is a fresh user-verified assertion of this session.
	if err := s.store.SetSessionUV(ctx, t.SessionID, now); err != nil {
		return nil, storeFail(err, "session update")
	}
	e := stepUpEvent("stepup.success", airlock.OutcomeSuccess, t, meta)
	e.CredentialID = b64(cred.ID)
	e.Details["proof_expires_at"] = expires.Format(time.RFC3339Nano)
	e.Details["nonce"] = b64(st.Nonce)
	e.Details["challenge"] = st.Challenge
	e.Details["sign_count"] = cred.SignCount
	// What the person confirmed, as shown on the step-up page: the
	// transaction row is swept later, the log keeps it.
	e.Details["params"] = string(t.Params)
	if t.Client != "" {
		e.Details["client"] = t.Client
	}
	if err := s.audit.Record(ctx, e); err != nil {
		return nil, err
	}
	return &StepUpResult{Proof: proof, Transaction: t, Credential: cred}, nil
}

// stepUpEvent is an audit event about transaction t (which may be nil when
// it could not be found).
func stepUpEvent(typ, outcome string, t *airlock.StepUp, meta Meta) airlock.AuditEvent {
	e := auditEvent(typ, outcome, meta)
	if meta.ViaSession != "" {
		e.Details["confirmed_in_session"] = meta.ViaSession
	}
	if t != nil {
		e.Actor, e.Subject, e.UserID, e.SessionID, e.DeviceID = t.UserID, t.ID, t.UserID, t.SessionID, t.DeviceID
		e.TransactionID, e.DecisionID = t.ID, t.DecisionID
		e.Details["action"] = t.Action
		e.Details["resource"] = t.Resource
		e.Details["params_digest"] = b64(t.ParamsDigest)
		e.Details["digest"] = b64(t.Digest)
	}
	return e
}

// recordStepUpFailure audits "stepup.failure" and counts it against the
// transaction's user. A failure to record is not returned: the step-up
// already failed.
func (s *Service) recordStepUpFailure(ctx context.Context, stage string, t *airlock.StepUp, sessionID string, credID []byte, err error, meta Meta) {
	e := stepUpEvent("stepup.failure", failureOutcome(err), t, meta)
	e.Reason = string(ReasonOf(err))
	e.Details["stage"] = stage
	e.Details["message"] = airlock.ErrorMessage(err)
	if t == nil || t.SessionID != sessionID {
		// The caller is another session than the transaction's.
		e.Details["caller_session"] = sessionID
	}
	if credID != nil {
		e.CredentialID = b64(credID)
	}
	_ = s.audit.Record(ctx, e)
	if t != nil {
		s.countFailure(ctx, t.UserID, err)
	}
}
