// Command airlock-load is a load generator for Airlock's POST /v1/decide: N
// concurrent workers send decision requests over HTTP for a duration and it
// prints throughput and latency percentiles (p50, p90, p99, max) as JSON on
// stdout (a summary on stderr).
//
// Without --server it starts its own Airlock in a temporary directory
// (SQLite, the default policies, the quick-start catalog) with --users
// signed-in tier-0 users and loads that; with --server and --session it
// loads a running Airlock as those sessions.
//
//	airlock-load [--duration 10s] [--concurrency 16] [--users 16]
//	airlock-load --server https://airlock.example.com --session TOKEN [--session TOKEN]... [--action A --resource R [--params JSON]]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"airlock/internal/loadgen"
	"airlock/pep"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("airlock-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "Airlock base URL (default: start one in a temporary directory)")
	var sessions multi
	fs.Var(&sessions, "session", "end-user session token (repeatable; with --server)")
	duration := fs.Duration("duration", 10*time.Second, "how long to load")
	warmup := fs.Duration("warmup", time.Second, "unmeasured warm-up")
	conc := fs.Int("concurrency", 16, "concurrent workers")
	users := fs.Int("users", 16, "signed-in users of the built-in server")
	action := fs.String("action", "", "decide only this action (default: a mix of allowed reads, deploys and exports)")
	resource := fs.String("resource", "", "with --action: the resource")
	params := fs.String("params", "{}", "with --action: the parameters, a JSON object")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "airlock-load: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	reqs := loadgen.Mix()
	if *action != "" {
		if *resource == "" || !json.Valid([]byte(*params)) {
			fmt.Fprintln(stderr, "airlock-load: --action needs --resource and a JSON --params")
			return 2
		}
		reqs = []pep.Request{{Action: *action, Resource: *resource, Params: json.RawMessage(*params), Context: pep.Context{Client: "airlock-load"}}}
	}
	ctx := context.Background()
	cfg := loadgen.Config{URL: *server, Sessions: sessions, Requests: reqs, Concurrency: *conc, Duration: *duration, WarmupFor: *warmup}
	if *server == "" {
		dir, err := os.MkdirTemp("", "airlock-load-")
		if err != nil {
			fmt.Fprintln(stderr, "airlock-load:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		st, err := loadgen.NewStack(ctx, dir, *users)
		if err != nil {
			fmt.Fprintln(stderr, "airlock-load: starting Airlock:", err)
			return 1
		}
		defer st.Close()
		cfg.URL, cfg.Sessions = st.URL, st.Sessions
		fmt.Fprintf(stderr, "airlock-load: built-in Airlock at %s (SQLite in %s, %d users)\n", st.URL, dir, *users)
	} else if len(sessions) == 0 {
		fmt.Fprintln(stderr, "airlock-load: --server needs at least one --session")
		return 2
	}
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "airlock-load:", err)
		return 1
	}
	fmt.Fprintln(stderr, "airlock-load:", res)
	out, _ := json.MarshalIndent(res, "", "  ")
	fmt.Fprintln(stdout, string(out))
	if res.Errors > 0 {
		fmt.Fprintln(stderr, "airlock-load: first error:", res.FirstError)
		return 1
	}
	return 0
}
