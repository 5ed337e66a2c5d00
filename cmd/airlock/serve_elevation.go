package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"airlock"
	"airlock/elevate"
	"airlock/notify"
	"airlock/policy"
)

// ElevationConfig is `elevation:` in the config file.
type ElevationConfig struct {
	// ApprovalRules are the approval rules by name. A policy's
	// @approval_rule names one; "default" is used when it names none.
	ApprovalRules map[string]elevate.Rule `yaml:"approval_rules"`
	// MaxDuration caps grants per tier (DESIGN.md: 1 h, 4 h, 8 h).
	MaxDuration GrantCaps `yaml:"max_duration"`
	// RequestTTL is how long a request may wait for approval (1 h).
	RequestTTL time.Duration `yaml:"request_ttl"`
	// SweepInterval is how often expired requests and grants are ended
	// (30 s).
	SweepInterval time.Duration `yaml:"sweep_interval"`
}

// GrantCaps are the longest grants per tier.
type GrantCaps struct {
	Tier0 time.Duration `yaml:"tier0"`
	Tier1 time.Duration `yaml:"tier1"`
	Tier2 time.Duration `yaml:"tier2"`
}

// CLIConfig is `cli:`: sessions made by `airlock login`.
type CLIConfig struct {
	// TokenTTL is a CLI session's lifetime (1 h; never beyond the browser
	// session it was made from).
	TokenTTL time.Duration `yaml:"token_ttl"`
}

// DefaultElevationConfig returns the defaults: tier-0 scopes need one
// approver from "team-leads" and one from "security", others one from
// "approvers".
func DefaultElevationConfig() ElevationConfig {
	c := airlock.DefaultGrantCaps
	return ElevationConfig{
		ApprovalRules: map[string]elevate.Rule{
			elevate.DefaultRule: {AllOf: []elevate.Quorum{{Group: "approvers", Min: 1}}},
			"tier0":             {AllOf: []elevate.Quorum{{Group: "team-leads", Min: 1}, {Group: "security", Min: 1}}},
		},
		MaxDuration:   GrantCaps{Tier0: c[0], Tier1: c[1], Tier2: c[2]},
		RequestTTL:    elevate.DefaultRequestTTL,
		SweepInterval: 30 * time.Second,
	}
}

// check validates the elevation config.
func (c ElevationConfig) check() error {
	names := make([]string, 0, len(c.ApprovalRules))
	for n := range c.ApprovalRules {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := c.ApprovalRules[n]
		if !policy.ValidRuleName(n) {
			return fmt.Errorf("elevation.approval_rules: %q is not a rule name (1-64 letters, digits, '.', '_', '-')", n)
		}
		// The service's own check: a group and min ≥ 1 per quorum, at
		// most 16 approvals in all.
		if err := r.Validate(); err != nil {
			return fmt.Errorf("elevation.approval_rules.%s: %w", n, err)
		}
	}
	for i, d := range []time.Duration{c.MaxDuration.Tier0, c.MaxDuration.Tier1, c.MaxDuration.Tier2} {
		if d <= 0 {
			return fmt.Errorf("elevation.max_duration.tier%d must be positive", i)
		}
	}
	if c.RequestTTL <= 0 || c.SweepInterval <= 0 {
		return fmt.Errorf("elevation.request_ttl and elevation.sweep_interval must be positive")
	}
	return nil
}

// elevation builds the elevation service.
func (m *Main) elevation(cfg Config, origins []string) error {
	ec := cfg.Elevation
	if err := ec.check(); err != nil {
		return err
	}
	if cfg.CLI.TokenTTL < 0 {
		return fmt.Errorf("cli.token_ttl must not be negative (0 means the default, 1h)")
	}
	svc, err := elevate.New(elevate.Config{
		Rules:       ec.ApprovalRules,
		Caps:        [airlock.MaxTier + 1]time.Duration{ec.MaxDuration.Tier0, ec.MaxDuration.Tier1, ec.MaxDuration.Tier2},
		RequestTTL:  ec.RequestTTL,
		BaseURL:     origins[0],
		DeviceRules: cfg.Posture,
		Now:         m.Now,
	}, m.Store, m.Decide, m.Passkeys, m.Audit, notify.NewOutbox(m.Store, m.Now))
	if err != nil {
		return err
	}
	m.Elevation = svc
	// A session's grants end with it (logout, revocation, expiry).
	m.Sessions.OnEnd(svc.SessionsEnded)
	// Decisions see the session's active grants (jit resources).
	m.Decide.Grants = svc
	return nil
}

// runElevation sweeps expired requests and grants until ctx is done.
func (m *Main) runElevation(ctx context.Context, cfg Config) {
	if m.Elevation == nil {
		return
	}
	m.wg.Add(1)
	go func() { defer m.wg.Done(); m.Elevation.Run(ctx, cfg.Elevation.SweepInterval) }()
}
