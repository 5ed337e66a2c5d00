package main

// Real-browser end-to-end tests: Airlock runs in-process through Main, and
// headless Chromium drives the web UI with the CDP WebAuthn virtual
// authenticator (one browser per test, one browser context and one
// authenticator per person).
//
// Chromium is looked up at $AIRLOCK_CHROMIUM (if set), /usr/bin/chromium,
// then "chromium" on PATH. Without it the tests skip locally and fail when
// $CI is set. Set $AIRLOCK_BROWSER_ARTIFACTS to a directory to keep the
// screenshots taken on failure (otherwise they go to the test's temp dir).

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"airlock"
)

// stepTimeout bounds every single browser step (navigation, click, wait).
const stepTimeout = 30 * time.Second

// --- harness: clock, buffers ---

// testClock is Main.Now: real time plus an offset the test can advance.
type testClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// syncBuffer is a goroutine-safe bytes.Buffer for Main.Stdout, the server
// log and the browser's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func ptr[T any](v T) *T { return &v }

// --- harness: server and browser ---

// e2e is one running Airlock and one headless Chromium.
type e2e struct {
	t         *testing.T
	m         *Main
	clock     *testClock
	logs      *syncBuffer
	chromeOut *syncBuffer
	browser   context.Context // the browser's first tab; persons open their own
	artifacts string
	shots     int
}

// findChromium returns the browser to run, or skips (locally) / fails (CI).
func findChromium(t *testing.T) string {
	t.Helper()
	var candidates []string
	if p := os.Getenv("AIRLOCK_CHROMIUM"); p != "" {
		candidates = []string{p}
	} else {
		candidates = []string{"/usr/bin/chromium"}
		if p, err := exec.LookPath("chromium"); err == nil {
			candidates = append(candidates, p)
		}
	}
	for _, p := range candidates {
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("chromium is required in CI: none of %q is an executable (apt-get install chromium, or set AIRLOCK_CHROMIUM)", candidates)
	}
	t.Skipf("chromium not installed (looked for %q): apt-get install chromium", candidates)
	return ""
}

// freePort asks the kernel for a free TCP port on the loopback interface.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var bootstrapLine = regexp.MustCompile(`^bootstrap enrolment: (http://localhost:[0-9]+/enrol\?token=[A-Za-z0-9_%.~-]+)\n$`)

// newE2E starts Airlock on an empty store (RP ID localhost, origin
// http://localhost:PORT, a controllable clock) and a headless Chromium.
func newE2E(t *testing.T) *e2e {
	t.Helper()
	return newE2EWith(t, nil)
}

// newE2EWith is newE2E with mod applied to the config before the start.
func newE2EWith(t *testing.T, mod func(*Config)) *e2e {
	t.Helper()
	chromium := findChromium(t)
	e := &e2e{t: t, clock: &testClock{}, logs: &syncBuffer{}, chromeOut: &syncBuffer{}}
	e.artifacts = os.Getenv("AIRLOCK_BROWSER_ARTIFACTS")
	if e.artifacts == "" {
		e.artifacts = t.TempDir()
	}

	// The free port is found before Main listens on it; another process can
	// take it in between, so a start that fails to listen is retried.
	var (
		port   int
		cfg    Config
		stdout *syncBuffer
	)
	for attempt := 1; ; attempt++ {
		port = freePort(t)
		cfg = DefaultConfig()
		// Listen on 127.0.0.1: Chromium resolves "localhost" to loopback
		// itself, and WebAuthn needs the origin's host to be the RP ID.
		cfg.Listen = "127.0.0.1:" + strconv.Itoa(port)
		cfg.Origins = []string{"http://localhost:" + strconv.Itoa(port)}
		cfg.RPID = "localhost"
		cfg.Data = t.TempDir()
		if mod != nil {
			mod(&cfg)
		}
		stdout = &syncBuffer{}
		e.m = &Main{Config: cfg, Stdout: stdout, Now: e.clock.Now,
			Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
		err := e.m.Run(context.Background())
		if err == nil {
			break
		}
		if attempt == 3 || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("Main.Run: %v\nserver log:\n%s", err, e.logs.String())
		}
	}
	t.Cleanup(func() {
		if err := e.m.Close(); err != nil {
			t.Errorf("Main.Close: %v", err)
		}
	})

	out := stdout.String()
	mm := bootstrapLine.FindStringSubmatch(out)
	if mm == nil {
		t.Fatalf("stdout = %q; want exactly one line \"bootstrap enrolment: http://localhost:%d/enrol?token=…\"", out, port)
	}
	if mm[1] != e.m.BootstrapURL || !strings.HasPrefix(mm[1], e.m.Origin+"/enrol?token=") || e.m.Origin != cfg.Origins[0] {
		t.Fatalf("bootstrap URL %q, Main.BootstrapURL %q, Main.Origin %q: want the printed URL = BootstrapURL under origin %q",
			mm[1], e.m.BootstrapURL, e.m.Origin, cfg.Origins[0])
	}

	// One browser for the whole test. TMPDIR keeps Chromium's temporary
	// files (/tmp/org.chromium.*) inside the test's directory.
	browserTmp := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(browserTmp, "profile")),
		chromedp.Env("TMPDIR="+browserTmp),
		chromedp.WindowSize(1200, 900),
		chromedp.CombinedOutput(e.chromeOut),
	)
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(allocCancel) // waits for the browser process to exit
	browser, browserCancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		// Close gracefully, but never wait more than 10 s for it.
		done := make(chan struct{})
		go func() { _ = chromedp.Cancel(browser); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Logf("chromium did not close within 10 s; killing it")
		}
		browserCancel()
	})
	// The first Run starts the browser; it must not carry a timeout (that
	// would end the browser), so it is bounded by a watchdog instead.
	e.bounded("start chromium", func() error { return chromedp.Do(browser) })
	e.browser = browser
	return e
}

// bounded runs f, failing the test if it takes longer than stepTimeout.
func (e *e2e) bounded(what string, f func() error) {
	e.t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err != nil {
			e.fatalf("%s: %v", what, err)
		}
	case <-time.After(stepTimeout):
		e.fatalf("%s: no answer within %s", what, stepTimeout)
	}
}

// diagnostics is appended to every failure: the last audit events, the
// server's log and the browser's output.
func (e *e2e) diagnostics() string {
	var b strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	evs, err := e.m.Store.ListAudit(ctx, airlock.AuditFilter{Limit: 1000})
	if err != nil {
		fmt.Fprintf(&b, "\n(audit unavailable: %v)", err)
	} else {
		if len(evs) > 15 {
			evs = evs[len(evs)-15:]
		}
		b.WriteString("\nlast audit events:")
		for _, ev := range evs {
			msg, _ := ev.Details["message"].(string)
			fmt.Fprintf(&b, "\n  #%d %s %s reason=%q user=%s %s", ev.Seq, ev.Type, ev.Outcome, ev.Reason, ev.UserID, msg)
		}
	}
	if l := tail(e.logs.String(), 10); l != "" {
		b.WriteString("\nserver log (tail):\n" + l)
	}
	if l := tail(e.chromeOut.String(), 10); l != "" {
		b.WriteString("\nchromium output (tail):\n" + l)
	}
	return b.String()
}

func (e *e2e) fatalf(format string, args ...any) {
	e.t.Helper()
	e.t.Fatalf(format+"%s", append(args, e.diagnostics())...)
}

// audit returns the audit events of type typ (exact, or a prefix ending in
// ".").
func (e *e2e) audit(typ string) []*airlock.AuditEvent {
	e.t.Helper()
	evs, err := e.m.Store.ListAudit(context.Background(), airlock.AuditFilter{Type: typ, Limit: 1000})
	if err != nil {
		e.fatalf("ListAudit(%s): %v", typ, err)
	}
	return evs
}

// --- the admin API from Go (setup that is not under test) ---

// api calls the JSON API with a bearer token and decodes the answer; a
// status other than want fails the test.
func (e *e2e) api(token, method, path string, body any, want int) map[string]any {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.fatalf("%s %s: %v", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+e.m.Addr().String()+path, rd)
	if err != nil {
		e.fatalf("%s %s: %v", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		e.fatalf("%s %s: HTTP %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	out := map[string]any{}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			e.fatalf("%s %s: answer is not a JSON object: %v: %s", method, path, err, raw)
		}
	}
	return out
}

// enrolee is a user with a device set up through the admin API, and an
// enrolment link for them.
type enrolee struct {
	UserID, DeviceID, URL string
}

// setupEnrolee creates user name (tier) and a managed device "<name>-laptop"
// for them; if compliant, the device is trusted and reports a posture that
// meets the default rules. It then issues an enrolment link.
func (e *e2e) setupEnrolee(token, name string, tier int, compliant bool) enrolee {
	e.t.Helper()
	u := e.api(token, "POST", "/v1/admin/users", map[string]any{"name": name, "tier": tier}, http.StatusCreated)
	var r enrolee
	r.UserID, _ = u["id"].(string)
	r.DeviceID = e.newDevice(token, r.UserID, name+"-laptop", compliant)
	r.URL = e.issueLink(token, r.UserID, r.DeviceID, compliant)
	return r
}

func (e *e2e) newDevice(token, owner, name string, compliant bool) string {
	e.t.Helper()
	d := e.api(token, "POST", "/v1/admin/devices", map[string]any{"name": name, "owner": owner, "kind": "managed"}, http.StatusCreated)
	id, _ := d["id"].(string)
	if compliant {
		e.api(token, "PATCH", "/v1/admin/devices/"+id, map[string]any{"trust": "trusted"}, http.StatusOK)
		d = e.api(token, "PUT", "/v1/admin/devices/"+id+"/posture", map[string]any{
			"managed": true, "disk_encrypted": true, "edr_running": true, "screen_lock": true, "os_version": "test"}, http.StatusOK)
		if d["compliant"] != true {
			e.fatalf("device %s should be compliant after trust and posture: %v", name, d)
		}
	}
	return id
}

func (e *e2e) issueLink(token, userID, deviceID string, wantCompliant bool) string {
	e.t.Helper()
	tok := e.api(token, "POST", "/v1/admin/enrolment-tokens", map[string]any{"user": userID, "device": deviceID}, http.StatusCreated)
	link, _ := tok["url"].(string)
	if !strings.HasPrefix(link, e.m.Origin+"/enrol?token=") {
		e.fatalf("enrolment link %q is not under %s/enrol?token=", link, e.m.Origin)
	}
	if tok["device_compliant"] != wantCompliant {
		e.fatalf("issuing a link: device_compliant = %v, want %v (%v)", tok["device_compliant"], wantCompliant, tok["noncompliance"])
	}
	return link
}

// --- persons: a browser context with its own virtual authenticator ---

type authenticatorKind int

const (
	deviceBound authenticatorKind = iota // BE=0: may serve tier 0
	synced                               // BE=1, BS=1: tier 2 at best
)

type person struct {
	e    *e2e
	name string
	ctx  context.Context
	auth webauthn.AuthenticatorID
}

// newPerson opens a tab in a fresh browser context (own cookies) and adds a
// CTAP 2.1 platform authenticator with resident keys and user verification.
func (e *e2e) newPerson(name string, kind authenticatorKind) *person {
	e.t.Helper()
	ctx, cancel := chromedp.NewContext(e.browser, chromedp.WithNewBrowserContext())
	e.t.Cleanup(cancel)
	p := &person{e: e, name: name, ctx: ctx}
	// The first Run on the context creates the tab: no timeout on it.
	e.bounded(name+": open a tab", func() error { return chromedp.Do(ctx) })
	p.do("enable WebAuthn", func(ctx context.Context) error {
		_, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{EnableUI: ptr(false)})
		return err
	})
	p.do("add virtual authenticator", func(ctx context.Context) error {
		res, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
			Options: &webauthn.VirtualAuthenticatorOptions{
				Protocol:                    webauthn.AuthenticatorProtocolCtap2,
				Ctap2version:                webauthn.Ctap2versionCtap21,
				Transport:                   webauthn.AuthenticatorTransportInternal,
				HasResidentKey:              true,
				HasUserVerification:         true,
				IsUserVerified:              true,
				AutomaticPresenceSimulation: true, // false makes create() hang
				DefaultBackupEligibility:    kind == synced,
				DefaultBackupState:          kind == synced,
			},
		})
		p.auth = res.AuthenticatorID
		return err
	})
	return p
}

// do runs f with a context bounded by stepTimeout.
func (p *person) do(what string, f func(ctx context.Context) error) {
	p.e.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	if err := f(ctx); err != nil {
		p.fatalf("%s: %v", what, err)
	}
}

// pageState is what the tests look at after each step.
type pageState struct {
	URL     string `json:"url"`
	Path    string `json:"path"`
	Ready   string `json:"ready"`
	Marked  bool   `json:"marked"`
	Message string `json:"message"`
	Class   string `json:"class"`
	Shown   bool   `json:"shown"`
}

func (s pageState) String() string {
	return fmt.Sprintf("url=%s message(%s, shown=%t)=%q", s.URL, s.Class, s.Shown, s.Message)
}

const stateJS = `(() => {
  const m = document.getElementById("message");
  return {url: location.href, path: location.pathname, ready: document.readyState, marked: !!window.__e2eMark,
    message: m ? m.textContent.trim() : "", class: m ? m.className : "", shown: !!m && !m.hidden && m.textContent.trim() !== ""};
})()`

// state reads the page state; ok is false while the page is navigating.
func (p *person) state() (pageState, bool) {
	ctx, cancel := context.WithTimeout(p.ctx, 3*time.Second)
	defer cancel()
	st, err := chromedp.Run(ctx, chromedp.Evaluate[pageState](stateJS))
	return st, err == nil
}

// fatalf fails the test with the page's state, a screenshot, the last audit
// events and the server log.
func (p *person) fatalf(format string, args ...any) {
	p.e.t.Helper()
	var extra strings.Builder
	if st, ok := p.state(); ok {
		fmt.Fprintf(&extra, "\n[%s's browser] %s", p.name, st)
	}
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	if png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
		p.e.shots++
		name := filepath.Join(p.e.artifacts, fmt.Sprintf("%s-%s-%d.png", strings.ReplaceAll(p.e.t.Name(), "/", "_"), p.name, p.e.shots))
		if os.WriteFile(name, png, 0o644) == nil {
			fmt.Fprintf(&extra, "\nscreenshot: %s", name)
		}
	}
	p.e.fatalf(format+"%s", append(args, extra.String())...)
}

// waitFor polls the page until cond holds.
func (p *person) waitFor(what string, cond func(pageState) bool) pageState {
	p.e.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		st, ok := p.state()
		if ok && st.Ready == "complete" && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			p.fatalf("%s: waited %s for %s", p.name, stepTimeout, what)
		}
		time.Sleep(40 * time.Millisecond)
	}
}

// open navigates to url (absolute, or a path under the origin).
func (p *person) open(url string) pageState {
	p.e.t.Helper()
	if strings.HasPrefix(url, "/") {
		url = p.e.m.Origin + url
	}
	p.do("open "+url, func(ctx context.Context) error { return chromedp.Do(ctx, chromedp.Navigate(url)) })
	return p.waitFor("the page "+url+" to load", func(pageState) bool { return true })
}

// click marks the page (a navigation drops the mark), hides #message, and
// clicks the element sel like a person would.
func (p *person) click(sel string) {
	p.e.t.Helper()
	p.do("click "+sel, func(ctx context.Context) error {
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { window.__e2eMark = true;
		  const m = document.getElementById("message"); if (m) { m.hidden = true; m.textContent = ""; m.className = ""; }
		  return true; })()`)); err != nil {
			return err
		}
		return chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel)))
	})
}

// act clicks sel and waits until the page navigated or showed #message.
func (p *person) act(sel string) pageState {
	p.e.t.Helper()
	p.click(sel)
	return p.waitFor("a navigation or a #message after clicking "+sel, func(st pageState) bool { return !st.Marked || st.Shown })
}

// actAndReload clicks sel (a form's submit button or an admin API button),
// expects a success message and waits for the page to reload.
func (p *person) actAndReload(sel string) pageState {
	p.e.t.Helper()
	st := p.act(sel)
	if st.Marked {
		p.expectOK(st, "")
		st = p.waitFor("the page to reload after "+sel, func(st pageState) bool { return !st.Marked })
	}
	p.expectNoError(st)
	return st
}

func (p *person) expectOK(st pageState, substr string) {
	p.e.t.Helper()
	if !st.Shown || st.Class != "ok" || !strings.Contains(st.Message, substr) {
		p.fatalf("%s: want a success message containing %q; got %s", p.name, substr, st)
	}
}

func (p *person) expectError(st pageState, substrs ...string) {
	p.e.t.Helper()
	if !st.Shown || st.Class != "error" {
		p.fatalf("%s: want an error message containing %q; got %s", p.name, substrs, st)
	}
	for _, s := range substrs {
		if !strings.Contains(st.Message, s) {
			p.fatalf("%s: want an error message containing %q; got %s", p.name, s, st)
		}
	}
}

func (p *person) expectNoError(st pageState) {
	p.e.t.Helper()
	if st.Shown && st.Class == "error" {
		p.fatalf("%s: unexpected error on %s: %q", p.name, st.Path, st.Message)
	}
}

func (p *person) expectPath(st pageState, path string) {
	p.e.t.Helper()
	if st.Path != path {
		p.fatalf("%s: want to be on %s; got %s", p.name, path, st)
	}
}

// eval evaluates a JavaScript expression (promises awaited).
func eval[T any](p *person, js string) T {
	p.e.t.Helper()
	var v T
	p.do("evaluate "+js, func(ctx context.Context) error {
		var err error
		v, err = chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
		return err
	})
	return v
}

// text returns the trimmed text of the element with id, or fails if the page
// has none.
func (p *person) text(id string) string {
	p.e.t.Helper()
	b, _ := json.Marshal(id)
	v := eval[*string](p, `(() => { const el = document.getElementById(`+string(b)+`); return el ? el.textContent.trim() : null; })()`)
	if v == nil {
		p.fatalf("%s: no element #%s on the page", p.name, id)
	}
	return *v
}

func (p *person) has(css string) bool {
	p.e.t.Helper()
	b, _ := json.Marshal(css)
	return eval[bool](p, `document.querySelector(`+string(b)+`) !== null`)
}

// setValue sets a form field (input or select) as the person would.
func (p *person) setValue(css, value string) {
	p.e.t.Helper()
	p.do("set "+css, func(ctx context.Context) error {
		return chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(css), value))
	})
	if got := eval[string](p, `document.querySelector(`+jsString(css)+`).value`); got != value {
		p.fatalf("%s: %s has value %q after setting %q (no such option?)", p.name, css, got, value)
	}
}

// optionValue returns the value of the option of select css whose text
// starts with label.
func (p *person) optionValue(css, label string) string {
	p.e.t.Helper()
	v := eval[*string](p, `(() => { const s = document.querySelector(`+jsString(css)+`); if (!s) return null;
	  const o = [...s.options].find(o => o.textContent.trim().startsWith(`+jsString(label)+`)); return o ? o.value : null; })()`)
	if v == nil || *v == "" {
		p.fatalf("%s: no option %q in %s", p.name, label, css)
	}
	return *v
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// credentials returns the passkeys in the person's authenticator; there
// must be exactly one.
func (p *person) credentials() []*webauthn.Credential {
	p.e.t.Helper()
	var creds []*webauthn.Credential
	p.do("read the authenticator's credentials", func(ctx context.Context) error {
		res, err := chromedp.Call(ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: p.auth})
		if err == nil && len(res.Credentials) != 1 {
			err = fmt.Errorf("the authenticator holds %d credentials, want 1", len(res.Credentials))
		}
		creds = res.Credentials
		return err
	})
	return creds
}

// sessionStatus is the HTTP status of GET /v1/session from this browser
// (with its cookies).
func (p *person) sessionStatus() int {
	p.e.t.Helper()
	return eval[int](p, `fetch("/v1/session", {credentials: "same-origin"}).then(r => r.status)`)
}

// enrol opens an enrolment link, checks that it names the account, and
// clicks "Create passkey".
func (p *person) enrol(link, wantAccount string) pageState {
	p.e.t.Helper()
	st := p.open(link)
	p.expectNoError(st)
	if got := p.text("enrol-user"); !strings.HasPrefix(got, wantAccount+" ") {
		p.fatalf("%s: enrol page names account %q, want %q", p.name, got, wantAccount)
	}
	return p.act(`#enrol[data-action="enrol"]`)
}

// mustEnrol enrols and expects success.
func (p *person) mustEnrol(link, wantAccount string) {
	p.e.t.Helper()
	st := p.enrol(link, wantAccount)
	p.expectOK(st, "Passkey created")
	if p.has(`#enrol-done[hidden]`) {
		p.fatalf("%s: the \"Passkey created. Sign in\" paragraph stayed hidden", p.name)
	}
}

// login signs in from /login (discoverable: nobody types a user name).
func (p *person) login() pageState {
	p.e.t.Helper()
	st := p.open("/login")
	p.expectPath(st, "/login")
	if n := eval[int](p, `document.querySelectorAll("main input, main select, main textarea").length`); n != 0 {
		p.fatalf("%s: the login page asks for input (%d fields); a discoverable login needs none", p.name, n)
	}
	return p.act(`#login[data-action="login"]`)
}

// signIn signs in and expects the home page of user.
func (p *person) signIn(user string) {
	p.e.t.Helper()
	st := p.login()
	p.expectNoError(st)
	p.expectPath(st, "/")
	if got := p.text("home-user"); !strings.HasPrefix(got, user+" ") {
		p.fatalf("%s: #home-user = %q, want %q", p.name, got, user)
	}
}

// sessionTier is the tier of the browser's session from GET /v1/session.
func (p *person) sessionTier() int {
	p.e.t.Helper()
	v := eval[*int](p, `fetch("/v1/session", {credentials: "same-origin"}).then(r => r.ok ? r.json() : null).then(s => s && s.tier)`)
	if v == nil {
		p.fatalf("%s: GET /v1/session failed while signed in", p.name)
	}
	return *v
}

// mustLogin signs in and checks the session's tier (API) and the home
// page's account and session tiers.
func (p *person) mustLogin(user string, userTier, sessionTier int) {
	p.e.t.Helper()
	p.signIn(user)
	if got := p.sessionTier(); got != sessionTier {
		p.fatalf("%s: GET /v1/session tier = %d, want %d", p.name, got, sessionTier)
	}
	if got := p.text("home-user-tier"); got != strconv.Itoa(userTier) {
		p.fatalf("%s: #home-user-tier = %q, want %q", p.name, got, strconv.Itoa(userTier))
	}
	if got := p.text("home-tier"); got != strconv.Itoa(sessionTier) {
		p.fatalf("%s: #home-tier = %q, want %q", p.name, got, strconv.Itoa(sessionTier))
	}
}

// cliToken uses "Get a CLI token" on the home page (a fresh login).
func (p *person) cliToken() string {
	p.e.t.Helper()
	st := p.open("/")
	p.expectPath(st, "/")
	st = p.act(`[data-action="token"]`)
	p.expectOK(st, "Token created")
	tok := p.text("token-out")
	if len(tok) < 20 || p.has(`#token-out[hidden]`) {
		p.fatalf("%s: #token-out = %q, want a visible bearer token", p.name, tok)
	}
	return tok
}

// bootstrapAdmin enrols the bootstrap admin with p (a device-bound
// authenticator), signs in, and returns an admin bearer token.
func (e *e2e) bootstrapAdmin(p *person) string {
	e.t.Helper()
	p.mustEnrol(e.m.BootstrapURL, passkeyBootstrapUser)
	p.signIn(passkeyBootstrapUser)
	tok := p.cliToken()
	if s := e.api(tok, "GET", "/v1/session", nil, http.StatusOK); s["tier"] != float64(0) {
		e.fatalf("the bootstrap admin's session is tier %v, want 0", s["tier"])
	}
	// The token must pass the admin rule, or no setup can follow.
	e.api(tok, "GET", "/v1/admin/users", nil, http.StatusOK)
	return tok
}

const passkeyBootstrapUser = "admin"

// withAdmin is the common start: server, browser, bootstrapped admin and
// its bearer token.
func withAdmin(t *testing.T) (*e2e, *person, string) {
	e := newE2E(t)
	admin := e.newPerson("admin", deviceBound)
	return e, admin, e.bootstrapAdmin(admin)
}

// --- the tests ---

// TestBrowserBootstrapToUserLogin walks the whole first-day story through
// the UI: bootstrap link → admin passkey → admin pages → a user, her device
// and her link → her passkey → her login, sign-out and login again.
func TestBrowserBootstrapToUserLogin(t *testing.T) {
	e := newE2E(t)
	admin := e.newPerson("admin", deviceBound)

	admin.mustEnrol(e.m.BootstrapURL, passkeyBootstrapUser)
	if got := admin.text("enrol-device"); !strings.HasPrefix(got, "bootstrap ") {
		t.Errorf("bootstrap enrol page device = %q, want the bootstrap device", got)
	}
	admin.mustLogin(passkeyBootstrapUser, 0, 0)
	if got := admin.text("home-amr"); got != "hwk user mfa" {
		t.Errorf("admin #home-amr = %q, want %q", got, "hwk user mfa")
	}

	// Users: create alice, tier 1, with the #new-user form.
	st := admin.open("/admin/users")
	admin.expectNoError(st)
	if !admin.has(`#new-user`) {
		admin.fatalf("admin: /admin/users has no #new-user form")
	}
	admin.setValue(`#new-user input[name="name"]`, "alice")
	admin.setValue(`#new-user select[name="tier"]`, "1")
	admin.actAndReload(`#new-user button[type="submit"]`)
	if got := admin.text("users"); !strings.Contains(got, "alice") {
		admin.fatalf("admin: the users table does not list alice after creating her: %q", got)
	}
	if got := eval[string](admin, `document.querySelector('tr[data-user="alice"] td:nth-child(4)').textContent.trim()`); got != "1" {
		admin.fatalf("admin: alice's tier in the users table = %q, want 1", got)
	}

	// Devices: alice's laptop, managed; trust it; record posture.
	st = admin.open("/admin/devices")
	admin.expectNoError(st)
	aliceID := admin.optionValue(`#new-device select[name="owner"]`, "alice")
	admin.setValue(`#new-device input[name="name"]`, "alice-laptop")
	admin.setValue(`#new-device select[name="owner"]`, aliceID)
	admin.setValue(`#new-device select[name="kind"]`, "managed")
	admin.actAndReload(`#new-device button[type="submit"]`)
	row := `tr[data-device="alice-laptop"]`
	if !admin.has(row) {
		admin.fatalf("admin: no device row for alice-laptop after adding it")
	}
	devID := eval[string](admin, `document.querySelector('`+row+` code').textContent.trim()`)
	admin.actAndReload(row + ` button[data-body='{"trust":"trusted"}']`)
	if got := eval[string](admin, `document.querySelector('`+row+` td:nth-child(5)').textContent.trim()`); got != "trusted" {
		admin.fatalf("admin: alice-laptop trust = %q after Trust, want trusted", got)
	}
	admin.setValue(`#posture select[name="device"]`, devID)
	admin.actAndReload(`#posture button[type="submit"]`)
	if got := eval[string](admin, `document.querySelector('`+row+` td:nth-child(7)').textContent.trim()`); got != "yes" {
		admin.fatalf("admin: alice-laptop compliant = %q after trust and posture, want yes", got)
	}

	// Enrolment link for alice on her laptop.
	st = admin.open("/admin/enrol")
	admin.expectNoError(st)
	admin.setValue(`#new-token select[name="user"]`, aliceID)
	admin.setValue(`#new-token select[name="device"]`, devID)
	st = admin.act(`#new-token button[type="submit"]`)
	admin.expectOK(st, "Enrolment link created.")
	if strings.Contains(st.Message, "Warning") {
		admin.fatalf("admin: issuing alice's link warned: %q", st.Message)
	}
	link := admin.text("token-result")
	if !strings.HasPrefix(link, e.m.Origin+"/enrol?token=") {
		admin.fatalf("admin: #token-result = %q, want a link under %s/enrol?token=", link, e.m.Origin)
	}

	// Alice, in her own browser context with her own authenticator.
	alice := e.newPerson("alice", deviceBound)
	alice.mustEnrol(link, "alice")
	if got := alice.text("enrol-device"); !strings.HasPrefix(got, "alice-laptop ") {
		t.Errorf("alice's enrol page device = %q, want alice-laptop", got)
	}
	alice.mustLogin("alice", 1, 1)
	if got := alice.text("who"); got != "alice · tier 1" {
		t.Errorf("alice #who = %q", got)
	}
	if got := alice.sessionStatus(); got != http.StatusOK {
		alice.fatalf("alice: GET /v1/session = %d while signed in, want 200", got)
	}
	if admin.has(`a[href="/admin/users"]`) == false {
		t.Errorf("admin: the admin navigation is missing for the admin")
	}
	if alice.has(`a[href="/admin/users"]`) {
		t.Errorf("alice (no admin role) sees the admin navigation")
	}

	// Sign out, then sign in again (discoverable: no user name).
	st = alice.act(`#logout`)
	alice.expectNoError(st)
	alice.expectPath(st, "/login")
	if got := alice.sessionStatus(); got != http.StatusUnauthorized {
		alice.fatalf("alice: GET /v1/session after sign-out = %d, want 401", got)
	}
	alice.mustLogin("alice", 1, 1)

	if n := len(e.audit("auth.login")); n != 3 {
		e.fatalf("want 3 auth.login events (admin once, alice twice), got %d", n)
	}
}

// TestBrowserBootstrapRefusesSyncedPasskey: the bootstrap admin must use a
// device-bound passkey; a refused attempt does not spend the link.
func TestBrowserBootstrapRefusesSyncedPasskey(t *testing.T) {
	e := newE2E(t)
	phone := e.newPerson("admin-synced", synced)
	st := phone.enrol(e.m.BootstrapURL, passkeyBootstrapUser)
	phone.expectError(st, "bootstrap enrolment needs a device-bound passkey")
	if !phone.has(`#enrol:not([hidden])`) {
		t.Errorf("after a refused enrolment the Create passkey button should stay")
	}
	failed := e.audit("enrol.failed")
	if len(failed) == 0 || failed[len(failed)-1].Reason != "bootstrap_needs_device_bound" {
		e.fatalf("want an enrol.failed event with reason bootstrap_needs_device_bound, got %d events", len(failed))
	}

	// The same link still works with a device-bound authenticator.
	admin := e.newPerson("admin", deviceBound)
	admin.mustEnrol(e.m.BootstrapURL, passkeyBootstrapUser)
	admin.signIn(passkeyBootstrapUser)
	if got := admin.sessionTier(); got != 0 {
		admin.fatalf("admin: session tier %d with the device-bound bootstrap passkey, want 0", got)
	}

	// And now it is spent.
	late := e.newPerson("late", deviceBound)
	st = late.open(e.m.BootstrapURL)
	late.expectError(st, "already used")
}

// TestBrowserSyncedPasskeyGivesTier2: a tier-0 user with a synced passkey
// gets a tier-2 session (NIST SP 800-63B-4: synced keys are not AAL3).
func TestBrowserSyncedPasskeyGivesTier2(t *testing.T) {
	e, _, token := withAdmin(t)
	sam := e.setupEnrolee(token, "sam", 0, true)

	p := e.newPerson("sam", synced)
	p.mustEnrol(sam.URL, "sam")
	creds := e.api(token, "GET", "/v1/admin/users/sam", nil, http.StatusOK)["credentials"].([]any)
	if len(creds) != 1 {
		e.fatalf("sam has %d credentials, want 1", len(creds))
	}
	c := creds[0].(map[string]any)
	if c["backup_eligible"] != true || c["backup_state"] != true || c["tier_cap"] != float64(2) {
		e.fatalf("sam's credential: backup_eligible=%v backup_state=%v tier_cap=%v, want true, true, 2", c["backup_eligible"], c["backup_state"], c["tier_cap"])
	}

	p.mustLogin("sam", 0, 2)
	if got := p.text("home-amr"); got != "swk user mfa" {
		t.Errorf("sam #home-amr = %q, want %q", got, "swk user mfa")
	}
}

// TestBrowserUVClearedAssertionRefused: an assertion without the UV flag
// gets no session.
func TestBrowserUVClearedAssertionRefused(t *testing.T) {
	e, _, token := withAdmin(t)
	uma := e.setupEnrolee(token, "uma", 1, true)
	p := e.newPerson("uma", deviceBound)
	p.mustEnrol(uma.URL, "uma")

	p.do("clear UV in responses", func(ctx context.Context) error {
		_, err := chromedp.Call(ctx, webauthn.SetResponseOverrideBits, webauthn.SetResponseOverrideBitsParams{
			AuthenticatorID: p.auth, IsBadUV: ptr(true)})
		return err
	})
	st := p.login()
	p.expectError(st, "user verification (UV) flag is not set")
	p.expectPath(st, "/login")
	if got := p.sessionStatus(); got != http.StatusUnauthorized {
		p.fatalf("uma: GET /v1/session after the refused login = %d, want 401", got)
	}
	st = p.open("/")
	p.expectPath(st, "/login")

	// The UV check comes before the credential lookup, so the event names
	// the credential rather than the user.
	credID := p.credentials()[0].CredentialID
	failed := e.audit("auth.login_failed")
	if len(failed) != 1 || failed[0].Reason != "uv_missing" || failed[0].CredentialID != base64.RawURLEncoding.EncodeToString(credID) {
		e.fatalf("want one auth.login_failed event for uma's credential with reason uv_missing")
	}
	if n := len(e.audit("auth.login")); n != 2 {
		e.fatalf("want 2 auth.login events (the admin's), got %d", n)
	}
}

// TestBrowserSignCountRollbackRefused: a sign count that goes backwards is a
// clone signal: refused for a tier-1 session and audited.
func TestBrowserSignCountRollbackRefused(t *testing.T) {
	e, _, token := withAdmin(t)
	carl := e.setupEnrolee(token, "carl", 1, true)
	p := e.newPerson("carl", deviceBound)
	p.mustEnrol(carl.URL, "carl")
	p.signIn("carl")

	cred := p.credentials()[0]
	stored := e.api(token, "GET", "/v1/admin/users/carl", nil, http.StatusOK)["credentials"].([]any)[0].(map[string]any)["sign_count"].(float64)
	if cred.SignCount < 1 || stored != cred.SignCount {
		e.fatalf("after one login: authenticator sign count %v, server's %v; want equal and ≥ 1", cred.SignCount, stored)
	}

	st := p.act(`#logout`)
	p.expectPath(st, "/login")
	// Roll the counter back, as a cloned authenticator would.
	p.do("roll the sign count back", func(ctx context.Context) error {
		_, err := chromedp.Call(ctx, webauthn.SetCredentialProperties, webauthn.SetCredentialPropertiesParams{
			AuthenticatorID: p.auth, CredentialID: cred.CredentialID, SignCount: ptr(0.0)})
		return err
	})
	st = p.login()
	p.expectError(st, "sign count did not increase")
	if got := p.sessionStatus(); got != http.StatusUnauthorized {
		p.fatalf("carl: GET /v1/session after the refused login = %d, want 401", got)
	}

	warn := e.audit("auth.clone_warning")
	if len(warn) != 1 || warn[0].Outcome != airlock.OutcomeDenied || warn[0].UserID != carl.UserID {
		e.fatalf("want one denied auth.clone_warning event for carl, got %d", len(warn))
	}
	// Details numbers come back from the audit leaf as json.Number.
	if got := fmt.Sprint(warn[0].Details["stored_sign_count"]); got != fmt.Sprint(stored) {
		t.Errorf("clone warning stored_sign_count = %v, want %v", warn[0].Details["stored_sign_count"], stored)
	}
	failed := e.audit("auth.login_failed")
	if len(failed) == 0 || failed[len(failed)-1].Reason != "clone" {
		e.fatalf("want an auth.login_failed event with reason clone")
	}
}

// TestBrowserEnrolmentTokenRefusals: used, expired and non-compliant-device
// links are refused with a message that says why.
func TestBrowserEnrolmentTokenRefusals(t *testing.T) {
	e, admin, token := withAdmin(t)
	dora := e.setupEnrolee(token, "dora", 1, true)

	{
		t.Log("a used link")
		first := e.newPerson("dora", deviceBound)
		first.mustEnrol(dora.URL, "dora")
		again := e.newPerson("dora-again", deviceBound)
		st := again.open(dora.URL)
		again.expectError(st, "enrolment link already used")
		if again.has(`#enrol`) {
			again.fatalf("dora-again: a used link still offers Create passkey")
		}
	}

	{
		t.Log("a trusted device that never reported posture")
		dev := e.newDevice(token, dora.UserID, "dora-desk", false)
		e.api(token, "PATCH", "/v1/admin/devices/"+dev, map[string]any{"trust": "trusted"}, http.StatusOK)
		link := e.issueLink(token, dora.UserID, dev, false)
		p := e.newPerson("dora-desk", deviceBound)
		st := p.open(link)
		p.expectError(st, "device dora-desk is not compliant", "no posture report")
		if p.has(`#enrol`) {
			p.fatalf("dora-desk: a non-compliant device is offered Create passkey")
		}
	}

	{
		t.Log("a device that falls out of compliance between page and ceremony")
		dev := e.newDevice(token, dora.UserID, "dora-tablet", true)
		link := e.issueLink(token, dora.UserID, dev, true)
		p := e.newPerson("dora-tablet", deviceBound)
		st := p.open(link)
		p.expectNoError(st)
		e.api(token, "PATCH", "/v1/admin/devices/"+dev, map[string]any{"trust": "pending"}, http.StatusOK)
		st = p.act(`#enrol[data-action="enrol"]`)
		p.expectError(st, "device dora-tablet is not compliant", "device trust is pending")
		if got := len(e.api(token, "GET", "/v1/admin/users/dora", nil, http.StatusOK)["credentials"].([]any)); got != 1 {
			e.fatalf("dora has %d credentials after the refused enrolment, want 1", got)
		}
		if failed := e.audit("enrol.failed"); len(failed) == 0 || failed[len(failed)-1].Reason != "device_not_compliant" {
			e.fatalf("want an enrol.failed event with reason device_not_compliant")
		}
	}

	// The clock moves from here on.
	dev := e.newDevice(token, dora.UserID, "dora-spare", true)
	{
		t.Log("an expired link")
		link := e.issueLink(token, dora.UserID, dev, true)
		e.clock.Advance(16 * time.Minute)
		p := e.newPerson("dora-late", deviceBound)
		st := p.open(link)
		p.expectError(st, "enrolment link expired")
		if p.has(`#enrol`) {
			p.fatalf("dora-late: an expired link still offers Create passkey")
		}
	}

	{
		t.Log("a device whose posture report went stale")
		// dora-spare's posture was reported 16 minutes ago; 25 hours on it is
		// stale (limit 24 h). The admin's session has ended by then, so the
		// admin signs in again for a fresh token.
		e.clock.Advance(25 * time.Hour)
		// The admin's own bootstrap device went stale too, and admin changes
		// are decided by the policy, which wants a compliant device for the
		// tier-0 resource "airlock": refresh it as a device-management feed
		// would (not under test here).
		e.refreshPosture(passkeyBootstrapUser)
		admin.signIn(passkeyBootstrapUser)
		fresh := admin.cliToken()
		link := e.issueLink(fresh, dora.UserID, dev, false)
		p := e.newPerson("dora-stale", deviceBound)
		st := p.open(link)
		p.expectError(st, "device dora-spare is not compliant", "posture report is stale")
		if p.has(`#enrol`) {
			p.fatalf("dora-stale: a device with a stale posture is offered Create passkey")
		}
	}
}
