package breakglass

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"airlock"
	"airlock/passkey"
	"airlock/passkey/passkeytest"
	"airlock/policy"
	"airlock/session"
	"airlock/sshca"
)

func newSSHKey(tb testing.TB) (ssh.PublicKey, ed25519.PrivateKey) {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return k, priv
}

// TestBreakGlassStoreStopped: a whole use with the store stopped — begin
// (ceremony in memory), finish (credentials from the static file), a
// decision, an SSH certificate, end — audited to the local file only;
// the account is locked offline (also for a restarted process); then the
// store comes back and Merge puts the offline events into the log in
// order, records the event row, keeps the account locked until the review,
// and is idempotent (a crash before the file was rotated merges nothing
// twice).
func TestBreakGlassStoreStopped(t *testing.T) {
	h := newHarness(t, nil)
	auditBefore := len(h.audited(""))
	h.store.stopped.Store(true)

	tok, sess := h.mustUse(h.svc)
	if !sess.Event.Offline || sess.Event.AlertIDs == nil || !sess.Event.AlertDelivered {
		t.Errorf("offline event %+v", sess.Event)
	}
	got, err := h.svc.Authenticate(h.ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	// Tier scopes read the in-memory catalog while the store is down.
	for res, want := range map[string]policy.Outcome{"db-prod": policy.Allow, "grafana": policy.Allow, "ci": policy.Deny} {
		d, err := h.svc.Decide(h.ctx, got, "use", res, meta)
		if err != nil || d.Decision.Outcome != want {
			t.Fatalf("Decide %s: %v %+v, want %s", res, err, d, want)
		}
	}
	pub, _ := newSSHKey(t)
	cert, err := h.svc.IssueSSHCertificate(h.ctx, got, pub, "dba@db-prod", testIP, meta)
	if err != nil {
		t.Fatal(err)
	}
	if cert.CriticalOptions[sshca.OptSourceAddress] != testIP+"/32" {
		t.Errorf("source-address %q", cert.CriticalOptions[sshca.OptSourceAddress])
	}
	// Locked offline: a second use is refused, also by a restarted process.
	_, err = h.svc.Begin(h.ctx, "bg", "again", meta)
	wantErr(t, err, airlock.EFORBIDDEN, ReasonLocked)
	restarted := h.newService()
	_, err = restarted.Begin(h.ctx, "bg", "again", meta)
	wantErr(t, err, airlock.EFORBIDDEN, ReasonLocked)
	if err := h.svc.End(h.ctx, got, "fixed", meta); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Authenticate(h.ctx, tok); err == nil {
		t.Error("an ended offline session authenticated")
	}

	// Everything went to the local file, nothing to the store.
	spooledEvents := h.fallback(h.svc)
	var types []string
	for _, e := range spooledEvents {
		types = append(types, e.Type)
		if e.Details["offline"] != true || e.spoolID() == "" {
			t.Errorf("spooled event %s without offline/spool_id: %v", e.Type, e.Details)
		}
	}
	wantTypes := "breakglass.alert,breakglass.started,breakglass.decision,breakglass.decision,breakglass.decision,breakglass.ssh_certificate," +
		"breakglass.begin_refused,breakglass.begin_refused,breakglass.ended"
	if strings.Join(types, ",") != wantTypes {
		t.Fatalf("local audit file:\n%v\nwant\n%v", types, wantTypes)
	}
	if fi, err := os.Stat(h.svc.auditSpool.path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("local audit file mode: %v %v", fi, err)
	}
	if n, err := h.svc.Merge(h.ctx); airlock.ErrorCode(err) != airlock.EUNAVAILABLE || n != 0 {
		t.Errorf("Merge with the store down: %d, %v", n, err)
	}

	// The store comes back.
	h.store.stopped.Store(false)
	if len(h.audited("")) != auditBefore {
		t.Fatal("the store received audit events while stopped")
	}
	keep := filepath.Join(t.TempDir(), "copy.jsonl")
	copyFile(t, h.svc.auditSpool.path, keep)
	n, err := h.svc.Merge(h.ctx)
	if err != nil || n != len(spooledEvents) {
		t.Fatalf("Merge: %d, %v; want %d", n, err, len(spooledEvents))
	}
	logged := h.audited("breakglass.")
	var logTypes []string
	for _, e := range logged {
		logTypes = append(logTypes, e.Type)
	}
	if strings.Join(logTypes, ",") != wantTypes+",breakglass.merged" {
		t.Fatalf("audit log after merge:\n%v", logTypes)
	}
	for i, e := range logged[:len(spooledEvents)] {
		if e.Details["spool_id"] != spooledEvents[i].spoolID() || !e.Time.Equal(spooledEvents[i].Time) {
			t.Errorf("merged event %d: %v at %v, want spool id %s at %v", i, e.Details["spool_id"], e.Time, spooledEvents[i].spoolID(), spooledEvents[i].Time)
		}
	}
	ev, err := h.sqlite.FindBreakGlassEventByID(h.ctx, sess.Event.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !ev.Offline || ev.Reviewed() || ev.EndReason != "fixed" || ev.AccountID != h.bg.ID ||
		string(ev.TokenHash) != string(session.HashToken(tok)) {
		t.Errorf("merged event %+v", ev)
	}
	if c, _ := h.sqlite.FindCredentialByID(h.ctx, h.bgCred.ID); c.SignCount <= h.bgCred.SignCount {
		t.Errorf("sign count of the offline use not stored: %d", c.SignCount)
	}
	if _, err := os.Stat(h.svc.auditSpool.path); !os.IsNotExist(err) {
		t.Errorf("the local audit file was not rotated: %v", err)
	}
	// Still locked, now by the store.
	_, err = h.svc.Begin(h.ctx, "bg", "again", meta)
	wantErr(t, err, airlock.EFORBIDDEN, ReasonLocked)

	// A crash after the merge but before the rotation: the same file
	// again merges nothing twice.
	copyFile(t, keep, h.svc.auditSpool.path)
	if n, err := h.svc.Merge(h.ctx); err != nil || n != 0 {
		t.Fatalf("second Merge: %d, %v", n, err)
	}
	withSpoolID := 0
	for _, e := range h.audited("breakglass.") {
		if e.Details["spool_id"] != nil {
			withSpoolID++
		}
	}
	if withSpoolID != len(spooledEvents) {
		t.Errorf("%d spooled events in the log after a repeated merge, want %d", withSpoolID, len(spooledEvents))
	}
	if n, err := h.svc.Merge(h.ctx); err != nil || n != 0 {
		t.Fatalf("Merge of nothing: %d, %v", n, err)
	}

	// The review unlocks the account.
	if _, err := h.review(h.people["root"], ev.ID, "reviewed with the on-call lead; INC-7 post-mortem"); err != nil {
		t.Fatal(err)
	}
	h.mustUse(h.svc)
}

// TestBreakGlassStoreStoppedNoFile: with the store down and no static
// file, the path refuses (it cannot verify anything).
func TestBreakGlassStoreStoppedNoFile(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CredentialsFile = "" })
	h.store.stopped.Store(true)
	_, err := h.svc.Begin(h.ctx, "bg", "db down", meta)
	wantErr(t, err, airlock.EUNAVAILABLE, ReasonNoCredentials)
	// Offline, a name the static file does not know is refused like a
	// normal account.
	h2 := newHarness(t, nil)
	h2.store.stopped.Store(true)
	_, err = h2.svc.Begin(h2.ctx, "alice", "db down", meta)
	wantErr(t, err, airlock.EFORBIDDEN, passkey.ReasonNotBreakGlass)
}

// TestBreakGlassStoreStopsMidway: begun with the store up, finished after
// it stopped — the stored ceremony is gone with the store, so the finish
// is refused (nothing half-done), and a fresh begin works offline.
func TestBreakGlassStoreStopsMidway(t *testing.T) {
	h := newHarness(t, nil)
	b, err := h.svc.Begin(h.ctx, "bg", "db down", meta)
	if err != nil {
		t.Fatal(err)
	}
	h.store.stopped.Store(true)
	resp, _ := h.bgAuth.Assert(testOrigin, mustJSON(t, b))
	_, _, err = h.svc.Finish(h.ctx, b.Ceremony, resp, meta)
	wantErr(t, err, airlock.EUNAUTHORIZED, passkey.ReasonUnknownCeremony)
	_, sess := h.mustUse(h.svc)
	if !sess.Event.Offline {
		t.Error("not offline")
	}
}

// TestBreakGlassOfflineClone: offline, the static file's sign count is
// only a floor: the counts of offline uses (kept in memory, and read back
// from the local audit file after a restart) raise it, and an assertion
// whose counter did not increase past them is refused as a clone.
func TestBreakGlassOfflineClone(t *testing.T) {
	h := newHarness(t, nil)
	h.store.stopped.Store(true)
	_, sess := h.mustUse(h.svc)
	restarted := h.newService()
	restarted.mu.Lock()
	n := restarted.signCounts[string(h.bgCred.ID)]
	restarted.mu.Unlock()
	if n == 0 || n <= h.bgCred.SignCount {
		t.Fatalf("restarted service's sign count floor %d (file %d)", n, h.bgCred.SignCount)
	}
	_ = sess
	// Another process with a copy of the key as exported: a fresh service
	// whose floor is that use's count; the clone asserts a lower counter.
	h2 := newHarness(t, nil)
	h2.store.stopped.Store(true)
	h2.svc.noteSignCount(h2.bgCred.ID, 50)
	_, _, err := h2.use(h2.svc, "bg", h2.bgAuth, "db down", passkeytest.WithCounter(10))
	wantErr(t, err, airlock.EUNAUTHORIZED, passkey.ReasonClone)
	_, _, err = h2.use(h2.svc, "bg", h2.bgAuth, "db down", passkeytest.WithCounter(51))
	if err != nil {
		t.Fatalf("a counter past the floor: %v", err)
	}
}

func copyFile(tb testing.TB, from, to string) {
	tb.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}
