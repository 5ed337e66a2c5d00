-- 0006: just-in-time elevation: access requests, their approvals, the
-- grants they produce and the SSH certificates issued for grants; and the
-- key thumbprint that binds a CLI session's token to a key pair (DPoP).
--
-- A scope is stored as its parts (role, resource, tier, is_tier). Durations
-- are nanoseconds, times unix microseconds (0: the zero time), string lists
-- JSON arrays.

ALTER TABLE sessions ADD COLUMN key_thumbprint TEXT NOT NULL DEFAULT '';

CREATE TABLE access_requests (
	id             TEXT    PRIMARY KEY,
	requester_id   TEXT    NOT NULL,
	session_id     TEXT    NOT NULL,
	device_id      TEXT    NOT NULL,
	credential_id  BLOB,
	scope_role     TEXT    NOT NULL,
	scope_resource TEXT    NOT NULL,
	scope_tier     INTEGER NOT NULL,
	scope_is_tier  INTEGER NOT NULL,
	reason         TEXT    NOT NULL,
	ticket         TEXT    NOT NULL,
	duration       INTEGER NOT NULL,
	decision_id    TEXT    NOT NULL,
	approval_rule  TEXT    NOT NULL,
	risk           INTEGER NOT NULL,
	ip             TEXT    NOT NULL,
	user_agent     TEXT    NOT NULL,
	digest         BLOB,
	status         TEXT    NOT NULL,
	created_at     INTEGER NOT NULL,
	expires_at     INTEGER NOT NULL,
	resolved_at    INTEGER NOT NULL,
	resolved_by    TEXT    NOT NULL,
	note           TEXT    NOT NULL,
	grant_id       TEXT    NOT NULL
) STRICT;

-- Lists are newest first: (created_at, id) read backwards needs no sort.
CREATE INDEX access_requests_created ON access_requests (created_at, id);
CREATE INDEX access_requests_requester ON access_requests (requester_id, created_at, id);
CREATE INDEX access_requests_status ON access_requests (status, created_at, id);
-- The expiry sweep: requests of a status by expiry.
CREATE INDEX access_requests_expiry ON access_requests (status, expires_at, id);

-- One approval per approver and request.
CREATE TABLE approvals (
	request_id    TEXT    NOT NULL,
	approver_id   TEXT    NOT NULL,
	session_id    TEXT    NOT NULL,
	device_id     TEXT    NOT NULL,
	credential_id BLOB,
	groups        TEXT    NOT NULL,
	comment       TEXT    NOT NULL,
	created_at    INTEGER NOT NULL,
	PRIMARY KEY (request_id, approver_id)
) STRICT;

-- request_id is unique: a request makes at most one grant.
CREATE TABLE grants (
	id             TEXT    PRIMARY KEY,
	request_id     TEXT    NOT NULL UNIQUE,
	user_id        TEXT    NOT NULL,
	session_id     TEXT    NOT NULL,
	device_id      TEXT    NOT NULL,
	credential_id  BLOB,
	scope_role     TEXT    NOT NULL,
	scope_resource TEXT    NOT NULL,
	scope_tier     INTEGER NOT NULL,
	scope_is_tier  INTEGER NOT NULL,
	not_before     INTEGER NOT NULL,
	not_after      INTEGER NOT NULL,
	created_at     INTEGER NOT NULL,
	ended_at       INTEGER NOT NULL,
	end_reason     TEXT    NOT NULL,
	ended_by       TEXT    NOT NULL
) STRICT;

CREATE INDEX grants_created ON grants (created_at, id);
CREATE INDEX grants_user ON grants (user_id, created_at, id);
CREATE INDEX grants_session ON grants (session_id, created_at, id);
-- The sweep: grants not ended, by not_after.
CREATE INDEX grants_to_end ON grants (not_after, id) WHERE ended_at = 0;

-- serial is the certificate's uint64 serial, stored as the int64 with the
-- same bits.
CREATE TABLE ssh_certificates (
	serial         INTEGER NOT NULL UNIQUE,
	key_id         TEXT    NOT NULL,
	grant_id       TEXT    NOT NULL,
	user_id        TEXT    NOT NULL,
	session_id     TEXT    NOT NULL,
	principals     TEXT    NOT NULL,
	public_key     TEXT    NOT NULL,
	valid_after    INTEGER NOT NULL,
	valid_before   INTEGER NOT NULL,
	source_address TEXT    NOT NULL,
	extensions     TEXT    NOT NULL,
	issued_at      INTEGER NOT NULL
) STRICT;

CREATE INDEX ssh_certificates_grant ON ssh_certificates (grant_id, issued_at);
