package sshca

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"

	"airlock/internal/keyfile"
)

// KeyComment is the comment written into a generated CA key file.
const KeyComment = "airlock-ssh-ca"

// Load reads the CA key from an OpenSSH private key file (the format
// `ssh-keygen -t ed25519` writes). The file must exist and hold an
// unencrypted Ed25519 key: Airlock signs unattended, and a configured key
// that is missing must stop the server rather than be replaced.
func Load(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sshca: CA key: %w", err)
	}
	return ParseKey(b)
}

// ParseKey parses an OpenSSH (or PKCS#8) private key file holding an
// unencrypted Ed25519 key.
func ParseKey(b []byte) (ed25519.PrivateKey, error) {
	raw, err := ssh.ParseRawPrivateKey(b)
	if err != nil {
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			return nil, errors.New("sshca: CA key: the key file is encrypted; Airlock needs it unencrypted (protect the file instead: mode 0600, a secret mount)")
		}
		return nil, fmt.Errorf("sshca: CA key: %w", err)
	}
	switch k := raw.(type) {
	case *ed25519.PrivateKey:
		return *k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("sshca: CA key: want an Ed25519 key, the file holds a %T", raw)
}

// MarshalKey encodes key as an OpenSSH private key file.
func MarshalKey(key ed25519.PrivateKey) ([]byte, error) {
	blk, err := ssh.MarshalPrivateKey(key, KeyComment)
	if err != nil {
		return nil, fmt.Errorf("sshca: CA key: %w", err)
	}
	return pem.EncodeToMemory(blk), nil
}

// LoadOrCreate reads the CA key at path or, when there is no file there,
// generates an Ed25519 key and writes it with mode 0600 — exclusively, so
// that of several processes starting together one writes and the others
// read its key. created reports whether this call made it.
func LoadOrCreate(path string) (key ed25519.PrivateKey, created bool, err error) {
	key, created, err = keyfile.LoadOrCreate(path, Load, func() (ed25519.PrivateKey, []byte, error) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, fmt.Errorf("sshca: generate CA key: %w", err)
		}
		b, err := MarshalKey(priv)
		return priv, b, err
	})
	if err != nil && !strings.HasPrefix(err.Error(), "sshca:") {
		err = fmt.Errorf("sshca: CA key: %w", err)
	}
	return key, created, err
}
