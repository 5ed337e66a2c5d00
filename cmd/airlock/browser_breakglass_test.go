package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestBrowserBreakGlass: the sealed key (a device-bound virtual
// authenticator, BE=0) enrolled at set-up opens a break-glass session on
// /breakglass — the token shown once, after the alert reached the
// receiver; the same key on the normal login page is refused; a normal
// user on /breakglass is refused.
func TestBrowserBreakGlass(t *testing.T) {
	var alerts atomic.Int32
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Airlock-Signature") != "" {
			alerts.Add(1)
		}
	}))
	t.Cleanup(rcv.Close)
	e := newE2EWith(t, func(c *Config) {
		c.BreakGlass.Scopes = []string{"dba@db-prod", "tier:2"}
		c.BreakGlass.Alerts = []BreakGlassAlert{{URL: rcv.URL + "/alert", Secret: "browser-test-secret"}}
	})
	admin := e.newPerson("admin", deviceBound)
	token := e.bootstrapAdmin(admin)
	alice := e.setupPerson(token, "alice", 1, nil)

	// Set-up: the break-glass account and its sealed key.
	u := e.api(token, "POST", "/v1/admin/users", map[string]any{"name": "bg-ops", "tier": 0, "kind": "breakglass"}, http.StatusCreated)
	uid, _ := u["id"].(string)
	dev := e.newDevice(token, uid, "safe-key", true)
	link := e.issueLink(token, uid, dev, true)
	safe := e.newPerson("safe", deviceBound)
	safe.mustEnrol(link, "bg-ops")

	// The day of use.
	st := safe.open("/breakglass")
	safe.expectNoError(st)
	if got := safe.text("bg-policy-scopes"); got != "dba@db-prod, tier:2" {
		safe.fatalf("policy scopes shown %q", got)
	}
	safe.setValue("#bg-account", "bg-ops")
	safe.setValue("#bg-justification", "SSO down, primary DB failing over; INC-42")
	st = safe.act("#bg-submit")
	safe.expectOK(st, "Break-glass session started")
	tok := safe.text("bg-token")
	if !strings.HasPrefix(tok, "bg.") || safe.text("bg-scopes") != "dba@db-prod, tier:2" || !strings.HasPrefix(safe.text("bg-event"), "bge_") {
		safe.fatalf("token %q, scopes %q, event %q", tok, safe.text("bg-scopes"), safe.text("bg-event"))
	}
	if alerts.Load() < 1 {
		e.fatalf("the token was shown before any alert reached the receiver")
	}
	if n := len(e.audit("breakglass.started")); n != 1 {
		e.fatalf("want one breakglass.started event, got %d", n)
	}
	// The token decides with the break-glass policy, from the API.
	d := e.api("", "POST", "/v1/decide", map[string]any{"session": tok, "action": "db.write", "resource": "db-prod"}, http.StatusOK)
	if d["decision"] != "allow" {
		e.fatalf("decide with the break-glass token: %v", d)
	}
	// The browser got no session cookie from it.
	if got := safe.sessionStatus(); got != http.StatusUnauthorized {
		safe.fatalf("GET /v1/session after break-glass = %d, want 401 (no cookie session)", got)
	}

	// The same sealed key on the normal login page is refused.
	st = safe.login()
	safe.expectError(st)
	if got := safe.sessionStatus(); got != http.StatusUnauthorized {
		safe.fatalf("the sealed key signed in normally: GET /v1/session = %d", got)
	}

	// A normal user on the break-glass page is refused.
	st = alice.open("/breakglass")
	alice.expectNoError(st)
	alice.setValue("#bg-account", "alice")
	alice.setValue("#bg-justification", "I want in")
	st = alice.act("#bg-submit")
	alice.expectError(st, "break-glass")
	if alice.has("#bg-result:not([hidden])") {
		alice.fatalf("alice: a break-glass session was shown")
	}
	if n := len(e.audit("breakglass.started")); n != 1 {
		e.fatalf("breakglass.started events after alice's attempt: %d, want 1", n)
	}
}
