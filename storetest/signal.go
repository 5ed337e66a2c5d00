package storetest

import (
	"context"
	"testing"
	"time"

	"airlock"
)

func testSignals(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()
	berlin := &airlock.GeoPoint{Lat: 52.52, Lon: 13.405, Country: "DE"}
	sydney := &airlock.GeoPoint{Lat: -33.8688, Lon: 151.2093, Country: "AU"}

	t.Run("networks", func(t *testing.T) {
		s := open(t)
		_, err := s.FindNetwork(ctx, "u-1", "192.0.2.0/24")
		wantCode(t, "FindNetwork (never seen)", err, airlock.ENOTFOUND)
		_, err = s.LatestNetwork(ctx, "u-1")
		wantCode(t, "LatestNetwork (never seen)", err, airlock.ENOTFOUND)

		must(t, "SeeNetwork", s.SeeNetwork(ctx, "u-1", "192.0.2.0/24", berlin, t0.In(elsewhere)))
		got, err := s.FindNetwork(ctx, "u-1", "192.0.2.0/24")
		must(t, "FindNetwork", err)
		want := &airlock.NetworkSighting{UserID: "u-1", Network: "192.0.2.0/24", FirstSeen: t0, LastSeen: t0, Location: berlin}
		checkAllSet(t, want)
		checkEqual(t, "sighting", want, got)

		// Seen again later without a location: LastSeen moves, the
		// location stays.
		must(t, "SeeNetwork", s.SeeNetwork(ctx, "u-1", "192.0.2.0/24", nil, at(time.Hour)))
		got, err = s.FindNetwork(ctx, "u-1", "192.0.2.0/24")
		must(t, "FindNetwork", err)
		want.LastSeen = at(time.Hour)
		checkEqual(t, "sighting seen again", want, got)

		// An older report never moves LastSeen back nor replaces the
		// location.
		must(t, "SeeNetwork", s.SeeNetwork(ctx, "u-1", "192.0.2.0/24", sydney, at(time.Minute)))
		got, err = s.FindNetwork(ctx, "u-1", "192.0.2.0/24")
		must(t, "FindNetwork", err)
		checkEqual(t, "sighting after an older report", want, got)

		// A newer located report replaces the location.
		must(t, "SeeNetwork", s.SeeNetwork(ctx, "u-1", "192.0.2.0/24", sydney, at(2*time.Hour)))
		got, err = s.FindNetwork(ctx, "u-1", "192.0.2.0/24")
		must(t, "FindNetwork", err)
		want.LastSeen, want.Location = at(2*time.Hour), sydney
		checkEqual(t, "sighting with a new location", want, got)

		// Another network, unlocated, seen later: the latest.
		must(t, "SeeNetwork", s.SeeNetwork(ctx, "u-1", "2001:db8:1::/48", nil, at(3*time.Hour)))
		latest, err := s.LatestNetwork(ctx, "u-1")
		must(t, "LatestNetwork", err)
		checkEqual(t, "latest sighting", &airlock.NetworkSighting{UserID: "u-1", Network: "2001:db8:1::/48",
			FirstSeen: at(3 * time.Hour), LastSeen: at(3 * time.Hour)}, latest)
		if latest.Location != nil {
			t.Errorf("unlocated sighting has Location %+v, want nil", latest.Location)
		}

		// Users are independent.
		_, err = s.FindNetwork(ctx, "u-2", "192.0.2.0/24")
		wantCode(t, "FindNetwork (other user)", err, airlock.ENOTFOUND)
		must(t, "SeeNetwork", s.SeeNetwork(ctx, "u-2", "198.51.100.0/24", nil, at(10*time.Hour)))
		latest, err = s.LatestNetwork(ctx, "u-1")
		must(t, "LatestNetwork", err)
		if latest.Network != "2001:db8:1::/48" {
			t.Errorf("LatestNetwork(u-1) = %s after u-2 was seen later", latest.Network)
		}

		n, err := s.DeleteNetworksBefore(ctx, at(3*time.Hour))
		must(t, "DeleteNetworksBefore", err)
		if n != 1 {
			t.Errorf("DeleteNetworksBefore = %d, want 1 (LastSeen equal to the bound is kept)", n)
		}
		_, err = s.FindNetwork(ctx, "u-1", "192.0.2.0/24")
		wantCode(t, "FindNetwork after delete", err, airlock.ENOTFOUND)
		_, err = s.FindNetwork(ctx, "u-1", "2001:db8:1::/48")
		must(t, "FindNetwork (kept)", err)
	})

	t.Run("risk-events", func(t *testing.T) {
		s := open(t)
		count := func(user, kind string, since time.Time, want int) {
			t.Helper()
			n, err := s.CountRiskEvents(ctx, user, kind, since)
			must(t, "CountRiskEvents", err)
			if n != want {
				t.Errorf("CountRiskEvents(%s, %s, %s) = %d, want %d", user, kind, since.Sub(t0), n, want)
			}
		}
		count("u-1", airlock.RiskCeremonyFailure, t0, 0)
		for _, d := range []time.Duration{-time.Hour, -time.Microsecond, 0, time.Minute} {
			must(t, "RecordRiskEvent", s.RecordRiskEvent(ctx, "u-1", airlock.RiskCeremonyFailure, at(d).In(elsewhere)))
		}
		// The same instant twice counts twice.
		must(t, "RecordRiskEvent", s.RecordRiskEvent(ctx, "u-1", airlock.RiskCeremonyFailure, at(time.Minute)))
		must(t, "RecordRiskEvent", s.RecordRiskEvent(ctx, "u-1", airlock.RiskClone, t0))
		must(t, "RecordRiskEvent", s.RecordRiskEvent(ctx, "u-2", airlock.RiskCeremonyFailure, t0))
		count("u-1", airlock.RiskCeremonyFailure, t0, 3) // at since counts
		count("u-1", airlock.RiskCeremonyFailure, at(-2*time.Hour), 5)
		count("u-1", airlock.RiskClone, at(-time.Hour), 1)
		count("u-1", airlock.RiskRecovery, at(-time.Hour), 0)
		count("u-2", airlock.RiskCeremonyFailure, t0, 1)

		n, err := s.DeleteRiskEventsBefore(ctx, t0)
		must(t, "DeleteRiskEventsBefore", err)
		if n != 2 {
			t.Errorf("DeleteRiskEventsBefore = %d, want 2", n)
		}
		count("u-1", airlock.RiskCeremonyFailure, at(-2*time.Hour), 3)
	})

	t.Run("earlier-session", func(t *testing.T) {
		s := open(t)
		has := func(user, dev string, before time.Time, want bool) {
			t.Helper()
			got, err := s.HasEarlierSession(ctx, user, dev, before)
			must(t, "HasEarlierSession", err)
			if got != want {
				t.Errorf("HasEarlierSession(%s, %s, %s) = %v, want %v", user, dev, before.Sub(t0), got, want)
			}
		}
		has("u-1", "d-1", at(time.Hour), false)
		first := liveSession("s-1", "u-1", t0) // on device d-1
		must(t, "CreateSession", s.CreateSession(ctx, first))
		has("u-1", "d-1", t0, false) // created at before: not earlier
		has("u-1", "d-1", at(time.Microsecond), true)
		has("u-2", "d-1", at(time.Hour), false)
		has("u-1", "d-2", at(time.Hour), false)
		must(t, "EndSession", s.EndSession(ctx, "s-1", "logout", at(time.Minute)))
		has("u-1", "d-1", at(time.Hour), true) // ended sessions count
	})
}

// testDecideEdge runs the conformance tests of the decision edge's stores:
// step-up transactions, exceptions, resources and risk-signal history.
func testDecideEdge(t *testing.T, open func(t *testing.T) airlock.Store) {
	t.Run("StepUps", func(t *testing.T) { testStepUps(t, open) })
	t.Run("Exceptions", func(t *testing.T) { testExceptions(t, open) })
	t.Run("Resources", func(t *testing.T) { testResources(t, open) })
	t.Run("Signals", func(t *testing.T) { testSignals(t, open) })
}
