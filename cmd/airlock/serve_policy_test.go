package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"airlock"
	"airlock/policy"
	"airlock/policy/policyfs"
	"airlock/risk"
)

// policyDir writes the default policy files into a new directory.
func policyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range policy.DefaultFiles() {
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(name)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestServeRefusesBadPolicyDir(t *testing.T) {
	broken := policyDir(t)
	os.WriteFile(filepath.Join(broken, "99-broken.cedar"), []byte("permit (principal, action, resource) when { context.nope };"), 0o600)
	for name, dir := range map[string]string{
		"fail-missing-dir": filepath.Join(t.TempDir(), "no-such-dir"),
		"fail-empty-dir":   t.TempDir(),
		"fail-invalid-dir": broken,
	} {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Listen, cfg.Data, cfg.PolicyDir = "127.0.0.1:0", t.TempDir(), dir
			m := &Main{Config: cfg, Stdout: io.Discard, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			err := m.Run(context.Background())
			if err == nil {
				m.Close()
				t.Fatal("started without a valid policy directory")
			}
			if !strings.Contains(err.Error(), "policy_dir") {
				t.Errorf("error %q does not name policy_dir", err)
			}
		})
	}
}

func TestServePolicyReloadKeepsLastGood(t *testing.T) {
	dir := policyDir(t)
	first, err := policyfs.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	a := startAdminAPIWith(t, func(c *Config) { c.PolicyDir = dir })
	version := func() string {
		d := a.bearer("POST", "/v1/decide", map[string]any{"action": "config.read", "resource": "grafana"})
		if d["decision"] != "allow" {
			t.Fatalf("decision %v", d)
		}
		return d["policy_version"].(string)
	}
	if v := version(); v != first.Version() {
		t.Fatalf("decisions use %s, want the directory's %s", v, first.Version())
	}

	// An invalid change: refused, the last good set stays, an alert is
	// audited.
	bad := filepath.Join(dir, "50-bad.cedar")
	os.WriteFile(bad, []byte(`@id("x") forbid (principal, action, resource) when { context.no_such_attribute };`), 0o600)
	_, errOut, code := runCLI(t, "admin", "--server", a.s.base, "--token", a.token, "policy-reload")
	if code == 0 || !strings.Contains(errOut, "last good policy set stays in force") {
		t.Fatalf("reload of an invalid directory: %d %s", code, errOut)
	}
	if v := version(); v != first.Version() {
		t.Fatalf("after an invalid change decisions use %s, want the last good %s", v, first.Version())
	}
	failed, _ := a.s.m.Store.ListAudit(context.Background(), airlock.AuditFilter{Type: "policy.reload_failed"})
	if len(failed) != 1 || failed[0].Outcome != airlock.OutcomeFailure || failed[0].Subject != first.Version() {
		t.Fatalf("policy.reload_failed events: %+v", failed)
	}

	// A valid change takes effect, audited with the new version.
	os.WriteFile(bad, []byte(`@id("never")
@owner("test")
@review_by("2099-01-01")
@reason("matches nothing")
forbid (principal, action, resource) when { context.action.name == "never.happens" };
`), 0o600)
	out, errOut, code := runCLI(t, "admin", "--server", a.s.base, "--token", a.token, "policy-reload")
	if code != 0 {
		t.Fatalf("reload: %d %s", code, errOut)
	}
	v := version()
	if v == first.Version() || !strings.Contains(out, v) {
		t.Fatalf("after a valid change: version %s (output %s)", v, out)
	}
	reloaded, _ := a.s.m.Store.ListAudit(context.Background(), airlock.AuditFilter{Type: "policy.reloaded"})
	if len(reloaded) != 1 || reloaded[0].Subject != v {
		t.Fatalf("policy.reloaded events: %+v", reloaded)
	}
	requested, _ := a.s.m.Store.ListAudit(context.Background(), airlock.AuditFilter{Type: "policy.reload_requested"})
	if len(requested) != 1 || requested[0].Actor == "" || requested[0].DecisionID == "" {
		t.Fatalf("policy.reload_requested events: %+v", requested)
	}
}

// writeCityDB builds a small MaxMind city database: 81.2.69.0/24 in London,
// 1.128.0.0/16 in Sydney.
func writeCityDB(t *testing.T) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-City", RecordSize: 24})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, ll := range map[string][3]any{"81.2.69.0/24": {51.5142, -0.0931, "GB"}, "1.128.0.0/16": {-33.8688, 151.2093, "AU"}} {
		_, n, _ := net.ParseCIDR(cidr)
		if err := tree.Insert(n, mmdbtype.Map{
			"location": mmdbtype.Map{"latitude": mmdbtype.Float64(ll[0].(float64)), "longitude": mmdbtype.Float64(ll[1].(float64))},
			"country":  mmdbtype.Map{"iso_code": mmdbtype.String(ll[2].(string))},
		}); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "city.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

func TestServeGeoIPTravel(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen, cfg.Data, cfg.GeoIPDB = "127.0.0.1:0", t.TempDir(), filepath.Join(t.TempDir(), "missing.mmdb")
	m := &Main{Config: cfg, Stdout: io.Discard, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := m.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "geoip_db") {
		if err == nil {
			m.Close()
		}
		t.Fatalf("start with a missing GeoIP database: %v", err)
	}

	clock := &testClock{}
	cfg.Data, cfg.GeoIPDB = t.TempDir(), writeCityDB(t)
	m = &Main{Config: cfg, Stdout: io.Discard, Now: clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	g := m.Decide.Signals
	if err := g.Seen(ctx, "u-1", "81.2.69.160"); err != nil { // London
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	sig, err := g.Gather(ctx, risk.Subject{UserID: "u-1", IP: "1.128.3.4"}) // Sydney, 2 h later
	if err != nil {
		t.Fatal(err)
	}
	if !sig.ImpossibleTravel || sig.TravelKmh < 5000 || !sig.NewNetwork {
		t.Fatalf("London → Sydney in 2 h: %+v", sig)
	}
	clock.Advance(48 * time.Hour)
	if sig, _ = g.Gather(ctx, risk.Subject{UserID: "u-1", IP: "1.128.3.4"}); sig.ImpossibleTravel {
		t.Fatalf("London → Sydney in 50 h: %+v", sig)
	}
}
