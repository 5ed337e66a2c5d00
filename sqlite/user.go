package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"

	"airlock"
)

const userColumns = `id, name, display_name, kind, tier, roles, disabled, access_window, handle, created_at, updated_at`

// CreateUser inserts u. A user with the same ID, Name or Handle is
// ECONFLICT. An empty Handle is stored as NULL and is found by no
// FindUserByHandle.
func (s *Store) CreateUser(ctx context.Context, u *airlock.User) error {
	window, err := encodeWindow(u.Window)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Name, u.DisplayName, string(u.Kind), int64(u.Tier), encodeStrings(u.Roles), boolInt(u.Disabled),
		window, blob(u.Handle), micros(u.CreatedAt), micros(u.UpdatedAt))
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
// UpdatedAt of the user with u.ID; other fields of u are ignored. A missing
// user is ENOTFOUND.
func (s *Store) UpdateUser(ctx context.Context, u *airlock.User) error {
	window, err := encodeWindow(u.Window)
	if err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, `UPDATE users SET display_name = ?, kind = ?, tier = ?, roles = ?,
		disabled = ?, access_window = ?, updated_at = ? WHERE id = ?`,
		u.DisplayName, string(u.Kind), int64(u.Tier), encodeStrings(u.Roles), boolInt(u.Disabled),
		window, micros(u.UpdatedAt), u.ID)
	if err != nil {
		return dbError("update user", err)
	}
	if n, err := rowsAffected(res, "update user"); err != nil {
		return err
	} else if n == 0 {
		return notFound("user")
	}
	return nil
}

// HasActiveTier0Admin reports whether some enabled tier-0 user holds an
// unrevoked credential whose tier cap is 0. It does not look at the user's
// kind or access window, nor at the credential's device.
func (s *Store) HasActiveTier0Admin(ctx context.Context) (bool, error) {
	var ok bool
	err := s.r.QueryRowContext(ctx, `SELECT EXISTS (
		SELECT 1 FROM users u JOIN credentials c ON c.user_id = u.id
		WHERE u.tier = 0 AND u.disabled = 0 AND c.revoked_at = 0 AND c.tier_cap = 0)`).Scan(&ok)
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
		&u.Handle, &created, &updated); err != nil {
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
