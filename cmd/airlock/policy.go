package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"airlock"
	"airlock/audit"
	"airlock/decide"
	"airlock/policy"
	"airlock/policy/policyfs"
)

const policyUsage = `Usage:
  airlock policy validate DIR
      parse and schema-check the .cedar files of DIR; errors name file:line
  airlock policy test [--dir DIR] [--config FILE] CASES.yaml
      decide every case of CASES.yaml with DIR's policies (default: the
      config's policy_dir, else the embedded default set); print each
      mismatch; exit 1 on any
  airlock policy simulate --candidate DIR [--since RFC3339] [--data DIR | --store URL] [--config FILE]
      replay the recorded decisions (audit events decision.*) against DIR's
      policies and print, one JSON object a line, every decision that would
      change (shadow mode)
  airlock policy report [--dir DIR] [--now RFC3339] [--data DIR | --store URL] [--config FILE]
      list policies past their @review_by date (DIR, else the config's
      policy_dir, else the embedded set) and live exceptions (JSON)
  airlock policy init DIR
      write the embedded default policy files into DIR (a starting point)
`

// cmdPolicy runs `airlock policy …`.
func cmdPolicy(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return errors.New("policy: missing command")
	}
	switch args[0] {
	case "validate":
		return policyValidate(args[1:], stdout, stderr)
	case "test":
		return policyTest(args[1:], stdout, stderr)
	case "simulate":
		return policySimulate(args[1:], stdout, stderr)
	case "report":
		return policyReport(args[1:], stdout, stderr)
	case "init":
		return policyInit(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, policyUsage)
		return nil
	}
	fmt.Fprint(stderr, policyUsage)
	return fmt.Errorf("policy: unknown command %q", args[0])
}

func policyFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("policy "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// oneArg parses fs and returns its single positional argument.
func oneArg(fs *flag.FlagSet, args []string, what string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() != 1 {
		return "", fmt.Errorf("policy %s: want exactly one %s (flags go before it)", fs.Name()[len("policy "):], what)
	}
	return fs.Arg(0), nil
}

func policyValidate(args []string, stdout, stderr io.Writer) error {
	dir, err := oneArg(policyFlags("validate", stderr), args, "DIR")
	if err != nil {
		return err
	}
	set, err := policyfs.LoadDir(dir)
	if err != nil {
		return err
	}
	n := 0
	for _, f := range set.Files() {
		n += len(f.Policies)
	}
	fmt.Fprintf(stdout, "%s\n", set.Version())
	fmt.Fprintf(stderr, "policy: %s: %d files, %d policies, valid\n", dir, len(set.Files()), n)
	return nil
}

func policyInit(args []string, stdout, stderr io.Writer) error {
	dir, err := oneArg(policyFlags("init", stderr), args, "DIR")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("policy init: %w", err)
	}
	files := policy.DefaultFiles()
	for name := range files {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return fmt.Errorf("policy init: %s already exists; nothing written", filepath.Join(dir, name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := os.WriteFile(filepath.Join(dir, name), files[name], 0o644); err != nil {
			return fmt.Errorf("policy init: %w", err)
		}
		fmt.Fprintln(stdout, filepath.Join(dir, name))
	}
	return nil
}

// loadSet returns the set of dir, or the embedded default when dir is "".
func loadSet(dir string) (*policy.Set, error) {
	if dir == "" {
		return policy.Default(), nil
	}
	return policyfs.LoadDir(dir)
}

// TestCase is one case of a `policy test` file.
type TestCase struct {
	Name   string         `yaml:"name"`
	Input  map[string]any `yaml:"input"`
	Expect policy.Outcome `yaml:"expect"`
	// MaxAge, when set, is the step_up obligation's expected max_age.
	MaxAge *int64 `yaml:"max_age"`
	// Reasons, when set, are policy ids that must all be among the
	// decision's reasons.
	Reasons []string `yaml:"reasons"`
}

// TestFile is a `policy test` file: cases, and defaults merged under each
// case's input (maps merge key by key, a case's values win). A file may
// also be a plain list of cases.
type TestFile struct {
	Defaults map[string]any `yaml:"defaults"`
	Cases    []TestCase     `yaml:"cases"`
}

// parseCases reads a test file.
func parseCases(b []byte) ([]TestCase, error) {
	var node yaml.Node
	if err := yaml.Unmarshal(b, &node); err != nil {
		return nil, err
	}
	var tf TestFile
	if len(node.Content) == 1 && node.Content[0].Kind == yaml.SequenceNode {
		if err := node.Content[0].Decode(&tf.Cases); err != nil {
			return nil, err
		}
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&tf); err != nil {
			return nil, err
		}
	}
	if len(tf.Cases) == 0 {
		return nil, errors.New("no cases")
	}
	seen := map[string]bool{}
	for i := range tf.Cases {
		c := &tf.Cases[i]
		if c.Name == "" {
			c.Name = fmt.Sprintf("case %d", i+1)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("%s: duplicate case name", c.Name)
		}
		seen[c.Name] = true
		switch c.Expect {
		case policy.Allow, policy.StepUp, policy.ApprovalRequired, policy.Deny:
		default:
			return nil, fmt.Errorf("%s: expect %q is not allow, step_up, approval_required or deny", c.Name, c.Expect)
		}
		c.Input = merge(tf.Defaults, c.Input)
	}
	return tf.Cases, nil
}

// merge returns base overlaid with over, maps merged recursively.
func merge(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = merge(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// caseInput converts a case's YAML input to a policy.Input through its
// JSON form, refusing unknown fields (a typo must not silently test
// something else).
func caseInput(m map[string]any) (policy.Input, error) {
	var in policy.Input
	b, err := json.Marshal(m)
	if err != nil {
		return in, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return in, err
	}
	if in.Now.IsZero() {
		return in, errors.New("input.now is required (RFC 3339)")
	}
	return in, nil
}

func reasonIDs(d policy.Decision) []string {
	ids := make([]string, len(d.Reasons))
	for i, r := range d.Reasons {
		ids[i] = r.Policy
	}
	return ids
}

func policyTest(args []string, stdout, stderr io.Writer) error {
	fs := policyFlags("test", stderr)
	dir := fs.String("dir", "", "policy directory (default: the configured policy_dir, else the embedded default set)")
	resolve := configFlags(fs)
	path, err := oneArg(fs, args, "CASES.yaml")
	if err != nil {
		return err
	}
	cfg, err := resolve()
	if err != nil {
		return err
	}
	set, err := loadSet(firstNonEmpty(*dir, cfg.PolicyDir))
	if err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("policy test: %w", err)
	}
	cases, err := parseCases(b)
	if err != nil {
		return fmt.Errorf("policy test: %s: %w", path, err)
	}
	e := policy.NewEngine(set, cfg.Risk.Config)
	failed := 0
	for _, c := range cases {
		in, err := caseInput(c.Input)
		if err != nil {
			return fmt.Errorf("policy test: %s: %s: %w", path, c.Name, err)
		}
		d := e.Decide(in)
		var why []string
		if d.Outcome != c.Expect {
			why = append(why, fmt.Sprintf("got %s, want %s", d.Outcome, c.Expect))
		}
		if c.MaxAge != nil && (d.Outcome != policy.StepUp || d.Obligations.MaxAge != *c.MaxAge) {
			why = append(why, fmt.Sprintf("max_age %d, want %d", d.Obligations.MaxAge, *c.MaxAge))
		}
		for _, r := range c.Reasons {
			if !slices.Contains(reasonIDs(d), r) {
				why = append(why, fmt.Sprintf("reason %s missing", r))
			}
		}
		if len(why) > 0 {
			failed++
			fmt.Fprintf(stdout, "FAIL %s: %s (reasons: %s; risk %d)\n", c.Name, strings.Join(why, "; "), strings.Join(reasonIDs(d), ","), d.Risk.Score)
		}
	}
	fmt.Fprintf(stderr, "policy test: %d cases, %d failed (policy version %s)\n", len(cases), failed, set.Version())
	if failed > 0 {
		return fmt.Errorf("policy test: %d of %d cases failed", failed, len(cases))
	}
	return nil
}

// storeGiven reports whether the command line, environment or config names
// a store, and otherwise whether the default SQLite database exists.
func storeGiven(fs *flag.FlagSet, cfg Config) (explicit, exists bool) {
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "data" || f.Name == "store" || f.Name == "config" {
			explicit = true
		}
	})
	for _, env := range []string{"AIRLOCK_DATA", "AIRLOCK_STORE", "AIRLOCK_CONFIG"} {
		if os.Getenv(env) != "" {
			explicit = true
		}
	}
	if cfg.Store != "" {
		return explicit, true
	}
	_, err := os.Stat(filepath.Join(cfg.Data, "airlock.db"))
	return explicit, err == nil
}

// openExistingStore opens the store cfg names, refusing to create an empty
// SQLite database where none is (a typo in --data must not look like "no
// decisions recorded").
func openExistingStore(ctx context.Context, cfg Config) (airlock.Store, error) {
	if cfg.Store == "" {
		if _, err := os.Stat(filepath.Join(cfg.Data, "airlock.db")); err != nil {
			return nil, fmt.Errorf("no Airlock store in %s (use --data DIR or --store URL)", cfg.Data)
		}
	} else if strings.HasPrefix(cfg.Store, "sqlite:") {
		if _, err := os.Stat(strings.TrimPrefix(cfg.Store, "sqlite:")); err != nil {
			return nil, fmt.Errorf("no SQLite store at %s", strings.TrimPrefix(cfg.Store, "sqlite:"))
		}
	}
	return openStore(ctx, cfg)
}

// Change is one recorded decision that a candidate policy set would decide
// differently (the output of `policy simulate`, one JSON object a line).
type Change struct {
	Seq              int64              `json:"seq"`
	Time             time.Time          `json:"time"`
	DecisionID       string             `json:"decision_id"`
	UserID           string             `json:"user_id"`
	Action           string             `json:"action"`
	Resource         string             `json:"resource"`
	Recorded         policy.Outcome     `json:"recorded"`
	RecordedMaxAge   int64              `json:"recorded_max_age,omitempty"`
	RecordedReasons  []string           `json:"recorded_reasons"`
	RecordedVersion  string             `json:"recorded_policy_version"`
	Candidate        policy.Outcome     `json:"candidate"`
	CandidateMaxAge  int64              `json:"candidate_max_age,omitempty"`
	CandidateReasons []policy.Reason    `json:"candidate_reasons"`
	CandidateRisk    int                `json:"candidate_risk"`
	Obligations      policy.Obligations `json:"candidate_obligations"`
}

// recorded is what simulate reads back from a decision audit event.
type recorded struct {
	Input         policy.Input       `json:"input"`
	Reasons       []policy.Reason    `json:"reasons"`
	Obligations   policy.Obligations `json:"obligations"`
	PolicyVersion string             `json:"policy_version"`
}

// replay decides a recorded decision event again with e. ok is false for
// an event that is not a replayable decision (no input, or a request the
// decision point refused before any policy ran: unknown action or
// resource). The decision point's own override is applied again: a refused
// step-up proof makes any outcome a deny.
func replay(e *policy.Engine, ev *airlock.AuditEvent) (rec recorded, cand policy.Decision, ok bool, err error) {
	b, err := json.Marshal(ev.Details)
	if err != nil {
		return rec, cand, false, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, cand, false, fmt.Errorf("event %d: %w", ev.Seq, err)
	}
	if rec.Input.Now.IsZero() {
		return rec, cand, false, nil
	}
	refused := false
	for _, r := range rec.Reasons {
		switch r.Policy {
		case decide.ReasonUnknownAction, decide.ReasonUnknownResource:
			return rec, cand, false, nil
		case decide.ReasonProofRefused:
			refused = true
		}
	}
	cand = e.Decide(rec.Input)
	if refused {
		cand.Outcome = policy.Deny
		cand.Obligations = policy.Obligations{}
		cand.Reasons = append(cand.Reasons, policy.Reason{Policy: decide.ReasonProofRefused, Text: "the recorded request presented a refused step-up proof"})
	}
	return rec, cand, true, nil
}

func policySimulate(args []string, stdout, stderr io.Writer) error {
	fs := policyFlags("simulate", stderr)
	candidate := fs.String("candidate", "", "candidate policy directory (required)")
	since := fs.String("since", "", "replay decisions recorded at or after this time (RFC 3339)")
	resolve := configFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("policy simulate: unexpected argument %q (flags only)", fs.Arg(0))
	}
	if *candidate == "" {
		return errors.New("policy simulate: --candidate DIR is required")
	}
	var from time.Time
	if *since != "" {
		t, err := time.Parse(time.RFC3339, *since)
		if err != nil {
			return fmt.Errorf("policy simulate: --since: %w", err)
		}
		from = t
	}
	cfg, err := resolve()
	if err != nil {
		return err
	}
	set, err := policyfs.LoadDir(*candidate)
	if err != nil {
		return err
	}
	ctx := context.Background()
	store, err := openExistingStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("policy simulate: %w", err)
	}
	defer store.Close()
	// Reading the audit log is itself audited (decision inputs name people
	// and what they did).
	log := audit.New(store, nil, nil)
	details := map[string]any{"via": "airlock policy simulate", "type": "decision.", "candidate": set.Version(), "os_user": os.Getenv("USER")}
	if !from.IsZero() {
		details["since"] = from.UTC().Format(time.RFC3339)
	}
	err = log.Record(ctx, airlock.AuditEvent{Type: "audit.read", Actor: "cli", Details: details})
	if cerr := log.Close(ctx); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("policy simulate: recording the audit read: %w", err)
	}
	engine := policy.NewEngine(set, cfg.Risk.Config)
	enc := json.NewEncoder(stdout)
	var total, changed, skipped int
	var after int64
	for {
		page, err := store.ListAudit(ctx, airlock.AuditFilter{AfterSeq: after, Type: "decision.", Limit: 500})
		if err != nil {
			return fmt.Errorf("policy simulate: %w", err)
		}
		for _, ev := range page {
			after = ev.Seq
			if ev.Time.Before(from) {
				continue
			}
			rec, cand, ok, err := replay(engine, ev)
			if err != nil {
				return fmt.Errorf("policy simulate: %w", err)
			}
			if !ok {
				skipped++
				continue
			}
			total++
			was := policy.Outcome(strings.TrimPrefix(ev.Type, "decision."))
			if was == cand.Outcome && (was != policy.StepUp || (rec.Obligations.MaxAge == cand.Obligations.MaxAge && rec.Obligations.ACR == cand.Obligations.ACR)) {
				continue
			}
			changed++
			c := Change{Seq: ev.Seq, Time: ev.Time, DecisionID: ev.DecisionID, UserID: ev.UserID,
				Action: rec.Input.Action.Name, Resource: rec.Input.Resource.Name,
				Recorded: was, RecordedReasons: []string{}, RecordedVersion: rec.PolicyVersion,
				Candidate: cand.Outcome, CandidateReasons: cand.Reasons, CandidateRisk: cand.Risk.Score, Obligations: cand.Obligations}
			for _, r := range rec.Reasons {
				c.RecordedReasons = append(c.RecordedReasons, r.Policy)
			}
			if was == policy.StepUp {
				c.RecordedMaxAge = rec.Obligations.MaxAge
			}
			if cand.Outcome == policy.StepUp {
				c.CandidateMaxAge = cand.Obligations.MaxAge
			}
			if err := enc.Encode(c); err != nil {
				return err
			}
		}
		if len(page) < 500 {
			break
		}
	}
	fmt.Fprintf(stderr, "policy simulate: %d decisions replayed against %s, %d would change", total, set.Version(), changed)
	if skipped > 0 {
		fmt.Fprintf(stderr, ", %d not replayable (refused before any policy ran)", skipped)
	}
	fmt.Fprintln(stderr)
	return nil
}

// Report is the output of `policy report`.
type Report struct {
	Now            time.Time              `json:"now"`
	PolicyVersion  string                 `json:"policy_version"`
	PolicySource   string                 `json:"policy_source"` // the directory, or "embedded default"
	OverdueReviews []policy.OverdueReview `json:"overdue_reviews"`
	// LiveExceptions is nil (omitted) when no store was read.
	LiveExceptions []*airlock.Exception `json:"live_exceptions,omitempty"`
	Store          bool                 `json:"store_read"`
}

func policyReport(args []string, stdout, stderr io.Writer) error {
	fs := policyFlags("report", stderr)
	dir := fs.String("dir", "", "policy directory (default: the configured policy_dir, else the embedded default set)")
	nowFlag := fs.String("now", "", "judge review dates and expiries at this time (RFC 3339; default: now)")
	resolve := configFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("policy report: unexpected argument %q (flags only)", fs.Arg(0))
	}
	now := time.Now()
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil {
			return fmt.Errorf("policy report: --now: %w", err)
		}
		now = t
	}
	cfg, err := resolve()
	if err != nil {
		return err
	}
	source := firstNonEmpty(*dir, cfg.PolicyDir)
	set, err := loadSet(source)
	if err != nil {
		return err
	}
	r := Report{Now: now.UTC(), PolicyVersion: set.Version(), PolicySource: firstNonEmpty(source, "embedded default"),
		OverdueReviews: set.Overdue(now)}
	if r.OverdueReviews == nil {
		r.OverdueReviews = []policy.OverdueReview{}
	}
	explicit, exists := storeGiven(fs, cfg)
	if explicit || exists {
		ctx := context.Background()
		store, err := openExistingStore(ctx, cfg)
		if err != nil {
			return fmt.Errorf("policy report: %w", err)
		}
		defer store.Close()
		all, err := store.ListExceptions(ctx)
		if err != nil {
			return fmt.Errorf("policy report: %w", err)
		}
		r.Store = true
		r.LiveExceptions = []*airlock.Exception{}
		for _, x := range all {
			if now.Before(x.ExpiresAt) {
				r.LiveExceptions = append(r.LiveExceptions, x)
			}
		}
	} else {
		fmt.Fprintf(stderr, "policy report: no store (no %s; use --data DIR or --store URL): exceptions not listed\n", filepath.Join(cfg.Data, "airlock.db"))
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "policy report: %d policies past review, %d live exceptions\n", len(r.OverdueReviews), len(r.LiveExceptions))
	return nil
}
