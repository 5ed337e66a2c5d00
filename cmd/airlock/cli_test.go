package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"airlock"
	"airlock/dpop"
	"airlock/internal/sshdtest"
	"airlock/passkey/passkeytest"
)

// cliE2E drives a real Airlock (Main) over HTTP for the CLI tests: it
// plays the browser and the other people, while the CLI runs in-process
// through run(), exactly as the binary would.
type cliE2E struct {
	t *testing.T
	s *cliServer
}

// api sends a JSON request as a browser page (Origin set) with an optional
// bearer token and returns the status and the decoded answer.
func (e *cliE2E) api(method, path string, body any, bearer string) (int, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.s.base+path, rd)
	req.Header.Set("Origin", e.s.origin)
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if out == nil {
		out = map[string]any{"raw": string(raw)}
	}
	return res.StatusCode, out
}

func (e *cliE2E) must(want int, method, path string, body any, bearer string) map[string]any {
	e.t.Helper()
	st, out := e.api(method, path, body, bearer)
	if st != want {
		e.t.Fatalf("%s %s: %d, want %d: %v", method, path, st, want, out)
	}
	return out
}

// login signs in with a passkey and returns the session's bearer token.
func (e *cliE2E) login(a *passkeytest.Authenticator) string {
	e.t.Helper()
	b := e.must(200, "POST", "/v1/login/begin", map[string]any{}, "")
	opts, _ := json.Marshal(b["publicKey"])
	cred, err := a.Assert(e.s.origin, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	f := e.must(200, "POST", "/v1/login/finish", map[string]any{"ceremony": b["ceremony"], "credential": json.RawMessage(cred), "bearer": true}, "")
	return f["token"].(string)
}

func (e *cliE2E) enrol(a *passkeytest.Authenticator, secret string) {
	e.t.Helper()
	b := e.must(200, "POST", "/v1/enrol/begin", map[string]any{"token": secret}, "")
	opts, _ := json.Marshal(b["publicKey"])
	cred, _, err := a.Register(e.s.origin, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.must(200, "POST", "/v1/enrol/finish", map[string]any{"ceremony": b["ceremony"], "credential": json.RawMessage(cred)}, "")
}

// person creates a user with a compliant managed device, enrols a passkey
// for them and returns their authenticator.
func (e *cliE2E) person(admin, name string, tier int, roles []string) *passkeytest.Authenticator {
	e.t.Helper()
	u := e.must(201, "POST", "/v1/admin/users", map[string]any{"name": name, "tier": tier, "roles": roles}, admin)
	uid := u["id"].(string)
	d := e.must(201, "POST", "/v1/admin/devices", map[string]any{"name": "laptop-" + name, "owner": uid, "kind": "managed"}, admin)
	dev := d["id"].(string)
	e.must(200, "PATCH", "/v1/admin/devices/"+dev, map[string]any{"trust": "trusted"}, admin)
	e.must(200, "PUT", "/v1/admin/devices/"+dev+"/posture", map[string]any{"managed": true, "disk_encrypted": true, "screen_lock": true, "edr_running": true}, admin)
	tok := e.must(201, "POST", "/v1/admin/enrolment-tokens", map[string]any{"user": uid, "device": dev}, admin)
	a := passkeytest.New()
	e.enrol(a, tok["token"].(string))
	return a
}

// cliRun runs the CLI in a goroutine; the result arrives on the channel.
type cliRun struct {
	stdout, stderr *syncBuffer
	code           chan int
}

func startCLI(args ...string) *cliRun {
	r := &cliRun{stdout: &syncBuffer{}, stderr: &syncBuffer{}, code: make(chan int, 1)}
	go func() { r.code <- run(args, r.stdout, r.stderr) }()
	return r
}

func (r *cliRun) wait(t *testing.T) int {
	t.Helper()
	select {
	case c := <-r.code:
		return c
	case <-time.After(60 * time.Second):
		t.Fatalf("the CLI did not finish; stderr:\n%s", r.stderr.String())
		return -1
	}
}

// waitOutput waits until re matches what the CLI wrote to stderr.
func (r *cliRun) waitOutput(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(r.stderr.String()); m != nil {
			return m
		}
		select {
		case c := <-r.code:
			t.Fatalf("the CLI ended (%d) before printing %s; stderr:\n%s", c, re, r.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("the CLI never printed %s; stderr:\n%s", re, r.stderr.String())
	return nil
}

var loginURLRe = regexp.MustCompile(`(http://\S+/cli/login\?\S+)`)

// cliLogin runs `airlock login --no-browser` and plays the browser's part:
// the page, a fresh passkey sign-in, the authorisation, the redirect to
// the CLI's loopback listener.
func (e *cliE2E) cliLogin(a *passkeytest.Authenticator) {
	e.t.Helper()
	r := startCLI("login", "--no-browser", "--server", e.s.origin, "--timeout", "1m")
	loginURL := r.waitOutput(e.t, loginURLRe)[1]
	u, err := url.Parse(loginURL)
	if err != nil {
		e.t.Fatal(err)
	}
	q := u.Query()
	// The page shows the key the CLI printed.
	page, err := http.Get(e.s.base + u.RequestURI())
	if err != nil {
		e.t.Fatal(err)
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != 200 || !bytes.Contains(html, []byte(q.Get("jkt"))) || !strings.Contains(r.stderr.String(), q.Get("jkt")) {
		e.t.Fatalf("login page %d does not show the key %s", page.StatusCode, q.Get("jkt"))
	}
	browser := e.login(a) // the fresh sign-in on the page
	port, _ := strconv.Atoi(q.Get("port"))
	auth := e.must(200, "POST", "/v1/cli/authorize", map[string]any{"port": port, "state": q.Get("state"), "jkt": q.Get("jkt")}, browser)
	res, err := http.Get(auth["redirect"].(string))
	if err != nil {
		e.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		e.t.Fatalf("callback: %d", res.StatusCode)
	}
	if c := r.wait(e.t); c != 0 {
		e.t.Fatalf("airlock login exited %d:\n%s", c, r.stderr.String())
	}
}

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("airlock %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// TestCLIEndToEnd is issue 5's terminal path against a real server and a
// real OpenSSH sshd: login (loopback, key-bound token), request with
// approval by another person, grants, ssh running a command, the sshd log
// joined to the audit record, end, and Airlock refusing a certificate for
// the ended grant; the token without its key is refused.
func TestCLIEndToEnd(t *testing.T) {
	sshdtest.Require(t)
	cfgDir := filepath.Join(t.TempDir(), "airlock")
	t.Setenv("AIRLOCK_CONFIG_DIR", cfgDir)
	t.Setenv("AIRLOCK_SERVER", "")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	defer func(d time.Duration) { pollInterval = d }(pollInterval)
	pollInterval = 20 * time.Millisecond
	defer func(r io.Reader) { stdin = r }(stdin)
	stdin = strings.NewReader("")

	s := startCLIServer(t, t.TempDir())
	e := &cliE2E{t: t, s: s}
	adminKey := passkeytest.New()
	e.enrol(adminKey, s.m.BootstrapURL[strings.Index(s.m.BootstrapURL, "token=")+len("token="):])
	admin := e.login(adminKey)
	alice := e.person(admin, "alice", 1, nil)
	bob := e.person(admin, "bob", 1, []string{"approvers"})

	// Not logged in yet: a clear error.
	if _, errOut, code := runCLI(t, "grants"); code != 1 || !strings.Contains(errOut, "run airlock login") {
		t.Fatalf("grants before login: %d %s", code, errOut)
	}

	e.cliLogin(alice)
	st, err := loadCLIState()
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(cfgDir, cliConfigFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("cli.json mode %v", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(cfgDir); fi.Mode().Perm() != 0o700 {
		t.Errorf("config dir mode %v", fi.Mode().Perm())
	}
	if st.User != "alice" || st.Server != s.origin || st.ExpiresAt.IsZero() {
		t.Fatalf("state %+v", st)
	}

	t.Run("stolen-token-without-its-key", func(t *testing.T) {
		if code, _ := e.api("GET", "/v1/session", nil, st.Token); code != 401 {
			t.Errorf("token as Bearer: %d", code)
		}
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		proof, _ := dpop.Proof(other, "GET", s.origin+"/v1/session", st.Token, time.Now())
		req, _ := http.NewRequest("GET", s.base+"/v1/session", nil)
		req.Header.Set("Authorization", "DPoP "+st.Token)
		req.Header.Set("DPoP", proof)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 401 {
			t.Errorf("token with a proof by another key: %d", res.StatusCode)
		}
	})

	// Request dba@db-prod: approval required; bob approves while the CLI
	// waits.
	req := startCLI("request", "--for", "30m", "--reason", "fix replication lag", "--ticket", "OPS-7", "dba@db-prod")
	m := req.waitOutput(t, regexp.MustCompile(`(http://\S+/approve/(req_\S+))`))
	reqID := m[2]
	bobTok := e.login(bob)
	b := e.must(200, "POST", "/v1/approval/begin", map[string]any{"request": reqID}, bobTok)
	opts, _ := json.Marshal(b["publicKey"])
	cred, err := bob.Assert(s.origin, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.must(200, "POST", "/v1/approval/finish", map[string]any{"ceremony": b["ceremony"], "credential": json.RawMessage(cred)}, bobTok)
	if c := req.wait(t); c != 0 {
		t.Fatalf("request exited %d:\n%s", c, req.stderr.String())
	}
	grantID := strings.TrimSpace(req.stdout.String())
	if !strings.HasPrefix(grantID, airlock.PrefixGrant) {
		t.Fatalf("request printed %q on stdout", grantID)
	}
	if !strings.Contains(req.stderr.String(), "Approved") {
		t.Errorf("no progress on stderr:\n%s", req.stderr.String())
	}

	var listed []map[string]any
	if err := json.Unmarshal([]byte(runOK(t, "grants", "--json")), &listed); err != nil || len(listed) != 1 || listed[0]["id"] != grantID {
		t.Fatalf("grants --json: %v %v", listed, err)
	}
	if out := runOK(t, "grants"); !strings.Contains(out, grantID) || !strings.Contains(out, "dba@db-prod") {
		t.Errorf("grants table:\n%s", out)
	}

	// A real sshd trusting Airlock's CA, accepting the grant's principal.
	caCode, caBody := e.api("GET", "/v1/sshca/pubkey", nil, "")
	ca, _, _, _, err := ssh.ParseAuthorizedKey([]byte(caBody["raw"].(string)))
	if caCode != 200 || err != nil {
		t.Fatalf("CA key: %d %v %v", caCode, caBody, err)
	}
	srv := sshdtest.Start(t, sshdtest.Options{TrustedCAKeys: []ssh.PublicKey{ca}, Principals: []string{"dba@db-prod"}})
	sshArgs := func(extra ...string) []string {
		a := []string{"ssh", "-F", "/dev/null", "-p", strconv.Itoa(srv.Port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
			"-o", "UserKnownHostsFile=" + srv.KnownHostsFile(), "-o", "GlobalKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"}
		return append(a, extra...)
	}
	out := runOK(t, sshArgs(srv.User+"@127.0.0.1", "echo", "hello-from-sshd")...)
	if out != "hello-from-sshd\n" {
		t.Fatalf("ssh printed %q", out)
	}
	// The key and certificate were removed.
	if left, _ := filepath.Glob(filepath.Join(tmp, "airlock-ssh-*")); len(left) != 0 {
		t.Errorf("temporary key left behind: %v", left)
	}

	// The join: sshd's "ID <key id> (serial N)" is the audit record's.
	accepted := regexp.MustCompile(`Accepted publickey for \S+ .* ID (\S+) \(serial (\d+)\)`)
	line, err := srv.WaitLog(accepted, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	lm := accepted.FindStringSubmatch(line)
	if lm[1] != "alice/"+grantID {
		t.Errorf("sshd logged key id %q, want alice/%s", lm[1], grantID)
	}
	evs, err := s.m.Store.ListAudit(context.Background(), airlock.AuditFilter{Type: "sshca.certificate.issued", GrantID: grantID})
	if err != nil {
		t.Fatal(err)
	}
	joined := false
	for _, ev := range evs {
		if ev.Outcome == airlock.OutcomeSuccess && fmt.Sprint(ev.Details["serial"]) == lm[2] && ev.SessionID == st.Session {
			joined = true
		}
	}
	if !joined {
		t.Errorf("no sshca.certificate.issued for grant %s, serial %s, CLI session %s in %d events", grantID, lm[2], st.Session, len(evs))
	}

	// ssh's exit status is airlock's.
	if _, errOut, code := runCLI(t, sshArgs(srv.User+"@127.0.0.1", "exit 7")...); code != 7 {
		t.Errorf("exit status %d, want 7: %s", code, errOut)
	}
	// Words after the destination are the remote command, never options of
	// the local ssh (which reads options after the destination unless "--"
	// ended them): no local ProxyCommand from a command line.
	marker := filepath.Join(t.TempDir(), "proxy-command-ran")
	runCLI(t, sshArgs(srv.User+"@127.0.0.1", "-oProxyCommand=touch "+marker)...)
	if _, err := os.Stat(marker); err == nil {
		t.Error("a remote command word became a local ssh option (ProxyCommand ran)")
	}

	if out := runOK(t, "end", grantID); strings.TrimSpace(out) != grantID {
		t.Errorf("end printed %q", out)
	}
	// After the end, Airlock refuses a new certificate for the grant …
	if _, errOut, code := runCLI(t, sshArgs("--grant", grantID, srv.User+"@127.0.0.1", "true")...); code != 1 || !strings.Contains(errOut, "no SSH certificate") {
		t.Errorf("ssh --grant after end: exit %d: %s", code, errOut)
	}
	// … and there is no grant to pick.
	if _, errOut, code := runCLI(t, sshArgs(srv.User+"@127.0.0.1", "true")...); code != 1 || !strings.Contains(errOut, "no active grant") {
		t.Errorf("ssh after end: exit %d: %s", code, errOut)
	}

	// --no-wait prints the request id; a denial ends the waiting CLI with
	// the approver's reason and exit status 1.
	if out := runOK(t, "request", "--no-wait", "--reason", "later", "dba@db-prod"); !strings.HasPrefix(strings.TrimSpace(out), airlock.PrefixAccessRequest) {
		t.Errorf("--no-wait printed %q", out)
	}
	req = startCLI("request", "--reason", "again", "dba@db-prod")
	reqID = req.waitOutput(t, regexp.MustCompile(`/approve/(req_\S+)`))[1]
	e.must(200, "POST", "/v1/elevation/requests/"+reqID+"/deny", map[string]any{"reason": "use the replica"}, bobTok)
	if c := req.wait(t); c != 1 || !strings.Contains(req.stderr.String(), "use the replica") || req.stdout.String() != "" {
		t.Errorf("denied request: exit %d, stdout %q\n%s", c, req.stdout.String(), req.stderr.String())
	}
}
