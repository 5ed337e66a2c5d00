package granttoken_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"airlock/granttoken"
)

// BenchmarkVerify measures offline verifications per second (the JWKS is
// parsed on every call, as `airlock grant verify` does) and, for
// comparison, issues.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b, 0)
	tok, _ := f.issue(b, t0)
	jwks := f.iss.JWKS()
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := granttoken.Verify(tok, jwks, "db-prod", t0); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
	})
	// The floor: one bare Ed25519 verification, what every token costs at
	// least.
	b.Run("ed25519", func(b *testing.B) {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		msg := []byte(tok)
		sig := ed25519.Sign(priv, msg)
		for b.Loop() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("bad signature")
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
	})
	b.Run("issue", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := f.iss.Issue(f.grant, f.user, t0); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "issues/s")
	})
}
