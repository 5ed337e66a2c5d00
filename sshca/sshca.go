// Package sshca is Airlock's SSH user certificate authority: it issues
// short-lived OpenSSH user certificates bound to elevation grants.
//
// A certificate is issued only from a grant in force, and everything in it
// is derived from that grant (OpenSSH PROTOCOL.certkeys):
//
//   - type user; principals exactly [grant.Scope.String()] — never empty,
//     because an empty list means "any principal" to sshd;
//   - key id "<user name>/<grant id>", which sshd writes into its log
//     ("Accepted publickey … ID <key id> (serial N) CA …"), so that a login
//     joins the grant's audit record;
//   - a random, non-zero serial recorded in the store before the
//     certificate is handed out (a serial already taken is drawn again);
//   - valid after max(now − 30 s, grant start), valid before min(now + TTL,
//     grant end): never longer than the grant;
//   - the critical option source-address (the session's IP as a /32 or
//     /128) when configured;
//   - the extension permit-pty, and permit-agent-forwarding or
//     permit-port-forwarding only when the policy allowed them; never
//     permit-user-rc or permit-X11-forwarding.
//
// The CA key is Ed25519 in an OpenSSH private key file.
package sshca

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"airlock"
)

// DefaultTTL is how long a certificate is valid when Config.TTL is zero.
const DefaultTTL = 10 * time.Minute

// ClockSkew is how far before now a certificate's validity starts, so that
// a server whose clock is slightly behind Airlock's still accepts it.
const ClockSkew = 30 * time.Second

// MinRSABits is the smallest RSA key certified (NIST SP 800-57: 3072 bits
// for 128-bit security); MaxRSABits the largest, as in OpenSSH.
const (
	MinRSABits = 3072
	MaxRSABits = 16384
)

// Extensions a certificate may carry (PROTOCOL.certkeys §"Extensions").
const (
	ExtPTY             = "permit-pty"
	ExtAgentForwarding = "permit-agent-forwarding"
	ExtPortForwarding  = "permit-port-forwarding"
)

// OptSourceAddress is the critical option limiting where a certificate may
// be used from.
const OptSourceAddress = "source-address"

// maxSerialDraws bounds how often Issue draws a new serial after the store
// reported one taken: with 64 random bits a second collision in a row
// means something other than chance.
const maxSerialDraws = 4

// Store records issued certificates; airlock.ElevationStore satisfies it.
type Store interface {
	// CreateSSHCertificate records c; a Serial already recorded is
	// ECONFLICT.
	CreateSSHCertificate(ctx context.Context, c *airlock.SSHCertificate) error
}

// Config configures a CA.
type Config struct {
	// TTL is a certificate's longest validity (zero: DefaultTTL). The
	// grant's end shortens it further.
	TTL time.Duration
	// SourceAddress, when true, adds the critical option source-address
	// with the session's IP. It is off by default because sshd compares it
	// with the address it sees, which behind NAT, a VPN or a jump host is
	// not the one Airlock saw.
	SourceAddress bool
	// Rand is the source of serials and signing randomness (nil:
	// crypto/rand).
	Rand io.Reader
}

// CA is Airlock's SSH user certificate authority. It is safe for
// concurrent use.
type CA struct {
	signer ssh.Signer
	store  Store
	cfg    Config
}

// New returns a CA signing with key and recording certificates in store.
func New(key ed25519.PrivateKey, store Store, cfg Config) (*CA, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("sshca: the CA key must be an Ed25519 private key")
	}
	if store == nil {
		return nil, errors.New("sshca: a store is required")
	}
	if cfg.TTL < 0 {
		return nil, errors.New("sshca: ttl must not be negative")
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		return nil, fmt.Errorf("sshca: %w", err)
	}
	return &CA{signer: signer, store: store, cfg: cfg}, nil
}

// PublicKey is the CA's public key.
func (c *CA) PublicKey() ssh.PublicKey { return c.signer.PublicKey() }

// AuthorizedKey is the CA's public key as one authorized_keys line (with
// its newline), the form sshd's TrustedUserCAKeys file takes.
func (c *CA) AuthorizedKey() string { return AuthorizedKey(c.signer.PublicKey()) }

// AuthorizedKey formats pub as an authorized_keys line with the comment
// "airlock-ssh-ca" and a final newline.
func AuthorizedKey(pub ssh.PublicKey) string {
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pub)), "\n") + " airlock-ssh-ca\n"
}

// TTL is the longest validity of the certificates this CA issues.
func (c *CA) TTL() time.Duration { return c.cfg.TTL }

// Options are the policy's answers about forwarding for one certificate.
type Options struct {
	// AgentForwarding and PortForwarding add permit-agent-forwarding and
	// permit-port-forwarding. Set them only when the policy engine allowed
	// the forwarding actions.
	AgentForwarding bool
	PortForwarding  bool
}

// Issue signs a user certificate for pub from grant g, held by user u,
// requested from session sess, at now. Whether g may be used by sess is the
// caller's to check first (elevate.Service.UsableGrant); Issue itself
// refuses a grant not active at now by its own record, a grant of another
// user, a window that would be empty, a scope that is not a valid
// principal, and a public key that is weak or not a plain key
// (CheckPublicKey). The record is stored before the certificate is
// returned.
func (c *CA) Issue(ctx context.Context, g *airlock.Grant, u *airlock.User, sess *airlock.Session, pub ssh.PublicKey, opts Options, now time.Time) (*ssh.Certificate, *airlock.SSHCertificate, error) {
	if g == nil || u == nil || sess == nil || pub == nil {
		return nil, nil, airlock.Errorf(airlock.EINVALID, "sshca: grant, user, session and public key are required")
	}
	if err := CheckPublicKey(pub); err != nil {
		return nil, nil, err
	}
	if g.UserID != u.ID {
		return nil, nil, airlock.Errorf(airlock.EFORBIDDEN, "sshca: grant %s is not held by %s", g.ID, u.Name)
	}
	if !g.IsActive(now) {
		if !g.EndedAt.IsZero() || !now.Before(g.NotAfter) {
			return nil, nil, airlock.Errorf(airlock.EEXPIRED, "sshca: grant %s is no longer active", g.ID)
		}
		return nil, nil, airlock.Errorf(airlock.EFORBIDDEN, "sshca: grant %s is not active yet", g.ID)
	}
	principal := g.Scope.String()
	if sc, err := airlock.ParseScope(principal); err != nil || sc.String() != principal {
		return nil, nil, airlock.Errorf(airlock.EINVALID, "sshca: grant %s has no valid scope to use as a principal", g.ID)
	}
	keyID := u.Name + "/" + g.ID
	if !printable(keyID) {
		return nil, nil, airlock.Errorf(airlock.EINVALID, "sshca: key id %q would not be one printable word", keyID)
	}

	// Whole seconds, rounded inwards: the certificate never starts before
	// the grant nor outlives it.
	after := ceilSecond(maxTime(now.Add(-ClockSkew), g.NotBefore))
	before := minTime(now.Add(c.cfg.TTL), g.NotAfter).Truncate(time.Second)
	if !before.After(after) || !before.After(now) {
		return nil, nil, airlock.Errorf(airlock.EEXPIRED, "sshca: grant %s ends too soon for a certificate", g.ID)
	}

	perms := ssh.Permissions{CriticalOptions: map[string]string{}, Extensions: map[string]string{ExtPTY: ""}}
	if opts.AgentForwarding {
		perms.Extensions[ExtAgentForwarding] = ""
	}
	if opts.PortForwarding {
		perms.Extensions[ExtPortForwarding] = ""
	}
	source := ""
	if c.cfg.SourceAddress {
		addr, err := netip.ParseAddr(sess.IP)
		if err != nil {
			// Fail closed: the operator asked for the binding.
			return nil, nil, airlock.Errorf(airlock.EINVALID, "sshca: source_address is on but session %s has no usable IP address", sess.ID)
		}
		addr = addr.Unmap()
		source = netip.PrefixFrom(addr, addr.BitLen()).String()
		perms.CriticalOptions[OptSourceAddress] = source
	}
	exts := make([]string, 0, len(perms.Extensions))
	for e := range perms.Extensions {
		exts = append(exts, e)
	}
	slices.Sort(exts)

	rec := &airlock.SSHCertificate{
		KeyID: keyID, GrantID: g.ID, UserID: u.ID, SessionID: sess.ID,
		Principals: []string{principal}, PublicKey: ssh.FingerprintSHA256(pub),
		ValidAfter: after.UTC(), ValidBefore: before.UTC(), SourceAddress: source,
		Extensions: exts, IssuedAt: now.UTC(),
	}
	for draw := 1; ; draw++ {
		serial, err := c.serial()
		if err != nil {
			return nil, nil, err
		}
		cert := &ssh.Certificate{
			Key: pub, Serial: serial, CertType: ssh.UserCert, KeyId: keyID,
			ValidPrincipals: []string{principal},
			ValidAfter:      uint64(after.Unix()), ValidBefore: uint64(before.Unix()),
			Permissions: perms,
		}
		if err := cert.SignCert(c.cfg.Rand, c.signer); err != nil {
			return nil, nil, airlock.Wrap(airlock.EINTERNAL, "sshca: sign", err)
		}
		rec.Serial = serial
		err = c.store.CreateSSHCertificate(ctx, rec)
		if err == nil {
			return cert, rec, nil
		}
		if airlock.ErrorCode(err) != airlock.ECONFLICT || draw == maxSerialDraws {
			return nil, nil, err
		}
	}
}

// serial draws a random non-zero serial.
func (c *CA) serial() (uint64, error) {
	var b [8]byte
	for {
		if _, err := io.ReadFull(c.cfg.Rand, b[:]); err != nil {
			return 0, airlock.Wrap(airlock.EINTERNAL, "sshca: random serial", err)
		}
		if s := binary.BigEndian.Uint64(b[:]); s != 0 {
			return s, nil
		}
	}
}

// CheckPublicKey refuses a key Airlock does not certify: a certificate (a
// certificate is not a key to certify again), DSA, RSA under MinRSABits or
// over MaxRSABits, and any type other than Ed25519, ECDSA on P-256, P-384
// or P-521, and the FIDO security-key forms of Ed25519 and ECDSA P-256.
// The error is EINVALID and says why.
func CheckPublicKey(pub ssh.PublicKey) error {
	if pub == nil {
		return airlock.Errorf(airlock.EINVALID, "sshca: no public key")
	}
	if _, ok := pub.(*ssh.Certificate); ok {
		return airlock.Errorf(airlock.EINVALID, "sshca: a certificate was given where a public key is expected")
	}
	switch t := pub.Type(); t {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256:
		return nil
	case ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
		ck, ok := pub.(ssh.CryptoPublicKey)
		if !ok {
			return airlock.Errorf(airlock.EINVALID, "sshca: unreadable %s key", t)
		}
		if _, ok := ck.CryptoPublicKey().(*ecdsa.PublicKey); !ok {
			return airlock.Errorf(airlock.EINVALID, "sshca: unreadable %s key", t)
		}
		return nil
	case ssh.KeyAlgoRSA:
		ck, ok := pub.(ssh.CryptoPublicKey)
		if !ok {
			return airlock.Errorf(airlock.EINVALID, "sshca: unreadable RSA key")
		}
		rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
		if !ok {
			return airlock.Errorf(airlock.EINVALID, "sshca: unreadable RSA key")
		}
		if n := rk.N.BitLen(); n < MinRSABits || n > MaxRSABits {
			return airlock.Errorf(airlock.EINVALID, "sshca: an RSA key must have %d to %d bits, this one has %d (an Ed25519 key is better)", MinRSABits, MaxRSABits, n)
		}
		return nil
	case ssh.KeyAlgoDSA:
		return airlock.Errorf(airlock.EINVALID, "sshca: DSA keys are refused (OpenSSH dropped them as too weak); use an Ed25519 key")
	default:
		return airlock.Errorf(airlock.EINVALID, "sshca: %q keys are not certified; use an Ed25519 key", clip(t))
	}
}

// ParsePublicKey reads one authorized_keys line (a key type, the base64
// key, an optional comment) and checks it with CheckPublicKey. Options
// before the key type (command=…, from=…) are refused: they belong in
// sshd's files, not in a certificate request.
func ParsePublicKey(line string) (ssh.PublicKey, error) {
	line = strings.TrimSpace(line)
	if line == "" {
		return nil, airlock.Errorf(airlock.EINVALID, "sshca: public_key is required (an authorized_keys line, e.g. the contents of id_ed25519.pub)")
	}
	if strings.ContainsAny(line, "\r\n") {
		return nil, airlock.Errorf(airlock.EINVALID, "sshca: public_key must be a single line")
	}
	pub, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, airlock.Errorf(airlock.EINVALID, "sshca: public_key is not an authorized_keys line: %v", err)
	}
	if len(options) > 0 || len(rest) > 0 {
		return nil, airlock.Errorf(airlock.EINVALID, "sshca: public_key must be one key without options")
	}
	if err := CheckPublicKey(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// MarshalCertificate is cert as one authorized_keys-style line with a
// newline (the content of an id_*-cert.pub file).
func MarshalCertificate(cert *ssh.Certificate) string {
	return string(ssh.MarshalAuthorizedKey(cert))
}

func printable(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func ceilSecond(t time.Time) time.Time {
	if tr := t.Truncate(time.Second); !tr.Equal(t) {
		return tr.Add(time.Second)
	}
	return t
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
