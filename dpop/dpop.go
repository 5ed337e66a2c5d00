// Package dpop makes DPoP proofs (RFC 9449): the client side of Airlock's
// key-bound CLI sessions. A proof is a JWS of type dpop+jwt, signed by the
// client's key, whose header carries the public key and whose claims name
// one HTTP request (method and URL), a time, a unique id and the hash of
// the access token it accompanies. The server side is in package http.
package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Claims are a proof's claims. The zero ATH means no access token (the
// token request itself).
type Claims struct {
	JTI string `json:"jti"`
	HTM string `json:"htm"`
	HTU string `json:"htu"`
	IAT int64  `json:"iat"`
	ATH string `json:"ath,omitempty"`
}

// NewClaims returns the claims for a request with method to rawURL (query
// and fragment dropped, RFC 9449 §4.2) at now, with a random jti and, when
// token is not empty, its hash.
func NewClaims(method, rawURL, token string, now time.Time) (Claims, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Claims{}, fmt.Errorf("dpop: %w", err)
	}
	u.RawQuery, u.Fragment, u.RawFragment = "", "", ""
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return Claims{}, fmt.Errorf("dpop: %w", err)
	}
	c := Claims{JTI: base64.RawURLEncoding.EncodeToString(jti), HTM: method, HTU: u.String(), IAT: now.Unix()}
	if token != "" {
		c.ATH = TokenHash(token)
	}
	return c, nil
}

// Sign makes a proof of claims with key, an ed25519.PrivateKey (EdDSA) or
// a P-256 *ecdsa.PrivateKey (ES256).
func Sign(key crypto.Signer, c Claims) (string, error) {
	var alg jose.SignatureAlgorithm
	switch k := key.(type) {
	case ed25519.PrivateKey:
		alg = jose.EdDSA
	case *ecdsa.PrivateKey:
		if k.Curve.Params().Name != "P-256" {
			return "", fmt.Errorf("dpop: only P-256 ECDSA keys are supported")
		}
		alg = jose.ES256
	default:
		return "", fmt.Errorf("dpop: unsupported key type %T", key)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		return "", fmt.Errorf("dpop: %w", err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("dpop: %w", err)
	}
	return jws.CompactSerialize()
}

// Proof is NewClaims followed by Sign.
func Proof(key crypto.Signer, method, rawURL, token string, now time.Time) (string, error) {
	c, err := NewClaims(method, rawURL, token, now)
	if err != nil {
		return "", err
	}
	return Sign(key, c)
}

// Thumbprint returns the RFC 7638 SHA-256 JWK thumbprint of pub, base64url
// without padding: the "jkt" a key-bound session is bound to.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("dpop: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// TokenHash is the ath of token: base64url(SHA-256(token)).
func TokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(h[:])
}
