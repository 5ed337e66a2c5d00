package postgres

import (
	"context"
	"encoding/json"
	"errors"

	"airlock"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
	_, err = s.pool.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		u.ID, u.Name, u.DisplayName, string(u.Kind), int64(u.Tier), strs(u.Roles), u.Disabled,
		window, blob(u.Handle), ts(u.CreatedAt), ts(u.UpdatedAt), u.Version)
	return dbError("create user", err)
}

// FindUserByID returns the user with id, or ENOTFOUND.
func (s *Store) FindUserByID(ctx context.Context, id string) (*airlock.User, error) {
	return s.findUser(ctx, `id = $1`, id)
}

// FindUserByName returns the user whose login name is name (compared
// exactly, case and all), or ENOTFOUND.
func (s *Store) FindUserByName(ctx context.Context, name string) (*airlock.User, error) {
	return s.findUser(ctx, `name = $1`, name)
}

// FindUserByHandle returns the user whose WebAuthn user handle is h, or
// ENOTFOUND (always, for an empty h).
func (s *Store) FindUserByHandle(ctx context.Context, h []byte) (*airlock.User, error) {
	if len(h) == 0 {
		return nil, notFound("user")
	}
	return s.findUser(ctx, `handle = $1`, h)
}

func (s *Store) findUser(ctx context.Context, where string, arg any) (*airlock.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE `+where, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("user")
	} else if err != nil {
		return nil, dbError("find user", err)
	}
	return u, nil
}

// ListUsers returns every user ordered by name (byte order).
func (s *Store) ListUsers(ctx context.Context) ([]*airlock.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY name`)
	return collect(rows, err, "list users", scanUser)
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
	tag, err := s.pool.Exec(ctx, `UPDATE users SET display_name = $1, kind = $2, tier = $3, roles = $4,
		disabled = $5, access_window = $6, updated_at = $7, version = version + 1 WHERE id = $8 AND version = $9`,
		u.DisplayName, string(u.Kind), int64(u.Tier), strs(u.Roles), u.Disabled,
		window, ts(u.UpdatedAt), u.ID, u.Version)
	if err := s.versionedUpdateResult(ctx, tag, err, "user", "users", u.ID); err != nil {
		return err
	}
	u.Version++
	return nil
}

// versionedUpdateResult turns the result of an UPDATE … WHERE id = ? AND
// version = ? on table into the caller's error: nil when it changed the row,
// ENOTFOUND when no row has the id, ECONFLICT when the row's version moved
// on. Rows are never deleted, so a row that existed at the update still
// exists when it is looked up afterwards.
func (s *Store) versionedUpdateResult(ctx context.Context, tag pgconn.CommandTag, err error, what, table, id string) error {
	if err != nil {
		return dbError("update "+what, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+table+` WHERE id = $1)`, id).Scan(&exists); err != nil {
		return dbError("update "+what, err)
	}
	if !exists {
		return notFound(what)
	}
	return airlock.Errorf(airlock.ECONFLICT, "postgres: %s changed concurrently; reload and retry", what)
}

// HasActiveTier0Admin reports whether some enabled tier-0 user whose roles
// include airlock.RoleAdmin (exactly: compared as array elements, case and
// all) holds an unrevoked credential whose tier cap is 0, registered on a
// device that exists and is trusted. It does not look at the user's kind or
// access window, nor at the device's owner or posture.
func (s *Store) HasActiveTier0Admin(ctx context.Context) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (
		SELECT 1 FROM users u
		JOIN credentials c ON c.user_id = u.id
		JOIN devices d ON d.id = c.device_id
		WHERE u.tier = 0 AND NOT u.disabled AND c.revoked_at IS NULL AND c.tier_cap = 0 AND d.trust = $1
		AND $2 = ANY (u.roles))`,
		string(airlock.TrustTrusted), airlock.RoleAdmin).Scan(&ok)
	if err != nil {
		return false, dbError("find tier-0 admin", err)
	}
	return ok, nil
}

func scanUser(row pgx.Row) (*airlock.User, error) {
	var (
		u      airlock.User
		kind   string
		window *string
		tier   int64
		roles  []string
	)
	if err := row.Scan(&u.ID, &u.Name, &u.DisplayName, &kind, &tier, &roles, &u.Disabled, &window,
		&u.Handle, tsp(&u.CreatedAt), tsp(&u.UpdatedAt), &u.Version); err != nil {
		return nil, err
	}
	u.Kind = airlock.UserKind(kind)
	u.Tier = airlock.Tier(tier)
	u.Roles = nonNil(roles)
	u.Handle = nonEmpty(u.Handle)
	if window != nil && *window != "" {
		u.Window = new(airlock.AccessWindow)
		if err := json.Unmarshal([]byte(*window), u.Window); err != nil {
			return nil, airlock.Wrap(airlock.EINTERNAL, "postgres: corrupt access window", err)
		}
	}
	return &u, nil
}

// encodeWindow returns w as JSON text, or NULL for nil.
func encodeWindow(w *airlock.AccessWindow) (any, error) {
	if w == nil {
		return nil, nil
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, airlock.Wrap(airlock.EINVALID, "postgres: invalid access window", err)
	}
	return string(b), nil
}
