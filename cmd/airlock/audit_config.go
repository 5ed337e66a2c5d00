package main

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"airlock/audit"

	"golang.org/x/mod/sumdb/note"
)

// AuditConfig configures the tamper-evident audit log (config key audit).
type AuditConfig struct {
	// Origin names the log in every signed checkpoint; empty means
	// "airlock/<hostname>". Replicas sharing a store must share it.
	Origin string `yaml:"origin"`
	// KeyFile is the checkpoint signing key (a note signer key). Empty
	// means DATA/audit-signing.key, generated (mode 0600) on first start
	// when missing. Replicas sharing a store must share the file.
	KeyFile string `yaml:"key_file"`
	// TrustedKeys are further verifier keys ("name+hash+base64") whose
	// checkpoints still verify: the keys of a rotation's earlier keys.
	TrustedKeys []string `yaml:"trusted_keys"`
	// CheckpointEvery and CheckpointInterval: a checkpoint is signed after
	// this many new events, and at this interval when there is anything
	// new (defaults 1000 and 10 s), and at shutdown.
	CheckpointEvery    int64         `yaml:"checkpoint_every"`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// Sinks receive the log as JSON lines (SIEM streaming).
	Sinks []AuditSinkConfig `yaml:"sinks"`
}

// AuditSinkConfig is one SIEM sink.
type AuditSinkConfig struct {
	// Name keys the sink's durable delivery cursor in the store: renaming
	// a sink delivers the whole log again.
	Name string `yaml:"name"`
	// Type is "http" (POST JSON-lines batches to URL) or "file" (append
	// to Path and fsync).
	Type string `yaml:"type"`
	URL  string `yaml:"url"`
	// Secret, if set, signs HTTP deliveries (X-Airlock-Signature, as for
	// webhooks).
	Secret string `yaml:"secret"`
	Path   string `yaml:"path"`
	// Batch is the most events per delivery (default 500, at most 10000).
	Batch int `yaml:"batch"`
}

// DefaultAuditConfig is the audit section's default.
func DefaultAuditConfig() AuditConfig {
	return AuditConfig{CheckpointEvery: audit.DefaultCheckpointEvery, CheckpointInterval: audit.DefaultCheckpointInterval}
}

var sinkName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// validate checks the audit section.
func (a *AuditConfig) validate() error {
	if a.CheckpointEvery < 1 || a.CheckpointEvery > 1_000_000 {
		return fmt.Errorf("config: audit.checkpoint_every must be between 1 and 1000000")
	}
	if a.CheckpointInterval < 100*time.Millisecond || a.CheckpointInterval > time.Hour {
		return fmt.Errorf("config: audit.checkpoint_interval must be between 100ms and 1h")
	}
	// The origin is the first line of every checkpoint.
	if strings.ContainsAny(a.Origin, "\n\r") || len(a.Origin) > 256 || !utf8.ValidString(a.Origin) {
		return fmt.Errorf("config: audit.origin must be one line of UTF-8, at most 256 bytes")
	}
	for i, k := range a.TrustedKeys {
		if _, err := note.NewVerifier(k); err != nil {
			return fmt.Errorf("config: audit.trusted_keys[%d]: %v", i, err)
		}
	}
	seen := map[string]bool{}
	for i, s := range a.Sinks {
		where := fmt.Sprintf("config: audit.sinks[%d]", i)
		if !sinkName.MatchString(s.Name) {
			return fmt.Errorf("%s: name must match %s", where, sinkName)
		}
		if seen[s.Name] {
			return fmt.Errorf("%s: name %q used twice", where, s.Name)
		}
		seen[s.Name] = true
		if s.Batch < 0 || s.Batch > 10000 {
			return fmt.Errorf("%s: batch must be between 1 and 10000", where)
		}
		switch s.Type {
		case "http":
			u, err := url.Parse(s.URL)
			if err != nil || u.Host == "" || !protectedURL(u) {
				return fmt.Errorf("%s: url must be an https URL (plain http only to loopback)", where)
			}
			if s.Path != "" {
				return fmt.Errorf("%s: an http sink takes no path", where)
			}
		case "file":
			if s.Path == "" {
				return fmt.Errorf("%s: a file sink needs a path", where)
			}
			if s.URL != "" || s.Secret != "" {
				return fmt.Errorf("%s: a file sink takes no url or secret", where)
			}
		default:
			return fmt.Errorf("%s: type must be http or file", where)
		}
	}
	return nil
}

// auditKeyFile is the signing key's path for cfg.
func (c *Config) auditKeyFile() string {
	return dataFile(c.Audit.KeyFile, c.Data, "audit-signing.key")
}

// auditOrigin is the checkpoint origin for cfg.
func (c *Config) auditOrigin() string {
	if c.Audit.Origin != "" {
		return c.Audit.Origin
	}
	return audit.DefaultOrigin()
}

// auditVerifiers returns the verifiers of key (if not nil) and of the
// configured trusted keys.
func (c *Config) auditVerifiers(key note.Verifier) (note.Verifiers, error) {
	var vs []note.Verifier
	if key != nil {
		vs = append(vs, key)
	}
	for _, k := range c.Audit.TrustedKeys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("config: audit.trusted_keys: %v", err)
		}
		vs = append(vs, v)
	}
	return note.VerifierList(vs...), nil
}
