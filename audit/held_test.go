package audit_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"airlock"
	"airlock/audit"

	"golang.org/x/mod/sumdb/note"
)

// storedCheckpoint returns the stored checkpoint note of size n.
func storedCheckpoint(t *testing.T, db *sql.DB, n int64) []byte {
	t.Helper()
	var text []byte
	if err := db.QueryRow(`SELECT text FROM audit_checkpoints WHERE size = ?`, n).Scan(&text); err != nil {
		t.Fatal(err)
	}
	return text
}

// TestVerifyHeldCheckpoints checks checkpoints kept outside the store (as
// an operator's cron job keeps copies of `airlock audit checkpoint`)
// against the log: they catch a truncated tail whose stored checkpoints
// went with it, and a history rewritten together with its stored hashes
// and re-signed checkpoints (a stolen key, a signer without memory) —
// both invisible to Verify from the store alone.
func TestVerifyHeldCheckpoints(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(t *testing.T, db *sql.DB, cp *audit.Checkpointer)
		held   func(t *testing.T, db *sql.DB) []audit.HeldCheckpoint
		// want: the fault of each held checkpoint, in order ("" = verifies).
		want     []string
		firstBad int64
		covered  int64
	}{
		{"pass-honest-log", nil, nil, []string{"", ""}, 0, 40},
		{"fail-tail-truncated-with-its-checkpoints", func(t *testing.T, db *sql.DB, _ *audit.Checkpointer) {
			exec(t, db, `DELETE FROM audit_log WHERE seq > 35`)
			exec(t, db, `DELETE FROM audit_checkpoints WHERE size > 30`)
		}, nil, []string{audit.HeldTruncated, ""}, 36, 30},
		{"fail-history-rewritten-and-resigned", func(t *testing.T, db *sql.DB, cp *audit.Checkpointer) {
			// The attacker has the database and the signing key: edits
			// event 25, rehashes, and re-signs with a signer that never
			// saw the genuine checkpoints. The store then verifies.
			leaf := reEvent(t, leafOf(t, db, 25), func(e *airlock.AuditEvent) { e.Outcome = airlock.OutcomeDenied })
			exec(t, db, `UPDATE audit_log SET leaf = ? WHERE seq = 25`, leaf)
			rehash(t, db)
			exec(t, db, `DELETE FROM audit_checkpoints`)
			forger := &audit.Checkpointer{Store: cp.Store, Key: cp.Key, Origin: "airlock/test"}
			if _, err := forger.Checkpoint(context.Background()); err != nil {
				t.Fatal(err)
			}
			if rep := verify(t, cp); !rep.OK() {
				t.Fatalf("the rewrite should verify from the store alone: %v", rep.Problems)
			}
		}, nil, []string{audit.HeldRewritten, ""}, 21, 20},
		{"fail-signed-by-another-key", nil, func(t *testing.T, db *sql.DB) []audit.HeldCheckpoint {
			body, err := audit.ParseCheckpointNote(storedCheckpoint(t, db, 40))
			if err != nil {
				t.Fatal(err)
			}
			forged, err := note.Sign(&note.Note{Text: string(audit.FormatCheckpoint(body))}, newKey(t, "airlock/test").Signer)
			if err != nil {
				t.Fatal(err)
			}
			return []audit.HeldCheckpoint{{Name: "forged", Text: forged}}
		}, []string{audit.HeldBadSignature}, 0, 40},
		{"fail-not-a-signed-note", nil, func(t *testing.T, db *sql.DB) []audit.HeldCheckpoint {
			return []audit.HeldCheckpoint{{Name: "garbage", Text: []byte("not a note")}}
		}, []string{audit.HeldBadSignature}, 0, 40},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cp, path := signedLog(t)
			db := admin(t, path)
			held := []audit.HeldCheckpoint{
				// Out of order on purpose: Verify sorts them.
				{Name: "cp-40", Text: storedCheckpoint(t, db, 40)},
				{Name: "cp-20", Text: storedCheckpoint(t, db, 20)},
			}
			if tc.held != nil {
				held = tc.held(t, db)
			}
			if tc.tamper != nil {
				tc.tamper(t, db, cp)
			}
			rep, err := audit.Verify(context.Background(), cp.Store, audit.VerifyOptions{
				Verifiers: note.VerifierList(cp.Key.Verifier), Origin: "airlock/test", PageSize: 7, Held: held})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Held) != len(tc.want) {
				t.Fatalf("held results %+v, want %d", rep.Held, len(tc.want))
			}
			byName := map[string]audit.HeldResult{}
			for _, h := range rep.Held {
				byName[h.Name] = h
			}
			bad := false
			for i, h := range held {
				got := byName[h.Name]
				if got.Fault != tc.want[i] || got.OK != (tc.want[i] == "") {
					t.Errorf("%s: %+v, want fault %q", h.Name, got, tc.want[i])
				}
				if got.Fault != "" && (got.Message == "" || !strings.Contains(got.String(), h.Name)) {
					t.Errorf("%s: unhelpful failure %q", h.Name, got.String())
				}
				bad = bad || tc.want[i] != ""
			}
			if rep.OK() == bad {
				t.Errorf("OK() = %v with held results %+v", rep.OK(), rep.Held)
			}
			if rep.FirstBad != tc.firstBad || rep.Covered != tc.covered {
				t.Errorf("FirstBad %d Covered %d, want %d %d; problems %v", rep.FirstBad, rep.Covered, tc.firstBad, tc.covered, rep.Problems)
			}
		})
	}
}
