package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"airlock"
	"airlock/audit"
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
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a full Airlock stack behind an httptest server. Browsers would use
// origin http://localhost:PORT; the software authenticator and the Origin
// header say so, while the test client dials 127.0.0.1.
type env struct {
	t        testing.TB
	srv      *httptest.Server
	store    *sqlite.Store
	clock    *clock
	origin   string
	passkeys *passkey.Service
	decide   *decide.Service
	client   *http.Client
}

func newEnv(t testing.TB, mod func(*airhttp.Server)) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	e := &env{t: t, store: st, clock: c}
	srv := httptest.NewUnstartedServer(nil)
	e.origin = "http://localhost:" + strings.Split(srv.Listener.Addr().String(), ":")[1]
	log := audit.New(st, c.Now, nil)
	e.passkeys, err = passkey.New(passkey.Config{RPID: "localhost", RPName: "Airlock test", Origins: []string{e.origin},
		Tiers: passkey.DefaultTierPolicies(), DeviceRules: device.DefaultRules(), Now: c.Now}, st, log, notify.NewOutbox(st, c.Now))
	if err != nil {
		t.Fatal(err)
	}
	e.decide = &decide.Service{Store: st, Engine: policy.NewEngine(policy.Default(), policy.DefaultConfig()), Catalog: decide.QuickStart(),
		Signals: &risk.Gatherer{Store: st, Now: c.Now}, Audit: log, DeviceRules: device.DefaultRules(), BaseURL: e.origin, Now: c.Now}
	s := &airhttp.Server{Store: st, Passkeys: e.passkeys, Sessions: session.New(session.Config{Now: c.Now}, st, log), Audit: log,
		DeviceRules: device.DefaultRules(), Origins: []string{e.origin}, Now: c.Now, Decide: e.decide}
	if mod != nil {
		mod(s)
	}
	srv.Config.Handler = s.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	e.srv = srv
	e.client = srv.Client()
	return e
}

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (r resp) errCode() string {
	if e, ok := r.body["error"].(map[string]any); ok {
		s, _ := e["code"].(string)
		return s
	}
	return ""
}

func (r resp) errMsg() string {
	if e, ok := r.body["error"].(map[string]any); ok {
		s, _ := e["message"].(string)
		return s
	}
	return ""
}

// req sends a request; auth is a bearer token ("" for none); hdr adds headers.
func (e *env) req(method, path string, body any, auth string, hdr map[string]string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	r, _ := http.NewRequest(method, e.srv.URL+path, rd)
	if auth != "" {
		r.Header.Set("Authorization", "Bearer "+auth)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	res, err := e.client.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, header: res.Header, raw: raw}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

// browser sends a request as same-origin page JavaScript would.
func (e *env) browser(method, path string, body any, cookie *http.Cookie) resp {
	e.t.Helper()
	h := map[string]string{"Origin": e.origin}
	if cookie != nil {
		h["Cookie"] = cookie.Name + "=" + cookie.Value
	}
	return e.req(method, path, body, "", h)
}

func (e *env) enrol(a *passkeytest.Authenticator, secret string) resp {
	e.t.Helper()
	b := e.browser("POST", "/v1/enrol/begin", map[string]any{"token": secret}, nil)
	if b.status != 200 {
		return b
	}
	cred, _, err := a.Register(e.origin, mustJSON(b.body["publicKey"]))
	if err != nil {
		e.t.Fatal(err)
	}
	return e.browser("POST", "/v1/enrol/finish", map[string]any{"ceremony": b.body["ceremony"], "credential": json.RawMessage(cred)}, nil)
}

// login signs in with a and returns the bearer token and the response.
func (e *env) login(a *passkeytest.Authenticator) (string, resp) {
	e.t.Helper()
	b := e.browser("POST", "/v1/login/begin", map[string]any{}, nil)
	if b.status != 200 {
		e.t.Fatalf("login begin: %d %s", b.status, b.raw)
	}
	cred, err := a.Assert(e.origin, mustJSON(b.body["publicKey"]))
	if err != nil {
		e.t.Fatal(err)
	}
	f := e.browser("POST", "/v1/login/finish", map[string]any{"ceremony": b.body["ceremony"], "credential": json.RawMessage(cred), "bearer": true}, nil)
	tok, _ := f.body["token"].(string)
	return tok, f
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// bootstrapAdmin enrols and signs in the bootstrap admin and returns its
// bearer token.
func (e *env) bootstrapAdmin() (string, *passkeytest.Authenticator) {
	e.t.Helper()
	secret, _, err := e.passkeys.Bootstrap(context.Background())
	if err != nil || secret == "" {
		e.t.Fatalf("bootstrap: %q %v", secret, err)
	}
	a := passkeytest.New()
	if r := e.enrol(a, secret); r.status != 200 {
		e.t.Fatalf("bootstrap enrol: %d %s", r.status, r.raw)
	}
	authenticators[e.srv.URL+"/admin"] = a
	tok, r := e.login(a)
	if r.status != 200 || tok == "" {
		e.t.Fatalf("admin login: %d %s", r.status, r.raw)
	}
	return tok, a
}

// person creates a user and a compliant device through the admin API,
// enrols a passkey for them and signs them in.
func (e *env) person(admin, name string, tier int, roles []string, flags passkeytest.Flags) (string, *passkeytest.Authenticator, string) {
	e.t.Helper()
	u := e.req("POST", "/v1/admin/users", map[string]any{"name": name, "tier": tier, "roles": roles}, admin, nil)
	if u.status != 201 {
		e.t.Fatalf("create user: %d %s", u.status, u.raw)
	}
	uid := u.body["id"].(string)
	devID := e.compliantDevice(admin, uid)
	tr := e.req("POST", "/v1/admin/enrolment-tokens", map[string]any{"user": uid, "device": devID}, admin, nil)
	if tr.status != 201 {
		e.t.Fatalf("token: %d %s", tr.status, tr.raw)
	}
	a := passkeytest.New()
	a.Flags = flags
	if r := e.enrol(a, tr.body["token"].(string)); r.status != 200 {
		e.t.Fatalf("enrol %s: %d %s", name, r.status, r.raw)
	}
	authenticators[e.srv.URL+"/"+name] = a
	tok, r := e.login(a)
	if r.status != 200 {
		e.t.Fatalf("login %s: %d %s", name, r.status, r.raw)
	}
	return tok, a, uid
}

func (e *env) compliantDevice(admin, owner string) string {
	e.t.Helper()
	d := e.req("POST", "/v1/admin/devices", map[string]any{"name": "laptop-" + owner, "owner": owner, "kind": "managed"}, admin, nil)
	if d.status != 201 {
		e.t.Fatalf("create device: %d %s", d.status, d.raw)
	}
	id := d.body["id"].(string)
	if r := e.req("PATCH", "/v1/admin/devices/"+id, map[string]any{"trust": "trusted"}, admin, nil); r.status != 200 {
		e.t.Fatalf("trust: %d %s", r.status, r.raw)
	}
	p := e.req("PUT", "/v1/admin/devices/"+id+"/posture", map[string]any{"managed": true, "disk_encrypted": true, "screen_lock": true, "edr_running": true}, admin, nil)
	if p.status != 200 || p.body["compliant"] != true {
		e.t.Fatalf("posture: %d %s", p.status, p.raw)
	}
	return id
}

func TestHealthReadyMetrics(t *testing.T) {
	e := newEnv(t, nil)
	if r := e.req("GET", "/healthz", nil, "", nil); r.status != 200 {
		t.Fatalf("healthz %d", r.status)
	}
	if r := e.req("GET", "/readyz", nil, "", nil); r.status != 200 {
		t.Fatalf("readyz %d", r.status)
	}
	e.req("GET", "/healthz", nil, "", nil)
	m := e.req("GET", "/metrics", nil, "", nil)
	if m.status != 200 || !bytes.Contains(m.raw, []byte(`airlock_http_requests_total{code="200",route="GET /healthz"} 2`)) {
		t.Fatalf("metrics: %d %s", m.status, m.raw)
	}
	// Fail closed: a store that is gone is not ready.
	e.store.Close()
	if r := e.req("GET", "/readyz", nil, "", nil); r.status != 503 || r.errCode() != airlock.EUNAVAILABLE {
		t.Fatalf("readyz with closed store: %d %s", r.status, r.raw)
	}
}

func TestEnrolLoginSessionLogout(t *testing.T) {
	e := newEnv(t, nil)
	admin, _ := e.bootstrapAdmin()
	tok, a, uid := e.person(admin, "alice", 1, nil, passkeytest.Flags{})

	s := e.req("GET", "/v1/session", nil, tok, nil)
	if s.status != 200 {
		t.Fatalf("session: %d %s", s.status, s.raw)
	}
	if s.body["tier"] != float64(1) || s.body["user"].(map[string]any)["name"] != "alice" {
		t.Fatalf("session body %s", s.raw)
	}
	for _, k := range []string{"auth_time", "last_uv_at", "absolute_deadline", "idle_deadline", "credential", "amr", "acr"} {
		if _, ok := s.body[k]; !ok {
			t.Fatalf("session lacks %s: %s", k, s.raw)
		}
	}
	if amr := s.body["amr"].([]any); len(amr) != 3 || amr[0] != "hwk" {
		t.Fatalf("amr %v", amr)
	}
	// The passkey-added notice is in the outbox.
	ns, _ := e.store.ListNotificationsByUser(context.Background(), uid)
	if len(ns) != 1 || ns[0].Kind != "passkey.added" {
		t.Fatalf("notifications %+v", ns)
	}
	// A second login gets a new session.
	tok2, _ := e.login(a)
	if tok2 == tok || tok2 == "" {
		t.Fatal("login reused the session secret")
	}
	// Logout ends only that session.
	if r := e.req("POST", "/v1/logout", nil, tok, nil); r.status != 200 {
		t.Fatalf("logout %d %s", r.status, r.raw)
	}
	if r := e.req("GET", "/v1/session", nil, tok, nil); r.status != 401 {
		t.Fatalf("session after logout: %d", r.status)
	}
	if r := e.req("GET", "/v1/session", nil, tok2, nil); r.status != 200 {
		t.Fatalf("other session after logout: %d", r.status)
	}
}

func TestCookieAttributes(t *testing.T) {
	for _, secure := range []bool{false, true} {
		e := newEnv(t, func(s *airhttp.Server) { s.Secure = secure })
		_, a := e.bootstrapAdmin()
		_, r := e.login(a)
		var c *http.Cookie
		for _, ck := range (&http.Response{Header: r.header}).Cookies() {
			c = ck
		}
		if c == nil {
			t.Fatal("no cookie")
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
			t.Fatalf("cookie %+v", c)
		}
		if secure && (c.Name != "__Host-airlock_session" || !c.Secure) {
			t.Fatalf("https cookie %+v", c)
		}
		if hsts := r.header.Get("Strict-Transport-Security"); secure != (hsts != "") {
			t.Fatalf("secure=%v but HSTS %q", secure, hsts)
		}
		if !secure && c.Name != "airlock_session" {
			t.Fatalf("http cookie %+v", c)
		}
	}
}

func TestOriginCheck(t *testing.T) {
	e := newEnv(t, nil)
	_, a := e.bootstrapAdmin()
	_, r := e.login(a)
	cookie := (&http.Response{Header: r.header}).Cookies()[0]
	ck := cookie.Name + "=" + cookie.Value
	cases := []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"fail-no-origin", map[string]string{"Cookie": ck}, 403},
		{"fail-other-origin", map[string]string{"Cookie": ck, "Origin": "https://evil.example"}, 403},
		{"fail-null-origin", map[string]string{"Cookie": ck, "Origin": "null"}, 403},
		{"ok-same-origin", map[string]string{"Cookie": ck, "Origin": e.origin}, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := e.req("POST", "/v1/admin/devices", map[string]any{"name": tc.name, "owner": "shared", "kind": "shared-station"}, "", tc.hdr)
			want := tc.status
			if want == 200 {
				want = 201
			}
			if res.status != want {
				t.Fatalf("status %d, want %d: %s", res.status, want, res.raw)
			}
		})
	}
	// A cookie-less cross-site ceremony start is refused too.
	if res := e.req("POST", "/v1/login/begin", map[string]any{}, "", map[string]string{"Origin": "https://evil.example"}); res.status != 403 {
		t.Fatalf("cross-site login begin: %d", res.status)
	}
	// Reads are not state-changing.
	if res := e.req("GET", "/v1/session", nil, "", map[string]string{"Cookie": ck}); res.status != 200 {
		t.Fatalf("GET with cookie: %d %s", res.status, res.raw)
	}
}

func TestRateLimitAndBodyLimit(t *testing.T) {
	e := newEnv(t, func(s *airhttp.Server) { s.BeginPerMinute = 3 })
	for i := 0; i < 3; i++ {
		if r := e.browser("POST", "/v1/login/begin", map[string]any{}, nil); r.status != 200 {
			t.Fatalf("begin %d: %d", i, r.status)
		}
	}
	r := e.browser("POST", "/v1/login/begin", map[string]any{}, nil)
	if r.status != 429 || r.errCode() != airlock.ERATELIMIT || r.header.Get("Retry-After") == "" {
		t.Fatalf("4th begin: %d %s", r.status, r.raw)
	}
	e.clock.Add(time.Minute)
	if r := e.browser("POST", "/v1/login/begin", map[string]any{}, nil); r.status != 200 {
		t.Fatalf("begin in next window: %d", r.status)
	}
	big := append([]byte(`{"ceremony":"x","credential":"`), bytes.Repeat([]byte("a"), airhttp.MaxBodyBytes)...)
	big = append(big, []byte(`"}`)...)
	if r := e.browser("POST", "/v1/login/finish", big, nil); r.status != 400 || !strings.Contains(r.errMsg(), "too large") {
		t.Fatalf("oversized body: %d %s", r.status, r.raw)
	}
	for _, body := range []string{`{`, `[]`, `{"ceremony":1}`, `{"ceremony":"a","credential":{},"extra":1}`, `{"ceremony":"a","credential":{}} {}`, ``} {
		r := e.browser("POST", "/v1/login/finish", []byte(body), nil)
		if r.status != 400 || r.errCode() != airlock.EINVALID {
			t.Fatalf("body %q: %d %s", body, r.status, r.raw)
		}
	}
}

func TestAdminRule(t *testing.T) {
	e := newEnv(t, airlockTier1)
	admin, adminAuth := e.bootstrapAdmin()
	// Tier 1 without the admin role.
	sre, _, _ := e.person(admin, "sre", 1, nil, passkeytest.Flags{})
	// Admin role, but only a synced passkey: a tier-2 session.
	synced, _, _ := e.person(admin, "synced-admin", 0, []string{airlock.RoleAdmin}, passkeytest.Flags{BackupEligible: true, BackupState: true})
	// Tier-1 admin.
	t1admin, t1a, _ := e.person(admin, "t1admin", 1, []string{airlock.RoleAdmin}, passkeytest.Flags{})

	cases := []struct {
		name  string
		token string
		code  string
	}{
		{"fail-no-role", sre, airlock.EFORBIDDEN},
		{"fail-tier2-session", synced, airlock.EFORBIDDEN},
		{"fail-no-session", "", airlock.EUNAUTHORIZED},
		{"fail-bogus-token", "bogus", airlock.EUNAUTHORIZED},
		{"ok-tier1-admin", t1admin, ""},
		{"ok-tier0-admin", admin, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.req("GET", "/v1/admin/users", nil, tc.token, nil)
			if r.errCode() != tc.code {
				t.Fatalf("code %q, want %q: %s", r.errCode(), tc.code, r.raw)
			}
		})
	}
	denied, _ := e.store.ListAudit(context.Background(), airlock.AuditFilter{Type: "admin.denied"})
	if len(denied) != 2 {
		t.Fatalf("admin.denied events %d, want 2", len(denied))
	}

	// Reads need the role and the tier only. A change is decided by the
	// policy: a critical admin action more than 900 s after a tier-1
	// session's last passkey verification needs a step-up bound to that
	// change (RFC 9470 challenge; TestAdminStepUp goes through it).
	e.clock.Add(15*time.Minute + time.Second)
	if r := e.req("GET", "/v1/admin/users", nil, t1admin, nil); r.status != 200 {
		t.Fatalf("read with stale UV: %d %s", r.status, r.raw)
	}
	r := e.req("POST", "/v1/admin/users", map[string]any{"name": "late"}, t1admin, nil)
	if r.status != 401 || r.errCode() != "insufficient_user_authentication" || !strings.Contains(r.header.Get("WWW-Authenticate"), `max_age="900"`) {
		t.Fatalf("change with stale UV: %d %s %s", r.status, r.header.Get("WWW-Authenticate"), r.raw)
	}
	fresh, _ := e.login(t1a)
	if r := e.req("GET", "/v1/admin/users", nil, fresh, nil); r.status != 200 {
		t.Fatalf("after re-login: %d %s", r.status, r.raw)
	}
	admin, _ = e.login(adminAuth) // its tier-0 session went idle meanwhile

	// No escalation: a tier-1 admin cannot create or manage tier-0 accounts.
	if r := e.req("POST", "/v1/admin/users", map[string]any{"name": "boss", "tier": 0}, fresh, nil); r.status != 403 || !strings.Contains(r.errMsg(), "cannot manage") {
		t.Fatalf("tier-1 admin created a tier-0 user: %d %s", r.status, r.raw)
	}
	users := e.req("GET", "/v1/admin/users", nil, fresh, nil).body["users"].([]any)
	var adminID, adminDevice string
	for _, u := range users {
		if u.(map[string]any)["name"] == "admin" {
			adminID = u.(map[string]any)["id"].(string)
		}
	}
	devs := e.req("GET", "/v1/admin/devices", nil, fresh, nil).body["devices"].([]any)
	for _, d := range devs {
		if d.(map[string]any)["owner"] == adminID {
			adminDevice = d.(map[string]any)["id"].(string)
		}
	}
	if r := e.req("POST", "/v1/admin/enrolment-tokens", map[string]any{"user": adminID, "device": adminDevice}, fresh, nil); r.status != 403 {
		t.Fatalf("tier-1 admin issued an enrolment link for a tier-0 account: %d %s", r.status, r.raw)
	}
	if r := e.req("PATCH", "/v1/admin/users/"+adminID, map[string]any{"disabled": true}, fresh, nil); r.status != 403 {
		t.Fatalf("tier-1 admin disabled a tier-0 account: %d %s", r.status, r.raw)
	}
	// Nobody changes their own privileges.
	if r := e.req("PATCH", "/v1/admin/users/admin", map[string]any{"roles": []string{}}, admin, nil); r.status != 403 {
		t.Fatalf("self role change: %d %s", r.status, r.raw)
	}
}

func TestDisableUserAndRevokeEndSessions(t *testing.T) {
	e := newEnv(t, nil)
	admin, _ := e.bootstrapAdmin()
	tok, a, uid := e.person(admin, "bob", 2, nil, passkeytest.Flags{})
	if r := e.req("PATCH", "/v1/admin/users/"+uid, map[string]any{"disabled": true}, admin, nil); r.status != 200 {
		t.Fatalf("disable: %d %s", r.status, r.raw)
	}
	if r := e.req("GET", "/v1/session", nil, tok, nil); r.status != 401 {
		t.Fatalf("disabled user's session: %d", r.status)
	}
	b := e.browser("POST", "/v1/login/begin", map[string]any{}, nil)
	cred, _ := a.Assert(e.origin, mustJSON(b.body["publicKey"]))
	if r := e.browser("POST", "/v1/login/finish", map[string]any{"ceremony": b.body["ceremony"], "credential": json.RawMessage(cred)}, nil); r.status != 403 || !strings.Contains(r.errMsg(), "disabled") {
		t.Fatalf("disabled user logged in: %d %s", r.status, r.raw)
	}
	// Re-enable; then revoking the device ends the session.
	e.req("PATCH", "/v1/admin/users/"+uid, map[string]any{"disabled": false}, admin, nil)
	tok, _ = e.login(a)
	s := e.req("GET", "/v1/session", nil, tok, nil)
	devID := s.body["device"].(map[string]any)["id"].(string)
	if r := e.req("PATCH", "/v1/admin/devices/"+devID, map[string]any{"trust": "revoked"}, admin, nil); r.status != 200 {
		t.Fatalf("revoke device: %d %s", r.status, r.raw)
	}
	if r := e.req("GET", "/v1/session", nil, tok, nil); r.status != 401 {
		t.Fatalf("session on revoked device: %d", r.status)
	}
	ended, _ := e.store.ListAudit(context.Background(), airlock.AuditFilter{Type: "session.ended", Newest: true, Limit: 1})
	if len(ended) != 1 || ended[0].Reason != "device_revoked" || ended[0].UserID != uid || ended[0].DeviceID != devID || ended[0].CredentialID == "" {
		t.Fatalf("device revoke's session.ended lacks correlation ids: %+v", ended)
	}
	// Revoking a credential ends the sessions and the credential is dead.
	e.req("PATCH", "/v1/admin/devices/"+devID, map[string]any{"trust": "trusted"}, admin, nil)
	tok, _ = e.login(a)
	credID := e.req("GET", "/v1/session", nil, tok, nil).body["credential"].(string)
	if r := e.req("POST", "/v1/admin/credentials/"+credID+"/revoke", nil, admin, nil); r.status != 200 {
		t.Fatalf("revoke credential: %d %s", r.status, r.raw)
	}
	if r := e.req("GET", "/v1/session", nil, tok, nil); r.status != 401 {
		t.Fatalf("session after credential revoked: %d", r.status)
	}
	if _, r := e.login(a); r.status < 400 || !strings.Contains(r.errMsg(), "revoked") {
		t.Fatalf("revoked credential logged in: %d %s", r.status, r.raw)
	}
}

func TestAdminInputValidation(t *testing.T) {
	e := newEnv(t, nil)
	admin, _ := e.bootstrapAdmin()
	before, _ := e.store.ListUsers(context.Background())
	bad := []map[string]any{
		{"name": "Bad Name"},
		{"name": ""},
		{"name": "x", "tier": 3},
		{"name": "x", "tier": -1},
		{"name": "x", "kind": "robot"},
		{"name": "x", "roles": []string{"UPPER"}},
		{"name": "x", "kind": "contractor"},
		{"name": strings.Repeat("a", 65)},
	}
	for _, b := range bad {
		if r := e.req("POST", "/v1/admin/users", b, admin, nil); r.status != 400 || r.errMsg() == "" {
			t.Fatalf("%v: %d %s", b, r.status, r.raw)
		}
	}
	if r := e.req("POST", "/v1/admin/users", map[string]any{"name": "admin"}, admin, nil); r.status != 409 {
		t.Fatalf("duplicate name: %d %s", r.status, r.raw)
	}
	after, _ := e.store.ListUsers(context.Background())
	if len(after) != len(before) {
		t.Fatal("bad input changed the store")
	}
	d := e.req("POST", "/v1/admin/devices", map[string]any{"name": "d", "owner": "shared", "kind": "managed"}, admin, nil)
	id := d.body["id"].(string)
	for _, b := range []map[string]any{{"patch_level": "last tuesday"}, {"reported_at": time.Now().Add(time.Hour)}} {
		if r := e.req("PUT", "/v1/admin/devices/"+id+"/posture", b, admin, nil); r.status != 400 {
			t.Fatalf("posture %v: %d %s", b, r.status, r.raw)
		}
	}
	if r := e.req("PATCH", "/v1/admin/devices/"+id, map[string]any{"trust": "maybe"}, admin, nil); r.status != 400 {
		t.Fatalf("bad trust: %d", r.status)
	}
	if r := e.req("POST", "/v1/admin/devices", map[string]any{"name": "d", "owner": "nobody", "kind": "managed"}, admin, nil); r.status != 400 {
		t.Fatalf("unknown owner: %d %s", r.status, r.raw)
	}
	// A device that belongs to someone else cannot carry this user's passkey.
	u := e.req("POST", "/v1/admin/users", map[string]any{"name": "carol"}, admin, nil)
	other := e.req("POST", "/v1/admin/devices", map[string]any{"name": "admins-laptop", "owner": "admin", "kind": "managed"}, admin, nil)
	if r := e.req("POST", "/v1/admin/enrolment-tokens", map[string]any{"user": u.body["id"], "device": other.body["id"]}, admin, nil); r.status != 403 {
		t.Fatalf("token for another user's device: %d %s", r.status, r.raw)
	}
}

func TestAuditReadIsAudited(t *testing.T) {
	e := newEnv(t, nil)
	admin, _ := e.bootstrapAdmin()
	r := e.req("GET", "/v1/admin/audit?type=enrol.&limit=10", nil, admin, nil)
	if r.status != 200 {
		t.Fatalf("audit: %d %s", r.status, r.raw)
	}
	evs := r.body["events"].([]any)
	if len(evs) == 0 {
		t.Fatal("no enrol events")
	}
	for _, ev := range evs {
		if !strings.HasPrefix(ev.(map[string]any)["type"].(string), "enrol.") {
			t.Fatalf("filter leaked %v", ev)
		}
	}
	reads, _ := e.store.ListAudit(context.Background(), airlock.AuditFilter{Type: "audit.read"})
	if len(reads) != 1 {
		t.Fatalf("audit.read events: %d", len(reads))
	}
	if r := e.req("GET", "/v1/admin/audit?limit=0", nil, admin, nil); r.status != 400 {
		t.Fatalf("bad limit: %d", r.status)
	}
}

func TestWebPages(t *testing.T) {
	e := newEnv(t, nil)
	// Signed out: home redirects to login.
	noRedirect := *e.client
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := noRedirect.Get(e.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
		t.Fatalf("home signed out: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	r := e.req("GET", "/login", nil, "", nil)
	if r.status != 200 || !bytes.Contains(r.raw, []byte(`data-action="login"`)) || r.header.Get("Content-Security-Policy") == "" {
		t.Fatalf("login page: %d", r.status)
	}
	// Enrol page: specific messages for bad links.
	if r := e.req("GET", "/enrol?token=nope", nil, "", nil); r.status != 404 || !bytes.Contains(r.raw, []byte("unknown enrolment link")) {
		t.Fatalf("unknown link page: %d %s", r.status, r.raw)
	}
	secret, _, _ := e.passkeys.Bootstrap(context.Background())
	r = e.req("GET", "/enrol?token="+secret, nil, "", nil)
	if r.status != 200 || !bytes.Contains(r.raw, []byte("Bootstrap administrator")) {
		t.Fatalf("bootstrap link page: %d %s", r.status, r.raw)
	}
	if r := e.req("GET", "/static/airlock.js", nil, "", nil); r.status != 200 || !bytes.Contains(r.raw, []byte("parseRequestOptionsFromJSON")) {
		t.Fatalf("static js: %d", r.status)
	}
}

func rawJSON(b []byte) json.RawMessage { return json.RawMessage(b) }
