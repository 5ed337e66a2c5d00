package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"airlock"
	"airlock/breakglass"
	"airlock/notify"
	"airlock/sshca"
)

// BreakGlassConfig is `breakglass:` in the config file: the break-glass
// policy and its alerting (docs/breakglass.md). Break-glass is enabled only
// when the section has scopes and at least one alert target; otherwise its
// routes answer unavailable and the start logs why.
type BreakGlassConfig struct {
	// Scopes are what a break-glass session may do: "role@resource" or
	// "tier:N". The normal (Cedar) policy is never consulted.
	Scopes []string `yaml:"scopes"`
	// Duration is a session's length, never extended (60m; at most 60m).
	Duration time.Duration `yaml:"duration"`
	// RequireReseal revokes the used passkey when the review is recorded:
	// the account needs a newly enrolled (sealed) passkey before reuse.
	RequireReseal bool `yaml:"require_reseal"`
	// Alerts receive the critical alert before access begins, signed with
	// their secret (X-Airlock-Signature, as for webhooks).
	Alerts []BreakGlassAlert `yaml:"alerts"`
	// AlertTimeout bounds the delivery attempt made before access (5s; 1s
	// to 60s); past it the alert counts as queued (it is spooled first).
	AlertTimeout time.Duration `yaml:"alert_timeout"`
	// Dir holds this replica's local append-only files: the fallback audit
	// file, the alert spool and the local revocation list (default
	// DATA/breakglass; relative to the config file).
	Dir string `yaml:"dir"`
	// CredentialsFile is the static credential file written by `airlock
	// breakglass export`, used when the store is unavailable (relative to
	// the config file). Optional: without it break-glass needs the store.
	CredentialsFile string `yaml:"credentials_file"`
	// SourceAddresses are the CIDRs put in break-glass SSH certificates'
	// source-address; empty: the client's IP as Airlock sees it.
	SourceAddresses []string `yaml:"source_addresses"`
	// ReviewerRole may record post-incident reviews (airlock-admin).
	ReviewerRole string `yaml:"reviewer_role"`
	// SweepInterval is how often ended sessions are swept, queued alerts
	// retried and the local audit file merged once the store answers (30s).
	SweepInterval time.Duration `yaml:"sweep_interval"`
}

// BreakGlassAlert is one alert receiver.
type BreakGlassAlert struct {
	URL    string `yaml:"url"`
	Secret string `yaml:"secret"`
}

// DefaultBreakGlassConfig returns the defaults: no scopes and no alert
// target, so break-glass is off until configured.
func DefaultBreakGlassConfig() BreakGlassConfig {
	return BreakGlassConfig{
		Duration:      breakglass.MaxDuration,
		AlertTimeout:  breakglass.DefaultAlertTimeout,
		ReviewerRole:  airlock.RoleAdmin,
		SweepInterval: 30 * time.Second,
	}
}

// enabled reports whether the section turns break-glass on.
func (c BreakGlassConfig) enabled() bool { return len(c.Scopes) > 0 && len(c.Alerts) > 0 }

// validate checks every setting given, whether or not break-glass ends up
// enabled.
func (c BreakGlassConfig) validate() error {
	for i, s := range c.Scopes {
		if _, err := airlock.ParseScope(s); err != nil {
			return fmt.Errorf("config: breakglass.scopes[%d]: %s", i, airlock.ErrorMessage(err))
		}
	}
	if c.Duration <= 0 || c.Duration > breakglass.MaxDuration {
		return fmt.Errorf("config: breakglass.duration must be positive and at most %s (a break-glass session is never extended)", breakglass.MaxDuration)
	}
	for i, a := range c.Alerts {
		u, err := url.Parse(a.URL)
		// The URL may carry a token of the receiver: never quote it.
		if err != nil || u.Host == "" || !protectedURL(u) {
			return fmt.Errorf("config: breakglass.alerts[%d].url must be an https URL (plain http only to loopback)", i)
		}
		if a.Secret == "" {
			return fmt.Errorf("config: breakglass.alerts[%d].secret is required: receivers must be able to tell a real alert from a forged one", i)
		}
	}
	if c.AlertTimeout < time.Second || c.AlertTimeout > time.Minute {
		return fmt.Errorf("config: breakglass.alert_timeout must be between 1s and 1m")
	}
	for i, a := range c.SourceAddresses {
		if _, err := sshca.SourceAddressOption([]string{a}); err != nil {
			return fmt.Errorf("config: breakglass.source_addresses[%d]: %s", i, airlock.ErrorMessage(err))
		}
	}
	if r := c.ReviewerRole; r == "" || strings.TrimSpace(r) != r || !printableLine(r) {
		return fmt.Errorf("config: breakglass.reviewer_role must be a role name")
	}
	if c.SweepInterval <= 0 {
		return fmt.Errorf("config: breakglass.sweep_interval must be positive")
	}
	return nil
}

// printableLine reports whether s has no control characters.
func printableLine(s string) bool {
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// breakGlassDir is the directory of the local break-glass files for c.
func (c *Config) breakGlassDir() string {
	return dataFile(c.BreakGlass.Dir, c.Data, "breakglass")
}

// breakGlass builds the break-glass service when the config enables it;
// otherwise it logs why not and leaves m.BreakGlass nil (its routes answer
// unavailable).
func (m *Main) breakGlass(cfg Config) error {
	bc := cfg.BreakGlass
	if err := bc.validate(); err != nil {
		return err
	}
	if !bc.enabled() {
		if len(bc.Scopes) > 0 || len(bc.Alerts) > 0 {
			m.Logger.Error("break-glass is DISABLED: breakglass.scopes and at least one breakglass.alerts target are both required; its routes answer unavailable (docs/breakglass.md)")
		} else {
			m.Logger.Info("break-glass is not configured (no breakglass.scopes and alerts): its routes answer unavailable (docs/breakglass.md)")
		}
		return nil
	}
	tiers := map[string]airlock.Tier{}
	for _, r := range cfg.Catalog().Resources {
		tiers[r.Name] = r.Tier
	}
	alerts := make([]breakglass.AlertTarget, len(bc.Alerts))
	for i, a := range bc.Alerts {
		alerts[i] = breakglass.AlertTarget{URL: a.URL, Secret: a.Secret}
	}
	svc, err := breakglass.New(breakglass.Config{
		Scopes:          bc.Scopes,
		Duration:        bc.Duration,
		RequireReseal:   bc.RequireReseal,
		Alerts:          alerts,
		AlertTimeout:    bc.AlertTimeout,
		Dir:             cfg.breakGlassDir(),
		CredentialsFile: bc.CredentialsFile,
		SourceAddresses: bc.SourceAddresses,
		ReviewerRole:    bc.ReviewerRole,
		ResourceTier: func(name string) (airlock.Tier, bool) {
			t, ok := tiers[name]
			return t, ok
		},
		Notifier: notify.NewOutbox(m.Store, m.Now),
		Logger:   m.Logger,
		Now:      m.Now,
	}, m.Store, m.Passkeys, m.Audit, m.SSHCA)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if bc.CredentialsFile == "" {
		m.Logger.Warn("breakglass.credentials_file is not set: break-glass works only while the store is up (docs/breakglass.md)")
	}
	m.BreakGlass = svc
	m.Logger.Info("break-glass enabled", "scopes", strings.Join(bc.Scopes, ","), "duration", bc.Duration.String(),
		"alert_targets", len(bc.Alerts), "dir", cfg.breakGlassDir(), "require_reseal", bc.RequireReseal)
	return nil
}

// runBreakGlass sweeps sessions, retries alerts and merges the local audit
// file until ctx is done.
func (m *Main) runBreakGlass(ctx context.Context, cfg Config) {
	if m.BreakGlass == nil {
		return
	}
	m.wg.Add(1)
	go func() { defer m.wg.Done(); m.BreakGlass.Run(ctx, cfg.BreakGlass.SweepInterval) }()
}
