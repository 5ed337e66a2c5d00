package breakglass

import (
	"context"
	"net/netip"
	"strconv"

	"golang.org/x/crypto/ssh"

	"airlock"
	"airlock/passkey"
	"airlock/sshca"
)

// maxSerialDraws bounds re-issuing after the store reported a serial taken.
const maxSerialDraws = 4

// IssueSSHCertificate signs pub for principal (one of the policy's role
// scopes, "role@resource"), for a live session: source-address always
// (Config.SourceAddresses, else clientIP as /32 or /128), permit-pty only
// (no agent, port or X11 forwarding), valid at most until the session ends
// and the CA's TTL (sshca.CA.IssueBreakGlass). The record is stored with
// GrantID = the event id when the store answers, and the certificate is
// audited "breakglass.ssh_certificate" (to the local audit file while the
// store is down) before it is returned.
func (s *Service) IssueSSHCertificate(ctx context.Context, sess *Session, pub ssh.PublicKey, principal, clientIP string, meta passkey.Meta) (*ssh.Certificate, error) {
	if s.ca == nil {
		return nil, airlock.Errorf(airlock.EUNAVAILABLE, "this server has no SSH CA")
	}
	if sess == nil || sess.Event == nil || !live(sess.Event, s.now()) {
		return nil, refuse(airlock.EUNAUTHORIZED, ReasonSessionEnded, "this break-glass session has ended")
	}
	ok := false
	for _, sc := range s.scopes {
		ok = ok || (!sc.IsTier && sc.String() == principal)
	}
	if !ok {
		return nil, refuse(airlock.EFORBIDDEN, ReasonOutOfScope, "principal %q is not a role scope of the break-glass policy", clip(principal))
	}
	sources := s.cfg.SourceAddresses
	if len(sources) == 0 {
		ip, err := netip.ParseAddr(clientIP)
		if err != nil {
			return nil, airlock.Errorf(airlock.EINVALID, "the client's IP address is unknown; a break-glass certificate is always bound to a source address")
		}
		sources = []string{ip.Unmap().String()}
	}
	req := sshca.BreakGlassRequest{KeyID: sess.Account.Name + "/" + sess.Event.ID, Principal: principal, SourceAddresses: sources,
		NotBefore: sess.Event.StartedAt, NotAfter: sess.Event.EndsAt, EventID: sess.Event.ID, UserID: sess.Account.ID}
	var (
		cert    *ssh.Certificate
		rec     *airlock.SSHCertificate
		offline bool
	)
	for draw := 1; ; draw++ {
		var err error
		cert, rec, err = s.ca.IssueBreakGlass(req, pub, s.now())
		if err != nil {
			return nil, err
		}
		err = s.store.CreateSSHCertificate(ctx, rec)
		if err == nil {
			break
		}
		if unavailable(err) {
			offline = true
			break
		}
		if airlock.ErrorCode(err) != airlock.ECONFLICT || draw == maxSerialDraws {
			return nil, err
		}
	}
	e := event("breakglass.ssh_certificate", airlock.OutcomeSuccess, meta)
	e.Actor, e.Subject, e.UserID = sess.Account.ID, sess.Account.ID, sess.Account.ID
	e.Details["event_id"], e.Details["serial"], e.Details["key_id"] = sess.Event.ID, strconv.FormatUint(rec.Serial, 10), rec.KeyID
	e.Details["principal"], e.Details["source_address"] = principal, rec.SourceAddress
	e.Details["public_key"], e.Details["extensions"] = rec.PublicKey, rec.Extensions
	e.Details["valid_after"], e.Details["valid_before"] = rec.ValidAfter, rec.ValidBefore
	e.Details["recorded"] = !offline
	if err := s.record(ctx, e); err != nil {
		return nil, err
	}
	return cert, nil
}
