// Package audit is Airlock's tamper-evident audit log. Every part records
// events through a *Log, the one write path; the log is an RFC 9162 Merkle
// tree over the events' canonical JSON (airlock.AuditLeaf), kept by the
// store with its hashes, signed by checkpoints in the C2SP tlog-checkpoint
// format (Checkpointer), checked end to end by Verify, proven per event by
// Prove, exported as JSON lines by Export and streamed to SIEM sinks by
// Streamer.
//
// Record goes through one group-commit writer per process: events recorded
// concurrently are appended in one store transaction, and each caller
// returns only once the transaction holding its event has committed.
package audit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"airlock"
)

// Defaults of the group-commit writer.
const (
	DefaultMaxBatch      = 1000
	DefaultCommitTimeout = 30 * time.Second
)

// Log records audit events durably in a store. It is safe for concurrent
// use. Set the exported fields before the first Record.
type Log struct {
	// MaxBatch caps the events of one transaction (default
	// DefaultMaxBatch).
	MaxBatch int
	// Linger, if positive, is how long the writer waits for more events
	// after the first of a batch arrives. Zero (the default) commits at
	// once: the events that arrive while a commit is in flight form the
	// next batch, which is what makes batches under load.
	Linger time.Duration
	// CommitTimeout bounds one batch's store transaction (default
	// DefaultCommitTimeout).
	CommitTimeout time.Duration

	store airlock.AuditStore
	now   func() time.Time
	log   *slog.Logger

	mu      sync.Mutex
	queue   []*pending
	running bool          // a writer goroutine is draining queue
	idle    chan struct{} // closed when the running writer stops
	closed  bool
	last    int64 // the largest Seq this process has committed
	subs    []chan struct{}
}

// pending is one Record call waiting for its commit.
type pending struct {
	e     *airlock.AuditEvent
	done  chan error // buffered: the writer never blocks on it
	taken bool       // in a batch being committed: the caller must wait
}

// New returns a Log writing to store. now may be nil (time.Now); logger may
// be nil (no mirror to the process log).
func New(store airlock.AuditStore, now func() time.Time, logger *slog.Logger) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{store: store, now: now, log: logger}
}

// Store returns the store the log writes to.
func (l *Log) Store() airlock.AuditStore { return l.store }

// Record stores e and returns only once it is durable. It sets e.Time if
// zero and e.Outcome to success if empty. A failure to record is returned:
// callers must treat an unrecorded security event as a failed operation.
// An event that cannot be encoded (see airlock.AuditLeaf) is EINVALID
// without failing the other events of its batch; a failed commit is
// EUNAVAILABLE for every event of its batch. If ctx ends while the event
// still waits in the queue, it is withdrawn and ctx's error returned; once
// its batch is being committed, Record waits for the outcome. A nil Log or
// one without a store records nothing and returns EUNAVAILABLE.
func (l *Log) Record(ctx context.Context, e airlock.AuditEvent) error {
	if l == nil || l.store == nil {
		// Fail closed, and in the caller: the writer goroutine would
		// panic and take the process down.
		return airlock.Errorf(airlock.EUNAVAILABLE, "audit log has no store")
	}
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	// The leaf keeps microseconds: record exactly what will be read back.
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	if e.Outcome == "" {
		e.Outcome = airlock.OutcomeSuccess
	}
	p := &pending{e: &e, done: make(chan error, 1)}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return airlock.Errorf(airlock.EUNAVAILABLE, "audit log closed")
	}
	l.queue = append(l.queue, p)
	if !l.running {
		l.running = true
		l.idle = make(chan struct{})
		go l.write(l.idle)
	}
	l.mu.Unlock()

	var err error
	select {
	case err = <-p.done:
	case <-ctx.Done():
		l.mu.Lock()
		if !p.taken {
			for i, q := range l.queue {
				if q == p {
					l.queue = append(l.queue[:i], l.queue[i+1:]...)
					break
				}
			}
			l.mu.Unlock()
			return airlock.Wrap(airlock.EUNAVAILABLE, "audit event not recorded", ctx.Err())
		}
		l.mu.Unlock()
		err = <-p.done
	}
	if airlock.ErrorCode(err) == airlock.EINVALID {
		if l.log != nil {
			l.log.Error("audit event refused", "type", e.Type, "err", err)
		}
		return err
	} else if err != nil {
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

// write is the group-commit writer: it commits the queue in batches until
// the queue is empty, then stops (the next Record starts another).
func (l *Log) write(idle chan struct{}) {
	defer close(idle)
	maxBatch := l.MaxBatch
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatch
	}
	timeout := l.CommitTimeout
	if timeout <= 0 {
		timeout = DefaultCommitTimeout
	}
	for {
		if l.Linger > 0 {
			time.Sleep(l.Linger)
		}
		l.mu.Lock()
		if len(l.queue) == 0 {
			l.running = false
			l.mu.Unlock()
			return
		}
		n := min(len(l.queue), maxBatch)
		batch := l.queue[:n:n]
		l.queue = append([]*pending(nil), l.queue[n:]...)
		for _, p := range batch {
			p.taken = true
		}
		l.mu.Unlock()

		l.commit(batch, timeout)
	}
}

// commit appends batch in one transaction and tells each caller the
// outcome. A batch refused as invalid (some event cannot be encoded) is
// retried one event at a time, so that only the invalid events fail.
func (l *Log) commit(batch []*pending, timeout time.Duration) {
	events := make([]*airlock.AuditEvent, len(batch))
	for i, p := range batch {
		events[i] = p.e
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	err := l.store.AppendAudit(ctx, events...)
	cancel()
	if airlock.ErrorCode(err) == airlock.EINVALID && len(batch) > 1 {
		for _, p := range batch {
			l.commit([]*pending{p}, timeout)
		}
		return
	}
	if err == nil {
		l.mu.Lock()
		l.last = max(l.last, events[len(events)-1].Seq)
		for _, ch := range l.subs {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		l.mu.Unlock()
	}
	for _, p := range batch {
		p.done <- err
	}
}

// Subscribe returns a channel that receives a value (without blocking the
// writer; several commits may coalesce into one) after commits.
func (l *Log) Subscribe() <-chan struct{} {
	ch := make(chan struct{}, 1)
	l.mu.Lock()
	l.subs = append(l.subs, ch)
	l.mu.Unlock()
	return ch
}

// Pending returns how many events wait for a batch (not counting those in
// the transaction being committed).
func (l *Log) Pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue)
}

// LastSeq returns the largest Seq this process has committed (0 if none).
// Other processes sharing the store may have committed later ones.
func (l *Log) LastSeq() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Close stops accepting events (Record then fails with EUNAVAILABLE) and
// waits until every event already queued has been committed or has failed,
// or until ctx ends.
func (l *Log) Close(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	idle := l.idle
	running := l.running
	l.mu.Unlock()
	if !running {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// List returns events matching f.
func (l *Log) List(ctx context.Context, f airlock.AuditFilter) ([]*airlock.AuditEvent, error) {
	return l.store.ListAudit(ctx, f)
}
