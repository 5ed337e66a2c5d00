-- The tamper-evident audit log (issue 3). audit_log replaces audit_events:
-- each row keeps the event's leaf (its canonical JSON, the source of truth),
-- the RFC 9162 tree hashes written with it (tlog stored hashes, 32 bytes
-- each, concatenated) and copies of a few fields as index columns for
-- filtering, which `airlock audit verify` checks against the leaf.
--
-- The rows of audit_events, if any, are converted into audit_log in Go when
-- the store opens (the leaf encoding is Go code), after which audit_events is
-- dropped.

CREATE TABLE audit_log (
	seq        INTEGER PRIMARY KEY CHECK (seq > 0),
	leaf       BLOB    NOT NULL,
	hashes     BLOB    NOT NULL,
	time       INTEGER NOT NULL,
	type       TEXT    NOT NULL,
	user_id    TEXT    NOT NULL,
	session_id TEXT    NOT NULL,
	grant_id   TEXT    NOT NULL
) STRICT;

-- Partial indexes: most events carry no session or grant, and queries add
-- "<column> != ''" so that SQLite can use them.
CREATE INDEX audit_log_user ON audit_log (user_id, seq) WHERE user_id != '';
CREATE INDEX audit_log_session ON audit_log (session_id, seq) WHERE session_id != '';
CREATE INDEX audit_log_grant ON audit_log (grant_id, seq) WHERE grant_id != '';
CREATE INDEX audit_log_type ON audit_log (type, seq);
CREATE INDEX audit_log_time ON audit_log (time, seq);

-- Append-only, as audit_events was: no UPDATE, no DELETE, and an INSERT only
-- with the next seq (which also stops INSERT OR REPLACE).
CREATE TRIGGER audit_log_next_seq BEFORE INSERT ON audit_log
WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM audit_log)
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only: seq must be the next number');
END;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- Signed checkpoints (C2SP tlog-checkpoint notes), one per tree size.
CREATE TABLE audit_checkpoints (
	size       INTEGER PRIMARY KEY CHECK (size > 0),
	text       BLOB    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
	SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;

CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
	SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;

-- Delivery cursors of the SIEM sinks: every event up to seq was delivered.
CREATE TABLE audit_cursors (
	name       TEXT    PRIMARY KEY,
	seq        INTEGER NOT NULL CHECK (seq >= 0),
	updated_at INTEGER NOT NULL
) STRICT;
