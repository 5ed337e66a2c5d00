package sshca_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"airlock"
	"airlock/internal/sshdtest"
	"airlock/sshca"
)

// These tests run a real OpenSSH sshd (internal/sshdtest) trusting the CA.
// sshd checks validity against the real clock, so the certificates are
// issued at time.Now().

// sshdFixture is a CA, a grant for dba@db-prod and an sshd that trusts the
// CA and accepts the principal dba@db-prod for the current user.
type sshdFixture struct {
	*fixture
	srv     *sshdtest.Server
	userKey ed25519.PrivateKey
}

func newSSHDFixture(t *testing.T, cfg sshca.Config, extra ...string) *sshdFixture {
	t.Helper()
	sshdtest.Require(t)
	f := newFixture(t, cfg)
	now := time.Now()
	f.grant.NotBefore, f.grant.NotAfter = now.Add(-time.Minute), now.Add(time.Hour)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if f.key, err = ssh.NewPublicKey(pub); err != nil {
		t.Fatal(err)
	}
	srv := sshdtest.Start(t, sshdtest.Options{TrustedCAKeys: []ssh.PublicKey{f.caPub}, Principals: []string{"dba@db-prod"}, Config: extra})
	return &sshdFixture{fixture: f, srv: srv, userKey: priv}
}

func (f *sshdFixture) login(t *testing.T, cert *ssh.Certificate, command ...string) sshdtest.Result {
	t.Helper()
	return f.srv.SSH(context.Background(), f.srv.WriteIdentity(t, f.userKey, cert), command...)
}

// TestSSHDLogin: a certificate issued from an active grant logs in and runs
// a command; sshd's accept line carries the key id and serial of the
// issued record (how sshd's log joins the grant's audit record).
func TestSSHDLogin(t *testing.T) {
	f := newSSHDFixture(t, sshca.Config{})
	cert, rec := f.issue(t, sshca.Options{}, time.Now())
	res := f.login(t, cert, "echo", "sum=$((20+22))")
	if res.Err != nil || strings.TrimSpace(res.Stdout) != "sum=42" {
		t.Fatalf("ssh: %v\nstdout %q\nstderr %q", res.Err, res.Stdout, res.Stderr)
	}
	re := regexp.MustCompile(`Accepted publickey for ` + regexp.QuoteMeta(f.srv.User) + ` from 127\.0\.0\.1 port \d+ ssh2: ED25519-CERT (SHA256:\S+) ID (\S+) \(serial (\d+)\) CA ED25519 (SHA256:\S+)`)
	line, err := f.srv.WaitLog(re, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m := re.FindStringSubmatch(line)
	if m[1] != rec.PublicKey || m[2] != rec.KeyID || m[3] != fmt.Sprint(rec.Serial) || m[4] != ssh.FingerprintSHA256(f.caPub) {
		t.Errorf("sshd line %q\n does not name key %s, id %s, serial %d, CA %s", line, rec.PublicKey, rec.KeyID, rec.Serial, ssh.FingerprintSHA256(f.caPub))
	}
	if rec.KeyID != "alice/"+f.grant.ID {
		t.Errorf("key id %q", rec.KeyID)
	}
}

// TestSSHDRefusesWrongPrincipal: a certificate for a scope sshd does not
// list for the user is refused.
func TestSSHDRefusesWrongPrincipal(t *testing.T) {
	f := newSSHDFixture(t, sshca.Config{})
	f.grant.Scope = airlock.Scope{Role: "dba", Resource: "db-staging", Tier: 1}
	cert, rec := f.issue(t, sshca.Options{}, time.Now())
	res := f.login(t, cert, "echo", "in")
	if res.Err == nil || strings.Contains(res.Stdout, "in") {
		t.Fatalf("logged in with principal %q: %q", cert.ValidPrincipals, res.Stdout)
	}
	if line, err := f.srv.WaitLog(regexp.MustCompile(`Certificate does not contain an authorized principal`), 5*time.Second); err != nil {
		t.Error(err)
	} else {
		t.Logf("sshd: %s (key id %s, serial %d)", line, rec.KeyID, rec.Serial)
	}
	if strings.Contains(f.srv.Log(), "Accepted publickey") {
		t.Error("sshd accepted a login")
	}
}

// TestSSHDRefusesExpired: a certificate past its valid_before is refused.
// The one place a real wait is needed: sshd reads the real clock.
func TestSSHDRefusesExpired(t *testing.T) {
	f := newSSHDFixture(t, sshca.Config{TTL: 2 * time.Second})
	cert, _ := f.issue(t, sshca.Options{}, time.Now())
	end := time.Unix(int64(cert.ValidBefore), 0)
	time.Sleep(time.Until(end) + 1100*time.Millisecond)
	res := f.login(t, cert, "echo", "in")
	if res.Err == nil || strings.Contains(res.Stdout, "in") {
		t.Fatalf("logged in with a certificate that expired at %v", end)
	}
	if line, err := f.srv.WaitLog(regexp.MustCompile(`Certificate invalid: expired`), 5*time.Second); err != nil {
		t.Error(err)
	} else {
		t.Logf("sshd: %s", line)
	}
	// The same setup accepts a certificate still valid.
	long, err := sshca.New(f.caKey, f.store, sshca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ok, _, err := long.Issue(context.Background(), f.grant, f.user, f.sess, f.key, sshca.Options{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res := f.login(t, ok, "true"); res.Err != nil {
		t.Errorf("a valid certificate was refused too: %v %s", res.Err, res.Stderr)
	}
}

// TestSSHDRefusesSourceAddress: a certificate bound to 10.9.9.9/32 is
// refused from 127.0.0.1.
func TestSSHDRefusesSourceAddress(t *testing.T) {
	f := newSSHDFixture(t, sshca.Config{SourceAddress: true})
	f.sess.IP = "10.9.9.9"
	cert, rec := f.issue(t, sshca.Options{}, time.Now())
	if rec.SourceAddress != "10.9.9.9/32" {
		t.Fatalf("source address %q", rec.SourceAddress)
	}
	res := f.login(t, cert, "echo", "in")
	if res.Err == nil || strings.Contains(res.Stdout, "in") {
		t.Fatal("logged in from outside the certificate's source-address")
	}
	if _, err := f.srv.WaitLog(regexp.MustCompile(`valid certificate but not from a permitted source address \(127\.0\.0\.1\)`), 5*time.Second); err != nil {
		t.Error(err)
	}
	// From the address it names, the same kind of certificate works.
	f.sess.IP = "127.0.0.1"
	cert, _ = f.issue(t, sshca.Options{}, time.Now())
	if res := f.login(t, cert, "true"); res.Err != nil {
		t.Errorf("certificate for 127.0.0.1/32 refused from 127.0.0.1: %v %s", res.Err, res.Stderr)
	}
}

// TestSSHDPortForwarding: sshd honours the extensions: without
// permit-port-forwarding a remote forward is refused, with it allowed.
func TestSSHDPortForwarding(t *testing.T) {
	f := newSSHDFixture(t, sshca.Config{}, "AllowTcpForwarding yes")
	forward := func(cert *ssh.Certificate) sshdtest.Result {
		// ExitOnForwardFailure turns sshd's refusal of the tcpip-forward
		// request into ssh's failure.
		return f.login(t, cert, "-o", "ExitOnForwardFailure=yes", "-R", "127.0.0.1:0:127.0.0.1:9", "true")
	}
	cases := []struct {
		name string
		opts sshca.Options
		ok   bool
	}{
		{"fail-no-extension", sshca.Options{}, false},
		{"ok-permitted", sshca.Options{PortForwarding: true}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cert, rec := f.issue(t, c.opts, time.Now())
			res := forward(cert)
			if c.ok != (res.Err == nil) {
				t.Errorf("remote forward: err %v, stderr %q", res.Err, res.Stderr)
			}
			// The login itself succeeded either way: a refusal must be
			// the forward's, not a failed login.
			accepted := regexp.MustCompile(`Accepted publickey for .* ID ` + regexp.QuoteMeta(rec.KeyID) + ` \(serial ` + fmt.Sprint(rec.Serial) + `\)`)
			if _, err := f.srv.WaitLog(accepted, 5*time.Second); err != nil {
				t.Errorf("login with serial %d not accepted: %v", rec.Serial, err)
			}
			if !c.ok && !strings.Contains(res.Stderr, "remote port forwarding failed") {
				t.Errorf("refused for another reason than the forward: %q", res.Stderr)
			}
		})
	}
}

// TestSSHDLoginAtGrantStart: a grant that began this very second (grants
// start on a whole second, as package elevate makes them) gives a
// certificate sshd accepts at once — not "not yet valid" until the next
// second.
func TestSSHDLoginAtGrantStart(t *testing.T) {
	f := newSSHDFixture(t, sshca.Config{})
	now := time.Now()
	f.grant.NotBefore = now.Truncate(time.Second)
	cert, rec := f.issue(t, sshca.Options{}, now)
	if time.Unix(int64(cert.ValidAfter), 0).After(now) || !rec.ValidAfter.Equal(f.grant.NotBefore) {
		t.Fatalf("valid after %v (record %v), issued at %v from a grant starting %v", time.Unix(int64(cert.ValidAfter), 0), rec.ValidAfter, now, f.grant.NotBefore)
	}
	if res := f.login(t, cert, "echo", "at-once"); res.Err != nil || strings.TrimSpace(res.Stdout) != "at-once" {
		t.Fatalf("ssh right after the grant began: %v\nstdout %q\nstderr %q", res.Err, res.Stdout, res.Stderr)
	}
}
