package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBreakGlassConfig(t *testing.T) {
	def, err := loadConfig(t, "rp_name: Airlock\n")
	if err != nil {
		t.Fatal(err)
	}
	b := def.BreakGlass
	if b.enabled() || b.Duration != time.Hour || b.AlertTimeout != 5*time.Second || b.ReviewerRole != "airlock-admin" ||
		b.RequireReseal || b.Dir != "" || b.CredentialsFile != "" || b.SweepInterval != 30*time.Second {
		t.Fatalf("defaults %+v", b)
	}
	if got := def.breakGlassDir(); got != filepath.Join(def.Data, "breakglass") {
		t.Fatalf("default dir %q", got)
	}

	dir := t.TempDir()
	f := filepath.Join(dir, "airlock.yaml")
	os.WriteFile(f, []byte(`
breakglass:
  scopes: ["dba@db-prod", "tier:1"]
  duration: 30m
  require_reseal: true
  alerts: [{url: "https://pager.example.com/hook", secret: s3cret}, {url: "http://127.0.0.1:9/x", secret: t}]
  alert_timeout: 2s
  dir: bg
  credentials_file: keys/breakglass.json
  source_addresses: [10.0.0.0/8, "2001:db8::/32"]
  reviewer_role: security-lead
`), 0o600)
	t.Setenv("AIRLOCK_LISTEN", "")
	fs := newFlagSet()
	resolve := configFlags(fs)
	if err := fs.Parse([]string{"--config", f}); err != nil {
		t.Fatal(err)
	}
	c, err := resolve()
	if err != nil {
		t.Fatal(err)
	}
	b = c.BreakGlass
	if !b.enabled() || len(b.Scopes) != 2 || b.Duration != 30*time.Minute || !b.RequireReseal || len(b.Alerts) != 2 ||
		b.Alerts[0].Secret != "s3cret" || b.AlertTimeout != 2*time.Second || len(b.SourceAddresses) != 2 || b.ReviewerRole != "security-lead" {
		t.Fatalf("section %+v", b)
	}
	// Paths are relative to the config file.
	if b.Dir != filepath.Join(dir, "bg") || b.CredentialsFile != filepath.Join(dir, "keys/breakglass.json") || c.breakGlassDir() != b.Dir {
		t.Fatalf("paths not resolved against the config file: %q %q", b.Dir, b.CredentialsFile)
	}

	for _, tt := range []struct{ name, yaml, want string }{
		{"fail-bad-scope", "breakglass: {scopes: [root]}", "breakglass.scopes[0]"},
		{"fail-bad-tier-scope", "breakglass: {scopes: [\"tier:7\"]}", "breakglass.scopes[0]"},
		{"fail-duration-over-60m", "breakglass: {duration: 61m}", "breakglass.duration must be positive and at most 1h0m0s"},
		{"fail-duration-zero", "breakglass: {duration: 0s}", "breakglass.duration"},
		{"fail-alert-plain-http", "breakglass: {alerts: [{url: \"http://pager.example.com/x\", secret: s}]}", "breakglass.alerts[0].url must be an https URL"},
		{"fail-alert-not-a-url", "breakglass: {alerts: [{url: \"pager\", secret: s}]}", "breakglass.alerts[0].url"},
		{"fail-alert-no-secret", "breakglass: {alerts: [{url: \"https://pager.example.com/x\"}]}", "breakglass.alerts[0].secret is required"},
		{"fail-alert-timeout-zero", "breakglass: {alert_timeout: 0s}", "breakglass.alert_timeout"},
		{"fail-alert-timeout-long", "breakglass: {alert_timeout: 5m}", "breakglass.alert_timeout"},
		{"fail-source-address", "breakglass: {source_addresses: [not-a-cidr]}", "breakglass.source_addresses[0]"},
		{"fail-reviewer-role-empty", "breakglass: {reviewer_role: \"\"}", "breakglass.reviewer_role"},
		{"fail-reviewer-role-control", "breakglass: {reviewer_role: \"a\\nb\"}", "breakglass.reviewer_role"},
		{"fail-sweep-zero", "breakglass: {sweep_interval: 0s}", "breakglass.sweep_interval"},
		{"fail-unknown-key", "breakglass: {scope: [tier:0]}", "scope"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(t, tt.yaml)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}

	// The alert URL may carry the receiver's token: errors never quote it.
	_, err = loadConfig(t, "breakglass: {alerts: [{url: \"http://hooks.example.com/T0KEN\", secret: s}]}")
	if err == nil || strings.Contains(err.Error(), "T0KEN") {
		t.Fatalf("alert url quoted or accepted: %v", err)
	}
}

// startBreakGlassMain runs Main with bc as the break-glass section and
// returns it with its log.
func startBreakGlassMain(t *testing.T, bc BreakGlassConfig) (*Main, *syncBuffer, error) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Data = t.TempDir()
	cfg.BreakGlass = bc
	logs := &syncBuffer{}
	m := &Main{Config: cfg, Stdout: &bytes.Buffer{}, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	err := m.Run(t.Context())
	if err == nil {
		t.Cleanup(func() { m.Close() })
	}
	return m, logs, err
}

// TestBreakGlassWiring: the service exists only with scopes and an alert
// target; a half-configured section starts with break-glass off and an
// ERROR line; a configured credential file that cannot be read refuses to
// start.
func TestBreakGlassWiring(t *testing.T) {
	on := DefaultBreakGlassConfig()
	on.Scopes = []string{"tier:1"}
	on.Alerts = []BreakGlassAlert{{URL: "http://127.0.0.1:9/alert", Secret: "s"}}
	m, logs, err := startBreakGlassMain(t, on)
	if err != nil {
		t.Fatal(err)
	}
	if m.BreakGlass == nil || len(m.BreakGlass.Scopes()) != 1 {
		t.Fatal("break-glass not built from a full section")
	}
	if l := logs.String(); !strings.Contains(l, "break-glass enabled") || !strings.Contains(l, "credentials_file is not set") {
		t.Fatalf("start lines:\n%s", l)
	}
	if fi, err := os.Stat(m.Config.breakGlassDir()); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("break-glass dir: %v %v", fi, err)
	}

	half := DefaultBreakGlassConfig()
	half.Scopes = []string{"tier:1"}
	m, logs, err = startBreakGlassMain(t, half)
	if err != nil {
		t.Fatal(err)
	}
	if m.BreakGlass != nil {
		t.Fatal("break-glass enabled without an alert target")
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "break-glass is DISABLED") {
		t.Fatalf("no error line for a half-configured section:\n%s", l)
	}

	missing := on
	missing.CredentialsFile = filepath.Join(t.TempDir(), "nope.json")
	if _, _, err := startBreakGlassMain(t, missing); err == nil || !strings.Contains(err.Error(), "nope.json") {
		t.Fatalf("missing credential file: %v", err)
	}
	garbage := on
	garbage.CredentialsFile = filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(garbage.CredentialsFile, []byte(`{"version": 1, "accounts": "x"}`), 0o600)
	if _, _, err := startBreakGlassMain(t, garbage); err == nil {
		t.Fatal("started with an unparsable credential file")
	}
}

// TestBreakGlassExportCLI: the refusals of `airlock breakglass export`
// (its success is in TestBreakGlassStoreStoppedE2E): nothing written to
// stdout, a clear error, no store created where there was none.
func TestBreakGlassExportCLI(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nothing-here")
	out, errOut, code := runCLI(t, "breakglass", "export", "--data", missing)
	if code == 0 || out != "" || !strings.Contains(errOut, "data directory") {
		t.Fatalf("missing data dir: %d %q %q", code, out, errOut)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("export created the data directory: %v", err)
	}
	// A store with no break-glass account: an empty file would help
	// nobody in an emergency.
	dir := t.TempDir()
	s := startCLIServer(t, dir)
	s.m.Close()
	out, errOut, code = runCLI(t, "breakglass", "export", "--data", dir)
	if code == 0 || out != "" || !strings.Contains(errOut, "no enabled break-glass account") {
		t.Fatalf("no account: %d %q %q", code, out, errOut)
	}
	for _, args := range [][]string{{"breakglass", "export", "--data", dir, "extra"}, {"breakglass", "import"}, {"breakglass"}} {
		if out, errOut, code := runCLI(t, args...); code == 0 || out != "" || errOut == "" {
			t.Errorf("%v: %d %q %q", args, code, out, errOut)
		}
	}
	if out, _, code := runCLI(t, "breakglass", "help"); code != 0 || !strings.Contains(out, "breakglass export") {
		t.Errorf("help: %d %q", code, out)
	}
}
