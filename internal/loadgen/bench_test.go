package loadgen

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkDecideHTTP measures POST /v1/decide end to end over loopback
// HTTP against SQLite (durable: every decision is audited before it is
// answered), with c concurrent clients, each its own session. Besides ns/op
// it reports decisions/s and the p50/p99 latency of single requests.
//
//	go test ./internal/loadgen -run '^$' -bench DecideHTTP -benchtime 2000x
func BenchmarkDecideHTTP(b *testing.B) {
	for _, c := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", c), func(b *testing.B) {
			ctx := context.Background()
			st, err := NewStack(ctx, b.TempDir(), c)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			cfg := Config{URL: st.URL, Sessions: st.Sessions, Requests: Mix(), Concurrency: c, Total: 50}
			if _, err := Run(ctx, cfg); err != nil { // warm up
				b.Fatal(err)
			}
			cfg.Total = b.N
			b.ResetTimer()
			res, err := Run(ctx, cfg)
			b.StopTimer()
			if err != nil || res.Errors > 0 {
				b.Fatalf("%v %s", err, res.FirstError)
			}
			b.ReportMetric(res.PerSecond, "decisions/s")
			b.ReportMetric(float64(res.P50)/float64(time.Millisecond), "p50-ms")
			b.ReportMetric(float64(res.P99)/float64(time.Millisecond), "p99-ms")
		})
	}
}
