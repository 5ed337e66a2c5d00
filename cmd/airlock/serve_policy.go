package main

import (
	"airlock/decide"
	airhttp "airlock/http"
	"airlock/policy"
	"airlock/risk"
)

// decisionPoint builds the policy engine and the decision point over the
// open store: the embedded default policy set, the configured catalog and
// risk model.
func (m *Main) decisionPoint(cfg Config, origins []string) error {
	m.Engine = policy.NewEngine(policy.Default(), cfg.Risk.Config)
	m.Decide = &decide.Service{
		Store: m.Store, Engine: m.Engine, Catalog: cfg.Catalog(), Audit: m.Audit, DeviceRules: cfg.Posture,
		Signals: &risk.Gatherer{Store: m.Store, Config: cfg.Risk.Windows, Now: m.Now},
		BaseURL: origins[0], Now: m.Now,
	}
	return nil
}

// reloadPolicy returns the admin API's policy reload, or nil when no policy
// directory is configured.
func (m *Main) reloadPolicy() airhttp.PolicyReloader {
	return nil
}
