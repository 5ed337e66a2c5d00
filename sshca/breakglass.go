package sshca

import (
	"net/netip"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"airlock"
)

// BreakGlassRequest is what a break-glass certificate is issued for: one
// principal of the break-glass policy, the addresses it may be used from,
// and the window of the break-glass session.
type BreakGlassRequest struct {
	// KeyID names the use ("<account name>/<event id>").
	KeyID string
	// Principal is one role scope of the break-glass policy
	// ("role@resource").
	Principal string
	// SourceAddresses are CIDRs (or single addresses) the certificate may
	// be used from: always at least one.
	SourceAddresses []string
	// NotBefore and NotAfter are the break-glass session's start and end.
	NotBefore, NotAfter time.Time
	// EventID, UserID name the break-glass event and account in the record.
	EventID, UserID string
}

// IssueBreakGlass signs a user certificate for pub from a break-glass
// session: principal r.Principal, the critical option source-address
// always (r.SourceAddresses, normalised), permit-pty as its only extension
// (no agent, port or X11 forwarding), valid from max(now − ClockSkew,
// NotBefore) rounded down to the second, to min(now + TTL, NotAfter)
// rounded down.
// It records nothing: the caller stores the returned record when the store
// is up (GrantID = the event id), else audits it; a serial the store
// reports taken means issuing again.
func (c *CA) IssueBreakGlass(r BreakGlassRequest, pub ssh.PublicKey, now time.Time) (*ssh.Certificate, *airlock.SSHCertificate, error) {
	if err := CheckPublicKey(pub); err != nil {
		return nil, nil, err
	}
	if sc, err := airlock.ParseScope(r.Principal); err != nil || sc.IsTier || sc.String() != r.Principal {
		return nil, nil, airlock.Errorf(airlock.EINVALID, "sshca: %q is not a role@resource principal", clip(r.Principal))
	}
	if !printable(r.KeyID) {
		return nil, nil, airlock.Errorf(airlock.EINVALID, "sshca: key id %q would not be one printable word", clip(r.KeyID))
	}
	source, err := SourceAddressOption(r.SourceAddresses)
	if err != nil {
		return nil, nil, err
	}
	// The session's start rounded down to its second: a certificate asked
	// for within the session's first second is valid at once (rounding up
	// would make sshd refuse it as not yet valid); the sub-second overlap
	// is well within ClockSkew.
	after := maxTime(now.Add(-ClockSkew), r.NotBefore.Truncate(time.Second)).Truncate(time.Second)
	before := minTime(now.Add(c.cfg.TTL), r.NotAfter).Truncate(time.Second)
	if !before.After(after) || !before.After(now) {
		return nil, nil, airlock.Errorf(airlock.EEXPIRED, "sshca: the break-glass session ends too soon for a certificate")
	}
	serial, err := c.serial()
	if err != nil {
		return nil, nil, err
	}
	cert := &ssh.Certificate{
		Key: pub, Serial: serial, CertType: ssh.UserCert, KeyId: r.KeyID,
		ValidPrincipals: []string{r.Principal},
		ValidAfter:      uint64(after.Unix()), ValidBefore: uint64(before.Unix()),
		Permissions: ssh.Permissions{
			CriticalOptions: map[string]string{OptSourceAddress: source},
			Extensions:      map[string]string{ExtPTY: ""},
		},
	}
	if err := cert.SignCert(c.cfg.Rand, c.signer); err != nil {
		return nil, nil, airlock.Wrap(airlock.EINTERNAL, "sshca: sign", err)
	}
	rec := &airlock.SSHCertificate{
		Serial: serial, KeyID: r.KeyID, GrantID: r.EventID, UserID: r.UserID, SessionID: r.EventID,
		Principals: []string{r.Principal}, PublicKey: ssh.FingerprintSHA256(pub),
		ValidAfter: after.UTC(), ValidBefore: before.UTC(), SourceAddress: source,
		Extensions: []string{ExtPTY}, IssuedAt: now.UTC(),
	}
	return cert, rec, nil
}

// SourceAddressOption is the source-address critical option for addrs:
// each a CIDR or a single address (which becomes /32 or /128), canonical,
// comma-separated. None, or one that does not parse, is EINVALID.
func SourceAddressOption(addrs []string) (string, error) {
	if len(addrs) == 0 {
		return "", airlock.Errorf(airlock.EINVALID, "sshca: a source address is required")
	}
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		var p netip.Prefix
		if strings.Contains(a, "/") {
			q, err := netip.ParsePrefix(a)
			if err != nil {
				return "", airlock.Errorf(airlock.EINVALID, "sshca: source address %q is not a CIDR", clip(a))
			}
			p = q.Masked()
		} else {
			ip, err := netip.ParseAddr(a)
			if err != nil || ip.Zone() != "" {
				return "", airlock.Errorf(airlock.EINVALID, "sshca: source address %q is not an IP address", clip(a))
			}
			ip = ip.Unmap()
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		out = append(out, p.String())
	}
	return strings.Join(out, ","), nil
}
