package http

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"time"

	"airlock"
	"airlock/device"
	"airlock/elevate"
)

var (
	namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	rolePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._:-]{0,63}$`)
)

// record audits an admin action; the action fails if it cannot be audited.
func (s *Server) record(r *http.Request, e airlock.AuditEvent) error {
	a := sessionFrom(r.Context())
	if a != nil {
		e.Actor = a.User.ID
		if e.SessionID == "" {
			e.SessionID = a.Session.ID
		}
		if e.DeviceID == "" {
			e.DeviceID = a.Device.ID
		}
		if e.Details == nil {
			e.Details = map[string]any{}
		}
		e.Details["actor_session"] = a.Session.ID
	}
	e.RequestID = requestIDFrom(r.Context())
	e.IP = clientIP(r)
	if e.DecisionID == "" {
		// The policy decision that allowed this change.
		e.DecisionID = decisionID(r)
	}
	return s.Audit.Record(r.Context(), e)
}

// mayManage enforces that an admin never acts on an account more privileged
// than their own session: a tier-1 admin cannot enrol a passkey for, or
// change, a tier-0 user (that would be an escalation).
func mayManage(a *authn, tier airlock.Tier) error {
	if tier < a.Session.Tier {
		return airlock.Errorf(airlock.EFORBIDDEN, "a tier-%d session cannot manage tier-%d accounts", a.Session.Tier, tier)
	}
	return nil
}

// mayManageDevice applies mayManage to a device's owner; any admin may
// manage shared devices.
func (s *Server) mayManageDevice(r *http.Request, d *airlock.Device) error {
	if d.Owner == airlock.SharedOwner {
		return nil
	}
	owner, err := s.Store.FindUserByID(r.Context(), d.Owner)
	if airlock.ErrorCode(err) == airlock.ENOTFOUND {
		return airlock.Errorf(airlock.EINVALID, "device owner %s does not exist", d.Owner)
	} else if err != nil {
		return err
	}
	return mayManage(sessionFrom(r.Context()), owner.Tier)
}

// mayEnrolFor decides whether admin a may issue an enrolment link for u.
// Binding a passkey to an account is taking it over, so an admin may do it
// only for an account strictly less privileged than the admin's session, or
// for one that holds no usable passkey yet (onboarding) and is not more
// privileged. Adding a passkey to one's own account, or to an established
// account of one's own tier, goes through the account holder
// (POST /v1/me/enrolment-tokens), at the account's highest assurance.
func (s *Server) mayEnrolFor(r *http.Request, a *authn, u *airlock.User) error {
	if err := mayManage(a, u.Tier); err != nil {
		return err
	}
	if u.Tier > a.Session.Tier {
		return nil
	}
	creds, err := s.Store.ListCredentialsByUser(r.Context(), u.ID)
	if err != nil {
		return err
	}
	for _, c := range creds {
		if !c.IsRevoked() {
			return airlock.Errorf(airlock.EFORBIDDEN, "%s already has a passkey and is as privileged as your session: only they can add another (from their home page)", u.Name)
		}
	}
	return nil
}

// --- users ---

type userRequest struct {
	Name        *string               `json:"name"`
	DisplayName *string               `json:"display_name"`
	Kind        *airlock.UserKind     `json:"kind"`
	Tier        *int                  `json:"tier"`
	Roles       *[]string             `json:"roles"`
	Disabled    *bool                 `json:"disabled"`
	Window      *airlock.AccessWindow `json:"window"`
}

func (req *userRequest) apply(u *airlock.User) error {
	if req.DisplayName != nil {
		if len(*req.DisplayName) > 100 {
			return airlock.Errorf(airlock.EINVALID, "display_name must be at most 100 characters")
		}
		u.DisplayName = *req.DisplayName
	}
	if req.Kind != nil {
		if !req.Kind.Valid() {
			return airlock.Errorf(airlock.EINVALID, "kind must be employee, contractor or breakglass")
		}
		u.Kind = *req.Kind
	}
	if req.Tier != nil {
		t := airlock.Tier(*req.Tier)
		if !t.Valid() {
			return airlock.Errorf(airlock.EINVALID, "tier must be 0, 1 or 2")
		}
		u.Tier = t
	}
	if req.Roles != nil {
		if len(*req.Roles) > 32 {
			return airlock.Errorf(airlock.EINVALID, "at most 32 roles")
		}
		roles := []string{}
		for _, role := range *req.Roles {
			if !rolePattern.MatchString(role) {
				return airlock.Errorf(airlock.EINVALID, "role %q must be lower-case letters, digits and . _ : -", role)
			}
			if !slices.Contains(roles, role) {
				roles = append(roles, role)
			}
		}
		u.Roles = roles
	}
	if req.Disabled != nil {
		u.Disabled = *req.Disabled
	}
	if req.Window != nil {
		w := *req.Window
		if w.TimeZone != "" {
			if _, err := time.LoadLocation(w.TimeZone); err != nil {
				return airlock.Errorf(airlock.EINVALID, "unknown time zone %q", w.TimeZone)
			}
		}
		if w.StartHour < 0 || w.StartHour > 23 || w.EndHour < 0 || w.EndHour > 24 {
			return airlock.Errorf(airlock.EINVALID, "window hours must be within 0-24")
		}
		if !w.NotBefore.IsZero() && !w.NotAfter.IsZero() && !w.NotAfter.After(w.NotBefore) {
			return airlock.Errorf(airlock.EINVALID, "window not_after must be after not_before")
		}
		u.Window = &w
	}
	if u.Kind == airlock.UserContractor && u.Window == nil {
		return airlock.Errorf(airlock.EINVALID, "a contractor needs an access window")
	}
	return nil
}

func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request) {
	users, err := s.Store.ListUsers(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]userJSON, 0, len(users))
	for _, u := range users {
		out = append(out, userView(u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request) {
	a := sessionFrom(r.Context())
	var req userRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Name == nil || !namePattern.MatchString(*req.Name) {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "name is required: 1-64 lower-case letters, digits and . _ -"))
		return
	}
	now := s.Now().UTC()
	u := &airlock.User{ID: airlock.NewID(airlock.PrefixUser), Name: *req.Name, DisplayName: *req.Name, Kind: airlock.UserEmployee,
		Tier: airlock.MaxTier, Roles: []string{}, Handle: airlock.NewHandle(), CreatedAt: now, UpdatedAt: now}
	if err := req.apply(u); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := mayManage(a, u.Tier); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Store.CreateUser(r.Context(), u); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.record(r, airlock.AuditEvent{Type: "user.created", Subject: u.ID, UserID: u.ID,
		Details: map[string]any{"name": u.Name, "kind": u.Kind, "tier": int(u.Tier), "roles": u.Roles}}); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, userView(u))
}

// findUser resolves an ID or a user name.
func (s *Server) findUser(r *http.Request, ref string) (*airlock.User, error) {
	u, err := s.Store.FindUserByID(r.Context(), ref)
	if airlock.ErrorCode(err) == airlock.ENOTFOUND {
		u, err = s.Store.FindUserByName(r.Context(), ref)
	}
	if airlock.ErrorCode(err) == airlock.ENOTFOUND {
		return nil, airlock.Errorf(airlock.ENOTFOUND, "no user %q", ref)
	}
	return u, err
}

func (s *Server) handleGetUser(w http.ResponseWriter, r *http.Request) {
	u, err := s.findUser(r, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	creds, err := s.Store.ListCredentialsByUser(r.Context(), u.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cv := make([]credentialJSON, 0, len(creds))
	for _, c := range creds {
		cv = append(cv, credentialView(c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": userView(u), "credentials": cv})
}

func (s *Server) handleUpdateUser(w http.ResponseWriter, r *http.Request) {
	a := sessionFrom(r.Context())
	u, err := s.findUser(r, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req userRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Name != nil && *req.Name != u.Name {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "a user's name cannot change"))
		return
	}
	if u.ID == a.User.ID && (req.Tier != nil || req.Roles != nil || req.Disabled != nil || req.Kind != nil || req.Window != nil) {
		s.writeError(w, r, airlock.Errorf(airlock.EFORBIDDEN, "you cannot change your own tier, kind, roles, access window or disabled flag; ask another admin"))
		return
	}
	if err := mayManage(a, u.Tier); err != nil {
		s.writeError(w, r, err)
		return
	}
	before := *u
	if err := req.apply(u); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := mayManage(a, u.Tier); err != nil {
		s.writeError(w, r, err)
		return
	}
	u.UpdatedAt = s.Now().UTC()
	if err := s.Store.UpdateUser(r.Context(), u); err != nil {
		s.writeError(w, r, err)
		return
	}
	// A disabled user, or one whose tier was lowered, keeps no session. End
	// them before anything else can fail.
	var endErr error
	if (u.Disabled && !before.Disabled) || u.Tier > before.Tier {
		reason := "user_disabled"
		if !u.Disabled {
			reason = "tier_changed"
		}
		if u.Disabled {
			// Grants first, so that they end as the user's (the sessions'
			// end hook would end them as session_ended).
			endErr = s.endGrants(r.Context(), elevate.Target{UserID: u.ID}, airlock.EndUserDisabled, a.User.ID)
		}
		endErr = errors.Join(endErr, s.Sessions.EndUser(r.Context(), u.ID, reason, a.User.ID))
	}
	if err := s.record(r, airlock.AuditEvent{Type: "user.updated", Subject: u.ID, UserID: u.ID, Details: map[string]any{
		"before": map[string]any{"tier": int(before.Tier), "kind": before.Kind, "roles": before.Roles, "disabled": before.Disabled, "window": before.Window},
		"after":  map[string]any{"tier": int(u.Tier), "kind": u.Kind, "roles": u.Roles, "disabled": u.Disabled, "window": u.Window},
	}}); err != nil {
		s.writeError(w, r, err)
		return
	}
	if endErr != nil {
		s.writeError(w, r, endErr)
		return
	}
	writeJSON(w, http.StatusOK, userView(u))
}

// --- devices ---

type deviceRequest struct {
	Name  *string             `json:"name"`
	Owner *string             `json:"owner"`
	Kind  *airlock.DeviceKind `json:"kind"`
	Trust *airlock.TrustState `json:"trust"`
}

func (s *Server) applyDevice(r *http.Request, req *deviceRequest, d *airlock.Device) error {
	if req.Name != nil {
		if *req.Name == "" || len(*req.Name) > 100 {
			return airlock.Errorf(airlock.EINVALID, "device name must be 1-100 characters")
		}
		d.Name = *req.Name
	}
	if req.Owner != nil {
		if *req.Owner == airlock.SharedOwner {
			d.Owner = airlock.SharedOwner
		} else {
			u, err := s.findUser(r, *req.Owner)
			if err != nil {
				return airlock.Errorf(airlock.EINVALID, "owner must be a user or %q: %s", airlock.SharedOwner, airlock.ErrorMessage(err))
			}
			d.Owner = u.ID
		}
	}
	if req.Kind != nil {
		if !req.Kind.Valid() {
			return airlock.Errorf(airlock.EINVALID, "kind must be managed, shared-station, contractor-issued or unmanaged")
		}
		d.Kind = *req.Kind
	}
	if req.Trust != nil {
		if !req.Trust.Valid() {
			return airlock.Errorf(airlock.EINVALID, "trust must be pending, trusted or revoked")
		}
		d.Trust = *req.Trust
	}
	return nil
}

func (s *Server) handleListDevices(w http.ResponseWriter, r *http.Request) {
	devs, err := s.Store.ListDevices(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]deviceJSON, 0, len(devs))
	for _, d := range devs {
		out = append(out, s.deviceView(d))
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": out})
}

func (s *Server) handleCreateDevice(w http.ResponseWriter, r *http.Request) {
	var req deviceRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Name == nil || req.Owner == nil || req.Kind == nil {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "name, owner and kind are required"))
		return
	}
	if req.Trust != nil {
		// Trust is a separate, audited decision, taken after the device exists.
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "a new device starts pending; trust it with a separate update"))
		return
	}
	now := s.Now().UTC()
	d := &airlock.Device{ID: airlock.NewID(airlock.PrefixDevice), Trust: airlock.TrustPending, CreatedAt: now, UpdatedAt: now}
	if err := s.applyDevice(r, &req, d); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.mayManageDevice(r, d); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Store.CreateDevice(r.Context(), d); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.record(r, airlock.AuditEvent{Type: "device.created", Subject: d.ID, DeviceID: d.ID,
		Details: map[string]any{"name": d.Name, "owner": d.Owner, "kind": d.Kind, "trust": d.Trust}}); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.deviceView(d))
}

func (s *Server) handleGetDevice(w http.ResponseWriter, r *http.Request) {
	d, err := s.Store.FindDeviceByID(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.deviceView(d))
}

func (s *Server) handleUpdateDevice(w http.ResponseWriter, r *http.Request) {
	d, err := s.Store.FindDeviceByID(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req deviceRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	// The admin must be allowed to manage the device's owner both before
	// and after the change (no moving a tier-0 admin's device away, and no
	// handing a device to an account above one's own tier).
	if err := s.mayManageDevice(r, d); err != nil {
		s.writeError(w, r, err)
		return
	}
	before := *d
	if err := s.applyDevice(r, &req, d); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.mayManageDevice(r, d); err != nil {
		s.writeError(w, r, err)
		return
	}
	d.UpdatedAt = s.Now().UTC()
	if err := s.Store.UpdateDevice(r.Context(), d); err != nil {
		s.writeError(w, r, err)
		return
	}
	var endErr error
	if before.Trust == airlock.TrustTrusted && d.Trust != airlock.TrustTrusted {
		endErr = s.endGrants(r.Context(), elevate.Target{DeviceID: d.ID}, airlock.EndDeviceUntrusted, sessionFrom(r.Context()).User.ID)
	}
	if d.Trust == airlock.TrustRevoked && before.Trust != airlock.TrustRevoked {
		endErr = errors.Join(endErr, s.Sessions.EndDevice(r.Context(), d.ID, "device_revoked", sessionFrom(r.Context()).User.ID))
	}
	typ := "device.updated"
	if before.Trust != d.Trust {
		typ = "device." + string(d.Trust)
	}
	if err := s.record(r, airlock.AuditEvent{Type: typ, Subject: d.ID, DeviceID: d.ID, Details: map[string]any{
		"before": map[string]any{"name": before.Name, "owner": before.Owner, "kind": before.Kind, "trust": before.Trust},
		"after":  map[string]any{"name": d.Name, "owner": d.Owner, "kind": d.Kind, "trust": d.Trust},
	}}); err != nil {
		s.writeError(w, r, err)
		return
	}
	if endErr != nil {
		s.writeError(w, r, endErr)
		return
	}
	writeJSON(w, http.StatusOK, s.deviceView(d))
}

func (s *Server) handleReportPosture(w http.ResponseWriter, r *http.Request) {
	a := sessionFrom(r.Context())
	d, err := s.Store.FindDeviceByID(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.mayManageDevice(r, d); err != nil {
		s.writeError(w, r, err)
		return
	}
	var p airlock.Posture
	if err := decode(r, &p); err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.Now().UTC()
	if p.ReportedAt.IsZero() {
		p.ReportedAt = now
	}
	// The reporter is whoever calls: an admin cannot claim to be the
	// bootstrap operator or a device-management system.
	p.Source = "admin:" + a.User.Name
	if err := device.ValidatePosture(p, now); err != nil {
		s.writeError(w, r, err)
		return
	}
	d.Posture = p
	d.UpdatedAt = now
	if err := s.Store.UpdateDevice(r.Context(), d); err != nil {
		s.writeError(w, r, err)
		return
	}
	c := device.Evaluate(d, s.DeviceRules, now)
	var endErr error
	if !c.Compliant {
		endErr = s.endGrants(r.Context(), elevate.Target{DeviceID: d.ID}, airlock.EndDeviceNonCompliant, a.User.ID)
	}
	if err := s.record(r, airlock.AuditEvent{Type: "device.posture_reported", Subject: d.ID, DeviceID: d.ID, Details: map[string]any{
		"posture": p, "compliant": c.Compliant, "noncompliance": c.Reasons,
	}}); err != nil {
		s.writeError(w, r, err)
		return
	}
	if endErr != nil {
		s.writeError(w, r, endErr)
		return
	}
	writeJSON(w, http.StatusOK, s.deviceView(d))
}

// --- enrolment tokens ---

type tokenRequest struct {
	User   string `json:"user"`
	Device string `json:"device"`
}

type tokenJSON struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	DeviceID  string    `json:"device_id"`
	Purpose   string    `json:"purpose"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	UsedAt    time.Time `json:"used_at"`
	Token     string    `json:"token,omitempty"`
	URL       string    `json:"url,omitempty"`
	// DeviceCompliant warns the issuer that enrolment will be refused until
	// the device is compliant.
	DeviceCompliant *bool    `json:"device_compliant,omitempty"`
	Noncompliance   []string `json:"noncompliance,omitempty"`
}

func tokenView(t *airlock.EnrolmentToken) tokenJSON {
	return tokenJSON{ID: t.ID, UserID: t.UserID, DeviceID: t.DeviceID, Purpose: t.Purpose, CreatedBy: t.CreatedBy,
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, UsedAt: t.UsedAt}
}

// EnrolURL returns the enrolment page link for secret under base.
func EnrolURL(base, secret string) string {
	return base + "/enrol?token=" + url.QueryEscape(secret)
}

func (s *Server) handleListTokens(w http.ResponseWriter, r *http.Request) {
	toks, err := s.Store.ListEnrolmentTokens(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]tokenJSON, 0, len(toks))
	for _, t := range toks {
		out = append(out, tokenView(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

func (s *Server) handleIssueToken(w http.ResponseWriter, r *http.Request) {
	a := sessionFrom(r.Context())
	var req tokenRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.findUser(r, req.User)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.mayEnrolFor(r, a, u); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.issueLink(w, r, a, u, req.Device)
}

// issueLink issues an enrolment link for u on the device deviceID.
// passkey.IssueEnrolmentToken refuses a disabled user, a missing or revoked
// device and a device of another user; the answer adds a warning when the
// device is not compliant yet (enrolment will be refused until it is).
func (s *Server) issueLink(w http.ResponseWriter, r *http.Request, a *authn, u *airlock.User, deviceID string) {
	secret, tok, err := s.Passkeys.IssueEnrolmentToken(r.Context(), a.User.ID, u.ID, deviceID, airlock.PurposeEnrol, s.meta(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	d, err := s.Store.FindDeviceByID(r.Context(), tok.DeviceID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := tokenView(tok)
	out.Token = secret
	out.URL = EnrolURL(s.Origins[0], secret)
	c := device.Evaluate(d, s.DeviceRules, s.Now())
	out.DeviceCompliant = &c.Compliant
	out.Noncompliance = c.Reasons
	writeJSON(w, http.StatusCreated, out)
}

// --- credentials and audit ---

func (s *Server) handleRevokeCredential(w http.ResponseWriter, r *http.Request) {
	a := sessionFrom(r.Context())
	id, err := base64.RawURLEncoding.DecodeString(r.PathValue("id"))
	if err != nil || len(id) == 0 || len(id) > 1023 {
		s.writeError(w, r, airlock.Errorf(airlock.EINVALID, "credential id must be base64url"))
		return
	}
	c, err := s.Store.FindCredentialByID(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	owner, err := s.Store.FindUserByID(r.Context(), c.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := mayManage(a, owner.Tier); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Store.RevokeCredential(r.Context(), id, s.Now().UTC()); err != nil {
		s.writeError(w, r, err)
		return
	}
	endErr := errors.Join(s.endGrants(r.Context(), elevate.Target{CredentialID: id}, airlock.EndCredentialRevoked, a.User.ID),
		s.Sessions.EndUser(r.Context(), owner.ID, "credential_revoked", a.User.ID))
	if err := s.record(r, airlock.AuditEvent{Type: "credential.revoked", Subject: b64(id), UserID: owner.ID,
		DeviceID: c.DeviceID, CredentialID: b64(id)}); err != nil {
		s.writeError(w, r, err)
		return
	}
	if endErr != nil {
		s.writeError(w, r, endErr)
		return
	}
	c.RevokedAt = s.Now().UTC()
	writeJSON(w, http.StatusOK, credentialView(c))
}

// endGrants ends the elevation grants resting on t with reason (issue 5's
// revocation hooks), when the elevation service is wired.
func (s *Server) endGrants(ctx context.Context, t elevate.Target, reason, actor string) error {
	if s.Elevation == nil {
		return nil
	}
	return s.Elevation.EndGrantsFor(ctx, t, reason, actor)
}
