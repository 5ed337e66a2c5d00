package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"airlock"
)

// TestHostPosture: the operator on the server host can record a trusted
// device's posture without a session (the way out of the stale-posture
// lock-out); it is audited, and bad input or an untrusted device changes
// nothing.
func TestHostPosture(t *testing.T) {
	dir := t.TempDir()
	s := startCLIServer(t, dir)
	ctx := context.Background()
	// The bootstrap device becomes trusted when the first admin enrols.
	s.enrolAndLogin(strings.TrimSpace(strings.TrimPrefix(s.out.String(), "bootstrap enrolment: ")))
	devs, err := s.m.Store.ListDevices(ctx)
	if err != nil || len(devs) != 1 || devs[0].Trust != airlock.TrustTrusted {
		t.Fatalf("want the bootstrap device alone: %v %+v", err, devs)
	}
	boot := devs[0]
	pending := &airlock.Device{ID: airlock.NewID("dev_"), Name: "kiosk", Owner: airlock.SharedOwner, Kind: airlock.DeviceManaged,
		Trust: airlock.TrustPending, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	pending.UpdatedAt = pending.CreatedAt
	if err := s.m.Store.CreateDevice(ctx, pending); err != nil {
		t.Fatal(err)
	}
	events := func() []*airlock.AuditEvent {
		evs, err := s.m.Store.ListAudit(ctx, airlock.AuditFilter{Type: "device.posture_reported"})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	today := time.Now().UTC().Format("2006-01-02")
	for name, args := range map[string][]string{
		"fail-unknown-device": {"--device", "dev_nope", "--managed"},
		"fail-pending-device": {"--device", pending.ID, "--managed"},
		"fail-bad-patch":      {"--device", boot.ID, "--managed", "--patch-level", "last tuesday"},
		"fail-no-device":      {"--managed"},
	} {
		out, errOut, code := runCLI(t, append(append([]string{"admin", "posture"}, args...), "--data", dir)...)
		if code == 0 || out != "" || errOut == "" {
			t.Errorf("%s: exit %d, out %q, err %q", name, code, out, errOut)
		}
	}
	if d, _ := s.m.Store.FindDeviceByID(ctx, boot.ID); d.Posture.Source != "bootstrap" {
		t.Fatalf("a refused report changed the posture: %+v", d.Posture)
	}
	if n := len(events()); n != 0 {
		t.Fatalf("%d posture events after refusals", n)
	}

	before := time.Now().UTC().Add(-time.Second)
	out, errOut, code := runCLI(t, "admin", "posture", "--device", boot.ID, "--managed", "--disk-encrypted", "--edr",
		"--screen-lock", "--os-version", "14.2", "--patch-level", today, "--data", dir)
	var res map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res["compliant"] != true {
		t.Fatalf("posture: %d %q %q", code, out, errOut)
	}
	d, err := s.m.Store.FindDeviceByID(ctx, boot.ID)
	if err != nil || !strings.HasPrefix(d.Posture.Source, "host:") || d.Posture.OSVersion != "14.2" ||
		d.Posture.ReportedAt.Before(before) || !d.Posture.Managed || !d.Posture.EDRRunning {
		t.Fatalf("stored posture %+v (%v)", d.Posture, err)
	}
	evs := events()
	if len(evs) != 1 || !strings.HasPrefix(evs[0].Actor, "host:") || evs[0].DeviceID != boot.ID || evs[0].Details["via"] != "host-cli" {
		t.Fatalf("posture events %+v", evs)
	}
}
