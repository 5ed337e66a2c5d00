package airlock

import (
	"crypto/rand"
	"encoding/hex"
)

// ID prefixes, so that an identifier in a log or an audit record says what it
// names.
const (
	PrefixUser    = "usr_"
	PrefixDevice  = "dev_"
	PrefixSession = "ses_"
)

// NewID returns prefix followed by 24 hex digits of randomness (96 bits).
// It panics only if the system's random source fails, as crypto/rand does.
func NewID(prefix string) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic("airlock: random source failed: " + err.Error())
	}
	return prefix + hex.EncodeToString(b)
}

// NewHandle returns a fresh WebAuthn user handle: 32 random bytes that say
// nothing about the account.
func NewHandle() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("airlock: random source failed: " + err.Error())
	}
	return b
}
