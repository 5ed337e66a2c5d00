package main

import (
	"crypto/ed25519"
	"fmt"
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

// resolveSSHPaths makes the key files named in the config file relative to
// its directory base.
func (c *Config) resolveSSHPaths(base string) {
	for _, p := range []*string{&c.SSHCA.KeyFile, &c.GrantTokens.KeyFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
}

// sshCAKeyFile is the CA key's path for c.
func (c *Config) sshCAKeyFile() string {
	if c.SSHCA.KeyFile != "" {
		return c.SSHCA.KeyFile
	}
	return filepath.Join(c.Data, "sshca.key")
}

// grantTokenKeyFile is the grant-token signing key's path for c.
func (c *Config) grantTokenKeyFile() string {
	if c.GrantTokens.KeyFile != "" {
		return c.GrantTokens.KeyFile
	}
	return filepath.Join(c.Data, "grant-token.key")
}

// loadSSHCAKey loads the CA key: the configured file, which must exist, or
// DATA/sshca.key, generated when create is set and it is missing.
func (m *Main) loadSSHCAKey(cfg Config, create bool) (ed25519.PrivateKey, error) {
	path := cfg.sshCAKeyFile()
	if cfg.SSHCA.KeyFile != "" || !create {
		k, err := sshca.Load(path)
		if err != nil {
			if cfg.SSHCA.KeyFile != "" {
				return nil, fmt.Errorf("config: sshca.key_file: %w", err)
			}
			return nil, err
		}
		m.warnKeyMode(path, "SSH CA")
		return k, nil
	}
	k, created, err := sshca.LoadOrCreate(path)
	if err != nil {
		return nil, err
	}
	if created && m.Logger != nil {
		m.Logger.Info("generated the SSH CA key", "file", path)
	} else {
		m.warnKeyMode(path, "SSH CA")
	}
	return k, nil
}

// loadGrantTokenKey loads the grant-token signing key as loadSSHCAKey does.
func (m *Main) loadGrantTokenKey(cfg Config, create bool) (ed25519.PrivateKey, error) {
	path := cfg.grantTokenKeyFile()
	if cfg.GrantTokens.KeyFile != "" || !create {
		k, err := granttoken.LoadKey(path)
		if err != nil {
			if cfg.GrantTokens.KeyFile != "" {
				return nil, fmt.Errorf("config: grant_tokens.key_file: %w", err)
			}
			return nil, err
		}
		m.warnKeyMode(path, "grant-token signing")
		return k, nil
	}
	k, created, err := granttoken.LoadOrCreateKey(path)
	if err != nil {
		return nil, err
	}
	if created && m.Logger != nil {
		m.Logger.Info("generated the grant-token signing key", "file", path)
	} else {
		m.warnKeyMode(path, "grant-token signing")
	}
	return k, nil
}

func (m *Main) warnKeyMode(path, what string) {
	if m.Logger == nil {
		return
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		m.Logger.Warn("the "+what+" key file is readable by others than its owner", "file", path, "mode", st.Mode().Perm().String())
	}
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
