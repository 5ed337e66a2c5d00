// Package granttoken issues and verifies signed grant tokens (JWT, EdDSA)
// that systems can check offline against Airlock's published JWKS
// (SKELETON: being written, issue 5).
package granttoken

// Issuer signs grant tokens.
type Issuer struct{}
