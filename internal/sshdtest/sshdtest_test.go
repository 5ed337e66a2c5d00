package sshdtest_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"airlock/internal/sshdtest"
)

// TestStart: a certificate from a trusted CA for an authorized principal
// logs in and runs a command; the harness finds sshd's accept line.
func TestStart(t *testing.T) {
	_, caKey, _ := ed25519.GenerateKey(rand.Reader)
	ca, err := ssh.NewSignerFromKey(caKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := sshdtest.Start(t, sshdtest.Options{TrustedCAKeys: []ssh.PublicKey{ca.PublicKey()}, Principals: []string{"ops@box"}})

	userPub, userKey, _ := ed25519.GenerateKey(rand.Reader)
	pub, _ := ssh.NewPublicKey(userPub)
	now := time.Now()
	cert := &ssh.Certificate{Key: pub, Serial: 4242, CertType: ssh.UserCert, KeyId: "harness/test",
		ValidPrincipals: []string{"ops@box"}, ValidAfter: uint64(now.Add(-time.Minute).Unix()), ValidBefore: uint64(now.Add(time.Minute).Unix()),
		Permissions: ssh.Permissions{Extensions: map[string]string{"permit-pty": ""}}}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	id := srv.WriteIdentity(t, userKey, cert)
	res := srv.SSH(context.Background(), id, "echo", "hello-from-sshd")
	if res.Err != nil || strings.TrimSpace(res.Stdout) != "hello-from-sshd" {
		t.Fatalf("ssh: %v\nstdout %q\nstderr %q", res.Err, res.Stdout, res.Stderr)
	}
	line, err := srv.WaitLog(regexp.MustCompile(`Accepted publickey for \S+ .* ID harness/test \(serial 4242\) CA`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sshd: %s", line)

	// Without the certificate nothing logs in.
	res = srv.SSH(context.Background(), srv.WriteIdentity(t, userKey, nil), "true")
	if res.Err == nil {
		t.Error("a bare key logged in")
	}
}
