package breakglass

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"airlock"
	"airlock/internal/sshdtest"
	"airlock/sshca"
)

// TestBreakGlassSSHCertificate: principal within scope, source-address
// always, permit-pty only, valid at most to the session's end; recorded
// with the event as its grant.
func TestBreakGlassSSHCertificate(t *testing.T) {
	h := newHarness(t, nil)
	_, sess := h.mustUse(h.svc)
	pub, _ := newSSHKey(t)

	cert, err := h.svc.IssueSSHCertificate(h.ctx, sess, pub, "dba@db-prod", "2001:db8::7", meta)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.ValidPrincipals) != 1 || cert.ValidPrincipals[0] != "dba@db-prod" || cert.KeyId != "bg/"+sess.Event.ID {
		t.Errorf("principals %v key id %q", cert.ValidPrincipals, cert.KeyId)
	}
	if cert.CriticalOptions[sshca.OptSourceAddress] != "2001:db8::7/128" {
		t.Errorf("source-address %q", cert.CriticalOptions[sshca.OptSourceAddress])
	}
	if len(cert.Extensions) != 1 || cert.Extensions[sshca.ExtPTY] != "" {
		t.Errorf("extensions %v: want permit-pty only", cert.Extensions)
	}
	if end := uint64(sess.Event.EndsAt.Unix()); cert.ValidBefore > end {
		t.Errorf("valid before %d, after the session's end %d", cert.ValidBefore, end)
	}
	recs, err := h.sqlite.ListSSHCertificates(h.ctx, sess.Event.ID)
	if err != nil || len(recs) != 1 || recs[0].Serial != cert.Serial {
		t.Errorf("record %v %+v", err, recs)
	}
	if a := h.audited("breakglass.ssh_certificate"); len(a) != 1 || a[0].Details["principal"] != "dba@db-prod" {
		t.Errorf("audit %+v", a)
	}

	t.Run("ok-configured-source-addresses", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.SourceAddresses = []string{"10.1.2.0/24", "192.0.2.9"} })
		_, sess := h.mustUse(h.svc)
		cert, err := h.svc.IssueSSHCertificate(h.ctx, sess, pub, "dba@db-prod", testIP, meta)
		if err != nil || cert.CriticalOptions[sshca.OptSourceAddress] != "10.1.2.0/24,192.0.2.9/32" {
			t.Fatalf("%v %v", err, cert)
		}
	})
	t.Run("ok-ca-ttl-shorter-than-session", func(t *testing.T) {
		_, key, _ := ed25519.GenerateKey(rand.Reader)
		ca, err := sshca.New(key, h.store, sshca.Config{TTL: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		svc, err := New(h.cfg, h.store, h.pk, h.log, ca)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := svc.IssueSSHCertificate(h.ctx, sess, pub, "dba@db-prod", testIP, meta)
		if err != nil {
			t.Fatal(err)
		}
		if want := uint64(h.clk.Now().Add(10 * time.Minute).Unix()); cert.ValidBefore != want {
			t.Errorf("valid before %d, want the CA's TTL %d (the session ends later)", cert.ValidBefore, want)
		}
	})
	t.Run("fail-principal-out-of-scope", func(t *testing.T) {
		_, err := h.svc.IssueSSHCertificate(h.ctx, sess, pub, "root@db-prod", testIP, meta)
		wantErr(t, err, airlock.EFORBIDDEN, ReasonOutOfScope)
		_, err = h.svc.IssueSSHCertificate(h.ctx, sess, pub, "tier:2", testIP, meta)
		wantErr(t, err, airlock.EFORBIDDEN, ReasonOutOfScope)
	})
	t.Run("fail-no-client-ip", func(t *testing.T) {
		_, err := h.svc.IssueSSHCertificate(h.ctx, sess, pub, "dba@db-prod", "", meta)
		if airlock.ErrorCode(err) != airlock.EINVALID {
			t.Fatalf("%v, want EINVALID", err)
		}
	})
	t.Run("fail-ended-session", func(t *testing.T) {
		h.clk.Advance(30 * time.Minute)
		_, err := h.svc.IssueSSHCertificate(h.ctx, sess, pub, "dba@db-prod", testIP, meta)
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonSessionEnded)
	})
}

// TestBreakGlassSSHD: a real sshd trusting the CA accepts a break-glass
// certificate from 127.0.0.1, refuses port forwarding with it, and refuses
// the same kind of certificate bound to another source address.
func TestBreakGlassSSHD(t *testing.T) {
	sshdtest.Require(t)
	// sshd checks validity against the real clock.
	h := newHarness(t, func(c *Config) { c.Now = time.Now })
	_, sess := h.mustUse(h.svc)
	pub, priv := newSSHKey(t)
	srv := sshdtest.Start(t, sshdtest.Options{TrustedCAKeys: []ssh.PublicKey{h.ca.PublicKey()}, Principals: []string{"dba@db-prod"},
		Config: []string{"AllowTcpForwarding yes"}})
	login := func(cert *ssh.Certificate, args ...string) sshdtest.Result {
		return srv.SSH(context.Background(), srv.WriteIdentity(t, priv, cert), args...)
	}

	cert, err := h.svc.IssueSSHCertificate(h.ctx, sess, pub, "dba@db-prod", "127.0.0.1", meta)
	if err != nil {
		t.Fatal(err)
	}
	res := login(cert, "echo", "in=$((40+2))")
	if res.Err != nil || strings.TrimSpace(res.Stdout) != "in=42" {
		t.Fatalf("login: %v\nstdout %q\nstderr %q", res.Err, res.Stdout, res.Stderr)
	}
	res = login(cert, "-o", "ExitOnForwardFailure=yes", "-R", "127.0.0.1:0:127.0.0.1:9", "true")
	if res.Err == nil || !strings.Contains(res.Stderr, "remote port forwarding failed") {
		t.Errorf("remote forward with a break-glass certificate: err %v, stderr %q", res.Err, res.Stderr)
	}

	other, err := h.svc.IssueSSHCertificate(h.ctx, sess, pub, "dba@db-prod", "192.0.2.99", meta)
	if err != nil {
		t.Fatal(err)
	}
	if res := login(other, "true"); res.Err == nil {
		t.Fatal("logged in from outside the certificate's source-address")
	}
	if _, err := srv.WaitLog(regexp.MustCompile(`not from a permitted source address \(127\.0\.0\.1\)`), 5*time.Second); err != nil {
		t.Error(err)
	}
}
