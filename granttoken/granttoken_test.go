package granttoken_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"airlock"
	"airlock/granttoken"
)

var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

const issuerURL = "https://airlock.example"

type fixture struct {
	key   ed25519.PrivateKey
	iss   *granttoken.Issuer
	user  *airlock.User
	grant *airlock.Grant
}

func newFixture(t testing.TB, ttl time.Duration) *fixture {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := granttoken.New(key, granttoken.Config{Issuer: issuerURL, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{key: key, iss: iss,
		user: &airlock.User{ID: "usr_1", Name: "alice"},
		grant: &airlock.Grant{ID: "grt_1", UserID: "usr_1", SessionID: "ses_1", Scope: airlock.Scope{Role: "dba", Resource: "db-prod", Tier: 1},
			NotBefore: t0.Add(-time.Minute), NotAfter: t0.Add(time.Hour)}}
}

func (f *fixture) issue(t testing.TB, now time.Time) (string, *granttoken.Claims) {
	t.Helper()
	tok, c, err := f.iss.Issue(f.grant, f.user, now)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return tok, c
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func decodeSeg(t testing.TB, seg string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// thumbprint is RFC 7638 §3 for an OKP key, computed by hand.
func thumbprint(pub ed25519.PublicKey) string {
	h := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + b64(pub) + `"}`))
	return b64(h[:])
}

func TestIssue(t *testing.T) {
	f := newFixture(t, 0)
	now := t0.Add(500 * time.Millisecond)
	tok, c := f.issue(t, now)
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not compact: %q", tok)
	}
	kid := thumbprint(f.key.Public().(ed25519.PublicKey))
	hdr := decodeSeg(t, parts[0])
	if len(hdr) != 3 || hdr["alg"] != "EdDSA" || hdr["typ"] != granttoken.Type || hdr["kid"] != kid {
		t.Errorf("header %v, want alg EdDSA, typ %s, kid %s", hdr, granttoken.Type, kid)
	}
	if f.iss.KeyID() != kid {
		t.Errorf("KeyID %s, want the RFC 7638 thumbprint %s", f.iss.KeyID(), kid)
	}
	claims := decodeSeg(t, parts[1])
	want := map[string]any{"iss": issuerURL, "sub": "usr_1", "name": "alice", "aud": "db-prod", "scope": "dba@db-prod", "grant_id": "grt_1",
		"iat": float64(t0.Unix()), "nbf": float64(t0.Unix()), "exp": float64(t0.Add(granttoken.DefaultTTL).Unix())}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	if jti, _ := claims["jti"].(string); len(jti) != 32 {
		t.Errorf("jti %v", claims["jti"])
	}
	if len(claims) != len(want)+1 {
		t.Errorf("claims %v", claims)
	}
	if c.ExpiresAt() != t0.Add(granttoken.DefaultTTL) || c.GrantID != "grt_1" {
		t.Errorf("returned claims %+v", c)
	}
	// The signature is plain Ed25519 over the signing input.
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	if !ed25519.Verify(f.key.Public().(ed25519.PublicKey), []byte(parts[0]+"."+parts[1]), sig) {
		t.Error("signature does not verify with crypto/ed25519")
	}
	// A second token has its own jti.
	tok2, c2 := f.issue(t, now)
	if tok2 == tok || c2.ID == c.ID {
		t.Error("two tokens share a jti")
	}

	// The JWKS: one public OKP key with the kid.
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(f.iss.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("jwks %s", f.iss.JWKS())
	}
	k := set.Keys[0]
	if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["kid"] != kid || k["x"] != b64(f.key.Public().(ed25519.PublicKey)) || k["alg"] != "EdDSA" || k["use"] != "sig" {
		t.Errorf("jwk %v", k)
	}
	if _, ok := k["d"]; ok {
		t.Error("the JWKS holds the private key")
	}
	if ids, err := granttoken.ParseJWKS(f.iss.JWKS()); err != nil || len(ids) != 1 || ids[0] != kid {
		t.Errorf("ParseJWKS: %v %v", ids, err)
	}
}

func TestIssueWindow(t *testing.T) {
	cases := []struct {
		name     string
		ttl      time.Duration
		notAfter time.Time
		exp      time.Time
		tier     bool
		aud      string
	}{
		{"ok-ttl", 0, t0.Add(time.Hour), t0.Add(15 * time.Minute), false, "db-prod"},
		{"ok-grant-end", 0, t0.Add(5*time.Minute + 700*time.Millisecond), t0.Add(5 * time.Minute), false, "db-prod"},
		{"ok-ttl-over-grant", 24 * time.Hour, t0.Add(time.Hour), t0.Add(time.Hour), false, "db-prod"},
		{"ok-tier-audience", 0, t0.Add(time.Hour), t0.Add(15 * time.Minute), true, "tier:1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.ttl)
			f.grant.NotAfter = c.notAfter
			if c.tier {
				f.grant.Scope = airlock.Scope{Tier: 1, IsTier: true}
			}
			tok, cl := f.issue(t, t0)
			if cl.ExpiresAt() != c.exp || cl.ExpiresAt().After(f.grant.NotAfter) || cl.Audience != c.aud {
				t.Errorf("exp %v aud %q, want %v %q", cl.ExpiresAt(), cl.Audience, c.exp, c.aud)
			}
			if _, err := granttoken.Verify(tok, f.iss.JWKS(), c.aud, t0); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

// TestVerifyNotPastGrantEnd: a token whose exp is its grant's end is
// refused from that end on — a verifier's clock leeway must not stretch a
// grant (the token is refused up to Leeway early by a clock running
// ahead, never accepted late by an exact one).
func TestVerifyNotPastGrantEnd(t *testing.T) {
	f := newFixture(t, 0)
	f.grant.NotAfter = t0.Add(5 * time.Minute)
	tok, c := f.issue(t, t0)
	if !c.ExpiresAt().Equal(f.grant.NotAfter) {
		t.Fatalf("exp %v, want the grant's end %v", c.ExpiresAt(), f.grant.NotAfter)
	}
	for _, at := range []time.Duration{0, time.Second, 10 * time.Second, granttoken.Leeway - time.Second} {
		if _, err := granttoken.Verify(tok, f.iss.JWKS(), "db-prod", f.grant.NotAfter.Add(at)); err == nil {
			t.Errorf("accepted %v after the grant ended", at)
		}
	}
	if _, err := granttoken.Verify(tok, f.iss.JWKS(), "db-prod", f.grant.NotAfter.Add(-time.Second)); err != nil {
		t.Errorf("refused a second before the grant's end: %v", err)
	}
}

func TestIssueRefusals(t *testing.T) {
	cases := []struct {
		name string
		mod  func(f *fixture)
		now  time.Time
		code string
	}{
		{"fail-ended", func(f *fixture) { f.grant.EndedAt = t0.Add(-time.Second) }, t0, airlock.EEXPIRED},
		{"fail-expired", func(f *fixture) { f.grant.NotAfter = t0 }, t0, airlock.EEXPIRED},
		{"fail-not-started", func(f *fixture) { f.grant.NotBefore = t0.Add(time.Second) }, t0, airlock.EFORBIDDEN},
		{"fail-other-user", func(f *fixture) { f.grant.UserID = "usr_2" }, t0, airlock.EFORBIDDEN},
		{"fail-under-a-second", func(f *fixture) { f.grant.NotAfter = t0.Add(800 * time.Millisecond) }, t0.Add(100 * time.Millisecond), airlock.EEXPIRED},
		{"fail-no-scope", func(f *fixture) { f.grant.Scope = airlock.Scope{} }, t0, airlock.EINVALID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, 0)
			c.mod(f)
			tok, cl, err := f.iss.Issue(f.grant, f.user, c.now)
			if err == nil || tok != "" || cl != nil || airlock.ErrorCode(err) != c.code {
				t.Errorf("Issue: %q %v %v, want %s", tok, cl, err, c.code)
			}
		})
	}
}

// craft signs any header and claims with key (Ed25519), bypassing the
// issuer, to build tokens the issuer never would.
func craft(key ed25519.PrivateKey, hdr, claims any) string {
	h, _ := json.Marshal(hdr)
	c, _ := json.Marshal(claims)
	in := b64(h) + "." + b64(c)
	return in + "." + b64(ed25519.Sign(key, []byte(in)))
}

func goodClaims(now time.Time) map[string]any {
	return map[string]any{"iss": issuerURL, "sub": "usr_1", "name": "alice", "aud": "db-prod", "scope": "dba@db-prod", "grant_id": "grt_1",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(), "jti": "00"}
}

func TestVerify(t *testing.T) {
	f := newFixture(t, 0)
	tok, _ := f.issue(t, t0)
	jwks := f.iss.JWKS()
	kid := f.iss.KeyID()
	hdr := func(extra map[string]any) map[string]any {
		h := map[string]any{"alg": "EdDSA", "typ": granttoken.Type, "kid": kid}
		for k, v := range extra {
			if v == nil {
				delete(h, k)
			} else {
				h[k] = v
			}
		}
		return h
	}
	claims := func(mod func(map[string]any)) map[string]any {
		c := goodClaims(t0)
		mod(c)
		return c
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	parts := strings.Split(tok, ".")

	// alg confusion: HS256 with the public key bytes (or the JWK text) as
	// the HMAC secret.
	hs := func(secret []byte) string {
		h, _ := json.Marshal(hdr(map[string]any{"alg": "HS256"}))
		in := b64(h) + "." + parts[1]
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(in))
		return in + "." + b64(m.Sum(nil))
	}
	es256 := func() string {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		h, _ := json.Marshal(hdr(map[string]any{"alg": "ES256"}))
		in := b64(h) + "." + parts[1]
		d := sha256.Sum256([]byte(in))
		sig, _ := ecdsa.SignASN1(rand.Reader, k, d[:])
		return in + "." + b64(sig)
	}
	noneTok := func() string {
		h, _ := json.Marshal(map[string]any{"alg": "none", "typ": granttoken.Type, "kid": kid})
		return b64(h) + "." + parts[1] + "."
	}()
	payloadSwap := func() string {
		c, _ := json.Marshal(claims(func(c map[string]any) { c["aud"] = "payments" }))
		return parts[0] + "." + b64(c) + "." + parts[2]
	}()
	privJWKS := func() []byte {
		b, _ := json.Marshal(map[string]any{"keys": []map[string]any{{"kty": "OKP", "crv": "Ed25519", "kid": kid,
			"x": b64(f.key.Public().(ed25519.PublicKey)), "d": b64(f.key.Seed())}}})
		return b
	}()
	dupJWKS := func() []byte {
		var set map[string][]json.RawMessage
		json.Unmarshal(jwks, &set)
		set["keys"] = append(set["keys"], set["keys"][0])
		b, _ := json.Marshal(set)
		return b
	}()
	otherJWKS := func() []byte {
		o, _ := granttoken.New(otherKey, granttoken.Config{Issuer: issuerURL})
		return o.JWKS()
	}()
	pub := f.key.Public().(ed25519.PublicKey)

	cases := []struct {
		name   string
		token  string
		jwks   []byte
		aud    string
		now    time.Time
		reason granttoken.Reason
	}{
		{"ok-valid", tok, jwks, "", t0, ""},
		{"ok-audience", tok, jwks, "db-prod", t0, ""},
		{"ok-last-second-before-exp", tok, jwks, "db-prod", t0.Add(15*time.Minute - time.Nanosecond), ""},
		// No leeway after exp: exp is the grant's end at the latest.
		{"fail-at-exp", tok, jwks, "db-prod", t0.Add(15 * time.Minute), granttoken.ReasonExpired},
		{"fail-exp-within-old-leeway", tok, jwks, "db-prod", t0.Add(15*time.Minute + 29*time.Second), granttoken.ReasonExpired},
		{"ok-nbf-within-leeway", tok, jwks, "", t0.Add(-29 * time.Second), ""},
		{"fail-expired", tok, jwks, "", t0.Add(15*time.Minute + 30*time.Second), granttoken.ReasonExpired},
		{"fail-not-yet", tok, jwks, "", t0.Add(-31 * time.Second), granttoken.ReasonNotYet},
		{"fail-iat-future", craft(f.key, hdr(nil), claims(func(c map[string]any) { c["iat"] = t0.Add(time.Hour).Unix() })), jwks, "", t0, granttoken.ReasonNotYet},
		{"fail-audience", tok, jwks, "payments", t0, granttoken.ReasonAudience},
		{"fail-alg-none", noneTok, jwks, "", t0, granttoken.ReasonAlgorithm},
		{"fail-alg-hs256-pubkey-secret", hs(pub), jwks, "", t0, granttoken.ReasonAlgorithm},
		{"fail-alg-hs256-jwks-secret", hs(jwks), jwks, "", t0, granttoken.ReasonAlgorithm},
		{"fail-alg-es256", es256(), jwks, "", t0, granttoken.ReasonAlgorithm},
		{"fail-alg-missing", craft(f.key, hdr(map[string]any{"alg": nil}), goodClaims(t0)), jwks, "", t0, granttoken.ReasonAlgorithm},
		{"fail-typ-jwt", craft(f.key, hdr(map[string]any{"typ": "JWT"}), goodClaims(t0)), jwks, "", t0, granttoken.ReasonHeader},
		{"fail-typ-missing", craft(f.key, hdr(map[string]any{"typ": nil}), goodClaims(t0)), jwks, "", t0, granttoken.ReasonHeader},
		{"fail-kid-missing", craft(f.key, hdr(map[string]any{"kid": nil}), goodClaims(t0)), jwks, "", t0, granttoken.ReasonHeader},
		{"fail-embedded-jwk", craft(otherKey, hdr(map[string]any{"jwk": map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64(otherKey.Public().(ed25519.PublicKey))}}), goodClaims(t0)), jwks, "", t0, granttoken.ReasonHeader},
		{"fail-crit", craft(f.key, hdr(map[string]any{"crit": []string{"exp"}}), goodClaims(t0)), jwks, "", t0, granttoken.ReasonHeader},
		{"fail-jku", craft(f.key, hdr(map[string]any{"jku": "https://evil.example/jwks"}), goodClaims(t0)), jwks, "", t0, granttoken.ReasonHeader},
		{"fail-unknown-kid", craft(f.key, hdr(map[string]any{"kid": "nope"}), goodClaims(t0)), jwks, "", t0, granttoken.ReasonUnknownKey},
		{"fail-other-key-same-kid", craft(otherKey, hdr(nil), goodClaims(t0)), jwks, "", t0, granttoken.ReasonSignature},
		{"fail-other-jwks", tok, otherJWKS, "", t0, granttoken.ReasonUnknownKey},
		{"fail-payload-swapped", payloadSwap, jwks, "", t0, granttoken.ReasonSignature},
		{"fail-signature-truncated", tok[:len(tok)-4], jwks, "", t0, granttoken.ReasonSignature},
		{"fail-two-parts", parts[0] + "." + parts[1], jwks, "", t0, granttoken.ReasonMalformed},
		{"fail-json-serialization", `{"payload":"` + parts[1] + `"}`, jwks, "", t0, granttoken.ReasonMalformed},
		{"fail-header-not-json", b64([]byte("hello")) + "." + parts[1] + "." + parts[2], jwks, "", t0, granttoken.ReasonMalformed},
		{"fail-missing-exp", craft(f.key, hdr(nil), claims(func(c map[string]any) { delete(c, "exp") })), jwks, "", t0, granttoken.ReasonMalformed},
		{"fail-missing-aud", craft(f.key, hdr(nil), claims(func(c map[string]any) { delete(c, "aud") })), jwks, "", t0, granttoken.ReasonMalformed},
		{"fail-aud-array", craft(f.key, hdr(nil), claims(func(c map[string]any) { c["aud"] = []string{"db-prod", "payments"} })), jwks, "db-prod", t0, granttoken.ReasonMalformed},
		{"fail-unknown-claim", craft(f.key, hdr(nil), claims(func(c map[string]any) { c["admin"] = true })), jwks, "", t0, granttoken.ReasonMalformed},
		{"fail-exp-string", craft(f.key, hdr(nil), claims(func(c map[string]any) { c["exp"] = "never" })), jwks, "", t0, granttoken.ReasonMalformed},
		{"fail-jwks-private", tok, privJWKS, "", t0, granttoken.ReasonUnknownKey},
		{"fail-jwks-duplicate-kid", tok, dupJWKS, "", t0, granttoken.ReasonUnknownKey},
		{"fail-jwks-garbage", tok, []byte("{"), "", t0, granttoken.ReasonJWKS},
		{"fail-token-too-long", tok + strings.Repeat("A", granttoken.MaxTokenBytes), jwks, "", t0, granttoken.ReasonMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl, err := granttoken.Verify(c.token, c.jwks, c.aud, c.now)
			if c.reason == "" {
				if err != nil || cl == nil || cl.GrantID != "grt_1" || cl.Subject != "usr_1" {
					t.Fatalf("Verify: %v %+v", err, cl)
				}
				return
			}
			var ve *granttoken.VerifyError
			if !errors.As(err, &ve) || cl != nil {
				t.Fatalf("Verify: %v %+v, want a %s refusal", err, cl, c.reason)
			}
			if ve.Reason != c.reason {
				t.Errorf("reason %s (%v), want %s", ve.Reason, err, c.reason)
			}
		})
	}
}

func TestParseJWKS(t *testing.T) {
	f := newFixture(t, 0)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecJWK := map[string]any{"kty": "EC", "crv": "P-256", "kid": "ec",
		"x": b64(ec.PublicKey.X.FillBytes(make([]byte, 32))), "y": b64(ec.PublicKey.Y.FillBytes(make([]byte, 32)))}
	ecSet, _ := json.Marshal(map[string]any{"keys": []any{ecJWK}})
	for name, b := range map[string][]byte{"fail-empty": []byte(`{"keys":[]}`), "fail-garbage": []byte("nope"), "fail-ec-key": ecSet} {
		t.Run(name, func(t *testing.T) {
			if _, err := granttoken.ParseJWKS(b); err == nil {
				t.Error("accepted")
			}
		})
	}
	t.Run("ok", func(t *testing.T) {
		if _, err := granttoken.ParseJWKS(f.iss.JWKS()); err != nil {
			t.Error(err)
		}
	})
}

func TestNew(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	for name, cfg := range map[string]granttoken.Config{"fail-no-issuer": {}, "fail-negative-ttl": {Issuer: issuerURL, TTL: -1}} {
		if _, err := granttoken.New(key, cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := granttoken.New(key[:5], granttoken.Config{Issuer: issuerURL}); err == nil {
		t.Error("short key accepted")
	}
	iss, err := granttoken.New(key, granttoken.Config{Issuer: issuerURL})
	if err != nil || iss.TTL() != granttoken.DefaultTTL {
		t.Errorf("New: %v", err)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "grant-token.key")
	if _, err := granttoken.LoadKey(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadKey of a missing file: %v", err)
	}
	k1, created, err := granttoken.LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateKey: %v %v", err, created)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	k2, created, err := granttoken.LoadOrCreateKey(path)
	if err != nil || created || !k1.Equal(k2) {
		t.Fatalf("reload: %v %v", err, created)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "-----BEGIN PRIVATE KEY-----") {
		t.Errorf("not PKCS#8 PEM: %.30q", b)
	}
	t.Run("fail-ec-key", func(t *testing.T) {
		ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.MarshalPKCS8PrivateKey(ec)
		p := filepath.Join(dir, "ec.key")
		os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
		if _, err := granttoken.LoadKey(p); err == nil {
			t.Error("EC key accepted")
		}
	})
	t.Run("fail-garbage-kept", func(t *testing.T) {
		p := filepath.Join(dir, "junk.key")
		os.WriteFile(p, []byte("junk"), 0o600)
		if _, _, err := granttoken.LoadOrCreateKey(p); err == nil {
			t.Error("garbage accepted")
		}
		if b, _ := os.ReadFile(p); string(b) != "junk" {
			t.Error("garbage replaced")
		}
	})
}
