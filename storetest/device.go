package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"airlock"
)

func fullDevice(id, name string) *airlock.Device {
	return &airlock.Device{
		ID:    id,
		Name:  name,
		Owner: "u-1",
		Kind:  airlock.DeviceContractorIssued,
		Posture: airlock.Posture{
			Managed:       true,
			DiskEncrypted: true,
			OSVersion:     "macOS 16.1",
			PatchLevel:    "2031-02-28",
			EDRRunning:    true,
			ScreenLock:    true,
			ReportedAt:    at(-time.Hour).In(elsewhere),
			Source:        "mdm",
		},
		Trust:     airlock.TrustTrusted,
		CreatedAt: at(0),
		UpdatedAt: at(time.Minute),
		Version:   3, // CreateDevice stores the caller's version
	}
}

// bareDevice returns a device with only the required fields and the given
// trust.
func bareDevice(id string, trust airlock.TrustState) *airlock.Device {
	return &airlock.Device{ID: id, Name: "dev " + id, Owner: airlock.SharedOwner, Kind: airlock.DeviceManaged, Trust: trust, CreatedAt: t0, UpdatedAt: t0}
}

func testDevices(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("round-trip", func(t *testing.T) {
		s := open(t)
		d := fullDevice("d-1", "laptop")
		checkAllSet(t, d)
		must(t, "CreateDevice", s.CreateDevice(ctx, d))
		got, err := s.FindDeviceByID(ctx, d.ID)
		must(t, "FindDeviceByID", err)
		checkEqual(t, "device", d, got)

		// A posture never reported stays zero.
		z := &airlock.Device{ID: "d-2", Name: "station", Owner: airlock.SharedOwner, Kind: airlock.DeviceSharedStation, Trust: airlock.TrustPending, CreatedAt: t0, UpdatedAt: t0}
		must(t, "CreateDevice", s.CreateDevice(ctx, z))
		got, err = s.FindDeviceByID(ctx, z.ID)
		must(t, "FindDeviceByID", err)
		checkEqual(t, "device", z, got)
		if !got.Posture.ReportedAt.IsZero() {
			t.Errorf("ReportedAt = %v, want zero", got.Posture.ReportedAt)
		}
	})

	t.Run("fail-duplicate-id", func(t *testing.T) {
		s := open(t)
		must(t, "CreateDevice", s.CreateDevice(ctx, fullDevice("d-1", "a")))
		wantCode(t, "CreateDevice", s.CreateDevice(ctx, fullDevice("d-1", "b")), airlock.ECONFLICT)
		got, err := s.FindDeviceByID(ctx, "d-1")
		must(t, "FindDeviceByID", err)
		if got.Name != "a" {
			t.Errorf("failed create replaced the device: name %q", got.Name)
		}
	})

	t.Run("fail-not-found", func(t *testing.T) {
		s := open(t)
		_, err := s.FindDeviceByID(ctx, "d-404")
		wantCode(t, "FindDeviceByID", err, airlock.ENOTFOUND)
		wantCode(t, "UpdateDevice", s.UpdateDevice(ctx, fullDevice("d-404", "x")), airlock.ENOTFOUND)
		d := bareDevice("d-404", airlock.TrustTrusted)
		wantCode(t, "UpdateDevice (version 0)", s.UpdateDevice(ctx, d), airlock.ENOTFOUND)
		if d.Version != 0 {
			t.Errorf("failed UpdateDevice changed Version to %d", d.Version)
		}
		if _, err := s.FindDeviceByID(ctx, "d-404"); airlock.ErrorCode(err) != airlock.ENOTFOUND {
			t.Errorf("UpdateDevice of a missing device created one")
		}
	})

	t.Run("list-by-name-then-id", func(t *testing.T) {
		s := open(t)
		for _, d := range [][2]string{{"d-3", "b"}, {"d-2", "b"}, {"d-9", "a"}, {"d-1", "c"}} {
			must(t, "CreateDevice", s.CreateDevice(ctx, fullDevice(d[0], d[1])))
		}
		list, err := s.ListDevices(ctx)
		must(t, "ListDevices", err)
		var ids []string
		for _, d := range list {
			ids = append(ids, d.ID)
		}
		checkEqual(t, "ListDevices order", []string{"d-9", "d-2", "d-3", "d-1"}, ids)
	})

	testVersioning(t, open, versionOps[*airlock.Device]{
		what:    "device",
		fixture: func() *airlock.Device { return bareDevice("d-1", airlock.TrustPending) },
		other:   func() *airlock.Device { return bareDevice("d-2", airlock.TrustPending) },
		create:  func(s airlock.Store, d *airlock.Device) error { return s.CreateDevice(ctx, d) },
		find:    func(s airlock.Store, id string) (*airlock.Device, error) { return s.FindDeviceByID(ctx, id) },
		update:  func(s airlock.Store, d *airlock.Device) error { return s.UpdateDevice(ctx, d) },
		copy:    func(d *airlock.Device) *airlock.Device { c := *d; return &c },
		id:      func(d *airlock.Device) string { return d.ID },
		version: func(d *airlock.Device) *int64 { return &d.Version },
		mutate: func(d *airlock.Device, i int) {
			d.Name = fmt.Sprintf("writer %d", i)
			d.Trust = []airlock.TrustState{airlock.TrustPending, airlock.TrustTrusted, airlock.TrustRevoked}[i%3]
			d.Posture.OSVersion = fmt.Sprintf("os %d", i)
			d.UpdatedAt = at(time.Duration(i+1) * time.Minute)
		},
	})

	t.Run("update", func(t *testing.T) {
		s := open(t)
		orig := fullDevice("d-1", "laptop")
		must(t, "CreateDevice", s.CreateDevice(ctx, orig))
		must(t, "CreateDevice", s.CreateDevice(ctx, fullDevice("d-2", "other")))
		upd := &airlock.Device{
			ID:        "d-1",
			Name:      "renamed",
			Owner:     airlock.SharedOwner,
			Kind:      airlock.DeviceManaged,
			Posture:   airlock.Posture{OSVersion: "15", PatchLevel: "2031-03-01", ReportedAt: at(time.Hour), Source: "agent"},
			Trust:     airlock.TrustRevoked,
			CreatedAt: at(1000 * time.Hour), // immutable: ignored
			UpdatedAt: at(2 * time.Hour),
			Version:   orig.Version,
		}
		must(t, "UpdateDevice", s.UpdateDevice(ctx, upd))
		if upd.Version != orig.Version+1 {
			t.Errorf("after UpdateDevice, Version = %d, want %d", upd.Version, orig.Version+1)
		}
		want := *upd
		want.CreatedAt = orig.CreatedAt
		got, err := s.FindDeviceByID(ctx, "d-1")
		must(t, "FindDeviceByID", err)
		checkEqual(t, "updated device", &want, got)
		other, err := s.FindDeviceByID(ctx, "d-2")
		must(t, "FindDeviceByID", err)
		checkEqual(t, "untouched device", fullDevice("d-2", "other"), other)
	})
}
