package http

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"airlock"
	"airlock/dpop"
)

// FuzzDPoP feeds arbitrary proofs to the parser: it must never panic, and
// whatever it accepts must carry a thumbprint, a jti, htm, htu and a
// positive iat; whatever it refuses is an EUNAUTHORIZED with a reason.
func FuzzDPoP(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	good, err := dpop.Proof(priv, "GET", "http://localhost:8080/v1/session", "tok", time.Unix(1_800_000_000, 0))
	if err != nil {
		f.Fatal(err)
	}
	b := base64.RawURLEncoding.EncodeToString
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add(b([]byte(`{"typ":"dpop+jwt","alg":"none"}`)) + "." + b([]byte(`{"jti":"1"}`)) + ".")
	f.Add(b([]byte(`{"typ":"dpop+jwt","alg":"HS256","jwk":{"kty":"oct","k":"AAAA"}}`)) + "." + b([]byte(`{}`)) + ".AAAA")
	f.Add(b([]byte(`{"typ":"dpop+jwt","alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"AAAA"}}`)) + "." + b([]byte(`{"iat":1e99}`)) + ".AAAA")
	f.Fuzz(func(t *testing.T, proof string) {
		p, err := parseDPoP(proof)
		if err != nil {
			var de *dpopError
			if airlock.ErrorCode(err) != airlock.EUNAUTHORIZED || !errors.As(err, &de) || de.Reason == "" {
				t.Fatalf("refusal without code or reason: %v", err)
			}
			return
		}
		if p.JKT == "" || p.Claims.JTI == "" || p.Claims.HTM == "" || p.Claims.HTU == "" || p.IAT.Unix() <= 0 {
			t.Fatalf("accepted an incomplete proof: %+v", p)
		}
	})
}

// BenchmarkParseDPoP is the per-request cost of a key-bound session's
// proof before the store is touched: parse, Ed25519 verify, thumbprint.
func BenchmarkParseDPoP(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	proof, err := dpop.Proof(priv, "GET", "http://localhost:8080/v1/session", "tok", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseDPoP(proof); err != nil {
			b.Fatal(err)
		}
	}
}
