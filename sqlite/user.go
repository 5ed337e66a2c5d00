package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"

	"airlock"
)

const userColumns = `id, name, display_name, kind, tier, roles, disabled, access_window, handle, created_at, updated_at,
	version`

// CreateUser inserts u with the Version it has (normally 0). A user with the
// same ID, Name or Handle is ECONFLICT. An empty Handle is stored as NULL and
// is found by no FindUserByHandle.
func (s *Store) CreateUser(ctx context.Context, u *airlock.User) error {
	window, err := encodeWindow(u.Window)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Name, u.DisplayName, string(u.Kind), int64(u.Tier), encodeStrings(u.Roles), boolInt(u.Disabled),
		window, blob(u.Handle), micros(u.CreatedAt), micros(u.UpdatedAt), u.Version)
	return dbError("create user", err)
}

// FindUserByID returns the user with id, or ENOTFOUND.
func (s *Store) FindUserByID(ctx context.Context, id string) (*airlock.User, error) {
	return s.findUser(ctx, `id = ?`, id)
}

// FindUserByName returns the user whose login name is name, or ENOTFOUND.
func (s *Store) FindUserByName(ctx context.Context, name string) (*airlock.User, error) {
	return s.findUser(ctx, `name = ?`, name)
}

// FindUserByHandle returns the user whose WebAuthn user handle is h, or
// ENOTFOUND (always, for an empty h).
func (s *Store) FindUserByHandle(ctx context.Context, h []byte) (*airlock.User, error) {
	if len(h) == 0 {
		return nil, notFound("user")
	}
	return s.findUser(ctx, `handle = ?`, h)
}

func (s *Store) findUser(ctx context.Context, where string, arg any) (*airlock.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE `+where, arg))
	if err == sql.ErrNoRows {
		return nil, notFound("user")
	} else if err != nil {
		return nil, dbError("find user", err)
	}
	return u, nil
}

// ListUsers returns every user ordered by name.
func (s *Store) ListUsers(ctx context.Context) ([]*airlock.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY name`)
	if err != nil {
		return nil, dbError("list users", err)
	}
	defer rows.Close()
	users := []*airlock.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, dbError("list users", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list users", err)
	}
	return users, nil
}

// UpdateUser replaces DisplayName, Kind, Tier, Roles, Disabled, Window and
// UpdatedAt of the user with u.ID, provided its stored version equals
// u.Version; it then increments both the stored version and u.Version. Other
// fields of u are ignored. A missing user is ENOTFOUND; a version mismatch is
// ECONFLICT, and then nothing is written and u is unchanged.
func (s *Store) UpdateUser(ctx context.Context, u *airlock.User) error {
	window, err := encodeWindow(u.Window)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET display_name = ?, kind = ?, tier = ?, roles = ?,
			disabled = ?, access_window = ?, updated_at = ?, version = version + 1 WHERE id = ? AND version = ?`,
			u.DisplayName, string(u.Kind), int64(u.Tier), encodeStrings(u.Roles), boolInt(u.Disabled),
			window, micros(u.UpdatedAt), u.ID, u.Version)
		if err != nil {
			return dbError("update user", err)
		}
		return versionedUpdateResult(ctx, tx, res, "user", "users", u.ID)
	})
	if err != nil {
		return err
	}
	u.Version++
	return nil
}

// versionedUpdateResult turns the result of an UPDATE … WHERE id = ? AND
// version = ? on table into the caller's error: nil when it changed the row,
// ENOTFOUND when no row has the id, ECONFLICT when the row's version moved
// on. It runs in the update's transaction, so the answer is consistent.
func versionedUpdateResult(ctx context.Context, tx *sql.Tx, res sql.Result, what, table, id string) error {
	n, err := rowsAffected(res, "update "+what)
	if err != nil {
		return err
	} else if n == 1 {
		return nil
	}
	var exists bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+table+` WHERE id = ?)`, id).Scan(&exists); err != nil {
		return dbError("update "+what, err)
	}
	if !exists {
		return notFound(what)
	}
	return airlock.Errorf(airlock.ECONFLICT, "sqlite: %s changed concurrently; reload and retry", what)
}

// HasActiveTier0Admin reports whether some enabled tier-0 user whose roles
// include airlock.RoleAdmin (exactly: compared as JSON array elements, case
// and all) holds an unrevoked credential whose tier cap is 0, registered on
// a device that exists and is trusted. It does not look at the user's kind
// or access window, nor at the device's owner or posture.
func (s *Store) HasActiveTier0Admin(ctx context.Context) (bool, error) {
	var ok bool
	err := s.r.QueryRowContext(ctx, `SELECT EXISTS (
		SELECT 1 FROM users u
		JOIN credentials c ON c.user_id = u.id
		JOIN devices d ON d.id = c.device_id
		WHERE u.tier = 0 AND u.disabled = 0 AND c.revoked_at = 0 AND c.tier_cap = 0 AND d.trust = ?
		AND EXISTS (SELECT 1 FROM json_each(u.roles) r WHERE r.type = 'text' AND r.value = ?))`,
		string(airlock.TrustTrusted), airlock.RoleAdmin).Scan(&ok)
	if err != nil {
		return false, dbError("find tier-0 admin", err)
	}
	return ok, nil
}

func scanUser(row scanner) (*airlock.User, error) {
	var (
		u                airlock.User
		kind, roles      string
		window           sql.NullString
		tier             int64
		created, updated int64
	)
	if err := row.Scan(&u.ID, &u.Name, &u.DisplayName, &kind, &tier, &roles, &u.Disabled, &window,
		&u.Handle, &created, &updated, &u.Version); err != nil {
		return nil, err
	}
	u.Kind = airlock.UserKind(kind)
	u.Tier = airlock.Tier(tier)
	u.Handle = nonEmpty(u.Handle)
	u.CreatedAt = fromMicros(created)
	u.UpdatedAt = fromMicros(updated)
	var err error
	if u.Roles, err = decodeStrings(roles); err != nil {
		return nil, err
	}
	if window.Valid && window.String != "" {
		u.Window = new(airlock.AccessWindow)
		if err := json.Unmarshal([]byte(window.String), u.Window); err != nil {
			return nil, airlock.Wrap(airlock.EINTERNAL, "sqlite: corrupt access window", err)
		}
	}
	return &u, nil
}

// encodeWindow returns w as JSON, or NULL for nil.
func encodeWindow(w *airlock.AccessWindow) (any, error) {
	if w == nil {
		return nil, nil
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, airlock.Wrap(airlock.EINVALID, "sqlite: invalid access window", err)
	}
	return string(b), nil
}
