package device

import (
	"testing"
	"time"

	"airlock"
)

func TestEvaluate(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	good := func() *airlock.Device {
		return &airlock.Device{ID: "d1", Kind: airlock.DeviceManaged, Trust: airlock.TrustTrusted, Posture: airlock.Posture{
			Managed: true, DiskEncrypted: true, EDRRunning: true, ScreenLock: true, PatchLevel: "2026-11-01",
			ReportedAt: now.Add(-time.Hour), Source: "mdm",
		}}
	}
	strict := Rules{RequireManaged: true, RequireDiskEncryption: true, RequireEDR: true, RequireScreenLock: true, MinPatchLevel: "2026-10-01"}
	cases := []struct {
		name   string
		mutate func(d *airlock.Device)
		ok     bool
		stale  bool
	}{
		{"ok-all-good", func(*airlock.Device) {}, true, false},
		{"ok-just-fresh", func(d *airlock.Device) { d.Posture.ReportedAt = now.Add(-24 * time.Hour) }, true, false},
		{"fail-stale", func(d *airlock.Device) { d.Posture.ReportedAt = now.Add(-24*time.Hour - time.Second) }, false, true},
		{"fail-never-reported", func(d *airlock.Device) { d.Posture.ReportedAt = time.Time{} }, false, true},
		{"fail-pending", func(d *airlock.Device) { d.Trust = airlock.TrustPending }, false, false},
		{"fail-revoked", func(d *airlock.Device) { d.Trust = airlock.TrustRevoked }, false, false},
		{"fail-unmanaged", func(d *airlock.Device) { d.Posture.Managed = false }, false, false},
		{"fail-no-disk-encryption", func(d *airlock.Device) { d.Posture.DiskEncrypted = false }, false, false},
		{"fail-no-edr", func(d *airlock.Device) { d.Posture.EDRRunning = false }, false, false},
		{"fail-no-screen-lock", func(d *airlock.Device) { d.Posture.ScreenLock = false }, false, false},
		{"fail-old-patch", func(d *airlock.Device) { d.Posture.PatchLevel = "2026-09-30" }, false, false},
		{"fail-unknown-patch", func(d *airlock.Device) { d.Posture.PatchLevel = "" }, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := good()
			tc.mutate(d)
			c := Evaluate(d, strict, now)
			if c.Compliant != tc.ok {
				t.Fatalf("Compliant = %v, want %v (reasons %v)", c.Compliant, tc.ok, c.Reasons)
			}
			if c.Stale != tc.stale {
				t.Fatalf("Stale = %v, want %v", c.Stale, tc.stale)
			}
			if !tc.ok && len(c.Reasons) == 0 {
				t.Fatal("non-compliant verdict without a reason")
			}
		})
	}
	if c := Evaluate(nil, strict, now); c.Compliant {
		t.Fatal("nil device compliant")
	}
}

func TestMaxPostureAgeConfigurable(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	d := &airlock.Device{Trust: airlock.TrustTrusted, Posture: airlock.Posture{ReportedAt: now.Add(-2 * time.Hour)}}
	if c := Evaluate(d, Rules{MaxPostureAge: time.Hour}, now); c.Compliant || !c.Stale {
		t.Fatalf("2h-old posture with 1h limit: %+v", c)
	}
	if c := Evaluate(d, Rules{}, now); !c.Compliant {
		t.Fatalf("2h-old posture with default limit: %+v", c)
	}
}

func TestValidate(t *testing.T) {
	now := time.Now()
	if err := (Rules{MinPatchLevel: "2026-13-01"}).Validate(); err == nil {
		t.Fatal("bad date accepted")
	}
	if err := (Rules{MaxPostureAge: -1}).Validate(); err == nil {
		t.Fatal("negative age accepted")
	}
	if err := DefaultRules().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := ValidatePosture(airlock.Posture{PatchLevel: "yesterday"}, now); airlock.ErrorCode(err) != airlock.EINVALID {
		t.Fatalf("bad patch level: %v", err)
	}
	if err := ValidatePosture(airlock.Posture{ReportedAt: now.Add(time.Hour)}, now); airlock.ErrorCode(err) != airlock.EINVALID {
		t.Fatalf("future report: %v", err)
	}
	if err := ValidatePosture(airlock.Posture{PatchLevel: "2026-01-02", ReportedAt: now}, now); err != nil {
		t.Fatal(err)
	}
}
