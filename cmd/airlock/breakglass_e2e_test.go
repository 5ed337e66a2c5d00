package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"airlock"
	"airlock/audit"
	"airlock/breakglass"
	"airlock/decide"
	"airlock/notify"
	"airlock/passkey"
	"airlock/passkey/passkeytest"
	"airlock/postgres/pgtest"
	"airlock/session"
)

// tcpProxy stands between Airlock and PostgreSQL so that a test can stop
// the store for real while Airlock keeps running: Stop closes the listener
// and every proxied connection (new connections are refused), Start
// listens again on the same address.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
}

// startProxy forwards a fresh loopback port to target.
func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{t: t, target: target, addr: "127.0.0.1:0", conns: map[net.Conn]struct{}{}}
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// Start listens (again) and forwards every accepted connection.
func (p *tcpProxy) Start() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy listen %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
}

func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *tcpProxy) forward(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c) || !p.track(up) {
		c.Close()
		up.Close()
		return
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
}

// Stop closes the listener and cuts every connection through the proxy.
func (p *tcpProxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// alertReceiver is an alert target that checks every alert's signature.
type alertReceiver struct {
	t      *testing.T
	secret string
	srv    *httptest.Server
	mu     sync.Mutex
	alerts []breakglass.Alert
}

func newAlertReceiver(t *testing.T, secret string) *alertReceiver {
	r := &alertReceiver{t: t, secret: secret}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		ts := req.Header.Get("X-Airlock-Timestamp")
		if req.Header.Get("X-Airlock-Signature") != "sha256="+notify.Sign(r.secret, ts, body) {
			t.Errorf("alert with a bad signature: %s", body)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var a breakglass.Alert
		if err := json.Unmarshal(body, &a); err != nil || a.ID == "" || req.Header.Get("X-Airlock-Alert-Id") != a.ID {
			t.Errorf("alert body %s: %v", body, err)
		}
		r.mu.Lock()
		r.alerts = append(r.alerts, a)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// forEvent returns the alerts received for break-glass event id, one per
// alert id: deliveries may repeat (the retry loop can resend an alert
// whose first delivery is still being recorded), and receivers dedupe on
// the id, as docs/breakglass.md tells them to.
func (r *alertReceiver) forEvent(id string) []breakglass.Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []breakglass.Alert
	seen := map[string]bool{}
	for _, a := range r.alerts {
		if a.EventID == id && !seen[a.ID] {
			seen[a.ID] = true
			out = append(out, a)
		}
	}
	return out
}

// startServerWith runs Main with cfg (Listen and origins derived) and
// returns it as a cliServer.
func startServerWith(t *testing.T, cfg Config) *cliServer {
	t.Helper()
	if cfg.Listen == "" || cfg.Listen == DefaultConfig().Listen {
		cfg.Listen = "127.0.0.1:" + itoa(freePort(t))
	}
	s := &cliServer{t: t, logs: &syncBuffer{}}
	s.m = &Main{Config: cfg, Stdout: &s.out, Logger: slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if err := s.m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { s.m.Close() }) })
	s.base = "http://" + s.m.Addr().String()
	s.origin = s.m.Origin
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", s.logs.String())
		}
	})
	return s
}

// status POSTs body to path and returns the status code and the decoded
// answer, without failing on an error status.
func (s *cliServer) status(path, bearer string, body any) (int, map[string]any) {
	s.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", s.base+path, bytes.NewReader(b))
	req.Header.Set("Origin", s.origin)
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, out
}

// setUpBreakGlassAccount creates the break-glass account name on a device
// of its own through the admin CLI and enrols a sealed (device-bound)
// passkey for it; it returns the authenticator holding it.
func setUpBreakGlassAccount(t *testing.T, s *cliServer, adminToken, name string) *passkeytest.Authenticator {
	t.Helper()
	admin := []string{"admin", "--server", s.base, "--token", adminToken}
	if _, errOut, code := runCLI(t, append(admin, "users", "create", "--name", name, "--kind", "breakglass", "--tier", "0")...); code != 0 {
		t.Fatalf("users create: %s", errOut)
	}
	out, errOut, code := runCLI(t, append(admin, "devices", "create", "--name", name+"-desk", "--owner", name, "--kind", "managed")...)
	var d map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil {
		t.Fatalf("devices create: %s %s", out, errOut)
	}
	dev := d["id"].(string)
	if _, errOut, code := runCLI(t, append(admin, "devices", "trust", dev)...); code != 0 {
		t.Fatalf("trust: %s", errOut)
	}
	if _, errOut, code := runCLI(t, append(admin, "devices", "posture", "--disk-encrypted", "--screen-lock", dev)...); code != 0 {
		t.Fatalf("posture: %s", errOut)
	}
	out, errOut, code = runCLI(t, append(admin, "enrol-token", "--user", name, "--device", dev)...)
	var tok map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &tok) != nil {
		t.Fatalf("enrol-token: %s %s", out, errOut)
	}
	sealed := passkeytest.New() // BE=0: a hardware key
	b := s.post("/v1/enrol/begin", map[string]any{"token": tok["token"]})
	opts, _ := json.Marshal(b["publicKey"])
	cred, _, err := sealed.Register(s.origin, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.post("/v1/enrol/finish", map[string]any{"ceremony": b["ceremony"], "credential": json.RawMessage(cred)})
	return sealed
}

// enrolAdmin completes the bootstrap link like enrolAndLogin and also
// returns the admin's authenticator.
func enrolAdmin(t *testing.T, s *cliServer) (string, *passkeytest.Authenticator) {
	t.Helper()
	link := s.m.BootstrapURL
	a := passkeytest.New()
	b := s.post("/v1/enrol/begin", map[string]any{"token": link[strings.Index(link, "token=")+len("token="):]})
	opts, _ := json.Marshal(b["publicKey"])
	cred, _, err := a.Register(s.origin, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.post("/v1/enrol/finish", map[string]any{"ceremony": b["ceremony"], "credential": json.RawMessage(cred)})
	b = s.post("/v1/login/begin", map[string]any{})
	opts, _ = json.Marshal(b["publicKey"])
	if cred, err = a.Assert(s.origin, opts); err != nil {
		t.Fatal(err)
	}
	f := s.post("/v1/login/finish", map[string]any{"ceremony": b["ceremony"], "credential": json.RawMessage(cred), "bearer": true})
	return f["token"].(string), a
}

// subjectOf is the decide.Subject of a signed-in session, as the HTTP
// edge builds it.
func subjectOf(t *testing.T, s *cliServer, token string) decide.Subject {
	t.Helper()
	ctx := context.Background()
	sess, err := s.m.Store.FindSessionByTokenHash(ctx, session.HashToken(token))
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.m.Store.FindUserByID(ctx, sess.UserID)
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.m.Store.FindDeviceByID(ctx, sess.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	return decide.Subject{Session: sess, User: u, Device: d}
}

var e2eMeta = passkey.Meta{IP: "127.0.0.1", UserAgent: "breakglass-e2e"}

// bgUse is the answer to a break-glass use over HTTP.
type bgUse struct {
	code    int
	message string // the error message when code is not 200
	token   string
	event   map[string]any
}

// useBreakGlass runs one break-glass use of account with the sealed key
// over HTTP: POST /v1/breakglass/begin, then /v1/breakglass/finish.
func useBreakGlass(t *testing.T, s *cliServer, account, justification string, key *passkeytest.Authenticator) bgUse {
	t.Helper()
	code, b := s.status("/v1/breakglass/begin", "", map[string]any{"account": account, "justification": justification})
	if code != http.StatusOK {
		return bgUse{code: code, message: errMessage(b)}
	}
	opts, _ := json.Marshal(b)
	resp, err := key.Assert(s.origin, opts)
	if err != nil {
		t.Fatal(err)
	}
	code, f := s.status("/v1/breakglass/finish", "", map[string]any{"ceremony": b["ceremony"], "credential": json.RawMessage(resp)})
	if code != http.StatusOK {
		return bgUse{code: code, message: errMessage(f)}
	}
	tok, _ := f["token"].(string)
	ev, _ := f["event"].(map[string]any)
	return bgUse{code: code, token: tok, event: ev}
}

// errMessage is the message of an error answer.
func errMessage(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// bgDecide asks POST /v1/decide for a break-glass session.
func bgDecide(t *testing.T, s *cliServer, token, action, resource string) string {
	t.Helper()
	code, d := s.status("/v1/decide", "", map[string]any{"session": token, "action": action, "resource": resource})
	if code != http.StatusOK {
		t.Fatalf("decide %s on %s: %d %v", action, resource, code, d)
	}
	out, _ := d["decision"].(string)
	return out
}

// auditEvents returns the audit log through `airlock audit export`.
func auditEvents(t *testing.T, store, data string) []airlock.AuditEvent {
	t.Helper()
	out, errOut, code := runCLI(t, "audit", "export", "--store", store, "--data", data)
	if code != 0 {
		t.Fatalf("audit export: %s", errOut)
	}
	var evs []airlock.AuditEvent
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		e, err := airlock.ParseAuditLeaf([]byte(line))
		if err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		evs = append(evs, *e)
	}
	return evs
}

// TestBreakGlassStoreStoppedE2E is the issue's "break-glass with the store
// stopped": Airlock on PostgreSQL through a proxy the test cuts. With the
// store stopped a sealed key still opens a break-glass session (checked
// against the exported static credential file), the signed alert reaches
// the receiver before the token is returned, decisions follow the
// break-glass scopes, a second use is refused (the local file locks the
// account) and the normal login fails. When the store is back the local
// audit file is merged into the log (verified with `airlock audit verify`)
// and the account stays locked until reviewed.
func TestBreakGlassStoreStoppedE2E(t *testing.T) {
	direct := pgtest.Schema(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startProxy(t, u.Host)
	u.Host = proxy.addr
	storeURL := pgtest.WithParam(u.String(), "connect_timeout", "2")

	receiver := newAlertReceiver(t, "alert-secret")
	data := t.TempDir()
	cfg := DefaultConfig()
	cfg.Data, cfg.Store = data, storeURL
	cfg.BreakGlass.Scopes = []string{"dba@db-prod"}
	cfg.BreakGlass.Duration = 30 * time.Minute
	cfg.BreakGlass.Alerts = []BreakGlassAlert{{URL: receiver.srv.URL + "/alert", Secret: "alert-secret"}}
	cfg.BreakGlass.SweepInterval = 100 * time.Millisecond

	// Set-up: the admin creates the account, the sealed key is enrolled,
	// the operator exports the static file and restarts with it.
	s := startServerWith(t, cfg)
	if s.m.BreakGlass == nil {
		t.Fatal("break-glass not enabled")
	}
	adminToken, adminKey := enrolAdmin(t, s)
	sealed := setUpBreakGlassAccount(t, s, adminToken, "bg-ops")
	file, errOut, code := runCLI(t, "breakglass", "export", "--store", storeURL, "--data", data)
	if code != 0 {
		t.Fatalf("breakglass export: %s", errOut)
	}
	creds, err := breakglass.ParseCredentials([]byte(file))
	if err != nil || len(creds.Accounts) != 1 || creds.Accounts[0].Name != "bg-ops" || len(creds.Accounts[0].Credentials) != 1 {
		t.Fatalf("exported file %s: %v", file, err)
	}
	cfg.BreakGlass.CredentialsFile = filepath.Join(t.TempDir(), "breakglass.json")
	if err := os.WriteFile(cfg.BreakGlass.CredentialsFile, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	s.m.Close()
	cfg.Listen = "127.0.0.1:" + itoa(freePort(t))
	s = startServerWith(t, cfg)

	// The store stops.
	proxy.Stop()
	if err := s.m.Store.Ping(context.Background()); airlock.ErrorCode(err) != airlock.EUNAVAILABLE {
		t.Fatalf("store still answers through the stopped proxy: %v", err)
	}
	if code, body := s.status("/v1/login/begin", "", map[string]any{}); code == http.StatusOK {
		t.Fatalf("normal login began with the store stopped: %v", body)
	}

	// A normal account is not a break-glass account, also offline.
	if u := useBreakGlass(t, s, "admin", "the store is down", sealed); u.code != http.StatusForbidden || !strings.Contains(u.message, "not a break-glass account") {
		t.Fatalf("normal account on the break-glass path: %+v", u)
	}

	justification := "PostgreSQL primary down, failover stuck; restoring db-prod (INC-42)"
	use := useBreakGlass(t, s, "bg-ops", justification, sealed)
	if use.code != http.StatusOK {
		t.Fatalf("break-glass with the store stopped: %+v", use)
	}
	eventID, _ := use.event["id"].(string)
	started, _ := time.Parse(time.RFC3339Nano, use.event["started_at"].(string))
	ends, _ := time.Parse(time.RFC3339Nano, use.event["ends_at"].(string))
	if !breakglass.IsToken(use.token) || use.event["offline"] != true || use.event["account"] != "bg-ops" || ends.Sub(started) != 30*time.Minute {
		t.Fatalf("session %+v", use.event)
	}
	// The alert was delivered, signed, before the token was returned.
	alerts := receiver.forEvent(eventID)
	if len(alerts) != 1 || alerts[0].Justification != justification || !alerts[0].Offline || alerts[0].Account != "bg-ops" || alerts[0].Severity != "critical" {
		t.Fatalf("alerts at the time the token was returned: %+v", alerts)
	}
	if !strings.Contains(s.logs.String(), "CRITICAL break-glass") {
		t.Fatal("no CRITICAL log line")
	}
	ctx := context.Background()
	if d := bgDecide(t, s, use.token, "db.connect", "db-prod"); d != "allow" {
		t.Fatalf("decide in scope: %s", d)
	}
	if d := bgDecide(t, s, use.token, "vault.read", "vault-prod"); d != "deny" {
		t.Fatalf("decide out of scope: %s", d)
	}
	// The token is no normal session.
	if code, _ := s.status("/v1/decide", use.token, map[string]any{"action": "db.connect", "resource": "db-prod"}); code == http.StatusOK {
		t.Fatal("a break-glass token as a bearer session on /v1/decide")
	}
	// Reuse while the first use is unreviewed: refused, offline too.
	if u := useBreakGlass(t, s, "bg-ops", "second try", sealed); u.code != http.StatusForbidden || !strings.Contains(u.message, "review") {
		t.Fatalf("second use offline: %+v", u)
	}
	if code, body := s.status("/v1/breakglass/end", use.token, map[string]any{"reason": "done"}); code != http.StatusOK {
		t.Fatalf("end: %d %v", code, body)
	}

	// The store is back: the replica merges its local file on its own.
	proxy.Start()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ev, err := s.m.Store.FindBreakGlassEventByID(ctx, eventID)
		if err == nil && !ev.EndedAt.IsZero() {
			if ev.AccountID != use.event["account_id"] || ev.Justification != justification || !ev.ReviewedAt.IsZero() || !ev.Offline {
				t.Fatalf("merged event %+v", ev)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the offline use never reached the store: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var merged []airlock.AuditEvent
	for time.Now().Before(deadline) {
		merged = nil
		for _, e := range auditEvents(t, direct, data) {
			if strings.HasPrefix(e.Type, "breakglass.") {
				merged = append(merged, e)
			}
		}
		if len(merged) > 0 && merged[len(merged)-1].Type == "breakglass.merged" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The offline events are in the log, in order, marked.
	var types []string
	for _, e := range merged {
		types = append(types, e.Type)
		if e.Type != "breakglass.merged" && e.Type != "breakglass.credentials_exported" && (e.Details["offline"] != true || e.Details["merged"] != true) {
			t.Errorf("%s not marked offline and merged: %v", e.Type, e.Details)
		}
	}
	want := "breakglass.credentials_exported breakglass.begin_refused breakglass.alert breakglass.started breakglass.decision breakglass.decision breakglass.begin_refused breakglass.ended breakglass.merged"
	if got := strings.Join(types, " "); got != want {
		t.Fatalf("break-glass events in the log:\n got %s\nwant %s", got, want)
	}
	t.Logf("merged: %s", strings.Join(types, " "))
	out, errOut, code := runCLI(t, "audit", "verify", "--store", direct, "--data", data)
	var rep audit.Report
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || !rep.OK() || !strings.Contains(errOut, "audit verify: OK") {
		t.Fatalf("audit verify: %d %s %s", code, out, errOut)
	}

	// Back online, the account stays locked until reviewed.
	if u := useBreakGlass(t, s, "bg-ops", "again", sealed); u.code != http.StatusForbidden || !strings.Contains(u.message, "review") {
		t.Fatalf("reuse before review: %+v", u)
	}
	// Another admin records the post-incident review with a passkey; the
	// account can be used again.
	notes := "justified: failover was stuck; follow-up INC-43 for the failover script"
	code, rb := s.status("/v1/breakglass/review/begin", adminToken, map[string]any{"event": eventID, "notes": notes})
	if code != http.StatusOK {
		t.Fatalf("review begin: %d %v", code, rb)
	}
	ropts, _ := json.Marshal(rb)
	rresp, err := adminKey.Assert(s.origin, ropts)
	if err != nil {
		t.Fatal(err)
	}
	code, rf := s.status("/v1/breakglass/review/finish", adminToken, map[string]any{"ceremony": rb["ceremony"], "credential": json.RawMessage(rresp), "notes": notes})
	if code != http.StatusOK {
		t.Fatalf("review finish: %d %v", code, rf)
	}
	if ev, err := s.m.Store.FindBreakGlassEventByID(ctx, eventID); err != nil || !ev.Reviewed() || ev.ReviewNotes != notes {
		t.Fatalf("reviewed event %+v %v", ev, err)
	}
	again := useBreakGlass(t, s, "bg-ops", "second incident: the replica lags (INC-44)", sealed)
	if again.code != http.StatusOK || again.event["offline"] == true {
		t.Fatalf("use after the review: %+v", again)
	}
	if len(receiver.forEvent(again.event["id"].(string))) != 1 {
		t.Fatal("no alert for the second use")
	}

	// A break-glass account never signs in through the normal login.
	b := s.post("/v1/login/begin", map[string]any{})
	opts, _ := json.Marshal(b["publicKey"])
	assertion, err := sealed.Assert(s.origin, opts)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := s.status("/v1/login/finish", "", map[string]any{"ceremony": b["ceremony"], "credential": json.RawMessage(assertion), "bearer": true}); code != http.StatusForbidden {
		t.Fatalf("break-glass key on the normal login: %d %v", code, body)
	}
}
