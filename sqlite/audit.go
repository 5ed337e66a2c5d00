package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"

	"airlock"
)

// DefaultAuditLimit is how many events ListAudit returns when the filter's
// Limit is 0.
const DefaultAuditLimit = 1000

const auditColumns = `seq, time, type, actor, subject, outcome, reason, user_id, session_id, device_id,
	credential_id, decision_id, transaction_id, request_id, grant_id, ssh_session_id, ip, details`

// AppendAudit assigns e.Seq, the next number after the largest stored (1 for
// the first event), and stores e durably. The number is taken inside the
// write transaction, so appends are gap-free even when concurrent; e.Seq is
// set only once the event is committed. Details is stored as JSON (nil and
// empty are both stored as NULL); details that cannot be marshalled are
// EINVALID.
//
// The audit table is append-only: this package never updates or deletes
// its rows, and triggers refuse anyone who tries.
func (s *Store) AppendAudit(ctx context.Context, e *airlock.AuditEvent) error {
	var details any
	if len(e.Details) > 0 {
		b, err := json.Marshal(e.Details)
		if err != nil {
			return airlock.Wrap(airlock.EINVALID, "sqlite: audit details are not JSON", err)
		}
		details = string(b)
	}
	var seq int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) + 1 FROM audit_events`).Scan(&seq); err != nil {
			return dbError("append audit event", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_events (`+auditColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			seq, micros(e.Time), e.Type, e.Actor, e.Subject, e.Outcome, e.Reason, e.UserID, e.SessionID,
			e.DeviceID, e.CredentialID, e.DecisionID, e.TransactionID, e.RequestID, e.GrantID, e.SSHSessionID,
			e.IP, details)
		return dbError("append audit event", err)
	})
	if err != nil {
		return err
	}
	e.Seq = seq
	return nil
}

// ListAudit returns the events matching f in ascending Seq order, at most
// f.Limit of them (DefaultAuditLimit when 0; a negative Limit is EINVALID):
// the oldest matching ones, or with f.Newest the newest in descending Seq
// order. f.Type matches exactly, or, when it ends in ".", as a prefix;
// f.AfterSeq and a positive f.BeforeSeq bound Seq exclusively.
func (s *Store) ListAudit(ctx context.Context, f airlock.AuditFilter) ([]*airlock.AuditEvent, error) {
	limit := f.Limit
	if limit < 0 {
		return nil, airlock.Errorf(airlock.EINVALID, "sqlite: negative audit limit")
	} else if limit == 0 {
		limit = DefaultAuditLimit
	}
	where, args := []string{`seq > ?`}, []any{f.AfterSeq}
	if f.BeforeSeq > 0 {
		where, args = append(where, `seq < ?`), append(args, f.BeforeSeq)
	}
	if f.UserID != "" {
		where, args = append(where, `user_id = ?`), append(args, f.UserID)
	}
	if f.SessionID != "" {
		where, args = append(where, `session_id = ?`), append(args, f.SessionID)
	}
	if strings.HasSuffix(f.Type, ".") {
		// substr, not LIKE: a type may contain "_" or "%".
		where, args = append(where, `substr(type, 1, ?) = ?`), append(args, len(f.Type), f.Type)
	} else if f.Type != "" {
		where, args = append(where, `type = ?`), append(args, f.Type)
	}
	order := `seq`
	if f.Newest {
		order = `seq DESC`
	}
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE `+
		strings.Join(where, ` AND `)+` ORDER BY `+order+` LIMIT ?`, args...)
	if err != nil {
		return nil, dbError("list audit events", err)
	}
	defer rows.Close()
	events := []*airlock.AuditEvent{}
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, dbError("list audit events", err)
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list audit events", err)
	}
	return events, nil
}

func scanAudit(row scanner) (*airlock.AuditEvent, error) {
	var (
		e       airlock.AuditEvent
		t       int64
		details sql.NullString
	)
	if err := row.Scan(&e.Seq, &t, &e.Type, &e.Actor, &e.Subject, &e.Outcome, &e.Reason, &e.UserID,
		&e.SessionID, &e.DeviceID, &e.CredentialID, &e.DecisionID, &e.TransactionID, &e.RequestID,
		&e.GrantID, &e.SSHSessionID, &e.IP, &details); err != nil {
		return nil, err
	}
	e.Time = fromMicros(t)
	if details.Valid && details.String != "" {
		if err := json.Unmarshal([]byte(details.String), &e.Details); err != nil {
			return nil, airlock.Wrap(airlock.EINTERNAL, "sqlite: corrupt audit details", err)
		}
	}
	return &e, nil
}
