// Package storetest checks that an airlock.Store implementation behaves as
// the interfaces in the root package say: one conformance suite that every
// store (sqlite, postgres) must pass.
//
// Beyond the interface docs, the suite pins down these choices, which every
// store must share:
//
//   - Times round-trip with at least microsecond precision (the suite uses
//     microsecond times) and compare with time.Time.Equal; the location
//     need not survive. A zero time round-trips as a zero time.
//   - Roles, Transports and AMR come back as empty, non-nil slices when
//     stored nil or empty; a nil User.Window stays nil. Byte slices compare
//     with bytes.Equal, so nil and empty are the same.
//   - AuditEvent.Details round-trips as through encoding/json (numbers come
//     back as float64); nil or empty details come back empty.
//   - TouchSession and SetSessionUV on an ended session are ECONFLICT, like
//     EndSession; on a missing one ENOTFOUND.
//   - RevokeCredential and MarkNotificationDelivered on an already
//     revoked/delivered row succeed and keep the first time;
//     MarkNotificationFailed on a delivered notification is ECONFLICT.
//   - UseEnrolmentToken, EndSession, TouchSession, SetSessionUV,
//     UpdateCredentialUse, RevokeCredential, MarkNotification* on a missing
//     row are ENOTFOUND; List* methods of an unknown user return no rows
//     and no error; EndUserSessions returns the ended IDs in any order.
//   - Update* ignore the immutable fields (ID, Name, Handle, CreatedAt …).
package storetest

import (
	"context"
	"testing"
	"time"

	"airlock"
)

// Run runs the conformance suite. open must return a new, empty store each
// time it is called, and close it when t ends (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) airlock.Store) {
	t.Run("Ping", func(t *testing.T) {
		if err := open(t).Ping(context.Background()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
	t.Run("Users", func(t *testing.T) { testUsers(t, open) })
	t.Run("HasActiveTier0Admin", func(t *testing.T) { testTier0Admin(t, open) })
	t.Run("Devices", func(t *testing.T) { testDevices(t, open) })
	t.Run("Credentials", func(t *testing.T) { testCredentials(t, open) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, open) })
	t.Run("EnrolmentTokens", func(t *testing.T) { testEnrolmentTokens(t, open) })
	t.Run("Ceremonies", func(t *testing.T) { testCeremonies(t, open) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, open) })
	t.Run("Notifications", func(t *testing.T) { testNotifications(t, open) })
	t.Run("RateLimit", func(t *testing.T) { testRateLimit(t, open) })
}

// t0 is the suite's reference time: microsecond precision, not on a second.
var t0 = time.Date(2031, time.March, 4, 5, 6, 7, 891011000, time.UTC)

// at returns t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// elsewhere is a non-UTC zone, to check that stores compare instants, not
// wall clocks.
var elsewhere = time.FixedZone("UTC+05:30", 5*3600+1800)

// bytesOf returns n bytes starting at b and counting up; they include 0x00
// and bytes that are not valid UTF-8.
func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b + byte(i*37)
	}
	return out
}

// wantCode fails t unless err carries code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := airlock.ErrorCode(err); got != code {
		t.Errorf("%s: error code %q (err %v), want %q", what, got, err, code)
	}
}

// must fails t now if err is not nil.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
