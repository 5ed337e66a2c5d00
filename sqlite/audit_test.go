package sqlite

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"airlock"

	"golang.org/x/mod/sumdb/tlog"
)

// TestAuditAppendOnly checks that the database itself refuses to change or
// remove an audit record or checkpoint, whoever asks.
func TestAuditAppendOnly(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	e := &airlock.AuditEvent{Time: time.Now(), Type: "auth.login", Outcome: airlock.OutcomeSuccess, UserID: "u-1"}
	if err := s.AppendAudit(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAuditCheckpoint(ctx, &airlock.AuditCheckpoint{Size: 1, Text: []byte("cp\n"), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`UPDATE audit_log SET leaf = x'00' WHERE seq = 1`,
		`UPDATE audit_log SET user_id = 'u-2'`,
		`UPDATE audit_log SET seq = 7`,
		`DELETE FROM audit_log WHERE seq = 1`,
		`DELETE FROM audit_log`,
		`UPDATE audit_checkpoints SET text = x'00'`,
		`DELETE FROM audit_checkpoints`,
		// INSERT OR REPLACE would delete the old row: refused too.
		`INSERT OR REPLACE INTO audit_log (seq, leaf, hashes, time, type, user_id, session_id, grant_id)
			VALUES (1, x'00', x'', 0, 'x', '', '', '')`,
	} {
		_, err := s.w.ExecContext(ctx, stmt)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want the append-only trigger", stmt, err)
		}
	}
	list, err := s.ListAudit(ctx, airlock.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Seq != 1 || list[0].UserID != "u-1" {
		t.Errorf("audit log changed: %+v", list)
	}
	// Nor can a row skip or reuse a number.
	for _, seq := range []int{1, 3} {
		_, err = s.w.ExecContext(ctx, `INSERT INTO audit_log (seq, leaf, hashes, time, type, user_id, session_id, grant_id)
			VALUES (?, x'00', x'', 0, 'x', '', '', '')`, seq)
		if err == nil {
			t.Errorf("inserting seq %d after seq 1 succeeded", seq)
		}
	}
}

// TestAuditLegacyConversion opens a database whose audit events were
// written by the foundation's schema (audit_events, migrations 0001–0003)
// and checks that opening it with migration 0004 moves every event into the
// tamper-evident log, same Seq and content, with correct tree hashes, and
// drops the old table.
func TestAuditLegacyConversion(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "airlock.db")
	old := fstest.MapFS{}
	for _, name := range []string{"0001_init.sql", "0002_versions_and_session_sweeps.sql", "0003_attestation_trusted.sql"} {
		b, err := fs.ReadFile(migrations, "migrations/"+name)
		if err != nil {
			t.Fatal(err)
		}
		old["migrations/"+name] = &fstest.MapFile{Data: b}
	}
	s0, err := open(ctx, path, old)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1050 // more than one conversion batch
	tx, err := s0.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		details := any(nil)
		if i%2 == 0 {
			details = fmt.Sprintf(`{"n":%d,"big":%d,"s":"<x>"}`, i, int64(1)<<60+int64(i))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_events (seq, time, type, actor, subject, outcome, reason,
			user_id, session_id, device_id, credential_id, decision_id, transaction_id, request_id, grant_id,
			ssh_session_id, ip, details) VALUES (?, ?, 'auth.login', 'a', '', 'success', '', ?, 's-1', '', '', '', '', '', '', '', '', ?)`,
			i, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Microsecond).UnixMicro(),
			fmt.Sprintf("u-%d", i%7), details); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s0.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("open the pre-0004 database: %v", err)
	}
	defer s.Close()
	var tables int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'audit_events'`).Scan(&tables); err != nil || tables != 0 {
		t.Errorf("audit_events still there (%d, %v)", tables, err)
	}
	size, err := s.AuditTreeSize(ctx)
	if err != nil || size != n {
		t.Fatalf("tree size after conversion = %d, %v, want %d", size, err, n)
	}
	var hashes []tlog.Hash
	mem := tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(ix))
		for i, x := range ix {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for after := int64(0); after < n; {
		page, err := s.ReadAuditEntries(ctx, after, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			ev, err := airlock.ParseAuditLeaf(e.Leaf)
			if err != nil {
				t.Fatalf("seq %d: %v", e.Seq, err)
			}
			if ev.Seq != e.Seq || ev.UserID != fmt.Sprintf("u-%d", e.Seq%7) || ev.SessionID != "s-1" || ev.Actor != "a" {
				t.Fatalf("seq %d converted to %+v", e.Seq, ev)
			}
			if e.Seq%2 == 0 {
				want := json.Number(fmt.Sprint(int64(1)<<60 + e.Seq))
				if ev.Details["big"] != want || ev.Details["s"] != "<x>" {
					t.Fatalf("seq %d details %v", e.Seq, ev.Details)
				}
			} else if ev.Details != nil {
				t.Fatalf("seq %d details %v, want none", e.Seq, ev.Details)
			}
			want, err := tlog.StoredHashes(e.Seq-1, e.Leaf, mem)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(want) != fmt.Sprint(e.Hashes) {
				t.Fatalf("seq %d: stored hashes differ from tlog's", e.Seq)
			}
			hashes = append(hashes, want...)
		}
		after = page[len(page)-1].Seq
	}
	// Appending continues the converted tree.
	e := &airlock.AuditEvent{Time: time.Now(), Type: "x.after", Outcome: airlock.OutcomeSuccess}
	if err := s.AppendAudit(ctx, e); err != nil || e.Seq != n+1 {
		t.Fatalf("append after conversion: seq %d, %v", e.Seq, err)
	}
}

// TestAuditTwoHandles checks that appends through two stores open on the
// same file (two processes, or two replicas on a shared disk) still make
// one gap-free history with correct hashes.
func TestAuditTwoHandles(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "airlock.db")
	var stores [2]*Store
	for i := range stores {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				batch := []*airlock.AuditEvent{
					{Time: time.Now(), Type: "load.a", Outcome: airlock.OutcomeSuccess, RequestID: fmt.Sprint(w, i)},
					{Time: time.Now(), Type: "load.b", Outcome: airlock.OutcomeSuccess, RequestID: fmt.Sprint(w, i)},
				}
				if err := stores[w%2].AppendAudit(ctx, batch...); err != nil {
					t.Errorf("AppendAudit: %v", err)
					return
				}
				if batch[1].Seq != batch[0].Seq+1 {
					t.Errorf("batch split: %d, %d", batch[0].Seq, batch[1].Seq)
				}
			}
		})
	}
	wg.Wait()
	entries, err := stores[0].ReadAuditEntries(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 8*20*2 {
		t.Fatalf("%d entries, want %d", len(entries), 8*20*2)
	}
	var hashes []tlog.Hash
	mem := tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(ix))
		for i, x := range ix {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for i, e := range entries {
		if e.Seq != int64(i+1) {
			t.Fatalf("entry %d has seq %d", i, e.Seq)
		}
		want, _ := tlog.StoredHashes(e.Seq-1, e.Leaf, mem)
		for j := range want {
			if j >= len(e.Hashes) || !bytes.Equal(want[j][:], e.Hashes[j][:]) {
				t.Fatalf("seq %d: stored hashes differ from tlog's", e.Seq)
			}
		}
		hashes = append(hashes, want...)
	}
}
