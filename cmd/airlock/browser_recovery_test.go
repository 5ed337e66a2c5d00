package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"airlock/recovery"
)

// deviceID returns the id of the device called name, through the admin API.
func (e *e2e) deviceID(token, name string) string {
	e.t.Helper()
	ds, _ := e.api(token, "GET", "/v1/admin/devices", nil, http.StatusOK)["devices"].([]any)
	for _, d := range ds {
		if m, _ := d.(map[string]any); m["name"] == name {
			return m["id"].(string)
		}
	}
	e.fatalf("no device %q", name)
	return ""
}

// TestBrowserRecovery is issue 6's recovery story in real browsers: sam
// (tier 1) clicks "Lost my passkey?" on the login page and gets his
// recovery code once; olga (a recovery officer, her own browser context
// and passkey) reviews the case on /recovery/{id} and approves it with her
// passkey and a verification note (quorum 1 for tier 1); after the
// cool-down (1 s by config, the clock advanced) sam checks the status with
// his code, claims the enrolment link for his laptop and enrols a new
// passkey there; his old passkey's login now fails and his old session
// is gone.
func TestBrowserRecovery(t *testing.T) {
	e := newE2EWith(t, func(c *Config) { c.Recovery.CoolDown.Tier1 = time.Second })
	admin := e.newPerson("admin", deviceBound)
	token := e.bootstrapAdmin(admin)
	samOld := e.setupPerson(token, "sam", 1, nil)
	olga := e.setupPerson(token, "olga", 1, []string{recovery.RoleOfficer})
	samDevice := e.deviceID(token, "sam-laptop")

	// "Lost my passkey?" from the login page (his browser still has a
	// cookie: the recovery page does not use it).
	st := samOld.open("/login")
	samOld.expectPath(st, "/login")
	st = samOld.act("#lost-passkey")
	st = samOld.waitFor("the recovery page", func(st pageState) bool { return st.Path == "/recover" })
	samOld.expectNoError(st)
	samOld.setValue("#recover-user", "sam")
	samOld.setValue("#recover-reason", "laptop bag stolen with my security key")
	st = samOld.act("#recover-submit")
	samOld.expectOK(st, "Recovery case requested")
	secret := samOld.text("recover-secret")
	if len(secret) != 43 {
		samOld.fatalf("sam: recovery code %q, want 43 base64url characters", secret)
	}
	if n := len(e.audit("recovery.opened")); n != 1 {
		e.fatalf("want one recovery.opened event, got %d", n)
	}

	// Olga finds the case and approves it with her passkey.
	st = olga.open("/recovery")
	olga.expectNoError(st)
	id := eval[string](olga, `(document.querySelector("#recovery-cases tr[data-case]") || {dataset: {}}).dataset.case || ""`)
	if !strings.HasPrefix(id, "rc_") {
		olga.fatalf("olga: /recovery lists no case")
	}
	st = olga.open("/recovery/" + id)
	olga.expectNoError(st)
	for sel, want := range map[string]string{
		"recovery-subject": "sam", "recovery-reason": "laptop bag stolen with my security key",
		"recovery-status": "pending", "recovery-required": "1", "recovery-missing": "1", "recovery-tier": "1",
	} {
		if got := olga.text(sel); got != want {
			olga.fatalf("olga: #%s = %q, want %q", sel, got, want)
		}
	}
	olga.setValue("#recovery-verification", "video call; face matched the HR photo")
	st = olga.act("#recovery-approve-submit")
	olga.expectOK(st, "Approved")
	olga.waitFor("the case page to reload", func(st pageState) bool { return !st.Marked })
	if got := olga.text("recovery-status"); got != "cooling_down" {
		olga.fatalf("olga: after approving, status %q, want cooling_down", got)
	}
	if olga.has("#recovery-approve-submit") {
		olga.fatalf("olga: a case in cool-down still offers approval")
	}

	// After the cool-down sam claims the link for his laptop…
	e.clock.Advance(2 * time.Second)
	samNew := e.newPerson("sam-new", deviceBound)
	st = samNew.open("/recover/status")
	samNew.expectNoError(st)
	samNew.setValue("#status-secret", secret)
	st = samNew.act("#status-submit")
	samNew.expectOK(st, "cooling_down")
	if !eval[bool](samNew, `!document.getElementById("claim-form").hidden`) {
		samNew.fatalf("sam: the claim form is not offered after the cool-down")
	}
	samNew.setValue("#claim-device", samDevice)
	st = samNew.act("#claim-submit")
	samNew.expectOK(st, "enrolment link is ready")
	link := eval[string](samNew, `document.getElementById("claim-link").href`)
	if !strings.HasPrefix(link, e.m.Origin+"/enrol?token=") {
		samNew.fatalf("sam: enrolment link %q", link)
	}
	// …and enrols a new passkey there.
	samNew.mustEnrol(link, "sam")
	if n := len(e.audit("recovery.completed")); n != 1 {
		e.fatalf("want one recovery.completed event, got %d", n)
	}
	samNew.mustLogin("sam", 1, 1)

	// The old passkey no longer signs in; the old session is gone.
	if got := samOld.sessionStatus(); got != http.StatusUnauthorized {
		samOld.fatalf("sam's old session after recovery: GET /v1/session = %d, want 401", got)
	}
	st = samOld.login()
	samOld.expectError(st)
	if st.Path != "/login" {
		samOld.fatalf("sam's old passkey: left the login page for %s", st.Path)
	}
}
