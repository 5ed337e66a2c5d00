package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"airlock/passkey"
	"airlock/recovery"
)

func TestRecoveryConfig(t *testing.T) {
	def, err := loadConfig(t, "rp_name: Airlock\n")
	if err != nil {
		t.Fatal(err)
	}
	r := def.Recovery
	if r.Quorum != (TierCounts{2, 1, 1}) || r.CoolDown != (TierDurations{24 * time.Hour, 4 * time.Hour, time.Hour}) ||
		r.CaseTTL != 168*time.Hour || r.KeepOldCredentials || r.OpensPerDay != 3 || r.SweepInterval != 30*time.Second {
		t.Fatalf("defaults %+v", r)
	}

	// A partial section keeps the other defaults.
	c, err := loadConfig(t, `
recovery:
  quorum: {tier0: 3}
  cool_down: {tier2: 10m}
  keep_old_credentials: true
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Recovery.Quorum != (TierCounts{3, 1, 1}) || c.Recovery.CoolDown != (TierDurations{24 * time.Hour, 4 * time.Hour, 10 * time.Minute}) ||
		!c.Recovery.KeepOldCredentials || c.Recovery.CaseTTL != 168*time.Hour {
		t.Fatalf("partial section %+v", c.Recovery)
	}

	for _, tt := range []struct{ name, yaml, want string }{
		// Zero is refused, never silently the default.
		{"fail-zero-quorum", "recovery: {quorum: {tier0: 0}}", "recovery.quorum.tier0 must be between 1 and 16"},
		{"fail-negative-quorum", "recovery: {quorum: {tier2: -1}}", "recovery.quorum.tier2"},
		{"fail-huge-quorum", "recovery: {quorum: {tier1: 17}}", "recovery.quorum.tier1"},
		{"fail-zero-cool-down", "recovery: {cool_down: {tier0: 0s}}", "recovery.cool_down.tier0 must be at least 1s"},
		{"fail-cool-down-past-case-ttl", "recovery: {cool_down: {tier0: 200h}}", "must be shorter than recovery.case_ttl"},
		{"fail-case-ttl-short", "recovery: {case_ttl: 10m, cool_down: {tier0: 1m, tier1: 1m, tier2: 1m}}", "recovery.case_ttl must be between"},
		{"fail-case-ttl-long", "recovery: {case_ttl: 8760h}", "recovery.case_ttl must be between"},
		{"fail-opens-zero", "recovery: {opens_per_day: 0}", "recovery.opens_per_day"},
		{"fail-sweep-zero", "recovery: {sweep_interval: 0s}", "recovery.sweep_interval"},
		{"fail-unknown-key", "recovery: {quorom: {tier0: 2}}", "quorom"},
		{"fail-bad-duration", "recovery: {case_ttl: soon}", "`soon` into time.Duration"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(t, tt.yaml)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// TestRecoveryWiring: serve builds the recovery service from the config and
// hands it to the HTTP server; break-glass stays off without a section, and
// the start says so.
func TestRecoveryWiring(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Data = t.TempDir()
	cfg.Recovery.Quorum.Tier0 = 3
	cfg.Recovery.CaseTTL = 48 * time.Hour
	logs := &syncBuffer{}
	m := &Main{Config: cfg, Stdout: &bytes.Buffer{}, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if m.Recovery == nil {
		t.Fatal("recovery service not built")
	}
	if m.BreakGlass != nil {
		t.Fatal("break-glass enabled without a breakglass section")
	}
	if !strings.Contains(logs.String(), "break-glass is not configured") {
		t.Fatalf("no start line says break-glass is off:\n%s", logs.String())
	}
	// The configured quorum and case life reach the service: a case for
	// the (tier-0) bootstrap account needs 3 officers and lives 48 h.
	ctx := t.Context()
	opened, err := m.Recovery.Open(ctx, recovery.Open{Subject: "admin", Reason: "lost my key"}, passkey.Meta{IP: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.Recovery.Status(ctx, opened.Secret)
	if err != nil || c.Required != 3 || c.ExpiresAt.Sub(c.CreatedAt) != 48*time.Hour {
		t.Fatalf("case %+v %v", c, err)
	}
	// The HTTP server has both: recovery answers, break-glass is unavailable.
	base := "http://" + m.Addr().String()
	for _, tc := range []struct {
		path, body string
		want       int
	}{
		{"/v1/recovery/status", `{"secret":"x"}`, http.StatusOK},
		{"/v1/breakglass/begin", `{"account":"bg","justification":"j"}`, http.StatusServiceUnavailable},
	} {
		path, want := tc.path, tc.want
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(tc.body))
		req.Header.Set("Origin", m.Origin)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, res.StatusCode, want)
		}
	}
}
