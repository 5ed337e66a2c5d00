package main

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"airlock"
	"airlock/decide"
	"airlock/geoip"
	airhttp "airlock/http"
	"airlock/policy"
	"airlock/policy/policyfs"
	"airlock/risk"
)

// decisionPoint builds the policy engine and the decision point over the
// open store: the policy set from policy_dir (refusing to start when it is
// missing or invalid: never an allow-all) or the embedded default set, the
// configured catalog and risk model, and the GeoIP database if configured.
func (m *Main) decisionPoint(cfg Config, origins []string) error {
	set := policy.Default()
	if cfg.PolicyDir != "" {
		var err error
		if set, err = policyfs.LoadDir(cfg.PolicyDir); err != nil {
			return fmt.Errorf("policy_dir: %w", err)
		}
	}
	m.Engine = policy.NewEngine(set, cfg.Risk.Config)
	g := &risk.Gatherer{Store: m.Store, Config: cfg.Risk.Windows, Now: m.Now}
	if cfg.GeoIPDB != "" {
		db, err := geoip.Open(cfg.GeoIPDB)
		if err != nil {
			return fmt.Errorf("geoip_db: %w", err)
		}
		m.geo = db
		g.Locator = locator{db}
		rule := cfg.Risk.Travel
		g.Travel = func(from, to airlock.GeoPoint, dt time.Duration) (float64, bool) {
			impossible, kmh := rule.Check(policy.Point{Lat: from.Lat, Lon: from.Lon}, policy.Point{Lat: to.Lat, Lon: to.Lon}, dt)
			return kmh, impossible
		}
	}
	m.Decide = &decide.Service{
		Store: m.Store, Engine: m.Engine, Catalog: cfg.Catalog(), Audit: m.Audit, DeviceRules: cfg.Posture,
		Signals: g, BaseURL: origins[0], Now: m.Now,
	}
	if cfg.PolicyDir != "" {
		m.policyWatcher = &policyfs.Watcher{Dir: cfg.PolicyDir, Engine: m.Engine,
			OnError: func(err error) {
				// An alert: the policy in force is no longer the one on disk.
				m.Logger.Error("policy reload failed; keeping the last good policy set", "dir", cfg.PolicyDir,
					"version", m.Engine.Set().Version(), "err", err)
				m.auditPolicy("policy.reload_failed", airlock.OutcomeFailure, err.Error())
			},
			OnReload: func(s *policy.Set) {
				m.Logger.Info("policy reloaded", "dir", cfg.PolicyDir, "version", s.Version())
				m.auditPolicy("policy.reloaded", airlock.OutcomeSuccess, "")
			},
		}
	}
	return nil
}

// auditPolicy records a policy lifecycle event (the watcher runs outside
// any request).
func (m *Main) auditPolicy(typ, outcome, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	version := ""
	if s := m.Engine.Set(); s != nil {
		version = s.Version()
	}
	e := airlock.AuditEvent{Type: typ, Actor: "system", Subject: version, Outcome: outcome, Reason: reason,
		Details: map[string]any{"policy_dir": m.Config.PolicyDir, "policy_version": version}}
	if err := m.Audit.Record(ctx, e); err != nil {
		m.Logger.Error("audit of a policy event failed", "type", typ, "err", err)
	}
}

// runDecisionPoint starts the policy watcher and closes the GeoIP database
// when ctx (the server's background context) ends.
func (m *Main) runDecisionPoint(ctx context.Context) {
	if w := m.policyWatcher; w != nil {
		m.wg.Add(1)
		go func() { defer m.wg.Done(); _ = w.Run(ctx) }()
	}
	if db := m.geo; db != nil {
		m.wg.Add(1)
		go func() { defer m.wg.Done(); <-ctx.Done(); _ = db.Close() }()
	}
}

// reloadPolicy returns the admin API's policy reload, or nil when no policy
// directory is configured.
func (m *Main) reloadPolicy() airhttp.PolicyReloader {
	w := m.policyWatcher
	if w == nil {
		return nil
	}
	return func(context.Context) (string, error) {
		if _, err := w.Check(); err != nil {
			return "", airlock.Wrap(airlock.EINVALID, "the policy directory is invalid; the last good policy set stays in force: "+err.Error(), err)
		}
		return m.Engine.Set().Version(), nil
	}
}

// locator adapts a GeoIP database to the risk gatherer.
type locator struct{ db *geoip.DB }

func (l locator) Locate(ip netip.Addr) (airlock.GeoPoint, bool) {
	loc, ok := l.db.Lookup(ip)
	return airlock.GeoPoint{Lat: loc.Lat, Lon: loc.Lon, Country: loc.Country}, ok
}
