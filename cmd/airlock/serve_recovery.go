package main

import (
	"context"
	"fmt"
	"time"

	"airlock"
	"airlock/notify"
	"airlock/recovery"
)

// RecoveryConfig is `recovery:` in the config file: account recovery for
// someone who lost every passkey (docs/recovery.md). Recovery is always on;
// these settings only tune it.
type RecoveryConfig struct {
	// Quorum is the number of distinct recovery officers who must approve
	// a case, per tier of the subject (2, 1, 1; each 1..16).
	Quorum TierCounts `yaml:"quorum"`
	// CoolDown is the wait after the quorum during which the subject is
	// notified and may cancel, per tier (24h, 4h, 1h; each at least 1s
	// and shorter than case_ttl).
	CoolDown TierDurations `yaml:"cool_down"`
	// CaseTTL bounds a case's whole life: approvals, cool-down, claim and
	// enrolment (168h; 1h to 30 days).
	CaseTTL time.Duration `yaml:"case_ttl"`
	// KeepOldCredentials leaves the subject's earlier passkeys valid after
	// a recovery (default false: they are revoked).
	KeepOldCredentials bool `yaml:"keep_old_credentials"`
	// OpensPerDay limits the cases opened per subject per day across
	// replicas (3; 1..100), on top of the per-address limit of the edge.
	OpensPerDay int `yaml:"opens_per_day"`
	// SweepInterval is how often cases past case_ttl are expired (30s).
	SweepInterval time.Duration `yaml:"sweep_interval"`
}

// TierCounts is a count per tier.
type TierCounts struct {
	Tier0 int `yaml:"tier0"`
	Tier1 int `yaml:"tier1"`
	Tier2 int `yaml:"tier2"`
}

// TierDurations is a duration per tier.
type TierDurations struct {
	Tier0 time.Duration `yaml:"tier0"`
	Tier1 time.Duration `yaml:"tier1"`
	Tier2 time.Duration `yaml:"tier2"`
}

// MaxRecoveryQuorum bounds recovery.quorum: more officers than this per
// case is a typo, not a policy.
const MaxRecoveryQuorum = 16

// DefaultRecoveryConfig returns the defaults of DESIGN.md.
func DefaultRecoveryConfig() RecoveryConfig {
	q, cd := recovery.DefaultQuorum, recovery.DefaultCoolDown
	return RecoveryConfig{
		Quorum:        TierCounts{Tier0: q[0], Tier1: q[1], Tier2: q[2]},
		CoolDown:      TierDurations{Tier0: cd[0], Tier1: cd[1], Tier2: cd[2]},
		CaseTTL:       recovery.DefaultCaseTTL,
		OpensPerDay:   recovery.DefaultOpensPerDay,
		SweepInterval: 30 * time.Second,
	}
}

// validate checks the section. Zero values are refused rather than turned
// into defaults: `quorum: {tier0: 0}` must not quietly mean 2, nor
// `cool_down: {tier0: 0s}` 24 hours.
func (c RecoveryConfig) validate() error {
	for t, n := range []int{c.Quorum.Tier0, c.Quorum.Tier1, c.Quorum.Tier2} {
		if n < 1 || n > MaxRecoveryQuorum {
			return fmt.Errorf("config: recovery.quorum.tier%d must be between 1 and %d officers", t, MaxRecoveryQuorum)
		}
	}
	if c.CaseTTL < time.Hour || c.CaseTTL > 30*24*time.Hour {
		return fmt.Errorf("config: recovery.case_ttl must be between 1h and 720h")
	}
	for t, d := range []time.Duration{c.CoolDown.Tier0, c.CoolDown.Tier1, c.CoolDown.Tier2} {
		if d < time.Second {
			return fmt.Errorf("config: recovery.cool_down.tier%d must be at least 1s (the subject's chance to cancel)", t)
		}
		if d >= c.CaseTTL {
			return fmt.Errorf("config: recovery.cool_down.tier%d (%s) must be shorter than recovery.case_ttl (%s): the case would expire before it could be claimed", t, d, c.CaseTTL)
		}
	}
	if c.OpensPerDay < 1 || c.OpensPerDay > 100 {
		return fmt.Errorf("config: recovery.opens_per_day must be between 1 and 100")
	}
	if c.SweepInterval <= 0 {
		return fmt.Errorf("config: recovery.sweep_interval must be positive")
	}
	return nil
}

// recovery builds the recovery service; it needs the passkey, session and
// elevation services (Complete ends the subject's sessions and grants).
func (m *Main) recovery(cfg Config, origins []string) error {
	rc := cfg.Recovery
	if err := rc.validate(); err != nil {
		return err
	}
	svc, err := recovery.New(recovery.Config{
		Quorum:             [airlock.MaxTier + 1]int{rc.Quorum.Tier0, rc.Quorum.Tier1, rc.Quorum.Tier2},
		CoolDown:           [airlock.MaxTier + 1]time.Duration{rc.CoolDown.Tier0, rc.CoolDown.Tier1, rc.CoolDown.Tier2},
		CaseTTL:            rc.CaseTTL,
		KeepOldCredentials: rc.KeepOldCredentials,
		OpensPerDay:        rc.OpensPerDay,
		BaseURL:            origins[0],
		DeviceRules:        cfg.Posture,
		Logger:             m.Logger,
		Now:                m.Now,
	}, m.Store, m.Passkeys, m.Sessions, m.Elevation, m.Audit, notify.NewOutbox(m.Store, m.Now))
	if err != nil {
		return fmt.Errorf("recovery: %w", err)
	}
	m.Recovery = svc
	return nil
}

// runRecovery expires cases past their life until ctx is done.
func (m *Main) runRecovery(ctx context.Context, cfg Config) {
	if m.Recovery == nil {
		return
	}
	m.wg.Add(1)
	go func() { defer m.wg.Done(); m.Recovery.Run(ctx, cfg.Recovery.SweepInterval) }()
}
