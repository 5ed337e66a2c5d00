package sshca_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"airlock"
	"airlock/sshca"
)

// TestSourceAddressOption: addresses become /32 or /128, CIDRs are
// canonical, and nothing or anything unparsable is refused.
func TestSourceAddressOption(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{[]string{"192.0.2.7"}, "192.0.2.7/32"},
		{[]string{"::ffff:192.0.2.7"}, "192.0.2.7/32"},
		{[]string{"2001:db8::1"}, "2001:db8::1/128"},
		{[]string{"10.1.2.3/24", " 192.0.2.9 "}, "10.1.2.0/24,192.0.2.9/32"},
	} {
		got, err := sshca.SourceAddressOption(c.in)
		if err != nil || got != c.want {
			t.Errorf("%v: %q %v, want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range [][]string{nil, {""}, {"host.example.com"}, {"10.0.0.0/33"}, {"fe80::1%eth0"}, {"192.0.2.1,10.0.0.1"}} {
		if _, err := sshca.SourceAddressOption(bad); airlock.ErrorCode(err) != airlock.EINVALID {
			t.Errorf("%q: %v, want EINVALID", bad, err)
		}
	}
}

// TestIssueBreakGlass: refusals of the break-glass entry point.
func TestIssueBreakGlass(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	ca, err := sshca.New(key, nopRecorder{}, sshca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	upub, _, _ := ed25519.GenerateKey(rand.Reader)
	pub, _ := ssh.NewPublicKey(upub)
	now := time.Date(2026, 3, 2, 10, 0, 0, 500_000_000, time.UTC)
	ok := sshca.BreakGlassRequest{KeyID: "bg/bge_1", Principal: "dba@db-prod", SourceAddresses: []string{"192.0.2.7"},
		NotBefore: now, NotAfter: now.Add(30 * time.Minute), EventID: "bge_1", UserID: "u-bg"}
	cert, rec, err := ca.IssueBreakGlass(ok, pub, now)
	if err != nil {
		t.Fatal(err)
	}
	if cert.ValidAfter != uint64(now.Truncate(time.Second).Unix()) || rec.GrantID != "bge_1" || len(cert.Extensions) != 1 {
		t.Errorf("cert %+v rec %+v", cert, rec)
	}
	for name, mod := range map[string]func(r *sshca.BreakGlassRequest){
		"tier-principal":    func(r *sshca.BreakGlassRequest) { r.Principal = "tier:0" },
		"bad-principal":     func(r *sshca.BreakGlassRequest) { r.Principal = "root" },
		"no-source-address": func(r *sshca.BreakGlassRequest) { r.SourceAddresses = nil },
		"key-id-with-space": func(r *sshca.BreakGlassRequest) { r.KeyID = "bg /x" },
		"session-ended":     func(r *sshca.BreakGlassRequest) { r.NotAfter = now },
	} {
		r := ok
		mod(&r)
		if _, _, err := ca.IssueBreakGlass(r, pub, now); err == nil {
			t.Errorf("%s: issued", name)
		}
	}
}

type nopRecorder struct{}

func (nopRecorder) CreateSSHCertificate(_ context.Context, _ *airlock.SSHCertificate) error {
	return nil
}
