package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"airlock"
	"airlock/audit"
	"airlock/decide"
	"airlock/policy"
)

const casesFile = "../../policy/testdata/default-cases.yaml"

// initPolicyDir writes the default policy files into a new directory.
func initPolicyDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "policies")
	if out, errOut, code := runCLI(t, "policy", "init", dir); code != 0 || strings.Count(out, ".cedar\n") != len(policy.DefaultFiles()) {
		t.Fatalf("init: %d %q %q", code, out, errOut)
	}
	return dir
}

func writePolicy(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPolicyValidate(t *testing.T) {
	dir := initPolicyDir(t)
	out, errOut, code := runCLI(t, "policy", "validate", dir)
	if code != 0 || strings.TrimSpace(out) != policy.Default().Version() || !strings.Contains(errOut, "17 policies, valid") {
		t.Fatalf("valid dir: %d %q %q", code, out, errOut)
	}
	if _, errOut, code := runCLI(t, "policy", "init", dir); code == 0 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("init over existing files: %d %q", code, errOut)
	}

	writePolicy(t, dir, "50-mine.cedar", "@id(\"mine\")\n@owner(\"me\")\n@review_by(\"2030-01-01\")\nforbid (principal, action, resource)\nwhen { context.device.colour == \"red\" };\n")
	out, errOut, code = runCLI(t, "policy", "validate", dir)
	if code != 1 || out != "" || !strings.Contains(errOut, "50-mine.cedar:1:1: schema:") || !strings.Contains(errOut, "colour") {
		t.Fatalf("schema error: %d %q %q", code, out, errOut)
	}
	writePolicy(t, dir, "50-mine.cedar", "permit (principal,\n  action resource);")
	if _, errOut, code = runCLI(t, "policy", "validate", dir); code != 1 || !strings.Contains(errOut, "50-mine.cedar:2:") {
		t.Fatalf("parse error: %d %q", code, errOut)
	}
	if _, errOut, code = runCLI(t, "policy", "validate", filepath.Join(dir, "missing")); code != 1 || !strings.Contains(errOut, "no such file") {
		t.Fatalf("missing dir: %d %q", code, errOut)
	}
	if _, _, code = runCLI(t, "policy", "validate"); code != 1 {
		t.Fatal("validate without DIR succeeded")
	}
}

func TestPolicyTest(t *testing.T) {
	out, errOut, code := runCLI(t, "policy", "test", casesFile)
	if code != 0 || out != "" || !strings.Contains(errOut, "0 failed") {
		t.Fatalf("default set: %d %q %q", code, out, errOut)
	}

	// A candidate without the per-transfer confirmation fails exactly the
	// payments case.
	dir := initPolicyDir(t)
	b, _ := os.ReadFile(filepath.Join(dir, "20-stepup.cedar"))
	i := strings.Index(string(b), "// PSD2")
	j := strings.Index(string(b), "@id(\"shared-station\")")
	writePolicy(t, dir, "20-stepup.cedar", string(b[:i])+string(b[j:]))
	out, errOut, code = runCLI(t, "policy", "test", "--dir", dir, casesFile)
	if code != 1 || !strings.Contains(out, "FAIL fail-payments-transfer-always-confirmed: got allow, want step_up") ||
		strings.Count(out, "FAIL ") != 2 || !strings.Contains(errOut, "2 failed") {
		t.Fatalf("candidate: %d %q %q", code, out, errOut)
	}

	cases := filepath.Join(t.TempDir(), "cases.yaml")
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown-field": {"- name: x\n  input: {now: 2026-01-01T00:00:00Z, subjet: {id: u}}\n  expect: allow\n", "unknown field \"subjet\""},
		"no-now":        {"- name: x\n  input: {}\n  expect: allow\n", "input.now is required"},
		"bad-expect":    {"- name: x\n  input: {}\n  expect: maybe\n", "expect \"maybe\""},
		"no-cases":      {"defaults: {}\n", "no cases"},
		"duplicate":     {"- name: x\n  expect: allow\n- name: x\n  expect: deny\n", "duplicate case name"},
	} {
		os.WriteFile(cases, []byte(tc.yaml), 0o644)
		if _, errOut, code := runCLI(t, "policy", "test", cases); code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: %d %q", name, code, errOut)
		}
	}
	// A plain list of cases works, and a mismatch in it is reported.
	os.WriteFile(cases, []byte("- name: low\n  input:\n    now: 2026-11-18T10:00:00Z\n    subject: {id: u, kind: employee, tier: 0}\n    device: {kind: managed, trust: trusted, compliant: true}\n    session: {tier: 0}\n    action: {name: config.read, sensitivity: low}\n    resource: {name: r, tier: 2}\n  expect: deny\n"), 0o644)
	if out, _, code := runCLI(t, "policy", "test", cases); code != 1 || !strings.HasPrefix(out, "FAIL low: got allow, want deny") {
		t.Fatalf("list form: %d %q", code, out)
	}
}

// recordDecisions decides inputs with the default set and audits each as
// the decision point does, into the SQLite store in dataDir.
func recordDecisions(t *testing.T, dataDir string, ins []policy.Input, extra ...airlock.AuditEvent) {
	t.Helper()
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Data = dataDir
	store, err := openStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	log := audit.New(store, nil, nil)
	e := policy.NewEngine(policy.Default(), policy.DefaultConfig())
	asJSON := func(v any) any {
		b, _ := json.Marshal(v)
		var out any
		json.Unmarshal(b, &out)
		return out
	}
	for _, in := range ins {
		d := e.Decide(in)
		in.DecisionID = d.ID
		ev := airlock.AuditEvent{Type: "decision." + string(d.Outcome), Time: in.Now, UserID: in.Subject.ID, DecisionID: d.ID,
			Details: map[string]any{"input": asJSON(in), "reasons": asJSON(d.Reasons), "risk": asJSON(d.Risk),
				"obligations": asJSON(d.Obligations), "policy_version": d.PolicyVersion}}
		if err := log.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	for _, ev := range extra {
		if err := log.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	log.Close(ctx)
}

func simInput(action string, s policy.Sensitivity, resource string, tier airlock.Tier, at time.Time) policy.Input {
	return policy.Input{
		Subject:  policy.Subject{ID: "usr_a", Name: "a", Roles: []string{airlock.RoleAdmin}, Tier: 0, Kind: airlock.UserEmployee},
		Device:   policy.Device{ID: "dev_a", Kind: airlock.DeviceManaged, Trust: airlock.TrustTrusted, Compliant: true, PostureAgeS: 60},
		Session:  policy.Session{ID: "ses_a", Tier: 0, AgeS: 100, IdleS: 5, UVAgeS: 30},
		Action:   policy.Action{Name: action, Sensitivity: s},
		Resource: policy.Resource{Name: resource, Tier: tier},
		Now:      at,
	}
}

func TestPolicySimulate(t *testing.T) {
	data := t.TempDir()
	t1 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	t2 := t1.Add(48 * time.Hour)
	transfer := simInput("payments.transfer", policy.Critical, "payments", 0, t1)
	confirmed := simInput("payments.transfer", policy.Critical, "payments", 0, t2)
	confirmed.Confirmation = &policy.Confirmation{Transaction: "txn_1", AgeS: 3}
	read := simInput("config.read", policy.Low, "grafana", 2, t2)
	refused := simInput("payments.transfer", policy.Critical, "payments", 0, t2)
	recordDecisions(t, data, []policy.Input{transfer, confirmed, read},
		airlock.AuditEvent{Type: "decision.deny", Time: t2, DecisionID: "dec_refused", Details: map[string]any{
			"input":   refused,
			"reasons": []policy.Reason{{Policy: "payments-transfer"}, {Policy: decide.ReasonProofRefused}}}},
		airlock.AuditEvent{Type: "decision.deny", Time: t2, DecisionID: "dec_unknown", Details: map[string]any{
			"reasons": []policy.Reason{{Policy: decide.ReasonUnknownAction}}}},
		airlock.AuditEvent{Type: "login.success", Time: t2})

	// The candidate drops the per-transfer confirmation: the unconfirmed
	// transfer would be allowed; the confirmed one stays allowed, the read
	// unchanged, the refused proof still denied.
	dir := initPolicyDir(t)
	b, _ := os.ReadFile(filepath.Join(dir, "20-stepup.cedar"))
	i := strings.Index(string(b), "// PSD2")
	j := strings.Index(string(b), "@id(\"shared-station\")")
	writePolicy(t, dir, "20-stepup.cedar", string(b[:i])+string(b[j:]))

	out, errOut, code := runCLI(t, "policy", "simulate", "--candidate", dir, "--data", data)
	if code != 0 {
		t.Fatalf("simulate: %d %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("changes %q", out)
	}
	var c struct {
		Action, Recorded, Candidate string
		RecordedMaxAge              int64  `json:"recorded_max_age"`
		DecisionID                  string `json:"decision_id"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &c); err != nil {
		t.Fatal(err)
	}
	if c.Action != "payments.transfer" || c.Recorded != "step_up" || c.Candidate != "allow" || c.DecisionID == "" {
		t.Fatalf("change %+v", c)
	}
	if !strings.Contains(errOut, "4 decisions replayed") || !strings.Contains(errOut, "1 would change") || !strings.Contains(errOut, "1 not replayable") {
		t.Fatalf("summary %q", errOut)
	}

	// --since leaves the first day out.
	out, errOut, code = runCLI(t, "policy", "simulate", "--candidate", dir, "--since", t1.Add(time.Hour).Format(time.RFC3339), "--data", data)
	if code != 0 || out != "" || !strings.Contains(errOut, "3 decisions replayed") {
		t.Fatalf("since: %d %q %q", code, out, errOut)
	}
	// The same policies change nothing.
	if out, _, code := runCLI(t, "policy", "simulate", "--candidate", initPolicyDir(t), "--data", data); code != 0 || out != "" {
		t.Fatalf("same policies: %d %q", code, out)
	}

	// Reading the audit log was audited.
	cfg := DefaultConfig()
	cfg.Data = data
	store, err := openStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	reads, err := store.ListAudit(context.Background(), airlock.AuditFilter{Type: "audit.read"})
	store.Close()
	if err != nil || len(reads) != 3 || reads[0].Details["via"] != "airlock policy simulate" {
		t.Fatalf("audit.read events %v %v", reads, err)
	}

	for name, args := range map[string][]string{
		"no-candidate":    {"--data", data},
		"invalid-since":   {"--candidate", dir, "--since", "yesterday", "--data", data},
		"missing-store":   {"--candidate", dir, "--data", filepath.Join(data, "nope")},
		"invalid-policy":  {"--candidate", filepath.Join(dir, "missing"), "--data", data},
		"positional-args": {"--candidate", dir, "--data", data, "extra"},
	} {
		if _, _, code := runCLI(t, append([]string{"policy", "simulate"}, args...)...); code == 0 {
			t.Errorf("%s: succeeded", name)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "nope")); !os.IsNotExist(err) {
		t.Error("simulate created a store where none was")
	}
}

func TestPolicyReport(t *testing.T) {
	dir := initPolicyDir(t)
	writePolicy(t, dir, "50-old.cedar", "@id(\"old\")\n@owner(\"team-x\")\n@review_by(\"2026-01-31\")\nforbid (principal, action, resource) when { context.risk_score > 99 };\n")
	now := time.Date(2026, 11, 18, 12, 0, 0, 0, time.UTC)

	data := t.TempDir()
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Data = data
	store, err := openStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []*airlock.Exception{
		{ID: "exc_live", Effect: policy.EffectSkipStepUp, Owner: "secops", Reason: "migration", CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour)},
		{ID: "exc_gone", Effect: policy.EffectSkipStepUp, Owner: "secops", Reason: "old", CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Minute)},
	} {
		if err := store.CreateException(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()

	out, errOut, code := runCLI(t, "policy", "report", "--dir", dir, "--now", now.Format(time.RFC3339), "--data", data)
	if code != 0 {
		t.Fatalf("report: %d %q", code, errOut)
	}
	var r struct {
		Overdue []struct {
			File, ID, Owner string
		} `json:"overdue_reviews"`
		Live  []airlock.Exception `json:"live_exceptions"`
		Store bool                `json:"store_read"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Overdue) != 1 || r.Overdue[0].ID != "old" || r.Overdue[0].File != "50-old.cedar" || r.Overdue[0].Owner != "team-x" {
		t.Fatalf("overdue %+v", r.Overdue)
	}
	if !r.Store || len(r.Live) != 1 || r.Live[0].ID != "exc_live" {
		t.Fatalf("exceptions %+v", r.Live)
	}

	// Without --dir the configured policy_dir is reported (relative to the
	// config file).
	conf := filepath.Join(filepath.Dir(dir), "airlock.yaml")
	os.WriteFile(conf, []byte("policy_dir: policies\n"), 0o644)
	out, errOut, code = runCLI(t, "policy", "report", "--config", conf, "--now", now.Format(time.RFC3339), "--data", data)
	if code != 0 || !strings.Contains(out, `"policy_source": "`+dir+`"`) || !strings.Contains(out, `"id": "old"`) {
		t.Fatalf("configured policy_dir: %d %q %q", code, out, errOut)
	}

	// Without a store only the reviews are reported; after the default
	// set's review date all of its policies are overdue.
	t.Chdir(t.TempDir())
	out, errOut, code = runCLI(t, "policy", "report", "--now", "2027-06-01T00:00:00Z")
	if code != 0 || !strings.Contains(errOut, "exceptions not listed") || strings.Contains(out, "live_exceptions") || strings.Count(out, "\"review_by\"") != 17 {
		t.Fatalf("no store: %d %q %q", code, out, errOut)
	}
	if _, _, code := runCLI(t, "policy", "report", "--now", "tomorrow"); code == 0 {
		t.Fatal("bad --now accepted")
	}
}

func TestPolicyUsage(t *testing.T) {
	if out, _, code := runCLI(t, "policy", "help"); code != 0 || !strings.Contains(out, "policy simulate --candidate DIR") {
		t.Fatalf("help: %d %q", code, out)
	}
	if _, errOut, code := runCLI(t, "policy", "frobnicate"); code == 0 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown: %d %q", code, errOut)
	}
}
