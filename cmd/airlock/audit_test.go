package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"airlock"
	"airlock/audit"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// startAuditServer runs serve on dir with a short checkpoint interval.
func startAuditServer(t *testing.T, dir string, mod func(*Config)) *cliServer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:" + itoa(freePort(t))
	cfg.Data = dir
	cfg.Audit.Origin = "airlock/test"
	cfg.Audit.CheckpointInterval = 100 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	s := &cliServer{t: t, logs: &syncBuffer{}}
	s.m = &Main{Config: cfg, Stdout: &s.out, Logger: slog.New(slog.NewTextHandler(s.logs, nil))}
	if err := s.m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.m.Close() })
	s.base = "http://" + s.m.Addr().String()
	s.origin = s.m.Origin
	return s
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestAuditServeAndCLI runs the server (key generated on first start,
// checkpoints on the interval and at shutdown, the audit page's verdict,
// GET /v1/audit) and then every `airlock audit` command on its data.
func TestAuditServeAndCLI(t *testing.T) {
	dir := t.TempDir()
	s := startAuditServer(t, dir, nil)
	keyFile := filepath.Join(dir, "audit-signing.key")
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("signing key file: %v %v", st, err)
	}
	token := s.enrolAndLogin(strings.TrimSpace(strings.TrimPrefix(s.out.String(), "bootstrap enrolment: ")))
	ctx := context.Background()
	waitUntil(t, "a checkpoint", func() bool {
		cp, err := s.m.Store.LatestAuditCheckpoint(ctx)
		n, _ := s.m.Store.AuditTreeSize(ctx)
		return err == nil && cp.Size == n
	})
	if code, body := get(t, s.base+"/admin/audit", token); code != 200 || !strings.Contains(body, `id="audit-checkpoint" class="ok"`) {
		t.Fatalf("audit page: %d, no verified checkpoint shown", code)
	}
	if code, body := get(t, s.base+"/v1/audit?type=enrol.", token); code != 200 || !strings.Contains(body, `"type":"enrol.passkey_added"`) {
		t.Fatalf("GET /v1/audit: %d %s", code, body)
	}
	if err := s.m.Close(); err != nil {
		t.Fatal(err)
	}
	// The shutdown checkpoint covers everything, the page reads included.
	store, err := openStore(ctx, s.m.Config)
	if err != nil {
		t.Fatal(err)
	}
	size, _ := store.AuditTreeSize(ctx)
	if cp, err := store.LatestAuditCheckpoint(ctx); err != nil || cp.Size != size {
		t.Fatalf("after shutdown: checkpoint %v (%v), tree %d", cp, err, size)
	}
	store.Close()

	data := "--data=" + dir
	pub, stderr, code := runCLI(t, "audit", "pubkey", data)
	if code != 0 || !strings.HasPrefix(pub, "airlock/test+") {
		t.Fatalf("pubkey: %d %q %s", code, pub, stderr)
	}
	verifier, err := note.NewVerifier(strings.TrimSpace(pub))
	if err != nil {
		t.Fatal(err)
	}
	cpText, stderr, code := runCLI(t, "audit", "checkpoint", data)
	if code != 0 {
		t.Fatalf("checkpoint: %d %s", code, stderr)
	}
	tree, err := audit.OpenCheckpoint([]byte(cpText), note.VerifierList(verifier))
	if err != nil || tree.Origin != "airlock/test" || tree.Size != size {
		t.Fatalf("checkpoint %q: %+v %v", cpText, tree, err)
	}

	// export: every event's leaf, one per line; the export is itself
	// recorded (audit.read), so it is the last line.
	out, stderr, code := runCLI(t, "audit", "export", data)
	if code != 0 {
		t.Fatalf("export: %d %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if int64(len(lines)) != size+1 {
		t.Fatalf("export: %d lines, want %d", len(lines), size+1)
	}
	for i, l := range lines {
		e, err := airlock.ParseAuditLeaf([]byte(l))
		if err != nil || e.Seq != int64(i+1) {
			t.Fatalf("line %d: %v %v", i, e, err)
		}
	}
	if last, _ := airlock.ParseAuditLeaf([]byte(lines[len(lines)-1])); last.Type != "audit.read" || last.Details["command"] != "export" {
		t.Errorf("the export was not recorded: %s", lines[len(lines)-1])
	}
	out, _, code = runCLI(t, "audit", "export", "--since=3", data)
	if got := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); code != 0 || got[0] != lines[3] || int64(len(got)) != size-3+2 {
		t.Errorf("export --since=3: first %q, %d lines", got[0], len(got))
	}

	// proof: checks against the checkpoint with tlog alone.
	out, stderr, code = runCLI(t, "audit", "proof", data, "2")
	if code != 0 {
		t.Fatalf("proof: %d %s", code, stderr)
	}
	var p audit.Proof
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	if p.Leaf != lines[1] || p.TreeSize != tree.Size || p.RootHash != tree.Hash ||
		tlog.CheckRecord(p.Hashes, p.TreeSize, tree.Hash, 1, tlog.RecordHash([]byte(p.Leaf))) != nil {
		t.Errorf("proof does not check: %+v", p)
	}

	// verify: OK with the data dir's key, with --pubkey text or file.
	pubFile := filepath.Join(t.TempDir(), "pub")
	os.WriteFile(pubFile, []byte(pub), 0o644)
	for _, extra := range [][]string{nil, {"--pubkey=" + strings.TrimSpace(pub)}, {"--pubkey=" + pubFile}, {"--log-origin=airlock/test"}} {
		out, stderr, code = runCLI(t, append([]string{"audit", "verify", data}, extra...)...)
		var rep audit.Report
		if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || !rep.OK() || !strings.Contains(stderr, "audit verify: OK") {
			t.Fatalf("verify %v: %d %s %s", extra, code, out, stderr)
		}
	}
	// … and fails with another key or origin.
	other, _, _ := note.GenerateKey(rand.Reader, "airlock/test")
	otherKey, _ := audit.ParseKey(other)
	for _, extra := range []string{"--pubkey=" + otherKey.VerifierKey, "--log-origin=airlock/else"} {
		if _, stderr, code := runCLI(t, "audit", "verify", data, extra); code != 1 || !strings.Contains(stderr, "first bad seq 1") {
			t.Errorf("verify %s: %d %s", extra, code, stderr)
		}
	}

	// Tampering: one field of event 2 changed by someone with the database.
	db, err := sql.Open("sqlite", filepath.Join(dir, "airlock.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DROP TRIGGER audit_log_no_update`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_log SET leaf = CAST(replace(CAST(leaf AS TEXT), '"outcome":"success"', '"outcome":"failure"') AS BLOB) WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out, stderr, code = runCLI(t, "audit", "verify", data)
	var rep audit.Report
	if code != 1 || json.Unmarshal([]byte(out), &rep) != nil || rep.FirstBad != 2 || !strings.Contains(stderr, "FAILED: first bad seq 2") {
		t.Fatalf("verify of a tampered log: %d %s %s", code, out, stderr)
	}
}

func TestAuditCLIErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(t.TempDir(), "nothing-here")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"audit"}, "a command is required"},
		{[]string{"audit", "nope"}, "unknown command"},
		{[]string{"audit", "proof", "--data=" + dir}, "want 1 argument"},
		{[]string{"audit", "proof", "--data=" + dir, "x"}, "not a sequence number"},
		{[]string{"audit", "proof", "--data=" + dir, "5"}, "no checkpoint"},
		{[]string{"audit", "export", "--data=" + dir, "--since=-1"}, "--since"},
		{[]string{"audit", "export", "--data=" + dir, "extra"}, "want 0 argument"},
		{[]string{"audit", "checkpoint", "--data=" + dir}, "no checkpoint yet"},
		{[]string{"audit", "pubkey", "--data=" + dir}, "serve first starts"},
		{[]string{"audit", "verify", "--data=" + missing}, "data directory"},
		{[]string{"audit", "verify", "--data=" + dir, "--pubkey=garbage"}, "neither a verifier key nor a readable file"},
	} {
		_, stderr, code := runCLI(t, tc.args...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, stderr, tc.want)
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("verify created the missing data directory")
	}
	if out, _, code := runCLI(t, "audit", "help"); code != 0 || !strings.Contains(out, "airlock audit verify") {
		t.Errorf("audit help: %d %q", code, out)
	}
}

func TestAuditConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "airlock.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	resolve := func(path string) (Config, error) {
		fs := newFlagSet()
		r := configFlags(fs)
		if err := fs.Parse([]string{"--config", path}); err != nil {
			t.Fatal(err)
		}
		return r()
	}
	cfg, err := resolve(write(`audit:
  origin: airlock/prod
  key_file: keys/audit.key
  checkpoint_every: 50
  checkpoint_interval: 2s
  sinks:
    - {name: siem, type: http, url: "https://siem.example/ingest", secret: s, batch: 100}
    - {name: archive, type: file, path: archive/audit.jsonl}
`))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Audit
	if a.Origin != "airlock/prod" || a.KeyFile != filepath.Join(dir, "keys/audit.key") || a.CheckpointEvery != 50 ||
		a.CheckpointInterval != 2*time.Second || len(a.Sinks) != 2 || a.Sinks[1].Path != filepath.Join(dir, "archive/audit.jsonl") {
		t.Errorf("audit config %+v", a)
	}
	// A configured key file must exist: serve refuses to start without it.
	m := &Main{Config: DefaultConfig(), Stdout: io.Discard, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	m.Config.Listen, m.Config.Data = "127.0.0.1:0", filepath.Join(dir, "data")
	m.Config.Audit.KeyFile = filepath.Join(dir, "no-such.key")
	if err := m.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "audit.key_file") {
		if err == nil {
			m.Close()
		}
		t.Errorf("serve with a missing audit.key_file: %v", err)
	}
	if _, err := os.Stat(m.Config.Audit.KeyFile); err == nil {
		t.Errorf("serve created the configured key file")
	}
	if d := DefaultConfig(); d.Audit.CheckpointEvery != 1000 || d.Audit.CheckpointInterval != 10*time.Second || d.auditKeyFile() != filepath.Join(d.Data, "audit-signing.key") {
		t.Errorf("defaults %+v", d.Audit)
	}
	t.Setenv("AIRLOCK_AUDIT_KEY_FILE", "/run/secrets/audit.key")
	if cfg, err := resolve(write("audit: {key_file: x}\n")); err != nil || cfg.auditKeyFile() != "/run/secrets/audit.key" {
		t.Errorf("AIRLOCK_AUDIT_KEY_FILE: %v %v", cfg.Audit.KeyFile, err)
	}
	for _, tc := range []struct{ name, body, want string }{
		{"fail-every-0", "audit: {checkpoint_every: 0}", "checkpoint_every"},
		{"fail-interval", "audit: {checkpoint_interval: 2h}", "checkpoint_interval"},
		{"fail-origin-newline", "audit: {origin: \"a\\nb\"}", "origin"},
		{"fail-trusted-key", "audit: {trusted_keys: [nope]}", "trusted_keys"},
		{"fail-sink-type", "audit: {sinks: [{name: a, type: kafka}]}", "type must be"},
		{"fail-sink-http-plain", "audit: {sinks: [{name: a, type: http, url: \"http://siem.example\"}]}", "https"},
		{"fail-sink-file-no-path", "audit: {sinks: [{name: a, type: file}]}", "needs a path"},
		{"fail-sink-name", "audit: {sinks: [{name: \"A B\", type: file, path: x}]}", "name must match"},
		{"fail-sink-dup", "audit: {sinks: [{name: a, type: file, path: x}, {name: a, type: file, path: y}]}", "used twice"},
		{"fail-sink-batch", "audit: {sinks: [{name: a, type: file, path: x, batch: 20000}]}", "batch"},
		{"fail-unknown-key", "audit: {sinkz: []}", "sinkz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := resolve(write(tc.body + "\n")); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}

// TestAuditSinksFromServe checks that serve streams to a configured file
// sink and resumes after a restart without skipping or repeating.
func TestAuditSinksFromServe(t *testing.T) {
	dir := t.TempDir()
	sinkFile := filepath.Join(t.TempDir(), "siem", "audit.jsonl")
	mod := func(c *Config) {
		c.Audit.Sinks = []AuditSinkConfig{{Name: "archive", Type: "file", Path: sinkFile}}
	}
	lines := func() []string {
		f, err := os.Open(sinkFile)
		if err != nil {
			return nil
		}
		defer f.Close()
		var out []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			out = append(out, sc.Text())
		}
		return out
	}
	ctx := context.Background()
	s := startAuditServer(t, dir, mod)
	waitUntil(t, "the bootstrap events in the sink", func() bool {
		n, _ := s.m.Store.AuditTreeSize(ctx)
		return n > 0 && len(lines()) == int(n)
	})
	s.m.Close()
	s2 := startAuditServer(t, dir, mod)
	for i := range 5 {
		if err := s2.m.Audit.Record(ctx, airlock.AuditEvent{Type: "test.after_restart", RequestID: itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	n, _ := s2.m.Store.AuditTreeSize(ctx)
	waitUntil(t, "every event in the sink", func() bool { return len(lines()) == int(n) })
	for i, l := range lines() {
		if e, err := airlock.ParseAuditLeaf([]byte(l)); err != nil || e.Seq != int64(i+1) {
			t.Fatalf("sink line %d: %v %v", i, e, err)
		}
	}
}
