package breakglass

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/google/uuid"

	"airlock"
)

// The static break-glass credential file: every break-glass account with
// its sealed passkeys' public keys and credential ids — nothing secret —
// written by ExportCredentials (`airlock breakglass export`) and read by
// New, so that the break-glass path works while the store is down.
const (
	// CredentialsVersion is the file format's version.
	CredentialsVersion = 1
	// MaxCredentialsFileSize bounds the file.
	MaxCredentialsFileSize = 1 << 20
	// maxAccounts and maxCredentials bound its contents.
	maxAccounts       = 100
	maxCredentials    = 16
	maxCredentialID   = 1023
	maxPublicKey      = 2048
	maxHandle         = 64
	maxName           = 256
	maxFieldLenForIDs = 128
)

// b64url is binary data written as unpadded base64url.
type b64url []byte

// MarshalJSON implements json.Marshaler.
func (b b64url) MarshalJSON() ([]byte, error) {
	return json.Marshal(base64.RawURLEncoding.EncodeToString(b))
}

// UnmarshalJSON implements json.Unmarshaler.
func (b *b64url) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	v, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("not unpadded base64url")
	}
	*b = v
	return nil
}

// FileCredential is one sealed passkey in the file.
type FileCredential struct {
	ID        b64url `json:"id"`
	PublicKey b64url `json:"public_key"` // COSE key
	Algorithm int64  `json:"algorithm"`
	AAGUID    string `json:"aaguid"`
	SignCount uint32 `json:"sign_count"`
	// BE is always false: a backup-eligible passkey is never a sealed one.
	BE bool `json:"be"`
}

// FileAccount is one break-glass account in the file.
type FileAccount struct {
	ID          string           `json:"id"`
	Name        string           `json:"name"`
	DisplayName string           `json:"display_name,omitempty"`
	Handle      b64url           `json:"handle"`
	Kind        airlock.UserKind `json:"kind"`
	Credentials []FileCredential `json:"credentials"`
}

// Credentials is a parsed static credential file.
type Credentials struct {
	Version  int           `json:"version"`
	Accounts []FileAccount `json:"accounts"`
}

// LoadCredentials reads and parses the static credential file at path.
func LoadCredentials(path string) (*Credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("breakglass: credentials file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxCredentialsFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("breakglass: credentials file: %w", err)
	}
	c, err := ParseCredentials(data)
	if err != nil {
		return nil, fmt.Errorf("breakglass: credentials file %s: %s", path, airlock.ErrorMessage(err))
	}
	return c, nil
}

// ParseCredentials parses a static credential file strictly: known fields
// only, version CredentialsVersion, 1..100 accounts each of kind
// breakglass with an id, a unique name, a handle of 1..64 bytes and 1..16
// credentials; each credential an id of 1..1023 bytes unique in the file, a
// COSE public key of an offered algorithm (ES256, EdDSA, RS256) that
// matches its algorithm field, a UUID AAGUID (or empty), and BE false.
// Anything else is EINVALID with the place named.
func ParseCredentials(data []byte) (*Credentials, error) {
	if len(data) > MaxCredentialsFileSize {
		return nil, airlock.Errorf(airlock.EINVALID, "the file is over %d bytes", MaxCredentialsFileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Credentials
	if err := dec.Decode(&c); err != nil {
		return nil, airlock.Errorf(airlock.EINVALID, "not a credential file: %s", clip(err.Error()))
	}
	if dec.More() {
		return nil, airlock.Errorf(airlock.EINVALID, "trailing data after the credential file's object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, airlock.Errorf(airlock.EINVALID, "trailing data after the credential file's object")
	}
	if c.Version != CredentialsVersion {
		return nil, airlock.Errorf(airlock.EINVALID, "version %d: want %d", c.Version, CredentialsVersion)
	}
	if len(c.Accounts) == 0 || len(c.Accounts) > maxAccounts {
		return nil, airlock.Errorf(airlock.EINVALID, "%d accounts: want 1..%d", len(c.Accounts), maxAccounts)
	}
	names, ids, credIDs := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, a := range c.Accounts {
		at := fmt.Sprintf("accounts[%d]", i)
		switch {
		case a.ID == "" || len(a.ID) > maxFieldLenForIDs || !printable(a.ID):
			return nil, airlock.Errorf(airlock.EINVALID, "%s: id must be 1..%d printable characters", at, maxFieldLenForIDs)
		case a.Name == "" || len(a.Name) > maxName || !printable(a.Name):
			return nil, airlock.Errorf(airlock.EINVALID, "%s: name must be 1..%d printable characters", at, maxName)
		case len(a.DisplayName) > maxName:
			return nil, airlock.Errorf(airlock.EINVALID, "%s: display_name is too long", at)
		case a.Kind != airlock.UserBreakGlass:
			return nil, airlock.Errorf(airlock.EINVALID, "%s: kind %q: only breakglass accounts belong in this file", at, clip(string(a.Kind)))
		case len(a.Handle) == 0 || len(a.Handle) > maxHandle:
			return nil, airlock.Errorf(airlock.EINVALID, "%s: handle must be 1..%d bytes", at, maxHandle)
		case names[a.Name]:
			return nil, airlock.Errorf(airlock.EINVALID, "%s: name %q appears twice", at, clip(a.Name))
		case ids[a.ID]:
			return nil, airlock.Errorf(airlock.EINVALID, "%s: id %q appears twice", at, clip(a.ID))
		case len(a.Credentials) == 0 || len(a.Credentials) > maxCredentials:
			return nil, airlock.Errorf(airlock.EINVALID, "%s: %d credentials: want 1..%d", at, len(a.Credentials), maxCredentials)
		}
		names[a.Name], ids[a.ID] = true, true
		for j, cr := range a.Credentials {
			ct := fmt.Sprintf("%s.credentials[%d]", at, j)
			switch {
			case len(cr.ID) == 0 || len(cr.ID) > maxCredentialID:
				return nil, airlock.Errorf(airlock.EINVALID, "%s: id must be 1..%d bytes", ct, maxCredentialID)
			case credIDs[string(cr.ID)]:
				return nil, airlock.Errorf(airlock.EINVALID, "%s: credential id appears twice", ct)
			case cr.BE:
				return nil, airlock.Errorf(airlock.EINVALID, "%s: a backup-eligible (be=true) passkey is not a sealed one", ct)
			case len(cr.PublicKey) == 0 || len(cr.PublicKey) > maxPublicKey:
				return nil, airlock.Errorf(airlock.EINVALID, "%s: public_key must be 1..%d bytes", ct, maxPublicKey)
			}
			credIDs[string(cr.ID)] = true
			if cr.Algorithm != -7 && cr.Algorithm != -8 && cr.Algorithm != -257 {
				return nil, airlock.Errorf(airlock.EINVALID, "%s: algorithm %d is not offered (ES256 -7, EdDSA -8, RS256 -257)", ct, cr.Algorithm)
			}
			if err := checkCOSE(cr.PublicKey, cr.Algorithm); err != nil {
				return nil, airlock.Errorf(airlock.EINVALID, "%s: %s", ct, err)
			}
			if cr.AAGUID != "" {
				if _, err := uuid.Parse(cr.AAGUID); err != nil {
					return nil, airlock.Errorf(airlock.EINVALID, "%s: aaguid is not a UUID", ct)
				}
			}
		}
	}
	return &c, nil
}

// checkCOSE parses a COSE public key (panics in the decoder are errors)
// and checks its algorithm.
func checkCOSE(key []byte, alg int64) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("public_key is not a COSE key")
		}
	}()
	pk, err := webauthncose.ParsePublicKey(key)
	if err != nil {
		return fmt.Errorf("public_key is not a COSE key")
	}
	var got int64
	switch k := pk.(type) {
	case webauthncose.EC2PublicKeyData:
		got = k.Algorithm
	case webauthncose.OKPPublicKeyData:
		got = k.Algorithm
	case webauthncose.RSAPublicKeyData:
		got = k.Algorithm
	default:
		return fmt.Errorf("public_key is an unsupported key type")
	}
	if got != alg {
		return fmt.Errorf("public_key is for algorithm %d, not %d", got, alg)
	}
	return nil
}

// account returns the file's account named name, as a user and its
// passkeys.
func (c *Credentials) account(name string) (*airlock.User, []*airlock.Credential, bool) {
	if c == nil {
		return nil, nil, false
	}
	for _, a := range c.Accounts {
		if a.Name != name {
			continue
		}
		u := &airlock.User{ID: a.ID, Name: a.Name, DisplayName: a.DisplayName, Kind: a.Kind, Handle: slices.Clone([]byte(a.Handle))}
		var creds []*airlock.Credential
		for _, cr := range a.Credentials {
			creds = append(creds, &airlock.Credential{ID: slices.Clone([]byte(cr.ID)), UserID: a.ID,
				PublicKey: slices.Clone([]byte(cr.PublicKey)), Algorithm: cr.Algorithm, AAGUID: cr.AAGUID,
				SignCount: cr.SignCount, BackupEligible: cr.BE, AttestationFormat: "none", AttestationType: "none"})
		}
		return u, creds, true
	}
	return nil, nil, false
}

// ExportCredentials returns the static credential file for every
// break-glass account in store that is enabled and holds at least one
// unrevoked device-bound passkey: public keys and credential ids only. No
// such account is ENOTFOUND (an empty file would help nobody in an
// emergency). The result parses with ParseCredentials.
func ExportCredentials(ctx context.Context, store airlock.Store) ([]byte, error) {
	users, err := store.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	file := Credentials{Version: CredentialsVersion}
	for _, u := range users {
		if u.Kind != airlock.UserBreakGlass || u.Disabled {
			continue
		}
		creds, err := store.ListCredentialsByUser(ctx, u.ID)
		if err != nil {
			return nil, err
		}
		a := FileAccount{ID: u.ID, Name: u.Name, DisplayName: u.DisplayName, Handle: u.Handle, Kind: u.Kind}
		for _, c := range creds {
			if c.IsRevoked() || c.BackupEligible {
				continue
			}
			a.Credentials = append(a.Credentials, FileCredential{ID: c.ID, PublicKey: c.PublicKey,
				Algorithm: c.Algorithm, AAGUID: c.AAGUID, SignCount: c.SignCount})
		}
		if len(a.Credentials) > 0 {
			file.Accounts = append(file.Accounts, a)
		}
	}
	if len(file.Accounts) == 0 {
		return nil, airlock.Errorf(airlock.ENOTFOUND, "no enabled break-glass account holds a sealed passkey")
	}
	out, err := json.MarshalIndent(&file, "", "  ")
	if err != nil {
		return nil, airlock.Wrap(airlock.EINTERNAL, "encode the credential file", err)
	}
	out = append(out, '\n')
	if _, err := ParseCredentials(out); err != nil {
		return nil, airlock.Wrap(airlock.EINTERNAL, "the exported credential file does not parse", err)
	}
	return out, nil
}

// printable reports whether s is non-empty printable text without line
// breaks.
func printable(s string) bool {
	for _, r := range s {
		if r < ' ' || r == 0x7f || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return s != "" && !strings.ContainsRune(s, '\uFFFD')
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
