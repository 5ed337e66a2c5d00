package passkey

import (
	"context"
	"time"

	"airlock"
)

// Bootstrap opens the first door of an empty installation. If no active
// tier-0 admin exists (store.HasActiveTier0Admin), it makes sure a user
// BootstrapUserName (tier 0, employee, role airlock.RoleAdmin, display name "Bootstrap
// administrator") and a device BootstrapDeviceName (kind managed, trust
// pending, owned by that user) exist, reusing them if present, and issues a
// PurposeBootstrap enrolment token for them, audited "enrol.bootstrap_issued".
// It returns ("", nil, nil) when a tier-0 admin already exists. An existing
// user of that name that is disabled or not tier 0 is an error: Bootstrap
// never changes an account it did not create.
func (s *Service) Bootstrap(ctx context.Context) (string, *airlock.EnrolmentToken, error) {
	has, err := s.store.HasActiveTier0Admin(ctx)
	if err != nil {
		return "", nil, err
	}
	if has {
		return "", nil, nil
	}
	now := s.now().UTC()
	u, err := s.store.FindUserByName(ctx, BootstrapUserName)
	switch {
	case airlock.ErrorCode(err) == airlock.ENOTFOUND:
		u = &airlock.User{ID: airlock.NewID(airlock.PrefixUser), Name: BootstrapUserName, DisplayName: "Bootstrap administrator",
			Kind: airlock.UserEmployee, Tier: 0, Roles: []string{airlock.RoleAdmin}, Handle: airlock.NewHandle(), CreatedAt: now, UpdatedAt: now}
		if err := s.store.CreateUser(ctx, u); err != nil {
			return "", nil, err
		}
	case err != nil:
		return "", nil, err
	case u.Disabled:
		return "", nil, airlock.Errorf(airlock.EFORBIDDEN, "bootstrap user %s exists but is disabled", u.Name)
	case u.Tier != 0:
		return "", nil, airlock.Errorf(airlock.EFORBIDDEN, "bootstrap user %s exists but is %s, not tier-0", u.Name, u.Tier)
	}

	devices, err := s.store.ListDevices(ctx)
	if err != nil {
		return "", nil, err
	}
	var d *airlock.Device
	for _, cand := range devices {
		if cand.Name == BootstrapDeviceName && cand.Owner == u.ID && cand.Trust != airlock.TrustRevoked {
			d = cand
			break
		}
	}
	if d == nil {
		d = &airlock.Device{ID: airlock.NewID(airlock.PrefixDevice), Name: BootstrapDeviceName, Owner: u.ID, Kind: airlock.DeviceManaged,
			Trust: airlock.TrustPending, CreatedAt: now, UpdatedAt: now}
		if err := s.store.CreateDevice(ctx, d); err != nil {
			return "", nil, err
		}
	}
	// Bootstrap runs at start-up, outside any request: its events carry the
	// same (empty) request fields.
	meta := Meta{}
	if err := s.retireBootstrapTokens(ctx, now, meta); err != nil {
		return "", nil, err
	}
	return s.issue(ctx, SystemIssuer, u.ID, d.ID, airlock.PurposeBootstrap, "enrol.bootstrap_issued", meta)
}

// retireBootstrapTokens spends every earlier bootstrap link that is still
// open, so that only the newest one printed can make the first admin.
func (s *Service) retireBootstrapTokens(ctx context.Context, now time.Time, meta Meta) error {
	toks, err := s.store.ListEnrolmentTokens(ctx)
	if err != nil {
		return err
	}
	for _, t := range toks {
		if t.Purpose != airlock.PurposeBootstrap || !t.UsedAt.IsZero() || !now.Before(t.ExpiresAt) {
			continue
		}
		if err := s.store.UseEnrolmentToken(ctx, t.ID, now); err != nil && airlock.ErrorCode(err) != airlock.ECONFLICT {
			return err
		}
		e := auditEvent("enrol.token_retired", airlock.OutcomeSuccess, meta)
		e.Actor, e.Subject, e.UserID, e.DeviceID = SystemIssuer, t.ID, t.UserID, t.DeviceID
		e.Reason = "superseded by a reissued bootstrap link"
		e.Details["token_id"] = t.ID
		e.Details["purpose"] = t.Purpose
		if err := s.audit.Record(ctx, e); err != nil {
			return err
		}
	}
	return nil
}
