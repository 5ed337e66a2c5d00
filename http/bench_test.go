package http_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	airhttp "airlock/http"
	"airlock/passkey/passkeytest"
)

// BenchmarkLoginFinish measures POST /v1/login/finish over HTTP on loopback
// (verification, sign-count update, session creation, two durable audit
// events), one client at a time; begin and the authenticator's signing are
// outside the timer. Compare with BenchmarkECDSAP256Verify from the same run:
//
//	go test -run '^$' -bench 'LoginFinish|ECDSAP256Verify' -benchtime 3s ./http/
func BenchmarkLoginFinish(b *testing.B) {
	e := newEnv(b, func(s *airhttp.Server) { s.BeginPerMinute = 1 << 30 })
	admin, _ := e.bootstrapAdmin()
	_, a, _ := e.person(admin, "bench", 1, nil, passkeytest.Flags{})
	verify := ecdsaVerifyCost(2000)
	b.ResetTimer()
	start := time.Now()
	var paused time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		p0 := time.Now()
		begin := e.browser("POST", "/v1/login/begin", map[string]any{}, nil)
		cred, err := a.Assert(e.origin, mustJSON(begin.body["publicKey"]))
		if err != nil {
			b.Fatal(err)
		}
		body := mustJSON(map[string]any{"ceremony": begin.body["ceremony"], "credential": json.RawMessage(cred)})
		paused += time.Since(p0)
		b.StartTimer()
		if r := e.browser("POST", "/v1/login/finish", body, nil); r.status != 200 {
			b.Fatalf("finish: %d %s", r.status, r.raw)
		}
	}
	b.StopTimer()
	perOp := float64(time.Since(start)-paused) / float64(b.N)
	// The two figures the foundation issue asks to compare, side by side
	// from the same run.
	b.ReportMetric(float64(verify.Nanoseconds()), "ecdsa-verify-ns")
	b.ReportMetric(perOp/float64(verify.Nanoseconds()), "x-ecdsa-verify")
}

// ecdsaVerifyCost measures one P-256 verification, averaged over n.
func ecdsaVerifyCost(n int) time.Duration {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h := sha256.Sum256([]byte("authenticatorData || SHA-256(clientDataJSON)"))
	sig, _ := ecdsa.SignASN1(rand.Reader, k, h[:])
	start := time.Now()
	for i := 0; i < n; i++ {
		ecdsa.VerifyASN1(&k.PublicKey, h[:], sig)
	}
	return time.Since(start) / time.Duration(n)
}

// BenchmarkLoginParallel measures whole logins (begin, software signing,
// finish) from several concurrent clients, each with its own passkey.
func BenchmarkLoginParallel(b *testing.B) {
	e := newEnv(b, func(s *airhttp.Server) { s.BeginPerMinute = 1 << 30 })
	admin, _ := e.bootstrapAdmin()
	var auths []*passkeytest.Authenticator
	for i := 0; i < 8; i++ {
		_, a, _ := e.person(admin, fmt.Sprintf("bench%d", i), 1, nil, passkeytest.Flags{})
		auths = append(auths, a)
	}
	var next atomic.Int64
	b.SetParallelism(2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		a := auths[int(next.Add(1)-1)%len(auths)]
		for pb.Next() {
			begin := e.browser("POST", "/v1/login/begin", map[string]any{}, nil)
			cred, err := a.Assert(e.origin, mustJSON(begin.body["publicKey"]))
			if err != nil {
				b.Error(err)
				return
			}
			if r := e.browser("POST", "/v1/login/finish", map[string]any{"ceremony": begin.body["ceremony"], "credential": json.RawMessage(cred)}, nil); r.status != 200 {
				b.Errorf("finish: %d %s", r.status, r.raw)
				return
			}
		}
	})
}

// BenchmarkECDSAP256Verify is the cost of the one signature check at the
// heart of a login, for the ratio against BenchmarkLoginFinish.
func BenchmarkECDSAP256Verify(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h := sha256.Sum256([]byte("authenticatorData || SHA-256(clientDataJSON)"))
	sig, _ := ecdsa.SignASN1(rand.Reader, k, h[:])
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !ecdsa.VerifyASN1(&k.PublicKey, h[:], sig) {
			b.Fatal("verify failed")
		}
	}
}
