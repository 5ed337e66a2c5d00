package passkey

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"airlock"
	"airlock/device"
)

// SystemIssuer is the issuer of tokens created by Airlock itself (bootstrap).
const SystemIssuer = "system"

// tokenHash is what the store keeps of an enrolment secret.
func tokenHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// IssueEnrolmentToken creates a single-use enrolment token for userID to
// enrol one passkey on deviceID, valid for Config.TokenTTL. It returns the
// secret (32 random bytes, base64url) once; the store keeps only its SHA-256.
// issuer is the issuing user's ID or SystemIssuer; purpose is
// airlock.PurposeEnrol, or airlock.PurposeBootstrap or
// airlock.PurposeRecovery for SystemIssuer only (a bootstrap token skips
// the device compliance check and marks the device trusted; a recovery
// token runs the recovery hook when used, see SetRecoveryHook). The user must exist and be enabled; the device must exist, not
// be revoked, and belong to the user or be shared. Audited
// "enrol.token_issued". Who may issue a token is the caller's decision.
func (s *Service) IssueEnrolmentToken(ctx context.Context, issuer, userID, deviceID, purpose string, meta Meta) (string, *airlock.EnrolmentToken, error) {
	return s.issue(ctx, issuer, userID, deviceID, purpose, "enrol.token_issued", meta)
}

func (s *Service) issue(ctx context.Context, issuer, userID, deviceID, purpose, auditType string, meta Meta) (string, *airlock.EnrolmentToken, error) {
	switch {
	case issuer == "":
		return "", nil, airlock.Errorf(airlock.EINVALID, "enrolment token issuer is required")
	case purpose != airlock.PurposeEnrol && purpose != airlock.PurposeBootstrap && purpose != airlock.PurposeRecovery:
		return "", nil, airlock.Errorf(airlock.EINVALID, "enrolment token purpose must be %q, %q or %q", airlock.PurposeEnrol, airlock.PurposeBootstrap, airlock.PurposeRecovery)
	case purpose == airlock.PurposeBootstrap && issuer != SystemIssuer:
		return "", nil, airlock.Errorf(airlock.EFORBIDDEN, "bootstrap enrolment tokens are issued only by the system")
	case purpose == airlock.PurposeRecovery && issuer != SystemIssuer:
		return "", nil, airlock.Errorf(airlock.EFORBIDDEN, "recovery enrolment tokens are issued only by a recovery case")
	}
	u, err := s.store.FindUserByID(ctx, userID)
	if err != nil {
		if airlock.ErrorCode(err) == airlock.ENOTFOUND {
			return "", nil, airlock.Errorf(airlock.ENOTFOUND, "user %q not found", userID)
		}
		return "", nil, err
	}
	if u.Disabled {
		return "", nil, airlock.Errorf(airlock.EFORBIDDEN, "user %s is disabled", u.Name)
	}
	if len(u.Handle) == 0 {
		return "", nil, airlock.Errorf(airlock.EINTERNAL, "user %s has no WebAuthn user handle", u.Name)
	}
	d, err := s.store.FindDeviceByID(ctx, deviceID)
	if err != nil {
		if airlock.ErrorCode(err) == airlock.ENOTFOUND {
			return "", nil, airlock.Errorf(airlock.ENOTFOUND, "device %q not found", deviceID)
		}
		return "", nil, err
	}
	if d.Trust == airlock.TrustRevoked {
		return "", nil, airlock.Errorf(airlock.EFORBIDDEN, "device %s is revoked", d.Name)
	}
	if d.Owner != u.ID && d.Owner != airlock.SharedOwner {
		return "", nil, airlock.Errorf(airlock.EFORBIDDEN, "device %s belongs to another user", d.Name)
	}
	secret, err := randomID(32)
	if err != nil {
		return "", nil, err
	}
	id, err := randomID(12)
	if err != nil {
		return "", nil, err
	}
	now := s.now().UTC()
	tok := &airlock.EnrolmentToken{
		Hash: tokenHash(secret), ID: "et_" + id, UserID: u.ID, DeviceID: d.ID, Purpose: purpose,
		CreatedBy: issuer, CreatedAt: now, ExpiresAt: now.Add(s.cfg.TokenTTL),
	}
	if err := s.store.CreateEnrolmentToken(ctx, tok); err != nil {
		return "", nil, err
	}
	e := auditEvent(auditType, airlock.OutcomeSuccess, meta)
	e.Actor, e.Subject, e.UserID, e.DeviceID = issuer, u.ID, u.ID, d.ID
	e.Details["token_id"] = tok.ID
	e.Details["purpose"] = purpose
	e.Details["expires_at"] = tok.ExpiresAt.Format(time.RFC3339)
	if err := s.audit.Record(ctx, e); err != nil {
		return "", nil, err
	}
	return secret, tok, nil
}

// CheckEnrolmentToken returns the token named by secret with its user and
// device if the token is unused and unexpired, the user enabled and (unless
// the token is for bootstrap) the device compliant now. Otherwise it returns
// an *airlock.Error: ENOTFOUND "unknown enrolment link", ECONFLICT
// "enrolment link already used", EEXPIRED "enrolment link expired",
// EFORBIDDEN for a disabled user or a non-compliant device (naming the
// reasons). It changes nothing.
func (s *Service) CheckEnrolmentToken(ctx context.Context, secret string) (*airlock.EnrolmentToken, *airlock.User, *airlock.Device, error) {
	if secret == "" {
		return nil, nil, nil, fail(airlock.ENOTFOUND, ReasonUnknownToken, nil, "unknown enrolment link")
	}
	tok, err := s.store.FindEnrolmentTokenByHash(ctx, tokenHash(secret))
	if err != nil {
		if airlock.ErrorCode(err) == airlock.ENOTFOUND {
			return nil, nil, nil, fail(airlock.ENOTFOUND, ReasonUnknownToken, nil, "unknown enrolment link")
		}
		return nil, nil, nil, storeFail(err, "enrolment token lookup")
	}
	return s.checkToken(ctx, tok)
}

func (s *Service) checkToken(ctx context.Context, tok *airlock.EnrolmentToken) (*airlock.EnrolmentToken, *airlock.User, *airlock.Device, error) {
	now := s.now()
	if !tok.UsedAt.IsZero() {
		return tok, nil, nil, fail(airlock.ECONFLICT, ReasonTokenUsed, nil, "enrolment link already used")
	}
	if !now.Before(tok.ExpiresAt) {
		return tok, nil, nil, fail(airlock.EEXPIRED, ReasonTokenExpired, nil, "enrolment link expired")
	}
	u, d, err := s.checkHolder(ctx, tok, now)
	if err != nil {
		return tok, u, d, err
	}
	if tok.Purpose == airlock.PurposeBootstrap {
		if err := s.checkBootstrapOpen(ctx); err != nil {
			return tok, u, d, err
		}
	}
	return tok, u, d, nil
}

// checkHolder reads the token's user and device afresh and checks that the
// user is enabled, the device exists, still belongs to the user (or is
// shared) and is compliant at now — or, for a bootstrap token, only that it
// is not revoked.
func (s *Service) checkHolder(ctx context.Context, tok *airlock.EnrolmentToken, now time.Time) (*airlock.User, *airlock.Device, error) {
	u, err := s.store.FindUserByID(ctx, tok.UserID)
	if err != nil {
		return nil, nil, storeFail(err, "user lookup")
	}
	if u.Disabled {
		return u, nil, fail(airlock.EFORBIDDEN, ReasonUserDisabled, nil, "user %s is disabled", u.Name)
	}
	d, err := s.store.FindDeviceByID(ctx, tok.DeviceID)
	if err != nil {
		if airlock.ErrorCode(err) == airlock.ENOTFOUND {
			return u, nil, fail(airlock.EFORBIDDEN, ReasonDeviceMissing, nil, "device %s no longer exists", tok.DeviceID)
		}
		return u, nil, storeFail(err, "device lookup")
	}
	// The device may have been reassigned since the token was issued.
	if d.Owner != tok.UserID && d.Owner != airlock.SharedOwner {
		return u, d, fail(airlock.EFORBIDDEN, ReasonDeviceOwnerChanged, nil, "device %s no longer belongs to this user", d.Name)
	}
	if tok.Purpose == airlock.PurposeBootstrap {
		// The bootstrap device is pending by design; only a revoked one is
		// refused. It becomes trusted when the bootstrap enrolment succeeds.
		if d.Trust == airlock.TrustRevoked {
			return u, d, fail(airlock.EFORBIDDEN, ReasonDeviceRevoked, nil, "device %s is revoked", d.Name)
		}
		return u, d, nil
	}
	if c := device.Evaluate(d, s.cfg.DeviceRules, now); !c.Compliant {
		return u, d, fail(airlock.EFORBIDDEN, ReasonDeviceNotCompliant, nil, "device %s is not compliant: %s", d.Name, c)
	}
	return u, d, nil
}

// checkBootstrapOpen refuses a bootstrap enrolment once an active tier-0
// admin exists: bootstrap is for an empty installation only.
func (s *Service) checkBootstrapOpen(ctx context.Context) error {
	has, err := s.store.HasActiveTier0Admin(ctx)
	if err != nil {
		return storeFail(err, "tier-0 admin check")
	}
	if has {
		return fail(airlock.ECONFLICT, ReasonBootstrapClosed, nil, "bootstrap is closed: a tier-0 administrator already exists")
	}
	return nil
}

// waUser adapts an airlock.User and its usable credentials to go-webauthn.
type waUser struct {
	u     *airlock.User
	creds []webauthn.Credential
}

func (w *waUser) WebAuthnID() []byte                         { return w.u.Handle }
func (w *waUser) WebAuthnName() string                       { return w.u.Name }
func (w *waUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }
func (w *waUser) WebAuthnDisplayName() string {
	if w.u.DisplayName != "" {
		return w.u.DisplayName
	}
	return w.u.Name
}

// attestationFor is "direct" when some tier the user may reach (user tier
// to 2) is privileged (0 or 1) or requires attestation, else "none".
func (s *Service) attestationFor(userTier airlock.Tier) protocol.ConveyancePreference {
	if userTier <= 1 {
		return protocol.PreferDirectAttestation
	}
	for t := userTier; t <= airlock.MaxTier; t++ {
		if s.tiers[t].requireAtt {
			return protocol.PreferDirectAttestation
		}
	}
	return protocol.PreferNoAttestation
}

// BeginEnrol checks the enrolment token (as CheckEnrolmentToken) and starts
// a registration ceremony for its user: a resident key with user
// verification, ES256/EdDSA/RS256 only, attestation "direct" for tiers 0–1
// and "none" for tier 2. The user's existing passkeys are excluded. The
// ceremony is stored for Config.CeremonyTTL and names the token.
func (s *Service) BeginEnrol(ctx context.Context, secret string, meta Meta) (*Begin, error) {
	tok, u, d, err := s.CheckEnrolmentToken(ctx, secret)
	if err != nil {
		s.recordEnrolFailure(ctx, "begin", "", &enrolState{tok: tok, user: u, dev: d}, err, meta)
		return nil, err
	}
	b, err := s.beginEnrol(ctx, tok, u)
	if err != nil {
		err = asFailure(err, "begin enrolment")
		s.recordEnrolFailure(ctx, "begin", "", &enrolState{tok: tok, user: u, dev: d}, err, meta)
		return nil, err
	}
	return b, nil
}

func (s *Service) beginEnrol(ctx context.Context, tok *airlock.EnrolmentToken, u *airlock.User) (*Begin, error) {
	existing, err := s.store.ListCredentialsByUser(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	var exclude []protocol.CredentialDescriptor
	for _, c := range existing {
		if !c.IsRevoked() {
			exclude = append(exclude, protocol.CredentialDescriptor{Type: protocol.PublicKeyCredentialType, CredentialID: c.ID})
		}
	}
	creation, session, err := s.wa.BeginRegistration(&waUser{u: u},
		webauthn.WithCredentialParameters(credParams),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			RequireResidentKey: protocol.ResidentKeyRequired(),
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			UserVerification:   protocol.VerificationRequired,
		}),
		webauthn.WithConveyancePreference(s.attestationFor(u.Tier)),
		webauthn.WithExclusions(exclude),
	)
	if err != nil {
		return nil, airlock.Wrap(airlock.EINTERNAL, "could not start the enrolment ceremony", err)
	}
	return s.storeCeremony(ctx, KindEnrol, u.ID, tok.ID, session, creation.Response)
}

// storeCeremony saves the WebAuthn session data as single-use ceremony
// state (W2) and returns the begin answer.
func (s *Service) storeCeremony(ctx context.Context, kind, userID, ref string, session *webauthn.SessionData, options any) (*Begin, error) {
	return s.storeCeremonyState(ctx, kind, userID, ref, session, session, options)
}

// storeCeremonyState stores state (which embeds or is session) as the
// ceremony's data.
func (s *Service) storeCeremonyState(ctx context.Context, kind, userID, ref string, session *webauthn.SessionData, state, options any) (*Begin, error) {
	// Expiry is ours, on the injected clock; go-webauthn would compare
	// SessionData.Expires against the real time.Now.
	session.Expires = time.Time{}
	data, err := json.Marshal(state)
	if err != nil {
		return nil, airlock.Wrap(airlock.EINTERNAL, "could not encode ceremony state", err)
	}
	id, err := randomID(32)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	c := &airlock.Ceremony{ID: id, Kind: kind, UserID: userID, Ref: ref, Data: data, CreatedAt: now, ExpiresAt: now.Add(s.cfg.CeremonyTTL)}
	if err := s.store.CreateCeremony(ctx, c); err != nil {
		return nil, err
	}
	return &Begin{Ceremony: id, PublicKey: options}, nil
}

// consumeCeremony takes the ceremony out of the store — so its challenge is
// spent by the first finish attempt, success or failure (W2) — and checks
// its kind and expiry.
func (s *Service) consumeCeremony(ctx context.Context, id, kind string) (*airlock.Ceremony, *webauthn.SessionData, error) {
	// Only an id this service minted (randomID(32)) is looked up: the
	// ceremony store also keeps other records (a CLI login code, a DPoP
	// proof's jti), and consuming deletes before the kind is known.
	if !ceremonyIDShape(id) {
		return nil, nil, fail(airlock.EUNAUTHORIZED, ReasonUnknownCeremony, nil, "unknown or already used ceremony")
	}
	c, err := s.store.ConsumeCeremony(ctx, id)
	if err != nil {
		if airlock.ErrorCode(err) == airlock.ENOTFOUND {
			return nil, nil, fail(airlock.EUNAUTHORIZED, ReasonUnknownCeremony, nil, "unknown or already used ceremony")
		}
		return nil, nil, storeFail(err, "ceremony lookup")
	}
	if c.Kind != kind {
		return c, nil, fail(airlock.EUNAUTHORIZED, ReasonWrongCeremony, nil, "ceremony is a %s ceremony, not %s", c.Kind, kind)
	}
	if !s.now().Before(c.ExpiresAt) {
		return c, nil, fail(airlock.EEXPIRED, ReasonExpired, nil, "%s ceremony expired; start again", kind)
	}
	var session webauthn.SessionData
	if err := json.Unmarshal(c.Data, &session); err != nil {
		return c, nil, fail(airlock.EINTERNAL, ReasonStore, err, "stored ceremony state is corrupt")
	}
	session.Expires = time.Time{}
	return c, &session, nil
}

// ceremonyIDShape reports whether id looks like a ceremony id of this
// service: 32 random bytes, base64url without padding.
func ceremonyIDShape(id string) bool {
	b, err := base64.RawURLEncoding.DecodeString(id)
	return err == nil && len(b) == 32
}

// FinishEnrol completes a registration ceremony begun by BeginEnrol. It
// consumes the ceremony first (single use, even on failure), re-checks the
// enrolment token (unused, unexpired, user enabled, device still the user's
// or shared and compliant), verifies the response (WebAuthn L3 §7.1),
// verifies the attestation certificate chain against the configured
// attestation roots (Credential.AttestationTrusted), refuses a credential
// id registered before (W8) and a passkey that may serve none of the tiers
// from the user's tier to 2, checks the user and device once more, then
// marks the token used and stores the credential with its tier cap in one
// store transaction (EnrolCredential: a concurrent second finish gets
// ECONFLICT and nothing half-done remains), and notifies the user
// ("passkey.added"; if that cannot be enqueued the new credential is
// revoked and EUNAVAILABLE returned — and if even the revocation fails,
// EINTERNAL with reason rollback_failed and a failed "credential.revoked"
// audit record). A bootstrap enrolment also requires a device-bound passkey
// (tier cap 0) and still no active tier-0 admin, and marks its device
// trusted. Every failure is audited "enrol.failed" with a reason code.
func (s *Service) FinishEnrol(ctx context.Context, ceremonyID string, credentialJSON []byte, meta Meta) (*Enrolled, error) {
	st := &enrolState{}
	res, err := s.finishEnrol(ctx, ceremonyID, credentialJSON, meta, st)
	if err != nil {
		err = asFailure(err, "enrolment")
		s.recordEnrolFailure(ctx, "finish", ceremonyID, st, err, meta)
		return nil, err
	}
	return res, nil
}

// enrolState collects what is known about a failing enrolment for its audit
// record.
type enrolState struct {
	cer    *airlock.Ceremony
	tok    *airlock.EnrolmentToken
	user   *airlock.User
	dev    *airlock.Device
	credID []byte
}

func (s *Service) finishEnrol(ctx context.Context, ceremonyID string, credentialJSON []byte, meta Meta, st *enrolState) (*Enrolled, error) {
	c, session, err := s.consumeCeremony(ctx, ceremonyID, KindEnrol)
	st.cer = c
	if err != nil {
		return nil, err
	}
	tok, err := s.store.FindEnrolmentTokenByID(ctx, c.Ref)
	if err != nil {
		if airlock.ErrorCode(err) == airlock.ENOTFOUND {
			return nil, fail(airlock.ENOTFOUND, ReasonUnknownToken, nil, "unknown enrolment link")
		}
		return nil, storeFail(err, "enrolment token lookup")
	}
	st.tok = tok
	// The token is checked again: it may have been used, expired, its user
	// disabled or its device revoked since the ceremony began.
	_, u, d, err := s.checkToken(ctx, tok)
	st.user, st.dev = u, d
	if err != nil {
		return nil, err
	}
	if u.ID != c.UserID {
		return nil, fail(airlock.EUNAUTHORIZED, ReasonWrongCeremony, nil, "ceremony does not belong to this enrolment link")
	}

	// W8: an over-long id is named before the generic parse would fail.
	if err := checkCredentialIDLength(credentialJSON); err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(credentialJSON)
	if err != nil {
		return nil, fail(airlock.EINVALID, ReasonParse, err, "malformed registration response (expected PublicKeyCredential JSON from credential.toJSON())")
	}
	st.credID = parsed.RawID
	if err := s.checkClientData(&parsed.Response.CollectedClientData, protocol.CreateCeremony, session.Challenge); err != nil {
		return nil, err
	}
	authData := &parsed.Response.AttestationObject.AuthData
	if err := s.checkAuthData(authData); err != nil {
		return nil, err
	}
	alg, err := checkAlgorithm(authData.AttData.CredentialPublicKey)
	if err != nil {
		return nil, err
	}
	if len(authData.AttData.CredentialID) > maxCredentialIDLength {
		return nil, fail(airlock.EINVALID, ReasonCredIDTooLong, nil, "credential id is %d bytes; at most %d are allowed", len(authData.AttData.CredentialID), maxCredentialIDLength)
	}
	// go-webauthn: §7.1 steps 7–22 again, with the attestation statement
	// and the algorithm against the offered parameters.
	wc, err := s.wa.CreateCredential(&waUser{u: u}, *session, parsed)
	if err != nil {
		return nil, libraryFailure(err)
	}
	// §7.1 step 26 (W8): registered to nobody, this user included.
	if _, err := s.store.FindCredentialByID(ctx, wc.ID); err == nil {
		return nil, fail(airlock.ECONFLICT, ReasonDuplicate, nil, "this passkey (credential id) is already registered")
	} else if airlock.ErrorCode(err) != airlock.ENOTFOUND {
		return nil, storeFail(err, "credential lookup")
	}

	aaguid := uuid.Nil
	if len(wc.Authenticator.AAGUID) == 16 {
		aaguid, _ = uuid.FromBytes(wc.Authenticator.AAGUID)
	}
	facts := credFacts{be: wc.Flags.BackupEligible, format: wc.AttestationFormat, attType: wc.AttestationType, aaguid: aaguid.String()}
	facts.trusted = s.attestationTrust(wc.AttestationFormat, wc.AttestationType, parsed.Response.AttestationObject.AttStatement, s.now())
	tierCap, ok, why := s.tierCap(u.Tier, facts)
	if !ok {
		return nil, fail(airlock.EFORBIDDEN, ReasonTierPolicy, nil, "this passkey may not serve %s or any less privileged tier: %s", u.Tier, why)
	}
	// A break-glass account's passkey lives on sealed hardware: a synced
	// (backup-eligible) one could be copied out of the safe.
	if u.Kind == airlock.UserBreakGlass && wc.Flags.BackupEligible {
		return nil, fail(airlock.EFORBIDDEN, ReasonBreakGlassBound, nil,
			"a break-glass account's passkey must be device-bound (BE=0) hardware kept sealed; this one is a synced passkey")
	}
	bootstrap := tok.Purpose == airlock.PurposeBootstrap
	if bootstrap {
		if tierCap != 0 {
			return nil, fail(airlock.EFORBIDDEN, ReasonBootstrapBound, nil,
				"bootstrap enrolment needs a device-bound passkey that can serve tier 0 (this one can serve tier %d at best%s)", tierCap, whyNotTier0(why))
		}
		if err := s.checkBootstrapOpen(ctx); err != nil {
			return nil, err
		}
	}

	// The user and device are checked once more right before the binding:
	// verification may have taken a while, and the account state at the
	// moment of binding is what counts.
	now := s.now().UTC()
	u, d, err = s.checkHolder(ctx, tok, now)
	if u != nil {
		st.user = u
	}
	if d != nil {
		st.dev = d
	}
	if err != nil {
		return nil, err
	}
	transports := make([]string, 0, len(wc.Transport))
	for _, t := range wc.Transport {
		transports = append(transports, string(t))
	}
	cred := &airlock.Credential{
		ID: wc.ID, UserID: u.ID, DeviceID: d.ID, Name: d.Name,
		AAGUID: facts.aaguid, AttestationFormat: wc.AttestationFormat, AttestationType: wc.AttestationType,
		AttestationTrusted: facts.anyTrusted(),
		PublicKey:          wc.PublicKey, Algorithm: alg, Transports: transports,
		BackupEligible: wc.Flags.BackupEligible, BackupState: wc.Flags.BackupState,
		SignCount: wc.Authenticator.SignCount, TierCap: tierCap, CreatedAt: now,
	}
	// The token is spent and the credential stored in one transaction: a
	// refused insert leaves the token usable, a spent token stores nothing.
	if err := s.store.EnrolCredential(ctx, tok.ID, cred, now); err != nil {
		if airlock.ErrorCode(err) == airlock.ECONFLICT {
			if cur, ferr := s.store.FindEnrolmentTokenByID(ctx, tok.ID); ferr == nil && cur.UsedAt.IsZero() {
				return nil, fail(airlock.ECONFLICT, ReasonDuplicate, err, "this passkey (credential id) is already registered")
			}
			return nil, fail(airlock.ECONFLICT, ReasonTokenUsed, err, "enrolment link already used")
		}
		return nil, storeFail(err, "enrolment")
	}
	tok.UsedAt = now
	// From here a failure revokes the new credential: it must not stay
	// usable without its notification and audit record.
	if err := s.afterCreate(ctx, u, d, cred, tok, meta, bootstrap, now); err != nil {
		return nil, s.rollbackEnrol(ctx, u, d, cred, meta, err)
	}
	en := &Enrolled{User: u, Device: d, Credential: cred, Token: tok}
	if tok.Purpose == airlock.PurposeRecovery {
		if s.recoveryHook == nil {
			return nil, s.rollbackEnrol(ctx, u, d, cred, meta,
				fail(airlock.EUNAVAILABLE, ReasonRecoveryHook, nil, "recovery is not enabled on this server"))
		}
		if err := s.recoveryHook(ctx, en, meta); err != nil {
			return nil, s.rollbackEnrol(ctx, u, d, cred, meta, hookFailure(err))
		}
	}
	return en, nil
}

// hookFailure tags the recovery hook's error with ReasonRecoveryHook,
// keeping its code and message (a reason it already carries is kept).
func hookFailure(err error) error {
	if ReasonOf(err) != "" {
		return err
	}
	var ae *airlock.Error
	if errors.As(err, &ae) {
		return &airlock.Error{Code: ae.Code, Message: ae.Message, Err: &Failure{Reason: ReasonRecoveryHook, Err: err}}
	}
	return fail(airlock.EINTERNAL, ReasonRecoveryHook, err, "the recovery could not be completed")
}

// rollbackEnrol revokes a credential whose enrolment failed after it was
// stored (cause). If the revocation itself fails, the credential stays
// usable without its notification or audit record: that is returned as
// EINTERNAL and, as far as the audit trail still works, recorded as a
// failed "credential.revoked".
func (s *Service) rollbackEnrol(ctx context.Context, u *airlock.User, d *airlock.Device, cred *airlock.Credential, meta Meta, cause error) error {
	at := s.now().UTC()
	rerr := s.store.RevokeCredential(ctx, cred.ID, at)
	if rerr == nil {
		cred.RevokedAt = at
		return cause
	}
	e := auditEvent("credential.revoked", airlock.OutcomeFailure, meta)
	e.Actor, e.Subject, e.UserID, e.DeviceID, e.CredentialID = SystemIssuer, u.ID, u.ID, d.ID, b64(cred.ID)
	e.Reason = "enrolment rollback"
	e.Details["cause"] = airlock.ErrorMessage(cause)
	e.Details["error"] = rerr.Error()
	aerr := s.audit.Record(ctx, e)
	return fail(airlock.EINTERNAL, ReasonRollbackFailed, errors.Join(cause, rerr, aerr),
		"the enrolment failed and the new passkey could not be revoked; an administrator must revoke it")
}

func (s *Service) afterCreate(ctx context.Context, u *airlock.User, d *airlock.Device, cred *airlock.Credential, tok *airlock.EnrolmentToken, meta Meta, bootstrap bool, now time.Time) error {
	// NIST SP 800-63B-4: binding an authenticator notifies the subscriber.
	payload := map[string]any{
		"user": u.Name, "user_id": u.ID, "credential_id": b64(cred.ID), "device": d.Name, "device_id": d.ID,
		"aaguid": cred.AAGUID, "time": now.Format(time.RFC3339), "ip": meta.IP, "user_agent": meta.UserAgent,
	}
	if err := s.notifier.Notify(ctx, u.ID, NotifyPasskeyAdded, payload); err != nil {
		return fail(airlock.EUNAVAILABLE, ReasonNotifyFailed, err, "could not notify the user of the new passkey; the enrolment was rolled back, try again")
	}
	if bootstrap {
		// The operator who ran `airlock serve` on this host vouches for it.
		d.Trust = airlock.TrustTrusted
		d.Posture = airlock.Posture{Managed: true, DiskEncrypted: true, EDRRunning: true, ScreenLock: true,
			OSVersion: "unknown", ReportedAt: now, Source: "bootstrap"}
		d.UpdatedAt = now
		if err := s.store.UpdateDevice(ctx, d); err != nil {
			return storeFail(err, "bootstrap device update")
		}
		e := auditEvent("device.trusted", airlock.OutcomeSuccess, meta)
		e.Actor, e.Subject, e.UserID, e.DeviceID = u.ID, d.ID, u.ID, d.ID
		e.Details["source"] = "bootstrap"
		if err := s.audit.Record(ctx, e); err != nil {
			return err
		}
	}
	e := auditEvent("enrol.passkey_added", airlock.OutcomeSuccess, meta)
	e.Actor, e.Subject, e.UserID, e.DeviceID, e.CredentialID = u.ID, u.ID, u.ID, d.ID, b64(cred.ID)
	e.Details["aaguid"] = cred.AAGUID
	e.Details["attestation_format"] = cred.AttestationFormat
	e.Details["attestation_type"] = cred.AttestationType
	e.Details["be"] = cred.BackupEligible
	e.Details["bs"] = cred.BackupState
	e.Details["tier_cap"] = int(cred.TierCap)
	e.Details["purpose"] = tok.Purpose
	e.Details["token_id"] = tok.ID
	return s.audit.Record(ctx, e)
}

// recordEnrolFailure audits "enrol.failed". A failure to record is not
// returned: the ceremony already failed.
func (s *Service) recordEnrolFailure(ctx context.Context, stage, ceremonyID string, st *enrolState, err error, meta Meta) {
	e := auditEvent("enrol.failed", failureOutcome(err), meta)
	e.Reason = string(ReasonOf(err))
	e.Details["stage"] = stage
	e.Details["message"] = airlock.ErrorMessage(err)
	if ceremonyID != "" {
		e.Details["ceremony"] = ceremonyID
	}
	if st.cer != nil && st.cer.Kind == KindEnrol {
		e.UserID, e.Subject = st.cer.UserID, st.cer.UserID
		e.Details["token_id"] = st.cer.Ref
	}
	if st.tok != nil {
		e.Details["token_id"] = st.tok.ID
		e.Details["purpose"] = st.tok.Purpose
		e.UserID, e.Subject, e.DeviceID = st.tok.UserID, st.tok.UserID, st.tok.DeviceID
	}
	if st.user != nil {
		e.UserID, e.Subject = st.user.ID, st.user.ID
	}
	if st.dev != nil {
		e.DeviceID = st.dev.ID
	}
	if len(st.credID) > 0 && len(st.credID) <= maxCredentialIDLength {
		e.CredentialID = b64(st.credID)
	}
	_ = s.audit.Record(ctx, e)
}

// credFacts are the properties of a passkey the tier policy looks at.
type credFacts struct {
	be      bool
	format  string // attestation statement format; "none" or "" for none
	attType string // go-webauthn attestation type, e.g. "basic_full", "basic_surrogate"
	aaguid  string // canonical UUID text
	// trusted[t] reports whether the attestation chain verified against
	// tier t's roots (at login: the stored AttestationTrusted, for every
	// tier).
	trusted [airlock.MaxTier + 1]bool
}

func (f credFacts) anyTrusted() bool {
	for _, t := range f.trusted {
		if t {
			return true
		}
	}
	return false
}

// isSelfAttestation reports whether typ is self attestation: the statement
// is signed by the credential key itself and proves nothing about the model.
func isSelfAttestation(typ string) bool {
	return typ == "self" || typ == "basic_surrogate"
}

// attestationTrust verifies the attestation certificate chain in attStmt's
// x5c (leaf x5c[0], intermediates the rest) against each tier's roots, at
// time at. go-webauthn has already verified the attestation signature with
// the leaf and the leaf's §8.2.1 properties; what it cannot know is whom
// the relying party trusts. A "none" or self attestation, or a statement
// without x5c, is trusted by no tier.
func (s *Service) attestationTrust(format, attType string, attStmt map[string]any, at time.Time) (trusted [airlock.MaxTier + 1]bool) {
	if format == "" || format == string(protocol.AttestationFormatNone) || isSelfAttestation(attType) || attType == "none" {
		return trusted
	}
	raw, ok := attStmt["x5c"].([]any)
	if !ok || len(raw) == 0 {
		return trusted
	}
	var leaf *x509.Certificate
	inter := x509.NewCertPool()
	for i, v := range raw {
		der, ok := v.([]byte)
		if !ok {
			return trusted
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return trusted
		}
		if i == 0 {
			leaf = c
		} else {
			inter.AddCert(c)
		}
	}
	for t, r := range s.tiers {
		if r.roots == nil {
			continue
		}
		_, err := leaf.Verify(x509.VerifyOptions{
			Roots: r.roots, Intermediates: inter, CurrentTime: at,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		trusted[t] = err == nil
	}
	return trusted
}

// serves reports whether a passkey with facts f may serve tier t, and if
// not, why.
func (s *Service) serves(t airlock.Tier, f credFacts) (bool, string) {
	r := s.tiers[t]
	var why []string
	// NIST SP 800-63B-4: a syncable key is not AAL3 (W7 policy).
	if f.be && !r.allowSynced {
		why = append(why, "synced passkeys (backup eligible) may not serve it")
	}
	// W7: attestation verified against the configured trust; "none" only
	// where policy allows.
	if r.requireAtt {
		switch {
		case f.format == "" || f.format == string(protocol.AttestationFormatNone):
			why = append(why, "it requires attestation and the authenticator sent none")
		case isSelfAttestation(f.attType):
			why = append(why, "it requires attestation and the authenticator sent only self attestation")
		case !f.trusted[t]:
			why = append(why, "it requires attestation and the attestation certificate does not chain to its attestation roots")
		}
	}
	// Without RequireAttestation the AAGUID is only the authenticator's
	// claim; the list is enforced anyway (stricter).
	if len(r.aaguids) > 0 && !containsFold(r.aaguids, f.aaguid) {
		why = append(why, fmt.Sprintf("authenticator model (AAGUID %s) is not on its allow-list", f.aaguid))
	}
	if len(why) > 0 {
		return false, fmt.Sprintf("tier %d: %s", t, strings.Join(why, " and "))
	}
	return true, ""
}

// tierCap returns the most privileged tier in [userTier, MaxTier] that a
// passkey with facts f may serve. If none, ok is false and why explains
// each tier's refusal.
func (s *Service) tierCap(userTier airlock.Tier, f credFacts) (cap airlock.Tier, ok bool, why string) {
	if !userTier.Valid() {
		return 0, false, fmt.Sprintf("user tier %d is not valid", int(userTier))
	}
	var whys []string
	for t := userTier; t <= airlock.MaxTier; t++ {
		ok, w := s.serves(t, f)
		if ok {
			return t, true, strings.Join(whys, "; ")
		}
		whys = append(whys, w)
	}
	return 0, false, strings.Join(whys, "; ")
}

func whyNotTier0(why string) string {
	if why == "" {
		return ""
	}
	return "; " + why
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
