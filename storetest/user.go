package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"airlock"
)

func fullUser(id, name string, handle byte) *airlock.User {
	return &airlock.User{
		ID:          id,
		Name:        name,
		DisplayName: "Display " + name,
		Kind:        airlock.UserContractor,
		Tier:        1,
		Roles:       []string{"ops", "db-admin"},
		Disabled:    true,
		Window: &airlock.AccessWindow{
			NotBefore: at(-24 * time.Hour),
			NotAfter:  at(30 * 24 * time.Hour).In(elsewhere),
			Weekdays:  []time.Weekday{time.Monday, time.Friday},
			StartHour: 8,
			EndHour:   18,
			TimeZone:  "Europe/Berlin",
		},
		Handle:    bytesOf(handle, 32),
		CreatedAt: at(0).In(elsewhere),
		UpdatedAt: at(time.Second),
		Version:   7, // CreateUser stores the caller's version
	}
}

func minimalUser(id, name string, handle byte) *airlock.User {
	return &airlock.User{ID: id, Name: name, Kind: airlock.UserEmployee, Tier: 2, Handle: bytesOf(handle, 32), CreatedAt: t0, UpdatedAt: t0}
}

func testUsers(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("round-trip", func(t *testing.T) {
		s := open(t)
		u := fullUser("u-1", "alice", 1)
		checkAllSet(t, u)
		must(t, "CreateUser", s.CreateUser(ctx, u))
		byID, err := s.FindUserByID(ctx, u.ID)
		must(t, "FindUserByID", err)
		checkEqual(t, "FindUserByID", u, byID)
		byName, err := s.FindUserByName(ctx, u.Name)
		must(t, "FindUserByName", err)
		checkEqual(t, "FindUserByName", u, byName)
		byHandle, err := s.FindUserByHandle(ctx, u.Handle)
		must(t, "FindUserByHandle", err)
		checkEqual(t, "FindUserByHandle", u, byHandle)
	})

	t.Run("empty-slices-and-nil-window", func(t *testing.T) {
		s := open(t)
		u := minimalUser("u-1", "bob", 2)
		must(t, "CreateUser", s.CreateUser(ctx, u))
		got, err := s.FindUserByID(ctx, u.ID)
		must(t, "FindUserByID", err)
		checkEqual(t, "user", u, got)
		if got.Roles == nil || len(got.Roles) != 0 {
			t.Errorf("Roles = %#v, want empty non-nil", got.Roles)
		}
		if got.Window != nil {
			t.Errorf("Window = %+v, want nil", got.Window)
		}
	})

	t.Run("fail-duplicates", func(t *testing.T) {
		s := open(t)
		must(t, "CreateUser", s.CreateUser(ctx, minimalUser("u-1", "alice", 1)))
		for _, tc := range []struct {
			name string
			u    *airlock.User
		}{
			{"fail-same-id", minimalUser("u-1", "other", 9)},
			{"fail-same-name", minimalUser("u-2", "alice", 9)},
			{"fail-same-handle", minimalUser("u-3", "carol", 1)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantCode(t, "CreateUser", s.CreateUser(ctx, tc.u), airlock.ECONFLICT)
			})
		}
		users, err := s.ListUsers(ctx)
		must(t, "ListUsers", err)
		if len(users) != 1 || users[0].Name != "alice" {
			t.Errorf("after failed creates, ListUsers = %d users, want only alice", len(users))
		}
	})

	t.Run("fail-not-found", func(t *testing.T) {
		s := open(t)
		must(t, "CreateUser", s.CreateUser(ctx, minimalUser("u-1", "alice", 1)))
		_, err := s.FindUserByID(ctx, "u-2")
		wantCode(t, "FindUserByID", err, airlock.ENOTFOUND)
		_, err = s.FindUserByName(ctx, "Alice")
		wantCode(t, "FindUserByName (other case)", err, airlock.ENOTFOUND)
		_, err = s.FindUserByHandle(ctx, bytesOf(2, 32))
		wantCode(t, "FindUserByHandle", err, airlock.ENOTFOUND)
		_, err = s.FindUserByHandle(ctx, bytesOf(1, 31))
		wantCode(t, "FindUserByHandle (prefix)", err, airlock.ENOTFOUND)
	})

	t.Run("list-by-name", func(t *testing.T) {
		s := open(t)
		users, err := s.ListUsers(ctx)
		must(t, "ListUsers (empty)", err)
		if len(users) != 0 {
			t.Fatalf("empty store lists %d users", len(users))
		}
		for i, name := range []string{"carol", "alice", "dave", "bob"} {
			must(t, "CreateUser", s.CreateUser(ctx, minimalUser("u-"+name, name, byte(i))))
		}
		users, err = s.ListUsers(ctx)
		must(t, "ListUsers", err)
		var names []string
		for _, u := range users {
			names = append(names, u.Name)
		}
		checkEqual(t, "ListUsers order", []string{"alice", "bob", "carol", "dave"}, names)
	})

	t.Run("update", func(t *testing.T) {
		s := open(t)
		orig := fullUser("u-1", "alice", 1)
		must(t, "CreateUser", s.CreateUser(ctx, orig))
		must(t, "CreateUser", s.CreateUser(ctx, minimalUser("u-2", "bob", 2)))

		upd := &airlock.User{
			ID: "u-1",
			// Immutable fields: ignored by UpdateUser.
			Name:      "mallory",
			Handle:    bytesOf(7, 32),
			CreatedAt: at(99 * time.Hour),
			// Mutable fields.
			DisplayName: "Alice Admin",
			Kind:        airlock.UserEmployee,
			Tier:        0,
			Roles:       []string{"root"},
			Disabled:    false,
			Window:      nil,
			UpdatedAt:   at(time.Hour),
			Version:     orig.Version,
		}
		must(t, "UpdateUser", s.UpdateUser(ctx, upd))
		if upd.Version != orig.Version+1 {
			t.Errorf("after UpdateUser, Version = %d, want %d", upd.Version, orig.Version+1)
		}
		want := *upd
		want.Name, want.Handle, want.CreatedAt = orig.Name, orig.Handle, orig.CreatedAt
		got, err := s.FindUserByID(ctx, "u-1")
		must(t, "FindUserByID", err)
		checkEqual(t, "updated user", &want, got)
		if _, err := s.FindUserByName(ctx, "mallory"); airlock.ErrorCode(err) != airlock.ENOTFOUND {
			t.Errorf("UpdateUser changed the name: FindUserByName(new) = %v", err)
		}
		other, err := s.FindUserByID(ctx, "u-2")
		must(t, "FindUserByID", err)
		checkEqual(t, "untouched user", minimalUser("u-2", "bob", 2), other)

		// Roles emptied, a window set again.
		upd.Roles = nil
		upd.Window = &airlock.AccessWindow{NotAfter: at(time.Hour)}
		must(t, "UpdateUser", s.UpdateUser(ctx, upd))
		got, err = s.FindUserByID(ctx, "u-1")
		must(t, "FindUserByID", err)
		if got.Roles == nil || len(got.Roles) != 0 {
			t.Errorf("Roles = %#v, want empty non-nil", got.Roles)
		}
		checkEqual(t, "window", upd.Window, got.Window)
	})

	testVersioning(t, open, versionOps[*airlock.User]{
		what:    "user",
		fixture: func() *airlock.User { return minimalUser("u-1", "alice", 1) },
		other:   func() *airlock.User { return minimalUser("u-2", "bob", 2) },
		create:  func(s airlock.Store, u *airlock.User) error { return s.CreateUser(ctx, u) },
		find:    func(s airlock.Store, id string) (*airlock.User, error) { return s.FindUserByID(ctx, id) },
		update:  func(s airlock.Store, u *airlock.User) error { return s.UpdateUser(ctx, u) },
		copy:    func(u *airlock.User) *airlock.User { c := *u; return &c },
		id:      func(u *airlock.User) string { return u.ID },
		version: func(u *airlock.User) *int64 { return &u.Version },
		mutate: func(u *airlock.User, i int) {
			u.DisplayName = fmt.Sprintf("writer %d", i)
			u.Roles = []string{fmt.Sprintf("role-%d", i)}
			u.Tier = airlock.Tier(i % 3)
			u.UpdatedAt = at(time.Duration(i+1) * time.Minute)
		},
	})

	t.Run("fail-update-missing", func(t *testing.T) {
		s := open(t)
		wantCode(t, "UpdateUser", s.UpdateUser(ctx, minimalUser("u-404", "x", 1)), airlock.ENOTFOUND)
		u := minimalUser("u-404", "x", 1)
		u.Version = 3
		wantCode(t, "UpdateUser (version 3)", s.UpdateUser(ctx, u), airlock.ENOTFOUND)
		if u.Version != 3 {
			t.Errorf("failed UpdateUser changed Version to %d", u.Version)
		}
		users, err := s.ListUsers(ctx)
		must(t, "ListUsers", err)
		if len(users) != 0 {
			t.Errorf("UpdateUser of a missing user created one")
		}
	})
}

func testTier0Admin(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()
	admin := func(roles ...string) *airlock.User {
		u := minimalUser("u-admin", "admin", 1)
		u.Tier = 0
		u.Roles = roles
		return u
	}
	cred := func(id byte, userID, deviceID string) *airlock.Credential {
		return &airlock.Credential{ID: bytesOf(id, 16), UserID: userID, DeviceID: deviceID, TierCap: 0, CreatedAt: t0}
	}
	// seed stores u (if not nil), the devices and the credentials.
	seed := func(t *testing.T, s airlock.Store, u *airlock.User, devices []*airlock.Device, creds ...*airlock.Credential) {
		t.Helper()
		if u != nil {
			must(t, "CreateUser", s.CreateUser(ctx, u))
		}
		for _, d := range devices {
			must(t, "CreateDevice", s.CreateDevice(ctx, d))
		}
		for _, c := range creds {
			must(t, "CreateCredential", s.CreateCredential(ctx, c))
		}
	}
	trusted := []*airlock.Device{bareDevice("d-1", airlock.TrustTrusted)}
	// good seeds an admin who passes every condition.
	good := func(t *testing.T, s airlock.Store) (*airlock.User, *airlock.Device, *airlock.Credential) {
		u, d, c := admin(airlock.RoleAdmin), bareDevice("d-1", airlock.TrustTrusted), cred(1, "u-admin", "d-1")
		seed(t, s, u, []*airlock.Device{d}, c)
		return u, d, c
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, s airlock.Store)
		want  bool
	}{
		{"fail-no-users", func(t *testing.T, s airlock.Store) {}, false},
		{"fail-no-credential", func(t *testing.T, s airlock.Store) {
			seed(t, s, admin(airlock.RoleAdmin), trusted)
		}, false},
		{"fail-user-disabled", func(t *testing.T, s airlock.Store) {
			u := admin(airlock.RoleAdmin)
			u.Disabled = true
			seed(t, s, u, trusted, cred(1, u.ID, "d-1"))
		}, false},
		{"fail-user-disabled-later", func(t *testing.T, s airlock.Store) {
			u, _, _ := good(t, s)
			u.Disabled = true
			must(t, "UpdateUser", s.UpdateUser(ctx, u))
		}, false},
		{"fail-user-tier-1", func(t *testing.T, s airlock.Store) {
			u := admin(airlock.RoleAdmin)
			u.Tier = 1
			seed(t, s, u, trusted, cred(1, u.ID, "d-1"))
		}, false},
		{"fail-no-roles", func(t *testing.T, s airlock.Store) {
			seed(t, s, admin(), trusted, cred(1, "u-admin", "d-1"))
		}, false},
		{"fail-other-roles", func(t *testing.T, s airlock.Store) {
			seed(t, s, admin("ops", "admin", "db-admin"), trusted, cred(1, "u-admin", "d-1"))
		}, false},
		{"fail-role-lookalikes", func(t *testing.T, s airlock.Store) {
			// Roles match exactly: not by case, prefix, substring or
			// pattern, and not across the JSON quoting of another role.
			seed(t, s, admin("Airlock-Admin", "AIRLOCK-ADMIN", "airlock_admin", "airlock-admins", "xairlock-admin",
				" airlock-admin", "airlock-admin ", `x"airlock-admin`, `airlock-admin"`, `["airlock-admin"]`, "airlock%"),
				trusted, cred(1, "u-admin", "d-1"))
		}, false},
		{"fail-role-removed-later", func(t *testing.T, s airlock.Store) {
			u, _, _ := good(t, s)
			u.Roles = []string{"ops"}
			must(t, "UpdateUser", s.UpdateUser(ctx, u))
		}, false},
		{"fail-role-held-by-another-user", func(t *testing.T, s airlock.Store) {
			// The role and the credential are on different users.
			other := minimalUser("u-other", "other", 2)
			other.Roles = []string{airlock.RoleAdmin}
			seed(t, s, other, nil)
			seed(t, s, admin("ops"), trusted, cred(1, "u-admin", "d-1"))
		}, false},
		{"fail-credential-revoked", func(t *testing.T, s airlock.Store) {
			_, _, c := good(t, s)
			must(t, "RevokeCredential", s.RevokeCredential(ctx, c.ID, at(time.Minute)))
		}, false},
		{"fail-credential-cap-1", func(t *testing.T, s airlock.Store) {
			c := cred(1, "u-admin", "d-1")
			c.TierCap = 1
			seed(t, s, admin(airlock.RoleAdmin), trusted, c)
		}, false},
		{"fail-credential-of-other-user", func(t *testing.T, s airlock.Store) {
			seed(t, s, admin(airlock.RoleAdmin), trusted)
			seed(t, s, minimalUser("u-other", "other", 2), nil, cred(1, "u-other", "d-1"))
		}, false},
		{"fail-device-missing", func(t *testing.T, s airlock.Store) {
			seed(t, s, admin(airlock.RoleAdmin), trusted, cred(1, "u-admin", "d-404"))
		}, false},
		{"fail-device-pending", func(t *testing.T, s airlock.Store) {
			seed(t, s, admin(airlock.RoleAdmin), []*airlock.Device{bareDevice("d-1", airlock.TrustPending)}, cred(1, "u-admin", "d-1"))
		}, false},
		{"fail-device-revoked", func(t *testing.T, s airlock.Store) {
			seed(t, s, admin(airlock.RoleAdmin), []*airlock.Device{bareDevice("d-1", airlock.TrustRevoked)}, cred(1, "u-admin", "d-1"))
		}, false},
		{"fail-device-revoked-later", func(t *testing.T, s airlock.Store) {
			_, d, _ := good(t, s)
			d.Trust = airlock.TrustRevoked
			must(t, "UpdateDevice", s.UpdateDevice(ctx, d))
		}, false},
		{"fail-each-credential-flawed", func(t *testing.T, s airlock.Store) {
			revoked, capped, pending, lost := cred(1, "u-admin", "d-1"), cred(2, "u-admin", "d-1"), cred(3, "u-admin", "d-2"), cred(4, "u-admin", "d-404")
			capped.TierCap = 2
			seed(t, s, admin(airlock.RoleAdmin), []*airlock.Device{bareDevice("d-1", airlock.TrustTrusted), bareDevice("d-2", airlock.TrustPending)},
				revoked, capped, pending, lost)
			must(t, "RevokeCredential", s.RevokeCredential(ctx, revoked.ID, at(time.Minute)))
		}, false},
		{"ok", func(t *testing.T, s airlock.Store) { good(t, s) }, true},
		{"ok-role-among-others", func(t *testing.T, s airlock.Store) {
			seed(t, s, admin("ops", airlock.RoleAdmin, "db-admin"), trusted, cred(1, "u-admin", "d-1"))
		}, true},
		{"ok-device-trusted-later", func(t *testing.T, s airlock.Store) {
			d := bareDevice("d-1", airlock.TrustPending)
			seed(t, s, admin(airlock.RoleAdmin), []*airlock.Device{d}, cred(1, "u-admin", "d-1"))
			d.Trust = airlock.TrustTrusted
			must(t, "UpdateDevice", s.UpdateDevice(ctx, d))
		}, true},
		{"ok-role-granted-later", func(t *testing.T, s airlock.Store) {
			u := admin("ops")
			seed(t, s, u, trusted, cred(1, "u-admin", "d-1"))
			u.Roles = append(u.Roles, airlock.RoleAdmin)
			must(t, "UpdateUser", s.UpdateUser(ctx, u))
		}, true},
		{"ok-one-of-several-credentials", func(t *testing.T, s airlock.Store) {
			revoked, capped, pending, lost, usable := cred(1, "u-admin", "d-1"), cred(2, "u-admin", "d-1"), cred(3, "u-admin", "d-2"), cred(4, "u-admin", "d-404"), cred(5, "u-admin", "d-3")
			capped.TierCap = 2
			seed(t, s, admin(airlock.RoleAdmin), []*airlock.Device{bareDevice("d-1", airlock.TrustTrusted), bareDevice("d-2", airlock.TrustPending), bareDevice("d-3", airlock.TrustTrusted)},
				revoked, capped, pending, lost, usable)
			must(t, "RevokeCredential", s.RevokeCredential(ctx, revoked.ID, at(time.Minute)))
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			tc.setup(t, s)
			got, err := s.HasActiveTier0Admin(ctx)
			must(t, "HasActiveTier0Admin", err)
			if got != tc.want {
				t.Errorf("HasActiveTier0Admin = %v, want %v", got, tc.want)
			}
		})
	}
}
