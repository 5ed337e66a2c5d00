package audit_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"airlock"
	"airlock/audit"

	"golang.org/x/mod/sumdb/note"
)

// benchEvent is a typical login event: ids, an IP, a few details.
func benchEvent(i int64) airlock.AuditEvent {
	return airlock.AuditEvent{
		Type: "auth.login", Outcome: airlock.OutcomeSuccess, Actor: "usr_3f2a9c0d1e2f3a4b5c6d7e8f",
		UserID: "usr_3f2a9c0d1e2f3a4b5c6d7e8f", SessionID: "ses_" + strconv.FormatInt(i, 16),
		DeviceID: "dev_0a1b2c3d4e5f60718293a4b5", CredentialID: "q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng",
		RequestID: "req_0123456789abcdef", IP: "192.0.2.17",
		Details: map[string]any{"tier": 0, "uv": true, "amr": []string{"hwk", "user", "mfa"}, "user_agent": "Mozilla/5.0 (X11; Linux x86_64)"},
	}
}

// BenchmarkRecord measures durable audit appends through Log.Record — the
// group-commit writer — on SQLite with synchronous=FULL, with 1, 16 and 64
// concurrent producers. Each op is one acknowledged (committed) event; the
// events/s metric is the figure for docs/performance.md. Compare producer
// counts as ratios within one run.
//
//	go test -run '^$' -bench Record -benchtime 20000x ./audit/
func BenchmarkRecord(b *testing.B) {
	for _, producers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			s, _ := openStore(b)
			l := audit.New(s, nil, nil)
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range producers {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if err := l.Record(ctx, benchEvent(i)); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkVerify measures the offline verification of a log of
// AIRLOCK_VERIFY_EVENTS events (default 100,000; the 1,000,000 figure in
// docs/performance.md uses AIRLOCK_VERIFY_EVENTS=1000000), with a
// checkpoint every 1,000. Building the log is not timed.
//
//	AIRLOCK_VERIFY_EVENTS=1000000 go test -run '^$' -bench Verify -benchtime 1x -timeout 30m ./audit/
func BenchmarkVerify(b *testing.B) {
	n := int64(100000)
	if v := os.Getenv("AIRLOCK_VERIFY_EVENTS"); v != "" {
		var err error
		if n, err = strconv.ParseInt(v, 10, 64); err != nil || n < 1 {
			b.Fatalf("AIRLOCK_VERIFY_EVENTS=%q", v)
		}
	}
	ctx := context.Background()
	s, _ := openStore(b)
	cp := &audit.Checkpointer{Store: s, Key: newKey(b, "airlock/bench"), Origin: "airlock/bench"}
	const batch = 1000
	evs := make([]*airlock.AuditEvent, 0, batch)
	buildStart := time.Now()
	for i := int64(1); i <= n; i++ {
		e := benchEvent(i)
		e.Time = t0.Add(time.Duration(i) * time.Millisecond)
		evs = append(evs, &e)
		if len(evs) == batch || i == n {
			if err := s.AppendAudit(ctx, evs...); err != nil {
				b.Fatal(err)
			}
			evs = evs[:0]
			if _, err := cp.Checkpoint(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Logf("built %d events in %s", n, time.Since(buildStart).Round(time.Millisecond))
	b.ResetTimer()
	for b.Loop() {
		rep, err := audit.Verify(ctx, s, audit.VerifyOptions{Verifiers: note.VerifierList(cp.Key.Verifier)})
		if err != nil {
			b.Fatal(err)
		}
		if !rep.OK() || rep.Events != n || rep.Covered != n {
			b.Fatalf("verify: %+v", rep)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
