-- 0003: just-in-time elevation: access requests, their approvals, the
-- grants they produce and the SSH certificates issued for grants; and the
-- key thumbprint that binds a CLI session's token to a key pair (DPoP).
-- Same data as the SQLite store's migration 0006.
--
-- A scope is stored as its parts (role, resource, tier, is_tier); durations
-- are nanoseconds. Lists are newest first: an index on (created_at NULLS
-- FIRST, id) read backwards gives "created_at DESC NULLS LAST, id DESC"
-- without sorting, a zero (NULL) time counting as the oldest, as in SQLite.

ALTER TABLE sessions ADD COLUMN key_thumbprint text NOT NULL DEFAULT '';

CREATE TABLE access_requests (
	id             text COLLATE "C" PRIMARY KEY,
	requester_id   text    NOT NULL,
	session_id     text    NOT NULL,
	device_id      text    NOT NULL,
	credential_id  bytea,
	scope_role     text    NOT NULL,
	scope_resource text    NOT NULL,
	scope_tier     integer NOT NULL,
	scope_is_tier  boolean NOT NULL,
	reason         text    NOT NULL,
	ticket         text    NOT NULL,
	duration       bigint  NOT NULL,
	decision_id    text    NOT NULL,
	approval_rule  text    NOT NULL,
	risk           bigint  NOT NULL,
	ip             text    NOT NULL,
	user_agent     text    NOT NULL,
	digest         bytea,
	status         text    NOT NULL,
	created_at     timestamptz,
	expires_at     timestamptz,
	resolved_at    timestamptz,
	resolved_by    text    NOT NULL,
	note           text    NOT NULL,
	grant_id       text    NOT NULL
);

CREATE INDEX access_requests_created ON access_requests (created_at NULLS FIRST, id);
CREATE INDEX access_requests_requester ON access_requests (requester_id, created_at NULLS FIRST, id);
CREATE INDEX access_requests_status ON access_requests (status, created_at NULLS FIRST, id);
-- The expiry sweep, on exactly its expression: pending requests by
-- expiry, a zero (NULL) expiry counting as long past.
CREATE INDEX access_requests_expiry ON access_requests (coalesce(expires_at, '-infinity'::timestamptz), id)
	WHERE status = 'pending';

-- One approval per approver and request; ord keeps the order they were
-- added for approvals made at the same time.
CREATE TABLE approvals (
	ord           bigint  GENERATED ALWAYS AS IDENTITY,
	request_id    text    NOT NULL,
	approver_id   text    NOT NULL,
	session_id    text    NOT NULL,
	device_id     text    NOT NULL,
	credential_id bytea,
	groups        text[]  NOT NULL,
	comment       text    NOT NULL,
	created_at    timestamptz,
	PRIMARY KEY (request_id, approver_id)
);

-- request_id is unique: a request makes at most one grant.
CREATE TABLE grants (
	id             text COLLATE "C" PRIMARY KEY,
	request_id     text    NOT NULL UNIQUE,
	user_id        text    NOT NULL,
	session_id     text    NOT NULL,
	device_id      text    NOT NULL,
	credential_id  bytea,
	scope_role     text    NOT NULL,
	scope_resource text    NOT NULL,
	scope_tier     integer NOT NULL,
	scope_is_tier  boolean NOT NULL,
	not_before     timestamptz,
	not_after      timestamptz,
	created_at     timestamptz,
	ended_at       timestamptz,
	end_reason     text    NOT NULL,
	ended_by       text    NOT NULL
);

CREATE INDEX grants_created ON grants (created_at NULLS FIRST, id);
CREATE INDEX grants_user ON grants (user_id, created_at NULLS FIRST, id);
CREATE INDEX grants_session ON grants (session_id, created_at NULLS FIRST, id);
-- The sweep: grants not ended, by not_after (NULL: long past).
CREATE INDEX grants_to_end ON grants (coalesce(not_after, '-infinity'::timestamptz), id) WHERE ended_at IS NULL;

-- serial is the certificate's uint64 serial, stored as the bigint with the
-- same bits (serials ≥ 2^63 are negative here).
CREATE TABLE ssh_certificates (
	ord            bigint  GENERATED ALWAYS AS IDENTITY,
	serial         bigint  PRIMARY KEY,
	key_id         text    NOT NULL,
	grant_id       text    NOT NULL,
	user_id        text    NOT NULL,
	session_id     text    NOT NULL,
	principals     text[]  NOT NULL,
	public_key     text    NOT NULL,
	valid_after    timestamptz,
	valid_before   timestamptz,
	source_address text    NOT NULL,
	extensions     text[]  NOT NULL,
	issued_at      timestamptz
);

CREATE INDEX ssh_certificates_grant ON ssh_certificates (grant_id, issued_at NULLS FIRST, ord);
