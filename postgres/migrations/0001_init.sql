-- 0001: Airlock's schema on PostgreSQL, the same data as the SQLite store's
-- migrations 0001-0003. Times are timestamptz (microseconds, UTC); NULL is
-- the zero time.Time. Durations are bigint nanoseconds. Ordered text
-- columns use the "C" collation, so that lists come back in byte order
-- whatever the database's locale, as they do on SQLite. Insertion order,
-- which SQLite gets from rowid, is an identity column "ord".

CREATE TABLE users (
	id            text COLLATE "C" PRIMARY KEY,
	name          text COLLATE "C" NOT NULL UNIQUE,
	display_name  text     NOT NULL,
	kind          text     NOT NULL,
	tier          integer  NOT NULL,
	roles         text[]   NOT NULL,
	disabled      boolean  NOT NULL,
	access_window json,
	handle        bytea    UNIQUE,
	created_at    timestamptz,
	updated_at    timestamptz,
	version       bigint   NOT NULL
);

CREATE TABLE devices (
	id                  text COLLATE "C" PRIMARY KEY,
	name                text COLLATE "C" NOT NULL,
	owner               text    NOT NULL,
	kind                text    NOT NULL,
	trust               text    NOT NULL,
	managed             boolean NOT NULL,
	disk_encrypted      boolean NOT NULL,
	os_version          text    NOT NULL,
	patch_level         text    NOT NULL,
	edr_running         boolean NOT NULL,
	screen_lock         boolean NOT NULL,
	posture_reported_at timestamptz,
	posture_source      text    NOT NULL,
	created_at          timestamptz,
	updated_at          timestamptz,
	version             bigint  NOT NULL
);

CREATE INDEX devices_name ON devices (name, id);

CREATE TABLE credentials (
	ord                 bigint  GENERATED ALWAYS AS IDENTITY,
	id                  bytea   PRIMARY KEY CHECK (length(id) > 0),
	user_id             text    NOT NULL,
	device_id           text    NOT NULL,
	name                text    NOT NULL,
	aaguid              text    NOT NULL,
	attestation_format  text    NOT NULL,
	attestation_type    text    NOT NULL,
	attestation_trusted boolean NOT NULL,
	public_key          bytea,
	algorithm           bigint  NOT NULL,
	transports          text[]  NOT NULL,
	backup_eligible     boolean NOT NULL,
	backup_state        boolean NOT NULL,
	sign_count          bigint  NOT NULL,
	tier_cap            integer NOT NULL,
	created_at          timestamptz,
	last_used_at        timestamptz,
	revoked_at          timestamptz
);

CREATE INDEX credentials_user ON credentials (user_id, created_at, ord);

-- expires_at is the session's effective deadline: the earlier of the
-- absolute deadline and the idle deadline (last_seen plus idle_timeout,
-- rounded up to a whole microsecond so that a session is never reported
-- expired before it is), a zero time counting as long past. The store sets
-- it in the same statement that sets either input; sessions_expiry lets the
-- sweep read the oldest deadlines first without sorting.
CREATE TABLE sessions (
	ord               bigint  GENERATED ALWAYS AS IDENTITY,
	id                text    PRIMARY KEY,
	token_hash        bytea   UNIQUE,
	user_id           text    NOT NULL,
	device_id         text    NOT NULL,
	credential_id     bytea,
	tier              integer NOT NULL,
	amr               text[]  NOT NULL,
	acr               text    NOT NULL,
	auth_time         timestamptz,
	last_seen         timestamptz,
	last_uv_at        timestamptz,
	absolute_deadline timestamptz,
	idle_timeout      bigint  NOT NULL,
	expires_at        timestamptz NOT NULL,
	ip                text    NOT NULL,
	user_agent        text    NOT NULL,
	created_at        timestamptz,
	ended_at          timestamptz,
	end_reason        text    NOT NULL
);

CREATE INDEX sessions_user ON sessions (user_id, created_at, ord) WHERE ended_at IS NULL;
CREATE INDEX sessions_device ON sessions (device_id) WHERE ended_at IS NULL;
CREATE INDEX sessions_expiry ON sessions (expires_at, ord) WHERE ended_at IS NULL;

CREATE TABLE enrolment_tokens (
	ord        bigint GENERATED ALWAYS AS IDENTITY,
	id         text   PRIMARY KEY,
	hash       bytea  UNIQUE,
	user_id    text   NOT NULL,
	device_id  text   NOT NULL,
	purpose    text   NOT NULL,
	created_by text   NOT NULL,
	created_at timestamptz,
	expires_at timestamptz,
	used_at    timestamptz
);

CREATE INDEX enrolment_tokens_created ON enrolment_tokens (created_at, ord);

CREATE TABLE ceremonies (
	id         text  PRIMARY KEY,
	kind       text  NOT NULL,
	user_id    text  NOT NULL,
	ref        text  NOT NULL,
	data       bytea,
	created_at timestamptz,
	expires_at timestamptz
);

CREATE INDEX ceremonies_expires ON ceremonies (expires_at);

-- The tamper-evident audit log. Each row keeps the event's leaf (its
-- canonical JSON, airlock.AuditLeaf: the source of truth, stored verbatim),
-- the RFC 9162 tree hashes written with it (tlog stored hashes, 32 bytes
-- each, concatenated) and copies of a few fields as index columns for
-- filtering, which `airlock audit verify` checks against the leaf. Appends
-- from every replica are serialized by an advisory lock (see audit.go).
--
-- The index columns are bytea, not text: they hold exactly the event's
-- strings (which verify compares with the leaf), and PostgreSQL text cannot
-- hold a NUL or invalid UTF-8 — one such event would otherwise fail the
-- whole group-commit batch it travels in.
--
-- audit_log and audit_checkpoints are append-only: the store only ever
-- INSERTs, and the triggers below refuse any UPDATE, DELETE or TRUNCATE,
-- whoever issues it, and any INSERT whose seq is not the next number.
CREATE TABLE audit_log (
	seq        bigint PRIMARY KEY CHECK (seq > 0),
	leaf       bytea  NOT NULL,
	hashes     bytea  NOT NULL,
	time       timestamptz NOT NULL,
	type       bytea  NOT NULL,
	user_id    bytea  NOT NULL,
	session_id bytea  NOT NULL,
	grant_id   bytea  NOT NULL
);

-- Partial indexes: most events carry no session or grant.
CREATE INDEX audit_log_user ON audit_log (user_id, seq) WHERE user_id <> ''::bytea;
CREATE INDEX audit_log_session ON audit_log (session_id, seq) WHERE session_id <> ''::bytea;
CREATE INDEX audit_log_grant ON audit_log (grant_id, seq) WHERE grant_id <> ''::bytea;
CREATE INDEX audit_log_type ON audit_log (type, seq);
CREATE INDEX audit_log_time ON audit_log (time, seq);

CREATE FUNCTION audit_log_next_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.seq IS DISTINCT FROM (SELECT coalesce(max(seq), 0) + 1 FROM audit_log) THEN
		RAISE EXCEPTION 'audit_log is append-only: seq must be the next number'
			USING ERRCODE = 'integrity_constraint_violation';
	END IF;
	RETURN NEW;
END $$;

CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END $$;

CREATE TRIGGER audit_log_next_seq BEFORE INSERT ON audit_log
	FOR EACH ROW EXECUTE FUNCTION audit_log_next_seq();
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
	FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- Signed checkpoints (C2SP tlog-checkpoint notes), one per tree size.
CREATE TABLE audit_checkpoints (
	size       bigint PRIMARY KEY CHECK (size > 0),
	text       bytea  NOT NULL,
	created_at timestamptz
);

CREATE TRIGGER audit_checkpoints_no_change BEFORE UPDATE OR DELETE ON audit_checkpoints
	FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- Delivery cursors of the SIEM sinks: every event up to seq was delivered.
CREATE TABLE audit_cursors (
	name       text   PRIMARY KEY,
	seq        bigint NOT NULL CHECK (seq >= 0),
	updated_at timestamptz NOT NULL
);

CREATE TABLE notifications (
	id           bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kind         text    NOT NULL,
	user_id      text    NOT NULL,
	payload      bytea,
	attempts     integer NOT NULL,
	next_attempt timestamptz,
	last_error   text    NOT NULL,
	created_at   timestamptz,
	delivered_at timestamptz
);

CREATE INDEX notifications_due ON notifications (created_at, id) WHERE delivered_at IS NULL;
CREATE INDEX notifications_user ON notifications (user_id, created_at, id);

-- rate_limits holds one counter per key and fixed window (bounds in unix
-- nanoseconds); windows that have ended are deleted as new hits arrive.
CREATE TABLE rate_limits (
	key          text   NOT NULL,
	window_ns    bigint NOT NULL,
	window_start bigint NOT NULL,
	window_end   bigint NOT NULL,
	count        bigint NOT NULL,
	PRIMARY KEY (key, window_ns, window_start)
);

CREATE INDEX rate_limits_end ON rate_limits (window_end);
