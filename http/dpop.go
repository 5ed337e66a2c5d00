package http

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"airlock"
	"airlock/dpop"
)

// DPoP (RFC 9449) binds a CLI session's token to the key pair the CLI made
// at `airlock login`: every request with the token carries a proof, a JWS
// signed by that key over the request's method and URL, a fresh time, a
// single-use id and the token's hash. A token copied off the machine
// without its private key is useless.

// Limits of a DPoP proof.
const (
	// dpopMaxLen bounds the proof header (an EdDSA or ES256 proof is
	// about 400–600 bytes).
	dpopMaxLen = 4096
	// dpopIATSkew is how far a proof's iat may be from the server's clock,
	// either way.
	dpopIATSkew = 60 * time.Second
	// dpopJTITTL is how long a proof's jti is remembered: longer than the
	// whole iat window (2 × skew), so a replay is either remembered or
	// stale.
	dpopJTITTL = 5 * time.Minute
	// dpopMaxJTI bounds the jti claim.
	dpopMaxJTI = 256
	// dpopType is the proof's required JOSE typ (RFC 9449 §4.2).
	dpopType = "dpop+jwt"
	// dpopCeremonyKind is the CeremonyStore kind of a remembered jti.
	dpopCeremonyKind = "dpop"
)

// dpopAlgs are the only signature algorithms a proof may use: never none,
// never a MAC (HS*), which would make the "public" key a shared secret.
var dpopAlgs = []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256}

// dpopReason says why a proof was refused.
type dpopReason string

// Reasons a DPoP proof is refused.
const (
	dpopMissing     dpopReason = "missing"   // no proof with a key-bound token
	dpopMalformed   dpopReason = "malformed" // not a compact JWS, bad header or claims
	dpopBadType     dpopReason = "bad_typ"   // typ is not dpop+jwt
	dpopBadAlg      dpopReason = "bad_alg"   // alg other than EdDSA or ES256
	dpopBadKey      dpopReason = "bad_jwk"   // no jwk, or not a public key
	dpopBadSig      dpopReason = "bad_signature"
	dpopWrongKey    dpopReason = "wrong_key"    // thumbprint ≠ the session's (or the code's)
	dpopWrongMethod dpopReason = "wrong_htm"    // htm ≠ the request's method
	dpopWrongURL    dpopReason = "wrong_htu"    // htu ≠ the request's URL
	dpopStale       dpopReason = "bad_iat"      // iat outside ±60 s of now
	dpopReplay      dpopReason = "replayed_jti" // jti seen before
	dpopWrongATH    dpopReason = "wrong_ath"    // ath ≠ SHA-256 of the token
	dpopWrongScheme dpopReason = "wrong_scheme" // key-bound token as Bearer or cookie, or DPoP scheme for an unbound one
)

// dpopError is a refused DPoP proof; it carries the reason for tests and
// the audit trail, while the client sees an EUNAUTHORIZED error.
type dpopError struct {
	Reason dpopReason
}

func (e *dpopError) Error() string { return "dpop: " + string(e.Reason) }

func dpopFail(reason dpopReason, format string, args ...any) error {
	e := airlock.Errorf(airlock.EUNAUTHORIZED, "DPoP proof refused: "+format, args...)
	e.Err = &dpopError{Reason: reason}
	return e
}

// dpopClaims are a proof's claims (RFC 9449 §4.2).
type dpopClaims struct {
	JTI string `json:"jti"`
	HTM string `json:"htm"`
	HTU string `json:"htu"`
	// IAT is a NumericDate; it must be an integer.
	IAT   json.Number `json:"iat"`
	ATH   string      `json:"ath,omitempty"`
	Nonce string      `json:"nonce,omitempty"`
}

// dpopProof is a proof whose signature verified under its own jwk.
type dpopProof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint (base64url) of the jwk.
	JKT    string
	Claims dpopClaims
	IAT    time.Time
}

// parseDPoP parses a proof and verifies its signature with the public key
// in its own header (RFC 9449 §4.3 steps 1–7). It does not check what the
// claims say about the request (checkDPoPClaims) nor the jti's freshness.
func parseDPoP(proof string) (*dpopProof, error) {
	if proof == "" {
		return nil, dpopFail(dpopMissing, "no DPoP header")
	}
	if len(proof) > dpopMaxLen {
		return nil, dpopFail(dpopMalformed, "longer than %d bytes", dpopMaxLen)
	}
	if strings.Count(proof, ".") != 2 {
		return nil, dpopFail(dpopMalformed, "not a compact JWS")
	}
	// Look at alg ourselves first so that "none" and HS256 get their own
	// reason (go-jose refuses them too).
	if alg, ok := dpopHeaderAlg(proof); ok && alg != string(jose.EdDSA) && alg != string(jose.ES256) {
		return nil, dpopFail(dpopBadAlg, "alg %q is not allowed (EdDSA or ES256)", clip(alg, 20))
	}
	jws, err := jose.ParseSignedCompact(proof, dpopAlgs)
	if err != nil {
		var ua *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &ua) {
			return nil, dpopFail(dpopBadAlg, "alg is not allowed (EdDSA or ES256)")
		}
		if strings.Contains(strings.ToLower(err.Error()), "jwk") {
			return nil, dpopFail(dpopBadKey, "the jwk header must be a valid public key")
		}
		return nil, dpopFail(dpopMalformed, "not a valid JWS")
	}
	if len(jws.Signatures) != 1 {
		return nil, dpopFail(dpopMalformed, "want exactly one signature")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != dpopType {
		return nil, dpopFail(dpopBadType, "typ must be %q", dpopType)
	}
	if h.Algorithm != string(jose.EdDSA) && h.Algorithm != string(jose.ES256) {
		return nil, dpopFail(dpopBadAlg, "alg is not allowed (EdDSA or ES256)")
	}
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		return nil, dpopFail(dpopBadKey, "the jwk header must be a public key")
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return nil, dpopFail(dpopBadSig, "the signature does not verify with the jwk")
	}
	var c dpopClaims
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil || dec.More() {
		return nil, dpopFail(dpopMalformed, "claims are not a JSON object")
	}
	if c.JTI == "" || len(c.JTI) > dpopMaxJTI {
		return nil, dpopFail(dpopMalformed, "jti must be 1–%d characters", dpopMaxJTI)
	}
	if c.HTM == "" || c.HTU == "" {
		return nil, dpopFail(dpopMalformed, "htm and htu are required")
	}
	iat, err := c.IAT.Int64()
	if err != nil || iat <= 0 {
		return nil, dpopFail(dpopMalformed, "iat must be an integer NumericDate")
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, dpopFail(dpopBadKey, "cannot compute the jwk thumbprint")
	}
	return &dpopProof{JKT: base64.RawURLEncoding.EncodeToString(tp), Claims: c, IAT: time.Unix(iat, 0)}, nil
}

// dpopHeaderAlg reads the alg of a compact JWS's header without trusting
// anything else in it.
func dpopHeaderAlg(proof string) (string, bool) {
	head, _, _ := strings.Cut(proof, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(raw, &h) != nil {
		return "", false
	}
	return h.Alg, true
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// verifyDPoP checks r's DPoP proof (RFC 9449 §4.3) for a request made with
// token (empty for the token request, which has no ath) by the key whose
// thumbprint is jkt: signature, key, method, URL, time, the token's hash,
// and — last, so that invalid proofs never reach the store — that its jti
// was not used before.
func (s *Server) verifyDPoP(ctx context.Context, r *http.Request, token, jkt string) error {
	vals := r.Header.Values("DPoP")
	if len(vals) > 1 {
		return dpopFail(dpopMalformed, "more than one DPoP header")
	}
	var proof string
	if len(vals) == 1 {
		proof = vals[0]
	}
	p, err := parseDPoP(proof)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(p.JKT), []byte(jkt)) != 1 {
		return dpopFail(dpopWrongKey, "signed by another key than the one this token is bound to")
	}
	if p.Claims.HTM != r.Method {
		return dpopFail(dpopWrongMethod, "htm %q does not match the request method", clip(p.Claims.HTM, 16))
	}
	if !s.dpopURLMatches(p.Claims.HTU, r.URL.Path) {
		return dpopFail(dpopWrongURL, "htu does not match this request's URL")
	}
	now := s.Now()
	if d := now.Sub(p.IAT); d > dpopIATSkew || d < -dpopIATSkew {
		return dpopFail(dpopStale, "iat is more than %s away from the server's time", dpopIATSkew)
	}
	if token != "" {
		if subtle.ConstantTimeCompare([]byte(p.Claims.ATH), []byte(dpop.TokenHash(token))) != 1 {
			return dpopFail(dpopWrongATH, "ath does not match the access token")
		}
	}
	// The jti is remembered per key; a second use is a replay.
	h := sha256.Sum256([]byte(p.JKT + "\x00" + p.Claims.JTI))
	err = s.Store.CreateCeremony(ctx, &airlock.Ceremony{
		ID: "dpop_" + hex.EncodeToString(h[:]), Kind: dpopCeremonyKind, CreatedAt: now, ExpiresAt: now.Add(dpopJTITTL),
	})
	if airlock.ErrorCode(err) == airlock.ECONFLICT {
		return dpopFail(dpopReplay, "this proof was already used")
	}
	return err
}

// dpopURLMatches reports whether a proof's htu names this server's path:
// the origin is one of the configured origins (never the Host header,
// which the client chose), the path exact, query and fragment ignored
// (RFC 9449 §4.3 step 9), scheme and host compared case-insensitively and
// a default port equal to none.
func (s *Server) dpopURLMatches(htu, path string) bool {
	u, err := url.Parse(htu)
	if err != nil || u.User != nil || u.Opaque != "" || u.Path != path {
		return false
	}
	got := normOrigin(u)
	for _, o := range s.Origins {
		ou, err := url.Parse(o)
		if err == nil && normOrigin(ou) == got {
			return true
		}
	}
	return false
}

func normOrigin(u *url.URL) string {
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
}

// dpopToken returns the token of an "Authorization: DPoP <token>" header.
func dpopToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 5 && strings.EqualFold(h[:5], "dpop ") {
		return strings.TrimSpace(h[5:])
	}
	return ""
}
