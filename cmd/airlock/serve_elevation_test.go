package main

import (
	"strings"
	"testing"
	"time"

	"airlock/elevate"
)

func TestElevationConfig(t *testing.T) {
	def, err := loadConfig(t, "rp_name: Airlock\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := def.Elevation.check(); err != nil {
		t.Fatalf("default elevation config: %v", err)
	}
	e := def.Elevation
	if e.MaxDuration.Tier0 != time.Hour || e.MaxDuration.Tier1 != 4*time.Hour || e.MaxDuration.Tier2 != 8*time.Hour ||
		e.RequestTTL != time.Hour || len(e.ApprovalRules["tier0"].AllOf) != 2 || e.ApprovalRules[elevate.DefaultRule].AllOf[0].Group != "approvers" {
		t.Fatalf("defaults %+v", e)
	}

	// A configured rule replaces the default of the same name; the other
	// default stays.
	c, err := loadConfig(t, `
elevation:
  approval_rules:
    default: {all_of: [{group: sre-leads, min: 2}]}
  max_duration: {tier0: 30m}
`)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Elevation.ApprovalRules[elevate.DefaultRule]; len(r.AllOf) != 1 || r.AllOf[0] != (elevate.Quorum{Group: "sre-leads", Min: 2}) {
		t.Errorf("default rule %+v", r)
	}
	if _, ok := c.Elevation.ApprovalRules["tier0"]; !ok {
		t.Error("tier0 default dropped")
	}
	if c.Elevation.MaxDuration.Tier0 != 30*time.Minute || c.Elevation.MaxDuration.Tier1 != 4*time.Hour {
		t.Errorf("max_duration %+v", c.Elevation.MaxDuration)
	}

	for _, tt := range []struct{ name, yaml, want string }{
		{"fail-empty-rule", "elevation: {approval_rules: {x: {all_of: []}}}", "all_of is empty"},
		{"fail-min-zero", "elevation: {approval_rules: {x: {all_of: [{group: a, min: 0}]}}}", "min ≥ 1"},
		{"fail-no-group", "elevation: {approval_rules: {x: {all_of: [{min: 1}]}}}", "needs a group"},
		{"fail-too-many-approvals", "elevation: {approval_rules: {x: {all_of: [{group: a, min: 17}]}}}", "at most 16"},
		{"fail-zero-cap", "elevation: {max_duration: {tier2: 0s}}", "tier2 must be positive"},
		{"fail-zero-ttl", "elevation: {request_ttl: 0s}", "must be positive"},
		{"fail-comma-in-rule-name", "elevation: {approval_rules: {\"a,b\": {all_of: [{group: g, min: 1}]}}}", "not a rule name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(t, tt.yaml)
			if err == nil {
				err = c.Elevation.check()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}

	// A negative CLI token lifetime refuses to start instead of silently
	// becoming the default.
	bad := def
	bad.CLI.TokenTTL = -time.Minute
	if err := (&Main{}).elevation(bad, []string{"http://localhost:8080"}); err == nil || !strings.Contains(err.Error(), "cli.token_ttl") {
		t.Errorf("negative cli.token_ttl: %v", err)
	}
}
