// Package loadgen drives POST /v1/decide over HTTP with concurrent workers
// and measures throughput and latency percentiles. cmd/airlock-load and the
// decide benchmarks use it.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"airlock/pep"
)

// Config describes one load run.
type Config struct {
	// URL is Airlock's base URL.
	URL string
	// Sessions are end-user session tokens; worker i uses Sessions[i %
	// len(Sessions)].
	Sessions []string
	// Requests are cycled through by every worker (Session is filled in).
	Requests []pep.Request
	// Concurrency is the number of workers (default 8).
	Concurrency int
	// Duration bounds the run (default 5 s); Requests > 0 bounds the
	// number of requests instead.
	Duration  time.Duration
	Total     int
	Client    *http.Client
	WarmupFor time.Duration
}

// Result is what a run measured. Latencies are of complete HTTP exchanges
// as the client saw them.
type Result struct {
	Requests    int            `json:"requests"`
	Errors      int            `json:"errors"`
	FirstError  string         `json:"first_error,omitempty"`
	Seconds     float64        `json:"seconds"`
	PerSecond   float64        `json:"per_second"`
	P50         time.Duration  `json:"p50_ns"`
	P90         time.Duration  `json:"p90_ns"`
	P99         time.Duration  `json:"p99_ns"`
	Max         time.Duration  `json:"max_ns"`
	Decisions   map[string]int `json:"decisions"`
	Concurrency int            `json:"concurrency"`
}

// String is a one-line summary.
func (r Result) String() string {
	return fmt.Sprintf("%d requests in %.1fs = %.0f/s with %d workers; p50 %s p90 %s p99 %s max %s; errors %d; decisions %v",
		r.Requests, r.Seconds, r.PerSecond, r.Concurrency, r.P50.Round(time.Microsecond), r.P90.Round(time.Microsecond),
		r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond), r.Errors, r.Decisions)
}

// Run performs the load run.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.URL == "" || len(cfg.Sessions) == 0 || len(cfg.Requests) == 0 {
		return Result{}, fmt.Errorf("loadgen: URL, sessions and requests are required")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.Duration <= 0 && cfg.Total <= 0 {
		cfg.Duration = 5 * time.Second
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency * 2}}
	}
	url := strings.TrimRight(cfg.URL, "/") + "/v1/decide"
	bodies := make([][][]byte, len(cfg.Sessions))
	for i, s := range cfg.Sessions {
		for _, r := range cfg.Requests {
			r.Session = s
			b, err := json.Marshal(r)
			if err != nil {
				return Result{}, err
			}
			bodies[i] = append(bodies[i], b)
		}
	}
	if cfg.WarmupFor > 0 {
		wctx, cancel := context.WithTimeout(ctx, cfg.WarmupFor)
		_, _ = run(wctx, client, url, bodies, cfg.Concurrency, 0)
		cancel()
	}
	rctx := ctx
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	return run(rctx, client, url, bodies, cfg.Concurrency, cfg.Total)
}

type sample struct {
	lat      time.Duration
	decision string
	err      string
}

func run(ctx context.Context, client *http.Client, url string, bodies [][][]byte, workers, total int) (Result, error) {
	var (
		mu      sync.Mutex
		samples []sample
		wg      sync.WaitGroup
		issued  int
	)
	next := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if total > 0 && issued >= total {
			return false
		}
		issued++
		return true
	}
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			mine := bodies[w%len(bodies)]
			var local []sample
			for i := 0; ctx.Err() == nil && next(); i++ {
				local = append(local, once(ctx, client, url, mine[i%len(mine)]))
			}
			mu.Lock()
			samples = append(samples, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	res := Result{Seconds: elapsed.Seconds(), Decisions: map[string]int{}, Concurrency: workers}
	var lats []time.Duration
	for _, s := range samples {
		if s.err != "" {
			if ctx.Err() != nil && strings.Contains(s.err, "context") {
				continue // cut off by the end of the run
			}
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = s.err
			}
			continue
		}
		res.Requests++
		res.Decisions[s.decision]++
		lats = append(lats, s.lat)
	}
	if len(lats) > 0 {
		slices.Sort(lats)
		pct := func(p float64) time.Duration { return lats[min(len(lats)-1, int(p*float64(len(lats))))] }
		res.P50, res.P90, res.P99, res.Max = pct(0.50), pct(0.90), pct(0.99), lats[len(lats)-1]
	}
	res.PerSecond = float64(res.Requests) / elapsed.Seconds()
	return res, nil
}

func once(ctx context.Context, client *http.Client, url string, body []byte) sample {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return sample{err: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	t := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return sample{err: err.Error()}
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	lat := time.Since(t)
	if err != nil {
		return sample{err: err.Error()}
	}
	if resp.StatusCode != http.StatusOK {
		return sample{err: fmt.Sprintf("HTTP %d: %.200s", resp.StatusCode, data)}
	}
	var d struct {
		Decision string `json:"decision"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return sample{err: err.Error()}
	}
	return sample{lat: lat, decision: d.Decision}
}
