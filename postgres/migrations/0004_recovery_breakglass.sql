-- 0004: account recovery cases and their officers' approvals; break-glass
-- events (one use of a sealed break-glass account each). Same data as the
-- SQLite store's migration 0007.
--
-- A zero time is NULL. Lists are newest first: an index on (created_at
-- NULLS FIRST, id) read backwards gives "created_at DESC NULLS LAST, id
-- DESC" without sorting, a zero (NULL) time counting as the oldest, as in
-- SQLite.

-- secret_hash is SHA-256 of the claim secret: unique, never empty.
CREATE TABLE recovery_cases (
	id              text COLLATE "C" PRIMARY KEY,
	subject_id      text    NOT NULL,
	opened_by       text    NOT NULL,
	via             text    NOT NULL,
	reason          text    NOT NULL,
	tier            integer NOT NULL,
	required        integer NOT NULL,
	status          text    NOT NULL,
	device_id       text    NOT NULL,
	secret_hash     bytea   NOT NULL,
	cool_down_until timestamptz,
	enrol_token_id  text    NOT NULL,
	resolved_at     timestamptz,
	resolved_by     text    NOT NULL,
	note            text    NOT NULL,
	created_at      timestamptz,
	expires_at      timestamptz,
	updated_at      timestamptz,
	version         bigint  NOT NULL,
	CONSTRAINT recovery_cases_secret_hash_key UNIQUE (secret_hash)
);

CREATE INDEX recovery_cases_created ON recovery_cases (created_at NULLS FIRST, id);
CREATE INDEX recovery_cases_subject ON recovery_cases (subject_id, created_at NULLS FIRST, id);
CREATE INDEX recovery_cases_status ON recovery_cases (status, created_at NULLS FIRST, id);
-- Completion finds the case by the enrolment token it released.
CREATE INDEX recovery_cases_enrol_token ON recovery_cases (enrol_token_id, created_at NULLS FIRST, id);
-- The expiry sweep, on exactly its expression: cases not in a final status
-- by expiry, a zero (NULL) expiry counting as long past.
CREATE INDEX recovery_cases_expiry ON recovery_cases (coalesce(expires_at, '-infinity'::timestamptz), id)
	WHERE status IN ('pending', 'cooling_down', 'released');

-- One approval per officer and case; ord keeps the order they were added
-- for approvals made at the same time.
CREATE TABLE recovery_approvals (
	ord           bigint  GENERATED ALWAYS AS IDENTITY,
	case_id       text    NOT NULL,
	approver_id   text    NOT NULL,
	session_id    text    NOT NULL,
	device_id     text    NOT NULL,
	credential_id bytea,
	verification  text    NOT NULL,
	challenge     text    NOT NULL,
	at            timestamptz,
	PRIMARY KEY (case_id, approver_id)
);

CREATE INDEX recovery_approvals_case ON recovery_approvals (case_id, at NULLS FIRST, ord);

-- token_hash is SHA-256 of the break-glass session's secret: unique, never
-- empty. reviewed_at NULL: not yet reviewed.
CREATE TABLE breakglass_events (
	id              text COLLATE "C" PRIMARY KEY,
	account_id      text    NOT NULL,
	credential_id   bytea,
	justification   text    NOT NULL,
	scopes          text[]  NOT NULL,
	ip              text    NOT NULL,
	user_agent      text    NOT NULL,
	token_hash      bytea   NOT NULL,
	started_at      timestamptz,
	ends_at         timestamptz,
	ended_at        timestamptz,
	end_reason      text    NOT NULL,
	alert_ids       text[]  NOT NULL,
	alert_delivered boolean NOT NULL,
	offline         boolean NOT NULL,
	reviewed_at     timestamptz,
	reviewed_by     text    NOT NULL,
	review_notes    text    NOT NULL,
	CONSTRAINT breakglass_events_token_hash_key UNIQUE (token_hash)
);

-- The lock: at most one unreviewed event per account, whichever replica
-- writes it.
CREATE UNIQUE INDEX breakglass_events_unreviewed ON breakglass_events (account_id) WHERE reviewed_at IS NULL;
-- Lists are newest first.
CREATE INDEX breakglass_events_started ON breakglass_events (started_at NULLS FIRST, id);
CREATE INDEX breakglass_events_account ON breakglass_events (account_id, started_at NULLS FIRST, id);
CREATE INDEX breakglass_events_unreviewed_started ON breakglass_events (started_at NULLS FIRST, id)
	WHERE reviewed_at IS NULL;
