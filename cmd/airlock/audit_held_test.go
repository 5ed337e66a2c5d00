package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"airlock"
	"airlock/audit"

	"golang.org/x/mod/sumdb/note"
)

// heldDataDir makes a data directory as serve leaves it — a SQLite store
// with 40 events, a checkpoint signed every 10, the signing key file — and
// saves copies of the checkpoints of 20 and 40 with `airlock audit
// checkpoint`, as an operator's cron job would. It returns the directory,
// the saved files and the key.
func heldDataDir(t *testing.T) (dir, cp20, cp40 string, key *audit.Key) {
	t.Helper()
	ctx := context.Background()
	dir = t.TempDir()
	key, _, err := audit.LoadOrCreateKey(filepath.Join(dir, "audit-signing.key"), "airlock/test")
	if err != nil {
		t.Fatal(err)
	}
	store, err := openSQLite(ctx, filepath.Join(dir, "airlock.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	signer := &audit.Checkpointer{Store: store, Key: key, Origin: "airlock/test"}
	safe := t.TempDir()
	for i := 1; i <= 40; i++ {
		appendCLIEvent(t, store, "test.event", i)
		if i%10 != 0 {
			continue
		}
		if _, err := signer.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		if i == 20 || i == 40 {
			out, stderr, code := runCLI(t, "audit", "checkpoint", "--data="+dir)
			if code != 0 {
				t.Fatalf("checkpoint: %d %s", code, stderr)
			}
			f := filepath.Join(safe, "cp-"+strings.Repeat("x", i/20))
			if err := os.WriteFile(f, []byte(out), 0o600); err != nil {
				t.Fatal(err)
			}
			if i == 20 {
				cp20 = f
			} else {
				cp40 = f
			}
		}
	}
	return dir, cp20, cp40, key
}

func appendCLIEvent(t *testing.T, store airlock.AuditStore, typ string, i int) {
	t.Helper()
	ev := &airlock.AuditEvent{Time: time.Date(2031, 1, 1, 0, 0, i, 0, time.UTC), Type: typ,
		Outcome: airlock.OutcomeSuccess, UserID: "u-1", Details: map[string]any{"i": i}}
	if err := store.AppendAudit(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

// dbAdmin opens the data directory's database as someone with database
// access would, without the append-only triggers.
func dbAdmin(t *testing.T, dir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, "airlock.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, trg := range []string{"audit_log_no_update", "audit_log_no_delete",
		"audit_checkpoints_no_update", "audit_checkpoints_no_delete"} {
		if _, err := db.Exec(`DROP TRIGGER IF EXISTS ` + trg); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func TestAuditVerifyHeldCheckpoint(t *testing.T) {
	verifyHeld := func(dir string, files ...string) (string, int) {
		args := []string{"audit", "verify", "--data=" + dir}
		for _, f := range files {
			args = append(args, "--checkpoint="+f)
		}
		_, stderr, code := runCLI(t, args...)
		return stderr, code
	}

	t.Run("fail-tail-truncated-with-its-checkpoints", func(t *testing.T) {
		dir, cp20, cp40, _ := heldDataDir(t)
		db := dbAdmin(t, dir)
		if _, err := db.Exec(`DELETE FROM audit_log WHERE seq > 35`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`DELETE FROM audit_checkpoints WHERE size > 30`); err != nil {
			t.Fatal(err)
		}
		// The store alone cannot tell…
		if stderr, code := verifyHeld(dir); code != 0 {
			t.Fatalf("verify without held checkpoints: %d %s", code, stderr)
		}
		// … the held copy of checkpoint 40 can.
		stderr, code := verifyHeld(dir, cp20, cp40)
		if code != 1 || !strings.Contains(stderr, "held checkpoint "+cp40+" (size 40): truncated") ||
			!strings.Contains(stderr, "held checkpoint "+cp20+" (size 20): OK") || !strings.Contains(stderr, "first bad seq 36") {
			t.Errorf("verify --checkpoint: %d %s", code, stderr)
		}
	})

	t.Run("fail-history-rewritten-and-resigned", func(t *testing.T) {
		// Someone with the database and the signing key replaces events
		// 31–40 (the store computes their hashes) and re-signs checkpoints
		// with a signer that never saw the genuine ones.
		dir, cp20, cp40, key := heldDataDir(t)
		db := dbAdmin(t, dir)
		if _, err := db.Exec(`DELETE FROM audit_log WHERE seq > 30`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`DELETE FROM audit_checkpoints WHERE size > 30`); err != nil {
			t.Fatal(err)
		}
		db.Close()
		ctx := context.Background()
		store, err := openSQLite(ctx, filepath.Join(dir, "airlock.db"))
		if err != nil {
			t.Fatal(err)
		}
		for i := 31; i <= 40; i++ {
			appendCLIEvent(t, store, "test.innocent", i)
		}
		forger := &audit.Checkpointer{Store: store, Key: key, Origin: "airlock/test"}
		if _, err := forger.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		store.Close()
		if stderr, code := verifyHeld(dir); code != 0 {
			t.Fatalf("verify without held checkpoints: %d %s", code, stderr)
		}
		stderr, code := verifyHeld(dir, cp20, cp40)
		if code != 1 || !strings.Contains(stderr, "held checkpoint "+cp40+" (size 40): history rewritten") ||
			!strings.Contains(stderr, "held checkpoint "+cp20+" (size 20): OK") || !strings.Contains(stderr, "first bad seq 21") {
			t.Errorf("verify --checkpoint: %d %s", code, stderr)
		}
	})

	t.Run("fail-signed-by-another-key", func(t *testing.T) {
		dir, _, cp40, _ := heldDataDir(t)
		b, err := os.ReadFile(cp40)
		if err != nil {
			t.Fatal(err)
		}
		body, err := audit.ParseCheckpointNote(b)
		if err != nil {
			t.Fatal(err)
		}
		skey, _, _ := note.GenerateKey(rand.Reader, "airlock/test")
		other, _ := audit.ParseKey(skey)
		forged, err := note.Sign(&note.Note{Text: string(audit.FormatCheckpoint(body))}, other.Signer)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "forged")
		os.WriteFile(f, forged, 0o600)
		stderr, code := verifyHeld(dir, f)
		if code != 1 || !strings.Contains(stderr, "held checkpoint "+f) || !strings.Contains(stderr, "bad signature") ||
			!strings.Contains(stderr, "FAILED: held checkpoint "+f+" (bad signature)") {
			t.Errorf("verify --checkpoint: %d %s", code, stderr)
		}
		// Only the key makes the difference: trusting the other key, the
		// same file matches the log.
		if _, stderr, code := runCLI(t, "audit", "verify", "--data="+dir, "--pubkey="+other.VerifierKey, "--checkpoint="+f); !strings.Contains(stderr, "held checkpoint "+f+" (size 40): OK") {
			t.Errorf("--pubkey of the other key: %d %s", code, stderr)
		}
	})

	t.Run("pass-honest-log", func(t *testing.T) {
		dir, cp20, cp40, _ := heldDataDir(t)
		stderr, code := verifyHeld(dir, cp40, cp20)
		if code != 0 || !strings.Contains(stderr, "held checkpoint "+cp40+" (size 40): OK") ||
			!strings.Contains(stderr, "held checkpoint "+cp20+" (size 20): OK") || !strings.Contains(stderr, "audit verify: OK") {
			t.Errorf("verify --checkpoint: %d %s", code, stderr)
		}
		if _, stderr, code := runCLI(t, "audit", "verify", "--data="+dir, "--checkpoint="+filepath.Join(dir, "missing")); code == 0 || !strings.Contains(stderr, "--checkpoint") {
			t.Errorf("missing file: %d %s", code, stderr)
		}
	})
}
