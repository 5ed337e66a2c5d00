package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"airlock"
	"airlock/audit"

	"golang.org/x/mod/sumdb/note"
)

// auditLoadEnv names the data directory of the crash test's child.
const auditLoadEnv = "AIRLOCK_TEST_AUDIT_LOAD"

// auditLoadChild is the crash test's child process: the server (Main, with
// its group-commit audit log and checkpoint signer) on the data directory
// in $AIRLOCK_TEST_AUDIT_LOAD, and 64 producers recording events as fast
// as they can. Each producer writes "ack ID" to stdout (one write per
// line, straight to the pipe) after Record returned for event ID — i.e.
// after its commit. It runs until killed.
func auditLoadChild() {
	cfg := DefaultConfig()
	cfg.Data = os.Getenv(auditLoadEnv)
	cfg.Listen = "127.0.0.1:0"
	cfg.Audit.Origin = "airlock/crash-test"
	cfg.Audit.CheckpointEvery = 300
	cfg.Audit.CheckpointInterval = 200 * time.Millisecond
	m := &Main{Config: cfg, Stdout: io.Discard, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	ctx := context.Background()
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	out := os.Stdout
	fmt.Fprintln(out, "ready")
	for p := range 64 {
		go func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("p%02d-%07d", p, i)
				if err := m.Audit.Record(ctx, airlock.AuditEvent{Type: "load.event", RequestID: id, UserID: fmt.Sprintf("u-%d", p)}); err != nil {
					fmt.Fprintln(os.Stderr, "child: record:", err)
					continue
				}
				mu.Lock()
				_, _ = out.WriteString("ack " + id + "\n")
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestAuditCrash kills (SIGKILL) a server process while 64 producers
// append, then reopens its data: every event whose append was acknowledged
// is there, the log verifies end to end (leaves, hashes, every checkpoint
// signed before the crash), and a restarted server extends it.
func TestAuditCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 test: skipped with -short")
	}
	dir := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), auditLoadEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	acked := map[string]bool{}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	// Kill mid-load: once a few thousand events are acknowledged, or after
	// a few seconds on a slow machine.
	deadline := time.After(60 * time.Second)
	var killAt <-chan time.Time
	killed := false
	for !killed {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("child exited early; stderr: %s", stderr.String())
			}
			if l == "ready" {
				killAt = time.After(3 * time.Second)
			} else if id, ok := strings.CutPrefix(l, "ack "); ok {
				acked[id] = true
				if len(acked) >= 5000 {
					killed = true
				}
			}
		case <-killAt:
			killed = true
		case <-deadline:
			t.Fatalf("no load after 60 s; stderr: %s", stderr.String())
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	for l := range lines { // acks already in the pipe
		if id, ok := strings.CutPrefix(l, "ack "); ok {
			acked[id] = true
		}
	}
	_ = cmd.Wait()
	if len(acked) < 100 {
		t.Fatalf("only %d events acknowledged before the kill; stderr: %s", len(acked), stderr.String())
	}
	t.Logf("%d events acknowledged before kill -9", len(acked))

	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Data = dir
	cfg.Audit.Origin = "airlock/crash-test"
	store, err := openStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for after := int64(0); ; {
		evs, err := store.ListAudit(ctx, airlock.AuditFilter{Type: "load.event", AfterSeq: after, Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			found[e.RequestID] = true
		}
		after = evs[len(evs)-1].Seq
	}
	missing := 0
	for id := range acked {
		if !found[id] {
			missing++
			if missing < 5 {
				t.Errorf("acknowledged event %s lost", id)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged events lost", missing, len(acked))
	}

	key, err := audit.LoadKey(cfg.auditKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	verify := func() *audit.Report {
		t.Helper()
		rep, err := audit.Verify(ctx, store, audit.VerifyOptions{Verifiers: note.VerifierList(key.Verifier), Origin: "airlock/crash-test"})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			t.Fatalf("verify after the crash: first bad %d: %v", rep.FirstBad, rep.Problems)
		}
		return rep
	}
	rep := verify()
	if rep.ValidCheckpoints == 0 {
		t.Errorf("no checkpoint was signed before the crash (%d events)", rep.Events)
	}
	store.Close()

	// A restart signs on top of the pre-crash checkpoints (it would refuse
	// an inconsistent tree) and the whole log still verifies.
	s := startAuditServer(t, dir, func(c *Config) { c.Audit.Origin = "airlock/crash-test" })
	if err := s.m.Audit.Record(ctx, airlock.AuditEvent{Type: "test.after_crash"}); err != nil {
		t.Fatal(err)
	}
	if err := s.m.Close(); err != nil {
		t.Fatal(err)
	}
	if store, err = openStore(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if rep := verify(); rep.Covered != rep.Events {
		t.Errorf("after restart and shutdown: signed up to %d of %d", rep.Covered, rep.Events)
	}
}
