package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"airlock"
	"airlock/passkey/passkeytest"
	"airlock/postgres"
	"airlock/postgres/pgtest"
	"airlock/sqlite"
)

func TestStoreConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "airlock.yaml")
	os.WriteFile(file, []byte("store: sqlite:/from/file.db\n"), 0o600)
	resolve := func(args ...string) (Config, error) {
		fs := newFlagSet()
		r := configFlags(fs)
		if err := fs.Parse(args); err != nil {
			return Config{}, err
		}
		return r()
	}
	t.Setenv("AIRLOCK_STORE", "")
	cfg, err := resolve()
	if err != nil || cfg.Store != "" {
		t.Fatalf("default: %q %v", cfg.Store, err)
	}
	cfg, err = resolve("--config", file)
	if err != nil || cfg.Store != "sqlite:/from/file.db" {
		t.Fatalf("file: %q %v", cfg.Store, err)
	}
	t.Setenv("AIRLOCK_STORE", "postgres://airlock@db.example/airlock")
	cfg, err = resolve("--config", file)
	if err != nil || cfg.Store != "postgres://airlock@db.example/airlock" {
		t.Fatalf("env over file: %q %v", cfg.Store, err)
	}
	cfg, err = resolve("--config", file, "--store", "postgresql://airlock@db2.example/airlock?sslmode=verify-full")
	if err != nil || cfg.Store != "postgresql://airlock@db2.example/airlock?sslmode=verify-full" {
		t.Fatalf("flag over env: %q %v", cfg.Store, err)
	}
	t.Setenv("AIRLOCK_STORE", "")
	for _, tc := range []struct{ name, store, want string }{
		{"fail-unknown-scheme", "mysql://root:hunter2@db/airlock", "want sqlite:PATH"},
		{"fail-bare-path", "/var/lib/airlock/airlock.db", "want sqlite:PATH"},
		{"fail-sqlite-no-path", "sqlite:", "needs a database file path"},
		{"fail-malformed-postgres", "postgres://airlock:hunter2@[::1/airlock", "malformed PostgreSQL URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resolve("--store", tc.store)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("--store %q: %v, want an error saying %q", tc.store, err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

func TestRedactStore(t *testing.T) {
	for in, want := range map[string]string{
		"":                                        "",
		"sqlite:/var/lib/airlock.db":              "sqlite:/var/lib/airlock.db",
		"postgres://airlock:hunter2@db/airlock":   "postgres://airlock:xxxxx@db/airlock",
		"postgres://db/airlock?password=hunter2":  "postgres://db/airlock?password=xxxxx",
		"postgresql://airlock@db/airlock?sslmode": "postgresql://airlock@db/airlock?sslmode",
		"mysql://root:hunter2@db/airlock":         "mysql://root:xxxxx@db/airlock",
		"postgres://a:hunter2@[::1/x":             "(unparsable store URL)",
	} {
		if got := redactStore(in); got != want {
			t.Errorf("redactStore(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestOpenStoreKinds checks that the one store-opening function picks the
// store the configuration names.
func TestOpenStoreKinds(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Data = filepath.Join(dir, "data")
	s, err := openStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*sqlite.Store); !ok {
		t.Errorf("default store is %T, want *sqlite.Store", s)
	}
	s.Close()
	if info, err := os.Stat(filepath.Join(cfg.Data, "airlock.db")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("data-directory database: %v %v", info, err)
	}

	cfg.Store = "sqlite:" + filepath.Join(dir, "elsewhere", "airlock.db")
	s, err = openStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if info, err := os.Stat(filepath.Join(dir, "elsewhere", "airlock.db")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("sqlite:PATH database: %v %v", info, err)
	}

	t.Run("postgres", func(t *testing.T) {
		cfg.Store = pgtest.Schema(t)
		s, err := openStore(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, ok := s.(*postgres.Store); !ok {
			t.Errorf("postgres URL opened %T, want *postgres.Store", s)
		}
	})
	t.Run("fail-postgres-unreachable", func(t *testing.T) {
		cfg.Store = "postgres://airlock:hunter2@127.0.0.1:1/airlock?connect_timeout=2"
		_, err := openStore(ctx, cfg)
		if airlock.ErrorCode(err) != airlock.EUNAVAILABLE || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("unreachable PostgreSQL: %v, want EUNAVAILABLE without the password", err)
		}
	})
}

// startPostgresServer starts Airlock through Main on the PostgreSQL store
// at url, as `airlock serve --store URL` does.
func startPostgresServer(t *testing.T, url string, origins ...string) *cliServer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Origins = origins
	cfg.Listen = "127.0.0.1:" + itoa(freePort(t))
	cfg.Data = t.TempDir() // holds no database: the store is PostgreSQL
	cfg.Store = url
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

// TestServeOnPostgres runs the bootstrap and a passkey login against the
// PostgreSQL store, and `admin bootstrap --reissue --store` from the host.
func TestServeOnPostgres(t *testing.T) {
	url := pgtest.Schema(t)
	s := startPostgresServer(t, url)
	line := s.out.String()
	if !strings.HasPrefix(line, "bootstrap enrolment: "+s.origin+"/enrol?token=") {
		t.Fatalf("bootstrap line %q", line)
	}
	// No database there; only the signing keys (audit checkpoints, SSH
	// CA, grant tokens), made in the data directory unless their key_file
	// settings name shared ones.
	var names []string
	entries, _ := os.ReadDir(s.m.Config.Data)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "audit-signing.key grant-token.key sshca.key" {
		t.Errorf("the data directory holds %v, want only the three signing keys with --store postgres", names)
	}
	for _, key := range []string{"sshca.key_file", "grant_tokens.key_file"} {
		if !strings.Contains(s.logs.String(), "shared store without "+key) {
			t.Errorf("no warning about %s on a shared store", key)
		}
	}
	if !strings.Contains(s.logs.String(), `store="postgres://postgres@`) {
		t.Errorf("the start log does not name the store: %s", s.logs.String())
	}
	out, errOut, code := runCLI(t, "admin", "bootstrap", "--reissue", "--store", url, "--data", s.m.Config.Data, "--origin", s.origin)
	if code != 0 || !strings.HasPrefix(out, "bootstrap enrolment: "+s.origin+"/enrol?token=") {
		t.Fatalf("reissue on postgres: %d %q %q", code, out, errOut)
	}
	token := s.enrolAndLogin(strings.TrimSpace(strings.TrimPrefix(out, "bootstrap enrolment: ")))
	if token == "" {
		t.Fatal("no bearer token")
	}
	_, errOut, code = runCLI(t, "admin", "bootstrap", "--reissue", "--store", url, "--data", s.m.Config.Data, "--origin", s.origin)
	if code == 0 || !strings.Contains(errOut, "bootstrap is closed") {
		t.Fatalf("reissue with an admin: %d %q", code, errOut)
	}
	// Everything went to PostgreSQL.
	ctx := context.Background()
	pg, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if ok, err := pg.HasActiveTier0Admin(ctx); err != nil || !ok {
		t.Errorf("no tier-0 admin in PostgreSQL: %v %v", ok, err)
	}
	evs, err := pg.ListAudit(ctx, airlock.AuditFilter{Type: "auth."})
	if err != nil || len(evs) == 0 {
		t.Errorf("no auth events in PostgreSQL: %d %v", len(evs), err)
	}
	// A second start on the same database prints no bootstrap line.
	s.m.Close()
	if s2 := startPostgresServer(t, url); s2.out.Len() != 0 {
		t.Errorf("second start printed %q", s2.out.String())
	}
}

// TestCeremonyAcrossReplicas begins ceremonies on one replica and finishes
// them on another: their state lives in the shared store. A ceremony
// finished once cannot be finished again on any replica.
func TestCeremonyAcrossReplicas(t *testing.T) {
	url := pgtest.Schema(t)
	// Both replicas serve one origin, as behind a load balancer.
	lb := "http://localhost:" + itoa(freePort(t))
	a := startPostgresServer(t, url, lb)
	b := startPostgresServer(t, url, lb)
	link := strings.TrimSpace(strings.TrimPrefix(a.out.String(), "bootstrap enrolment: "))
	if link == "" || b.out.Len() != 0 {
		t.Fatalf("bootstrap lines: %q, %q (only the first replica on an empty store issues one)", a.out.String(), b.out.String())
	}
	auth := passkeytest.New()
	secret := link[strings.Index(link, "token=")+len("token="):]
	begin := a.post("/v1/enrol/begin", map[string]any{"token": secret})
	opts, _ := json.Marshal(begin["publicKey"])
	cred, _, err := auth.Register(a.origin, opts)
	if err != nil {
		t.Fatal(err)
	}
	b.post("/v1/enrol/finish", map[string]any{"ceremony": begin["ceremony"], "credential": json.RawMessage(cred)})

	begin = b.post("/v1/login/begin", map[string]any{})
	opts, _ = json.Marshal(begin["publicKey"])
	cred, err = auth.Assert(a.origin, opts)
	if err != nil {
		t.Fatal(err)
	}
	finish := map[string]any{"ceremony": begin["ceremony"], "credential": json.RawMessage(cred), "bearer": true}
	if tok, _ := a.post("/v1/login/finish", finish)["token"].(string); tok == "" {
		t.Fatal("login begun on b and finished on a gave no token")
	}
	// Replaying the finished ceremony on the other replica fails.
	code, body := b.postStatus("/v1/login/finish", finish)
	if code < 400 || !strings.Contains(body, "ceremony") {
		t.Fatalf("replayed ceremony on the other replica: %d %s", code, body)
	}
}

// postStatus posts body as JSON from the server's origin and returns the
// status and body, whatever the status.
func (s *cliServer) postStatus(path string, body any) (int, string) {
	s.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", s.base+path, bytes.NewReader(b))
	req.Header.Set("Origin", s.origin)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(raw)
}

// TestReplicasStartTogether starts three replicas at once on an empty
// database: all of them come up (one migrates while the others wait; a
// replica that loses the race to create the bootstrap account prints no
// link), and at least one bootstrap link is printed.
func TestReplicasStartTogether(t *testing.T) {
	url := pgtest.Schema(t)
	lb := "http://localhost:" + itoa(freePort(t))
	const n = 3
	mains := make([]*Main, n)
	outs := make([]*strings.Builder, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		cfg := DefaultConfig()
		cfg.Listen = "127.0.0.1:0"
		cfg.Data = t.TempDir()
		cfg.Store = url
		cfg.Origins = []string{lb}
		outs[i] = &strings.Builder{}
		mains[i] = &Main{Config: cfg, Stdout: outs[i], Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		wg.Go(func() { errs[i] = mains[i].Run(context.Background()) })
	}
	wg.Wait()
	links := 0
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d did not start: %v", i, err)
			continue
		}
		defer mains[i].Close()
		if strings.HasPrefix(outs[i].String(), "bootstrap enrolment: ") {
			links++
		}
	}
	if links == 0 {
		t.Errorf("no replica printed a bootstrap link")
	}
}

// TestRateLimitAcrossReplicas checks that the per-address limit on
// ceremony starts counts the starts on every replica together: it lives
// in the shared store, so spreading requests over replicas does not
// multiply it.
func TestRateLimitAcrossReplicas(t *testing.T) {
	url := pgtest.Schema(t)
	lb := "http://localhost:" + itoa(freePort(t))
	// A fixed clock keeps every start in one rate-limit window.
	clock := func() time.Time { return time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC) }
	var servers []*cliServer
	for range 2 {
		cfg := DefaultConfig()
		cfg.Listen = "127.0.0.1:0"
		cfg.Data = t.TempDir()
		cfg.Store = url
		cfg.Origins = []string{lb}
		cfg.CeremonyBeginPerMinute = 4
		s := &cliServer{t: t, logs: &syncBuffer{}, origin: lb}
		s.m = &Main{Config: cfg, Stdout: &s.out, Now: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		if err := s.m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.m.Close() })
		s.base = "http://" + s.m.Addr().String()
		servers = append(servers, s)
	}
	for i := range 4 {
		if code, body := servers[i%2].postStatus("/v1/login/begin", map[string]any{}); code != http.StatusOK {
			t.Fatalf("start %d on replica %d: %d %s", i+1, i%2, code, body)
		}
	}
	for i, s := range servers {
		if code, body := s.postStatus("/v1/login/begin", map[string]any{}); code != http.StatusTooManyRequests {
			t.Errorf("fifth start, on replica %d: %d %s; want 429 (4 per minute across replicas)", i, code, body)
		}
	}
}
