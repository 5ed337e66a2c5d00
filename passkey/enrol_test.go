package passkey

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"airlock"
	"airlock/passkey/passkeytest"
)

var (
	listedAAGUID   = uuid.MustParse("11111111-2222-3333-4444-555555555555")
	unlistedAAGUID = uuid.MustParse("99999999-8888-7777-6666-555555555555")
)

func requireAttestationEverywhere(c *Config) {
	for t := range c.Tiers {
		c.Tiers[t] = TierPolicy{AllowSynced: t == 2, RequireAttestation: true, AttestationRoots: []string{testRootsFile},
			AAGUIDs: []string{strings.ToUpper(listedAAGUID.String())}}
	}
}

// aaguidListEverywhere enforces the AAGUID allow-list on every tier
// without requiring attestation.
func aaguidListEverywhere(c *Config) {
	for t := range c.Tiers {
		c.Tiers[t].AAGUIDs = []string{listedAAGUID.String()}
	}
}

// TestFinishEnrol covers WebAuthn L3 §7.1 and the tier rules (acceptance
// checks 1–7 and 10 on the registration side). Every "fail-" case also
// checks that nothing changed: no credential, token unused, no
// notification, an "enrol.failed" audit record with the reason, and the
// ceremony spent.
func TestFinishEnrol(t *testing.T) {
	type env struct {
		h *harness
		u *airlock.User
		d *airlock.Device
	}
	tests := []struct {
		name     string
		cfg      func(*Config)
		tier     airlock.Tier
		auth     func(*passkeytest.Authenticator)
		opts     []passkeytest.Option
		origin   string
		between  func(e env) // after begin, before finish
		mutate   func(tb testing.TB, resp []byte) []byte
		code     string
		reason   Reason
		wantCap  airlock.Tier
		wantBE   bool
		wantAtt  string
		wantAAGU string
		wantType string // attestation type, if set
		trusted  bool   // want AttestationTrusted
		wantMsg  string // substring of the error message
	}{
		{name: "ok-device-bound-tier0", tier: 0, wantCap: 0, wantAtt: "packed"},
		{name: "ok-device-bound-tier1", tier: 1, wantCap: 1, wantAtt: "packed"},
		{name: "ok-synced-tier2", tier: 2, auth: synced, wantCap: 2, wantBE: true, wantAtt: "packed"},
		{name: "ok-synced-tier0-user-capped-at-tier2", tier: 0, auth: synced, wantCap: 2, wantBE: true, wantAtt: "packed"},
		{name: "ok-synced-not-backed-up-still-capped", tier: 0, opts: []passkeytest.Option{passkeytest.WithFlags(passkeytest.Flags{BackupEligible: true})}, wantCap: 2, wantBE: true, wantAtt: "packed"},
		{name: "ok-eddsa", tier: 0, opts: []passkeytest.Option{passkeytest.WithAlg(passkeytest.EdDSA)}, wantCap: 0, wantAtt: "packed"},
		{name: "ok-rs256", tier: 0, opts: []passkeytest.Option{passkeytest.WithAlg(passkeytest.RS256)}, wantCap: 0, wantAtt: "packed"},
		{name: "ok-attestation-none-where-not-required", tier: 0, opts: []passkeytest.Option{passkeytest.WithFormat("none")}, wantCap: 0, wantAtt: "none"},
		{name: "ok-credential-id-1023-bytes", tier: 0, opts: []passkeytest.Option{passkeytest.WithCredentialIDLength(1023)}, wantCap: 0, wantAtt: "packed"},
		{name: "ok-self-attestation-recorded-untrusted", tier: 0, wantCap: 0, wantAtt: "packed", wantType: "basic_surrogate"},
		// W7: attestation verified against the configured trust.
		{name: "ok-aaguid-on-allow-list", tier: 0, cfg: requireAttestationEverywhere,
			opts:    []passkeytest.Option{passkeytest.WithAAGUID(listedAAGUID), withCA()},
			wantCap: 0, wantAtt: "packed", wantAAGU: listedAAGUID.String(), wantType: "basic_full", trusted: true},
		{name: "ok-chain-through-intermediate", tier: 0, cfg: requireAttestationEverywhere,
			opts:    []passkeytest.Option{passkeytest.WithAAGUID(listedAAGUID), passkeytest.WithAttestationCA(testIntermediate, testIntermediateKey)},
			wantCap: 0, wantAtt: "packed", wantType: "basic_full", trusted: true},
		{name: "ok-ca-attestation-trusted-where-roots-but-not-required", tier: 0,
			cfg:  func(c *Config) { c.Tiers[2].AttestationRoots = []string{testRootsFile} },
			opts: []passkeytest.Option{withCA()}, wantCap: 0, wantAtt: "packed", wantType: "basic_full", trusted: true},
		{name: "ok-self-signed-batch-untrusted-where-not-required", tier: 0,
			cfg:  func(c *Config) { c.Tiers[2].AttestationRoots = []string{testRootsFile} },
			opts: []passkeytest.Option{passkeytest.WithSelfSignedBatchCertificate()}, wantCap: 0, wantAtt: "packed", wantType: "basic_full"},
		{name: "ok-aaguid-off-tier0-list-falls-to-tier1", tier: 0,
			cfg: func(c *Config) {
				c.Tiers[0] = TierPolicy{RequireAttestation: true, AttestationRoots: []string{testRootsFile}, AAGUIDs: []string{listedAAGUID.String()}}
			},
			opts: []passkeytest.Option{passkeytest.WithAAGUID(unlistedAAGUID), withCA()}, wantCap: 1, wantAtt: "packed", trusted: true},
		{name: "ok-attestation-none-falls-below-attested-tier0", tier: 0,
			cfg:  func(c *Config) { requireAttestation(c, 0) },
			opts: []passkeytest.Option{passkeytest.WithFormat("none")}, wantCap: 1, wantAtt: "none", wantType: "none"},
		{name: "ok-self-attestation-falls-below-attested-tier0", tier: 0,
			cfg:  func(c *Config) { requireAttestation(c, 0) },
			opts: []passkeytest.Option{passkeytest.WithAAGUID(listedAAGUID)}, wantCap: 1, wantAtt: "packed", wantType: "basic_surrogate"},
		{name: "ok-origin-case-insensitive-host", tier: 0, origin: "https://AIRLOCK.example.com", wantCap: 0, wantAtt: "packed"},

		// W1
		{name: "fail-clientdata-type-get", opts: []passkeytest.Option{passkeytest.WithClientDataType("webauthn.get")}, code: airlock.EUNAUTHORIZED, reason: ReasonBadType},
		{name: "fail-clientdata-type-other", opts: []passkeytest.Option{passkeytest.WithClientDataType("payment.get")}, code: airlock.EUNAUTHORIZED, reason: ReasonBadType},
		// W2
		{name: "fail-other-challenge", opts: []passkeytest.Option{passkeytest.WithChallenge(bytes.Repeat([]byte{7}, 32))}, code: airlock.EUNAUTHORIZED, reason: ReasonBadChallenge},
		// W3
		{name: "fail-origin-other-host", origin: "https://evil.example.com", code: airlock.EUNAUTHORIZED, reason: ReasonBadOrigin},
		{name: "fail-origin-other-port", origin: "https://airlock.example.com:8443", code: airlock.EUNAUTHORIZED, reason: ReasonBadOrigin},
		{name: "fail-origin-other-scheme", origin: "http://airlock.example.com", code: airlock.EUNAUTHORIZED, reason: ReasonBadOrigin},
		{name: "fail-origin-with-path", origin: testOrigin + "/enrol", code: airlock.EUNAUTHORIZED, reason: ReasonBadOrigin, wantMsg: "has a path"},
		{name: "fail-origin-with-slash", origin: testOrigin + "/", code: airlock.EUNAUTHORIZED, reason: ReasonBadOrigin, wantMsg: "has a path"},
		{name: "fail-origin-with-query", origin: testOrigin + "?a=1", code: airlock.EUNAUTHORIZED, reason: ReasonBadOrigin, wantMsg: "has a query"},
		{name: "fail-origin-with-empty-query", origin: testOrigin + "?", code: airlock.EUNAUTHORIZED, reason: ReasonBadOrigin, wantMsg: "has a query"},
		{name: "fail-origin-with-fragment", origin: testOrigin + "#x", code: airlock.EUNAUTHORIZED, reason: ReasonBadOrigin, wantMsg: "has a fragment"},
		{name: "fail-origin-with-userinfo", origin: "https://mallory@airlock.example.com", code: airlock.EUNAUTHORIZED, reason: ReasonBadOrigin, wantMsg: "has user info"},
		{name: "fail-top-origin-outside-allow-list", opts: []passkeytest.Option{passkeytest.WithTopOrigin("https://evil.example.com")}, code: airlock.EUNAUTHORIZED, reason: ReasonBadTopOrigin},
		{name: "fail-cross-origin-iframe", opts: []passkeytest.Option{passkeytest.WithCrossOrigin()}, code: airlock.EUNAUTHORIZED, reason: ReasonCrossOrigin},
		// W4
		{name: "fail-rpidhash-other-rp", opts: []passkeytest.Option{passkeytest.WithRPID("evil.example.com")}, code: airlock.EUNAUTHORIZED, reason: ReasonBadRPID},
		{name: "fail-rpidhash-parent-domain", opts: []passkeytest.Option{passkeytest.WithRPID("example.com")}, code: airlock.EUNAUTHORIZED, reason: ReasonBadRPID},
		// W5
		{name: "fail-up-0", opts: []passkeytest.Option{passkeytest.WithFlags(passkeytest.Flags{NoUserPresence: true})}, code: airlock.EUNAUTHORIZED, reason: ReasonUPMissing},
		{name: "fail-uv-0", opts: []passkeytest.Option{passkeytest.WithFlags(passkeytest.Flags{NoUserVerification: true})}, code: airlock.EUNAUTHORIZED, reason: ReasonUVMissing},
		// W6
		{name: "fail-be0-bs1", opts: []passkeytest.Option{passkeytest.WithFlags(passkeytest.Flags{BackupState: true})}, code: airlock.EINVALID, reason: ReasonBadBackupFlags},
		// W7
		{name: "fail-algorithm-not-offered-es384", opts: []passkeytest.Option{passkeytest.WithAlg(passkeytest.ES384)}, code: airlock.EINVALID, reason: ReasonAlgNotOffered},
		{name: "fail-attestation-signature", opts: []passkeytest.Option{passkeytest.WithBadSignature()}, code: airlock.EUNAUTHORIZED, reason: ReasonBadAttestation},
		{name: "fail-aaguid-off-allow-list", cfg: requireAttestationEverywhere, opts: []passkeytest.Option{passkeytest.WithAAGUID(unlistedAAGUID), withCA()}, code: airlock.EFORBIDDEN, reason: ReasonTierPolicy},
		{name: "fail-aaguid-off-allow-list-without-require-attestation", cfg: aaguidListEverywhere, opts: []passkeytest.Option{passkeytest.WithAAGUID(unlistedAAGUID)}, code: airlock.EFORBIDDEN, reason: ReasonTierPolicy,
			wantMsg: "AAGUID " + unlistedAAGUID.String() + ") is not on its allow-list"},
		{name: "fail-attestation-none-where-required", cfg: requireAttestationEverywhere, opts: []passkeytest.Option{passkeytest.WithFormat("none"), passkeytest.WithAAGUID(listedAAGUID)}, code: airlock.EFORBIDDEN, reason: ReasonTierPolicy,
			wantMsg: "tier 0: it requires attestation and the authenticator sent none"},
		{name: "fail-self-attestation-where-required", cfg: requireAttestationEverywhere, opts: []passkeytest.Option{passkeytest.WithAAGUID(listedAAGUID)}, code: airlock.EFORBIDDEN, reason: ReasonTierPolicy,
			wantMsg: "tier 1: it requires attestation and the authenticator sent only self attestation"},
		{name: "fail-self-signed-batch-certificate-where-required", cfg: requireAttestationEverywhere,
			opts: []passkeytest.Option{passkeytest.WithAAGUID(listedAAGUID), passkeytest.WithSelfSignedBatchCertificate()}, code: airlock.EFORBIDDEN, reason: ReasonTierPolicy,
			wantMsg: "tier 2: it requires attestation and the attestation certificate does not chain to its attestation roots"},
		{name: "fail-chain-to-other-ca", cfg: requireAttestationEverywhere,
			opts: []passkeytest.Option{passkeytest.WithAAGUID(listedAAGUID), passkeytest.WithAttestationCA(otherCA, otherCAKey)}, code: airlock.EFORBIDDEN, reason: ReasonTierPolicy,
			wantMsg: "tier 0: it requires attestation and the attestation certificate does not chain to its attestation roots"},
		{name: "fail-full-attestation-bad-signature", cfg: requireAttestationEverywhere,
			opts: []passkeytest.Option{passkeytest.WithAAGUID(listedAAGUID), withCA(), passkeytest.WithBadSignature()}, code: airlock.EUNAUTHORIZED, reason: ReasonBadAttestation},
		{name: "fail-synced-where-no-tier-allows-it", cfg: func(c *Config) { c.Tiers[2].AllowSynced = false }, tier: 0, auth: synced, code: airlock.EFORBIDDEN, reason: ReasonTierPolicy},
		// W8
		{name: "fail-credential-id-1024-bytes", opts: []passkeytest.Option{passkeytest.WithCredentialIDLength(1024)}, code: airlock.EINVALID, reason: ReasonCredIDTooLong},
		// Ceremony and token
		{name: "fail-ceremony-expired", between: func(e env) { e.h.clk.Advance(DefaultCeremonyTTL) }, code: airlock.EEXPIRED, reason: ReasonExpired},
		{name: "fail-token-expired-at-finish", between: func(e env) { e.h.clk.Advance(2 * time.Minute) }, code: airlock.EEXPIRED, reason: ReasonTokenExpired},
		{name: "fail-device-revoked-between-begin-and-finish", between: func(e env) { e.h.setDeviceTrust(e.d, airlock.TrustRevoked) }, code: airlock.EFORBIDDEN, reason: ReasonDeviceNotCompliant},
		{name: "fail-device-posture-stale-at-finish", cfg: func(c *Config) { c.CeremonyTTL = 48 * time.Hour; c.TokenTTL = 72 * time.Hour },
			between: func(e env) { e.h.clk.Advance(25 * time.Hour) }, code: airlock.EFORBIDDEN, reason: ReasonDeviceNotCompliant},
		{name: "fail-user-disabled-between-begin-and-finish", between: func(e env) { e.h.disableUser(e.u) }, code: airlock.EFORBIDDEN, reason: ReasonUserDisabled},
		{name: "fail-device-reassigned-between-begin-and-finish", between: func(e env) { e.h.setDeviceOwner(e.d, "u-bob") }, code: airlock.EFORBIDDEN, reason: ReasonDeviceOwnerChanged,
			wantMsg: "device laptop no longer belongs to this user"},
		{name: "fail-garbage", mutate: func(testing.TB, []byte) []byte { return []byte(`{"id":`) }, code: airlock.EINVALID, reason: ReasonParse},
		{name: "fail-empty", mutate: func(testing.TB, []byte) []byte { return nil }, code: airlock.EINVALID, reason: ReasonParse},
		{name: "fail-rawid-differs-from-attested-id", mutate: func(tb testing.TB, resp []byte) []byte {
			return setJSON(tb, resp, func(m map[string]any) { m["id"], m["rawId"] = "AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAA" })
		}, code: airlock.EUNAUTHORIZED, reason: ReasonVerify},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cfg)
			u := h.user("alice", tt.tier)
			d := h.device("laptop", u.ID)
			secret, tok := h.token(u, d)
			if tt.name == "fail-token-expired-at-finish" {
				h.clk.Advance(DefaultTokenTTL - time.Minute) // begin just in time
			}
			id, opt := h.beginEnrol(secret)
			a := passkeytest.New()
			if tt.auth != nil {
				tt.auth(a)
			}
			origin := tt.origin
			if origin == "" {
				origin = testOrigin
			}
			resp, _, err := a.Register(origin, opt, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if tt.mutate != nil {
				resp = tt.mutate(t, resp)
			}
			if tt.between != nil {
				tt.between(env{h, u, d})
			}
			h.aud.reset()
			res, err := h.svc.FinishEnrol(h.ctx, id, resp, Meta{IP: "192.0.2.7", UserAgent: "ua"})

			if tt.code == "" {
				if err != nil {
					t.Fatalf("FinishEnrol: %v", err)
				}
				c := h.credential(res.Credential.ID)
				if c.TierCap != tt.wantCap || c.BackupEligible != tt.wantBE || c.AttestationFormat != tt.wantAtt || c.UserID != u.ID || c.DeviceID != d.ID {
					t.Fatalf("stored credential = cap %d be %t att %q user %s device %s; want cap %d be %t att %q", c.TierCap, c.BackupEligible, c.AttestationFormat, c.UserID, c.DeviceID, tt.wantCap, tt.wantBE, tt.wantAtt)
				}
				if c.AttestationTrusted != tt.trusted || res.Credential.AttestationTrusted != tt.trusted {
					t.Fatalf("AttestationTrusted = %t, want %t", c.AttestationTrusted, tt.trusted)
				}
				if tt.wantType != "" && c.AttestationType != tt.wantType {
					t.Fatalf("attestation type = %q, want %q", c.AttestationType, tt.wantType)
				}
				if tt.wantAAGU != "" && c.AAGUID != tt.wantAAGU {
					t.Fatalf("AAGUID = %s, want %s", c.AAGUID, tt.wantAAGU)
				}
				if _, err := uuid.Parse(c.AAGUID); err != nil || c.AAGUID != strings.ToLower(c.AAGUID) {
					t.Fatalf("AAGUID %q is not canonical UUID text", c.AAGUID)
				}
				if st, _ := h.store.FindEnrolmentTokenByID(h.ctx, tok.ID); st.UsedAt.IsZero() {
					t.Fatal("token not marked used")
				}
				ev := h.aud.ofType("enrol.passkey_added")
				if len(ev) != 1 || ev[0].Details["tier_cap"] != int(tt.wantCap) || ev[0].Details["be"] != tt.wantBE || ev[0].CredentialID == "" {
					t.Fatalf("audit enrol.passkey_added = %+v", ev)
				}
				// NIST SP 800-63B-4: binding notifies the user.
				if h.not.count() != 1 || h.not.calls[0].Kind != NotifyPasskeyAdded || h.not.calls[0].UserID != u.ID || h.not.calls[0].Payload["credential_id"] != ev[0].CredentialID {
					t.Fatalf("notifications = %+v", h.not.calls)
				}
				return
			}

			wantErr(t, err, tt.code, tt.reason)
			if !strings.Contains(airlock.ErrorMessage(err), tt.wantMsg) {
				t.Fatalf("message %q does not contain %q", airlock.ErrorMessage(err), tt.wantMsg)
			}
			assertNothingEnrolled(t, h, u, tok)
			ev := h.aud.ofType("enrol.failed")
			if len(ev) != 1 || ev[0].Reason != string(tt.reason) || ev[0].UserID != u.ID {
				t.Fatalf("audit enrol.failed = %+v", ev)
			}
			// W2: the ceremony was spent by the failed attempt.
			_, err = h.svc.FinishEnrol(h.ctx, id, resp, Meta{})
			wantErr(t, err, airlock.EUNAUTHORIZED, ReasonUnknownCeremony)
		})
	}
}

func synced(a *passkeytest.Authenticator) {
	a.Flags = passkeytest.Flags{BackupEligible: true, BackupState: true}
}

func assertNothingEnrolled(tb testing.TB, h *harness, u *airlock.User, tok *airlock.EnrolmentToken) {
	tb.Helper()
	creds, err := h.store.ListCredentialsByUser(h.ctx, u.ID)
	if err != nil {
		tb.Fatal(err)
	}
	if len(creds) != 0 {
		tb.Fatalf("%d credentials stored after a failed enrolment", len(creds))
	}
	if tok != nil {
		st, err := h.store.FindEnrolmentTokenByID(h.ctx, tok.ID)
		if err != nil {
			tb.Fatal(err)
		}
		if !st.UsedAt.IsZero() {
			tb.Fatal("token marked used after a failed enrolment")
		}
	}
	if n := h.not.count(); n != 0 {
		tb.Fatalf("%d notifications after a failed enrolment", n)
	}
}

func setJSON(tb testing.TB, data []byte, f func(map[string]any)) []byte {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		tb.Fatal(err)
	}
	f(m)
	return mustJSON(tb, m)
}

func TestFinishEnrolCeremonyErrors(t *testing.T) {
	h := newHarness(t, nil)
	u := h.user("alice", 0)
	d := h.device("laptop", u.ID)
	a := passkeytest.New()

	t.Run("fail-unknown-ceremony", func(t *testing.T) {
		_, err := h.svc.FinishEnrol(h.ctx, "no-such-ceremony", []byte(`{}`), Meta{})
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonUnknownCeremony)
		_, err = h.svc.FinishEnrol(h.ctx, "", []byte(`{}`), Meta{})
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonUnknownCeremony)
	})
	t.Run("fail-login-ceremony-used-for-enrol", func(t *testing.T) {
		id, opt := h.beginLogin()
		_, err := h.svc.FinishEnrol(h.ctx, id, opt, Meta{})
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonWrongCeremony)
	})
	t.Run("fail-second-finish-after-success", func(t *testing.T) {
		secret, _ := h.token(u, d)
		id, opt := h.beginEnrol(secret)
		resp, _, err := a.Register(testOrigin, opt)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.svc.FinishEnrol(h.ctx, id, resp, Meta{}); err != nil {
			t.Fatal(err)
		}
		_, err = h.svc.FinishEnrol(h.ctx, id, resp, Meta{})
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonUnknownCeremony)
	})
	t.Run("fail-token-used-by-a-parallel-ceremony", func(t *testing.T) {
		secret, _ := h.token(u, d)
		id1, opt1 := h.beginEnrol(secret)
		id2, opt2 := h.beginEnrol(secret)
		r1, _, err := passkeytest.New().Register(testOrigin, opt1)
		if err != nil {
			t.Fatal(err)
		}
		r2, _, err := passkeytest.New().Register(testOrigin, opt2)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, c := range []struct {
			id   string
			resp []byte
		}{{id1, r1}, {id2, r2}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = h.svc.FinishEnrol(h.ctx, c.id, c.resp, Meta{})
			}()
		}
		wg.Wait()
		ok, used := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case airlock.ErrorCode(err) == airlock.ECONFLICT && ReasonOf(err) == ReasonTokenUsed:
				used++
			default:
				t.Fatalf("unexpected error %v", err)
			}
		}
		if ok != 1 || used != 1 {
			t.Fatalf("successes %d, token-used %d; want 1 and 1", ok, used)
		}
	})
}

// TestEnrolDuplicateCredentialID is W8 / WebAuthn L3 §7.1 step 26.
func TestEnrolDuplicateCredentialID(t *testing.T) {
	h := newHarness(t, nil)
	alice := h.user("alice", 0)
	bob := h.user("bob", 0)
	dA := h.device("a-laptop", alice.ID)
	dB := h.device("b-laptop", bob.ID)
	res, _ := h.enrol(passkeytest.New(), alice, dA)

	for _, tc := range []struct {
		name string
		u    *airlock.User
		d    *airlock.Device
	}{{"fail-registered-to-another-user", bob, dB}, {"fail-registered-to-same-user", alice, dA}} {
		t.Run(tc.name, func(t *testing.T) {
			secret, tok := h.token(tc.u, tc.d)
			id, opt := h.beginEnrol(secret)
			resp, _, err := passkeytest.New().Register(testOrigin, opt, passkeytest.WithCredentialID(res.Credential.ID), passkeytest.IgnoreExcluded())
			if err != nil {
				t.Fatal(err)
			}
			_, err = h.svc.FinishEnrol(h.ctx, id, resp, Meta{})
			wantErr(t, err, airlock.ECONFLICT, ReasonDuplicate)
			if st, _ := h.store.FindEnrolmentTokenByID(h.ctx, tok.ID); !st.UsedAt.IsZero() {
				t.Fatal("token used by a refused enrolment")
			}
			if c := h.credential(res.Credential.ID); c.UserID != alice.ID || !bytes.Equal(c.PublicKey, res.Credential.PublicKey) {
				t.Fatal("existing credential was changed")
			}
		})
	}
}

func TestBeginEnrolOptions(t *testing.T) {
	h := newHarness(t, nil)
	for tier, wantAtt := range []string{"direct", "direct", "none"} {
		u := h.user("user"+string(rune('0'+tier)), airlock.Tier(tier))
		d := h.device("dev"+string(rune('0'+tier)), u.ID)
		secret, _ := h.token(u, d)
		_, raw := h.beginEnrol(secret)
		var b struct {
			Ceremony  string `json:"ceremony"`
			PublicKey struct {
				Challenge string `json:"challenge"`
				Timeout   int    `json:"timeout"`
				RP        struct{ ID string }
				User      struct{ ID string }
				Params    []struct {
					Type string `json:"type"`
					Alg  int    `json:"alg"`
				} `json:"pubKeyCredParams"`
				Selection struct {
					ResidentKey        string `json:"residentKey"`
					RequireResidentKey bool   `json:"requireResidentKey"`
					UserVerification   string `json:"userVerification"`
				} `json:"authenticatorSelection"`
				Attestation string `json:"attestation"`
				Exclude     []struct {
					ID string `json:"id"`
				} `json:"excludeCredentials"`
			} `json:"publicKey"`
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatal(err)
		}
		pk := b.PublicKey
		if pk.Attestation != wantAtt {
			t.Errorf("tier %d: attestation %q, want %q", tier, pk.Attestation, wantAtt)
		}
		var algs []int
		for _, p := range pk.Params {
			algs = append(algs, p.Alg)
		}
		if len(algs) != 3 || algs[0] != -7 || algs[1] != -8 || algs[2] != -257 {
			t.Errorf("algorithms %v, want [-7 -8 -257]", algs)
		}
		if pk.Selection.ResidentKey != "required" || !pk.Selection.RequireResidentKey || pk.Selection.UserVerification != "required" {
			t.Errorf("authenticatorSelection %+v", pk.Selection)
		}
		if c, err := decodeB64URL(pk.Challenge); err != nil || len(c) < 32 {
			t.Errorf("challenge %q: %d bytes, want >= 32", pk.Challenge, len(c))
		}
		if hd, _ := decodeB64URL(pk.User.ID); !bytes.Equal(hd, u.Handle) {
			t.Error("user.id is not the user's WebAuthn handle")
		}
		if pk.RP.ID != testRPID || pk.Timeout != int(DefaultCeremonyTTL/time.Millisecond) {
			t.Errorf("rp %q timeout %d", pk.RP.ID, pk.Timeout)
		}
		if id, err := decodeB64URL(b.Ceremony); err != nil || len(id) < 16 {
			t.Errorf("ceremony id %q is not >= 16 random bytes", b.Ceremony)
		}
	}

	t.Run("existing-passkeys-excluded", func(t *testing.T) {
		u := h.user("carol", 0)
		d := h.device("carol-laptop", u.ID)
		a := passkeytest.New()
		res, _ := h.enrol(a, u, d)
		secret, _ := h.token(u, d)
		_, raw := h.beginEnrol(secret)
		if !bytes.Contains(raw, []byte(b64(res.Credential.ID))) {
			t.Fatal("existing credential not in excludeCredentials")
		}
		if _, _, err := a.Register(testOrigin, raw); err == nil {
			t.Fatal("authenticator holding an excluded credential registered anyway")
		}
	})
}

func decodeB64URL(s string) ([]byte, error) {
	return b64dec(s)
}

func TestCheckEnrolmentToken(t *testing.T) {
	h := newHarness(t, nil)
	u := h.user("alice", 0)
	d := h.device("laptop", u.ID)

	t.Run("ok", func(t *testing.T) {
		secret, tok := h.token(u, d)
		gt, gu, gd, err := h.svc.CheckEnrolmentToken(h.ctx, secret)
		if err != nil || gt.ID != tok.ID || gu.ID != u.ID || gd.ID != d.ID {
			t.Fatalf("got %v %v %v %v", gt, gu, gd, err)
		}
	})
	t.Run("fail-unknown", func(t *testing.T) {
		_, _, _, err := h.svc.CheckEnrolmentToken(h.ctx, "nope")
		wantErr(t, err, airlock.ENOTFOUND, ReasonUnknownToken)
		if airlock.ErrorMessage(err) != "unknown enrolment link" {
			t.Fatalf("message %q", airlock.ErrorMessage(err))
		}
		_, err = h.svc.BeginEnrol(h.ctx, "", Meta{})
		wantErr(t, err, airlock.ENOTFOUND, ReasonUnknownToken)
	})
	t.Run("fail-expired", func(t *testing.T) {
		secret, _ := h.token(u, d)
		h.clk.Advance(DefaultTokenTTL)
		defer h.clk.Advance(-DefaultTokenTTL)
		_, _, _, err := h.svc.CheckEnrolmentToken(h.ctx, secret)
		wantErr(t, err, airlock.EEXPIRED, ReasonTokenExpired)
		if airlock.ErrorMessage(err) != "enrolment link expired" {
			t.Fatalf("message %q", airlock.ErrorMessage(err))
		}
		_, err = h.svc.BeginEnrol(h.ctx, secret, Meta{})
		wantErr(t, err, airlock.EEXPIRED, ReasonTokenExpired)
		if ev := h.aud.ofType("enrol.failed"); len(ev) == 0 || ev[len(ev)-1].Reason != string(ReasonTokenExpired) {
			t.Fatalf("begin failure not audited: %+v", ev)
		}
	})
	t.Run("fail-used", func(t *testing.T) {
		secret, tok := h.token(u, d)
		if err := h.store.UseEnrolmentToken(h.ctx, tok.ID, h.clk.Now()); err != nil {
			t.Fatal(err)
		}
		_, _, _, err := h.svc.CheckEnrolmentToken(h.ctx, secret)
		wantErr(t, err, airlock.ECONFLICT, ReasonTokenUsed)
		if airlock.ErrorMessage(err) != "enrolment link already used" {
			t.Fatalf("message %q", airlock.ErrorMessage(err))
		}
	})
	t.Run("fail-user-disabled", func(t *testing.T) {
		v := h.user("victor", 0)
		dv := h.device("victor-laptop", v.ID)
		secret, _ := h.token(v, dv)
		h.disableUser(v)
		_, _, _, err := h.svc.CheckEnrolmentToken(h.ctx, secret)
		wantErr(t, err, airlock.EFORBIDDEN, ReasonUserDisabled)
	})
	t.Run("fail-device-not-compliant-at-begin", func(t *testing.T) {
		dn := h.device("old-laptop", u.ID)
		secret, _ := h.token(u, dn)
		dn.Posture.DiskEncrypted = false
		if err := h.store.UpdateDevice(h.ctx, dn); err != nil {
			t.Fatal(err)
		}
		_, _, _, err := h.svc.CheckEnrolmentToken(h.ctx, secret)
		wantErr(t, err, airlock.EFORBIDDEN, ReasonDeviceNotCompliant)
		if msg := airlock.ErrorMessage(err); !strings.Contains(msg, "device old-laptop is not compliant: disk is not encrypted") {
			t.Fatalf("message %q", msg)
		}
		_, err = h.svc.BeginEnrol(h.ctx, secret, Meta{})
		wantErr(t, err, airlock.EFORBIDDEN, ReasonDeviceNotCompliant)
	})
}

func TestIssueEnrolmentToken(t *testing.T) {
	h := newHarness(t, nil)
	u := h.user("alice", 0)
	d := h.device("laptop", u.ID)
	other := h.user("bob", 1)
	dOther := h.device("bob-laptop", other.ID)

	secret, tok, err := h.svc.IssueEnrolmentToken(h.ctx, "u-admin", u.ID, d.ID, airlock.PurposeEnrol, Meta{IP: "192.0.2.9"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b64dec(secret)
	if err != nil || len(raw) != 32 {
		t.Fatalf("secret is not 32 base64url bytes: %q", secret)
	}
	sum := sha256.Sum256([]byte(secret))
	st, err := h.store.FindEnrolmentTokenByID(h.ctx, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(st.Hash, sum[:]) || st.UserID != u.ID || st.DeviceID != d.ID || st.CreatedBy != "u-admin" ||
		!st.ExpiresAt.Equal(h.clk.Now().Add(DefaultTokenTTL)) {
		t.Fatalf("stored token %+v", st)
	}
	ev := h.aud.ofType("enrol.token_issued")
	if len(ev) != 1 || ev[0].Actor != "u-admin" || ev[0].UserID != u.ID || ev[0].DeviceID != d.ID {
		t.Fatalf("audit %+v", ev)
	}
	if strings.Contains(string(mustJSON(t, ev)), secret) {
		t.Fatal("the secret leaked into the audit record")
	}
	secret2, _, _ := h.svc.IssueEnrolmentToken(h.ctx, "u-admin", u.ID, d.ID, airlock.PurposeEnrol, Meta{})
	if secret2 == secret {
		t.Fatal("two tokens share a secret")
	}

	for _, tc := range []struct {
		name, issuer, user, dev, purpose, code string
	}{
		{"fail-bootstrap-by-user", "u-admin", u.ID, d.ID, airlock.PurposeBootstrap, airlock.EFORBIDDEN},
		{"fail-bad-purpose", "u-admin", u.ID, d.ID, "reset", airlock.EINVALID},
		{"fail-recovery-by-user", "u-admin", u.ID, d.ID, airlock.PurposeRecovery, airlock.EFORBIDDEN},
		{"fail-no-issuer", "", u.ID, d.ID, airlock.PurposeEnrol, airlock.EINVALID},
		{"fail-unknown-user", "u-admin", "u-nobody", d.ID, airlock.PurposeEnrol, airlock.ENOTFOUND},
		{"fail-unknown-device", "u-admin", u.ID, "d-nothing", airlock.PurposeEnrol, airlock.ENOTFOUND},
		{"fail-device-of-another-user", "u-admin", u.ID, dOther.ID, airlock.PurposeEnrol, airlock.EFORBIDDEN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := h.svc.IssueEnrolmentToken(h.ctx, tc.issuer, tc.user, tc.dev, tc.purpose, Meta{})
			if airlock.ErrorCode(err) != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}
	t.Run("fail-disabled-user", func(t *testing.T) {
		h.disableUser(other)
		_, _, err := h.svc.IssueEnrolmentToken(h.ctx, "u-admin", other.ID, dOther.ID, airlock.PurposeEnrol, Meta{})
		if airlock.ErrorCode(err) != airlock.EFORBIDDEN {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("fail-revoked-device", func(t *testing.T) {
		dr := h.device("stolen", u.ID)
		h.setDeviceTrust(dr, airlock.TrustRevoked)
		_, _, err := h.svc.IssueEnrolmentToken(h.ctx, "u-admin", u.ID, dr.ID, airlock.PurposeEnrol, Meta{})
		if airlock.ErrorCode(err) != airlock.EFORBIDDEN {
			t.Fatalf("got %v", err)
		}
	})
}

// TestFinishEnrolNotifyFailure: the notification is part of binding an
// authenticator (NIST SP 800-63B-4); if it cannot be enqueued the new
// passkey must not stay usable.
func TestFinishEnrolNotifyFailure(t *testing.T) {
	h := newHarness(t, nil)
	u := h.user("alice", 0)
	d := h.device("laptop", u.ID)
	secret, _ := h.token(u, d)
	id, opt := h.beginEnrol(secret)
	a := passkeytest.New()
	resp, cred, err := a.Register(testOrigin, opt)
	if err != nil {
		t.Fatal(err)
	}
	h.not.err = airlock.Errorf(airlock.EUNAVAILABLE, "outbox down")
	_, err = h.svc.FinishEnrol(h.ctx, id, resp, Meta{})
	wantErr(t, err, airlock.EUNAVAILABLE, ReasonNotifyFailed)
	if c := h.credential(cred.ID); !c.IsRevoked() {
		t.Fatal("credential left usable after the notification failed")
	}
	if ev := h.aud.ofType("enrol.failed"); len(ev) != 1 || ev[0].Reason != string(ReasonNotifyFailed) {
		t.Fatalf("audit %+v", ev)
	}
	if ev := h.aud.ofType("enrol.passkey_added"); len(ev) != 0 {
		t.Fatalf("enrol.passkey_added recorded for a rolled-back enrolment")
	}
	h.not.err = nil
	_, err = h.login(a)
	wantErr(t, err, airlock.EUNAUTHORIZED, ReasonCredentialRevoked)
}

func TestNewConfig(t *testing.T) {
	h := newHarness(t, nil)
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"fail-no-rpid", func(c *Config) { c.RPID = "" }},
		{"fail-no-origins", func(c *Config) { c.Origins = nil }},
		{"fail-origin-with-path", func(c *Config) { c.Origins = []string{"https://a.example.com/login"} }},
		{"fail-origin-no-scheme", func(c *Config) { c.Origins = []string{"a.example.com"} }},
		{"fail-bad-aaguid", func(c *Config) { c.Tiers[0].AAGUIDs = []string{"not-a-uuid"} }},
		{"fail-negative-ttl", func(c *Config) { c.CeremonyTTL = -time.Second }},
		{"fail-bad-device-rules", func(c *Config) { c.DeviceRules.MinPatchLevel = "last tuesday" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			tc.mod(&cfg)
			if _, err := New(cfg, h.store, h.aud, h.not); err == nil {
				t.Fatal("New accepted a bad configuration")
			}
		})
	}
	if _, err := New(testConfig(), nil, h.aud, h.not); err == nil {
		t.Fatal("New accepted a nil store")
	}
	if p := DefaultTierPolicies(); p[0].AllowSynced || p[1].AllowSynced || !p[2].AllowSynced || p[0].RequireAttestation || len(p[2].AAGUIDs) != 0 {
		t.Fatalf("DefaultTierPolicies = %+v", p)
	}
}
