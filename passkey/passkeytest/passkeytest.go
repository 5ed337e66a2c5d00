// Package passkeytest provides a pure-Go software authenticator for tests and
// load generation against Airlock's WebAuthn ceremonies.
//
// An Authenticator holds discoverable credentials and answers creation and
// request options (the JSON a begin endpoint returns) with the
// PublicKeyCredential JSON a browser's credential.toJSON() would give. The
// plain path is github.com/descope/virtualwebauthn, unchanged; knobs that
// virtualwebauthn lacks (a wrong clientData type, a top origin, attestation
// "none", packed full attestation with an x5c chain, other algorithms, a
// tampered signature) are served by an encoder in this package that signs
// exactly what it sends, so each negative test exercises the check it names
// and nothing else.
//
// It is not a secure authenticator: keys live in memory in the clear.
package passkeytest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/descope/virtualwebauthn"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// Alg is a COSE algorithm identifier the authenticator can create keys for.
type Alg int64

// Algorithms. ES384 is never offered by Airlock, for "algorithm not offered"
// tests.
const (
	ES256 Alg = -7
	EdDSA Alg = -8
	ES384 Alg = -35
	RS256 Alg = -257
)

// Flags are the authenticator data flags the authenticator reports. The
// zero value reports UP=1, UV=1, BE=0, BS=0 (a device-bound passkey with
// user verification).
type Flags struct {
	NoUserPresence     bool // report UP=0
	NoUserVerification bool // report UV=0
	BackupEligible     bool // BE
	BackupState        bool // BS
}

// Authenticator is a software authenticator. Its exported fields are the
// defaults for every ceremony and may be changed between ceremonies; Option
// values override them for one call. It is safe for concurrent use.
type Authenticator struct {
	// AAGUID is reported in attested credential data. Zero means a random
	// one chosen by New.
	AAGUID [16]byte
	// Flags are the default authenticator flags.
	Flags Flags
	// Alg is the key algorithm of new credentials (default ES256).
	Alg Alg
	// Format is the attestation statement format: "packed" (self
	// attestation; the default) or "none".
	Format string
	// AttestationCA and AttestationCAKey, when both are set, make "packed"
	// registrations use full (basic) attestation: a fresh attestation
	// certificate meeting WebAuthn §8.2.1, issued by AttestationCA, in x5c
	// (followed by AttestationCA itself when it is an intermediate, i.e.
	// not self-signed). See NewAttestationCA.
	AttestationCA    *x509.Certificate
	AttestationCAKey crypto.Signer

	mu    sync.Mutex
	creds []*Credential
}

// Credential is a passkey held by an Authenticator.
type Credential struct {
	ID         []byte
	UserHandle []byte
	RPID       string
	Alg        Alg
	// Counter is the signature counter; Assert increments it before
	// signing unless told otherwise (virtualwebauthn never does).
	Counter uint32

	vw     *virtualwebauthn.Credential // ES256, RS256
	signer crypto.Signer               // EdDSA, ES384
	cose   []byte
}

// New returns an authenticator with a random AAGUID that creates ES256
// device-bound passkeys with packed self attestation.
func New() *Authenticator {
	a := &Authenticator{Alg: ES256, Format: "packed"}
	if _, err := rand.Read(a.AAGUID[:]); err != nil {
		panic(err)
	}
	return a
}

// Credentials returns the credentials created so far, oldest first.
func (a *Authenticator) Credentials() []*Credential {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*Credential(nil), a.creds...)
}

// AddCredential adds a credential (e.g. one copied from another
// authenticator, to simulate a clone).
func (a *Authenticator) AddCredential(c *Credential) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.creds = append(a.creds, c)
}

// Clone returns a copy of c sharing its key, for clone tests.
func (c *Credential) Clone() *Credential {
	d := *c
	d.ID = append([]byte(nil), c.ID...)
	d.UserHandle = append([]byte(nil), c.UserHandle...)
	return &d
}

type options struct {
	flags          *Flags
	rpID           *string
	clientType     *string
	topOrigin      string
	crossOrigin    bool
	challenge      []byte
	userHandle     *[]byte
	credID         []byte
	credIDLen      int
	counter        *uint32
	keepCounter    bool
	credential     []byte
	tamperSig      bool
	alg            Alg
	format         string
	ignoreExcluded bool
	aaguid         *[16]byte
	attCA          *x509.Certificate
	attCAKey       crypto.Signer
	selfSignedAtt  bool
}

// Option changes one Register or Assert call.
type Option func(*options)

// WithFlags reports f instead of the authenticator's default flags.
func WithFlags(f Flags) Option { return func(o *options) { o.flags = &f } }

// WithRPID computes rpIdHash over id instead of the options' rpId.
func WithRPID(id string) Option { return func(o *options) { o.rpID = &id } }

// WithClientDataType puts t in clientDataJSON.type (correctly signed).
func WithClientDataType(t string) Option { return func(o *options) { o.clientType = &t } }

// WithTopOrigin sets clientDataJSON.crossOrigin=true and topOrigin=origin.
func WithTopOrigin(origin string) Option {
	return func(o *options) { o.topOrigin, o.crossOrigin = origin, true }
}

// WithCrossOrigin sets clientDataJSON.crossOrigin=true without a topOrigin.
func WithCrossOrigin() Option { return func(o *options) { o.crossOrigin = true } }

// WithChallenge answers challenge instead of the options' challenge.
func WithChallenge(challenge []byte) Option { return func(o *options) { o.challenge = challenge } }

// WithUserHandle sends h as the assertion's userHandle (nil or empty: none).
func WithUserHandle(h []byte) Option { return func(o *options) { o.userHandle = &h } }

// WithCredentialID makes Register create a credential with this id (e.g.
// one already registered to someone else).
func WithCredentialID(id []byte) Option { return func(o *options) { o.credID = id } }

// WithCredentialIDLength makes Register create a random id of n bytes.
func WithCredentialIDLength(n int) Option { return func(o *options) { o.credIDLen = n } }

// WithCounter makes the call report counter n (and remember it).
func WithCounter(n uint32) Option { return func(o *options) { o.counter = &n } }

// KeepCounter makes Assert report the current counter without incrementing
// it (a replayed or cloned authenticator).
func KeepCounter() Option { return func(o *options) { o.keepCounter = true } }

// WithCredential makes Assert use the credential with this id.
func WithCredential(id []byte) Option { return func(o *options) { o.credential = id } }

// WithBadSignature flips a bit of the signature after signing.
func WithBadSignature() Option { return func(o *options) { o.tamperSig = true } }

// WithAlg makes Register create a key of algorithm alg, offered or not.
func WithAlg(alg Alg) Option { return func(o *options) { o.alg = alg } }

// WithFormat makes Register use attestation format "packed" or "none".
func WithFormat(format string) Option { return func(o *options) { o.format = format } }

// WithAAGUID reports aaguid instead of the authenticator's.
func WithAAGUID(aaguid [16]byte) Option { return func(o *options) { o.aaguid = &aaguid } }

// WithAttestationCA makes Register send packed full attestation whose
// attestation certificate is issued by ca (see Authenticator.AttestationCA).
func WithAttestationCA(ca *x509.Certificate, key crypto.Signer) Option {
	return func(o *options) { o.attCA, o.attCAKey = ca, key }
}

// WithSelfSignedBatchCertificate makes Register send packed full
// attestation whose x5c is one self-signed attestation certificate, as
// Chromium's virtual authenticator does (go-webauthn: "basic_full").
func WithSelfSignedBatchCertificate() Option { return func(o *options) { o.selfSignedAtt = true } }

// IgnoreExcluded makes Register ignore excludeCredentials.
func IgnoreExcluded() Option { return func(o *options) { o.ignoreExcluded = true } }

// creationOptions is the part of PublicKeyCredentialCreationOptions used
// here. It accepts the begin answer ({"publicKey": …}) or the bare options.
type creationOptions struct {
	RP struct {
		ID string `json:"id"`
	} `json:"rp"`
	User struct {
		ID string `json:"id"`
	} `json:"user"`
	Challenge string `json:"challenge"`
	Params    []struct {
		Alg int64 `json:"alg"`
	} `json:"pubKeyCredParams"`
	Exclude []struct {
		ID string `json:"id"`
	} `json:"excludeCredentials"`
	PublicKey *creationOptions `json:"publicKey"`
}

type requestOptions struct {
	RPID      string `json:"rpId"`
	Challenge string `json:"challenge"`
	Allow     []struct {
		ID string `json:"id"`
	} `json:"allowCredentials"`
	PublicKey *requestOptions `json:"publicKey"`
}

func decodeB64(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return base64.URLEncoding.DecodeString(s)
	}
	return b, nil
}

// Register answers creation options as navigator.credentials.create would
// from origin and returns the credential JSON (credential.toJSON()). The
// new credential is kept for later assertions.
func (a *Authenticator) Register(origin string, creationOptionsJSON []byte, opts ...Option) ([]byte, *Credential, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	var co creationOptions
	if err := json.Unmarshal(creationOptionsJSON, &co); err != nil {
		return nil, nil, fmt.Errorf("passkeytest: creation options: %w", err)
	}
	if co.PublicKey != nil {
		co = *co.PublicKey
	}
	challenge, err := decodeB64(co.Challenge)
	if err != nil || len(challenge) == 0 {
		return nil, nil, errors.New("passkeytest: creation options have no challenge")
	}
	if o.challenge != nil {
		challenge = o.challenge
	}
	handle, err := decodeB64(co.User.ID)
	if err != nil || len(handle) == 0 {
		return nil, nil, errors.New("passkeytest: creation options have no user.id")
	}
	rpID := co.RP.ID
	alg, format := a.Alg, a.Format
	if alg == 0 {
		alg = ES256
	}
	if format == "" {
		format = "packed"
	}
	if o.alg != 0 {
		alg = o.alg
	}
	if o.format != "" {
		format = o.format
	}
	if !o.ignoreExcluded {
		a.mu.Lock()
		for _, ex := range co.Exclude {
			id, _ := decodeB64(ex.ID)
			for _, c := range a.creds {
				if string(c.ID) == string(id) && c.RPID == rpID {
					a.mu.Unlock()
					return nil, nil, errors.New("passkeytest: InvalidStateError: an excluded credential is present on this authenticator")
				}
			}
		}
		a.mu.Unlock()
	}
	cred, err := newCredential(alg)
	if err != nil {
		return nil, nil, err
	}
	cred.RPID, cred.UserHandle = rpID, handle
	switch {
	case o.credID != nil:
		cred.ID = append([]byte(nil), o.credID...)
	case o.credIDLen > 0:
		cred.ID = make([]byte, o.credIDLen)
		if _, err := rand.Read(cred.ID); err != nil {
			return nil, nil, err
		}
	}
	if cred.vw != nil {
		cred.vw.ID = cred.ID
	}
	if o.counter != nil {
		cred.Counter = *o.counter
	}
	flags := a.Flags
	if o.flags != nil {
		flags = *o.flags
	}
	aaguid := a.AAGUID
	if o.aaguid != nil {
		aaguid = *o.aaguid
	}
	hashRPID := rpID
	if o.rpID != nil {
		hashRPID = *o.rpID
	}

	attCA, attCAKey := a.AttestationCA, a.AttestationCAKey
	if o.attCA != nil {
		attCA, attCAKey = o.attCA, o.attCAKey
	}
	full := format == "packed" && (o.selfSignedAtt || (attCA != nil && attCAKey != nil))

	var out []byte
	if cred.vw != nil && format == "packed" && !full && o.clientType == nil && !o.crossOrigin && !o.tamperSig {
		// The plain path: virtualwebauthn as it is.
		rp := virtualwebauthn.RelyingParty{ID: hashRPID, Origin: origin}
		auth := virtualwebauthn.Authenticator{Aaguid: aaguid, Options: virtualwebauthn.AuthenticatorOptions{
			UserHandle: handle, UserNotPresent: flags.NoUserPresence, UserNotVerified: flags.NoUserVerification,
			BackupEligible: flags.BackupEligible, BackupState: flags.BackupState,
		}}
		vo := virtualwebauthn.AttestationOptions{Challenge: challenge, RelyingPartyID: rpID, UserID: string(handle)}
		vc := *cred.vw
		vc.Counter = cred.Counter
		out = []byte(virtualwebauthn.CreateAttestationResponse(rp, auth, vc, vo))
	} else {
		ctype := "webauthn.create"
		if o.clientType != nil {
			ctype = *o.clientType
		}
		cdj, err := clientDataJSON(ctype, challenge, origin, o.topOrigin, o.crossOrigin)
		if err != nil {
			return nil, nil, err
		}
		authData := authenticatorData(hashRPID, flags, true, cred.Counter)
		authData = append(authData, aaguid[:]...)
		authData = binary.BigEndian.AppendUint16(authData, uint16(len(cred.ID)))
		authData = append(authData, cred.ID...)
		authData = append(authData, cred.cose...)
		stmt := map[string]any{}
		switch {
		case full:
			var x5c [][]byte
			var batchKey *ecdsa.PrivateKey
			if o.selfSignedAtt {
				x5c, batchKey, err = attestationCertificate(aaguid, nil, nil)
			} else {
				x5c, batchKey, err = attestationCertificate(aaguid, attCA, attCAKey)
			}
			if err != nil {
				return nil, nil, err
			}
			d := sha256.Sum256(signedData(authData, cdj))
			sig, err := ecdsa.SignASN1(rand.Reader, batchKey, d[:])
			if err != nil {
				return nil, nil, err
			}
			if o.tamperSig {
				sig[len(sig)-1] ^= 1
			}
			stmt = map[string]any{"alg": int64(ES256), "sig": sig, "x5c": x5c}
		case format != "none":
			sig, err := cred.sign(signedData(authData, cdj))
			if err != nil {
				return nil, nil, err
			}
			if o.tamperSig {
				sig[len(sig)-1] ^= 1
			}
			stmt = map[string]any{"alg": int64(cred.Alg), "sig": sig}
		}
		attObj, err := webauthncbor.Marshal(map[string]any{"fmt": format, "attStmt": stmt, "authData": authData})
		if err != nil {
			return nil, nil, err
		}
		out, err = json.Marshal(map[string]any{
			"type": "public-key", "id": b64(cred.ID), "rawId": b64(cred.ID),
			"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
			"response": map[string]any{
				"clientDataJSON": b64(cdj), "attestationObject": b64(attObj),
				"transports": []string{"internal", "hybrid"},
			},
		})
		if err != nil {
			return nil, nil, err
		}
	}
	a.AddCredential(cred)
	return out, cred, nil
}

// Assert answers request options as navigator.credentials.get would from
// origin, with the newest credential for the options' rpId (or the one
// named by WithCredential), and returns the credential JSON. The counter is
// incremented first unless KeepCounter or WithCounter says otherwise.
func (a *Authenticator) Assert(origin string, requestOptionsJSON []byte, opts ...Option) ([]byte, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	var ro requestOptions
	if err := json.Unmarshal(requestOptionsJSON, &ro); err != nil {
		return nil, fmt.Errorf("passkeytest: request options: %w", err)
	}
	if ro.PublicKey != nil {
		ro = *ro.PublicKey
	}
	challenge, err := decodeB64(ro.Challenge)
	if err != nil || len(challenge) == 0 {
		return nil, errors.New("passkeytest: request options have no challenge")
	}
	if o.challenge != nil {
		challenge = o.challenge
	}
	var allow [][]byte
	for _, c := range ro.Allow {
		id, _ := decodeB64(c.ID)
		allow = append(allow, id)
	}

	a.mu.Lock()
	var cred *Credential
	for i := len(a.creds) - 1; i >= 0; i-- {
		c := a.creds[i]
		if o.credential != nil {
			if string(c.ID) == string(o.credential) {
				cred = c
				break
			}
			continue
		}
		if c.RPID != ro.RPID {
			continue
		}
		if len(allow) > 0 && !containsID(allow, c.ID) {
			continue
		}
		cred = c
		break
	}
	if cred == nil {
		a.mu.Unlock()
		return nil, errors.New("passkeytest: NotAllowedError: no credential for this RP on this authenticator")
	}
	switch {
	case o.counter != nil:
		cred.Counter = *o.counter
	case o.keepCounter:
	default:
		cred.Counter++
	}
	counter := cred.Counter
	a.mu.Unlock()

	flags := a.Flags
	if o.flags != nil {
		flags = *o.flags
	}
	handle := cred.UserHandle
	if o.userHandle != nil {
		handle = *o.userHandle
	}
	hashRPID := ro.RPID
	if o.rpID != nil {
		hashRPID = *o.rpID
	}

	if cred.vw != nil && o.clientType == nil && !o.crossOrigin && !o.tamperSig {
		rp := virtualwebauthn.RelyingParty{ID: hashRPID, Origin: origin}
		auth := virtualwebauthn.Authenticator{Options: virtualwebauthn.AuthenticatorOptions{
			UserHandle: handle, UserNotPresent: flags.NoUserPresence, UserNotVerified: flags.NoUserVerification,
			BackupEligible: flags.BackupEligible, BackupState: flags.BackupState,
		}}
		vc := *cred.vw
		vc.Counter = counter
		return []byte(virtualwebauthn.CreateAssertionResponse(rp, auth, vc, virtualwebauthn.AssertionOptions{Challenge: challenge, RelyingPartyID: ro.RPID})), nil
	}
	ctype := "webauthn.get"
	if o.clientType != nil {
		ctype = *o.clientType
	}
	cdj, err := clientDataJSON(ctype, challenge, origin, o.topOrigin, o.crossOrigin)
	if err != nil {
		return nil, err
	}
	authData := authenticatorData(hashRPID, flags, false, counter)
	sig, err := cred.sign(signedData(authData, cdj))
	if err != nil {
		return nil, err
	}
	if o.tamperSig {
		sig[len(sig)-1] ^= 1
	}
	resp := map[string]any{"clientDataJSON": b64(cdj), "authenticatorData": b64(authData), "signature": b64(sig)}
	if len(handle) > 0 {
		resp["userHandle"] = b64(handle)
	}
	return json.Marshal(map[string]any{
		"type": "public-key", "id": b64(cred.ID), "rawId": b64(cred.ID),
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": resp,
	})
}

func containsID(list [][]byte, id []byte) bool {
	for _, v := range list {
		if string(v) == string(id) {
			return true
		}
	}
	return false
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func clientDataJSON(typ string, challenge []byte, origin, topOrigin string, crossOrigin bool) ([]byte, error) {
	cd := struct {
		Type        string `json:"type"`
		Challenge   string `json:"challenge"`
		Origin      string `json:"origin"`
		CrossOrigin bool   `json:"crossOrigin"`
		TopOrigin   string `json:"topOrigin,omitempty"`
	}{typ, b64(challenge), origin, crossOrigin, topOrigin}
	return json.Marshal(cd)
}

// authenticatorData is rpIdHash ‖ flags ‖ signCount (WebAuthn L3 §6.1).
func authenticatorData(rpID string, f Flags, attested bool, counter uint32) []byte {
	h := sha256.Sum256([]byte(rpID))
	var flags byte
	if !f.NoUserPresence {
		flags |= 1 << 0
	}
	if !f.NoUserVerification {
		flags |= 1 << 2
	}
	if f.BackupEligible {
		flags |= 1 << 3
	}
	if f.BackupState {
		flags |= 1 << 4
	}
	if attested {
		flags |= 1 << 6
	}
	out := append(h[:], flags)
	return binary.BigEndian.AppendUint32(out, counter)
}

// signedData is authData ‖ SHA-256(clientDataJSON) (W10).
func signedData(authData, cdj []byte) []byte {
	h := sha256.Sum256(cdj)
	return append(append([]byte(nil), authData...), h[:]...)
}

func (c *Credential) sign(msg []byte) ([]byte, error) {
	switch c.Alg {
	case ES256, RS256:
		d := sha256.Sum256(msg)
		return c.vw.Key.Sign(d[:])
	case EdDSA:
		return c.signer.Sign(rand.Reader, msg, crypto.Hash(0))
	case ES384:
		d := sha512.Sum384(msg)
		return c.signer.Sign(rand.Reader, d[:], crypto.SHA384)
	}
	return nil, fmt.Errorf("passkeytest: unsupported algorithm %d", c.Alg)
}

func newCredential(alg Alg) (*Credential, error) {
	c := &Credential{Alg: alg, ID: make([]byte, 32)}
	if _, err := rand.Read(c.ID); err != nil {
		return nil, err
	}
	switch alg {
	case ES256:
		// virtualwebauthn encodes x and y without left padding; keep
		// generating until both are 32 bytes (about 1 in 100 is not).
		var k *ecdsa.PrivateKey
		for {
			var err error
			if k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
				return nil, err
			}
			if len(k.X.Bytes()) == 32 && len(k.Y.Bytes()) == 32 { //nolint:staticcheck // mirrors virtualwebauthn's encoding
				break
			}
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		vc := virtualwebauthn.NewCredentialWithImportedKey(virtualwebauthn.KeyTypeEC2, der)
		c.vw = &vc
		c.cose = vc.Key.AttestationData()
	case RS256:
		vc := virtualwebauthn.NewCredential(virtualwebauthn.KeyTypeRSA)
		c.vw = &vc
		c.cose = vc.Key.AttestationData()
	case EdDSA:
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		c.signer = priv
		c.cose, err = webauthncbor.Marshal(map[int]any{1: 1, 3: -8, -1: 6, -2: []byte(pub)})
		if err != nil {
			return nil, err
		}
	case ES384:
		k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			return nil, err
		}
		c.signer = k
		c.cose, err = webauthncbor.Marshal(map[int]any{1: 2, 3: -35, -1: 2, -2: pad(k.X, 48), -3: pad(k.Y, 48)}) //nolint:staticcheck
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("passkeytest: unsupported algorithm %d", alg)
	}
	return c, nil
}

func pad(n *big.Int, size int) []byte {
	b := make([]byte, size)
	return n.FillBytes(b)
}

// oidFIDOAAGUID is id-fido-gen-ce-aaguid (WebAuthn §8.2.1).
var oidFIDOAAGUID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 45724, 1, 1, 4}

// Validity of the certificates made here: wide enough for the real clock
// (go-webauthn checks x5c against time.Now) and any test clock.
var (
	certNotBefore = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	certNotAfter  = time.Date(2099, 12, 31, 0, 0, 0, 0, time.UTC)
)

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
}

// NewAttestationCA returns a self-signed root CA certificate named cn and
// its ECDSA P-256 key, for AttestationCA and for a relying party's
// attestation roots. With parent and parentKey set it returns an
// intermediate CA issued by parent instead.
func NewAttestationCA(cn string, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{Country: []string{"US"}, Organization: []string{"Airlock Test Authenticators"}, CommonName: cn},
		NotBefore:    certNotBefore, NotAfter: certNotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true,
	}
	issuer, issuerKey := tmpl, crypto.Signer(key)
	if parent != nil {
		issuer, issuerKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), issuerKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// CertificatesPEM encodes certs as PEM CERTIFICATE blocks.
func CertificatesPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// attestationCertificate makes a fresh batch key and an attestation
// certificate for it that meets WebAuthn §8.2.1 (version 3; subject C, O,
// OU "Authenticator Attestation", CN; basic constraints CA=false; the
// id-fido-gen-ce-aaguid extension, not critical, with the AAGUID as an
// OCTET STRING), issued by ca, or self-signed when ca is nil. It returns
// x5c: the certificate, then ca if ca is an intermediate.
func attestationCertificate(aaguid [16]byte, ca *x509.Certificate, caKey crypto.Signer) ([][]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	ext, err := asn1.Marshal(aaguid[:])
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject: pkix.Name{Country: []string{"US"}, Organization: []string{"Airlock Test Authenticators"},
			OrganizationalUnit: []string{"Authenticator Attestation"}, CommonName: "Airlock passkeytest batch"},
		NotBefore: certNotBefore, NotAfter: certNotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, IsCA: false,
		ExtraExtensions: []pkix.Extension{{Id: oidFIDOAAGUID, Value: ext}},
	}
	issuer, issuerKey := tmpl, crypto.Signer(key)
	if ca != nil {
		issuer, issuerKey = ca, caKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), issuerKey)
	if err != nil {
		return nil, nil, err
	}
	x5c := [][]byte{der}
	if ca != nil && !bytes.Equal(ca.RawSubject, ca.RawIssuer) {
		x5c = append(x5c, ca.Raw)
	}
	return x5c, key, nil
}
