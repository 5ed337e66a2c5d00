// Package granttoken issues and verifies grant tokens: signed JWTs (RFC
// 7519, JWS compact serialization, alg EdDSA with Ed25519) that say "this
// user holds this grant on this resource until exp". A system that cannot
// reach Airlock — an air-gapped one — verifies them offline against a copy
// of Airlock's published JWKS (GET /v1/jwks).
//
// A token's header is exactly {"alg":"EdDSA","kid":…,"typ":"airlock-grant+jwt"}:
// the explicit type (RFC 8725 §3.11) keeps a grant token from being taken
// for any other JWT signed with the same key, and the kid is the key's RFC
// 7638 thumbprint. Its claims are iss (Airlock's public base URL), sub (the
// user id), name (the user name), aud (the grant's resource, or "tier:N"
// for a tier scope), scope ("role@resource" or "tier:N"), grant_id, iat,
// nbf, exp and jti. exp is min(now + TTL, grant end): an offline verifier
// cannot learn that a grant ended early, so the TTL (default 15 min) is
// the longest a revoked grant's token stays usable.
//
// The package uses github.com/go-jose/go-jose/v4: it parses and writes
// JWKs (OKP/Ed25519), computes RFC 7638 thumbprints, and its parser takes
// the list of acceptable algorithms as an argument, so "none", HS256 and
// the like are refused before any key is looked at.
package granttoken

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"airlock"
)

// Type is the "typ" header of every grant token.
const Type = "airlock-grant+jwt"

// DefaultTTL is a token's longest lifetime when Config.TTL is zero.
const DefaultTTL = 15 * time.Minute

// Leeway is the clock difference Verify tolerates on nbf and iat (a
// verifier whose clock is behind Airlock's). There is none on exp: exp is
// the grant's end at the latest, and a leeway there would let a token
// outlive its grant on a verifier with an exact clock.
const Leeway = 30 * time.Second

// Limits on what Verify reads: a grant token is a few hundred bytes, a
// JWKS a few keys.
const (
	MaxTokenBytes = 8 << 10
	MaxJWKSBytes  = 256 << 10
)

// Claims are a grant token's claims.
type Claims struct {
	Issuer string `json:"iss"`
	// Subject is the user's id; Name the user's login name.
	Subject string `json:"sub"`
	Name    string `json:"name"`
	// Audience is the grant's resource, or "tier:N" for a tier scope.
	Audience string `json:"aud"`
	// Scope is the grant's scope ("role@resource" or "tier:N").
	Scope   string `json:"scope"`
	GrantID string `json:"grant_id"`
	// IssuedAt, NotBefore and Expiry are NumericDates (seconds since the
	// epoch).
	IssuedAt  int64 `json:"iat"`
	NotBefore int64 `json:"nbf"`
	Expiry    int64 `json:"exp"`
	// ID is the token's unique id (jti).
	ID string `json:"jti"`
}

// ExpiresAt is Expiry as a time.
func (c *Claims) ExpiresAt() time.Time { return time.Unix(c.Expiry, 0).UTC() }

// Config configures an Issuer.
type Config struct {
	// Issuer is the iss claim: Airlock's public base URL.
	Issuer string
	// TTL is a token's longest lifetime (zero: DefaultTTL); the grant's
	// end shortens it further.
	TTL time.Duration
}

// Issuer signs grant tokens. It is safe for concurrent use.
type Issuer struct {
	cfg    Config
	kid    string
	signer jose.Signer
	jwks   []byte
}

// New returns an Issuer signing with key.
func New(key ed25519.PrivateKey, cfg Config) (*Issuer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("granttoken: the signing key must be an Ed25519 private key")
	}
	if cfg.Issuer == "" {
		return nil, errors.New("granttoken: an issuer (the public base URL) is required")
	}
	if cfg.TTL < 0 {
		return nil, errors.New("granttoken: ttl must not be negative")
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	kid, jwks, err := publicJWKS(key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType(Type))
	if err != nil {
		return nil, fmt.Errorf("granttoken: %w", err)
	}
	return &Issuer{cfg: cfg, kid: kid, signer: signer, jwks: jwks}, nil
}

// PublicJWKS is the JSON Web Key Set an Issuer with the private half of pub
// publishes: one OKP key with use "sig", alg "EdDSA" and its RFC 7638
// thumbprint as kid.
func PublicJWKS(pub ed25519.PublicKey) ([]byte, error) {
	_, jwks, err := publicJWKS(pub)
	return jwks, err
}

func publicJWKS(pub ed25519.PublicKey) (kid string, jwks []byte, err error) {
	if len(pub) != ed25519.PublicKeySize {
		return "", nil, errors.New("granttoken: not an Ed25519 public key")
	}
	jwk := jose.JSONWebKey{Key: pub, Algorithm: string(jose.EdDSA), Use: "sig"}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", nil, fmt.Errorf("granttoken: thumbprint: %w", err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	jwks, err = json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	if err != nil {
		return "", nil, fmt.Errorf("granttoken: jwks: %w", err)
	}
	return jwk.KeyID, jwks, nil
}

// KeyID is the signing key's id: its RFC 7638 SHA-256 thumbprint,
// base64url.
func (i *Issuer) KeyID() string { return i.kid }

// TTL is the longest lifetime of the tokens this issuer signs.
func (i *Issuer) TTL() time.Duration { return i.cfg.TTL }

// JWKS is the JSON Web Key Set (RFC 7517 §5) holding the public key:
// what GET /v1/jwks serves and offline verifiers keep a copy of.
func (i *Issuer) JWKS() []byte { return bytes.Clone(i.jwks) }

// Issue signs a token for grant g held by user u at now. It refuses a
// grant of another user, a grant not active at now by its own record, and
// a window under a second. Whether the caller may use g is for the caller
// to check first (elevate.Service.UsableGrant).
func (i *Issuer) Issue(g *airlock.Grant, u *airlock.User, now time.Time) (string, *Claims, error) {
	if g == nil || u == nil {
		return "", nil, airlock.Errorf(airlock.EINVALID, "granttoken: grant and user are required")
	}
	if g.UserID != u.ID {
		return "", nil, airlock.Errorf(airlock.EFORBIDDEN, "granttoken: grant %s is not held by %s", g.ID, u.Name)
	}
	if !g.IsActive(now) {
		if !g.EndedAt.IsZero() || !now.Before(g.NotAfter) {
			return "", nil, airlock.Errorf(airlock.EEXPIRED, "granttoken: grant %s is no longer active", g.ID)
		}
		return "", nil, airlock.Errorf(airlock.EFORBIDDEN, "granttoken: grant %s is not active yet", g.ID)
	}
	scope := g.Scope.String()
	if sc, err := airlock.ParseScope(scope); err != nil || sc.String() != scope {
		return "", nil, airlock.Errorf(airlock.EINVALID, "granttoken: grant %s has no valid scope", g.ID)
	}
	aud := g.Scope.Resource
	if g.Scope.IsTier {
		aud = scope
	}
	// NumericDates are whole seconds: rounded inwards, the token never
	// outlives the grant.
	exp := minTime(now.Add(i.cfg.TTL), g.NotAfter).Unix()
	iat := now.Unix()
	nbf := max(iat, ceilUnix(g.NotBefore))
	if exp <= iat {
		return "", nil, airlock.Errorf(airlock.EEXPIRED, "granttoken: grant %s ends too soon for a token", g.ID)
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", nil, airlock.Wrap(airlock.EINTERNAL, "granttoken: random jti", err)
	}
	c := &Claims{Issuer: i.cfg.Issuer, Subject: u.ID, Name: u.Name, Audience: aud, Scope: scope, GrantID: g.ID,
		IssuedAt: iat, NotBefore: nbf, Expiry: exp, ID: hex.EncodeToString(jti[:])}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", nil, airlock.Wrap(airlock.EINTERNAL, "granttoken: claims", err)
	}
	jws, err := i.signer.Sign(payload)
	if err != nil {
		return "", nil, airlock.Wrap(airlock.EINTERNAL, "granttoken: sign", err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return "", nil, airlock.Wrap(airlock.EINTERNAL, "granttoken: serialize", err)
	}
	return token, c, nil
}

// Reason says why Verify refused a token.
type Reason string

// Reasons for refusing a token.
const (
	ReasonMalformed  Reason = "malformed"   // not a compact JWS, bad base64 or JSON, missing claims
	ReasonAlgorithm  Reason = "algorithm"   // alg other than EdDSA (none, HS256, RS256…)
	ReasonHeader     Reason = "header"      // typ not airlock-grant+jwt, or a header parameter other than alg, kid, typ
	ReasonUnknownKey Reason = "unknown_key" // kid not in the JWKS (or not one Ed25519 public key)
	ReasonSignature  Reason = "signature"   // signature does not verify
	ReasonNotYet     Reason = "not_yet"     // nbf (or iat) in the future
	ReasonExpired    Reason = "expired"     // exp passed
	ReasonAudience   Reason = "audience"    // aud is not the expected audience
	ReasonJWKS       Reason = "jwks"        // the JWKS itself is unusable
)

// VerifyError is Verify's refusal.
type VerifyError struct {
	Reason Reason
	Detail string
}

// Error implements error: "granttoken: <reason>: <detail>".
func (e *VerifyError) Error() string { return "granttoken: " + string(e.Reason) + ": " + e.Detail }

func refuse(r Reason, format string, args ...any) error {
	return &VerifyError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// Verify checks token offline against jwksJSON (the JSON Web Key Set from
// GET /v1/jwks) at now and returns its claims. It checks, in order: the
// JWS compact form; the header (alg exactly EdDSA, typ exactly Type, a
// kid, no other parameter); the kid names exactly one Ed25519 public key
// of the set; the signature; every claim present; nbf and iat not after
// now + Leeway; now before exp (no leeway); and, when audience is not empty,
// aud equal to it. It does not check iss (the key set is the issuer's
// identity) nor whether the grant was ended early: no offline verifier can
// (the short exp bounds that). A refusal is a *VerifyError.
func Verify(token string, jwksJSON []byte, audience string, now time.Time) (*Claims, error) {
	if len(token) > MaxTokenBytes {
		return nil, refuse(ReasonMalformed, "token longer than %d bytes", MaxTokenBytes)
	}
	if len(jwksJSON) > MaxJWKSBytes {
		return nil, refuse(ReasonJWKS, "key set larger than %d bytes", MaxJWKSBytes)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, refuse(ReasonMalformed, "not a JWS in compact form (three dot-separated parts)")
	}
	hdr, err := parseHeader(parts[0])
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwksJSON, &set); err != nil {
		return nil, refuse(ReasonJWKS, "key set is not a JWKS: %v", err)
	}
	keys := set.Key(hdr.kid)
	if len(keys) != 1 {
		return nil, refuse(ReasonUnknownKey, "key %q is not in the key set once (found %d)", hdr.kid, len(keys))
	}
	pub, ok := keys[0].Key.(ed25519.PublicKey)
	if !ok || !keys[0].IsPublic() || (keys[0].Algorithm != "" && keys[0].Algorithm != string(jose.EdDSA)) || (keys[0].Use != "" && keys[0].Use != "sig") {
		return nil, refuse(ReasonUnknownKey, "key %q is not an Ed25519 signing public key", hdr.kid)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return nil, refuse(ReasonMalformed, "%v", err)
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return nil, refuse(ReasonSignature, "signature does not verify with key %q", hdr.kid)
	}
	c, err := parseClaims(payload)
	if err != nil {
		return nil, err
	}
	t := now.Unix()
	leeway := int64(Leeway / time.Second)
	if c.NotBefore > t+leeway || c.IssuedAt > t+leeway {
		return nil, refuse(ReasonNotYet, "token valid from %s", time.Unix(c.NotBefore, 0).UTC().Format(time.RFC3339))
	}
	if c.Expiry <= t {
		return nil, refuse(ReasonExpired, "token expired at %s", c.ExpiresAt().Format(time.RFC3339))
	}
	if audience != "" && c.Audience != audience {
		return nil, refuse(ReasonAudience, "token is for %q, not %q", c.Audience, audience)
	}
	return c, nil
}

type header struct{ kid string }

// parseHeader reads the protected header strictly: exactly alg, kid and
// typ. Anything else — crit, an embedded jwk, jku, x5u, x5c — is refused
// rather than ignored.
func parseHeader(seg string) (header, error) {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return header{}, refuse(ReasonMalformed, "header is not base64url")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return header{}, refuse(ReasonMalformed, "header is not a JSON object")
	}
	str := func(name string) (string, bool) {
		raw, ok := m[name]
		if !ok {
			return "", false
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	}
	alg, ok := str("alg")
	if !ok || alg != string(jose.EdDSA) {
		return header{}, refuse(ReasonAlgorithm, "alg %q is not EdDSA", clip(alg))
	}
	if typ, ok := str("typ"); !ok || typ != Type {
		return header{}, refuse(ReasonHeader, "typ %q is not %q", clip(typ), Type)
	}
	kid, ok := str("kid")
	if !ok || kid == "" {
		return header{}, refuse(ReasonHeader, "no kid")
	}
	for name := range m {
		if name != "alg" && name != "typ" && name != "kid" {
			return header{}, refuse(ReasonHeader, "header parameter %q is not accepted", clip(name))
		}
	}
	return header{kid: kid}, nil
}

// parseClaims decodes the payload: a JSON object with every claim of
// Claims and no unknown one.
func parseClaims(payload []byte) (*Claims, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(payload, &raw); err != nil {
		return nil, refuse(ReasonMalformed, "claims are not a JSON object")
	}
	for _, name := range []string{"iss", "sub", "name", "aud", "scope", "grant_id", "iat", "nbf", "exp", "jti"} {
		if _, ok := raw[name]; !ok {
			return nil, refuse(ReasonMalformed, "claim %q missing", name)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	var c Claims
	if err := dec.Decode(&c); err != nil {
		return nil, refuse(ReasonMalformed, "claims: %v", err)
	}
	if c.Subject == "" || c.Audience == "" || c.GrantID == "" || c.Scope == "" {
		return nil, refuse(ReasonMalformed, "sub, aud, scope and grant_id must not be empty")
	}
	return &c, nil
}

// ParseJWKS checks that b is a key set Verify can use: JSON, at most
// MaxJWKSBytes, at least one key, every key a public Ed25519 key with a
// kid. It returns the key ids.
func ParseJWKS(b []byte) ([]string, error) {
	if len(b) > MaxJWKSBytes {
		return nil, refuse(ReasonJWKS, "key set larger than %d bytes", MaxJWKSBytes)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, refuse(ReasonJWKS, "not a JWKS: %v", err)
	}
	if len(set.Keys) == 0 {
		return nil, refuse(ReasonJWKS, "no keys")
	}
	var ids []string
	for _, k := range set.Keys {
		if _, ok := k.Key.(ed25519.PublicKey); !ok || !k.IsPublic() || k.KeyID == "" {
			return nil, refuse(ReasonJWKS, "key %q is not an Ed25519 public key with a kid", clip(k.KeyID))
		}
		ids = append(ids, k.KeyID)
	}
	return ids, nil
}

// clip shortens s for an error message (callers quote it with %q).
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func ceilUnix(t time.Time) int64 {
	if t.Truncate(time.Second).Equal(t) {
		return t.Unix()
	}
	return t.Truncate(time.Second).Unix() + 1
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
