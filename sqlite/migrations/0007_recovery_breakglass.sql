-- 0007: account recovery cases and their officers' approvals; break-glass
-- events (one use of a sealed break-glass account each).
--
-- Times are unix microseconds (0: the zero time), string lists JSON arrays.

-- secret_hash is SHA-256 of the claim secret: unique, never empty.
CREATE TABLE recovery_cases (
	id              TEXT    PRIMARY KEY,
	subject_id      TEXT    NOT NULL,
	opened_by       TEXT    NOT NULL,
	via             TEXT    NOT NULL,
	reason          TEXT    NOT NULL,
	tier            INTEGER NOT NULL,
	required        INTEGER NOT NULL,
	status          TEXT    NOT NULL,
	device_id       TEXT    NOT NULL,
	secret_hash     BLOB    NOT NULL UNIQUE,
	cool_down_until INTEGER NOT NULL,
	enrol_token_id  TEXT    NOT NULL,
	resolved_at     INTEGER NOT NULL,
	resolved_by     TEXT    NOT NULL,
	note            TEXT    NOT NULL,
	created_at      INTEGER NOT NULL,
	expires_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	version         INTEGER NOT NULL
) STRICT;

-- Lists are newest first: (created_at, id) read backwards needs no sort.
CREATE INDEX recovery_cases_created ON recovery_cases (created_at, id);
CREATE INDEX recovery_cases_subject ON recovery_cases (subject_id, created_at, id);
CREATE INDEX recovery_cases_status ON recovery_cases (status, created_at, id);
-- Completion finds the case by the enrolment token it released.
CREATE INDEX recovery_cases_enrol_token ON recovery_cases (enrol_token_id, created_at, id);
-- The expiry sweep: cases not in a final status, by expiry. The WHERE is
-- repeated verbatim by the sweep's query.
CREATE INDEX recovery_cases_expiry ON recovery_cases (expires_at, id)
	WHERE status IN ('pending', 'cooling_down', 'released');

-- One approval per officer and case.
CREATE TABLE recovery_approvals (
	case_id       TEXT    NOT NULL,
	approver_id   TEXT    NOT NULL,
	session_id    TEXT    NOT NULL,
	device_id     TEXT    NOT NULL,
	credential_id BLOB,
	verification  TEXT    NOT NULL,
	challenge     TEXT    NOT NULL,
	at            INTEGER NOT NULL,
	PRIMARY KEY (case_id, approver_id)
) STRICT;

CREATE INDEX recovery_approvals_case ON recovery_approvals (case_id, at);

-- token_hash is SHA-256 of the break-glass session's secret: unique, never
-- empty. reviewed_at = 0: not yet reviewed.
CREATE TABLE breakglass_events (
	id              TEXT    PRIMARY KEY,
	account_id      TEXT    NOT NULL,
	credential_id   BLOB,
	justification   TEXT    NOT NULL,
	scopes          TEXT    NOT NULL,
	ip              TEXT    NOT NULL,
	user_agent      TEXT    NOT NULL,
	token_hash      BLOB    NOT NULL UNIQUE,
	started_at      INTEGER NOT NULL,
	ends_at         INTEGER NOT NULL,
	ended_at        INTEGER NOT NULL,
	end_reason      TEXT    NOT NULL,
	alert_ids       TEXT    NOT NULL,
	alert_delivered INTEGER NOT NULL,
	offline         INTEGER NOT NULL,
	reviewed_at     INTEGER NOT NULL,
	reviewed_by     TEXT    NOT NULL,
	review_notes    TEXT    NOT NULL
) STRICT;

-- The lock: at most one unreviewed event per account, whichever process
-- writes it.
CREATE UNIQUE INDEX breakglass_events_unreviewed ON breakglass_events (account_id) WHERE reviewed_at = 0;
-- Lists are newest first.
CREATE INDEX breakglass_events_started ON breakglass_events (started_at, id);
CREATE INDEX breakglass_events_account ON breakglass_events (account_id, started_at, id);
CREATE INDEX breakglass_events_unreviewed_started ON breakglass_events (started_at, id) WHERE reviewed_at = 0;
