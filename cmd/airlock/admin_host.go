package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"airlock"
	"airlock/audit"
	"airlock/device"
)

// cmdHostPosture records a device's posture from the server host, opening
// the store directly like `admin bootstrap`: whoever can read the data
// directory (or holds the store's credentials) is already the root of
// trust. It is the way out when the only tier-0 admin's device posture has
// gone stale, so that the policy refuses every admin change, including the
// posture report that would cure it (docs/operations.md). It only records
// posture on a trusted device; the source is "host:<hostname>" and the
// change is audited like an admin's report.
func cmdHostPosture(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin posture", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dev := fs.String("device", "", "device id")
	managed := fs.Bool("managed", false, "the device is managed")
	disk := fs.Bool("disk-encrypted", false, "the disk is encrypted")
	edr := fs.Bool("edr", false, "EDR is running")
	lock := fs.Bool("screen-lock", false, "a screen lock is set")
	osVersion := fs.String("os-version", "", "OS version")
	patch := fs.String("patch-level", "", "latest security patch, YYYY-MM-DD")
	resolve := configFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dev == "" || fs.NArg() != 0 {
		return fmt.Errorf("admin posture: usage: airlock admin posture --device ID [--managed] [--disk-encrypted] [--edr] [--screen-lock] [--os-version V] [--patch-level YYYY-MM-DD] [--data DIR | --store URL]")
	}
	cfg, err := resolve()
	if err != nil {
		return err
	}
	ctx := context.Background()
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	d, err := store.FindDeviceByID(ctx, *dev)
	if err != nil {
		return fmt.Errorf("admin posture: %s", airlock.ErrorMessage(err))
	}
	if d.Trust != airlock.TrustTrusted {
		return fmt.Errorf("admin posture: device %s is %s, not trusted: its posture is not recorded", d.ID, d.Trust)
	}
	host, _ := os.Hostname()
	now := time.Now().UTC().Truncate(time.Microsecond)
	p := airlock.Posture{Managed: *managed, DiskEncrypted: *disk, EDRRunning: *edr, ScreenLock: *lock,
		OSVersion: *osVersion, PatchLevel: *patch, ReportedAt: now, Source: "host:" + host}
	if err := device.ValidatePosture(p, now); err != nil {
		return fmt.Errorf("admin posture: %s", airlock.ErrorMessage(err))
	}
	d.Posture, d.UpdatedAt = p, now
	if err := store.UpdateDevice(ctx, d); err != nil {
		return fmt.Errorf("admin posture: %s", airlock.ErrorMessage(err))
	}
	c := device.Evaluate(d, cfg.Posture, now)
	log := audit.New(store, nil, nil)
	err = log.Record(ctx, airlock.AuditEvent{Type: "device.posture_reported", Actor: "host:" + host, Subject: d.ID,
		DeviceID: d.ID, Details: map[string]any{"posture": p, "compliant": c.Compliant, "noncompliance": c.Reasons, "via": "host-cli"}})
	if cerr := log.Close(ctx); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("admin posture: recorded, but the audit event failed: %w", err)
	}
	return json.NewEncoder(stdout).Encode(map[string]any{"device": d.ID, "posture": p, "compliant": c.Compliant,
		"noncompliance": c.Reasons})
}
