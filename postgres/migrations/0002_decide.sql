-- 0002: the decision edge: step-up transactions and their single-use
-- proofs, policy exceptions, resources added through the admin API, and the
-- history risk signals need (networks seen per user, counted risk events).
-- Same data as the SQLite store's migration 0005.

CREATE TABLE stepups (
	id               text   PRIMARY KEY,
	session_id       text   NOT NULL,
	user_id          text   NOT NULL,
	device_id        text   NOT NULL,
	action           text   NOT NULL,
	resource         text   NOT NULL,
	params           bytea,
	params_digest    bytea,
	client           text   NOT NULL,
	decision_id      text   NOT NULL,
	digest           bytea,
	acr              text   NOT NULL,
	max_age          bigint NOT NULL,
	reason           text   NOT NULL,
	ip               text   NOT NULL,
	created_at       timestamptz,
	expires_at       timestamptz,
	-- Set once by CompleteStepUp; a proof hash is unique across every
	-- transaction, so ConsumeStepUpProof finds at most one row.
	proof_hash       bytea  UNIQUE,
	credential_id    bytea,
	completed_at     timestamptz,
	proof_expires_at timestamptz,
	used_at          timestamptz
);

-- stepups_expiry is on exactly the expression DeleteExpiredStepUps uses:
-- the later of the two deadlines, a zero (NULL) one counting as long past.
CREATE INDEX stepups_expiry ON stepups (greatest(coalesce(expires_at, '-infinity'::timestamptz),
	coalesce(proof_expires_at, '-infinity'::timestamptz)));

CREATE TABLE exceptions (
	id         text COLLATE "C" PRIMARY KEY,
	user_id    text NOT NULL,
	action     text NOT NULL,
	resource   text NOT NULL,
	effect     text NOT NULL,
	owner      text NOT NULL,
	reason     text NOT NULL,
	created_by text NOT NULL,
	created_at timestamptz,
	expires_at timestamptz
);

CREATE INDEX exceptions_expiry ON exceptions (expires_at NULLS FIRST, id);

CREATE TABLE resources (
	name       text COLLATE "C" PRIMARY KEY,
	tier       integer NOT NULL,
	labels     json    NOT NULL,
	created_at timestamptz,
	updated_at timestamptz,
	version    bigint  NOT NULL
);

CREATE TABLE networks_seen (
	user_id    text    NOT NULL,
	network    text COLLATE "C" NOT NULL,
	first_seen timestamptz,
	last_seen  timestamptz,
	located    boolean NOT NULL,
	lat        double precision NOT NULL,
	lon        double precision NOT NULL,
	country    text    NOT NULL,
	PRIMARY KEY (user_id, network)
);

CREATE INDEX networks_seen_latest ON networks_seen (user_id, last_seen);
CREATE INDEX networks_seen_last ON networks_seen (last_seen);

CREATE TABLE risk_events (
	user_id text NOT NULL,
	kind    text NOT NULL,
	at      timestamptz
);

CREATE INDEX risk_events_user ON risk_events (user_id, kind, at);
CREATE INDEX risk_events_at ON risk_events (at);

CREATE INDEX sessions_user_device ON sessions (user_id, device_id, created_at);
