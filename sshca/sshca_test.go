package sshca_test

import (
	"context"
	"crypto/dsa"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"airlock"
	"airlock/sshca"
)

// fakeStore records certificates in memory; Create, if set, runs first and
// may refuse.
type fakeStore struct {
	mu     sync.Mutex
	certs  []*airlock.SSHCertificate
	calls  int
	Create func(c *airlock.SSHCertificate) error
}

var _ sshca.Store = (*fakeStore)(nil)

func (s *fakeStore) CreateSSHCertificate(ctx context.Context, c *airlock.SSHCertificate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.Create != nil {
		if err := s.Create(c); err != nil {
			return err
		}
	}
	for _, o := range s.certs {
		if o.Serial == c.Serial {
			return airlock.Errorf(airlock.ECONFLICT, "serial %d taken", c.Serial)
		}
	}
	cp := *c
	s.certs = append(s.certs, &cp)
	return nil
}

var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

type fixture struct {
	ca    *sshca.CA
	caKey ed25519.PrivateKey
	store *fakeStore
	caPub ssh.PublicKey
	user  *airlock.User
	sess  *airlock.Session
	grant *airlock.Grant
	key   ssh.PublicKey
}

func newFixture(t testing.TB, cfg sshca.Config) *fixture {
	t.Helper()
	_, caKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: &fakeStore{}, caKey: caKey}
	if f.ca, err = sshca.New(caKey, f.store, cfg); err != nil {
		t.Fatal(err)
	}
	f.caPub = f.ca.PublicKey()
	f.user = &airlock.User{ID: "usr_1", Name: "alice", Tier: 1}
	f.sess = &airlock.Session{ID: "ses_1", UserID: "usr_1", IP: "192.0.2.7"}
	f.grant = &airlock.Grant{ID: "grt_1", UserID: "usr_1", SessionID: "ses_1",
		Scope:     airlock.Scope{Role: "dba", Resource: "db-prod", Tier: 1},
		NotBefore: t0.Add(-5 * time.Minute), NotAfter: t0.Add(time.Hour), CreatedAt: t0.Add(-5 * time.Minute)}
	f.key = edKey(t)
	return f
}

func edKey(t testing.TB) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (f *fixture) issue(t testing.TB, opts sshca.Options, now time.Time) (*ssh.Certificate, *airlock.SSHCertificate) {
	t.Helper()
	cert, rec, err := f.ca.Issue(context.Background(), f.grant, f.user, f.sess, f.key, opts, now)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return cert, rec
}

func TestIssueFields(t *testing.T) {
	f := newFixture(t, sshca.Config{})
	now := t0.Add(123456789 * time.Nanosecond)
	cert, rec := f.issue(t, sshca.Options{}, now)

	if cert.CertType != ssh.UserCert {
		t.Errorf("cert type %d, want user", cert.CertType)
	}
	if !slices.Equal(cert.ValidPrincipals, []string{"dba@db-prod"}) {
		t.Errorf("principals %q, want exactly [dba@db-prod]", cert.ValidPrincipals)
	}
	if cert.KeyId != "alice/grt_1" {
		t.Errorf("key id %q", cert.KeyId)
	}
	if cert.Serial == 0 {
		t.Error("serial 0")
	}
	// ValidAfter: now − 30 s rounded up to the second; ValidBefore: now +
	// 10 min rounded down.
	if got, want := time.Unix(int64(cert.ValidAfter), 0), t0.Add(-30*time.Second+time.Second); !got.Equal(want) {
		t.Errorf("valid after %v, want %v", got.UTC(), want)
	}
	if got, want := time.Unix(int64(cert.ValidBefore), 0), t0.Add(sshca.DefaultTTL); !got.Equal(want) {
		t.Errorf("valid before %v, want %v", got.UTC(), want)
	}
	if len(cert.CriticalOptions) != 0 {
		t.Errorf("critical options %v, want none", cert.CriticalOptions)
	}
	if len(cert.Extensions) != 1 || cert.Extensions[sshca.ExtPTY] != "" {
		t.Errorf("extensions %v, want permit-pty only", cert.Extensions)
	}
	if !bytesEqual(cert.Key.Marshal(), f.key.Marshal()) {
		t.Error("certified key differs from the given one")
	}
	if !bytesEqual(cert.SignatureKey.Marshal(), f.caPub.Marshal()) {
		t.Error("signature key is not the CA's")
	}
	// The certificate verifies as a user certificate of this CA for the
	// principal at now, the way sshd checks it.
	checker := &ssh.CertChecker{
		IsUserAuthority: func(k ssh.PublicKey) bool { return bytesEqual(k.Marshal(), f.caPub.Marshal()) },
		Clock:           func() time.Time { return now },
	}
	if err := checker.CheckCert("dba@db-prod", cert); err != nil {
		t.Errorf("CheckCert: %v", err)
	}
	if err := checker.CheckCert("root", cert); err == nil {
		t.Error("CheckCert accepted another principal")
	}

	// The record is the certificate.
	want := &airlock.SSHCertificate{Serial: cert.Serial, KeyID: "alice/grt_1", GrantID: "grt_1", UserID: "usr_1", SessionID: "ses_1",
		Principals: []string{"dba@db-prod"}, PublicKey: ssh.FingerprintSHA256(f.key),
		ValidAfter: time.Unix(int64(cert.ValidAfter), 0).UTC(), ValidBefore: time.Unix(int64(cert.ValidBefore), 0).UTC(),
		Extensions: []string{sshca.ExtPTY}, IssuedAt: now}
	if !recordsEqual(rec, want) {
		t.Errorf("record\n got %+v\nwant %+v", rec, want)
	}
	if len(f.store.certs) != 1 || !recordsEqual(f.store.certs[0], want) {
		t.Errorf("stored %+v", f.store.certs)
	}
	if !strings.HasPrefix(sshca.MarshalCertificate(cert), "ssh-ed25519-cert-v01@openssh.com ") {
		t.Errorf("MarshalCertificate: %q", sshca.MarshalCertificate(cert))
	}
	if !strings.HasSuffix(f.ca.AuthorizedKey(), " airlock-ssh-ca\n") || !strings.HasPrefix(f.ca.AuthorizedKey(), "ssh-ed25519 ") {
		t.Errorf("AuthorizedKey %q", f.ca.AuthorizedKey())
	}
}

func TestIssueTierPrincipal(t *testing.T) {
	f := newFixture(t, sshca.Config{})
	f.grant.Scope = airlock.Scope{Tier: 1, IsTier: true}
	cert, rec := f.issue(t, sshca.Options{}, t0)
	if !slices.Equal(cert.ValidPrincipals, []string{"tier:1"}) || !slices.Equal(rec.Principals, []string{"tier:1"}) {
		t.Errorf("principals %q / %q", cert.ValidPrincipals, rec.Principals)
	}
}

// TestIssueValidityWithinGrant: the certificate's window never reaches
// outside the grant's, whatever the TTL and rounding.
func TestIssueValidityWithinGrant(t *testing.T) {
	cases := []struct {
		name          string
		ttl           time.Duration
		notBefore     time.Time
		notAfter      time.Time
		now           time.Time
		after, before time.Time
	}{
		{"ok-ttl-bounds", 0, t0.Add(-time.Hour), t0.Add(time.Hour), t0, t0.Add(-30 * time.Second), t0.Add(10 * time.Minute)},
		{"ok-grant-end-bounds", 0, t0.Add(-time.Hour), t0.Add(3 * time.Minute), t0, t0.Add(-30 * time.Second), t0.Add(3 * time.Minute)},
		{"ok-grant-start-bounds", 0, t0.Add(-10 * time.Second), t0.Add(time.Hour), t0, t0.Add(-10 * time.Second), t0.Add(10 * time.Minute)},
		{"ok-fractional-end-rounds-down", 0, t0.Add(-time.Hour), t0.Add(90*time.Second + 999*time.Millisecond), t0, t0.Add(-30 * time.Second), t0.Add(90 * time.Second)},
		{"ok-fractional-start-rounds-up", 0, t0.Add(-10*time.Second + time.Millisecond), t0.Add(time.Hour), t0, t0.Add(-9 * time.Second), t0.Add(10 * time.Minute)},
		{"ok-short-ttl", 2 * time.Second, t0.Add(-time.Hour), t0.Add(time.Hour), t0, t0.Add(-30 * time.Second), t0.Add(2 * time.Second)},
		{"ok-long-ttl-capped-by-grant", 24 * time.Hour, t0.Add(-time.Hour), t0.Add(time.Hour), t0, t0.Add(-30 * time.Second), t0.Add(time.Hour)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, sshca.Config{TTL: c.ttl})
			f.grant.NotBefore, f.grant.NotAfter = c.notBefore, c.notAfter
			cert, rec := f.issue(t, sshca.Options{}, c.now)
			after, before := time.Unix(int64(cert.ValidAfter), 0), time.Unix(int64(cert.ValidBefore), 0)
			if !after.Equal(c.after) || !before.Equal(c.before) {
				t.Errorf("window [%v, %v), want [%v, %v)", after.UTC(), before.UTC(), c.after, c.before)
			}
			if after.Before(f.grant.NotBefore) || before.After(f.grant.NotAfter) {
				t.Errorf("window [%v, %v) outside the grant's [%v, %v)", after.UTC(), before.UTC(), f.grant.NotBefore, f.grant.NotAfter)
			}
			if !rec.ValidAfter.Equal(after) || !rec.ValidBefore.Equal(before) {
				t.Errorf("record window [%v, %v)", rec.ValidAfter, rec.ValidBefore)
			}
		})
	}
}

func TestIssueExtensions(t *testing.T) {
	cases := []struct {
		name string
		opts sshca.Options
		want []string
	}{
		{"ok-pty-only", sshca.Options{}, []string{"permit-pty"}},
		{"ok-agent", sshca.Options{AgentForwarding: true}, []string{"permit-agent-forwarding", "permit-pty"}},
		{"ok-ports", sshca.Options{PortForwarding: true}, []string{"permit-port-forwarding", "permit-pty"}},
		{"ok-both", sshca.Options{AgentForwarding: true, PortForwarding: true}, []string{"permit-agent-forwarding", "permit-port-forwarding", "permit-pty"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, sshca.Config{})
			cert, rec := f.issue(t, c.opts, t0)
			var got []string
			for e := range cert.Extensions {
				got = append(got, e)
			}
			slices.Sort(got)
			if !slices.Equal(got, c.want) || !slices.Equal(rec.Extensions, c.want) {
				t.Errorf("extensions %q (record %q), want %q", got, rec.Extensions, c.want)
			}
			for _, never := range []string{"permit-user-rc", "permit-X11-forwarding"} {
				if _, ok := cert.Extensions[never]; ok {
					t.Errorf("%s present", never)
				}
			}
		})
	}
}

func TestIssueSourceAddress(t *testing.T) {
	cases := []struct {
		name, ip, want string
	}{
		{"ok-ipv4", "192.0.2.7", "192.0.2.7/32"},
		{"ok-ipv6", "2001:db8::7", "2001:db8::7/128"},
		{"ok-ipv4-mapped", "::ffff:192.0.2.7", "192.0.2.7/32"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, sshca.Config{SourceAddress: true})
			f.sess.IP = c.ip
			cert, rec := f.issue(t, sshca.Options{}, t0)
			if got := cert.CriticalOptions[sshca.OptSourceAddress]; got != c.want || rec.SourceAddress != c.want || len(cert.CriticalOptions) != 1 {
				t.Errorf("source-address %q (record %q, options %v), want %q", got, rec.SourceAddress, cert.CriticalOptions, c.want)
			}
		})
	}
	t.Run("fail-no-session-ip", func(t *testing.T) {
		f := newFixture(t, sshca.Config{SourceAddress: true})
		f.sess.IP = ""
		_, _, err := f.ca.Issue(context.Background(), f.grant, f.user, f.sess, f.key, sshca.Options{}, t0)
		if airlock.ErrorCode(err) != airlock.EINVALID {
			t.Errorf("err %v, want EINVALID", err)
		}
		if len(f.store.certs) != 0 {
			t.Error("a refused certificate was recorded")
		}
	})
	t.Run("ok-off-by-default", func(t *testing.T) {
		f := newFixture(t, sshca.Config{})
		cert, rec := f.issue(t, sshca.Options{}, t0)
		if _, ok := cert.CriticalOptions[sshca.OptSourceAddress]; ok || rec.SourceAddress != "" {
			t.Error("source-address set although not configured")
		}
	})
}

func TestIssueRefusals(t *testing.T) {
	cases := []struct {
		name string
		mod  func(f *fixture)
		now  time.Time
		code string
	}{
		{"fail-grant-ended", func(f *fixture) { f.grant.EndedAt, f.grant.EndReason = t0.Add(-time.Second), airlock.EndDone }, t0, airlock.EEXPIRED},
		{"fail-grant-expired", func(f *fixture) { f.grant.NotAfter = t0 }, t0, airlock.EEXPIRED},
		{"fail-grant-not-started", func(f *fixture) { f.grant.NotBefore = t0.Add(time.Second) }, t0, airlock.EFORBIDDEN},
		{"fail-window-under-a-second", func(f *fixture) { f.grant.NotAfter = t0.Add(900 * time.Millisecond) }, t0.Add(100 * time.Millisecond), airlock.EEXPIRED},
		{"fail-other-users-grant", func(f *fixture) { f.grant.UserID = "usr_2" }, t0, airlock.EFORBIDDEN},
		{"fail-no-scope", func(f *fixture) { f.grant.Scope = airlock.Scope{} }, t0, airlock.EINVALID},
		{"fail-scope-not-a-principal", func(f *fixture) { f.grant.Scope = airlock.Scope{Role: "dba,root", Resource: "db"} }, t0, airlock.EINVALID},
		{"fail-key-id-with-space", func(f *fixture) { f.user.Name = "alice smith" }, t0, airlock.EINVALID},
		{"fail-nil-key", func(f *fixture) { f.key = nil }, t0, airlock.EINVALID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, sshca.Config{})
			c.mod(f)
			cert, rec, err := f.ca.Issue(context.Background(), f.grant, f.user, f.sess, f.key, sshca.Options{}, c.now)
			if err == nil || cert != nil || rec != nil {
				t.Fatalf("issued (%v, %v)", cert, rec)
			}
			if airlock.ErrorCode(err) != c.code {
				t.Errorf("err %v, want %s", err, c.code)
			}
			if f.store.calls != 0 {
				t.Error("a refused certificate reached the store")
			}
		})
	}
}

func TestCheckPublicKey(t *testing.T) {
	rsaKey := func(bits int) ssh.PublicKey {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ssh.NewPublicKey(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ecKey := func(c elliptic.Curve) ssh.PublicKey {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ssh.NewPublicKey(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	f := newFixture(t, sshca.Config{})
	certAsKey, _ := f.issue(t, sshca.Options{}, t0)
	cases := []struct {
		name string
		key  ssh.PublicKey
		ok   bool
	}{
		{"ok-ed25519", edKey(t), true},
		{"ok-ecdsa-p256", ecKey(elliptic.P256()), true},
		{"ok-ecdsa-p384", ecKey(elliptic.P384()), true},
		{"ok-ecdsa-p521", ecKey(elliptic.P521()), true},
		{"ok-rsa-3072", rsaKey(3072), true},
		{"ok-sk-ed25519", skEd25519Key(t), true},
		{"fail-rsa-2048", rsaKey(2048), false},
		{"fail-dsa", dsaKey(t), false},
		{"fail-certificate", certAsKey, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := sshca.CheckPublicKey(c.key)
			if c.ok != (err == nil) {
				t.Fatalf("CheckPublicKey(%s) = %v", c.key.Type(), err)
			}
			if !c.ok && airlock.ErrorCode(err) != airlock.EINVALID {
				t.Errorf("code %s, want EINVALID", airlock.ErrorCode(err))
			}
			// Issue applies the same check before anything is signed.
			g := newFixture(t, sshca.Config{})
			_, _, err = g.ca.Issue(context.Background(), g.grant, g.user, g.sess, c.key, sshca.Options{}, t0)
			if c.ok != (err == nil) {
				t.Errorf("Issue with %s: %v", c.key.Type(), err)
			}
		})
	}
}

func skEd25519Key(t testing.TB) ssh.PublicKey {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wire := ssh.Marshal(struct {
		Name        string
		Key         []byte
		Application string
	}{ssh.KeyAlgoSKED25519, pub, "ssh:"})
	k, err := ssh.ParsePublicKey(wire)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func dsaKey(t testing.TB) ssh.PublicKey {
	var k dsa.PrivateKey
	// DSA (deprecated) is generated only to test that it is refused.
	if err := dsa.GenerateParameters(&k.Parameters, rand.Reader, dsa.L1024N160); err != nil {
		t.Fatal(err)
	}
	if err := dsa.GenerateKey(&k, rand.Reader); err != nil {
		t.Fatal(err)
	}
	p, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParsePublicKey(t *testing.T) {
	good := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(edKey(t))))
	cases := []struct {
		name, line string
		ok         bool
	}{
		{"ok-bare", good, true},
		{"ok-comment", good + " alice@laptop", true},
		{"ok-trailing-newline", good + "\n", true},
		{"fail-empty", "", false},
		{"fail-options", `command="/bin/sh" ` + good, false},
		{"fail-two-lines", good + "\n" + good, false},
		{"fail-garbage", "ssh-ed25519 AAAA!!!!", false},
		{"fail-private-key", "-----BEGIN OPENSSH PRIVATE KEY-----", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := sshca.ParsePublicKey(c.line)
			if c.ok != (err == nil) {
				t.Fatalf("ParsePublicKey: %v", err)
			}
			if !c.ok && airlock.ErrorCode(err) != airlock.EINVALID {
				t.Errorf("code %s", airlock.ErrorCode(err))
			}
		})
	}
}

// TestIssueUniqueSerials: many certificates, no serial twice, none zero.
func TestIssueUniqueSerials(t *testing.T) {
	f := newFixture(t, sshca.Config{})
	seen := map[uint64]bool{}
	for i := range 2000 {
		cert, rec := f.issue(t, sshca.Options{}, t0.Add(time.Duration(i)*time.Millisecond))
		if cert.Serial == 0 || seen[cert.Serial] || rec.Serial != cert.Serial {
			t.Fatalf("issue %d: serial %d (record %d) repeated or zero", i, cert.Serial, rec.Serial)
		}
		seen[cert.Serial] = true
	}
}

// TestIssueSerialConflict: a serial the store already holds is drawn again;
// the store keeps refusing ⇒ Issue gives up with the store's error.
func TestIssueSerialConflict(t *testing.T) {
	t.Run("ok-redrawn", func(t *testing.T) {
		f := newFixture(t, sshca.Config{})
		var tried []uint64
		f.store.Create = func(c *airlock.SSHCertificate) error {
			tried = append(tried, c.Serial)
			if len(tried) == 1 {
				return airlock.Errorf(airlock.ECONFLICT, "taken")
			}
			return nil
		}
		cert, rec := f.issue(t, sshca.Options{}, t0)
		if len(tried) != 2 || tried[0] == tried[1] || cert.Serial != tried[1] || rec.Serial != tried[1] {
			t.Errorf("tried %v, issued %d", tried, cert.Serial)
		}
	})
	t.Run("fail-always-taken", func(t *testing.T) {
		f := newFixture(t, sshca.Config{})
		f.store.Create = func(*airlock.SSHCertificate) error { return airlock.Errorf(airlock.ECONFLICT, "taken") }
		_, _, err := f.ca.Issue(context.Background(), f.grant, f.user, f.sess, f.key, sshca.Options{}, t0)
		if airlock.ErrorCode(err) != airlock.ECONFLICT || f.store.calls != 4 {
			t.Errorf("err %v after %d calls", err, f.store.calls)
		}
	})
	t.Run("fail-store-down", func(t *testing.T) {
		f := newFixture(t, sshca.Config{})
		f.store.Create = func(*airlock.SSHCertificate) error { return airlock.Errorf(airlock.EUNAVAILABLE, "down") }
		cert, _, err := f.ca.Issue(context.Background(), f.grant, f.user, f.sess, f.key, sshca.Options{}, t0)
		if cert != nil || airlock.ErrorCode(err) != airlock.EUNAVAILABLE || f.store.calls != 1 {
			t.Errorf("cert %v err %v calls %d", cert, err, f.store.calls)
		}
	})
}

func TestNew(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := sshca.New(key[:10], &fakeStore{}, sshca.Config{}); err == nil {
		t.Error("short key accepted")
	}
	if _, err := sshca.New(key, nil, sshca.Config{}); err == nil {
		t.Error("nil store accepted")
	}
	if _, err := sshca.New(key, &fakeStore{}, sshca.Config{TTL: -time.Second}); err == nil {
		t.Error("negative ttl accepted")
	}
	ca, err := sshca.New(key, &fakeStore{}, sshca.Config{})
	if err != nil || ca.TTL() != sshca.DefaultTTL {
		t.Errorf("New: %v, ttl %v", err, ca.TTL())
	}
}

func TestLoadOrCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "sshca.key")
	if _, err := sshca.Load(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing file: %v", err)
	}
	k1, created, err := sshca.LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("LoadOrCreate: %v created=%v", err, created)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
	k2, created, err := sshca.LoadOrCreate(path)
	if err != nil || created || !k1.Equal(k2) {
		t.Fatalf("second LoadOrCreate: %v created=%v same=%v", err, created, k1.Equal(k2))
	}
	k3, err := sshca.Load(path)
	if err != nil || !k1.Equal(k3) {
		t.Fatalf("Load: %v", err)
	}
	// ssh-keygen reads the file (an OpenSSH private key).
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "-----BEGIN OPENSSH PRIVATE KEY-----") {
		t.Errorf("file is not an OpenSSH key: %.40q", b)
	}

	t.Run("fail-encrypted", func(t *testing.T) {
		blk, err := ssh.MarshalPrivateKeyWithPassphrase(k1, "", []byte("secret"))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "enc.key")
		os.WriteFile(p, pem.EncodeToMemory(blk), 0o600)
		if _, err := sshca.Load(p); err == nil || !strings.Contains(err.Error(), "encrypted") {
			t.Errorf("Load: %v", err)
		}
	})
	t.Run("fail-not-ed25519", func(t *testing.T) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		blk, err := ssh.MarshalPrivateKey(k, "")
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "ec.key")
		os.WriteFile(p, pem.EncodeToMemory(blk), 0o600)
		if _, err := sshca.Load(p); err == nil || !strings.Contains(err.Error(), "Ed25519") {
			t.Errorf("Load: %v", err)
		}
	})
	t.Run("fail-garbage", func(t *testing.T) {
		p := filepath.Join(dir, "junk.key")
		os.WriteFile(p, []byte("not a key"), 0o600)
		if _, _, err := sshca.LoadOrCreate(p); err == nil {
			t.Error("LoadOrCreate replaced or accepted a garbage file")
		}
		if b, _ := os.ReadFile(p); string(b) != "not a key" {
			t.Error("garbage key file was overwritten")
		}
	})
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

func recordsEqual(a, b *airlock.SSHCertificate) bool {
	return a.Serial == b.Serial && a.KeyID == b.KeyID && a.GrantID == b.GrantID && a.UserID == b.UserID &&
		a.SessionID == b.SessionID && slices.Equal(a.Principals, b.Principals) && a.PublicKey == b.PublicKey &&
		a.ValidAfter.Equal(b.ValidAfter) && a.ValidBefore.Equal(b.ValidBefore) && a.SourceAddress == b.SourceAddress &&
		slices.Equal(a.Extensions, b.Extensions) && a.IssuedAt.Equal(b.IssuedAt)
}
