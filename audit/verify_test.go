package audit_test

import (
	"bytes"
	"context"
	"database/sql"
	"strings"
	"testing"

	"airlock"
	"airlock/audit"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// signedLog builds a log of 40 events with a checkpoint every 10 and
// returns the store, its file and the key.
func signedLog(t *testing.T) (*audit.Checkpointer, string) {
	t.Helper()
	s, path := openStore(t)
	cp := &audit.Checkpointer{Store: s, Key: newKey(t, "airlock/test"), Origin: "airlock/test"}
	for i := 0; i < 40; i += 10 {
		appendEvents(t, s, i+1, 10)
		if _, err := cp.Checkpoint(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return cp, path
}

func verify(t *testing.T, cp *audit.Checkpointer) *audit.Report {
	t.Helper()
	rep, err := audit.Verify(context.Background(), cp.Store, audit.VerifyOptions{
		Verifiers: note.VerifierList(cp.Key.Verifier), Origin: "airlock/test", PageSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// leafOf returns the stored leaf of seq.
func leafOf(t *testing.T, db *sql.DB, seq int64) []byte {
	t.Helper()
	var leaf []byte
	if err := db.QueryRow(`SELECT leaf FROM audit_log WHERE seq = ?`, seq).Scan(&leaf); err != nil {
		t.Fatal(err)
	}
	return leaf
}

// rehash rewrites every stored hash (and index column) from the leaves, as
// an attacker who knows the format would after editing leaves.
func rehash(t *testing.T, db *sql.DB) {
	t.Helper()
	rows, err := db.Query(`SELECT seq, leaf FROM audit_log ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		seq  int64
		leaf []byte
	}
	var recs []rec
	for rows.Next() {
		var r rec
		if err := rows.Scan(&r.seq, &r.leaf); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	rows.Close()
	var all memHashes
	for i, r := range recs {
		hs, err := tlog.StoredHashes(int64(i), r.leaf, all)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, hs...)
		ev, err := airlock.ParseAuditLeaf(r.leaf)
		if err != nil {
			t.Fatal(err)
		}
		exec(t, db, `UPDATE audit_log SET hashes = ?, user_id = ?, type = ?, time = ?, session_id = ?, grant_id = ? WHERE seq = ?`,
			airlock.EncodeAuditHashes(hs), ev.UserID, ev.Type, ev.Time.UnixMicro(), ev.SessionID, ev.GrantID, r.seq)
	}
}

// reEvent returns the leaf of seq with its event changed by edit.
func reEvent(t *testing.T, leaf []byte, edit func(e *airlock.AuditEvent)) []byte {
	t.Helper()
	ev, err := airlock.ParseAuditLeaf(leaf)
	if err != nil {
		t.Fatal(err)
	}
	edit(ev)
	out, err := airlock.AuditLeaf(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestVerifyTampering changes the stored log in every way the issue names —
// one field, a delete, an insert, a swap, a truncated tail, a checkpoint
// re-signed with another key — and checks that Verify detects each and
// names the first bad sequence number. "strong" cases also rewrite the
// stored hashes to match, so only the signed checkpoints can tell; the
// first bad number is then the first event after the last checkpoint that
// still verifies (checkpoints are at 10, 20, 30 and 40).
func TestVerifyTampering(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name      string
		tamper    func(t *testing.T, db *sql.DB, cp *audit.Checkpointer)
		firstBad  int64
		wantInMsg string
		// signer: after the tampering (and three more events), does the
		// checkpoint signer refuse ("refuse"), sign ("sign": the stored
		// tree hashes it checks are intact), or either ("")?
		signer string
	}{
		{"fail-one-field-changed", func(t *testing.T, db *sql.DB, _ *audit.Checkpointer) {
			leaf := bytes.Replace(leafOf(t, db, 17), []byte(`"u-17"`), []byte(`"u-99"`), 1)
			exec(t, db, `UPDATE audit_log SET leaf = ? WHERE seq = 17`, leaf)
		}, 17, "index columns", "sign"},
		{"fail-one-field-and-its-index-column", func(t *testing.T, db *sql.DB, _ *audit.Checkpointer) {
			leaf := reEvent(t, leafOf(t, db, 17), func(e *airlock.AuditEvent) { e.Outcome = airlock.OutcomeFailure })
			exec(t, db, `UPDATE audit_log SET leaf = ? WHERE seq = 17`, leaf)
		}, 17, "stored tree hashes differ", "sign"},
		{"fail-hashes-truncated", func(t *testing.T, db *sql.DB, _ *audit.Checkpointer) {
			exec(t, db, `UPDATE audit_log SET hashes = x'0102' WHERE seq = 9`)
		}, 9, "stored tree hashes differ", "sign"},
		{"fail-only-an-index-column", func(t *testing.T, db *sql.DB, _ *audit.Checkpointer) {
			exec(t, db, `UPDATE audit_log SET user_id = 'u-hidden' WHERE seq = 8`)
		}, 8, "index columns [user_id]", "sign"},
		{"fail-one-field-strong", func(t *testing.T, db *sql.DB, _ *audit.Checkpointer) {
			leaf := reEvent(t, leafOf(t, db, 17), func(e *airlock.AuditEvent) { e.Reason = "nothing to see" })
			exec(t, db, `UPDATE audit_log SET leaf = ? WHERE seq = 17`, leaf)
			rehash(t, db)
		}, 11, "do not have the signed root", "refuse"},
		{"fail-delete", func(t *testing.T, db *sql.DB, _ *audit.Checkpointer) {
			exec(t, db, `DELETE FROM audit_log WHERE seq = 23`)
		}, 23, "missing", "sign"},
		{"fail-insert", func(t *testing.T, db *sql.DB, _ *audit.Checkpointer) {
			// Make room at 12 and put a forged event there, with the
			// hashes that were stored for the old 12.
			var hashes []byte
			if err := db.QueryRow(`SELECT hashes FROM audit_log WHERE seq = 12`).Scan(&hashes); err != nil {
				t.Fatal(err)
			}
			for seq := 40; seq >= 12; seq-- {
				exec(t, db, `UPDATE audit_log SET seq = seq + 1 WHERE seq = ?`, seq)
			}
			forged := reEvent(t, leafOf(t, db, 13), func(e *airlock.AuditEvent) { e.Seq, e.Type = 12, "auth.logout" })
			ev, _ := airlock.ParseAuditLeaf(forged)
			exec(t, db, `INSERT INTO audit_log (seq, leaf, hashes, time, type, user_id, session_id, grant_id) VALUES (12, ?, ?, ?, ?, ?, ?, ?)`,
				forged, hashes, ev.Time.UnixMicro(), ev.Type, ev.UserID, ev.SessionID, ev.GrantID)
		}, 12, "stored tree hashes differ", "refuse"},
		{"fail-insert-strong", func(t *testing.T, db *sql.DB, _ *audit.Checkpointer) {
			// Insert at 12 and renumber every later leaf consistently.
			for seq := int64(40); seq >= 12; seq-- {
				leaf := reEvent(t, leafOf(t, db, seq), func(e *airlock.AuditEvent) { e.Seq++ })
				exec(t, db, `UPDATE audit_log SET seq = seq + 1, leaf = ? WHERE seq = ?`, leaf, seq)
			}
			forged := reEvent(t, leafOf(t, db, 13), func(e *airlock.AuditEvent) { e.Seq, e.Type = 12, "auth.logout" })
			exec(t, db, `INSERT INTO audit_log (seq, leaf, hashes, time, type, user_id, session_id, grant_id) VALUES (12, ?, x'', 0, '', '', '', '')`, forged)
			rehash(t, db)
		}, 11, "do not have the signed root", "refuse"},
		{"fail-swap-two", func(t *testing.T, db *sql.DB, _ *audit.Checkpointer) {
			a, b := leafOf(t, db, 5), leafOf(t, db, 6)
			a2 := reEvent(t, a, func(e *airlock.AuditEvent) { e.Seq = 6 })
			b2 := reEvent(t, b, func(e *airlock.AuditEvent) { e.Seq = 5 })
			exec(t, db, `UPDATE audit_log SET leaf = ? WHERE seq = 5`, b2)
			exec(t, db, `UPDATE audit_log SET leaf = ? WHERE seq = 6`, a2)
		}, 5, "", "sign"},
		{"fail-swap-two-rows", func(t *testing.T, db *sql.DB, _ *audit.Checkpointer) {
			// Swap the rows wholesale (leaf, hashes, columns) by renumbering.
			exec(t, db, `UPDATE audit_log SET seq = 1000 WHERE seq = 5`)
			exec(t, db, `UPDATE audit_log SET seq = 5 WHERE seq = 6`)
			exec(t, db, `UPDATE audit_log SET seq = 6 WHERE seq = 1000`)
		}, 5, "leaf says seq 6", ""},
		{"fail-truncate-tail", func(t *testing.T, db *sql.DB, _ *audit.Checkpointer) {
			exec(t, db, `DELETE FROM audit_log WHERE seq > 35`)
		}, 36, "truncated", "refuse"},
		{"limit-truncate-tail-with-its-checkpoint", func(t *testing.T, db *sql.DB, _ *audit.Checkpointer) {
			// Removing the last checkpoint too leaves the tail unvouched
			// for: undetectable from the store alone, which is why
			// checkpoints are also streamed and kept elsewhere. One kept
			// checkpoint is enough: here 30 survives, 40 is gone, 36–40
			// deleted — the log still verifies up to 30. The signer that
			// signed 40 remembers it and refuses to sign the shorter
			// tree (TestCheckpointerRemembersWhatItSigned).
			exec(t, db, `DELETE FROM audit_log WHERE seq > 35`)
			exec(t, db, `DELETE FROM audit_checkpoints WHERE size = 40`)
		}, 0, "", "refuse"},
		{"fail-resigned-with-another-key", func(t *testing.T, db *sql.DB, cp *audit.Checkpointer) {
			var text []byte
			if err := db.QueryRow(`SELECT text FROM audit_checkpoints WHERE size = 20`).Scan(&text); err != nil {
				t.Fatal(err)
			}
			body, err := audit.ParseCheckpointNote(text)
			if err != nil {
				t.Fatal(err)
			}
			other := newKey(t, "airlock/test")
			forged, err := note.Sign(&note.Note{Text: string(audit.FormatCheckpoint(body))}, other.Signer)
			if err != nil {
				t.Fatal(err)
			}
			exec(t, db, `UPDATE audit_checkpoints SET text = ? WHERE size = 20`, forged)
		}, 11, "signature", "sign"},
		{"fail-all-resigned-after-rewrite", func(t *testing.T, db *sql.DB, cp *audit.Checkpointer) {
			// The attacker edits an event, rehashes, and re-signs every
			// checkpoint with their own key of the same name.
			leaf := reEvent(t, leafOf(t, db, 3), func(e *airlock.AuditEvent) { e.Outcome = airlock.OutcomeDenied })
			exec(t, db, `UPDATE audit_log SET leaf = ? WHERE seq = 3`, leaf)
			rehash(t, db)
			exec(t, db, `DELETE FROM audit_checkpoints`)
			forger := &audit.Checkpointer{Store: cp.Store, Key: newKey(t, "airlock/test"), Origin: "airlock/test"}
			if _, err := forger.Checkpoint(context.Background()); err != nil {
				t.Fatal(err)
			}
		}, 1, "signature", "refuse"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cp, path := signedLog(t)
			if rep := verify(t, cp); !rep.OK() || rep.Covered != 40 || rep.ValidCheckpoints != 4 {
				t.Fatalf("before tampering: %+v", rep)
			}
			db := admin(t, path)
			tc.tamper(t, db, cp)
			rep := verify(t, cp)
			if rep.FirstBad != tc.firstBad {
				t.Errorf("FirstBad = %d, want %d; problems %v", rep.FirstBad, tc.firstBad, rep.Problems)
			}
			if tc.firstBad != 0 && rep.OK() {
				t.Errorf("tampering not detected")
			}
			var all []string
			for _, p := range rep.Problems {
				all = append(all, p.String())
			}
			if !strings.Contains(strings.Join(all, "\n"), tc.wantInMsg) {
				t.Errorf("problems %q do not mention %q", all, tc.wantInMsg)
			}
			// The signer never signs on top of a tampered tree of hashes.
			// (Appending may already fail: the next records need hashes
			// the tampering broke. That refuses too.)
			err := cp.Store.AppendAudit(ctx, event(100), event(101), event(102))
			if err == nil {
				_, err = cp.Checkpoint(ctx)
			}
			if tc.signer == "refuse" && err == nil {
				t.Errorf("the signer signed on top of the tampered log")
			} else if tc.signer == "sign" && err != nil {
				t.Errorf("the signer refused: %v", err)
			}
		})
	}
}

// TestVerifyClean checks the report of an untampered log, including events
// not yet covered by a checkpoint.
func TestVerifyClean(t *testing.T) {
	cp, _ := signedLog(t)
	appendEvents(t, cp.Store, 41, 5)
	rep := verify(t, cp)
	if !rep.OK() || rep.Events != 45 || rep.TreeSize != 45 || rep.Covered != 40 || rep.Checkpoints != 4 {
		t.Fatalf("report %+v", rep)
	}
	root, err := tlog.TreeHash(45, audit.HashReader(context.Background(), cp.Store))
	if err != nil || root != rep.Root {
		t.Errorf("recomputed root %v, stored %v (%v)", rep.Root, root, err)
	}
	// Another key, or another origin, verifies nothing.
	rep, err = audit.Verify(context.Background(), cp.Store, audit.VerifyOptions{Verifiers: note.VerifierList(newKey(t, "airlock/test").Verifier)})
	if err != nil || rep.OK() || rep.FirstBad != 1 {
		t.Errorf("verify with another key: %+v, %v", rep, err)
	}
	rep, err = audit.Verify(context.Background(), cp.Store, audit.VerifyOptions{Verifiers: note.VerifierList(cp.Key.Verifier), Origin: "airlock/other"})
	if err != nil || rep.OK() || rep.FirstBad != 1 {
		t.Errorf("verify with another origin: %+v, %v", rep, err)
	}
	if _, err := audit.Verify(context.Background(), cp.Store, audit.VerifyOptions{}); err == nil {
		t.Errorf("verify without a key succeeded")
	}
}
