package passkey

import (
	"context"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"airlock"
)

// BeginLogin starts a discoverable (username-less) login: the options name
// no user and no credential, and require user verification. The ceremony is
// stored for Config.CeremonyTTL.
func (s *Service) BeginLogin(ctx context.Context, meta Meta) (*Begin, error) {
	assertion, session, err := s.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, airlock.Wrap(airlock.EINTERNAL, "could not start the login ceremony", err)
	}
	return s.storeCeremony(ctx, KindLogin, "", "", session, assertion.Response)
}

// loginState collects what is known about a failing login for its audit
// record.
type loginState struct {
	user   *airlock.User
	cred   *airlock.Credential
	credID []byte
	dev    *airlock.Device
	// verified is set once the assertion signature verified: before that,
	// the claimed owner is only a claim.
	verified bool
}

// FinishLogin completes a login begun by BeginLogin. It consumes the
// ceremony first (single use, even on failure) and verifies the assertion
// (WebAuthn L3 §7.2) for the credential named by its raw id and the user
// named by its userHandle (required, and the credential's owner: W9). Only
// once the signature verified — so that nobody learns anything about an
// account without holding its key — does it refuse a revoked credential, a
// disabled user, a missing or revoked device, an assertion without UV (W5),
// a changed backup eligibility (W6, audited
// "auth.backup_eligibility_changed") and, for an effective tier 0 or 1, a
// sign count that did not increase (W11, audited "auth.clone_warning"; at
// tier 2 it is audited and accepted). Only then are the sign count, backup
// state and last use stored (W12), as a compare-and-set on the count read:
// a login of the same credential that won a race elsewhere makes this one
// fail (audited as a clone warning). Success is audited "auth.login", every
// failure "auth.login_failed" with a reason code; failures before the
// signature verified carry generic messages and Details["owner_unverified"].
func (s *Service) FinishLogin(ctx context.Context, ceremonyID string, credentialJSON []byte, meta Meta) (*LoginResult, error) {
	st := &loginState{}
	res, err := s.finishLogin(ctx, ceremonyID, credentialJSON, meta, st)
	if err != nil {
		err = asFailure(err, "login")
		s.recordLoginFailure(ctx, ceremonyID, st, err, meta)
		return nil, err
	}
	return res, nil
}

func (s *Service) finishLogin(ctx context.Context, ceremonyID string, credentialJSON []byte, meta Meta, st *loginState) (*LoginResult, error) {
	_, session, err := s.consumeCeremony(ctx, ceremonyID, KindLogin)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(credentialJSON)
	if err != nil {
		return nil, fail(airlock.EINVALID, ReasonParse, err, "malformed assertion response (expected PublicKeyCredential JSON from credential.toJSON())")
	}
	if len(parsed.RawID) <= maxCredentialIDLength {
		st.credID = parsed.RawID
	}
	if err := s.checkClientData(&parsed.Response.CollectedClientData, protocol.AssertCeremony, session.Challenge); err != nil {
		return nil, err
	}
	ad := &parsed.Response.AuthenticatorData
	if err := s.checkAuthData(ad); err != nil {
		return nil, err
	}

	// §7.2 step 6: identify the user and the credential. In a discoverable
	// login the userHandle is required and must name the owner (W9). Until
	// the signature verified, every message is generic: the caller has not
	// shown that the account is theirs.
	if len(parsed.RawID) > maxCredentialIDLength {
		return nil, fail(airlock.EUNAUTHORIZED, ReasonUnknownCredential, nil, "unknown passkey")
	}
	// From reading the stored sign count to writing the new one, no other
	// login of this credential runs in this process; across processes the
	// store's compare-and-set on the count decides (UpdateCredentialUse).
	mu := s.credLock(parsed.RawID)
	mu.Lock()
	defer mu.Unlock()
	cred, err := s.store.FindCredentialByID(ctx, parsed.RawID)
	if err != nil {
		if airlock.ErrorCode(err) == airlock.ENOTFOUND {
			return nil, fail(airlock.EUNAUTHORIZED, ReasonUnknownCredential, nil, "unknown passkey; it may have been removed from this server")
		}
		return nil, storeFail(err, "credential lookup")
	}
	st.cred = cred
	if len(parsed.Response.UserHandle) == 0 {
		return nil, fail(airlock.EUNAUTHORIZED, ReasonNoUserHandle, nil, "the assertion carries no userHandle, which a discoverable login requires")
	}
	u, err := s.store.FindUserByHandle(ctx, parsed.Response.UserHandle)
	if err != nil && airlock.ErrorCode(err) != airlock.ENOTFOUND {
		return nil, storeFail(err, "user lookup")
	}
	if err != nil || u.ID != cred.UserID {
		return nil, fail(airlock.EUNAUTHORIZED, ReasonUserHandle, nil, "the assertion's userHandle does not belong to the passkey's owner")
	}
	st.user = u

	// W10: the signature first. The library is handed the user with this
	// one credential, even if it is revoked or the user disabled, so that
	// it can verify; the account state is checked afterwards.
	assertedBE := ad.Flags.HasBackupEligible()
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		return &waUser{u: u, creds: []webauthn.Credential{webauthnCredential(cred, assertedBE)}}, nil
	}
	_, wc, err := s.wa.ValidatePasskeyLogin(handler, *session, parsed)
	if err != nil {
		return nil, libraryFailure(err)
	}
	st.verified = true

	// The caller proved possession of the key: specific messages from here.
	// A sealed break-glass account never signs in here: its use takes the
	// break-glass path (justification, alert, review).
	if u.Kind == airlock.UserBreakGlass {
		return nil, fail(airlock.EFORBIDDEN, ReasonNotBreakGlass, nil, "break-glass accounts use the break-glass path")
	}
	if cred.IsRevoked() {
		return nil, fail(airlock.EUNAUTHORIZED, ReasonCredentialRevoked, nil, "this passkey has been revoked")
	}
	if u.Disabled {
		return nil, fail(airlock.EFORBIDDEN, ReasonUserDisabled, nil, "user %s is disabled", u.Name)
	}
	d, err := s.store.FindDeviceByID(ctx, cred.DeviceID)
	if err != nil {
		if airlock.ErrorCode(err) == airlock.ENOTFOUND {
			return nil, fail(airlock.EFORBIDDEN, ReasonDeviceMissing, nil, "the passkey's device is no longer in the inventory")
		}
		return nil, storeFail(err, "device lookup")
	}
	st.dev = d
	if d.Trust == airlock.TrustRevoked {
		return nil, fail(airlock.EFORBIDDEN, ReasonDeviceRevoked, nil, "device %s is revoked", d.Name)
	}
	// W5: UV of this assertion (checkAuthData already refused UV=0), not of
	// the stored record.
	uv := ad.Flags.HasUserVerified()
	tier, ok := s.effectiveTier(u, cred)
	if !ok {
		return nil, fail(airlock.EFORBIDDEN, ReasonTierPolicy, nil, "this passkey no longer satisfies the policy of any tier the user may use")
	}
	if err := s.acceptAssertion(ctx, u, d, cred, ad, wc, tier, meta); err != nil {
		return nil, err
	}
	bs := cred.BackupState

	amr := []string{"hwk", "user", "mfa"}
	if cred.BackupEligible {
		amr = []string{"swk", "user", "mfa"}
	}
	e := auditEvent("auth.login", airlock.OutcomeSuccess, meta)
	e.Actor, e.Subject, e.UserID, e.DeviceID, e.CredentialID = u.ID, u.ID, u.ID, d.ID, b64(cred.ID)
	e.Details["tier"] = int(tier)
	e.Details["uv"] = uv
	e.Details["amr"] = amr
	e.Details["be"] = cred.BackupEligible
	e.Details["bs"] = bs
	if err := s.audit.Record(ctx, e); err != nil {
		return nil, err
	}
	return &LoginResult{User: u, Device: d, Credential: cred, Tier: tier, UV: uv, AMR: amr}, nil
}

// acceptAssertion applies the checks every assertion (login, step-up)
// shares once its signature verified, and then records the use: the backup
// eligibility must be the one fixed at creation (W6, §7.2 step 19, audited
// "auth.backup_eligibility_changed"); a sign count that did not increase is
// a clone signal (W11, §7.2 step 22, audited "auth.clone_warning", refused
// for an effective tier 0 or 1 and recorded as a risk event); only then are
// the sign count, backup state and last use stored (W12), as a
// compare-and-set on the count read. On success cred holds the new values.
func (s *Service) acceptAssertion(ctx context.Context, u *airlock.User, d *airlock.Device, cred *airlock.Credential, ad *protocol.AuthenticatorData, wc *webauthn.Credential, tier airlock.Tier, meta Meta) error {
	assertedBE := ad.Flags.HasBackupEligible()
	// Checked here, after the signature verified, so that the event is
	// evidence, not noise.
	if assertedBE != cred.BackupEligible {
		e := auditEvent("auth.backup_eligibility_changed", airlock.OutcomeDenied, meta)
		e.Actor, e.Subject, e.UserID, e.DeviceID, e.CredentialID = u.ID, u.ID, u.ID, d.ID, b64(cred.ID)
		e.Details["stored_be"] = cred.BackupEligible
		e.Details["asserted_be"] = assertedBE
		if err := s.audit.Record(ctx, e); err != nil {
			return err
		}
		return fail(airlock.EUNAUTHORIZED, ReasonBEChanged, nil,
			"the passkey's backup eligibility changed since enrolment (BE was %t, now %t); enrol it again", cred.BackupEligible, assertedBE)
	}
	// go-webauthn only flags a sign count that did not increase.
	newCount := cred.SignCount
	if wc.Authenticator.CloneWarning {
		denied := tier <= 1
		outcome := airlock.OutcomeSuccess
		if denied {
			outcome = airlock.OutcomeDenied
		}
		e := auditEvent("auth.clone_warning", outcome, meta)
		e.Actor, e.Subject, e.UserID, e.DeviceID, e.CredentialID = u.ID, u.ID, u.ID, d.ID, b64(cred.ID)
		e.Details["stored_sign_count"] = cred.SignCount
		e.Details["asserted_sign_count"] = ad.Counter
		e.Details["tier"] = int(tier)
		if err := s.audit.Record(ctx, e); err != nil {
			return err
		}
		if err := s.store.RecordRiskEvent(ctx, u.ID, airlock.RiskClone, s.now().UTC()); err != nil {
			return storeFail(err, "risk event")
		}
		if denied {
			return fail(airlock.EUNAUTHORIZED, ReasonClone, nil, "sign count did not increase (possible cloned authenticator)")
		}
	} else {
		newCount = wc.Authenticator.SignCount
	}

	// W12: only now, with every check passed; and only if nobody changed
	// the credential since it was read (another replica's login of the same
	// key, or a revocation).
	now := s.now().UTC()
	bs := ad.Flags.HasBackupState()
	if err := s.store.UpdateCredentialUse(ctx, cred.ID, cred.SignCount, newCount, bs, now); err != nil {
		if airlock.ErrorCode(err) == airlock.ECONFLICT {
			return s.useConflict(ctx, u, d, cred, ad.Counter, tier, meta, err)
		}
		return storeFail(err, "credential update")
	}
	cred.SignCount, cred.BackupState, cred.LastUsedAt = newCount, bs, now
	return nil
}

// useConflict explains a refused compare-and-set of the sign count: the
// credential was revoked meanwhile, or another login of the same key (a
// clone, or a concurrent use through another replica) got there first.
// The latter is a clone signal at every tier: audited "auth.clone_warning".
func (s *Service) useConflict(ctx context.Context, u *airlock.User, d *airlock.Device, cred *airlock.Credential, asserted uint32, tier airlock.Tier, meta Meta, cause error) error {
	cur, err := s.store.FindCredentialByID(ctx, cred.ID)
	if err != nil {
		return storeFail(err, "credential lookup")
	}
	if cur.IsRevoked() {
		return fail(airlock.EUNAUTHORIZED, ReasonCredentialRevoked, cause, "this passkey has been revoked")
	}
	e := auditEvent("auth.clone_warning", airlock.OutcomeDenied, meta)
	e.Actor, e.Subject, e.UserID, e.DeviceID, e.CredentialID = u.ID, u.ID, u.ID, d.ID, b64(cred.ID)
	e.Details["stored_sign_count"] = cur.SignCount
	e.Details["read_sign_count"] = cred.SignCount
	e.Details["asserted_sign_count"] = asserted
	e.Details["tier"] = int(tier)
	e.Details["concurrent_use"] = true
	if err := s.audit.Record(ctx, e); err != nil {
		return err
	}
	if err := s.store.RecordRiskEvent(ctx, u.ID, airlock.RiskClone, s.now().UTC()); err != nil {
		return storeFail(err, "risk event")
	}
	return fail(airlock.EUNAUTHORIZED, ReasonClone, cause, "the passkey was used by another login at the same time (possible cloned authenticator)")
}

// effectiveTier is the user's tier limited by the credential's cap, then
// stepped down further if the current tier policy (which may have changed
// since enrolment) no longer admits the passkey there.
func (s *Service) effectiveTier(u *airlock.User, c *airlock.Credential) (airlock.Tier, bool) {
	t := airlock.LeastPrivileged(u.Tier, c.TierCap)
	if !t.Valid() {
		return 0, false
	}
	f := credFacts{be: c.BackupEligible, format: c.AttestationFormat, attType: c.AttestationType, aaguid: c.AAGUID}
	// The chain is not kept: the verdict recorded at enrolment stands for
	// every tier. A credential without it serves no tier that requires
	// attestation.
	for i := range f.trusted {
		f.trusted[i] = c.AttestationTrusted
	}
	cap, ok, _ := s.tierCap(t, f)
	return cap, ok
}

// webauthnCredential converts c to a go-webauthn credential. The
// backup-eligible flag handed to the library is the asserted one:
// go-webauthn would refuse a change with a generic error before Airlock
// could audit it, so Airlock compares it itself after the signature
// verified (see FinishLogin).
func webauthnCredential(c *airlock.Credential, assertedBE bool) webauthn.Credential {
	var aaguid []byte
	if id, err := uuid.Parse(c.AAGUID); err == nil {
		aaguid = id[:]
	}
	transports := make([]protocol.AuthenticatorTransport, 0, len(c.Transports))
	for _, t := range c.Transports {
		transports = append(transports, protocol.AuthenticatorTransport(t))
	}
	return webauthn.Credential{
		ID: c.ID, PublicKey: c.PublicKey, AttestationType: c.AttestationType, AttestationFormat: c.AttestationFormat,
		Transport: transports,
		Flags: webauthn.CredentialFlags{UserPresent: true, UserVerified: true,
			BackupEligible: assertedBE, BackupState: c.BackupState},
		Authenticator: webauthn.Authenticator{AAGUID: aaguid, SignCount: c.SignCount},
	}
}

// recordLoginFailure audits "auth.login_failed". A failure to record is not
// returned: the login already failed.
func (s *Service) recordLoginFailure(ctx context.Context, ceremonyID string, st *loginState, err error, meta Meta) {
	e := auditEvent("auth.login_failed", failureOutcome(err), meta)
	e.Reason = string(ReasonOf(err))
	e.Details["message"] = airlock.ErrorMessage(err)
	if ceremonyID != "" {
		e.Details["ceremony"] = ceremonyID
	}
	if !st.verified {
		// The assertion did not verify (or was never checked): whoever it
		// names as the owner is only claimed.
		e.Details["owner_unverified"] = true
	}
	if st.credID != nil {
		e.CredentialID = b64(st.credID)
		if st.cred == nil {
			// A check failed before the credential was looked up (UV, UP,
			// origin…): name its claimed owner so the failure joins the
			// user's trail.
			if c, err := s.store.FindCredentialByID(ctx, st.credID); err == nil {
				st.cred = c
			}
		}
	}
	if st.cred != nil {
		// The claimed owner, even when the userHandle named someone else.
		e.Subject, e.UserID, e.DeviceID = st.cred.UserID, st.cred.UserID, st.cred.DeviceID
	}
	if st.user != nil {
		e.UserID, e.Subject = st.user.ID, st.user.ID
	}
	if st.dev != nil {
		e.DeviceID = st.dev.ID
	}
	_ = s.audit.Record(ctx, e)
	s.countFailure(ctx, e.UserID, err)
}

// countFailure records a failed ceremony of a known user as a risk event
// (the failed-ceremony velocity signal). Store outages and Airlock's own
// failures are not the user's doing and are not counted; a failure to
// record is not returned, since the ceremony already failed.
func (s *Service) countFailure(ctx context.Context, userID string, err error) {
	if userID == "" || ownFailure(err) {
		return
	}
	_ = s.store.RecordRiskEvent(ctx, userID, airlock.RiskCeremonyFailure, s.now().UTC())
}

// ownFailure reports whether err is Airlock's own failure (a store outage,
// an internal error) rather than a refusal of what the caller presented.
func ownFailure(err error) bool {
	switch airlock.ErrorCode(err) {
	case airlock.EINTERNAL, airlock.EUNAVAILABLE:
		return true
	}
	return false
}

// failureOutcome is the audit outcome of a failed ceremony: "failure" when
// Airlock failed, "denied" when it refused.
func failureOutcome(err error) string {
	if ownFailure(err) {
		return airlock.OutcomeFailure
	}
	return airlock.OutcomeDenied
}
