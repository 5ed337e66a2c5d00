package postgres

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"time"

	"airlock"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
)

// DefaultAuditLimit is how many events ListAudit, ReadAuditEntries and
// ListAuditCheckpoints return when the limit is 0.
const DefaultAuditLimit = 1000

// maxAuditLimit bounds one page, so that a caller cannot make the store
// build an unbounded result.
const maxAuditLimit = 100000

// querier is what pgxpool.Pool and pgx.Tx share for reading.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// AppendAudit appends events in one transaction that first takes the audit
// advisory lock, so that appends from every replica on this database are
// serialized: it reads the tree size, computes the records with
// airlock.PrepareAuditAppend (reading earlier stored hashes in the same
// transaction) and inserts them in one statement; each event's Seq is set
// only once the transaction has committed. An invalid event anywhere in the
// batch is EINVALID and nothing is written.
//
// The audit_log table is append-only: this package never updates or deletes
// its rows, and triggers refuse anyone who tries.
func (s *Store) AppendAudit(ctx context.Context, events ...*airlock.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	var first int64
	err := s.write(ctx, func(tx pgx.Tx) error {
		if err := lockAuditAppends(ctx, tx); err != nil {
			return err
		}
		size, err := treeSize(ctx, tx)
		if err != nil {
			return err
		}
		app, err := airlock.PrepareAuditAppend(size, events, hashReader(ctx, tx))
		if err != nil {
			return err
		}
		if err := insertAuditEntries(ctx, tx, app.Entries); err != nil {
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

// insertAuditEntries inserts prepared records in one statement.
func insertAuditEntries(ctx context.Context, tx pgx.Tx, entries []*airlock.AuditEntry) error {
	n := len(entries)
	var (
		seqs             = make([]int64, n)
		leaves, hashes   = make([][]byte, n), make([][]byte, n)
		times            = make([]time.Time, n)
		types, users     = make([][]byte, n), make([][]byte, n)
		sessions, grants = make([][]byte, n), make([][]byte, n)
	)
	for i, e := range entries {
		seqs[i], leaves[i], hashes[i] = e.Seq, e.Leaf, airlock.EncodeAuditHashes(e.Hashes)
		times[i], types[i], users[i], sessions[i], grants[i] = e.Time, []byte(e.Type), []byte(e.UserID),
			[]byte(e.SessionID), []byte(e.GrantID)
	}
	// WITH ORDINALITY … ORDER BY: rows go in in Seq order, as the
	// next-number trigger requires.
	_, err := tx.Exec(ctx, `INSERT INTO audit_log (seq, leaf, hashes, time, type, user_id, session_id, grant_id)
		SELECT seq, leaf, hashes, time, type, user_id, session_id, grant_id
		FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::timestamptz[], $5::bytea[], $6::bytea[], $7::bytea[], $8::bytea[])
			WITH ORDINALITY AS r(seq, leaf, hashes, time, type, user_id, session_id, grant_id, n)
		ORDER BY n`,
		seqs, leaves, hashes, times, types, users, sessions, grants)
	return dbError("append audit events", err)
}

func treeSize(ctx context.Context, q querier) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM audit_log`).Scan(&n)
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
	seqs, err := airlock.AuditHashSeqs(indexes)
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, `SELECT seq, hashes FROM audit_log WHERE seq = ANY ($1)`, seqs)
	if err != nil {
		return nil, dbError("read audit hashes", err)
	}
	stored := make(map[int64][]tlog.Hash, len(seqs))
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
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, dbError("read audit hashes", err)
	}
	return airlock.PickAuditHashes(indexes, stored)
}

// AuditTreeSize returns the largest Seq, 0 when the log is empty.
func (s *Store) AuditTreeSize(ctx context.Context) (int64, error) {
	return treeSize(ctx, s.pool)
}

// ReadAuditHashes returns the stored hashes with the given tlog indexes; an
// index not stored yet is ENOTFOUND.
func (s *Store) ReadAuditHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	return readHashes(ctx, s.pool, indexes)
}

// ReadAuditEntries returns at most limit records with Seq > afterSeq, in
// Seq order, as stored and unchecked.
func (s *Store) ReadAuditEntries(ctx context.Context, afterSeq int64, limit int) ([]*airlock.AuditEntry, error) {
	limit, err := auditLimit(limit)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, leaf, hashes, time, type, user_id, session_id, grant_id
		FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2`, afterSeq, limit)
	return collect(rows, err, "read audit entries", func(row pgx.Row) (*airlock.AuditEntry, error) {
		var (
			e                              airlock.AuditEntry
			hashes, typ, user, sess, grant []byte
		)
		if err := row.Scan(&e.Seq, &e.Leaf, &hashes, tsp(&e.Time), &typ, &user, &sess, &grant); err != nil {
			return nil, err
		}
		e.Type, e.UserID, e.SessionID, e.GrantID = string(typ), string(user), string(sess), string(grant)
		// Unchecked, as the contract says: verify must see malformed
		// hashes as tampering at this record, not fail the whole read.
		if hs, err := airlock.DecodeAuditHashes(hashes); err == nil {
			e.Hashes = hs
		}
		return &e, nil
	})
}

func auditLimit(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, airlock.Errorf(airlock.EINVALID, "postgres: negative audit limit")
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
	args := []any{f.AfterSeq}
	where := []string{`seq > $1`}
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+itoa(len(args))))
	}
	if f.BeforeSeq > 0 {
		add(`seq < ?`, f.BeforeSeq)
	}
	// "<> ''" lets PostgreSQL use the partial indexes.
	if f.UserID != "" {
		add(`user_id = ? AND user_id <> ''::bytea`, []byte(f.UserID))
	}
	if f.SessionID != "" {
		add(`session_id = ? AND session_id <> ''::bytea`, []byte(f.SessionID))
	}
	if f.GrantID != "" {
		add(`grant_id = ? AND grant_id <> ''::bytea`, []byte(f.GrantID))
	}
	if strings.HasSuffix(f.Type, ".") {
		// A byte prefix, not LIKE: a type may contain "_" or "%".
		add(`substr(type, 1, `+itoa(len(f.Type))+`) = ?`, []byte(f.Type))
	} else if f.Type != "" {
		add(`type = ?`, []byte(f.Type))
	}
	if !f.Since.IsZero() {
		add(`time >= ?`, f.Since)
	}
	if !f.Until.IsZero() {
		add(`time < ?`, f.Until)
	}
	order := `seq`
	if f.Newest {
		order = `seq DESC`
	}
	args = append(args, limit)
	rows, err := s.pool.Query(ctx, `SELECT leaf FROM audit_log WHERE `+
		strings.Join(where, ` AND `)+` ORDER BY `+order+` LIMIT $`+itoa(len(args)), args...)
	return collect(rows, err, "list audit events", func(row pgx.Row) (*airlock.AuditEvent, error) {
		var leaf []byte
		if err := row.Scan(&leaf); err != nil {
			return nil, err
		}
		e, err := airlock.ParseAuditLeaf(leaf)
		if err != nil {
			return nil, airlock.Wrap(airlock.EINTERNAL, "postgres: corrupt audit leaf", err)
		}
		return e, nil
	})
}

// AddAuditCheckpoint stores c, checking in the same transaction that its
// size is within the tree. Replicas that sign the same size with the shared
// key produce the same text, so a concurrent identical insert is a no-op
// and only a different text is ECONFLICT.
func (s *Store) AddAuditCheckpoint(ctx context.Context, c *airlock.AuditCheckpoint) error {
	if c == nil || c.Size < 1 || len(c.Text) == 0 {
		return airlock.Errorf(airlock.EINVALID, "postgres: audit checkpoint needs a positive size and a text")
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		size, err := treeSize(ctx, tx)
		if err != nil {
			return err
		}
		if c.Size > size {
			return airlock.Errorf(airlock.EINVALID, "postgres: audit checkpoint of size %d beyond the tree (size %d)", c.Size, size)
		}
		tag, err := tx.Exec(ctx, `INSERT INTO audit_checkpoints (size, text, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (size) DO NOTHING`, c.Size, c.Text, ts(c.CreatedAt))
		if err != nil {
			return dbError("add audit checkpoint", err)
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		var text []byte
		if err := tx.QueryRow(ctx, `SELECT text FROM audit_checkpoints WHERE size = $1`, c.Size).Scan(&text); err != nil {
			return dbError("add audit checkpoint", err)
		}
		if !bytes.Equal(text, c.Text) {
			return airlock.Errorf(airlock.ECONFLICT, "postgres: a different audit checkpoint of size %d exists", c.Size)
		}
		return nil
	})
}

// LatestAuditCheckpoint returns the checkpoint with the largest size, or
// ENOTFOUND.
func (s *Store) LatestAuditCheckpoint(ctx context.Context) (*airlock.AuditCheckpoint, error) {
	c, err := scanCheckpoint(s.pool.QueryRow(ctx, `SELECT size, text, created_at FROM audit_checkpoints ORDER BY size DESC LIMIT 1`))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("audit checkpoint")
	} else if err != nil {
		return nil, dbError("read audit checkpoint", err)
	}
	return c, nil
}

// ListAuditCheckpoints returns at most limit checkpoints with size >
// afterSize, smallest first.
func (s *Store) ListAuditCheckpoints(ctx context.Context, afterSize int64, limit int) ([]*airlock.AuditCheckpoint, error) {
	limit, err := auditLimit(limit)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT size, text, created_at FROM audit_checkpoints
		WHERE size > $1 ORDER BY size LIMIT $2`, afterSize, limit)
	return collect(rows, err, "list audit checkpoints", scanCheckpoint)
}

func scanCheckpoint(row pgx.Row) (*airlock.AuditCheckpoint, error) {
	var c airlock.AuditCheckpoint
	if err := row.Scan(&c.Size, &c.Text, tsp(&c.CreatedAt)); err != nil {
		return nil, err
	}
	return &c, nil
}

// AuditCursor returns the named sink's cursor, 0 if never set.
func (s *Store) AuditCursor(ctx context.Context, name string) (int64, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT seq FROM audit_cursors WHERE name = $1`, name).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return seq, dbError("read audit cursor", err)
}

// SetAuditCursor moves the named sink's cursor forward to seq: one upsert
// that only moves forward (and locks the row either way), then, if it did
// not move, a look at the locked row says whether seq was the same (a
// no-op) or behind (ECONFLICT).
func (s *Store) SetAuditCursor(ctx context.Context, name string, seq int64) error {
	if name == "" || seq < 0 {
		return airlock.Errorf(airlock.EINVALID, "postgres: audit cursor needs a name and a seq ≥ 0")
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		size, err := treeSize(ctx, tx)
		if err != nil {
			return err
		}
		if seq > size {
			return airlock.Errorf(airlock.EINVALID, "postgres: audit cursor %d beyond the tree (size %d)", seq, size)
		}
		tag, err := tx.Exec(ctx, `INSERT INTO audit_cursors (name, seq, updated_at) VALUES ($1, $2, now())
			ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at
			WHERE audit_cursors.seq < excluded.seq`, name, seq)
		if err != nil {
			return dbError("set audit cursor", err)
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		var old int64
		if err := tx.QueryRow(ctx, `SELECT seq FROM audit_cursors WHERE name = $1`, name).Scan(&old); err != nil {
			return dbError("set audit cursor", err)
		}
		if seq < old {
			return airlock.Errorf(airlock.ECONFLICT, "postgres: audit cursor %q is at %d, cannot go back to %d", name, old, seq)
		}
		return nil
	})
}
