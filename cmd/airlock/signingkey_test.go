package main

import (
	"bytes"
	"crypto/ed25519"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSigningKeyLog: serve logs a key it generates and warns about a key
// file others can read; a configured file that is missing is an error
// naming the setting, and is not created.
func TestSigningKeyLog(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	m := &Main{Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	cfg := DefaultConfig()
	cfg.Data = dir

	k1, err := m.loadSSHCAKey(cfg, true)
	if err != nil || !strings.Contains(buf.String(), "generated the SSH CA key") || strings.Contains(buf.String(), "readable") {
		t.Fatalf("first start: %v, log %q", err, buf.String())
	}
	buf.Reset()
	if err := os.Chmod(cfg.sshCAKeyFile(), 0o644); err != nil {
		t.Fatal(err)
	}
	k2, err := m.loadSSHCAKey(cfg, true)
	if err != nil || !k1.Equal(k2) || !strings.Contains(buf.String(), "the SSH CA key file is readable by others") {
		t.Errorf("a group/world-readable key: %v, same key %v, log %q", err, k1.Equal(ed25519.PrivateKey(k2)), buf.String())
	}
	buf.Reset()
	cfg.GrantTokens.KeyFile = filepath.Join(dir, "absent.key")
	if _, err := m.loadGrantTokenKey(cfg, true); err == nil || !strings.Contains(err.Error(), "config: grant_tokens.key_file") {
		t.Errorf("fail-missing-configured-key: %v", err)
	}
	if _, err := os.Stat(cfg.GrantTokens.KeyFile); err == nil {
		t.Error("a configured key file was created")
	}
}
