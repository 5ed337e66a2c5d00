package loadgen

import (
	"context"
	"testing"
	"time"
)

// TestRun loads a built-in stack briefly: every request gets a decision,
// the default mix is allowed, and the figures are consistent.
func TestRun(t *testing.T) {
	ctx := context.Background()
	st, err := NewStack(ctx, t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	res, err := Run(ctx, Config{URL: st.URL, Sessions: st.Sessions, Requests: Mix(), Concurrency: 2, Total: 30})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 30 || res.Errors != 0 || res.Decisions["allow"] != 30 {
		t.Fatalf("result %s (first error %q)", res, res.FirstError)
	}
	if !(res.P50 > 0 && res.P50 <= res.P90 && res.P90 <= res.P99 && res.P99 <= res.Max) || res.PerSecond <= 0 {
		t.Fatalf("inconsistent figures: %s", res)
	}
	// A bad session is counted as an error, not a decision.
	res, err = Run(ctx, Config{URL: st.URL, Sessions: []string{"nope"}, Requests: Mix(), Concurrency: 1, Total: 3, Duration: time.Minute})
	if err != nil || res.Errors != 3 || res.Requests != 0 {
		t.Fatalf("bad session: %s %v", res, err)
	}
}
