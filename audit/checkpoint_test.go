package audit_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"airlock"
	"airlock/audit"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestCheckpointFormat(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	k := newKey(t, "airlock/host-1")
	cp := &audit.Checkpointer{Store: s, Key: k, Origin: "airlock/host-1", Now: func() time.Time { return t0 }}
	if got, err := cp.Checkpoint(ctx); got != nil || err != nil {
		t.Fatalf("checkpoint of an empty log: %v, %v; want nothing", got, err)
	}
	appendEvents(t, s, 1, 5)
	c, err := cp.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := tlog.TreeHash(5, audit.HashReader(ctx, s))
	// C2SP tlog-checkpoint: origin, size, base64 root, blank line, signature.
	n, err := note.Open(c.Text, note.VerifierList(k.Verifier))
	if err != nil {
		t.Fatal(err)
	}
	want := "airlock/host-1\n5\n" + root.String() + "\n"
	if n.Text != want {
		t.Errorf("checkpoint body %q, want %q", n.Text, want)
	}
	if !strings.HasPrefix(string(c.Text), want+"\n— airlock/host-1 ") {
		t.Errorf("signed note %q", c.Text)
	}
	if c.Size != 5 || !c.CreatedAt.Equal(t0) {
		t.Errorf("checkpoint %+v", c)
	}
	// Nothing new: the same checkpoint, nothing added.
	again, err := cp.Checkpoint(ctx)
	if err != nil || again.Size != 5 {
		t.Errorf("second checkpoint: %+v, %v", again, err)
	}
	if list, _ := s.ListAuditCheckpoints(ctx, 0, 0); len(list) != 1 {
		t.Errorf("%d checkpoints stored, want 1", len(list))
	}

	for _, tc := range []struct{ name, text string }{
		{"ok", "o\n5\n" + root.String() + "\n"},
		{"ok-extension-line", "o\n5\n" + root.String() + "\nextra\n"},
		{"fail-no-origin", "\n5\n" + root.String() + "\n"},
		{"fail-size-not-decimal", "o\n05\n" + root.String() + "\n"},
		{"fail-negative-size", "o\n-5\n" + root.String() + "\n"},
		{"fail-short-hash", "o\n5\nAAAA\n"},
		{"fail-no-final-newline", "o\n5\n" + root.String()},
		{"fail-two-lines", "o\n5\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := audit.ParseCheckpoint([]byte(tc.text))
			if strings.HasPrefix(tc.name, "ok") {
				if err != nil || tr.Size != 5 || tr.Hash != root || tr.Origin != "o" {
					t.Errorf("ParseCheckpoint: %+v, %v", tr, err)
				}
			} else if err == nil {
				t.Errorf("ParseCheckpoint accepted %q", tc.text)
			}
		})
	}
}

// TestCheckpointRefusesInconsistentTree checks that the signer never signs
// a tree that does not extend the latest stored checkpoint, and stores
// nothing when it refuses.
func TestCheckpointRefusesInconsistentTree(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, cp *audit.Checkpointer, path string)
	}{
		{"fail-stored-hash-changed-below-checkpoint", func(t *testing.T, cp *audit.Checkpointer, path string) {
			// Seq 8 keeps the hash of the subtree of events 1–8, which
			// every later tree head builds on. (A hash off that edge is
			// not read by the signer's O(log n) check; verify finds it.)
			db := admin(t, path)
			var hs []byte
			if err := db.QueryRow(`SELECT hashes FROM audit_log WHERE seq = 8`).Scan(&hs); err != nil {
				t.Fatal(err)
			}
			hs[len(hs)-1] ^= 1
			exec(t, db, `UPDATE audit_log SET hashes = ? WHERE seq = 8`, hs)
		}},
		{"fail-history-rewritten-and-rehashed", func(t *testing.T, cp *audit.Checkpointer, path string) {
			db := admin(t, path)
			leaf := reEvent(t, leafOf(t, db, 2), func(e *airlock.AuditEvent) { e.UserID = "u-x" })
			exec(t, db, `UPDATE audit_log SET leaf = ? WHERE seq = 2`, leaf)
			rehash(t, db)
		}},
		{"fail-latest-checkpoint-forged", func(t *testing.T, cp *audit.Checkpointer, path string) {
			db := admin(t, path)
			forger := newKey(t, "airlock/test")
			text, _ := note.Sign(&note.Note{Text: "airlock/test\n10\n" + tlog.Hash{}.String() + "\n"}, forger.Signer)
			exec(t, db, `UPDATE audit_checkpoints SET text = ? WHERE size = 10`, text)
		}},
		{"fail-latest-checkpoint-other-size", func(t *testing.T, cp *audit.Checkpointer, path string) {
			// A genuine checkpoint of size 5, stored as if for size 10.
			db := admin(t, path)
			root, _ := tlog.TreeHash(5, audit.HashReader(ctx, cp.Store))
			text, _ := note.Sign(&note.Note{Text: string(audit.FormatCheckpoint(audit.Tree{Origin: "airlock/test", Size: 5, Hash: root}))}, cp.Key.Signer)
			exec(t, db, `UPDATE audit_checkpoints SET text = ? WHERE size = 10`, text)
		}},
		{"fail-truncated", func(t *testing.T, cp *audit.Checkpointer, path string) {
			db := admin(t, path)
			exec(t, db, `DELETE FROM audit_log WHERE seq > 8`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, path := openStore(t)
			cp := &audit.Checkpointer{Store: s, Key: newKey(t, "airlock/test"), Origin: "airlock/test"}
			appendEvents(t, s, 1, 10)
			if _, err := cp.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			tc.tamper(t, cp, path)
			appendEvents(t, s, 11, 1)
			_, err := cp.Checkpoint(ctx)
			if !errors.Is(err, audit.ErrInconsistent) {
				t.Fatalf("Checkpoint after tampering: %v, want ErrInconsistent", err)
			}
			if latest, _ := s.LatestAuditCheckpoint(ctx); latest.Size != 10 {
				t.Errorf("a checkpoint of size %d was stored", latest.Size)
			}
			if st := audit.CheckLatest(ctx, s, note.VerifierList(cp.Key.Verifier)); st.Verified || st.Problem == "" {
				t.Errorf("CheckLatest after tampering: %+v", st)
			}
		})
	}
}

func TestCheckLatest(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	k := newKey(t, "airlock/test")
	vs := note.VerifierList(k.Verifier)
	if st := audit.CheckLatest(ctx, s, vs); st.Verified || st.Problem != "no checkpoint yet" {
		t.Errorf("empty: %+v", st)
	}
	cp := &audit.Checkpointer{Store: s, Key: k, Origin: "airlock/test"}
	appendEvents(t, s, 1, 7)
	if _, err := cp.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	appendEvents(t, s, 8, 4)
	st := audit.CheckLatest(ctx, s, vs)
	if !st.Verified || st.Size != 7 || st.TreeSize != 11 || st.Origin != "airlock/test" {
		t.Errorf("CheckLatest: %+v", st)
	}
	if st := audit.CheckLatest(ctx, s, note.VerifierList(newKey(t, "airlock/test").Verifier)); st.Verified {
		t.Errorf("verified with another key: %+v", st)
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "audit.key")
	k, created, err := audit.LoadOrCreateKey(path, "airlock/h")
	if err != nil || !created {
		t.Fatalf("LoadOrCreateKey: %v, created %v", err, created)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", st.Mode(), err)
	}
	if !strings.HasPrefix(k.VerifierKey, "airlock/h+") {
		t.Errorf("verifier key %q", k.VerifierKey)
	}
	again, created, err := audit.LoadOrCreateKey(path, "other")
	if err != nil || created || again.VerifierKey != k.VerifierKey {
		t.Errorf("second load: %v created %v, key %q vs %q", err, created, again.VerifierKey, k.VerifierKey)
	}
	// A message signed with the loaded key verifies with the derived
	// verifier key text, parsed afresh.
	msg, _ := note.Sign(&note.Note{Text: "x\n"}, again.Signer)
	v, err := note.NewVerifier(k.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Errorf("signature with the loaded key: %v", err)
	}

	// Replicas starting together end up with one key.
	shared := filepath.Join(dir, "shared.key")
	var wg sync.WaitGroup
	keys := make([]string, 8)
	for i := range keys {
		wg.Go(func() {
			k, _, err := audit.LoadOrCreateKey(shared, "airlock/h")
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = k.VerifierKey
		})
	}
	wg.Wait()
	for _, vk := range keys {
		if vk != keys[0] {
			t.Fatalf("concurrent starts made different keys: %q", keys)
		}
	}

	for _, bad := range []string{"", "garbage", "PRIVATE+KEY+x+00000000+AAAA", k.VerifierKey} {
		if _, err := audit.ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) succeeded", bad)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.key"), []byte("nonsense\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := audit.LoadOrCreateKey(filepath.Join(dir, "bad.key"), "x"); err == nil {
		t.Errorf("a corrupt key file was accepted (or replaced)")
	}
}

// TestCheckpointerRun checks that Run signs after Every events and at its
// interval when the tree has grown.
func TestCheckpointerRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, _ := openStore(t)
	log := audit.New(s, nil, nil)
	cp := &audit.Checkpointer{Store: s, Key: newKey(t, "airlock/test"), Origin: "airlock/test",
		Every: 5, Interval: time.Hour, Log: log}
	done := make(chan struct{})
	go func() { defer close(done); cp.Run(ctx) }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Run subscribes as it starts; wait until it is running by recording
	// events until a checkpoint appears.
	for i := range 12 {
		if err := log.Record(ctx, *event(i + 1)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor("a checkpoint after 5 events", func() bool {
		c, err := s.LatestAuditCheckpoint(ctx)
		return err == nil && c.Size >= 5
	})
	cancel()
	<-done

	// The interval alone: no log to wake it.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	cp2 := &audit.Checkpointer{Store: s, Key: cp.Key, Origin: "airlock/test", Every: 1000, Interval: 10 * time.Millisecond}
	appendEvents(t, s, 100, 2)
	size, _ := s.AuditTreeSize(ctx2)
	go cp2.Run(ctx2)
	waitFor("a checkpoint at the interval", func() bool {
		c, err := s.LatestAuditCheckpoint(ctx2)
		return err == nil && c.Size == size
	})
}

// TestCheckpointerRemembersWhatItSigned checks that the signer does not take
// the store's word for its previous checkpoint: an attacker with database
// access who deletes the latest checkpoints and rewrites the history they
// covered must not get the genuine key to sign the fork (verify, which only
// sees the stored checkpoints, would then pass it).
func TestCheckpointerRemembersWhatItSigned(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, db *sql.DB)
	}{
		{"fail-checkpoints-deleted-history-rewritten", func(t *testing.T, db *sql.DB) {
			exec(t, db, `DELETE FROM audit_checkpoints`)
			leaf := reEvent(t, leafOf(t, db, 2), func(e *airlock.AuditEvent) { e.UserID = "u-x" })
			exec(t, db, `UPDATE audit_log SET leaf = ? WHERE seq = 2`, leaf)
			rehash(t, db)
		}},
		{"fail-latest-checkpoint-deleted-tail-rewritten", func(t *testing.T, db *sql.DB) {
			exec(t, db, `DELETE FROM audit_checkpoints WHERE size = 10`)
			leaf := reEvent(t, leafOf(t, db, 9), func(e *airlock.AuditEvent) { e.Outcome = airlock.OutcomeFailure })
			exec(t, db, `UPDATE audit_log SET leaf = ? WHERE seq = 9`, leaf)
			rehash(t, db)
		}},
		{"fail-checkpoints-deleted-tail-truncated", func(t *testing.T, db *sql.DB) {
			exec(t, db, `DELETE FROM audit_checkpoints WHERE size = 10`)
			exec(t, db, `DELETE FROM audit_log WHERE seq > 7`)
		}},
	} {
		for _, restart := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/restart=%v", tc.name, restart), func(t *testing.T) {
				s, path := openStore(t)
				state := filepath.Join(t.TempDir(), "audit-checkpoint")
				key := newKey(t, "airlock/test")
				cp := &audit.Checkpointer{Store: s, Key: key, Origin: "airlock/test", StateFile: state}
				appendEvents(t, s, 1, 5)
				if _, err := cp.Checkpoint(ctx); err != nil {
					t.Fatal(err)
				}
				appendEvents(t, s, 6, 5)
				if _, err := cp.Checkpoint(ctx); err != nil {
					t.Fatal(err)
				}
				tc.tamper(t, admin(t, path))
				appendEvents(t, s, 11, 1)
				if restart {
					// A new process: only the state file remembers.
					cp = &audit.Checkpointer{Store: s, Key: key, Origin: "airlock/test", StateFile: state}
				}
				if got, err := cp.Checkpoint(ctx); !errors.Is(err, audit.ErrInconsistent) {
					t.Fatalf("Checkpoint after tampering: %v, %v; want ErrInconsistent", got, err)
				}
				if latest, err := s.LatestAuditCheckpoint(ctx); err == nil && latest.Size > 10 {
					t.Errorf("a checkpoint of size %d was stored", latest.Size)
				}
			})
		}
	}
	t.Run("fail-state-file-not-signed-by-the-key", func(t *testing.T) {
		s, _ := openStore(t)
		state := filepath.Join(t.TempDir(), "audit-checkpoint")
		forged, _ := note.Sign(&note.Note{Text: "airlock/test\n1\n" + tlog.Hash{}.String() + "\n"}, newKey(t, "airlock/test").Signer)
		if err := os.WriteFile(state, forged, 0o600); err != nil {
			t.Fatal(err)
		}
		appendEvents(t, s, 1, 3)
		cp := &audit.Checkpointer{Store: s, Key: newKey(t, "airlock/test"), Origin: "airlock/test", StateFile: state}
		if got, err := cp.Checkpoint(ctx); !errors.Is(err, audit.ErrInconsistent) {
			t.Fatalf("Checkpoint with a foreign state file: %v, %v; want ErrInconsistent", got, err)
		}
	})
	t.Run("state-file-kept-and-followed", func(t *testing.T) {
		s, _ := openStore(t)
		state := filepath.Join(t.TempDir(), "audit-checkpoint")
		key := newKey(t, "airlock/test")
		appendEvents(t, s, 1, 3)
		if _, err := (&audit.Checkpointer{Store: s, Key: key, Origin: "airlock/test", StateFile: state}).Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(state)
		if err != nil {
			t.Fatal(err)
		}
		if tr, err := audit.OpenCheckpoint(b, note.VerifierList(key.Verifier)); err != nil || tr.Size != 3 {
			t.Fatalf("state file: %+v, %v", tr, err)
		}
		appendEvents(t, s, 4, 2)
		if cp, err := (&audit.Checkpointer{Store: s, Key: key, Origin: "airlock/test", StateFile: state}).Checkpoint(ctx); err != nil || cp.Size != 5 {
			t.Fatalf("Checkpoint after a restart on an honest log: %v, %v", cp, err)
		}
	})
}
