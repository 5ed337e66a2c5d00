package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"airlock/passkey/passkeytest"
)

// adminAPI is a served Airlock with a signed-in bootstrap admin.
type adminAPI struct {
	s     *cliServer
	clock *testClock
	auth  *passkeytest.Authenticator
	token string
}

func startAdminAPI(t *testing.T) *adminAPI { return startAdminAPIWith(t, nil) }

// startAdminAPIWith is startAdminAPI with the configuration changed by mod.
func startAdminAPIWith(t *testing.T, mod func(*Config)) *adminAPI {
	t.Helper()
	clock := &testClock{}
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:" + itoa(freePort(t))
	cfg.Data = t.TempDir()
	if mod != nil {
		mod(&cfg)
	}
	s := &cliServer{t: t, logs: &syncBuffer{}}
	s.m = &Main{Config: cfg, Stdout: &s.out, Now: clock.Now, Logger: slog.New(slog.NewTextHandler(s.logs, nil))}
	if err := s.m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.m.Close() })
	s.base, s.origin = "http://"+s.m.Addr().String(), s.m.Origin
	link := strings.TrimSpace(strings.TrimPrefix(s.out.String(), "bootstrap enrolment: "))
	secret := link[strings.Index(link, "token=")+len("token="):]
	a := passkeytest.New()
	b := s.post("/v1/enrol/begin", map[string]any{"token": secret})
	opts, _ := json.Marshal(b["publicKey"])
	cred, _, err := a.Register(s.origin, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.post("/v1/enrol/finish", map[string]any{"ceremony": b["ceremony"], "credential": json.RawMessage(cred)})
	b = s.post("/v1/login/begin", map[string]any{})
	opts, _ = json.Marshal(b["publicKey"])
	cred, _ = a.Assert(s.origin, opts)
	f := s.post("/v1/login/finish", map[string]any{"ceremony": b["ceremony"], "credential": json.RawMessage(cred), "bearer": true})
	return &adminAPI{s: s, clock: clock, auth: a, token: f["token"].(string)}
}

// bearer sends an API request with the admin's token.
func (a *adminAPI) bearer(method, path string, body any) map[string]any {
	a.s.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, a.s.base+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+a.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.s.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if res.StatusCode != 200 {
		a.s.t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, raw)
	}
	return out
}

// stepUp confirms transaction txn as the browser would, with the admin's
// passkey, and returns the proof.
func (a *adminAPI) stepUp(txn string) string {
	a.s.t.Helper()
	b := a.bearer("POST", "/v1/stepup/begin", map[string]any{"transaction": txn})
	opts, _ := json.Marshal(b["publicKey"])
	cred, err := a.auth.Assert(a.s.origin, opts)
	if err != nil {
		a.s.t.Fatal(err)
	}
	f := a.bearer("POST", "/v1/stepup/finish", map[string]any{"ceremony": b["ceremony"], "credential": json.RawMessage(cred)})
	return f["proof"].(string)
}

// promptWriter collects stderr and reports the step-up transaction once
// printed.
type promptWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	url  chan<- string
	sent bool
}

var stepUpURL = regexp.MustCompile(`Open (\S+/stepup/(txn_[0-9a-f]+)) `)

func (w *promptWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if m := stepUpURL.FindStringSubmatch(w.buf.String()); m != nil && !w.sent {
		w.url <- m[2]
		w.sent = true
	}
	return len(p), nil
}

func (w *promptWriter) String() string { w.mu.Lock(); defer w.mu.Unlock(); return w.buf.String() }

func TestAdminCLIStepUp(t *testing.T) {
	a := startAdminAPI(t)
	admin := []string{"admin", "--server", a.s.base, "--token", a.token}

	// Fresh passkey verification: no step-up.
	out, errOut, code := runCLI(t, append(admin, "resources", "create", "--name", "wiki", "--tier", "2", "--labels", "env=prod,team=docs")...)
	if code != 0 || !strings.Contains(out, `"source": "api"`) {
		t.Fatalf("resources create: %d %s %s", code, out, errOut)
	}

	// Over 300 s later the change needs a step-up: the CLI prints the URL,
	// waits for the proof and repeats the identical request with it.
	a.clock.Advance(301 * time.Second)
	pr, pw := io.Pipe()
	stdin = pr
	defer func() { stdin = nil }()
	urls := make(chan string, 1)
	ew := &promptWriter{url: urls}
	var outb bytes.Buffer
	done := make(chan int)
	go func() {
		done <- run(append(admin, "users", "create", "--name", "zoe", "--tier", "2"), &outb, ew)
	}()
	var txn string
	select {
	case txn = <-urls:
	case c := <-done:
		t.Fatalf("CLI ended (%d) without asking for a step-up: %s", c, ew.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("no step-up prompt: %s", ew.String())
	}
	proof := a.stepUp(txn)
	if _, err := io.WriteString(pw, proof+"\n"); err != nil {
		t.Fatal(err)
	}
	if c := <-done; c != 0 || !strings.Contains(outb.String(), `"name": "zoe"`) {
		t.Fatalf("users create after step-up: %d %s %s", c, outb.String(), ew.String())
	}
	if strings.Contains(outb.String(), "stepup") {
		t.Errorf("the prompt went to stdout: %s", outb.String())
	}

	// No proof given (EOF): nothing changes, a clear error.
	a.clock.Advance(301 * time.Second)
	stdin = strings.NewReader("")
	_, errOut, code = runCLI(t, append(admin, "users", "create", "--name", "yann")...)
	if code == 0 || !strings.Contains(errOut, "no step-up proof given") {
		t.Fatalf("users create without proof: %d %s", code, errOut)
	}
	users := a.bearer("GET", "/v1/admin/users", nil)["users"].([]any)
	for _, u := range users {
		if u.(map[string]any)["name"] == "yann" {
			t.Fatal("user created without the step-up")
		}
	}

	// A wrong proof: refused, nothing changes.
	stdin = strings.NewReader("not-a-proof\n")
	_, errOut, code = runCLI(t, append(admin, "users", "create", "--name", "yann")...)
	if code == 0 || !strings.Contains(errOut, "step-up proof is unknown") {
		t.Fatalf("users create with a bad proof: %d %s", code, errOut)
	}
}

func TestAdminCLIExceptionsResources(t *testing.T) {
	a := startAdminAPI(t)
	admin := []string{"admin", "--server", a.s.base, "--token", a.token}
	out, errOut, code := runCLI(t, append(admin, "users", "create", "--name", "ops1", "--tier", "1")...)
	if code != 0 {
		t.Fatalf("%d %s", code, errOut)
	}
	out, errOut, code = runCLI(t, append(admin, "exceptions", "create", "--user", "ops1", "--action", "deploy.prod", "--resource", "ci",
		"--effect", "skip_step_up", "--owner", "platform", "--reason", "CHG-7", "--ttl", "2h")...)
	if code != 0 || !strings.Contains(out, `"effect": "skip_step_up"`) || !strings.Contains(out, `"live": true`) {
		t.Fatalf("exceptions create: %d %s %s", code, out, errOut)
	}
	var x struct{ ID string }
	_ = json.Unmarshal([]byte(out), &x)
	if out, _, code = runCLI(t, append(admin, "exceptions", "list")...); code != 0 || !strings.Contains(out, x.ID) {
		t.Fatalf("exceptions list: %d %s", code, out)
	}
	for _, bad := range [][]string{
		{"exceptions", "create", "--effect", "skip_step_up", "--owner", "o", "--reason", "r"},                                                     // no expiry
		{"exceptions", "create", "--effect", "skip_step_up", "--owner", "o", "--reason", "r", "--ttl", "1h", "--expires", "2030-01-01T00:00:00Z"}, // both
		{"exceptions", "create", "--effect", "skip_step_up", "--owner", "o", "--ttl", "1h"},                                                       // no reason (server)
		{"resources", "create", "--name", "x", "--tier", "2", "--labels", "novalue"},
		{"exceptions", "delete"},
	} {
		if _, errOut, code := runCLI(t, append(admin, bad...)...); code == 0 || errOut == "" {
			t.Errorf("%v accepted", bad)
		}
	}
	if _, errOut, code = runCLI(t, append(admin, "exceptions", "delete", x.ID)...); code != 0 {
		t.Fatalf("exceptions delete: %d %s", code, errOut)
	}
	if out, _, code = runCLI(t, append(admin, "resources", "list")...); code != 0 || !strings.Contains(out, `"name": "vault-prod"`) {
		t.Fatalf("resources list: %d %s", code, out)
	}
	if out, _, code = runCLI(t, append(admin, "catalog")...); code != 0 || !strings.Contains(out, "airlock.exception.create") {
		t.Fatalf("catalog: %d %s", code, out)
	}
	// decide as one's own session.
	out, errOut, code = runCLI(t, append(admin, "decide", "--action", "payments.transfer", "--resource", "payments", "--params", `{"amount":"1.00"}`)...)
	if code != 0 || !strings.Contains(out, `"decision": "step_up"`) {
		t.Fatalf("decide: %d %s %s", code, out, errOut)
	}
	if _, errOut, code = runCLI(t, append(admin, "policy-reload")...); code == 0 || !strings.Contains(errOut, "policy_dir") {
		t.Fatalf("policy-reload without policy_dir: %d %s", code, errOut)
	}
}
