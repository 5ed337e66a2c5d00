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
	"strconv"
	"strings"
	"testing"

	"airlock/passkey/passkeytest"
)

// cliServer starts Airlock through Main on a free loopback port, the way
// `airlock serve` does, with logs captured.
type cliServer struct {
	t      *testing.T
	m      *Main
	out    bytes.Buffer
	logs   *syncBuffer
	base   string
	origin string
	client *http.Client
	// lastCookies are the cookies of the last post's answer.
	lastCookies []*http.Cookie
}

func startCLIServer(t *testing.T, dataDir string) *cliServer {
	t.Helper()
	port := freePort(t)
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:" + itoa(port)
	cfg.Data = dataDir
	s := &cliServer{t: t, logs: &syncBuffer{}}
	s.m = &Main{Config: cfg, Stdout: &s.out, Logger: slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if err := s.m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.m.Close() })
	s.base = "http://" + s.m.Addr().String()
	s.origin = s.m.Origin
	return s
}

func itoa(n int) string { return strconv.Itoa(n) }

func (s *cliServer) post(path string, body any) map[string]any {
	s.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", s.base+path, bytes.NewReader(b))
	req.Header.Set("Origin", s.origin)
	req.Header.Set("Content-Type", "application/json")
	client := s.client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	s.lastCookies = res.Cookies()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if res.StatusCode != 200 {
		s.t.Fatalf("POST %s: %d %s", path, res.StatusCode, raw)
	}
	return out
}

// enrolAndLogin completes the bootstrap link with a software authenticator
// and returns a bearer token for the admin.
func (s *cliServer) enrolAndLogin(link string) string {
	s.t.Helper()
	secret := link[strings.Index(link, "token=")+len("token="):]
	a := passkeytest.New()
	b := s.post("/v1/enrol/begin", map[string]any{"token": secret})
	opts, _ := json.Marshal(b["publicKey"])
	cred, _, err := a.Register(s.origin, opts)
	if err != nil {
		s.t.Fatal(err)
	}
	s.post("/v1/enrol/finish", map[string]any{"ceremony": b["ceremony"], "credential": json.RawMessage(cred)})
	b = s.post("/v1/login/begin", map[string]any{})
	opts, _ = json.Marshal(b["publicKey"])
	cred, err = a.Assert(s.origin, opts)
	if err != nil {
		s.t.Fatal(err)
	}
	f := s.post("/v1/login/finish", map[string]any{"ceremony": b["ceremony"], "credential": json.RawMessage(cred), "bearer": true})
	return f["token"].(string)
}

func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestServeBootstrapAdminCLI(t *testing.T) {
	dir := t.TempDir()
	s := startCLIServer(t, dir)
	line := s.out.String()
	if !strings.HasPrefix(line, "bootstrap enrolment: "+s.origin+"/enrol?token=") || strings.Count(line, "\n") != 1 {
		t.Fatalf("bootstrap line %q", line)
	}
	link := strings.TrimSpace(strings.TrimPrefix(line, "bootstrap enrolment: "))

	// While no admin exists, the operator can reissue from the host, and
	// the reissue retires the earlier link.
	out, errOut, code := runCLI(t, "admin", "bootstrap", "--reissue", "--data", dir, "--origin", s.origin)
	if code != 0 || !strings.HasPrefix(out, "bootstrap enrolment: "+s.origin+"/enrol?token=") {
		t.Fatalf("reissue: %d %q %q", code, out, errOut)
	}
	link2 := strings.TrimSpace(strings.TrimPrefix(out, "bootstrap enrolment: "))
	if link2 == link {
		t.Fatal("reissue returned the same link")
	}
	// The first link no longer works.
	req, _ := http.NewRequest("POST", s.base+"/v1/enrol/begin", strings.NewReader(`{"token":"`+link[strings.Index(link, "token=")+6:]+`"}`))
	req.Header.Set("Origin", s.origin)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusConflict || !strings.Contains(string(body), "already used") {
		t.Fatalf("superseded bootstrap link: %d %s", res.StatusCode, body)
	}
	token := s.enrolAndLogin(link2)

	// The admin CLI talks to the API with the bearer token.
	admin := []string{"admin", "--server", s.base, "--token", token}
	out, errOut, code = runCLI(t, append(admin, "users", "create", "--name", "dora", "--tier", "1", "--roles", "sre,dba")...)
	if code != 0 {
		t.Fatalf("users create: %d %s", code, errOut)
	}
	var u map[string]any
	if err := json.Unmarshal([]byte(out), &u); err != nil || u["name"] != "dora" || u["tier"] != float64(1) {
		t.Fatalf("users create output %q", out)
	}
	out, _, code = runCLI(t, append(admin, "devices", "create", "--name", "dora-laptop", "--owner", "dora", "--kind", "managed")...)
	var d map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil {
		t.Fatalf("devices create: %d %q", code, out)
	}
	devID := d["id"].(string)
	if _, errOut, code = runCLI(t, append(admin, "devices", "trust", devID)...); code != 0 {
		t.Fatalf("trust: %s", errOut)
	}
	out, _, code = runCLI(t, append(admin, "devices", "posture", "--disk-encrypted", "--screen-lock", devID)...)
	if code != 0 || !strings.Contains(out, `"compliant": true`) {
		t.Fatalf("posture: %d %s", code, out)
	}
	out, _, code = runCLI(t, append(admin, "enrol-token", "--user", "dora", "--device", devID)...)
	var tok map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &tok) != nil || !strings.HasPrefix(tok["url"].(string), s.origin+"/enrol?token=") {
		t.Fatalf("enrol-token: %d %s", code, out)
	}
	// A contractor needs an access window, which the CLI can give.
	_, errOut, code = runCLI(t, append(admin, "users", "create", "--name", "carl", "--kind", "contractor")...)
	if code == 0 || !strings.Contains(errOut, "access window") {
		t.Fatalf("contractor without window: %d %q", code, errOut)
	}
	out, errOut, code = runCLI(t, append(admin, "users", "create", "--name", "carl", "--kind", "contractor", "--tier", "2",
		"--window-from", "2026-11-01T00:00:00Z", "--window-until", "2026-12-01T00:00:00Z", "--window-days", "mon,tue,wed,thu,fri", "--window-hours", "8-18", "--window-tz", "Europe/Paris")...)
	if code != 0 || !strings.Contains(out, `"time_zone": "Europe/Paris"`) || !strings.Contains(out, `"end_hour": 18`) {
		t.Fatalf("contractor with window: %d %s %s", code, out, errOut)
	}
	_, errOut, code = runCLI(t, append(admin, "users", "create", "--name", "cora", "--kind", "contractor", "--window-days", "someday")...)
	if code == 0 || !strings.Contains(errOut, "unknown day") {
		t.Fatalf("bad weekday: %d %q", code, errOut)
	}
	// Errors are clear, on stderr, with a non-zero exit.
	_, errOut, code = runCLI(t, append(admin, "users", "create", "--name", "Not Valid")...)
	if code == 0 || !strings.Contains(errOut, "name is required") {
		t.Fatalf("bad name: %d %q", code, errOut)
	}
	_, errOut, code = runCLI(t, "admin", "--server", s.base, "users", "list")
	if code == 0 || !strings.Contains(errOut, "no token") {
		t.Fatalf("no token: %d %q", code, errOut)
	}
	_, errOut, code = runCLI(t, "admin", "--server", s.base, "--token", "wrong", "users", "list")
	if code == 0 || !strings.Contains(errOut, "unauthorized") {
		t.Fatalf("wrong token: %d %q", code, errOut)
	}

	// A tier-0 admin exists now: bootstrap is closed.
	_, errOut, code = runCLI(t, "admin", "bootstrap", "--reissue", "--data", dir, "--origin", s.origin)
	if code == 0 || !strings.Contains(errOut, "bootstrap is closed") {
		t.Fatalf("reissue with an admin: %d %q", code, errOut)
	}

	// No secret ever reaches the log.
	logs := s.logs.String()
	for _, secret := range []string{token, link[strings.Index(link, "token=")+6:], link2[strings.Index(link2, "token=")+6:], tok["token"].(string)} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a secret appears in the log")
		}
	}
}

func TestSecondStartPrintsNothing(t *testing.T) {
	dir := t.TempDir()
	s := startCLIServer(t, dir)
	if !strings.Contains(s.out.String(), "bootstrap enrolment: ") {
		t.Fatal("first start printed no bootstrap line")
	}
	s.m.Close()
	s2 := startCLIServer(t, dir)
	if s2.out.Len() != 0 {
		t.Fatalf("second start printed %q", s2.out.String())
	}
	info, err := os.Stat(filepath.Join(dir, "airlock.db"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("database mode %v %v", info.Mode(), err)
	}
}

func TestConfigPrecedenceAndValidation(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "airlock.yaml")
	os.WriteFile(file, []byte("listen: file:1\nrp_id: example.com\norigins: [\"https://example.com\"]\nsessions:\n  tier0: {absolute: 2h, idle: 10m}\n"), 0o600)
	resolve := func(env map[string]string, args ...string) (Config, error) {
		for k, v := range env {
			t.Setenv(k, v)
		}
		fs := newFlagSet()
		r := configFlags(fs)
		if err := fs.Parse(args); err != nil {
			return Config{}, err
		}
		return r()
	}
	cfg, err := resolve(nil, "--config", file)
	if err != nil || cfg.Listen != "file:1" || cfg.RPID != "example.com" || cfg.Sessions.Tier0.Idle.Minutes() != 10 || cfg.Data != "./airlock-data" {
		t.Fatalf("file: %+v %v", cfg, err)
	}
	cfg, err = resolve(map[string]string{"AIRLOCK_LISTEN": "env:2"}, "--config", file)
	if err != nil || cfg.Listen != "env:2" {
		t.Fatalf("env over file: %+v %v", cfg.Listen, err)
	}
	cfg, err = resolve(map[string]string{"AIRLOCK_LISTEN": "env:2"}, "--config", file, "--listen", "flag:3")
	if err != nil || cfg.Listen != "flag:3" {
		t.Fatalf("flag over env: %+v %v", cfg.Listen, err)
	}
	bad := []struct {
		name string
		yaml string
		args []string
	}{
		{"fail-unknown-key", "lissten: x\n", nil},
		{"fail-origin-outside-rpid", "", []string{"--rp-id", "example.com", "--origin", "https://evil.com"}},
		{"fail-http-origin", "", []string{"--rp-id", "example.com", "--origin", "http://example.com"}},
		{"fail-origin-with-path", "", []string{"--origin", "http://localhost:8080/x"}},
		{"fail-tls-half", "", []string{"--tls-cert", "a.pem"}},
		{"fail-idle-over-absolute", "sessions:\n  tier1: {absolute: 1h, idle: 2h}\n", nil},
		{"fail-bad-patch-level", "posture:\n  min_patch_level: soon\n", nil},
		{"fail-synced-tier0", "tiers:\n  - {allow_synced: true}\n  - {}\n  - {allow_synced: true}\n", nil},
		{"fail-tier0-over-aal3-limits", "sessions:\n  tier0: {absolute: 720h, idle: 24h}\n", nil},
		{"fail-tier1-idle-over-1h", "sessions:\n  tier1: {absolute: 24h, idle: 2h}\n", nil},
		{"fail-fresh-uv-too-long", "admin_fresh_uv: 720h\n", nil},
		{"fail-token-ttl-too-long", "enrolment_token_ttl: 8760h\n", nil},
		{"fail-ceremony-ttl-zero", "ceremony_ttl: 0s\n", nil},
		{"fail-negative-rate", "ceremony_begin_per_minute: -1\n", nil},
		{"fail-webhook-ftp", "webhook:\n  url: ftp://x/y\n", nil},
		{"fail-webhook-plain-http", "webhook:\n  url: http://hooks.example.com/x\n", nil},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(f, []byte(tc.yaml), 0o600)
			t.Setenv("AIRLOCK_LISTEN", "")
			if _, err := resolve(nil, append([]string{"--config", f}, tc.args...)...); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	rootsCfg := filepath.Join(dir, "roots.yaml")
	os.WriteFile(rootsCfg, []byte("tiers:\n  - {require_attestation: true, attestation_roots: [roots/ca.pem, /abs/ca.pem]}\n  - {}\n  - {allow_synced: true}\n"), 0o600)
	rc, err := resolve(map[string]string{"AIRLOCK_LISTEN": ""}, "--config", rootsCfg)
	if err != nil || rc.Tiers[0].AttestationRoots[0] != filepath.Join(dir, "roots/ca.pem") || rc.Tiers[0].AttestationRoots[1] != "/abs/ca.pem" {
		t.Fatalf("attestation roots not resolved against the config file: %v %v", rc.Tiers[0].AttestationRoots, err)
	}
	norm, err := resolve(map[string]string{"AIRLOCK_LISTEN": ""}, "--origin", "http://localhost:9999/")
	if err != nil || norm.Origins[0] != "http://localhost:9999" {
		t.Fatalf("trailing slash not normalised: %v %v", norm.Origins, err)
	}
	ok, err := resolve(map[string]string{"AIRLOCK_LISTEN": ""}, "--origin", "http://localhost:9999", "--origin", "http://127.0.0.1:9999")
	if err == nil {
		t.Fatalf("127.0.0.1 is not within rp_id localhost, accepted %v", ok.Origins)
	}
}
