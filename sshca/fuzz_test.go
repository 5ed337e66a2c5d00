package sshca_test

import (
	"context"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"airlock"
	"airlock/sshca"
)

// FuzzParsePublicKey feeds ParsePublicKey (the public_key of a certificate
// request, untrusted) arbitrary text: it must never panic; a refusal is
// EINVALID; an accepted key is a plain key CheckPublicKey accepts, and
// Issue certifies it for exactly the grant's principal.
func FuzzParsePublicKey(f *testing.F) {
	fx := newFixture(f, sshca.Config{})
	good := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(fx.key)))
	cert, _ := fx.issue(f, sshca.Options{}, t0)
	f.Add(good)
	f.Add(good + " alice@laptop")
	f.Add(`command="/bin/sh" ` + good)
	f.Add(strings.TrimSpace(sshca.MarshalCertificate(cert)))
	f.Add(strings.TrimSpace(string(ssh.MarshalAuthorizedKey(skEd25519Key(f)))))
	f.Add("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC")
	f.Add("ssh-dss AAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, line string) {
		pub, err := sshca.ParsePublicKey(line)
		if err != nil {
			if pub != nil || airlock.ErrorCode(err) != airlock.EINVALID {
				t.Fatalf("refusal %v with key %v", err, pub)
			}
			return
		}
		if _, ok := pub.(*ssh.Certificate); ok {
			t.Fatal("a certificate was accepted as a key")
		}
		if err := sshca.CheckPublicKey(pub); err != nil {
			t.Fatalf("accepted a key CheckPublicKey refuses: %v", err)
		}
		c, _, err := fx.ca.Issue(context.Background(), fx.grant, fx.user, fx.sess, pub, sshca.Options{}, t0)
		if err != nil {
			t.Fatalf("Issue: %v", err)
		}
		if len(c.ValidPrincipals) != 1 || c.ValidPrincipals[0] != "dba@db-prod" || len(c.CriticalOptions) != 0 {
			t.Fatalf("certificate %+v", c)
		}
	})
}
