package granttoken

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"airlock/internal/keyfile"
)

// LoadKey reads the signing key from a PEM "PRIVATE KEY" (PKCS#8) file
// holding an Ed25519 key — what `openssl genpkey -algorithm ed25519`
// writes. The file must exist: a configured key that is missing must stop
// the server rather than be replaced.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("granttoken: signing key: %w", err)
	}
	return ParseKey(b)
}

// ParseKey parses a PEM PKCS#8 Ed25519 private key.
func ParseKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("granttoken: signing key: want a PEM \"PRIVATE KEY\" (PKCS#8) block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("granttoken: signing key: %w", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("granttoken: signing key: want an Ed25519 key, the file holds a %T", k)
	}
	return ek, nil
}

// MarshalKey encodes key as a PEM PKCS#8 block.
func MarshalKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("granttoken: signing key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// LoadOrCreateKey reads the signing key at path or, when there is no file
// there, generates one and writes it with mode 0600 — exclusively, so that
// of several processes starting together one writes and the others read
// its key. created reports whether this call made it.
func LoadOrCreateKey(path string) (key ed25519.PrivateKey, created bool, err error) {
	key, created, err = keyfile.LoadOrCreate(path, LoadKey, func() (ed25519.PrivateKey, []byte, error) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, fmt.Errorf("granttoken: generate signing key: %w", err)
		}
		b, err := MarshalKey(priv)
		return priv, b, err
	})
	if err != nil && !strings.HasPrefix(err.Error(), "granttoken:") {
		err = fmt.Errorf("granttoken: signing key: %w", err)
	}
	return key, created, err
}
