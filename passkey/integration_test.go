package passkey

import (
	"encoding/json"
	"strings"
	"testing"

	"airlock"
	"airlock/audit"
	"airlock/notify"
	"airlock/passkey/passkeytest"
)

var (
	_ Auditor  = (*audit.Log)(nil)
	_ Notifier = (*notify.Outbox)(nil)
)

// TestEnrolWithRealOutboxAndAuditLog wires the service as cmd/airlock does:
// the notification lands in the store's durable outbox and the audit
// events in the store's audit table, with no secret in either.
func TestEnrolWithRealOutboxAndAuditLog(t *testing.T) {
	h := newHarness(t, nil)
	log := audit.New(h.store, h.clk.Now, nil)
	svc, err := New(h.cfg, h.store, log, notify.NewOutbox(h.store, h.clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc
	u := h.user("alice", 0)
	d := h.device("laptop", u.ID)
	secret, _ := h.token(u, d)
	id, opt := h.beginEnrol(secret)
	a := passkeytest.New()
	resp, cred, err := a.Register(testOrigin, opt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.FinishEnrol(h.ctx, id, resp, Meta{IP: "198.51.100.4", UserAgent: "Firefox"}); err != nil {
		t.Fatal(err)
	}
	ns, err := h.store.ListNotificationsByUser(h.ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 || ns[0].Kind != NotifyPasskeyAdded {
		t.Fatalf("notifications %+v", ns)
	}
	var p map[string]any
	if err := json.Unmarshal(ns[0].Payload, &p); err != nil {
		t.Fatal(err)
	}
	if p["credential_id"] != b64(cred.ID) || p["device"] != "laptop" || p["ip"] != "198.51.100.4" || p["user_agent"] != "Firefox" || p["aaguid"] == "" || p["time"] == "" {
		t.Fatalf("payload %v", p)
	}
	if _, err := h.login(a); err != nil {
		t.Fatal(err)
	}
	evs, err := log.List(h.ctx, airlock.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	want := []string{"enrol.token_issued", "enrol.passkey_added", "auth.login"}
	if len(types) != len(want) || types[0] != want[0] || types[1] != want[1] || types[2] != want[2] {
		t.Fatalf("audit types %v, want %v", types, want)
	}
	if raw, _ := json.Marshal(evs); strings.Contains(string(raw), secret) {
		t.Fatal("enrolment secret in the audit log")
	}
}
