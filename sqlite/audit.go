package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"airlock"

	"golang.org/x/mod/sumdb/tlog"
)

// DefaultAuditLimit is how many events ListAudit, ReadAuditEntries and
// ListAuditCheckpoints return when the limit is 0.
const DefaultAuditLimit = 1000

// maxAuditLimit bounds one page, so that a caller cannot make the store
// build an unbounded result.
const maxAuditLimit = 100000

// AppendAudit appends events in one write transaction: the single write
// connection and BEGIN IMMEDIATE serialize it with every other writer, in
// this process and in others sharing the file. It reads the tree size,
// computes the records with airlock.PrepareAuditAppend and inserts them;
// each event's Seq is set only once the transaction has committed.
//
// The audit_log table is append-only: this package never updates or deletes
// its rows, and triggers refuse anyone who tries.
func (s *Store) AppendAudit(ctx context.Context, events ...*airlock.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	if err := s.auditInserts.prepare(ctx, s.w); err != nil {
		return err
	}
	var first int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		var size int64
		if err := tx.StmtContext(ctx, s.auditInserts.get(0)).QueryRowContext(ctx).Scan(&size); err != nil {
			return dbError("read audit tree size", err)
		}
		app, err := airlock.PrepareAuditAppend(size, events, hashReader(ctx, tx))
		if err != nil {
			return err
		}
		if err := s.insertAuditEntries(ctx, tx, app.Entries); err != nil {
			return err
		}
		first = size + 1
		return nil
	})
	if err != nil {
		return err
	}
	for i, e := range events {
		e.Seq = first + int64(i)
	}
	return nil
}

// auditInsertRows is the most records one INSERT statement carries: fewer
// statements (each with its own statement journal, as the append-only
// triggers need) make a batch much cheaper than one INSERT per row.
const auditInsertRows = 64

// auditStatements caches the multi-row audit INSERT statements, one for
// each power of two up to auditInsertRows, and the tree-size query,
// prepared on the write connection once and reused in every transaction.
type auditStatements struct {
	mu    sync.Mutex
	stmts map[int]*sql.Stmt
}

// prepare prepares the statements, once. It must run outside any
// transaction: the write pool has one connection, which a transaction
// holds.
func (a *auditStatements) prepare(ctx context.Context, db *sql.DB) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stmts != nil {
		return nil
	}
	stmts := map[int]*sql.Stmt{}
	for n := 1; n <= auditInsertRows; n *= 2 {
		st, err := db.PrepareContext(ctx, `INSERT INTO audit_log (seq, leaf, hashes, time, type, user_id, session_id, grant_id) VALUES `+
			strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?, ?, ?, ?), `, n), `, `))
		if err != nil {
			for _, st := range stmts {
				st.Close()
			}
			return dbError("prepare audit insert", err)
		}
		stmts[n] = st
	}
	st, err := db.PrepareContext(ctx, treeSizeQuery)
	if err != nil {
		for _, st := range stmts {
			st.Close()
		}
		return dbError("prepare audit tree size", err)
	}
	stmts[0] = st
	a.stmts = stmts
	return nil
}

// get returns the prepared statement inserting n records (a power of two),
// or for n = 0 the one reading the tree size.
func (a *auditStatements) get(n int) *sql.Stmt {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stmts[n]
}

// close closes the cached statements.
func (a *auditStatements) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, st := range a.stmts {
		st.Close()
	}
	a.stmts = nil
}

// insertAuditEntries inserts prepared records in chunks of auditInsertRows,
// then of decreasing powers of two.
func (s *Store) insertAuditEntries(ctx context.Context, tx *sql.Tx, entries []*airlock.AuditEntry) error {
	args := make([]any, 0, auditInsertRows*8)
	for len(entries) > 0 {
		n := auditInsertRows
		for n > len(entries) {
			n /= 2
		}
		chunk := entries[:n]
		entries = entries[n:]
		args = args[:0]
		for _, e := range chunk {
			args = append(args, e.Seq, e.Leaf, airlock.EncodeAuditHashes(e.Hashes), micros(e.Time),
				e.Type, e.UserID, e.SessionID, e.GrantID)
		}
		st := s.auditInserts.get(n)
		if st == nil {
			return airlock.Errorf(airlock.EINTERNAL, "sqlite: audit insert statements not prepared")
		}
		if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...); err != nil {
			return dbError("append audit event", err)
		}
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const treeSizeQuery = `SELECT coalesce(max(seq), 0) FROM audit_log`

func treeSize(ctx context.Context, q querier) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, treeSizeQuery).Scan(&n)
	return n, dbError("read audit tree size", err)
}

// hashReader reads stored hashes through q.
func hashReader(ctx context.Context, q querier) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		return readHashes(ctx, q, indexes)
	})
}

// readHashes returns the stored hashes with the given tlog indexes: each
// lives in the hashes column of the record that wrote it
// (airlock.AuditHashLocation).
func readHashes(ctx context.Context, q querier, indexes []int64) ([]tlog.Hash, error) {
	if len(indexes) == 0 {
		return nil, nil
	}
	locs, err := airlock.AuditHashSeqs(indexes)
	if err != nil {
		return nil, err
	}
	seqs := make([]any, len(locs))
	for i, seq := range locs {
		seqs[i] = seq
	}
	stored := make(map[int64][]tlog.Hash, len(seqs))
	// SQLite allows 32766 parameters; tlog asks for O(log n) at a time, but
	// chunk anyway.
	for len(seqs) > 0 {
		chunk := seqs[:min(len(seqs), 500)]
		seqs = seqs[len(chunk):]
		rows, err := q.QueryContext(ctx, `SELECT seq, hashes FROM audit_log WHERE seq IN (?`+
			strings.Repeat(`, ?`, len(chunk)-1)+`)`, chunk...)
		if err != nil {
			return nil, dbError("read audit hashes", err)
		}
		for rows.Next() {
			var (
				seq int64
				b   []byte
			)
			if err := rows.Scan(&seq, &b); err != nil {
				rows.Close()
				return nil, dbError("read audit hashes", err)
			}
			hs, err := airlock.DecodeAuditHashes(b)
			if err != nil {
				rows.Close()
				return nil, err
			}
			stored[seq] = hs
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, dbError("read audit hashes", err)
		}
	}
	return airlock.PickAuditHashes(indexes, stored)
}

// AuditTreeSize returns the largest Seq, 0 when the log is empty.
func (s *Store) AuditTreeSize(ctx context.Context) (int64, error) {
	return treeSize(ctx, s.r)
}

// ReadAuditHashes returns the stored hashes with the given tlog indexes.
func (s *Store) ReadAuditHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	return readHashes(ctx, s.r, indexes)
}

// ReadAuditEntries returns at most limit records with Seq > afterSeq, in
// Seq order, as stored.
func (s *Store) ReadAuditEntries(ctx context.Context, afterSeq int64, limit int) ([]*airlock.AuditEntry, error) {
	limit, err := auditLimit(limit)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT seq, leaf, hashes, time, type, user_id, session_id, grant_id
		FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?`, afterSeq, limit)
	if err != nil {
		return nil, dbError("read audit entries", err)
	}
	defer rows.Close()
	out := []*airlock.AuditEntry{}
	for rows.Next() {
		var (
			e      airlock.AuditEntry
			hashes []byte
			t      int64
		)
		if err := rows.Scan(&e.Seq, &e.Leaf, &hashes, &t, &e.Type, &e.UserID, &e.SessionID, &e.GrantID); err != nil {
			return nil, dbError("read audit entries", err)
		}
		// As stored, unchecked: a malformed hashes value (not whole
		// hashes) reads as none, for verify to report at this record.
		if e.Hashes, err = airlock.DecodeAuditHashes(hashes); err != nil {
			e.Hashes = nil
		}
		e.Time = fromMicros(t)
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("read audit entries", err)
	}
	return out, nil
}

func auditLimit(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, airlock.Errorf(airlock.EINVALID, "sqlite: negative audit limit")
	case limit == 0:
		return DefaultAuditLimit, nil
	}
	return min(limit, maxAuditLimit), nil
}

// ListAudit returns the events matching f in ascending Seq order, at most
// f.Limit of them (DefaultAuditLimit when 0; a negative Limit is EINVALID):
// the oldest matching ones, or with f.Newest the newest in descending Seq
// order. f.Type matches exactly, or, when it ends in ".", as a prefix;
// f.AfterSeq and a positive f.BeforeSeq bound Seq exclusively; f.Since is
// inclusive and f.Until exclusive. Events are parsed from their leaves; a
// leaf that does not parse is EINTERNAL (verify says more).
func (s *Store) ListAudit(ctx context.Context, f airlock.AuditFilter) ([]*airlock.AuditEvent, error) {
	limit, err := auditLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	where, args := []string{`seq > ?`}, []any{f.AfterSeq}
	if f.BeforeSeq > 0 {
		where, args = append(where, `seq < ?`), append(args, f.BeforeSeq)
	}
	if f.UserID != "" {
		where, args = append(where, `user_id = ? AND user_id != ''`), append(args, f.UserID)
	}
	if f.SessionID != "" {
		where, args = append(where, `session_id = ? AND session_id != ''`), append(args, f.SessionID)
	}
	if f.GrantID != "" {
		where, args = append(where, `grant_id = ? AND grant_id != ''`), append(args, f.GrantID)
	}
	if strings.HasSuffix(f.Type, ".") {
		// substr, not LIKE: a type may contain "_" or "%".
		where, args = append(where, `substr(type, 1, ?) = ?`), append(args, len(f.Type), f.Type)
	} else if f.Type != "" {
		where, args = append(where, `type = ?`), append(args, f.Type)
	}
	if !f.Since.IsZero() {
		where, args = append(where, `time >= ?`), append(args, f.Since.UnixMicro())
	}
	if !f.Until.IsZero() {
		where, args = append(where, `time < ?`), append(args, f.Until.UnixMicro())
	}
	order := `seq`
	if f.Newest {
		order = `seq DESC`
	}
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, `SELECT leaf FROM audit_log WHERE `+
		strings.Join(where, ` AND `)+` ORDER BY `+order+` LIMIT ?`, args...)
	if err != nil {
		return nil, dbError("list audit events", err)
	}
	defer rows.Close()
	events := []*airlock.AuditEvent{}
	for rows.Next() {
		var leaf []byte
		if err := rows.Scan(&leaf); err != nil {
			return nil, dbError("list audit events", err)
		}
		e, err := airlock.ParseAuditLeaf(leaf)
		if err != nil {
			return nil, airlock.Wrap(airlock.EINTERNAL, "sqlite: corrupt audit leaf", err)
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list audit events", err)
	}
	return events, nil
}

// AddAuditCheckpoint stores c, checking in the same transaction that its
// size is within the tree.
func (s *Store) AddAuditCheckpoint(ctx context.Context, c *airlock.AuditCheckpoint) error {
	if c == nil || c.Size < 1 || len(c.Text) == 0 {
		return airlock.Errorf(airlock.EINVALID, "sqlite: audit checkpoint needs a positive size and a text")
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		size, err := treeSize(ctx, tx)
		if err != nil {
			return err
		}
		if c.Size > size {
			return airlock.Errorf(airlock.EINVALID, "sqlite: audit checkpoint of size %d beyond the tree (size %d)", c.Size, size)
		}
		var text []byte
		err = tx.QueryRowContext(ctx, `SELECT text FROM audit_checkpoints WHERE size = ?`, c.Size).Scan(&text)
		switch {
		case err == nil && bytes.Equal(text, c.Text):
			return nil
		case err == nil:
			return airlock.Errorf(airlock.ECONFLICT, "sqlite: a different audit checkpoint of size %d exists", c.Size)
		case err != sql.ErrNoRows:
			return dbError("add audit checkpoint", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO audit_checkpoints (size, text, created_at) VALUES (?, ?, ?)`,
			c.Size, c.Text, micros(c.CreatedAt))
		return dbError("add audit checkpoint", err)
	})
}

// LatestAuditCheckpoint returns the checkpoint with the largest size.
func (s *Store) LatestAuditCheckpoint(ctx context.Context) (*airlock.AuditCheckpoint, error) {
	var (
		c airlock.AuditCheckpoint
		t int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT size, text, created_at FROM audit_checkpoints ORDER BY size DESC LIMIT 1`).
		Scan(&c.Size, &c.Text, &t)
	if err == sql.ErrNoRows {
		return nil, notFound("audit checkpoint")
	} else if err != nil {
		return nil, dbError("read audit checkpoint", err)
	}
	c.CreatedAt = fromMicros(t)
	return &c, nil
}

// ListAuditCheckpoints returns at most limit checkpoints with size >
// afterSize, smallest first.
func (s *Store) ListAuditCheckpoints(ctx context.Context, afterSize int64, limit int) ([]*airlock.AuditCheckpoint, error) {
	limit, err := auditLimit(limit)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT size, text, created_at FROM audit_checkpoints
		WHERE size > ? ORDER BY size LIMIT ?`, afterSize, limit)
	if err != nil {
		return nil, dbError("list audit checkpoints", err)
	}
	defer rows.Close()
	out := []*airlock.AuditCheckpoint{}
	for rows.Next() {
		var (
			c airlock.AuditCheckpoint
			t int64
		)
		if err := rows.Scan(&c.Size, &c.Text, &t); err != nil {
			return nil, dbError("list audit checkpoints", err)
		}
		c.CreatedAt = fromMicros(t)
		out = append(out, &c)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list audit checkpoints", err)
	}
	return out, nil
}

// AuditCursor returns the named sink's cursor, 0 if never set.
func (s *Store) AuditCursor(ctx context.Context, name string) (int64, error) {
	var seq int64
	err := s.r.QueryRowContext(ctx, `SELECT seq FROM audit_cursors WHERE name = ?`, name).Scan(&seq)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return seq, dbError("read audit cursor", err)
}

// SetAuditCursor moves the named sink's cursor forward to seq.
func (s *Store) SetAuditCursor(ctx context.Context, name string, seq int64) error {
	if name == "" || seq < 0 {
		return airlock.Errorf(airlock.EINVALID, "sqlite: audit cursor needs a name and a seq ≥ 0")
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		size, err := treeSize(ctx, tx)
		if err != nil {
			return err
		}
		if seq > size {
			return airlock.Errorf(airlock.EINVALID, "sqlite: audit cursor %d beyond the tree (size %d)", seq, size)
		}
		var old int64
		err = tx.QueryRowContext(ctx, `SELECT seq FROM audit_cursors WHERE name = ?`, name).Scan(&old)
		switch {
		case err == sql.ErrNoRows:
		case err != nil:
			return dbError("set audit cursor", err)
		case seq < old:
			return airlock.Errorf(airlock.ECONFLICT, "sqlite: audit cursor %q is at %d, cannot go back to %d", name, old, seq)
		case seq == old:
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO audit_cursors (name, seq, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at`,
			name, seq, time.Now().UnixMicro())
		return dbError("set audit cursor", err)
	})
}

// convertLegacyAudit moves the events of the foundation's audit_events
// table, if it still exists, into audit_log (same Seq, now with leaves and
// tree hashes) and drops it, all in one transaction. Run after migrating,
// before the store is used.
func convertLegacyAudit(ctx context.Context, db *sql.DB) error {
	// Only once migration 0004 has made audit_log, and only while
	// audit_events is still there. (Checked again in the transaction, in
	// case another process converted meanwhile.)
	present := func(q querier) (bool, error) {
		var n int
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table'
			AND name IN ('audit_events', 'audit_log')`).Scan(&n); err != nil {
			return false, dbError("look for legacy audit events", err)
		}
		return n == 2, nil
	}
	if ok, err := present(db); err != nil || !ok {
		return err
	}
	s := &Store{w: db}
	defer s.auditInserts.close()
	if err := s.auditInserts.prepare(ctx, db); err != nil {
		return err
	}
	return inTx(ctx, db, func(tx *sql.Tx) error {
		if ok, err := present(tx); err != nil || !ok {
			return err
		}
		size, err := treeSize(ctx, tx)
		if err != nil {
			return err
		}
		for {
			batch, err := readLegacyAudit(ctx, tx, size, 1000)
			if err != nil {
				return err
			}
			if len(batch) == 0 {
				break
			}
			if batch[0].Seq != size+1 {
				return airlock.Errorf(airlock.EINTERNAL, "sqlite: legacy audit events skip from %d to %d", size, batch[0].Seq)
			}
			app, err := airlock.PrepareAuditAppend(size, batch, hashReader(ctx, tx))
			if err != nil {
				return airlock.Wrap(airlock.EINTERNAL, "sqlite: convert legacy audit events", err)
			}
			if err := s.insertAuditEntries(ctx, tx, app.Entries); err != nil {
				return err
			}
			size += int64(len(batch))
		}
		_, err = tx.ExecContext(ctx, `DROP TABLE audit_events`)
		return dbError("drop legacy audit events", err)
	})
}

// readLegacyAudit reads up to limit rows of audit_events after seq.
func readLegacyAudit(ctx context.Context, tx *sql.Tx, after int64, limit int) ([]*airlock.AuditEvent, error) {
	rows, err := tx.QueryContext(ctx, `SELECT seq, time, type, actor, subject, outcome, reason, user_id, session_id,
		device_id, credential_id, decision_id, transaction_id, request_id, grant_id, ssh_session_id, ip, details
		FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, dbError("read legacy audit events", err)
	}
	defer rows.Close()
	var out []*airlock.AuditEvent
	for rows.Next() {
		var (
			e       airlock.AuditEvent
			t       int64
			details sql.NullString
		)
		if err := rows.Scan(&e.Seq, &t, &e.Type, &e.Actor, &e.Subject, &e.Outcome, &e.Reason, &e.UserID,
			&e.SessionID, &e.DeviceID, &e.CredentialID, &e.DecisionID, &e.TransactionID, &e.RequestID,
			&e.GrantID, &e.SSHSessionID, &e.IP, &details); err != nil {
			return nil, dbError("read legacy audit events", err)
		}
		e.Time = fromMicros(t)
		if details.Valid && details.String != "" {
			dec := json.NewDecoder(strings.NewReader(details.String))
			dec.UseNumber()
			if err := dec.Decode(&e.Details); err != nil {
				return nil, airlock.Wrap(airlock.EINTERNAL, "sqlite: corrupt legacy audit details", err)
			}
		}
		out = append(out, &e)
	}
	return out, dbError("read legacy audit events", rows.Err())
}
