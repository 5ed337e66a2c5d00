// Package audit is the one write path of Airlock's audit trail. Every part
// records events through a *Log; nothing writes audit rows any other way, so
// that the log can later become tamper-evident in one place.
package audit

import (
	"context"
	"log/slog"
	"time"

	"airlock"
)

// Log records audit events durably in a store.
type Log struct {
	store airlock.AuditStore
	now   func() time.Time
	log   *slog.Logger
}

// New returns a Log writing to store. now may be nil (time.Now); logger may
// be nil (no mirror to the process log).
func New(store airlock.AuditStore, now func() time.Time, logger *slog.Logger) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{store: store, now: now, log: logger}
}

// Record stores e and returns only once it is durable. It sets e.Time if
// zero and e.Outcome to success if empty. A failure to record is returned:
// callers must treat an unrecorded security event as a failed operation.
func (l *Log) Record(ctx context.Context, e airlock.AuditEvent) error {
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	// The stores keep microseconds: record exactly what will be read back.
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	if e.Outcome == "" {
		e.Outcome = airlock.OutcomeSuccess
	}
	if err := l.store.AppendAudit(ctx, &e); err != nil {
		if l.log != nil {
			l.log.Error("audit append failed", "type", e.Type, "err", err)
		}
		return airlock.Wrap(airlock.EUNAVAILABLE, "audit log unavailable", err)
	}
	if l.log != nil {
		l.log.Info("audit", "seq", e.Seq, "type", e.Type, "outcome", e.Outcome, "reason", e.Reason,
			"user", e.UserID, "session", e.SessionID, "device", e.DeviceID)
	}
	return nil
}

// List returns events matching f.
func (l *Log) List(ctx context.Context, f airlock.AuditFilter) ([]*airlock.AuditEvent, error) {
	return l.store.ListAudit(ctx, f)
}
