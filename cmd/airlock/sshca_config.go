package main

// SSHCAConfig configures the SSH certificate authority (`sshca:`) and
// GrantTokenConfig the signed grant tokens (`grant_tokens:`). Being written
// (issue 5).
type SSHCAConfig struct{}

// GrantTokenConfig configures signed grant tokens. Being written (issue 5).
type GrantTokenConfig struct{}

// sshServices sets m.SSHCA and m.GrantTokens from cfg (keys loaded or
// generated). Being written (issue 5).
func (m *Main) sshServices(cfg Config) error { return nil }
