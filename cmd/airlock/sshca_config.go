package main

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"airlock/granttoken"
	"airlock/sshca"
)

// SSHCAConfig configures the SSH certificate authority (`sshca:`).
type SSHCAConfig struct {
	// KeyFile is the CA's Ed25519 key, an OpenSSH private key file
	// (`ssh-keygen -t ed25519 -N ''`). Empty means DATA/sshca.key,
	// generated (mode 0600) on first start. A configured file must exist:
	// a replica whose secret is not mounted must not quietly sign with a
	// CA of its own. Replicas share the file.
	KeyFile string `yaml:"key_file"`
	// TTL is a certificate's longest validity (default 10 min; 10 s to
	// 24 h); the grant's end shortens it.
	TTL time.Duration `yaml:"ttl"`
	// SourceAddress adds the critical option source-address with the
	// session's IP (/32 or /128) to every certificate. Off by default:
	// sshd compares it with the address it sees, which behind NAT, a VPN
	// or a jump host is not the one Airlock saw (docs/ssh.md).
	SourceAddress bool `yaml:"source_address"`
}

// GrantTokenConfig configures signed grant tokens (`grant_tokens:`).
type GrantTokenConfig struct {
	// KeyFile is the Ed25519 signing key, a PEM PKCS#8 file (`openssl
	// genpkey -algorithm ed25519`). Empty means DATA/grant-token.key,
	// generated (mode 0600) on first start; a configured file must exist.
	KeyFile string `yaml:"key_file"`
	// TTL is a token's longest lifetime (default 15 min; 10 s to 24 h);
	// the grant's end shortens it. Offline verifiers cannot learn that a
	// grant ended early: this is how long a revoked grant's token lives.
	TTL time.Duration `yaml:"ttl"`
}

// validate checks the section (a zero TTL means the default).
func (c SSHCAConfig) validate() error {
	if c.TTL != 0 && (c.TTL < 10*time.Second || c.TTL > 24*time.Hour) {
		return fmt.Errorf("config: sshca.ttl must be between 10s and 24h")
	}
	return nil
}

// validate checks the section (a zero TTL means the default).
func (c GrantTokenConfig) validate() error {
	if c.TTL != 0 && (c.TTL < 10*time.Second || c.TTL > 24*time.Hour) {
		return fmt.Errorf("config: grant_tokens.ttl must be between 10s and 24h")
	}
	return nil
}

// sshCAKeyFile is the CA key's path for c.
func (c *Config) sshCAKeyFile() string {
	return dataFile(c.SSHCA.KeyFile, c.Data, "sshca.key")
}

// grantTokenKeyFile is the grant-token signing key's path for c.
func (c *Config) grantTokenKeyFile() string {
	return dataFile(c.GrantTokens.KeyFile, c.Data, "grant-token.key")
}

// dataFile is the configured file, else name in the data directory.
func dataFile(configured, data, name string) string {
	if configured != "" {
		return configured
	}
	return filepath.Join(data, name)
}

// signingKey is one of serve's signing key files (the SSH CA's, the
// grant-token key, the audit checkpoint key) for load.
type signingKey[K any] struct {
	// what names the key in log lines ("SSH CA").
	what string
	// setting is the config setting naming the file ("sshca.key_file");
	// configured reports that it is set.
	setting    string
	configured bool
	path       string
	load       func(path string) (K, error)
	// loadOrCreate loads the key or, when the file is missing, generates
	// and writes it; created reports whether it did.
	loadOrCreate func(path string) (key K, created bool, err error)
	// logged adds attributes to the line that logs a generated key.
	logged func(K) []any
}

// get loads the key. A configured file must exist: a replica whose secret
// is not mounted must not quietly sign with a key of its own. The data
// directory's file is generated when create is set and it is missing. A
// generated key is logged, a key file others can read is warned about;
// logger may be nil (the CLI's local reads).
func (s signingKey[K]) get(logger *slog.Logger, create bool) (K, error) {
	if s.configured || !create {
		k, err := s.load(s.path)
		if err != nil {
			if s.configured {
				err = fmt.Errorf("config: %s: %w", s.setting, err)
			}
			return k, err
		}
		warnKeyMode(logger, s.path, s.what)
		return k, nil
	}
	k, created, err := s.loadOrCreate(s.path)
	if err != nil {
		return k, err
	}
	if created && logger != nil {
		attrs := []any{"file", s.path}
		if s.logged != nil {
			attrs = append(attrs, s.logged(k)...)
		}
		logger.Info("generated the "+s.what+" key", attrs...)
	} else {
		warnKeyMode(logger, s.path, s.what)
	}
	return k, nil
}

// warnKeyMode warns (if logger is not nil) when others than its owner can
// read the key file at path.
func warnKeyMode(logger *slog.Logger, path, what string) {
	if logger == nil {
		return
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		logger.Warn("the "+what+" key file is readable by others than its owner", "file", path, "mode", st.Mode().Perm().String())
	}
}

// loadSSHCAKey loads the CA key: the configured file, which must exist, or
// DATA/sshca.key, generated when create is set and it is missing.
func (m *Main) loadSSHCAKey(cfg Config, create bool) (ed25519.PrivateKey, error) {
	return signingKey[ed25519.PrivateKey]{
		what: "SSH CA", setting: "sshca.key_file", configured: cfg.SSHCA.KeyFile != "", path: cfg.sshCAKeyFile(),
		load: sshca.Load, loadOrCreate: sshca.LoadOrCreate,
	}.get(m.Logger, create)
}

// loadGrantTokenKey loads the grant-token signing key as loadSSHCAKey does.
func (m *Main) loadGrantTokenKey(cfg Config, create bool) (ed25519.PrivateKey, error) {
	return signingKey[ed25519.PrivateKey]{
		what: "grant-token signing", setting: "grant_tokens.key_file", configured: cfg.GrantTokens.KeyFile != "", path: cfg.grantTokenKeyFile(),
		load: granttoken.LoadKey, loadOrCreate: granttoken.LoadOrCreateKey,
	}.get(m.Logger, create)
}

// sshServices sets m.SSHCA and m.GrantTokens from cfg: keys loaded (or, in
// the data directory, generated on first start), certificates recorded in
// m.Store, tokens issued by the public base URL.
func (m *Main) sshServices(cfg Config) error {
	if err := cfg.SSHCA.validate(); err != nil {
		return err
	}
	if err := cfg.GrantTokens.validate(); err != nil {
		return err
	}
	if strings.HasPrefix(cfg.Store, "postgres") && m.Logger != nil {
		// Replicas share the store but not the data directory: each would
		// make its own CA and token key, and sshd or a token verifier
		// would trust only one of them (docs/topology.md).
		if cfg.SSHCA.KeyFile == "" {
			m.Logger.Warn("shared store without sshca.key_file: this replica uses its own SSH CA key; give every replica the same key file")
		}
		if cfg.GrantTokens.KeyFile == "" {
			m.Logger.Warn("shared store without grant_tokens.key_file: this replica signs grant tokens with its own key; give every replica the same key file")
		}
	}
	caKey, err := m.loadSSHCAKey(cfg, true)
	if err != nil {
		return err
	}
	if m.SSHCA, err = sshca.New(caKey, m.Store, sshca.Config{TTL: cfg.SSHCA.TTL, SourceAddress: cfg.SSHCA.SourceAddress}); err != nil {
		return err
	}
	tokKey, err := m.loadGrantTokenKey(cfg, true)
	if err != nil {
		return err
	}
	issuer := m.Origin
	if issuer == "" && len(cfg.Origins) > 0 {
		issuer = cfg.Origins[0]
	}
	if issuer == "" {
		issuer = deriveOriginFromListen(cfg)
	}
	m.GrantTokens, err = granttoken.New(tokKey, granttoken.Config{Issuer: issuer, TTL: cfg.GrantTokens.TTL})
	return err
}
