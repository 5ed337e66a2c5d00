-- 0001: Airlock's first schema. Times are INTEGER unix microseconds in UTC,
-- 0 meaning the zero time.Time. Durations are INTEGER nanoseconds. Lists and
-- the audit details are JSON text.

CREATE TABLE users (
	id            TEXT    PRIMARY KEY,
	name          TEXT    NOT NULL UNIQUE,
	display_name  TEXT    NOT NULL,
	kind          TEXT    NOT NULL,
	tier          INTEGER NOT NULL,
	roles         TEXT    NOT NULL,
	disabled      INTEGER NOT NULL,
	access_window TEXT,
	handle        BLOB    UNIQUE,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE devices (
	id                  TEXT    PRIMARY KEY,
	name                TEXT    NOT NULL,
	owner               TEXT    NOT NULL,
	kind                TEXT    NOT NULL,
	trust               TEXT    NOT NULL,
	managed             INTEGER NOT NULL,
	disk_encrypted      INTEGER NOT NULL,
	os_version          TEXT    NOT NULL,
	patch_level         TEXT    NOT NULL,
	edr_running         INTEGER NOT NULL,
	screen_lock         INTEGER NOT NULL,
	posture_reported_at INTEGER NOT NULL,
	posture_source      TEXT    NOT NULL,
	created_at          INTEGER NOT NULL,
	updated_at          INTEGER NOT NULL
) STRICT;

CREATE INDEX devices_name ON devices (name, id);

CREATE TABLE credentials (
	id                 BLOB    PRIMARY KEY,
	user_id            TEXT    NOT NULL,
	device_id          TEXT    NOT NULL,
	name               TEXT    NOT NULL,
	aaguid             TEXT    NOT NULL,
	attestation_format TEXT    NOT NULL,
	attestation_type   TEXT    NOT NULL,
	public_key         BLOB,
	algorithm          INTEGER NOT NULL,
	transports         TEXT    NOT NULL,
	backup_eligible    INTEGER NOT NULL,
	backup_state       INTEGER NOT NULL,
	sign_count         INTEGER NOT NULL,
	tier_cap           INTEGER NOT NULL,
	created_at         INTEGER NOT NULL,
	last_used_at       INTEGER NOT NULL,
	revoked_at         INTEGER NOT NULL
) STRICT;

CREATE INDEX credentials_user ON credentials (user_id, created_at);

CREATE TABLE sessions (
	id                TEXT    PRIMARY KEY,
	token_hash        BLOB    UNIQUE,
	user_id           TEXT    NOT NULL,
	device_id         TEXT    NOT NULL,
	credential_id     BLOB,
	tier              INTEGER NOT NULL,
	amr               TEXT    NOT NULL,
	acr               TEXT    NOT NULL,
	auth_time         INTEGER NOT NULL,
	last_seen         INTEGER NOT NULL,
	last_uv_at        INTEGER NOT NULL,
	absolute_deadline INTEGER NOT NULL,
	idle_timeout      INTEGER NOT NULL,
	ip                TEXT    NOT NULL,
	user_agent        TEXT    NOT NULL,
	created_at        INTEGER NOT NULL,
	ended_at          INTEGER NOT NULL,
	end_reason        TEXT    NOT NULL
) STRICT;

CREATE INDEX sessions_user ON sessions (user_id, ended_at, created_at);

CREATE TABLE enrolment_tokens (
	id         TEXT    PRIMARY KEY,
	hash       BLOB    UNIQUE,
	user_id    TEXT    NOT NULL,
	device_id  TEXT    NOT NULL,
	purpose    TEXT    NOT NULL,
	created_by TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE ceremonies (
	id         TEXT    PRIMARY KEY,
	kind       TEXT    NOT NULL,
	user_id    TEXT    NOT NULL,
	ref        TEXT    NOT NULL,
	data       BLOB,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX ceremonies_expires ON ceremonies (expires_at);

-- audit_events is append-only: the store only ever INSERTs, and the triggers
-- below refuse any UPDATE or DELETE, whoever issues it, and any INSERT whose
-- seq is not the next number (which also stops INSERT OR REPLACE, whose
-- implicit delete fires no delete trigger).
CREATE TABLE audit_events (
	seq            INTEGER PRIMARY KEY CHECK (seq > 0),
	time           INTEGER NOT NULL,
	type           TEXT    NOT NULL,
	actor          TEXT    NOT NULL,
	subject        TEXT    NOT NULL,
	outcome        TEXT    NOT NULL,
	reason         TEXT    NOT NULL,
	user_id        TEXT    NOT NULL,
	session_id     TEXT    NOT NULL,
	device_id      TEXT    NOT NULL,
	credential_id  TEXT    NOT NULL,
	decision_id    TEXT    NOT NULL,
	transaction_id TEXT    NOT NULL,
	request_id     TEXT    NOT NULL,
	grant_id       TEXT    NOT NULL,
	ssh_session_id TEXT    NOT NULL,
	ip             TEXT    NOT NULL,
	details        TEXT
) STRICT;

CREATE INDEX audit_events_user ON audit_events (user_id, seq);
CREATE INDEX audit_events_session ON audit_events (session_id, seq);
CREATE INDEX audit_events_type ON audit_events (type, seq);

CREATE TRIGGER audit_events_next_seq BEFORE INSERT ON audit_events
WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM audit_events)
BEGIN
	SELECT RAISE(ABORT, 'audit_events is append-only: seq must be the next number');
END;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
	SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
	SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TABLE notifications (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	kind         TEXT    NOT NULL,
	user_id      TEXT    NOT NULL,
	payload      BLOB,
	attempts     INTEGER NOT NULL,
	next_attempt INTEGER NOT NULL,
	last_error   TEXT    NOT NULL,
	created_at   INTEGER NOT NULL,
	delivered_at INTEGER NOT NULL
) STRICT;

CREATE INDEX notifications_due ON notifications (delivered_at, next_attempt);
CREATE INDEX notifications_user ON notifications (user_id, created_at);

-- rate_limits holds one counter per key and fixed window; windows that have
-- ended are deleted as new hits arrive.
CREATE TABLE rate_limits (
	key          TEXT    NOT NULL,
	window_ns    INTEGER NOT NULL,
	window_start INTEGER NOT NULL,
	window_end   INTEGER NOT NULL,
	count        INTEGER NOT NULL,
	PRIMARY KEY (key, window_ns, window_start)
) STRICT;

CREATE INDEX rate_limits_end ON rate_limits (window_end);
