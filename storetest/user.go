package storetest

import (
	"context"
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
		}
		must(t, "UpdateUser", s.UpdateUser(ctx, upd))
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

	t.Run("fail-update-missing", func(t *testing.T) {
		s := open(t)
		wantCode(t, "UpdateUser", s.UpdateUser(ctx, minimalUser("u-404", "x", 1)), airlock.ENOTFOUND)
		users, err := s.ListUsers(ctx)
		must(t, "ListUsers", err)
		if len(users) != 0 {
			t.Errorf("UpdateUser of a missing user created one")
		}
	})
}

func testTier0Admin(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()
	admin := func() *airlock.User {
		u := minimalUser("u-admin", "admin", 1)
		u.Tier = 0
		return u
	}
	cred := func(id byte, userID string) *airlock.Credential {
		return &airlock.Credential{ID: bytesOf(id, 16), UserID: userID, DeviceID: "d-1", TierCap: 0, CreatedAt: t0}
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, s airlock.Store)
		want  bool
	}{
		{"fail-no-users", func(t *testing.T, s airlock.Store) {}, false},
		{"fail-no-credential", func(t *testing.T, s airlock.Store) {
			must(t, "CreateUser", s.CreateUser(ctx, admin()))
		}, false},
		{"fail-user-disabled", func(t *testing.T, s airlock.Store) {
			u := admin()
			u.Disabled = true
			must(t, "CreateUser", s.CreateUser(ctx, u))
			must(t, "CreateCredential", s.CreateCredential(ctx, cred(1, u.ID)))
		}, false},
		{"fail-user-disabled-later", func(t *testing.T, s airlock.Store) {
			u := admin()
			must(t, "CreateUser", s.CreateUser(ctx, u))
			must(t, "CreateCredential", s.CreateCredential(ctx, cred(1, u.ID)))
			u.Disabled = true
			must(t, "UpdateUser", s.UpdateUser(ctx, u))
		}, false},
		{"fail-user-tier-1", func(t *testing.T, s airlock.Store) {
			u := admin()
			u.Tier = 1
			must(t, "CreateUser", s.CreateUser(ctx, u))
			must(t, "CreateCredential", s.CreateCredential(ctx, cred(1, u.ID)))
		}, false},
		{"fail-credential-revoked", func(t *testing.T, s airlock.Store) {
			u := admin()
			must(t, "CreateUser", s.CreateUser(ctx, u))
			c := cred(1, u.ID)
			must(t, "CreateCredential", s.CreateCredential(ctx, c))
			must(t, "RevokeCredential", s.RevokeCredential(ctx, c.ID, at(time.Minute)))
		}, false},
		{"fail-credential-cap-1", func(t *testing.T, s airlock.Store) {
			u := admin()
			must(t, "CreateUser", s.CreateUser(ctx, u))
			c := cred(1, u.ID)
			c.TierCap = 1
			must(t, "CreateCredential", s.CreateCredential(ctx, c))
		}, false},
		{"fail-credential-of-other-user", func(t *testing.T, s airlock.Store) {
			u := admin()
			must(t, "CreateUser", s.CreateUser(ctx, u))
			other := minimalUser("u-other", "other", 2)
			must(t, "CreateUser", s.CreateUser(ctx, other))
			must(t, "CreateCredential", s.CreateCredential(ctx, cred(1, other.ID)))
		}, false},
		{"ok", func(t *testing.T, s airlock.Store) {
			u := admin()
			must(t, "CreateUser", s.CreateUser(ctx, u))
			must(t, "CreateCredential", s.CreateCredential(ctx, cred(1, u.ID)))
		}, true},
		{"ok-one-of-several-credentials", func(t *testing.T, s airlock.Store) {
			u := admin()
			must(t, "CreateUser", s.CreateUser(ctx, u))
			revoked, capped, good := cred(1, u.ID), cred(2, u.ID), cred(3, u.ID)
			capped.TierCap = 2
			for _, c := range []*airlock.Credential{revoked, capped, good} {
				must(t, "CreateCredential", s.CreateCredential(ctx, c))
			}
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
