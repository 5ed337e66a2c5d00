package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"airlock/decide"
	"airlock/device"
	"airlock/passkey"
	"airlock/policy"
	"airlock/risk"
	"airlock/session"
)

// Config is everything `airlock serve` can be told. Precedence, lowest
// first: built-in defaults, the YAML file (--config), AIRLOCK_* environment
// variables, command-line flags.
type Config struct {
	Listen  string   `yaml:"listen"`
	Data    string   `yaml:"data"`
	Store   string   `yaml:"store"` // empty: SQLite in Data; else sqlite:PATH or postgres://… (store.go)
	RPID    string   `yaml:"rp_id"`
	RPName  string   `yaml:"rp_name"`
	Origins []string `yaml:"origins"`
	TLSCert string   `yaml:"tls_cert"`
	TLSKey  string   `yaml:"tls_key"`

	// Tiers says which passkeys may serve each tier (index = tier).
	Tiers [3]passkey.TierPolicy `yaml:"tiers"`
	// Sessions sets absolute and idle deadlines per tier and for shared
	// stations.
	Sessions SessionsConfig `yaml:"sessions"`
	// Posture is the device compliance rules.
	Posture device.Rules `yaml:"posture"`
	// Webhook receives user notifications (e.g. a passkey was added).
	Webhook WebhookConfig `yaml:"webhook"`
	// CeremonyBeginPerMinute limits ceremony starts per client IP.
	CeremonyBeginPerMinute int `yaml:"ceremony_begin_per_minute"`
	// SelfServiceFreshUV is the longest time since the last user-verified
	// passkey use for a person adding a passkey to their own account.
	SelfServiceFreshUV time.Duration `yaml:"self_service_fresh_uv"`
	// AdminFreshUV is the deprecated name of SelfServiceFreshUV: admin
	// actions are decided by the policy engine (step-up) now. When set it
	// is used as SelfServiceFreshUV.
	AdminFreshUV time.Duration `yaml:"admin_fresh_uv"`
	// Actions and Resources are the action catalog (name → sensitivity,
	// per-resource overrides) and the configured resources. Both empty
	// means the quick-start catalog; Airlock's own admin actions and the
	// resource "airlock" (tier 0) are always added unless defined here.
	Actions   map[string]decide.Action `yaml:"actions"`
	Resources []decide.ResourceDef     `yaml:"resources"`
	// Risk is the risk model: signal weights and the windows signals look
	// back over.
	Risk RiskConfig `yaml:"risk"`
	// PolicyDir holds the Cedar policy files (*.cedar), loaded at start
	// (a missing or invalid directory refuses to start) and hot-reloaded
	// (an invalid change keeps the last good set and is audited
	// policy.reload_failed). Empty means the embedded default set.
	PolicyDir string `yaml:"policy_dir"`
	// GeoIPDB is a MaxMind-format city database (.mmdb) for the
	// impossible-travel signal; empty turns the signal off.
	GeoIPDB string `yaml:"geoip_db"`
	// Audit configures the tamper-evident audit log: checkpoint signing
	// and SIEM sinks (audit_config.go).
	Audit AuditConfig `yaml:"audit"`
	// Elevation configures access requests, approval rules and grant caps
	// (serve_elevation.go).
	Elevation ElevationConfig `yaml:"elevation"`
	// SSHCA and GrantTokens configure the credentials issued from grants
	// (sshca_config.go); CLI the `airlock login` sessions.
	SSHCA       SSHCAConfig      `yaml:"sshca"`
	GrantTokens GrantTokenConfig `yaml:"grant_tokens"`
	CLI         CLIConfig        `yaml:"cli"`
	// Recovery tunes account recovery (serve_recovery.go); BreakGlass is
	// the break-glass policy and its alerting (serve_breakglass.go).
	Recovery   RecoveryConfig   `yaml:"recovery"`
	BreakGlass BreakGlassConfig `yaml:"breakglass"`
	// CeremonyTTL and EnrolmentTokenTTL bound challenges and enrolment links.
	CeremonyTTL       time.Duration `yaml:"ceremony_ttl"`
	EnrolmentTokenTTL time.Duration `yaml:"enrolment_token_ttl"`
}

// DefaultSelfServiceFreshUV is self_service_fresh_uv's default.
const DefaultSelfServiceFreshUV = 5 * time.Minute

// RiskConfig is the risk model's configuration: the policy engine's weights
// and thresholds of its derived signals, and the gatherer's windows.
type RiskConfig struct {
	policy.Config `yaml:",inline"`
	Windows       risk.Config `yaml:",inline"`
	// Travel says which moves are impossible (max_kmh, min_km).
	Travel policy.TravelRule `yaml:"travel"`
}

// Catalog returns the action catalog and resources in effect.
func (c *Config) Catalog() decide.Catalog {
	if len(c.Actions) == 0 && len(c.Resources) == 0 {
		return decide.QuickStart()
	}
	return decide.Catalog{Actions: c.Actions, Resources: c.Resources}.WithAdmin()
}

// SessionsConfig holds session deadlines.
type SessionsConfig struct {
	Tier0         session.Limits `yaml:"tier0"`
	Tier1         session.Limits `yaml:"tier1"`
	Tier2         session.Limits `yaml:"tier2"`
	SharedStation session.Limits `yaml:"shared_station"`
}

// WebhookConfig is a notification receiver.
type WebhookConfig struct {
	URL    string `yaml:"url"`
	Secret string `yaml:"secret"`
}

// DefaultConfig is the embedded default: SQLite under ./airlock-data,
// localhost:8080, RP ID localhost.
func DefaultConfig() Config {
	sc := session.DefaultConfig()
	return Config{
		Listen: "localhost:8080", Data: "./airlock-data", RPID: "localhost", RPName: "Airlock",
		Tiers:                  passkey.DefaultTierPolicies(),
		Sessions:               SessionsConfig{Tier0: sc.Tiers[0], Tier1: sc.Tiers[1], Tier2: sc.Tiers[2], SharedStation: sc.SharedStation},
		Posture:                device.DefaultRules(),
		CeremonyBeginPerMinute: 30,
		SelfServiceFreshUV:     DefaultSelfServiceFreshUV,
		Risk:                   RiskConfig{Config: policy.DefaultConfig()},
		CeremonyTTL:            5 * time.Minute,
		EnrolmentTokenTTL:      15 * time.Minute,
		Audit:                  DefaultAuditConfig(),
		Elevation:              DefaultElevationConfig(),
		Recovery:               DefaultRecoveryConfig(),
		BreakGlass:             DefaultBreakGlassConfig(),
	}
}

// SessionConfig converts to the session package's form.
func (c Config) SessionConfig() session.Config {
	return session.Config{Tiers: [3]session.Limits{c.Sessions.Tier0, c.Sessions.Tier1, c.Sessions.Tier2}, SharedStation: c.Sessions.SharedStation}
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// configFlags registers the flags shared by serve and the local-store
// subcommands and returns a function that resolves the final Config.
func configFlags(fs *flag.FlagSet) func() (Config, error) {
	var (
		configFile = fs.String("config", "", "YAML configuration file (env AIRLOCK_CONFIG)")
		listen     = fs.String("listen", "", "address to listen on (env AIRLOCK_LISTEN; default localhost:8080)")
		data       = fs.String("data", "", "data directory for the SQLite store (env AIRLOCK_DATA; default ./airlock-data)")
		store      = fs.String("store", "", "store URL: sqlite:PATH or postgres://… (env AIRLOCK_STORE; default SQLite in the data directory)")
		rpID       = fs.String("rp-id", "", "WebAuthn relying party ID (env AIRLOCK_RP_ID; default localhost)")
		tlsCert    = fs.String("tls-cert", "", "TLS certificate file (env AIRLOCK_TLS_CERT)")
		tlsKey     = fs.String("tls-key", "", "TLS key file (env AIRLOCK_TLS_KEY)")
		origins    multiFlag
	)
	fs.Var(&origins, "origin", "allowed web origin, repeatable (env AIRLOCK_ORIGIN, comma-separated; default derived from rp-id and listen)")
	return func() (Config, error) {
		cfg := DefaultConfig()
		path := firstNonEmpty(*configFile, os.Getenv("AIRLOCK_CONFIG"))
		if path != "" {
			b, err := os.ReadFile(path)
			if err != nil {
				return cfg, fmt.Errorf("config: %w", err)
			}
			dec := yaml.NewDecoder(bytes.NewReader(b))
			dec.KnownFields(true)
			if err := dec.Decode(&cfg); err != nil {
				return cfg, fmt.Errorf("config %s: %w", path, err)
			}
			// Files named in the config are relative to the config file.
			base := filepath.Dir(path)
			files := []*string{&cfg.PolicyDir, &cfg.GeoIPDB, &cfg.Audit.KeyFile, &cfg.SSHCA.KeyFile, &cfg.GrantTokens.KeyFile,
				&cfg.BreakGlass.Dir, &cfg.BreakGlass.CredentialsFile}
			for i := range cfg.Audit.Sinks {
				files = append(files, &cfg.Audit.Sinks[i].Path)
			}
			for t := range cfg.Tiers {
				for i := range cfg.Tiers[t].AttestationRoots {
					files = append(files, &cfg.Tiers[t].AttestationRoots[i])
				}
			}
			for _, p := range files {
				if *p != "" && !filepath.IsAbs(*p) {
					*p = filepath.Join(base, *p)
				}
			}
		}
		override := func(dst *string, env, flagVal string) {
			if v := os.Getenv(env); v != "" {
				*dst = v
			}
			if flagVal != "" {
				*dst = flagVal
			}
		}
		override(&cfg.Listen, "AIRLOCK_LISTEN", *listen)
		override(&cfg.Data, "AIRLOCK_DATA", *data)
		override(&cfg.Store, "AIRLOCK_STORE", *store)
		override(&cfg.RPID, "AIRLOCK_RP_ID", *rpID)
		override(&cfg.TLSCert, "AIRLOCK_TLS_CERT", *tlsCert)
		override(&cfg.TLSKey, "AIRLOCK_TLS_KEY", *tlsKey)
		override(&cfg.Audit.KeyFile, "AIRLOCK_AUDIT_KEY_FILE", "")
		if v := os.Getenv("AIRLOCK_ORIGIN"); v != "" {
			cfg.Origins = splitList(v)
		}
		if len(origins) > 0 {
			cfg.Origins = origins
		}
		return cfg, cfg.Validate()
	}
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Validate reports configuration errors before anything starts.
func (c *Config) Validate() error {
	if c.Listen == "" || c.Data == "" || c.RPID == "" {
		return fmt.Errorf("config: listen, data and rp_id are required")
	}
	if _, err := storeKind(c.Store); err != nil {
		return err
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("config: tls_cert and tls_key go together")
	}
	for i, o := range c.Origins {
		// A browser's Origin header never has a trailing slash.
		o = strings.TrimSuffix(o, "/")
		c.Origins[i] = o
		if err := checkOrigin(o, c.RPID); err != nil {
			return err
		}
	}
	if err := c.Posture.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	// Synced passkeys are not AAL3 (NIST SP 800-63B-4): tier 0 never takes them.
	if c.Tiers[0].AllowSynced {
		return fmt.Errorf("config: tiers[0].allow_synced must be false: synced passkeys never serve tier 0")
	}
	// Reauthentication limits: AAL3 at most 12 h / 15 min, AAL2 24 h / 1 h.
	maxes := []session.Limits{{Absolute: 12 * time.Hour, Idle: 15 * time.Minute}, {Absolute: 24 * time.Hour, Idle: time.Hour}, {Absolute: 24 * time.Hour, Idle: time.Hour}}
	for t, l := range []session.Limits{c.Sessions.Tier0, c.Sessions.Tier1, c.Sessions.Tier2} {
		if l.Absolute < 0 || l.Idle < 0 || (l.Absolute > 0 && l.Idle > l.Absolute) {
			return fmt.Errorf("config: sessions.tier%d: durations must be positive and idle must not exceed absolute", t)
		}
		if l.Absolute > maxes[t].Absolute || l.Idle > maxes[t].Idle {
			return fmt.Errorf("config: sessions.tier%d: at most %s absolute and %s idle", t, maxes[t].Absolute, maxes[t].Idle)
		}
	}
	if l := c.Sessions.SharedStation; l.Absolute < 0 || l.Idle < 0 || (l.Absolute > 0 && l.Idle > l.Absolute) {
		return fmt.Errorf("config: sessions.shared_station: durations must be positive and idle must not exceed absolute")
	}
	if c.AdminFreshUV != 0 {
		if c.SelfServiceFreshUV != DefaultSelfServiceFreshUV && c.SelfServiceFreshUV != c.AdminFreshUV {
			return fmt.Errorf("config: admin_fresh_uv is the deprecated name of self_service_fresh_uv; set only self_service_fresh_uv")
		}
		c.SelfServiceFreshUV = c.AdminFreshUV
	}
	if err := c.Catalog().Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := c.Risk.Config.Validate(); err != nil {
		return fmt.Errorf("config: risk: %w", err)
	}
	bounded := []struct {
		name     string
		v        time.Duration
		min, max time.Duration
	}{
		{"self_service_fresh_uv", c.SelfServiceFreshUV, time.Second, 15 * time.Minute},
		{"ceremony_ttl", c.CeremonyTTL, 10 * time.Second, 10 * time.Minute},
		{"enrolment_token_ttl", c.EnrolmentTokenTTL, time.Minute, 24 * time.Hour},
	}
	for _, b := range bounded {
		if b.v < b.min || b.v > b.max {
			return fmt.Errorf("config: %s must be between %s and %s", b.name, b.min, b.max)
		}
	}
	if c.CeremonyBeginPerMinute < 1 {
		return fmt.Errorf("config: ceremony_begin_per_minute must be at least 1")
	}
	if err := c.Audit.validate(); err != nil {
		return err
	}
	if err := c.Recovery.validate(); err != nil {
		return err
	}
	if err := c.BreakGlass.validate(); err != nil {
		return err
	}
	if c.Webhook.URL != "" {
		u, err := url.Parse(c.Webhook.URL)
		if err != nil || u.Host == "" || !protectedURL(u) {
			return fmt.Errorf("config: webhook.url must be an https URL (plain http only to loopback)")
		}
	}
	return nil
}

// protectedURL reports whether u is https, or plain http to loopback.
func protectedURL(u *url.URL) bool {
	return u.Scheme == "https" || (u.Scheme == "http" && isLoopback(u.Hostname()))
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkOrigin insists on an exact scheme://host[:port] origin whose host is
// the RP ID or a subdomain of it (WebAuthn L3 §5.1.3), and on https except
// for localhost.
func checkOrigin(o, rpID string) error {
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("config: origin %q must be scheme://host[:port]", o)
	}
	host := u.Hostname()
	if !protectedURL(u) {
		return fmt.Errorf("config: origin %q must use https (plain http only for localhost)", o)
	}
	if host != rpID && !strings.HasSuffix(host, "."+rpID) {
		return fmt.Errorf("config: origin %q is not within RP ID %q", o, rpID)
	}
	return nil
}

// deriveOrigin builds the default origin from the RP ID and the port the
// server actually listens on.
func deriveOrigin(rpID string, addr net.Addr, tls bool) string {
	scheme, port := "http", ""
	if tls {
		scheme = "https"
	}
	if tcp, ok := addr.(*net.TCPAddr); ok {
		port = fmt.Sprint(tcp.Port)
	}
	if (tls && port == "443") || (!tls && port == "80") || port == "" {
		return scheme + "://" + rpID
	}
	return scheme + "://" + rpID + ":" + port
}

func netResolve(listen string) (net.Addr, error) {
	return net.ResolveTCPAddr("tcp", listen)
}

func newFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("airlock", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}
