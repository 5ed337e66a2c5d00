package passkey

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"airlock"
	"airlock/passkey/passkeytest"
)

// Attestation CAs shared by the tests: testCA is the configured trust root
// (its PEM at testRootsFile), testIntermediate is issued by it, otherCA is
// a root nobody configured.
var (
	testCA, otherCA, testIntermediate          *x509.Certificate
	testCAKey, otherCAKey, testIntermediateKey crypto.Signer
	testRootsFile                              string
	testRootsDir                               string
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	var err error
	must := func(err error) {
		if err != nil {
			fmt.Fprintln(os.Stderr, "passkey tests:", err)
			os.Exit(2)
		}
	}
	testCA, testCAKey, err = passkeytest.NewAttestationCA("Airlock Test Attestation Root", nil, nil)
	must(err)
	otherCA, otherCAKey, err = passkeytest.NewAttestationCA("Someone Else's Root", nil, nil)
	must(err)
	testIntermediate, testIntermediateKey, err = passkeytest.NewAttestationCA("Airlock Test Attestation Intermediate", testCA, testCAKey)
	must(err)
	testRootsDir, err = os.MkdirTemp("", "airlock-passkey-test-")
	must(err)
	defer os.RemoveAll(testRootsDir)
	testRootsFile = filepath.Join(testRootsDir, "roots.pem")
	must(os.WriteFile(testRootsFile, passkeytest.CertificatesPEM(testCA), 0o600))
	return m.Run()
}

// withCA makes Register send packed full attestation issued by testCA.
func withCA() passkeytest.Option { return passkeytest.WithAttestationCA(testCA, testCAKey) }

// requireAttestation makes tier t require attestation chaining to testCA.
func requireAttestation(c *Config, t int) {
	c.Tiers[t].RequireAttestation = true
	c.Tiers[t].AttestationRoots = []string{testRootsFile}
}

func TestNewAttestationRoots(t *testing.T) {
	h := newHarness(t, nil)
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name, want string
		mod        func(*Config)
	}{
		{"fail-require-attestation-without-roots", "tiers[1].require_attestation needs attestation_roots: without a trust root an attestation proves nothing",
			func(c *Config) { c.Tiers[1].RequireAttestation = true }},
		{"fail-roots-file-unreadable", "tiers[0].attestation_roots: cannot read " + missing,
			func(c *Config) { c.Tiers[0].AttestationRoots = []string{testRootsFile, missing} }},
		{"fail-roots-file-unreadable-is-a-directory", "cannot read " + dir,
			func(c *Config) { c.Tiers[2].AttestationRoots = []string{dir} }},
		{"fail-roots-file-without-certificate", "tiers[0].attestation_roots: " + junk + " holds no PEM CERTIFICATE",
			func(c *Config) { requireAttestation(c, 0); c.Tiers[0].AttestationRoots = []string{junk} }},
		{"fail-roots-file-with-a-bad-certificate", bad + ": certificate 1",
			func(c *Config) { c.Tiers[0].AttestationRoots = []string{bad} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			tc.mod(&cfg)
			_, err := New(cfg, h.store, h.aud, h.not)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v; want an error containing %q", err, tc.want)
			}
		})
	}
	t.Run("ok-roots-without-require", func(t *testing.T) {
		cfg := testConfig()
		cfg.Tiers[2].AttestationRoots = []string{testRootsFile}
		if _, err := New(cfg, h.store, h.aud, h.not); err != nil {
			t.Fatal(err)
		}
	})
}

// TestLoginAttestationPolicy: at login the tier policy is re-checked with
// the attestation verdict stored at enrolment (AttestationTrusted).
func TestLoginAttestationPolicy(t *testing.T) {
	h := newHarness(t, func(c *Config) { requireAttestation(c, 0) })
	u := h.user("alice", 0)
	d := h.device("laptop", u.ID)

	trustedAuth := passkeytest.New()
	res, _ := h.enrol(trustedAuth, u, d, withCA())
	if !res.Credential.AttestationTrusted || res.Credential.TierCap != 0 || res.Credential.AttestationType != "basic_full" {
		t.Fatalf("CA-attested credential: trusted %t cap %d type %q", res.Credential.AttestationTrusted, res.Credential.TierCap, res.Credential.AttestationType)
	}
	if c := h.credential(res.Credential.ID); !c.AttestationTrusted {
		t.Fatal("AttestationTrusted not stored")
	}
	lr, err := h.login(trustedAuth)
	if err != nil || lr.Tier != 0 {
		t.Fatalf("login with the trusted credential: %v, tier %v; want tier 0", err, lr)
	}

	selfAuth := passkeytest.New()
	res, _ = h.enrol(selfAuth, u, d)
	if res.Credential.AttestationTrusted || res.Credential.TierCap != 1 {
		t.Fatalf("self-attested credential: trusted %t cap %d; want untrusted, cap 1", res.Credential.AttestationTrusted, res.Credential.TierCap)
	}

	// A credential stored with cap 0 but without a trusted attestation
	// (enrolled before tier 0 required attestation) gets tier 1 now.
	cfg := h.cfg
	cfg.Tiers[0] = TierPolicy{}
	lax, err := New(cfg, h.store, h.aud, h.not)
	if err != nil {
		t.Fatal(err)
	}
	strict := h.svc
	h.svc = lax
	laxAuth := passkeytest.New()
	res, _ = h.enrol(laxAuth, u, d)
	if res.Credential.TierCap != 0 || res.Credential.AttestationTrusted {
		t.Fatalf("lax enrolment: cap %d trusted %t", res.Credential.TierCap, res.Credential.AttestationTrusted)
	}
	h.svc = strict
	lr, err = h.login(laxAuth)
	if err != nil || lr.Tier != 1 {
		t.Fatalf("login with an untrusted cap-0 credential under the strict policy: %v; want tier 1", err)
	}
	// And where no tier below would take it, it is refused.
	cfg = h.cfg
	requireAttestation(&cfg, 1)
	requireAttestation(&cfg, 2)
	all, err := New(cfg, h.store, h.aud, h.not)
	if err != nil {
		t.Fatal(err)
	}
	h.svc = all
	_, err = h.login(laxAuth)
	wantErr(t, err, airlock.EFORBIDDEN, ReasonTierPolicy)
	if lr, err := h.login(trustedAuth); err != nil || lr.Tier != 0 {
		t.Fatalf("trusted credential under attestation everywhere: %v", err)
	}
}
