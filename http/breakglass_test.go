package http_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"airlock"
	"airlock/audit"
	"airlock/breakglass"
	"airlock/decide"
	"airlock/device"
	airhttp "airlock/http"
	"airlock/notify"
	"airlock/passkey"
	"airlock/passkey/passkeytest"
	"airlock/policy"
	"airlock/risk"
	"airlock/session"
	"airlock/sqlite"
	"airlock/sshca"
)

// alertReceiver is a break-glass alert webhook that checks each
// delivery's HMAC signature and counts the good ones.
type alertReceiver struct {
	mu   sync.Mutex
	good int
	bad  int
	srv  *httptest.Server
}

const bgAlertSecret = "http-test-alert-secret"

func newAlertReceiver(t *testing.T) *alertReceiver {
	a := &alertReceiver{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		defer a.mu.Unlock()
		if r.Header.Get("X-Airlock-Signature") != "sha256="+notify.Sign(bgAlertSecret, r.Header.Get("X-Airlock-Timestamp"), body) {
			a.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		a.good++
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *alertReceiver) count() (good, bad int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.good, a.bad
}

// bgEnv is an env whose every component (passkeys, sessions, audit,
// decisions, SSH CA, break-glass) runs over a store the test can stop, with
// a break-glass account "bg" (sealed passkey bgAuth, BE=0), a signed-in
// bootstrap admin (tier 0, the reviewer) and alice (tier 1, no role).
type bgEnv struct {
	*env
	sw          *switchStore
	rcv         *alertReceiver
	server      *airhttp.Server
	admin       string
	alice       string
	aliceAuth   *passkeytest.Authenticator
	bgAuth      *passkeytest.Authenticator
	bgID        string
	dir         string
	credentials string
}

// newBGEnv builds the stack in two phases: the people are set up through
// the admin API on a server without break-glass, the static credential
// file is exported, and then the handler is swapped for one whose server
// has the break-glass service (New reads the file).
func newBGEnv(t *testing.T, mod func(*airhttp.Server, *breakglass.Config)) *bgEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sw := &switchStore{inner: st}
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	e := &env{t: t, store: st, clock: c}
	srv := httptest.NewUnstartedServer(nil)
	e.origin = "http://localhost:" + strings.Split(srv.Listener.Addr().String(), ":")[1]
	log := audit.New(sw, c.Now, nil)
	e.passkeys, err = passkey.New(passkey.Config{RPID: "localhost", RPName: "Airlock test", Origins: []string{e.origin},
		Tiers: passkey.DefaultTierPolicies(), DeviceRules: device.DefaultRules(), Now: c.Now}, sw, log, notify.NewOutbox(sw, c.Now))
	if err != nil {
		t.Fatal(err)
	}
	e.decide = &decide.Service{Store: sw, Engine: policy.NewEngine(policy.Default(), policy.DefaultConfig()), Catalog: decide.QuickStart(),
		Signals: &risk.Gatherer{Store: sw, Now: c.Now}, Audit: log, DeviceRules: device.DefaultRules(), BaseURL: e.origin, Now: c.Now}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := sshca.New(key, sw, sshca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	newServer := func() *airhttp.Server {
		return &airhttp.Server{Store: sw, Passkeys: e.passkeys, Sessions: session.New(session.Config{Now: c.Now}, sw, log), Audit: log,
			DeviceRules: device.DefaultRules(), Origins: []string{e.origin}, Now: c.Now, Decide: e.decide, SSHCA: ca,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	}
	var handler atomic.Pointer[http.Handler]
	first := newServer().Handler()
	handler.Store(&first)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*handler.Load()).ServeHTTP(w, r) })
	srv.Start()
	t.Cleanup(srv.Close)
	e.srv, e.client = srv, srv.Client()

	b := &bgEnv{env: e, sw: sw, rcv: newAlertReceiver(t), dir: dir}
	b.admin, _ = e.bootstrapAdmin()
	b.alice, b.aliceAuth, _ = e.person(b.admin, "alice", 1, nil, passkeytest.Flags{})
	// The break-glass account: created and enrolled at set-up by an admin,
	// through a normal enrolment link, with a device-bound (BE=0) key.
	u := e.req("POST", "/v1/admin/users", map[string]any{"name": "bg", "tier": 0, "kind": "breakglass"}, b.admin, nil)
	if u.status != 201 {
		t.Fatalf("create bg: %d %s", u.status, u.raw)
	}
	b.bgID = u.body["id"].(string)
	dev := e.compliantDevice(b.admin, b.bgID)
	tr := e.req("POST", "/v1/admin/enrolment-tokens", map[string]any{"user": b.bgID, "device": dev}, b.admin, nil)
	if tr.status != 201 {
		t.Fatalf("bg token: %d %s", tr.status, tr.raw)
	}
	b.bgAuth = passkeytest.New()
	if r := e.enrol(b.bgAuth, tr.body["token"].(string)); r.status != 200 {
		t.Fatalf("enrol bg: %d %s", r.status, r.raw)
	}
	data, err := breakglass.ExportCredentials(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	b.credentials = filepath.Join(dir, "breakglass-credentials.json")
	if err := os.WriteFile(b.credentials, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := breakglass.Config{Scopes: []string{"dba@db-prod", "tier:2"}, Duration: 30 * time.Minute,
		Alerts: []breakglass.AlertTarget{{URL: b.rcv.srv.URL + "/alert", Secret: bgAlertSecret}},
		Dir:    filepath.Join(dir, "bg"), CredentialsFile: b.credentials,
		ResourceTier: func(name string) (airlock.Tier, bool) {
			t, ok := map[string]airlock.Tier{"db-prod": 0, "ci": 1, "grafana": 2}[name]
			return t, ok
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: c.Now}
	b.server = newServer()
	if mod != nil {
		mod(b.server, &cfg)
	}
	svc, err := breakglass.New(cfg, sw, e.passkeys, log, ca)
	if err != nil {
		t.Fatal(err)
	}
	b.server.BreakGlass = svc
	h := b.server.Handler()
	handler.Store(&h)
	return b
}

// use runs the break-glass path as a browser page would (Origin, no
// cookie) for account, signing with a.
func (b *bgEnv) use(account, justification string, a *passkeytest.Authenticator) (begin, finish resp) {
	b.t.Helper()
	begin = b.browser("POST", "/v1/breakglass/begin", map[string]any{"account": account, "justification": justification}, nil)
	if begin.status != 200 {
		return begin, resp{}
	}
	cred, err := a.Assert(b.origin, mustJSON(begin.body["publicKey"]))
	if err != nil {
		// The authenticator holds no passkey the ceremony allows.
		return begin, resp{status: -1, raw: []byte(err.Error())}
	}
	finish = b.browser("POST", "/v1/breakglass/finish", map[string]any{"ceremony": begin.body["ceremony"], "credential": json.RawMessage(cred)}, nil)
	return begin, finish
}

// mustUse runs a use that must succeed and returns the token and event id.
func (b *bgEnv) mustUse(justification string) (string, string) {
	b.t.Helper()
	_, f := b.use("bg", justification, b.bgAuth)
	if f.status != 200 {
		b.t.Fatalf("break-glass use: %d %s", f.status, f.raw)
	}
	tok, _ := f.body["token"].(string)
	ev := nested(f, "event")
	if !breakglass.IsToken(tok) || ev == nil || f.body["expires_at"] == nil {
		b.t.Fatalf("break-glass finish answer %s", f.raw)
	}
	return tok, ev["id"].(string)
}

func (b *bgEnv) decideBG(token, action, resource string) resp {
	b.t.Helper()
	return b.req("POST", "/v1/decide", map[string]any{"session": token, "action": action, "resource": resource}, "", nil)
}

// bgKey is a fresh key as an authorized_keys line.
func bgKey(t *testing.T) string {
	t.Helper()
	line, _ := sshKeyLine(t)
	return line
}

// TestBreakGlassHTTPUse walks one use with the store up: refusals at
// begin, the use itself (the alert delivered before the token is
// returned), the token only where break-glass tokens belong, decisions in
// and out of scope, an SSH certificate without forwarding, the lock until
// review, the review by another person with a passkey, and reuse.
func TestBreakGlassHTTPUse(t *testing.T) {
	b := newBGEnv(t, nil)

	// Refusals at begin: bad JSON, no account, no or oversized
	// justification, a normal account, an unknown one.
	for _, c := range []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"fail-bad-json", []byte(`{"account":`), 400, airlock.EINVALID},
		{"fail-unknown-field", map[string]any{"account": "bg", "justification": "x", "extra": 1}, 400, airlock.EINVALID},
		{"fail-no-account", map[string]any{"justification": "db down"}, 400, airlock.EINVALID},
		{"fail-long-account", map[string]any{"account": strings.Repeat("a", 300), "justification": "db down"}, 400, airlock.EINVALID},
		{"fail-no-justification", map[string]any{"account": "bg"}, 400, airlock.EINVALID},
		{"fail-blank-justification", map[string]any{"account": "bg", "justification": "   "}, 400, airlock.EINVALID},
		{"fail-oversized-justification", map[string]any{"account": "bg", "justification": strings.Repeat("j", breakglass.MaxJustificationLen+1)}, 400, airlock.EINVALID},
		{"fail-control-char", map[string]any{"account": "bg", "justification": "db\x1b[2J down"}, 400, airlock.EINVALID},
		{"fail-normal-account", map[string]any{"account": "alice", "justification": "db down"}, 403, airlock.EFORBIDDEN},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := b.browser("POST", "/v1/breakglass/begin", c.body, nil)
			if r.status != c.status || r.errCode() != c.code {
				t.Fatalf("%d %s, want %d %s", r.status, r.raw, c.status, c.code)
			}
		})
	}
	if r := b.req("POST", "/v1/breakglass/begin", map[string]any{"account": "bg", "justification": "x"}, "", map[string]string{"Origin": "https://evil.example"}); r.status != 403 {
		t.Fatalf("cross-site begin: %d %s", r.status, r.raw)
	}
	// A normal user's passkey on the break-glass path is refused.
	if _, f := b.use("bg", "db down", b.aliceAuth); f.status == 200 {
		t.Fatalf("alice's passkey opened a break-glass session: %s", f.raw)
	}
	if good, _ := b.rcv.count(); good != 0 {
		t.Fatalf("%d alerts before any use", good)
	}

	tok, eventID := b.mustUse("primary DB unreachable; INC-1")
	if good, bad := b.rcv.count(); good != 1 || bad != 0 {
		t.Fatalf("alerts when the token came back: %d good, %d bad; want 1 delivered first", good, bad)
	}

	// The session, with the token as Bearer only.
	s := b.req("GET", "/v1/breakglass/session", nil, tok, nil)
	if s.status != 200 || nested(s, "event")["id"] != eventID || nested(s, "account")["name"] != "bg" {
		t.Fatalf("session: %d %s", s.status, s.raw)
	}
	for name, c := range map[string]struct {
		auth string
		hdr  map[string]string
	}{
		"fail-none":           {},
		"fail-normal-session": {auth: b.alice},
		"fail-admin-session":  {auth: b.admin},
		"fail-as-cookie":      {hdr: map[string]string{"Cookie": "airlock_session=" + tok}},
		"fail-unknown-bg":     {auth: "bg.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	} {
		if r := b.req("GET", "/v1/breakglass/session", nil, c.auth, c.hdr); r.status != 401 || r.errCode() != airlock.EUNAUTHORIZED {
			t.Errorf("%s: GET /v1/breakglass/session %d %s, want 401", name, r.status, r.raw)
		}
	}
	// A break-glass token is no normal session anywhere.
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/session"}, {"GET", "/v1/me/credentials"}, {"GET", "/v1/admin/users"},
		{"POST", "/v1/elevation/requests"}, {"GET", "/v1/grants"}, {"GET", "/v1/recovery/cases"},
		{"GET", "/v1/admin/breakglass/events"}, {"POST", "/v1/breakglass/review/begin"}, {"POST", "/v1/logout"},
	} {
		if r := b.req(c.method, c.path, map[string]any{}, tok, nil); r.status != 401 {
			t.Errorf("bg token as Bearer on %s %s: %d %s, want 401", c.method, c.path, r.status, r.raw)
		}
	}
	if r := b.req("GET", "/v1/session", nil, "", map[string]string{"Cookie": "airlock_session=" + tok}); r.status != 401 {
		t.Errorf("bg token as cookie on /v1/session: %d", r.status)
	}
	if r := b.req("GET", "/breakglass", nil, "", nil); r.status != 200 || !strings.Contains(string(r.raw), "dba@db-prod, tier:2") {
		t.Errorf("/breakglass page: %d", r.status)
	}

	// Decisions: the break-glass policy, in the normal decision's shape.
	if r := b.decideBG(tok, "db.write", "db-prod"); r.status != 200 || r.body["decision"] != "allow" || r.body["policy_version"] != "breakglass" ||
		!strings.Contains(string(r.raw), "breakglass:"+eventID) {
		t.Fatalf("decide in scope: %d %s", r.status, r.raw)
	}
	if r := b.decideBG(tok, "deploy", "ci"); r.status != 200 || r.body["decision"] != "deny" || !strings.Contains(string(r.raw), "breakglass-out-of-scope") {
		t.Fatalf("decide out of scope: %d %s", r.status, r.raw)
	}
	if r := b.req("POST", "/v1/decide", map[string]any{"action": "db.write", "resource": "db-prod"}, tok, nil); r.status != 401 {
		t.Fatalf("decide with the bg token as Bearer (a normal session lookup): %d %s", r.status, r.raw)
	}
	if r := b.decideBG("bg.nothing", "db.write", "db-prod"); r.status != 401 {
		t.Fatalf("decide with an unknown bg token: %d %s", r.status, r.raw)
	}
	if r := b.decideBG(b.alice, "db.write", "db-prod"); r.status != 200 || r.body["policy_version"] == "breakglass" {
		t.Fatalf("decide with a normal session went through break-glass: %d %s", r.status, r.raw)
	}

	// An SSH certificate: source-address, permit-pty only.
	sc := b.req("POST", "/v1/breakglass/ssh-certificate", map[string]any{"public_key": bgKey(t), "principal": "dba@db-prod"}, tok, nil)
	if sc.status != 200 || sc.body["source_address"] != "127.0.0.1/32" {
		t.Fatalf("ssh certificate: %d %s", sc.status, sc.raw)
	}
	if exts, _ := sc.body["extensions"].([]any); len(exts) != 1 || exts[0] != "permit-pty" {
		t.Fatalf("extensions %v, want permit-pty only", sc.body["extensions"])
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(sc.body["certificate"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	if cert := pk.(*ssh.Certificate); cert.KeyId != "bg/"+eventID || cert.ValidPrincipals[0] != "dba@db-prod" {
		t.Fatalf("certificate key id %q principals %v", cert.KeyId, cert.ValidPrincipals)
	}
	for name, body := range map[string]any{
		"fail-tier-scope":     map[string]any{"public_key": bgKey(t), "principal": "tier:2"},
		"fail-other-resource": map[string]any{"public_key": bgKey(t), "principal": "dba@ci"},
	} {
		if r := b.req("POST", "/v1/breakglass/ssh-certificate", body, tok, nil); r.status != 403 {
			t.Errorf("%s: %d %s, want 403", name, r.status, r.raw)
		}
	}
	for name, body := range map[string]any{
		"fail-bad-key":      map[string]any{"public_key": "ssh-ed25519 AAAA", "principal": "dba@db-prod"},
		"fail-no-principal": map[string]any{"public_key": bgKey(t)},
		"fail-unknown":      map[string]any{"public_key": bgKey(t), "principal": "dba@db-prod", "forward_agent": true},
	} {
		if r := b.req("POST", "/v1/breakglass/ssh-certificate", body, tok, nil); r.status != 400 {
			t.Errorf("%s: %d %s, want 400", name, r.status, r.raw)
		}
	}
	if r := b.req("POST", "/v1/breakglass/ssh-certificate", map[string]any{"public_key": bgKey(t), "principal": "dba@db-prod"}, b.alice, nil); r.status != 401 {
		t.Errorf("ssh certificate with a normal session: %d", r.status)
	}

	// Locked until reviewed: a second use is refused at begin.
	if r, _ := b.use("bg", "again", b.bgAuth); r.status != 403 {
		t.Fatalf("second use before review: %d %s", r.status, r.raw)
	}

	// The sealed key at the normal login is refused.
	lb := b.browser("POST", "/v1/login/begin", map[string]any{}, nil)
	cred, err := b.bgAuth.Assert(b.origin, mustJSON(lb.body["publicKey"]))
	if err != nil {
		t.Fatal(err)
	}
	if r := b.browser("POST", "/v1/login/finish", map[string]any{"ceremony": lb.body["ceremony"], "credential": json.RawMessage(cred), "bearer": true}, nil); r.status != 403 || r.body["token"] != nil {
		t.Fatalf("break-glass key at the normal login: %d %s", r.status, r.raw)
	}

	// Reviewer API: alice has no reviewer role.
	if r := b.req("GET", "/v1/admin/breakglass/events", nil, b.alice, nil); r.status != 403 {
		t.Fatalf("alice lists events: %d %s", r.status, r.raw)
	}
	if r := b.req("GET", "/v1/admin/breakglass/events?unreviewed=maybe", nil, b.admin, nil); r.status != 400 {
		t.Fatalf("bad unreviewed: %d", r.status)
	}
	l := b.req("GET", "/v1/admin/breakglass/events?unreviewed=1", nil, b.admin, nil)
	if l.status != 200 || !listed(l, "events", eventID) {
		t.Fatalf("admin lists unreviewed: %d %s", l.status, l.raw)
	}
	if page := b.req("GET", "/admin/breakglass", nil, b.admin, nil); page.status != 200 || !strings.Contains(string(page.raw), "primary DB unreachable; INC-1") || !strings.Contains(string(page.raw), "bg-end-event") {
		t.Fatalf("/admin/breakglass: %d", page.status)
	}
	// A review of a live use is refused; the reviewer ends it first.
	if r := b.req("POST", "/v1/breakglass/review/begin", map[string]any{"event": eventID, "notes": "ok"}, b.admin, nil); r.status < 400 || r.status == 429 {
		t.Fatalf("review of a live use: %d %s", r.status, r.raw)
	}
	if r := b.req("POST", "/v1/admin/breakglass/events/"+eventID+"/end", map[string]any{"reason": "incident over"}, b.alice, nil); r.status != 403 {
		t.Fatalf("alice ends the use: %d %s", r.status, r.raw)
	}
	if r := b.req("POST", "/v1/admin/breakglass/events/"+eventID+"/end", []byte(`{"reason":`), b.admin, nil); r.status != 400 {
		t.Fatalf("end with bad JSON: %d %s", r.status, r.raw)
	}
	if r := b.req("POST", "/v1/admin/breakglass/events/"+eventID+"/end", map[string]any{"reason": "incident over"}, b.admin, nil); r.status != 200 {
		t.Fatalf("admin ends the use: %d %s", r.status, r.raw)
	}
	if r := b.req("GET", "/v1/breakglass/session", nil, tok, nil); r.status != 401 {
		t.Fatalf("the ended session still answers: %d %s", r.status, r.raw)
	}
	if r := b.decideBG(tok, "db.write", "db-prod"); r.status != 401 {
		t.Fatalf("decide after end: %d %s", r.status, r.raw)
	}
	if r, _ := b.use("bg", "again", b.bgAuth); r.status != 403 {
		t.Fatalf("use after end, before review: %d %s", r.status, r.raw)
	}

	// The review: notes required, bound to the ceremony, by a passkey.
	if r := b.req("POST", "/v1/breakglass/review/begin", map[string]any{"event": eventID}, b.admin, nil); r.status != 400 {
		t.Fatalf("review without notes: %d %s", r.status, r.raw)
	}
	if r := b.req("POST", "/v1/breakglass/review/begin", map[string]any{"event": eventID, "notes": "ok"}, b.alice, nil); r.status != 403 {
		t.Fatalf("alice reviews: %d %s", r.status, r.raw)
	}
	const notes = "INC-1 post-mortem held; use justified"
	rb := b.req("POST", "/v1/breakglass/review/begin", map[string]any{"event": eventID, "notes": notes}, b.admin, nil)
	if rb.status != 200 {
		t.Fatalf("review begin: %d %s", rb.status, rb.raw)
	}
	adminAuth := authenticators[b.srv.URL+"/admin"]
	rc, err := adminAuth.Assert(b.origin, mustJSON(rb.body["publicKey"]))
	if err != nil {
		t.Fatal(err)
	}
	if r := b.req("POST", "/v1/breakglass/review/finish", map[string]any{"ceremony": rb.body["ceremony"], "credential": json.RawMessage(rc), "notes": notes + " (edited)"}, b.admin, nil); r.status < 400 {
		t.Fatalf("review finish with other notes than signed: %d %s", r.status, r.raw)
	}
	rb = b.req("POST", "/v1/breakglass/review/begin", map[string]any{"event": eventID, "notes": notes}, b.admin, nil)
	rc, err = adminAuth.Assert(b.origin, mustJSON(rb.body["publicKey"]))
	if err != nil {
		t.Fatal(err)
	}
	rf := b.req("POST", "/v1/breakglass/review/finish", map[string]any{"ceremony": rb.body["ceremony"], "credential": json.RawMessage(rc), "notes": notes}, b.admin, nil)
	if rf.status != 200 || nested(rf, "event")["review_notes"] != notes || nested(rf, "event")["reviewed_by"] == "" {
		t.Fatalf("review finish: %d %s", rf.status, rf.raw)
	}
	if l := b.req("GET", "/v1/admin/breakglass/events?unreviewed=1", nil, b.admin, nil); l.status != 200 || listed(l, "events", eventID) {
		t.Fatalf("still unreviewed: %d %s", l.status, l.raw)
	}
	// Reviewed: the account may be used again, with a new alert.
	tok2, ev2 := b.mustUse("second incident INC-2")
	if ev2 == eventID || tok2 == tok {
		t.Fatal("the second use reused the first")
	}
	if good, _ := b.rcv.count(); good != 2 {
		t.Fatalf("alerts after two uses: %d", good)
	}
	if r := b.req("POST", "/v1/breakglass/end", map[string]any{"extra": 1}, tok2, nil); r.status != 400 {
		t.Fatalf("end with an unknown field: %d", r.status)
	}
	if r := b.req("POST", "/v1/breakglass/end", nil, tok2, nil); r.status != 200 {
		t.Fatalf("holder ends: %d %s", r.status, r.raw)
	}
	if r := b.req("POST", "/v1/breakglass/end", nil, tok2, nil); r.status != 401 {
		t.Fatalf("end twice: %d %s", r.status, r.raw)
	}
	if n := len(mustAudit(t, b.env, "breakglass.started")); n != 2 {
		t.Fatalf("%d breakglass.started events, want 2", n)
	}
}

func mustAudit(t *testing.T, e *env, typ string) []*airlock.AuditEvent {
	t.Helper()
	evs, err := e.store.ListAudit(context.Background(), airlock.AuditFilter{Type: typ, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestBreakGlassHTTPStoreDown: with the store stopped, the break-glass
// routes still work — begin (its rate limit falls back to memory), finish
// from the static credential file, the session, decisions and an SSH
// certificate — while normal logins and sessions fail closed.
func TestBreakGlassHTTPStoreDown(t *testing.T) {
	b := newBGEnv(t, func(s *airhttp.Server, _ *breakglass.Config) { s.BeginPerMinute = 3 })
	b.sw.stopped.Store(true)

	if r := b.req("GET", "/readyz", nil, "", nil); r.status != 503 {
		t.Fatalf("readyz with the store down: %d", r.status)
	}
	if r := b.req("GET", "/v1/session", nil, b.alice, nil); r.status < 500 {
		t.Fatalf("a normal session with the store down: %d %s", r.status, r.raw)
	}
	if r := b.browser("POST", "/v1/login/begin", map[string]any{}, nil); r.status != 503 {
		t.Fatalf("normal login begin with the store down: %d %s", r.status, r.raw)
	}
	tok, eventID := b.mustUse("postgres cluster down; INC-9")
	if good, _ := b.rcv.count(); good != 1 {
		t.Fatalf("alerts with the store down: %d", good)
	}
	if r := b.req("GET", "/v1/breakglass/session", nil, tok, nil); r.status != 200 || nested(r, "event")["id"] != eventID {
		t.Fatalf("session with the store down: %d %s", r.status, r.raw)
	}
	if r := b.decideBG(tok, "db.write", "db-prod"); r.status != 200 || r.body["decision"] != "allow" {
		t.Fatalf("decide with the store down: %d %s", r.status, r.raw)
	}
	if r := b.decideBG(tok, "deploy", "ci"); r.status != 200 || r.body["decision"] != "deny" {
		t.Fatalf("decide out of scope with the store down: %d %s", r.status, r.raw)
	}
	if r := b.req("POST", "/v1/breakglass/ssh-certificate", map[string]any{"public_key": bgKey(t), "principal": "dba@db-prod"}, tok, nil); r.status != 200 {
		t.Fatalf("ssh certificate with the store down: %d %s", r.status, r.raw)
	}
	// Offline the local audit file is the lock: a second use is refused.
	if r, _ := b.use("bg", "again", b.bgAuth); r.status != 403 {
		t.Fatalf("second use offline: %d %s", r.status, r.raw)
	}
	// The per-address limit still holds, in memory: the third begin is
	// answered (refused: locked), the fourth is over the limit.
	if r := b.browser("POST", "/v1/breakglass/begin", map[string]any{"account": "bg", "justification": "x"}, nil); r.status != 403 {
		t.Fatalf("third begin in a minute with the store down: %d %s", r.status, r.raw)
	}
	if r := b.browser("POST", "/v1/breakglass/begin", map[string]any{"account": "bg", "justification": "x"}, nil); r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("fourth begin in a minute with the store down: %d %s", r.status, r.raw)
	}
	b.clock.Add(time.Minute)
	if r := b.browser("POST", "/v1/breakglass/begin", map[string]any{"account": "alice", "justification": "x"}, nil); r.status == 429 {
		t.Fatalf("begin in the next minute still limited: %d %s", r.status, r.raw)
	}
	if r := b.req("POST", "/v1/breakglass/end", nil, tok, nil); r.status != 200 {
		t.Fatalf("end with the store down: %d %s", r.status, r.raw)
	}
	// The events went to the local file, not the (stopped) store.
	b.sw.stopped.Store(false)
	if n := len(mustAudit(t, b.env, "breakglass.started")); n != 0 {
		t.Fatalf("%d breakglass.started events in the store before the merge", n)
	}
	if _, err := b.server.BreakGlass.Merge(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(mustAudit(t, b.env, "breakglass.started")); n != 1 {
		t.Fatalf("%d breakglass.started events after the merge, want 1", n)
	}
}

// TestBreakGlassHTTPRateLimit: begin is limited per address through the
// store's counters while it is up; the finish is single-use by itself.
func TestBreakGlassHTTPRateLimit(t *testing.T) {
	b := newBGEnv(t, func(s *airhttp.Server, _ *breakglass.Config) { s.BeginPerMinute = 2 })
	for i := 0; i < 2; i++ {
		if r := b.browser("POST", "/v1/breakglass/begin", map[string]any{"account": "bg", "justification": "x"}, nil); r.status != 200 {
			t.Fatalf("begin %d: %d %s", i, r.status, r.raw)
		}
	}
	if r := b.browser("POST", "/v1/breakglass/begin", map[string]any{"account": "bg", "justification": "x"}, nil); r.status != 429 || r.errCode() != airlock.ERATELIMIT {
		t.Fatalf("third begin: %d %s", r.status, r.raw)
	}
	// A replayed finish is refused: the ceremony is single use.
	b.clock.Add(time.Minute)
	begin := b.browser("POST", "/v1/breakglass/begin", map[string]any{"account": "bg", "justification": "replay test"}, nil)
	cred, err := b.bgAuth.Assert(b.origin, mustJSON(begin.body["publicKey"]))
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"ceremony": begin.body["ceremony"], "credential": json.RawMessage(cred)}
	if r := b.browser("POST", "/v1/breakglass/finish", body, nil); r.status != 200 {
		t.Fatalf("finish: %d %s", r.status, r.raw)
	}
	if r := b.browser("POST", "/v1/breakglass/finish", body, nil); r.status == 200 {
		t.Fatalf("replayed finish: %d %s", r.status, r.raw)
	}
	for _, raw := range []string{`{`, `{"ceremony":"x"}`, `{"ceremony":"x","credential":{},"bearer":true}`, `{"ceremony":"x","credential":{},"x":1}`} {
		if r := b.browser("POST", "/v1/breakglass/finish", []byte(raw), nil); r.status != 400 {
			t.Errorf("finish %s: %d %s", raw, r.status, r.raw)
		}
	}
}

// TestBreakGlassHTTPUnavailable: without a break-glass service every route
// answers 503 and the page says so; a bg token in /v1/decide is not taken
// for a normal session.
func TestBreakGlassHTTPUnavailable(t *testing.T) {
	e := newEnv(t, nil)
	admin, _ := e.bootstrapAdmin()
	for _, c := range []struct{ method, path, auth string }{
		{"POST", "/v1/breakglass/begin", ""}, {"POST", "/v1/breakglass/finish", ""},
		{"GET", "/v1/breakglass/session", "bg.x"}, {"POST", "/v1/breakglass/end", "bg.x"},
		{"POST", "/v1/breakglass/ssh-certificate", "bg.x"},
		{"GET", "/v1/admin/breakglass/events", admin}, {"POST", "/v1/admin/breakglass/events/bge_x/end", admin},
		{"POST", "/v1/breakglass/review/begin", admin}, {"POST", "/v1/breakglass/review/finish", admin},
	} {
		r := e.req(c.method, c.path, map[string]any{}, c.auth, map[string]string{"Origin": e.origin})
		if r.status != 503 || r.errCode() != airlock.EUNAVAILABLE {
			t.Errorf("%s %s: %d %s, want 503", c.method, c.path, r.status, r.raw)
		}
	}
	for _, path := range []string{"/breakglass", "/admin/breakglass"} {
		if r := e.req("GET", path, nil, admin, nil); r.status != 503 || !strings.Contains(string(r.raw), "not configured") {
			t.Errorf("GET %s: %d", path, r.status)
		}
	}
	if r := e.req("POST", "/v1/decide", map[string]any{"session": "bg.x", "action": "a", "resource": "r"}, "", nil); r.status != 503 {
		t.Errorf("decide with a bg token and no service: %d %s", r.status, r.raw)
	}
}
