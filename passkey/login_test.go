package passkey

import (
	"bytes"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"airlock"
	"airlock/passkey/passkeytest"
)

// TestFinishLogin covers WebAuthn L3 §7.2 (acceptance checks 1–6, 8–10 on
// the assertion side). Every "fail-" case also checks that nothing changed
// (sign count, last use) and that "auth.login_failed" was recorded with the
// reason.
func TestFinishLogin(t *testing.T) {
	type env struct {
		h     *harness
		u     *airlock.User
		d     *airlock.Device
		other *airlock.User
		a     *passkeytest.Authenticator
		cred  *airlock.Credential
	}
	tests := []struct {
		name        string
		cfg         func(*Config)
		tier        airlock.Tier
		enrolFlags  passkeytest.Flags
		enrolCount  uint32
		opts        func(e env) []passkeytest.Option
		origin      string
		before      func(e env) // after begin, before assert
		mutate      func(tb testing.TB, resp []byte) []byte
		code        string
		reason      Reason
		wantTier    airlock.Tier
		wantAMR     []string
		wantCount   uint32
		wantAudited string // extra audit event type expected
		wantOutcome string // its outcome
		wantMsg     string // substring of the error message
		notInMsg    []string
	}{
		{name: "ok-device-bound-tier0", tier: 0, wantTier: 0, wantAMR: []string{"hwk", "user", "mfa"}, wantCount: 1},
		{name: "ok-device-bound-tier1", tier: 1, wantTier: 1, wantAMR: []string{"hwk", "user", "mfa"}, wantCount: 1},
		{name: "ok-synced-tier0-user-gets-tier2", tier: 0, enrolFlags: passkeytest.Flags{BackupEligible: true, BackupState: true},
			wantTier: 2, wantAMR: []string{"swk", "user", "mfa"}, wantCount: 1},
		{name: "ok-synced-backup-state-may-change", tier: 2, enrolFlags: passkeytest.Flags{BackupEligible: true},
			opts: func(env) []passkeytest.Option {
				return flags(passkeytest.Flags{BackupEligible: true, BackupState: true})
			},
			wantTier: 2, wantAMR: []string{"swk", "user", "mfa"}, wantCount: 1},
		{name: "ok-counter-zero-both-sides", tier: 0, opts: func(env) []passkeytest.Option { return []passkeytest.Option{passkeytest.WithCounter(0)} },
			wantTier: 0, wantAMR: []string{"hwk", "user", "mfa"}, wantCount: 0},
		{name: "ok-counter-jumps-forward", tier: 0, enrolCount: 5, opts: func(env) []passkeytest.Option { return []passkeytest.Option{passkeytest.WithCounter(900)} },
			wantTier: 0, wantAMR: []string{"hwk", "user", "mfa"}, wantCount: 900},
		// W11 at tier 2: accepted, audited.
		{name: "ok-clone-warning-tier2-accepted-and-audited", tier: 2, enrolCount: 5,
			opts:     func(env) []passkeytest.Option { return []passkeytest.Option{passkeytest.WithCounter(5)} },
			wantTier: 2, wantAMR: []string{"hwk", "user", "mfa"}, wantCount: 5, wantAudited: "auth.clone_warning", wantOutcome: airlock.OutcomeSuccess},

		// W1
		{name: "fail-clientdata-type-create", opts: func(env) []passkeytest.Option {
			return []passkeytest.Option{passkeytest.WithClientDataType("webauthn.create")}
		}, code: airlock.EUNAUTHORIZED, reason: ReasonBadType},
		// W2
		{name: "fail-other-challenge", opts: func(env) []passkeytest.Option {
			return []passkeytest.Option{passkeytest.WithChallenge(bytes.Repeat([]byte{1}, 32))}
		}, code: airlock.EUNAUTHORIZED, reason: ReasonBadChallenge},
		{name: "fail-ceremony-expired", before: func(e env) { e.h.clk.Advance(DefaultCeremonyTTL + time.Second) }, code: airlock.EEXPIRED, reason: ReasonExpired},
		// W3
		{name: "fail-origin-outside-allow-list", origin: "https://airlock.example.com.evil.net", code: airlock.EUNAUTHORIZED, reason: ReasonBadOrigin},
		{name: "fail-origin-with-path", origin: testOrigin + "/login", code: airlock.EUNAUTHORIZED, reason: ReasonBadOrigin, wantMsg: "has a path"},
		{name: "fail-origin-with-slash", origin: testOrigin + "/", code: airlock.EUNAUTHORIZED, reason: ReasonBadOrigin, wantMsg: "has a path"},
		{name: "fail-origin-with-query", origin: testOrigin + "?next=/admin", code: airlock.EUNAUTHORIZED, reason: ReasonBadOrigin, wantMsg: "has a query"},
		{name: "fail-origin-with-fragment", origin: testOrigin + "#top", code: airlock.EUNAUTHORIZED, reason: ReasonBadOrigin, wantMsg: "has a fragment"},
		{name: "fail-origin-with-userinfo", origin: "https://alice:pw@airlock.example.com", code: airlock.EUNAUTHORIZED, reason: ReasonBadOrigin, wantMsg: "has user info"},
		{name: "fail-top-origin-outside-allow-list", opts: func(env) []passkeytest.Option {
			return []passkeytest.Option{passkeytest.WithTopOrigin("https://evil.example.com")}
		}, code: airlock.EUNAUTHORIZED, reason: ReasonBadTopOrigin},
		{name: "fail-cross-origin", opts: func(env) []passkeytest.Option { return []passkeytest.Option{passkeytest.WithTopOrigin(testOrigin)} },
			code: airlock.EUNAUTHORIZED, reason: ReasonCrossOrigin},
		// W4
		{name: "fail-rpidhash", opts: func(env) []passkeytest.Option { return []passkeytest.Option{passkeytest.WithRPID("evil.example.com")} },
			code: airlock.EUNAUTHORIZED, reason: ReasonBadRPID},
		// W5
		{name: "fail-up-0", opts: func(env) []passkeytest.Option { return flags(passkeytest.Flags{NoUserPresence: true}) }, code: airlock.EUNAUTHORIZED, reason: ReasonUPMissing},
		{name: "fail-uv-0", opts: func(env) []passkeytest.Option { return flags(passkeytest.Flags{NoUserVerification: true}) }, code: airlock.EUNAUTHORIZED, reason: ReasonUVMissing},
		// W6
		{name: "fail-be0-bs1", opts: func(env) []passkeytest.Option { return flags(passkeytest.Flags{BackupState: true}) }, code: airlock.EINVALID, reason: ReasonBadBackupFlags},
		{name: "fail-be-changed-bound-to-synced", tier: 0,
			opts: func(env) []passkeytest.Option {
				return flags(passkeytest.Flags{BackupEligible: true, BackupState: true})
			},
			code: airlock.EUNAUTHORIZED, reason: ReasonBEChanged, wantAudited: "auth.backup_eligibility_changed", wantOutcome: airlock.OutcomeDenied},
		{name: "fail-be-changed-synced-to-bound", tier: 2, enrolFlags: passkeytest.Flags{BackupEligible: true},
			opts: func(env) []passkeytest.Option { return flags(passkeytest.Flags{}) },
			code: airlock.EUNAUTHORIZED, reason: ReasonBEChanged, wantAudited: "auth.backup_eligibility_changed", wantOutcome: airlock.OutcomeDenied},
		// W9
		{name: "fail-no-user-handle", opts: func(env) []passkeytest.Option { return []passkeytest.Option{passkeytest.WithUserHandle(nil)} },
			code: airlock.EUNAUTHORIZED, reason: ReasonNoUserHandle},
		{name: "fail-other-users-handle", opts: func(e env) []passkeytest.Option {
			return []passkeytest.Option{passkeytest.WithUserHandle(e.other.Handle)}
		}, code: airlock.EUNAUTHORIZED, reason: ReasonUserHandle},
		{name: "fail-unknown-user-handle", opts: func(e env) []passkeytest.Option {
			return []passkeytest.Option{passkeytest.WithUserHandle(bytes.Repeat([]byte{9}, 32))}
		}, code: airlock.EUNAUTHORIZED, reason: ReasonUserHandle},
		// W10
		{name: "fail-bad-signature", opts: func(env) []passkeytest.Option { return []passkeytest.Option{passkeytest.WithBadSignature()} },
			code: airlock.EUNAUTHORIZED, reason: ReasonBadSignature},
		{name: "fail-authdata-swapped-after-signing", mutate: func(tb testing.TB, resp []byte) []byte {
			return setJSON(tb, resp, func(m map[string]any) {
				r := m["response"].(map[string]any)
				ad, _ := b64dec(r["authenticatorData"].(string))
				ad[36]++ // counter + 1: still well-formed, no longer signed
				r["authenticatorData"] = b64(ad)
			})
		}, code: airlock.EUNAUTHORIZED, reason: ReasonBadSignature},
		// W11 at privileged tiers.
		{name: "fail-clone-same-count-tier0", tier: 0, enrolCount: 5,
			opts: func(env) []passkeytest.Option { return []passkeytest.Option{passkeytest.WithCounter(5)} },
			code: airlock.EUNAUTHORIZED, reason: ReasonClone, wantAudited: "auth.clone_warning", wantOutcome: airlock.OutcomeDenied},
		{name: "fail-clone-rollback-tier1", tier: 1, enrolCount: 5,
			opts: func(env) []passkeytest.Option { return []passkeytest.Option{passkeytest.WithCounter(2)} },
			code: airlock.EUNAUTHORIZED, reason: ReasonClone, wantAudited: "auth.clone_warning", wantOutcome: airlock.OutcomeDenied},
		{name: "fail-clone-counter-reset-to-zero-tier0", tier: 0, enrolCount: 5,
			opts: func(env) []passkeytest.Option { return []passkeytest.Option{passkeytest.WithCounter(0)} },
			code: airlock.EUNAUTHORIZED, reason: ReasonClone, wantAudited: "auth.clone_warning", wantOutcome: airlock.OutcomeDenied},
		// State of the account.
		{name: "fail-credential-revoked", before: func(e env) {
			if err := e.h.store.RevokeCredential(e.h.ctx, e.cred.ID, e.h.clk.Now()); err != nil {
				e.h.tb.Fatal(err)
			}
		}, code: airlock.EUNAUTHORIZED, reason: ReasonCredentialRevoked},
		{name: "fail-user-disabled", before: func(e env) { e.h.disableUser(e.u) }, code: airlock.EFORBIDDEN, reason: ReasonUserDisabled, wantMsg: "user alice is disabled"},
		{name: "fail-device-revoked", before: func(e env) { e.h.setDeviceTrust(e.d, airlock.TrustRevoked) }, code: airlock.EFORBIDDEN, reason: ReasonDeviceRevoked, wantMsg: "device laptop is revoked"},
		// Account state is revealed only to whoever proved possession of
		// the key: with a bad signature the refusal is the signature's,
		// generic, and the owner is recorded as unverified.
		{name: "fail-user-disabled-and-bad-signature", before: func(e env) { e.h.disableUser(e.u) },
			opts: func(env) []passkeytest.Option { return []passkeytest.Option{passkeytest.WithBadSignature()} },
			code: airlock.EUNAUTHORIZED, reason: ReasonBadSignature, notInMsg: []string{"alice", "disabled"}},
		{name: "fail-device-revoked-and-bad-signature", before: func(e env) { e.h.setDeviceTrust(e.d, airlock.TrustRevoked) },
			opts: func(env) []passkeytest.Option { return []passkeytest.Option{passkeytest.WithBadSignature()} },
			code: airlock.EUNAUTHORIZED, reason: ReasonBadSignature, notInMsg: []string{"laptop", "revoked"}},
		{name: "fail-credential-revoked-and-bad-signature", before: func(e env) {
			if err := e.h.store.RevokeCredential(e.h.ctx, e.cred.ID, e.h.clk.Now()); err != nil {
				e.h.tb.Fatal(err)
			}
		}, opts: func(env) []passkeytest.Option { return []passkeytest.Option{passkeytest.WithBadSignature()} },
			code: airlock.EUNAUTHORIZED, reason: ReasonBadSignature, notInMsg: []string{"revoked"}},
		{name: "fail-user-disabled-and-other-users-handle", before: func(e env) { e.h.disableUser(e.u) },
			opts: func(e env) []passkeytest.Option {
				return []passkeytest.Option{passkeytest.WithUserHandle(e.other.Handle)}
			}, code: airlock.EUNAUTHORIZED, reason: ReasonUserHandle, notInMsg: []string{"alice", "mallory", "disabled"}},
		{name: "fail-user-disabled-and-uv-0", before: func(e env) { e.h.disableUser(e.u) },
			opts: func(env) []passkeytest.Option { return flags(passkeytest.Flags{NoUserVerification: true}) },
			code: airlock.EUNAUTHORIZED, reason: ReasonUVMissing, notInMsg: []string{"alice", "disabled"}},
		{name: "fail-tier-policy-changed-since-enrolment", tier: 2, enrolFlags: passkeytest.Flags{BackupEligible: true},
			opts: func(env) []passkeytest.Option { return flags(passkeytest.Flags{BackupEligible: true}) },
			cfg:  nil, before: func(e env) {
				cfg := e.h.cfg
				cfg.Tiers[2].AllowSynced = false
				svc, err := New(cfg, e.h.store, e.h.aud, e.h.not)
				if err != nil {
					e.h.tb.Fatal(err)
				}
				e.h.svc = svc
			}, code: airlock.EFORBIDDEN, reason: ReasonTierPolicy},
		{name: "fail-garbage", mutate: func(testing.TB, []byte) []byte { return []byte("][") }, code: airlock.EINVALID, reason: ReasonParse},
		{name: "fail-unknown-credential-id", mutate: func(tb testing.TB, resp []byte) []byte {
			return setJSON(tb, resp, func(m map[string]any) { m["id"], m["rawId"] = "AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAA" })
		}, code: airlock.EUNAUTHORIZED, reason: ReasonUnknownCredential},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cfg)
			u := h.user("alice", tt.tier)
			other := h.user("mallory", 0)
			d := h.device("laptop", u.ID)
			a := passkeytest.New()
			a.Flags = tt.enrolFlags
			res, _ := h.enrol(a, u, d, passkeytest.WithCounter(tt.enrolCount))
			e := env{h: h, u: u, d: d, other: other, a: a, cred: res.Credential}

			id, opt := h.beginLogin()
			if tt.before != nil {
				tt.before(e)
			}
			var opts []passkeytest.Option
			if tt.opts != nil {
				opts = tt.opts(e)
			}
			origin := tt.origin
			if origin == "" {
				origin = testOrigin
			}
			resp, err := a.Assert(origin, opt, opts...)
			if err != nil {
				t.Fatal(err)
			}
			if tt.mutate != nil {
				resp = tt.mutate(t, resp)
			}
			h.aud.reset()
			lr, err := h.svc.FinishLogin(h.ctx, id, resp, Meta{IP: "192.0.2.1", UserAgent: "ua", RequestID: "req-9"})

			if tt.wantAudited != "" {
				ev := h.aud.ofType(tt.wantAudited)
				if len(ev) != 1 || ev[0].Outcome != tt.wantOutcome || ev[0].CredentialID != b64(res.Credential.ID) || ev[0].UserID != u.ID {
					t.Fatalf("audit %s = %+v", tt.wantAudited, ev)
				}
			}
			c := h.credential(res.Credential.ID)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("FinishLogin: %v", err)
				}
				if lr.Tier != tt.wantTier || !lr.UV || !reflect.DeepEqual(lr.AMR, tt.wantAMR) || lr.User.ID != u.ID || lr.Device.ID != d.ID || !bytes.Equal(lr.Credential.ID, res.Credential.ID) {
					t.Fatalf("result tier %d uv %t amr %v", lr.Tier, lr.UV, lr.AMR)
				}
				if c.SignCount != tt.wantCount || !c.LastUsedAt.Equal(h.clk.Now()) {
					t.Fatalf("stored sign count %d last used %v; want %d now", c.SignCount, c.LastUsedAt, tt.wantCount)
				}
				ev := h.aud.ofType("auth.login")
				if len(ev) != 1 || ev[0].Details["tier"] != int(tt.wantTier) || ev[0].Details["uv"] != true || ev[0].DeviceID != d.ID || ev[0].RequestID != "req-9" || ev[0].IP != "192.0.2.1" {
					t.Fatalf("audit auth.login = %+v", ev)
				}
				return
			}

			wantErr(t, err, tt.code, tt.reason)
			msg := airlock.ErrorMessage(err)
			if !strings.Contains(msg, tt.wantMsg) {
				t.Fatalf("message %q does not contain %q", msg, tt.wantMsg)
			}
			for _, leak := range tt.notInMsg {
				if strings.Contains(msg, leak) {
					t.Fatalf("message %q reveals %q before the signature verified", msg, leak)
				}
			}
			// W12: nothing about the credential changed.
			if c.SignCount != tt.enrolCount || !c.LastUsedAt.IsZero() || c.BackupState != res.Credential.BackupState {
				t.Fatalf("credential changed by a failed login: count %d last used %v bs %t", c.SignCount, c.LastUsedAt, c.BackupState)
			}
			ev := h.aud.ofType("auth.login_failed")
			if len(ev) != 1 || ev[0].Reason != string(tt.reason) {
				t.Fatalf("audit auth.login_failed = %+v", ev)
			}
			if tt.reason != ReasonExpired && tt.reason != ReasonParse && tt.reason != ReasonUnknownCredential && ev[0].CredentialID != b64(res.Credential.ID) {
				t.Fatalf("failure audit does not name the credential: %+v", ev[0])
			}
			if tt.reason != ReasonExpired && tt.reason != ReasonParse && tt.reason != ReasonUnknownCredential && ev[0].UserID != res.User.ID {
				t.Fatalf("failure audit does not name the passkey's owner: %+v", ev[0])
			}
			// Before the signature verified, the owner is only claimed.
			if unverified := ev[0].Details["owner_unverified"] == true; unverified != !postVerification[tt.reason] {
				t.Fatalf("owner_unverified = %v for reason %s", ev[0].Details["owner_unverified"], tt.reason)
			}
			if len(h.aud.ofType("auth.login")) != 0 {
				t.Fatal("auth.login recorded for a failed login")
			}
			// W2: the ceremony is spent even though the attempt failed.
			good, err := a.Assert(testOrigin, opt)
			if err != nil {
				t.Fatal(err)
			}
			_, err = h.svc.FinishLogin(h.ctx, id, good, Meta{})
			wantErr(t, err, airlock.EUNAUTHORIZED, ReasonUnknownCeremony)
		})
	}
}

// postVerification are the refusals that come after the assertion
// signature verified.
var postVerification = map[Reason]bool{
	ReasonCredentialRevoked: true, ReasonUserDisabled: true, ReasonDeviceRevoked: true, ReasonDeviceMissing: true,
	ReasonBEChanged: true, ReasonTierPolicy: true, ReasonClone: true,
}

func flags(f passkeytest.Flags) []passkeytest.Option {
	return []passkeytest.Option{passkeytest.WithFlags(f)}
}

// TestLoginReplay is acceptance check 2: a consumed or unknown challenge is
// refused, and an accepted assertion cannot be replayed.
func TestLoginReplay(t *testing.T) {
	h := newHarness(t, nil)
	u := h.user("alice", 0)
	d := h.device("laptop", u.ID)
	a := passkeytest.New()
	h.enrol(a, u, d)

	id, opt := h.beginLogin()
	resp, err := a.Assert(testOrigin, opt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.FinishLogin(h.ctx, id, resp, Meta{}); err != nil {
		t.Fatal(err)
	}
	t.Run("fail-replay-same-ceremony", func(t *testing.T) {
		_, err := h.svc.FinishLogin(h.ctx, id, resp, Meta{})
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonUnknownCeremony)
	})
	t.Run("fail-replay-into-new-ceremony", func(t *testing.T) {
		id2, _ := h.beginLogin()
		_, err := h.svc.FinishLogin(h.ctx, id2, resp, Meta{})
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonBadChallenge)
	})
	t.Run("fail-unknown-ceremony", func(t *testing.T) {
		_, err := h.svc.FinishLogin(h.ctx, "made-up", resp, Meta{})
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonUnknownCeremony)
		if airlock.ErrorMessage(err) != "unknown or already used ceremony" {
			t.Fatalf("message %q", airlock.ErrorMessage(err))
		}
	})
	t.Run("fail-enrol-ceremony-used-for-login", func(t *testing.T) {
		secret, _ := h.token(u, d)
		eid, _ := h.beginEnrol(secret)
		_, err := h.svc.FinishLogin(h.ctx, eid, resp, Meta{})
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonWrongCeremony)
	})
	t.Run("fail-cloned-authenticator-replays-old-count", func(t *testing.T) {
		// A copy of the key that lags behind: the original logs in (count
		// 2), then the clone asserts with count 2 again.
		clone := passkeytest.New()
		clone.AddCredential(a.Credentials()[0].Clone())
		if _, err := h.login(a); err != nil {
			t.Fatal(err)
		}
		_, err := h.login(clone, passkeytest.KeepCounter())
		wantErr(t, err, airlock.EUNAUTHORIZED, ReasonClone)
		if airlock.ErrorMessage(err) != "sign count did not increase (possible cloned authenticator)" {
			t.Fatalf("message %q", airlock.ErrorMessage(err))
		}
	})
}

func TestBeginLoginOptions(t *testing.T) {
	h := newHarness(t, nil)
	b, err := h.svc.BeginLogin(h.ctx, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		PublicKey struct {
			Challenge        string `json:"challenge"`
			RPID             string `json:"rpId"`
			UserVerification string `json:"userVerification"`
			Allow            []any  `json:"allowCredentials"`
			Timeout          int    `json:"timeout"`
		} `json:"publicKey"`
	}
	if err := jsonUnmarshal(mustJSON(t, b), &v); err != nil {
		t.Fatal(err)
	}
	c, _ := b64dec(v.PublicKey.Challenge)
	if len(c) < 32 || v.PublicKey.RPID != testRPID || v.PublicKey.UserVerification != "required" || len(v.PublicKey.Allow) != 0 {
		t.Fatalf("request options %+v", v.PublicKey)
	}
	cer, err := h.store.ConsumeCeremony(h.ctx, b.Ceremony)
	if err != nil {
		t.Fatal(err)
	}
	if cer.Kind != KindLogin || !cer.ExpiresAt.Equal(h.clk.Now().Add(DefaultCeremonyTTL)) || bytes.Contains(cer.Data, []byte(`"expires":"2`)) {
		t.Fatalf("stored ceremony %+v %s", cer, cer.Data)
	}
}

// TestLoginCloneRace: an authenticator and its clone assert the same
// counter at the same time; at tier 0 exactly one may get in (W11).
func TestLoginCloneRace(t *testing.T) {
	h := newHarness(t, nil)
	u := h.user("alice", 0)
	d := h.device("laptop", u.ID)
	a := passkeytest.New()
	h.enrol(a, u, d)
	clone := passkeytest.New()
	clone.AddCredential(a.Credentials()[0].Clone())

	for round := 0; round < 5; round++ {
		ids := make([]string, 2)
		resps := make([][]byte, 2)
		for i, auth := range []*passkeytest.Authenticator{a, clone} {
			id, opt := h.beginLogin()
			resp, err := auth.Assert(testOrigin, opt, passkeytest.WithCounter(uint32(round+1)))
			if err != nil {
				t.Fatal(err)
			}
			ids[i], resps[i] = id, resp
		}
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = h.svc.FinishLogin(h.ctx, ids[i], resps[i], Meta{})
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else if ReasonOf(err) != ReasonClone {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d of 2 racing assertions with the same counter were accepted", round, ok)
		}
	}
}
