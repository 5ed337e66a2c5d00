-- 0005: the decision edge: step-up transactions and their single-use
-- proofs, policy exceptions, resources added through the admin API, and the
-- history risk signals need (networks seen per user, counted risk events).

CREATE TABLE stepups (
	id               TEXT    PRIMARY KEY,
	session_id       TEXT    NOT NULL,
	user_id          TEXT    NOT NULL,
	device_id        TEXT    NOT NULL,
	action           TEXT    NOT NULL,
	resource         TEXT    NOT NULL,
	params           BLOB,
	params_digest    BLOB,
	client           TEXT    NOT NULL,
	decision_id      TEXT    NOT NULL,
	digest           BLOB,
	acr              TEXT    NOT NULL,
	max_age          INTEGER NOT NULL,
	reason           TEXT    NOT NULL,
	ip               TEXT    NOT NULL,
	created_at       INTEGER NOT NULL,
	expires_at       INTEGER NOT NULL,
	proof_hash       BLOB    UNIQUE,
	credential_id    BLOB,
	completed_at     INTEGER NOT NULL,
	proof_expires_at INTEGER NOT NULL,
	used_at          INTEGER NOT NULL
) STRICT;

CREATE INDEX stepups_expiry ON stepups (max(expires_at, proof_expires_at));

CREATE TABLE exceptions (
	id         TEXT    PRIMARY KEY,
	user_id    TEXT    NOT NULL,
	action     TEXT    NOT NULL,
	resource   TEXT    NOT NULL,
	effect     TEXT    NOT NULL,
	owner      TEXT    NOT NULL,
	reason     TEXT    NOT NULL,
	created_by TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX exceptions_expiry ON exceptions (expires_at, id);

CREATE TABLE resources (
	name       TEXT    PRIMARY KEY,
	tier       INTEGER NOT NULL,
	labels     TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	version    INTEGER NOT NULL
) STRICT;

CREATE TABLE networks_seen (
	user_id    TEXT    NOT NULL,
	network    TEXT    NOT NULL,
	first_seen INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL,
	located    INTEGER NOT NULL,
	lat        REAL    NOT NULL,
	lon        REAL    NOT NULL,
	country    TEXT    NOT NULL,
	PRIMARY KEY (user_id, network)
) STRICT;

CREATE INDEX networks_seen_latest ON networks_seen (user_id, last_seen);
CREATE INDEX networks_seen_last ON networks_seen (last_seen);

CREATE TABLE risk_events (
	user_id TEXT    NOT NULL,
	kind    TEXT    NOT NULL,
	at      INTEGER NOT NULL
) STRICT;

CREATE INDEX risk_events_user ON risk_events (user_id, kind, at);
CREATE INDEX risk_events_at ON risk_events (at);

CREATE INDEX sessions_user_device ON sessions (user_id, device_id, created_at);
