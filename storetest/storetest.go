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
//   - AuditEvent.Details round-trips as through encoding/json decoding with
//     UseNumber (numbers come back as json.Number with the recorded digits);
//     nil or empty details come back empty.
//   - TouchSession and SetSessionUV on an ended session are ECONFLICT, like
//     EndSession; on a missing one ENOTFOUND.
//   - RevokeCredential and MarkNotificationDelivered on an already
//     revoked/delivered row succeed and keep the first time;
//     MarkNotificationFailed on a delivered notification is ECONFLICT.
//   - UseEnrolmentToken, EndSession, TouchSession, SetSessionUV,
//     UpdateCredentialUse, RevokeCredential, MarkNotification* on a missing
//     row are ENOTFOUND; List* methods of an unknown user return no rows
//     and no error; EndUserSessions and EndDeviceSessions return the ended
//     IDs in any order, and leave sessions that had already ended as they
//     were.
//   - UpdateCredentialUse is a compare-and-set on (not revoked, sign count =
//     oldCount): a stale count or a revoked credential is ECONFLICT with
//     nothing written, and of N concurrent updates from the same old count
//     exactly one succeeds.
//   - EnrolCredential is all or nothing: a used token or a duplicate
//     credential id is ECONFLICT and leaves both the token (unused, or as
//     it was) and the credentials table unchanged; of N concurrent calls on
//     one token exactly one succeeds.
//   - Update* ignore the immutable fields (ID, Name, Handle, CreatedAt …).
//   - Versions: CreateUser/CreateDevice store the caller's Version as given
//     (any value, normally 0). UpdateUser/UpdateDevice require the stored
//     version to equal the caller's exactly (a version ahead of the store is
//     as stale as one behind it); on success the stored version and the
//     caller's struct both go up by one, on ECONFLICT nothing is written and
//     the caller's struct is left unchanged. A missing ID is ENOTFOUND
//     whatever the version. Of N concurrent updates carrying the same
//     version exactly one succeeds and the rest are ECONFLICT.
//   - HasActiveTier0Admin: the user's Roles must contain airlock.RoleAdmin
//     as an element, compared exactly (case-sensitive, no prefix, substring
//     or pattern match); the credential's device must exist with trust
//     "trusted" (pending, revoked or missing all fail). All conditions hold
//     for the same user, credential and device. The user's kind and access
//     window and the device's owner and posture are not consulted.
//   - ListExpiredSessions: a deadline equal to now counts as expired (it is
//     "not after now", matching Session.IsLive). The order key is the
//     earlier of AbsoluteDeadline and LastSeen+IdleTimeout; the order of
//     sessions sharing a deadline is unspecified. limit ≤ 0 means 100.
//     Ended sessions are never listed, however old their deadlines.
//   - AuditFilter: all set fields combine with AND. AfterSeq and BeforeSeq
//     are exclusive bounds; BeforeSeq ≤ 0 is no bound. With Newest, Limit
//     (or the default page size) picks the newest matching events and they
//     come in descending Seq order, so Newest with BeforeSeq set to the
//     last Seq seen pages backwards.
//     GrantID matches exactly; Since is inclusive and Until exclusive,
//     both on AuditEvent.Time; a zero Since/Until is no bound.
//
// The audit log (AuditStore) is the one part where every store must agree
// byte for byte, because verify and outside verifiers recompute it:
//
//   - A record is an airlock.AuditEntry: Seq, the leaf bytes exactly as
//     airlock.AuditLeaf returned them (stored verbatim; events read back
//     by ListAudit are parsed from it with airlock.ParseAuditLeaf, never
//     rebuilt from other columns), the tlog stored hashes written with it
//     (tlog.StoredHashes(Seq-1, leaf, …)) and the index columns Time, Type,
//     UserID, SessionID, GrantID copied from the event.
//   - AppendAudit: compute the records with airlock.PrepareAuditAppend(size,
//     events, r) inside the write transaction, where size is the tree size
//     read in that transaction and r reads stored hashes in that
//     transaction (hashes of the batch itself are served from memory by
//     PrepareAuditAppend). The transaction must exclude every other
//     AppendAudit on the same database, in any process (SQLite: the single
//     writer with BEGIN IMMEDIATE; PostgreSQL: e.g. pg_advisory_xact_lock
//     or a head row locked FOR UPDATE), so that Seq stays 1, 2, 3… with no
//     gap or fork. Insert every record or none; set events' Seq only after
//     the commit. An invalid event anywhere in the batch is EINVALID and
//     nothing is written, the other events' Seq stay untouched.
//   - ReadAuditHashes takes tlog stored-hash indexes. A store that keeps
//     each record's hashes with the record (recommended: 32-byte hashes
//     concatenated, airlock.EncodeAuditHashes) finds index x at
//     airlock.AuditHashLocation(x) = (seq, position). An index not yet
//     stored is ENOTFOUND. ReadAuditHashes must see every committed append.
//   - AuditTreeSize is the largest stored Seq (0 when empty).
//   - ReadAuditEntries returns records as stored, unchecked (verify must see
//     tampering, not an error: stored hashes that are not whole 32-byte
//     hashes come back as nil Hashes, a leaf as whatever bytes are stored),
//     Seq > afterSeq ascending; ListAudit,
//     ReadAuditEntries and ListAuditCheckpoints: limit 0 means 1000, a
//     negative limit is EINVALID, and a store may cap large limits.
//   - Checkpoints: the store keeps Text verbatim without parsing it, one per
//     Size; Size must be 1..tree size (read in the same transaction), else
//     EINVALID; adding the identical Text again succeeds, a different Text
//     for a stored Size is ECONFLICT. LatestAuditCheckpoint is the largest
//     Size (ENOTFOUND if none); ListAuditCheckpoints is by ascending Size.
//     CreatedAt round-trips like any time.
//   - Cursors: AuditCursor of an unknown name is 0 with no error;
//     SetAuditCursor never moves backwards (ECONFLICT), accepts the same
//     value again, and refuses an empty name, a negative seq or a seq past
//     the tree size (EINVALID). Names are independent.
//   - The records and checkpoints are append-only: the store never updates
//     or deletes them, and should make the database refuse it too (SQLite
//     and PostgreSQL: triggers).
//   - Step-ups: CompleteStepUp is a compare-and-set on "not completed" (a
//     second completion, or a proof hash stored on any transaction, is
//     ECONFLICT with nothing written). ConsumeStepUpProof is a
//     compare-and-set on "not used": of N concurrent consumers exactly one
//     gets the transaction, the rest ECONFLICT; an unknown or empty hash is
//     ENOTFOUND; an expired proof is still consumed and returned. Neither
//     looks at ExpiresAt. DeleteExpiredStepUps deletes a row only when both
//     ExpiresAt and ProofExpiresAt (zero: expired) are strictly before now.
//     Params, digests and hashes are byte slices (nil and empty equal).
//   - Exceptions: live means ExpiresAt strictly after now (an exception
//     expiring exactly now is expired, as sessions are); every list is
//     ordered by ExpiresAt, then ID, and is empty non-nil when nothing
//     matches. An empty UserID applies to every user.
//   - Resources: Labels come back as an empty, non-nil map when stored nil
//     or empty; versions behave exactly as users' and devices' do.
//   - Signals: SeeNetwork keeps FirstSeen, moves LastSeen only forward,
//     and replaces the location only with a non-nil one reported at or
//     after the stored LastSeen; Location is nil when never located.
//     CountRiskEvents counts events at or after since (inclusive);
//     DeleteNetworksBefore and DeleteRiskEventsBefore delete strictly
//     before. HasEarlierSession counts ended sessions too and compares
//     CreatedAt strictly before.
//   - Elevation: ListAccessRequests and ListGrants order ties of CreatedAt
//     by descending ID; ListExpiredAccessRequests and ListGrantsToEnd
//     order ties by ascending ID; ListApprovals and ListSSHCertificates
//     order ties in the order the rows were added. Every list is empty,
//     non-nil when nothing matches, and a limit ≤ 0 means 100.
//     Approval.Groups, SSHCertificate.Principals and Extensions come back
//     empty, non-nil when stored nil or empty. Serials use all 64 bits.
//     CreateAccessRequest refuses an unknown status (EINVALID).
//     ResolveAccessRequest checks its arguments before anything else
//     (EINVALID, nothing written): a zero time, a grant with an empty ID,
//     a grant whose RequestID is not the request's, or a grant with any
//     status but approved. A failed grant insert (e.g. its ID taken)
//     leaves the request pending. EndGrant at the zero time is EINVALID.
//     ListGrants' ActiveAt matches exactly what Grant.IsActive says of the
//     stored grant, so an ended grant is never active, even at a time
//     before it ended.
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
	t.Run("DecideEdge", func(t *testing.T) { testDecideEdge(t, open) })
	t.Run("Elevation", func(t *testing.T) { testElevation(t, open) })
	t.Run("Recovery", func(t *testing.T) { testRecovery(t, open) })
	t.Run("BreakGlass", func(t *testing.T) { testBreakGlass(t, open) })
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
