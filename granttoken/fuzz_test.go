package granttoken_test

import (
	"strings"
	"testing"

	"airlock/granttoken"
)

// FuzzVerify feeds Verify arbitrary tokens, key sets and audiences: it
// must never panic, and whatever it accepts has claims, the asked-for
// audience and an unexpired exp.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f, 0)
	tok, _ := fx.issue(f, t0)
	jwks := fx.iss.JWKS()
	parts := strings.Split(tok, ".")
	f.Add(tok, jwks, "db-prod")
	f.Add(tok, jwks, "")
	f.Add(parts[0]+"."+parts[1]+".", jwks, "")
	f.Add("eyJhbGciOiJub25lIn0."+parts[1]+".", jwks, "")
	f.Add(tok, []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA","kid":"x"}]}`), "")
	f.Add("a.b.c", []byte(`{"keys":[]}`), "x")
	f.Add("", []byte(""), "")
	f.Fuzz(func(t *testing.T, token string, jwksJSON []byte, aud string) {
		c, err := granttoken.Verify(token, jwksJSON, aud, t0)
		if err == nil && c == nil {
			t.Fatal("no error and no claims")
		}
		if err == nil && aud != "" && c.Audience != aud {
			t.Fatalf("accepted audience %q for %q", c.Audience, aud)
		}
		if err == nil && c.Expiry <= t0.Unix() {
			t.Fatalf("accepted an expired token: %+v", c)
		}
	})
}
