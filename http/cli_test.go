package http_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"airlock"
	"airlock/dpop"
	airhttp "airlock/http"
	"airlock/passkey/passkeytest"
)

// cliKey is the CLI's key pair as `airlock login` makes it.
type cliKey struct {
	priv ed25519.PrivateKey
	jkt  string
}

func newCLIKey(t testing.TB) cliKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jkt, err := dpop.Thumbprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	return cliKey{priv: priv, jkt: jkt}
}

// proof signs a DPoP proof for method and path on e's origin, at the env
// clock's time, for token; mod may change the claims first.
func (e *env) proof(k cliKey, method, path, token string, mod func(*dpop.Claims)) string {
	e.t.Helper()
	c, err := dpop.NewClaims(method, e.origin+path, token, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	if mod != nil {
		mod(&c)
	}
	p, err := dpop.Sign(k.priv, c)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// dpopReq sends a request with "Authorization: DPoP token" and proof (no
// DPoP header when proof is "").
func (e *env) dpopReq(method, path string, body any, token, proof string) resp {
	e.t.Helper()
	h := map[string]string{"Authorization": "DPoP " + token}
	if proof != "" {
		h["DPoP"] = proof
	}
	return e.req(method, path, body, "", h)
}

// authorizeCLI asks, as the (freshly signed-in) browser session tok, for a
// login code for k and returns the redirect URL.
func (e *env) authorizeCLI(tok string, k cliKey, port int, state string) resp {
	e.t.Helper()
	return e.req("POST", "/v1/cli/authorize", map[string]any{"port": port, "state": state, "jkt": k.jkt}, tok, nil)
}

func codeOf(t testing.TB, r resp) string {
	t.Helper()
	u, err := url.Parse(r.body["redirect"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("code")
}

// cliLogin runs the whole loopback login for the browser session tok and
// returns the CLI's key-bound token.
func (e *env) cliLogin(tok string, k cliKey) (string, resp) {
	e.t.Helper()
	a := e.authorizeCLI(tok, k, 40000, "st-1")
	if a.status != 200 {
		e.t.Fatalf("authorize: %d %s", a.status, a.raw)
	}
	code := codeOf(e.t, a)
	r := e.req("POST", "/v1/cli/token", map[string]any{"code": code}, "", map[string]string{"DPoP": e.proof(k, "POST", "/v1/cli/token", "", nil)})
	if r.status != 200 {
		e.t.Fatalf("token: %d %s", r.status, r.raw)
	}
	return r.body["token"].(string), r
}

func auditTypes(t testing.TB, e *env, typ string) []*airlock.AuditEvent {
	t.Helper()
	evs, err := e.store.ListAudit(context.Background(), airlock.AuditFilter{Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestCLILoginFlow(t *testing.T) {
	e := newEnv(t, nil)
	admin, _ := e.bootstrapAdmin()
	k := newCLIKey(t)
	a := e.authorizeCLI(admin, k, 40123, "Abc-._~9")
	if a.status != 200 {
		t.Fatalf("authorize: %d %s", a.status, a.raw)
	}
	u, _ := url.Parse(a.body["redirect"].(string))
	if u.Scheme != "http" || u.Host != "127.0.0.1:40123" || u.Path != "/callback" || u.Query().Get("state") != "Abc-._~9" || len(u.Query().Get("code")) < 40 {
		t.Fatalf("redirect %s", u)
	}
	// The code is stored only as its hash.
	code := u.Query().Get("code")
	r := e.req("POST", "/v1/cli/token", map[string]any{"code": code}, "", map[string]string{"DPoP": e.proof(k, "POST", "/v1/cli/token", "", nil)})
	if r.status != 200 {
		t.Fatalf("token: %d %s", r.status, r.raw)
	}
	tok := r.body["token"].(string)
	if tok == "" || tok == admin {
		t.Fatal("no new token")
	}
	sid := r.body["session"].(map[string]any)["id"].(string)
	sess, err := e.store.FindSessionByID(context.Background(), sid)
	if err != nil {
		t.Fatal(err)
	}
	browser := e.req("GET", "/v1/session", nil, admin, nil)
	if sess.KeyThumbprint != k.jkt || sess.UserID != browser.body["user"].(map[string]any)["id"] {
		t.Errorf("session key %q user %s", sess.KeyThumbprint, sess.UserID)
	}
	if want := e.clock.Now().Add(time.Hour); !sess.AbsoluteDeadline.Equal(want) {
		t.Errorf("deadline %s, want now+1h %s", sess.AbsoluteDeadline, want)
	}
	if sess.LastUVAt.IsZero() || int(sess.Tier) != int(browser.body["tier"].(float64)) {
		t.Errorf("last UV %s tier %d", sess.LastUVAt, sess.Tier)
	}
	me := e.dpopReq("GET", "/v1/session", nil, tok, e.proof(k, "GET", "/v1/session", tok, nil))
	if me.status != 200 || me.body["id"] != sid {
		t.Fatalf("session with DPoP: %d %s", me.status, me.raw)
	}
	if evs := auditTypes(t, e, "cli.authorized"); len(evs) != 1 || evs[0].Outcome != airlock.OutcomeSuccess {
		t.Errorf("cli.authorized events %d", len(evs))
	}
	if evs := auditTypes(t, e, "cli.login"); len(evs) != 1 || evs[0].SessionID != sid || evs[0].Outcome != airlock.OutcomeSuccess {
		t.Errorf("cli.login events %v", evs)
	}
}

// TestCLITokenCappedByBrowserSession: a CLI session never outlives the
// browser session that authorised it.
func TestCLITokenCappedByBrowserSession(t *testing.T) {
	e := newEnv(t, func(s *airhttp.Server) { s.CLITokenTTL = 100 * time.Hour })
	admin, _ := e.bootstrapAdmin()
	browser := e.req("GET", "/v1/session", nil, admin, nil)
	_, r := e.cliLogin(admin, newCLIKey(t))
	got, _ := time.Parse(time.RFC3339Nano, r.body["expires_at"].(string))
	want, _ := time.Parse(time.RFC3339Nano, browser.body["absolute_deadline"].(string))
	if !got.Equal(want) {
		t.Errorf("CLI expires %s, browser session %s", got, want)
	}
}

func TestCLIAuthorizeRefused(t *testing.T) {
	e := newEnv(t, nil)
	admin, _ := e.bootstrapAdmin()
	k := newCLIKey(t)
	cli, _ := e.cliLogin(admin, k)
	good := map[string]any{"port": 40000, "state": "s1", "jkt": k.jkt}
	with := func(key string, v any) map[string]any {
		m := map[string]any{}
		for k, x := range good {
			m[k] = x
		}
		if v == nil {
			delete(m, key)
		} else {
			m[key] = v
		}
		return m
	}
	cases := []struct {
		name   string
		body   map[string]any
		auth   string
		status int
	}{
		{"ok-ipv4", good, admin, 200},
		{"ok-ipv6", with("host", "::1"), admin, 200},
		{"fail-host-not-loopback", with("host", "evil.example"), admin, 400},
		{"fail-host-localhost-name", with("host", "localhost"), admin, 400},
		{"fail-host-other-ip", with("host", "10.0.0.1"), admin, 400},
		{"fail-port-privileged", with("port", 80), admin, 400},
		{"fail-port-too-big", with("port", 70000), admin, 400},
		{"fail-state-empty", with("state", nil), admin, 400},
		{"fail-state-long", with("state", strings.Repeat("a", 129)), admin, 400},
		{"fail-state-chars", with("state", "a&b=c"), admin, 400},
		{"fail-jkt-not-thumbprint", with("jkt", "abc"), admin, 400},
		{"fail-unknown-field", with("redirect_uri", "http://evil.example/"), admin, 400},
		{"fail-no-session", good, "", 403}, // no Origin, no bearer: refused before auth
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.req("POST", "/v1/cli/authorize", tc.body, tc.auth, nil)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.raw)
			}
			if tc.status == 200 {
				u, _ := url.Parse(r.body["redirect"].(string))
				if h := u.Hostname(); h != "127.0.0.1" && h != "::1" {
					t.Errorf("redirect to %s", u)
				}
			}
		})
	}
	t.Run("fail-no-session-cookie-page", func(t *testing.T) {
		if r := e.browser("POST", "/v1/cli/authorize", good, nil); r.status != 401 {
			t.Fatalf("status %d: %s", r.status, r.raw)
		}
	})
	t.Run("fail-cli-session-authorises-cli", func(t *testing.T) {
		r := e.dpopReq("POST", "/v1/cli/authorize", good, cli, e.proof(k, "POST", "/v1/cli/authorize", cli, nil))
		if r.status != 403 {
			t.Fatalf("status %d: %s", r.status, r.raw)
		}
	})
	t.Run("fail-no-fresh-uv", func(t *testing.T) {
		e.clock.Add(2*time.Minute + time.Second)
		r := e.req("POST", "/v1/cli/authorize", good, admin, nil)
		if r.status != 403 || r.errCode() != airlock.EFRESHAUTH {
			t.Fatalf("status %d: %s", r.status, r.raw)
		}
		denied := 0
		for _, ev := range auditTypes(t, e, "cli.authorized") {
			if ev.Outcome == airlock.OutcomeDenied {
				denied++
			}
		}
		if denied == 0 {
			t.Error("refusals not audited")
		}
	})
}

func TestCLITokenRefused(t *testing.T) {
	e := newEnv(t, nil)
	admin, adminKey := e.bootstrapAdmin()
	k := newCLIKey(t)
	exchange := func(code, proof string) resp {
		return e.req("POST", "/v1/cli/token", map[string]any{"code": code}, "", map[string]string{"DPoP": proof})
	}
	fresh := func() string {
		// Each case starts from a freshly signed-in browser session.
		tok, _ := e.login(adminKey)
		admin = tok
		r := e.authorizeCLI(admin, k, 40000, "s")
		if r.status != 200 {
			t.Fatalf("authorize: %d %s", r.status, r.raw)
		}
		return codeOf(t, r)
	}
	t.Run("fail-code-reused", func(t *testing.T) {
		code := fresh()
		if r := exchange(code, e.proof(k, "POST", "/v1/cli/token", "", nil)); r.status != 200 {
			t.Fatalf("first: %d %s", r.status, r.raw)
		}
		if r := exchange(code, e.proof(k, "POST", "/v1/cli/token", "", nil)); r.status != 401 {
			t.Fatalf("second use: %d %s", r.status, r.raw)
		}
	})
	t.Run("fail-code-unknown", func(t *testing.T) {
		if r := exchange("not-a-code", e.proof(k, "POST", "/v1/cli/token", "", nil)); r.status != 401 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
	t.Run("fail-code-expired", func(t *testing.T) {
		code := fresh()
		e.clock.Add(2 * time.Minute)
		if r := exchange(code, e.proof(k, "POST", "/v1/cli/token", "", nil)); r.status != 410 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
	t.Run("fail-wrong-jkt", func(t *testing.T) {
		code := fresh()
		other := newCLIKey(t)
		if r := exchange(code, e.proof(other, "POST", "/v1/cli/token", "", nil)); r.status != 401 || !strings.Contains(r.errMsg(), "DPoP") {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		// The code is spent by the failed attempt.
		if r := exchange(code, e.proof(k, "POST", "/v1/cli/token", "", nil)); r.status != 401 {
			t.Fatalf("after a wrong key: %d %s", r.status, r.raw)
		}
	})
	t.Run("fail-no-proof", func(t *testing.T) {
		code := fresh()
		r := e.req("POST", "/v1/cli/token", map[string]any{"code": code}, "", map[string]string{"Origin": e.origin})
		if r.status != 401 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
	t.Run("fail-proof-for-other-url", func(t *testing.T) {
		code := fresh()
		if r := exchange(code, e.proof(k, "POST", "/v1/session", "", nil)); r.status != 401 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
	t.Run("fail-browser-session-ended", func(t *testing.T) {
		code := fresh()
		if r := e.req("POST", "/v1/logout", nil, admin, nil); r.status != 200 {
			t.Fatalf("logout: %d %s", r.status, r.raw)
		}
		if r := exchange(code, e.proof(k, "POST", "/v1/cli/token", "", nil)); r.status != 401 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
	denied := 0
	for _, ev := range auditTypes(t, e, "cli.login") {
		if ev.Outcome == airlock.OutcomeDenied {
			denied++
		}
	}
	if denied < 6 {
		t.Errorf("%d refused token exchanges audited, want ≥ 6", denied)
	}
}

// rawJWS assembles a compact JWS from a header and claims; sign gets the
// signing input and returns the signature.
func rawJWS(header, claims map[string]any, sign func([]byte) []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	return in + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(in)))
}

func TestDPoP(t *testing.T) {
	e := newEnv(t, nil)
	admin, _ := e.bootstrapAdmin()
	k := newCLIKey(t)
	tok, _ := e.cliLogin(admin, k)
	const path = "/v1/session"
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"jti": randomJTI(), "htm": "GET", "htu": e.origin + path, "iat": e.clock.Now().Unix(), "ath": dpop.TokenHash(tok)}
		if mod != nil {
			mod(c)
		}
		return c
	}
	pubJWK := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(k.priv.Public().(ed25519.PublicKey))}
	edSign := func(in []byte) []byte { return ed25519.Sign(k.priv, in) }
	replayed := e.proof(k, "GET", path, tok, nil)
	if r := e.dpopReq("GET", path, nil, tok, replayed); r.status != 200 {
		t.Fatalf("first use of the proof: %d %s", r.status, r.raw)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	cases := []struct {
		name string
		send func() resp
		ok   bool
		// reason is the refusal's audited reason (cli.dpop_refused); empty
		// where the token is not a key-bound one presented with a request.
		reason string
	}{
		{name: "ok-eddsa", ok: true, send: func() resp { return e.dpopReq("GET", path, nil, tok, e.proof(k, "GET", path, tok, nil)) }},
		{name: "ok-query-ignored", ok: true, send: func() resp {
			return e.dpopReq("GET", path+"?x=1", nil, tok, e.proof(k, "GET", path, tok, nil))
		}},
		{name: "ok-iat-59s-old", ok: true, send: func() resp {
			return e.dpopReq("GET", path, nil, tok, e.proof(k, "GET", path, tok, func(c *dpop.Claims) { c.IAT -= 59 }))
		}},
		{name: "fail-no-proof", reason: "missing", send: func() resp { return e.dpopReq("GET", path, nil, tok, "") }},
		{name: "fail-token-as-bearer", reason: "wrong_scheme", send: func() resp { return e.req("GET", path, nil, tok, nil) }},
		{name: "fail-token-as-bearer-with-proof", reason: "wrong_scheme", send: func() resp {
			return e.req("GET", path, nil, tok, map[string]string{"DPoP": e.proof(k, "GET", path, tok, nil)})
		}},
		{name: "fail-token-as-cookie", reason: "wrong_scheme", send: func() resp {
			return e.req("GET", path, nil, "", map[string]string{"Cookie": "airlock_session=" + tok, "DPoP": e.proof(k, "GET", path, tok, nil)})
		}},
		{name: "fail-wrong-key", reason: "wrong_key", send: func() resp {
			return e.dpopReq("GET", path, nil, tok, e.proof(newCLIKey(t), "GET", path, tok, nil))
		}},
		{name: "fail-wrong-key-es256", reason: "wrong_key", send: func() resp {
			c, _ := dpop.NewClaims("GET", e.origin+path, tok, e.clock.Now())
			p, err := dpop.Sign(ecKey, c)
			if err != nil {
				t.Fatal(err)
			}
			return e.dpopReq("GET", path, nil, tok, p)
		}},
		{name: "fail-wrong-htm", reason: "wrong_htm", send: func() resp {
			return e.dpopReq("GET", path, nil, tok, e.proof(k, "POST", path, tok, nil))
		}},
		{name: "fail-wrong-htu-path", reason: "wrong_htu", send: func() resp {
			return e.dpopReq("GET", path, nil, tok, e.proof(k, "GET", "/v1/me/credentials", tok, nil))
		}},
		{name: "fail-wrong-htu-origin", reason: "wrong_htu", send: func() resp {
			return e.dpopReq("GET", path, nil, tok, e.proof(k, "GET", path, tok, func(c *dpop.Claims) { c.HTU = "http://evil.example" + path }))
		}},
		{name: "fail-htu-from-host-header", reason: "wrong_htu", send: func() resp {
			// The test client dials 127.0.0.1: that Host is not the origin.
			return e.dpopReq("GET", path, nil, tok, e.proof(k, "GET", path, tok, func(c *dpop.Claims) { c.HTU = e.srv.URL + path }))
		}},
		{name: "fail-stale-iat", reason: "bad_iat", send: func() resp {
			return e.dpopReq("GET", path, nil, tok, e.proof(k, "GET", path, tok, func(c *dpop.Claims) { c.IAT -= 61 }))
		}},
		{name: "fail-future-iat", reason: "bad_iat", send: func() resp {
			return e.dpopReq("GET", path, nil, tok, e.proof(k, "GET", path, tok, func(c *dpop.Claims) { c.IAT += 61 }))
		}},
		{name: "fail-replayed-jti", reason: "replayed_jti", send: func() resp { return e.dpopReq("GET", path, nil, tok, replayed) }},
		{name: "fail-wrong-ath", reason: "wrong_ath", send: func() resp {
			return e.dpopReq("GET", path, nil, tok, e.proof(k, "GET", path, tok, func(c *dpop.Claims) { c.ATH = dpop.TokenHash("other") }))
		}},
		{name: "fail-no-ath", reason: "wrong_ath", send: func() resp {
			return e.dpopReq("GET", path, nil, tok, e.proof(k, "GET", path, tok, func(c *dpop.Claims) { c.ATH = "" }))
		}},
		{name: "fail-alg-none", reason: "bad_alg", send: func() resp {
			return e.dpopReq("GET", path, nil, tok, rawJWS(map[string]any{"typ": "dpop+jwt", "alg": "none", "jwk": pubJWK}, claims(nil), func([]byte) []byte { return nil }))
		}},
		{name: "fail-alg-hs256", reason: "bad_alg", send: func() resp {
			secret := []byte("shared")
			return e.dpopReq("GET", path, nil, tok, rawJWS(map[string]any{"typ": "dpop+jwt", "alg": "HS256", "jwk": pubJWK}, claims(nil), func(in []byte) []byte {
				m := hmac.New(sha256.New, secret)
				m.Write(in)
				return m.Sum(nil)
			}))
		}},
		{name: "fail-typ-jwt", reason: "bad_typ", send: func() resp {
			return e.dpopReq("GET", path, nil, tok, rawJWS(map[string]any{"typ": "JWT", "alg": "EdDSA", "jwk": pubJWK}, claims(nil), edSign))
		}},
		{name: "fail-no-jwk", reason: "bad_jwk", send: func() resp {
			return e.dpopReq("GET", path, nil, tok, rawJWS(map[string]any{"typ": "dpop+jwt", "alg": "EdDSA"}, claims(nil), edSign))
		}},
		{name: "fail-private-jwk", reason: "bad_jwk", send: func() resp {
			priv := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": pubJWK["x"], "d": base64.RawURLEncoding.EncodeToString(k.priv.Seed())}
			return e.dpopReq("GET", path, nil, tok, rawJWS(map[string]any{"typ": "dpop+jwt", "alg": "EdDSA", "jwk": priv}, claims(nil), edSign))
		}},
		{name: "fail-bad-signature", reason: "bad_signature", send: func() resp {
			return e.dpopReq("GET", path, nil, tok, rawJWS(map[string]any{"typ": "dpop+jwt", "alg": "EdDSA", "jwk": pubJWK}, claims(nil), func(in []byte) []byte {
				return ed25519.Sign(k.priv, append(in, 'x'))
			}))
		}},
		{name: "fail-iat-not-integer", reason: "malformed", send: func() resp {
			return e.dpopReq("GET", path, nil, tok, rawJWS(map[string]any{"typ": "dpop+jwt", "alg": "EdDSA", "jwk": pubJWK}, claims(func(c map[string]any) { c["iat"] = "now" }), edSign))
		}},
		{name: "fail-oversize-proof", reason: "malformed", send: func() resp {
			return e.dpopReq("GET", path, nil, tok, strings.Repeat("a", 4097))
		}},
		{name: "fail-not-compact-jws", reason: "malformed", send: func() resp {
			return e.dpopReq("GET", path, nil, tok, "a.b")
		}},
		{name: "fail-no-jti", reason: "malformed", send: func() resp {
			return e.dpopReq("GET", path, nil, tok, e.proof(k, "GET", path, tok, func(c *dpop.Claims) { c.JTI = "" }))
		}},
		{name: "fail-jti-too-long", reason: "malformed", send: func() resp {
			return e.dpopReq("GET", path, nil, tok, e.proof(k, "GET", path, tok, func(c *dpop.Claims) { c.JTI = strings.Repeat("j", 257) }))
		}},
		{name: "fail-no-htm", reason: "malformed", send: func() resp {
			return e.dpopReq("GET", path, nil, tok, e.proof(k, "GET", path, tok, func(c *dpop.Claims) { c.HTM = "" }))
		}},
		{name: "fail-no-htu", reason: "malformed", send: func() resp {
			return e.dpopReq("GET", path, nil, tok, e.proof(k, "GET", path, tok, func(c *dpop.Claims) { c.HTU = "" }))
		}},
		{name: "fail-iat-zero", reason: "malformed", send: func() resp {
			return e.dpopReq("GET", path, nil, tok, e.proof(k, "GET", path, tok, func(c *dpop.Claims) { c.IAT = 0 }))
		}},
		{name: "fail-two-dpop-headers", reason: "malformed", send: func() resp {
			// Go's client joins nothing: two header lines reach the server.
			return e.reqMulti("GET", path, tok, []string{e.proof(k, "GET", path, tok, nil), e.proof(k, "GET", path, tok, nil)})
		}},
		{name: "fail-in-decide-body", send: func() resp {
			return e.req("POST", "/v1/decide", map[string]any{"session": tok, "action": "config.read", "resource": "airlock"}, "", nil)
		}},
		{name: "fail-dpop-scheme-for-unbound-token", send: func() resp {
			return e.dpopReq("GET", path, nil, admin, e.proof(k, "GET", path, admin, nil))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.send()
			if tc.ok {
				if r.status != 200 {
					t.Fatalf("status %d: %s", r.status, r.raw)
				}
				return
			}
			if r.status != 401 {
				t.Fatalf("status %d, want 401: %s", r.status, r.raw)
			}
			if tc.reason != "" {
				evs := auditTypes(t, e, "cli.dpop_refused")
				if len(evs) == 0 {
					t.Fatal("refusal not audited")
				}
				last := evs[0]
				for _, ev := range evs {
					if ev.Seq > last.Seq {
						last = ev
					}
				}
				if last.Reason != tc.reason {
					t.Errorf("refused for %q, want %q (%s)", last.Reason, tc.reason, r.errMsg())
				}
			}
		})
	}
	// The refusals of the key-bound token are audited with their reason.
	reasons := map[string]bool{}
	for _, ev := range auditTypes(t, e, "cli.dpop_refused") {
		reasons[ev.Reason] = true
	}
	for _, want := range []string{"missing", "wrong_scheme", "wrong_key", "wrong_htm", "wrong_htu", "bad_iat", "replayed_jti", "wrong_ath", "bad_alg", "bad_typ", "bad_jwk", "bad_signature", "malformed"} {
		if !reasons[want] {
			t.Errorf("no cli.dpop_refused with reason %s (have %v)", want, reasons)
		}
	}
	// The answer tells a client what went wrong (RFC 9449 §7.1).
	r := e.dpopReq("GET", path, nil, tok, "")
	if h := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "DPoP ") || !strings.Contains(h, "EdDSA") {
		t.Errorf("WWW-Authenticate %q", h)
	}
}

func randomJTI() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// reqMulti sends a GET with the DPoP scheme and one DPoP header line per
// proof.
func (e *env) reqMulti(method, path, token string, proofs []string) resp {
	e.t.Helper()
	r, _ := http.NewRequest(method, e.srv.URL+path, nil)
	r.Header.Set("Authorization", "DPoP "+token)
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
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

// TestCLIStepUpConfirmedInBrowser: a step-up the policy wants of a CLI
// session is confirmed in the browser of the same user on the same device,
// and only the CLI session can redeem the proof.
func TestCLIStepUpConfirmedInBrowser(t *testing.T) {
	e := newEnv(t, nil)
	admin, _ := e.bootstrapAdmin()
	fay, fayKey, _ := e.person(admin, "fay", 0, nil, passkeytest.Flags{})
	k := newCLIKey(t)
	cli, cr := e.cliLogin(fay, k)
	cliSession, _ := nested(cr, "session")["id"].(string)
	body := func(proof string) map[string]any {
		b := map[string]any{"action": "payments.transfer", "resource": "payments", "params": rawJSON([]byte(transfer))}
		if proof != "" {
			b["stepup"] = proof
		}
		return b
	}
	r := e.dpopReq("POST", "/v1/decide", body(""), cli, e.proof(k, "POST", "/v1/decide", cli, nil))
	if r.status != 200 || r.body["decision"] != "step_up" {
		t.Fatalf("decide: %d %s", r.status, r.raw)
	}
	txn := r.body["step_up"].(map[string]any)["transaction"].(string)

	finish := func(tok string, withTx bool) resp {
		b := e.req("POST", "/v1/stepup/begin", map[string]any{"transaction": txn}, tok, nil)
		if b.status != 200 {
			return b
		}
		cred, err := fayKey.Assert(e.origin, mustJSON(b.body["publicKey"]))
		if err != nil {
			t.Fatal(err)
		}
		path := "/v1/stepup/finish"
		if withTx {
			path += "?transaction=" + txn
		}
		return e.req("POST", path, map[string]any{"ceremony": b.body["ceremony"], "credential": rawJSON(cred)}, tok, nil)
	}
	t.Run("fail-another-users-browser", func(t *testing.T) {
		if r := e.req("POST", "/v1/stepup/begin", map[string]any{"transaction": txn}, admin, nil); r.status != 403 {
			t.Fatalf("begin by another user: %d %s", r.status, r.raw)
		}
		if p := e.req("GET", "/stepup/"+txn, nil, admin, nil); p.status != 403 {
			t.Fatalf("page for another user: %d", p.status)
		}
	})
	t.Run("fail-finish-not-naming-the-transaction", func(t *testing.T) {
		if r := finish(fay, false); r.status != 403 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
	if p := e.req("GET", "/stepup/"+txn, nil, fay, nil); p.status != 200 || !bytes.Contains(p.raw, []byte("payments.transfer")) {
		t.Fatalf("page for the CLI's user: %d", p.status)
	}
	f := finish(fay, true)
	if f.status != 200 || f.body["proof"] == nil {
		t.Fatalf("finish: %d %s", f.status, f.raw)
	}
	proof := f.body["proof"].(string)
	t.Run("fail-browser-redeems-the-cli-proof", func(t *testing.T) {
		r := e.req("POST", "/v1/decide", body(proof), fay, nil)
		if r.status == 200 && r.body["decision"] == "allow" {
			t.Fatalf("the browser session redeemed the CLI's proof: %s", r.raw)
		}
	})
	// The browser's failed attempt spent the proof (a proof is spent on its
	// first presentation); confirm again and redeem from the CLI.
	r = e.dpopReq("POST", "/v1/decide", body(""), cli, e.proof(k, "POST", "/v1/decide", cli, nil))
	txn = r.body["step_up"].(map[string]any)["transaction"].(string)
	f = finish(fay, true)
	if f.status != 200 {
		t.Fatalf("finish: %d %s", f.status, f.raw)
	}
	r = e.dpopReq("POST", "/v1/decide", body(f.body["proof"].(string)), cli, e.proof(k, "POST", "/v1/decide", cli, nil))
	if r.status != 200 || r.body["decision"] != "allow" {
		t.Fatalf("CLI redeems: %d %s", r.status, r.raw)
	}
	// The audit record names both sessions: the CLI's it confirms and the
	// browser's it was confirmed in.
	evs, err := e.store.ListAudit(context.Background(), airlock.AuditFilter{Type: "stepup.success", SessionID: cliSession})
	if err != nil || len(evs) == 0 {
		t.Fatalf("stepup.success for the CLI session: %d %v", len(evs), err)
	}
	if via, _ := evs[len(evs)-1].Details["confirmed_in_session"].(string); via == "" || via == cliSession || cliSession == "" {
		t.Errorf("stepup.success confirmed_in_session %q", via)
	}
}
