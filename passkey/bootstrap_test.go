package passkey

import (
	"testing"

	"airlock"
	"airlock/passkey/passkeytest"
)

func TestBootstrap(t *testing.T) {
	h := newHarness(t, nil)
	secret, tok, err := h.svc.Bootstrap(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if secret == "" || tok.Purpose != airlock.PurposeBootstrap || tok.CreatedBy != SystemIssuer {
		t.Fatalf("token %+v", tok)
	}
	admin, err := h.store.FindUserByName(h.ctx, BootstrapUserName)
	if err != nil {
		t.Fatal(err)
	}
	if admin.Tier != 0 || admin.Kind != airlock.UserEmployee || admin.DisplayName != "Bootstrap administrator" || len(admin.Handle) != 32 || admin.ID != tok.UserID {
		t.Fatalf("bootstrap user %+v", admin)
	}
	dev, err := h.store.FindDeviceByID(h.ctx, tok.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	if dev.Name != BootstrapDeviceName || dev.Kind != airlock.DeviceManaged || dev.Trust != airlock.TrustPending || dev.Owner != admin.ID {
		t.Fatalf("bootstrap device %+v", dev)
	}
	if ev := h.aud.ofType("enrol.bootstrap_issued"); len(ev) != 1 || ev[0].Actor != SystemIssuer || ev[0].DeviceID != dev.ID {
		t.Fatalf("audit %+v", ev)
	}

	// A second call reuses the user and device.
	secret2, tok2, err := h.svc.Bootstrap(h.ctx)
	if err != nil || tok2.UserID != admin.ID || tok2.DeviceID != dev.ID || secret2 == secret {
		t.Fatalf("second bootstrap: %+v %v", tok2, err)
	}

	// Reissuing retires the earlier link: only the newest one printed works.
	if _, _, _, err := h.svc.CheckEnrolmentToken(h.ctx, secret); airlock.ErrorCode(err) != airlock.ECONFLICT {
		t.Fatalf("superseded bootstrap link: %v", err)
	}
	if ev := h.aud.ofType("enrol.token_retired"); len(ev) != 1 || ev[0].Subject != tok.ID || ev[0].Outcome != airlock.OutcomeSuccess ||
		ev[0].Details == nil || ev[0].Details["token_id"] != tok.ID || ev[0].UserID != admin.ID || ev[0].DeviceID != dev.ID {
		t.Fatalf("audit enrol.token_retired %+v", ev)
	}
	secret, tok = secret2, tok2

	// The pending bootstrap device does not block the token.
	if _, _, _, err := h.svc.CheckEnrolmentToken(h.ctx, secret); err != nil {
		t.Fatalf("bootstrap token refused: %v", err)
	}

	t.Run("fail-synced-passkey", func(t *testing.T) {
		id, opt := h.beginEnrol(secret)
		a := passkeytest.New()
		synced(a)
		resp, _, err := a.Register(testOrigin, opt)
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.svc.FinishEnrol(h.ctx, id, resp, Meta{})
		wantErr(t, err, airlock.EFORBIDDEN, ReasonBootstrapBound)
		assertNothingEnrolled(t, h, admin, tok)
		if d, _ := h.store.FindDeviceByID(h.ctx, dev.ID); d.Trust != airlock.TrustPending {
			t.Fatal("bootstrap device trusted after a refused enrolment")
		}
	})

	// Two ceremonies on two bootstrap tokens: only the first may finish.
	secret3, _, err := h.svc.IssueEnrolmentToken(h.ctx, SystemIssuer, admin.ID, dev.ID, airlock.PurposeBootstrap, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	id2, opt2 := h.beginEnrol(secret3)

	t.Run("ok-device-bound", func(t *testing.T) {
		h.aud.reset()
		a := passkeytest.New()
		id, opt := h.beginEnrol(secret)
		resp, _, err := a.Register(testOrigin, opt)
		if err != nil {
			t.Fatal(err)
		}
		res, err := h.svc.FinishEnrol(h.ctx, id, resp, Meta{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Credential.TierCap != 0 || res.Token.Purpose != airlock.PurposeBootstrap {
			t.Fatalf("enrolled %+v", res.Credential)
		}
		d, _ := h.store.FindDeviceByID(h.ctx, dev.ID)
		p := d.Posture
		if d.Trust != airlock.TrustTrusted || p.Source != "bootstrap" || !p.Managed || !p.DiskEncrypted || !p.EDRRunning || !p.ScreenLock ||
			p.OSVersion != "unknown" || !p.ReportedAt.Equal(h.clk.Now()) {
			t.Fatalf("bootstrap device after enrolment %+v", d)
		}
		if ev := h.aud.ofType("device.trusted"); len(ev) != 1 || ev[0].Details["source"] != "bootstrap" || ev[0].DeviceID != dev.ID {
			t.Fatalf("audit device.trusted %+v", ev)
		}
		if ev := h.aud.ofType("enrol.passkey_added"); len(ev) != 1 || ev[0].Details["purpose"] != airlock.PurposeBootstrap {
			t.Fatalf("audit enrol.passkey_added %+v", ev)
		}
		lr, err := h.login(a)
		if err != nil || lr.Tier != 0 || lr.User.ID != admin.ID {
			t.Fatalf("login %+v %v", lr, err)
		}
	})

	t.Run("fail-bootstrap-closed", func(t *testing.T) {
		resp, _, err := passkeytest.New().Register(testOrigin, opt2)
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.svc.FinishEnrol(h.ctx, id2, resp, Meta{})
		wantErr(t, err, airlock.ECONFLICT, ReasonBootstrapClosed)
		_, err = h.svc.BeginEnrol(h.ctx, secret3, Meta{})
		wantErr(t, err, airlock.ECONFLICT, ReasonBootstrapClosed)
	})

	t.Run("no-op-once-an-admin-exists", func(t *testing.T) {
		secret, tok, err := h.svc.Bootstrap(h.ctx)
		if secret != "" || tok != nil || err != nil {
			t.Fatalf("Bootstrap = %q %v %v", secret, tok, err)
		}
	})
}

func TestBootstrapExistingAdmin(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*airlock.User)
	}{
		{"fail-disabled", func(u *airlock.User) { u.Disabled = true }},
		{"fail-not-tier0", func(u *airlock.User) { u.Tier = 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			u := h.user(BootstrapUserName, 0)
			tc.mod(u)
			if err := h.store.UpdateUser(h.ctx, u); err != nil {
				t.Fatal(err)
			}
			if _, _, err := h.svc.Bootstrap(h.ctx); airlock.ErrorCode(err) != airlock.EFORBIDDEN {
				t.Fatalf("Bootstrap: %v", err)
			}
		})
	}
	t.Run("ok-reuses-enabled-admin", func(t *testing.T) {
		h := newHarness(t, nil)
		u := h.user(BootstrapUserName, 0)
		_, tok, err := h.svc.Bootstrap(h.ctx)
		if err != nil || tok.UserID != u.ID {
			t.Fatalf("Bootstrap: %+v %v", tok, err)
		}
	})
}

func TestIssueBootstrapTokenBySystem(t *testing.T) {
	h := newHarness(t, nil)
	u := h.user("ops", 0)
	d := h.device("host", u.ID)
	if _, tok, err := h.svc.IssueEnrolmentToken(h.ctx, SystemIssuer, u.ID, d.ID, airlock.PurposeBootstrap, Meta{}); err != nil || tok.Purpose != airlock.PurposeBootstrap {
		t.Fatalf("%+v %v", tok, err)
	}
}
