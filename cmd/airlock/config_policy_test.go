package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"airlock/decide"
	"airlock/policy"
)

func loadConfig(t *testing.T, yaml string) (Config, error) {
	t.Helper()
	dir := t.TempDir()
	f := filepath.Join(dir, "airlock.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AIRLOCK_LISTEN", "")
	fs := newFlagSet()
	resolve := configFlags(fs)
	if err := fs.Parse([]string{"--config", f}); err != nil {
		t.Fatal(err)
	}
	return resolve()
}

func TestConfigCatalogRiskPolicy(t *testing.T) {
	def, err := loadConfig(t, "rp_name: Airlock\n")
	if err != nil {
		t.Fatal(err)
	}
	if c := def.Catalog(); len(c.Resources) != 7 || c.Actions["payments.transfer"].Sensitivity != policy.Critical ||
		c.Actions[decide.ActionUserCreate].Sensitivity != policy.Critical {
		t.Fatalf("default catalog is not the quick start: %+v", c)
	}
	if def.SelfServiceFreshUV != 5*time.Minute || def.Risk.Weights["new_network"] != 20 {
		t.Fatalf("defaults: %v %v", def.SelfServiceFreshUV, def.Risk.Weights)
	}

	cfg, err := loadConfig(t, `
actions:
  db.query: medium
  db.drop:
    sensitivity: high
    resources: {orders-db: critical}
resources:
  - {name: orders-db, tier: 1, labels: {env: prod}}
risk:
  weights: {new_network: 35}
  idle: 20m
  novelty_window: 720h
  travel: {max_kmh: 1000}
policy_dir: policies
geoip_db: /srv/geo/city.mmdb
admin_fresh_uv: 2m
`)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Catalog()
	if s, _ := c.Sensitivity("db.drop", "orders-db"); s != policy.Critical {
		t.Errorf("override: %s", s)
	}
	if _, ok := c.Actions["payments.transfer"]; ok {
		t.Error("a configured catalog still carries the quick-start actions")
	}
	if r, ok := c.Resource(decide.ResourceAirlock); !ok || r.Tier != 0 || c.Actions[decide.ActionExceptionCreate].Sensitivity != policy.Critical {
		t.Error("the admin actions and the airlock resource are not always in the catalog")
	}
	if cfg.Risk.Weights["new_network"] != 35 || cfg.Risk.Weights["impossible_travel"] != 50 || cfg.Risk.Idle != 20*time.Minute ||
		cfg.Risk.Windows.NoveltyWindow != 720*time.Hour || cfg.Risk.Travel.MaxKmh != 1000 {
		t.Errorf("risk: %+v", cfg.Risk)
	}
	if !filepath.IsAbs(cfg.PolicyDir) || !strings.HasSuffix(cfg.PolicyDir, "policies") || cfg.GeoIPDB != "/srv/geo/city.mmdb" {
		t.Errorf("paths: %q %q", cfg.PolicyDir, cfg.GeoIPDB)
	}
	if cfg.SelfServiceFreshUV != 2*time.Minute {
		t.Errorf("admin_fresh_uv is not the deprecated alias of self_service_fresh_uv: %v", cfg.SelfServiceFreshUV)
	}

	for name, y := range map[string]string{
		"fail-sensitivity":        "actions: {db.query: extreme}\n",
		"fail-override":           "actions: {db.query: {sensitivity: low, resources: {x: nope}}}\n",
		"fail-resource-tier":      "resources: [{name: x, tier: 5}]\n",
		"fail-duplicate-resource": "resources: [{name: x, tier: 1}, {name: x, tier: 2}]\n",
		"fail-unknown-signal":     "risk: {weights: {astrology: 10}}\n",
		"fail-weight-range":       "risk: {weights: {idle: 500}}\n",
		"fail-both-fresh-uv":      "admin_fresh_uv: 2m\nself_service_fresh_uv: 3m\n",
		"fail-self-service-long":  "self_service_fresh_uv: 1h\n",
		"fail-unknown-key":        "risk: {wieghts: {}}\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := loadConfig(t, y); err == nil {
				t.Fatalf("accepted %q", y)
			}
		})
	}
}
