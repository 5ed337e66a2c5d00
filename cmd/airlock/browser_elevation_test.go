package main

import (
	"net/http"
	"strings"
	"testing"

	"airlock/policy"
)

// setupPerson creates user name (tier, roles) with a compliant managed
// device, enrols a device-bound passkey in their own browser context and
// signs them in.
func (e *e2e) setupPerson(token, name string, tier int, roles []string) *person {
	e.t.Helper()
	u := e.api(token, "POST", "/v1/admin/users", map[string]any{"name": name, "tier": tier, "roles": roles}, http.StatusCreated)
	uid, _ := u["id"].(string)
	dev := e.newDevice(token, uid, name+"-laptop", true)
	link := e.issueLink(token, uid, dev, true)
	p := e.newPerson(name, deviceBound)
	p.mustEnrol(link, name)
	p.mustLogin(name, tier, tier)
	return p
}

// fetchStatus sends a same-origin JSON request from p's page (its cookie
// session) and returns the HTTP status.
func fetchStatus(p *person, method, path, body string) int {
	p.e.t.Helper()
	return eval[int](p, `fetch(`+jsString(path)+`, {method: `+jsString(method)+`, credentials: "same-origin",
	  headers: {"Content-Type": "application/json"}, body: `+jsString(body)+`}).then(r => r.status)`)
}

// TestBrowserElevation is issue 5's end-to-end story in a real browser:
// rita (tier 1) asks for dba@db-prod on /elevate → approval required →
// alex (group "approvers", his own browser context and passkey) reviews
// the whole request on /approve/{id} and approves with his passkey → the
// grant is active → decide allows db.write on db-prod for rita's session
// → rita ends the grant on /elevate → the same decide denies
// (jit-grant-required). Rita's own attempt to approve is refused.
func TestBrowserElevation(t *testing.T) {
	e, _, token := withAdmin(t)
	rita := e.setupPerson(token, "rita", 1, nil)
	alex := e.setupPerson(token, "alex", 1, []string{"approvers"})

	const dbWrite = `{action: "db.write", resource: "db-prod"}`
	if d := decideJS(rita, dbWrite); d["decision"] != "deny" || !strings.Contains(reasonTexts(d), "jit-grant-required") {
		rita.fatalf("rita: db.write before any grant decided %v (%s), want deny by jit-grant-required", d["decision"], reasonTexts(d))
	}

	// Rita asks through the form and lands on her request's page.
	st := rita.open("/elevate")
	rita.expectNoError(st)
	rita.setValue(`#elevate-form input[name="scope"]`, "dba@db-prod")
	rita.setValue(`#elevate-form select[name="duration_m"]`, "30")
	rita.setValue(`#elevate-form input[name="reason"]`, "rotate the replication password")
	rita.setValue(`#elevate-form input[name="ticket"]`, "INC-7")
	st = rita.act(`#elevate-submit`)
	st = rita.waitFor("rita's request page", func(st pageState) bool { return strings.HasPrefix(st.Path, "/approve/") || st.Shown })
	rita.expectNoError(st)
	id := rita.text("approve-id")
	if st.Path != "/approve/"+id || !strings.HasPrefix(id, "req_") {
		rita.fatalf("rita: after asking, on %s showing request %q", st.Path, id)
	}
	if got := rita.text("approve-status"); got != "pending" {
		rita.fatalf("rita: her request's status %q, want pending (approval required)", got)
	}
	if rita.has("#approve-confirm") || rita.has("#deny-form") || !rita.has("#approve-own") {
		rita.fatalf("rita: her own request's page offers approve/deny or does not say it is hers")
	}
	if got := rita.text("approve-url"); got != e.m.Origin+"/approve/"+id {
		rita.fatalf("rita: approval URL shown %q, want %s/approve/%s", got, e.m.Origin, id)
	}
	// Self-approval is refused at the API, whatever the page offers.
	if got := fetchStatus(rita, "POST", "/v1/approval/begin", `{"request":"`+id+`"}`); got != http.StatusForbidden {
		rita.fatalf("rita: POST /v1/approval/begin for her own request = %d, want 403", got)
	}
	if n := len(e.audit("elevation.requested")); n != 1 {
		e.fatalf("want one elevation.requested event, got %d", n)
	}

	// Alex finds it among his approvals and reviews the whole request.
	st = alex.open("/approvals")
	alex.expectNoError(st)
	if !alex.has(`#to-approve tr[data-request="` + id + `"]`) {
		alex.fatalf("alex: /approvals does not list %s", id)
	}
	st = alex.open("/approve/" + id)
	alex.expectNoError(st)
	for sel, want := range map[string]string{
		"approve-requester": "rita", "approve-requester-kind": "employee, tier 1",
		"approve-scope": "dba@db-prod", "approve-scope-tier": "1",
		"approve-reason": "rotate the replication password", "approve-ticket": "INC-7",
		"approve-duration": "30m", "approve-device-compliant": "yes",
		"approve-status": "pending", "approve-missing": "1 of approvers",
	} {
		if got := alex.text(sel); got != want {
			alex.fatalf("alex: #%s = %q, want %q", sel, got, want)
		}
	}
	if got := alex.text("approve-device"); !strings.HasPrefix(got, "rita-laptop · managed · trusted") {
		alex.fatalf("alex: #approve-device = %q, want rita's trusted managed laptop", got)
	}
	if got := alex.text("approve-risk"); !strings.HasSuffix(got, "/ 100") {
		alex.fatalf("alex: #approve-risk = %q, want a score out of 100", got)
	}

	// He approves with his passkey; the page reloads showing the grant.
	alex.setValue("#approve-comment", "ok for INC-7")
	st = alex.act("#approve-confirm")
	alex.expectOK(st, "Approved")
	alex.waitFor("the approval page to reload", func(st pageState) bool { return !st.Marked })
	if got := alex.text("approve-status"); got != "approved" {
		alex.fatalf("alex: after approving, status %q, want approved", got)
	}
	grant := alex.text("approve-grant")
	if !strings.HasPrefix(grant, "grt_") {
		alex.fatalf("alex: #approve-grant = %q", grant)
	}
	if alex.has("#approve-confirm") {
		alex.fatalf("alex: an approved request still offers approval")
	}
	if ev := e.audit("elevation.approval"); len(ev) == 0 {
		e.fatalf("no elevation.approval audit event")
	}

	// The grant makes the decision allow for rita's session…
	if d := decideJS(rita, dbWrite); d["decision"] != "allow" {
		rita.fatalf("rita: db.write with the grant decided %v (%s), want allow", d["decision"], reasonTexts(d))
	}
	// …and only hers.
	if d := decideJS(alex, dbWrite); d["decision"] != "deny" {
		alex.fatalf("alex: db.write without a grant decided %v, want deny", d["decision"])
	}

	// Rita ends it when the task is done.
	st = rita.open("/elevate")
	rita.expectNoError(st)
	row := `#my-grants tr[data-grant="` + grant + `"]`
	if !rita.has(row+` .grant-end`) || eval[string](rita, `document.querySelector('`+row+` .grant-state').textContent.trim()`) != "active" {
		rita.fatalf("rita: /elevate does not show grant %s active with an End button", grant)
	}
	if left := eval[string](rita, `document.querySelector('`+row+` .grant-left').textContent.trim()`); left == "" || left == "—" {
		rita.fatalf("rita: grant %s shows no time left", grant)
	}
	rita.actAndReload(row + ` .grant-end`)
	if got := eval[string](rita, `document.querySelector('`+row+` .grant-state').textContent.trim()`); got != "ended (done)" {
		rita.fatalf("rita: after End the grant shows %q, want ended (done)", got)
	}
	if d := decideJS(rita, dbWrite); d["decision"] != "deny" || !strings.Contains(reasonTexts(d), "jit-grant-required") {
		rita.fatalf("rita: db.write after End decided %v (%s), want deny by jit-grant-required", d["decision"], reasonTexts(d))
	}
	ended := e.audit("elevation.ended")
	if len(ended) != 1 || ended[0].GrantID != grant {
		e.fatalf("want one elevation.ended event for %s, got %d", grant, len(ended))
	}
}

// TestBrowserElevationStepUp: when the policy wants a passkey confirmation
// of the ask itself, the form leads through the step-up page and back to
// /elevate, which repeats the identical ask with the proof. The approver's
// page shows a reason with a zero-width space as an escape, not as text
// that reads like something else.
func TestBrowserElevationStepUp(t *testing.T) {
	e, _, token := withAdmin(t)
	files := policy.DefaultFiles()
	// Tier-2 scopes are approved by the policy; this one wants a passkey
	// confirmation of the ask first (a step-up beside an approval rule
	// would become approval_required).
	files["90-test-elevation-stepup.cedar"] = []byte(`@id("test-elevation-stepup")
@decision("step_up")
@max_age("0")
@owner("test")
@review_by("2099-01-01")
@reason("asking for grafana needs a passkey confirmation of the request")
forbid (principal, action, resource)
when { context.action.name == "elevation.request" && resource.name == "grafana" };
`)
	set, err := policy.Compile(files)
	if err != nil {
		t.Fatal(err)
	}
	e.m.Engine.Swap(set)
	rita := e.setupPerson(token, "rita", 1, nil)
	alex := e.setupPerson(token, "alex", 1, []string{"approvers"})

	ask := func(scope, minutes, reason string) {
		t.Helper()
		st := rita.open("/elevate")
		rita.expectNoError(st)
		rita.setValue(`#elevate-form input[name="scope"]`, scope)
		rita.setValue(`#elevate-form select[name="duration_m"]`, minutes)
		rita.setValue(`#elevate-form input[name="reason"]`, reason)
		rita.click(`#elevate-submit`)
	}
	ask("viewer@grafana", "15", "check the error-rate dashboard")
	st := rita.waitFor("the step-up page", func(st pageState) bool {
		return strings.HasPrefix(st.Path, "/stepup/") || strings.HasPrefix(st.Path, "/approve/") || (st.Marked && st.Shown && st.Class == "error")
	})
	rita.expectNoError(st)
	if !strings.HasPrefix(st.Path, "/stepup/") {
		rita.fatalf("rita: asking for grafana led to %s, want the step-up page", st.Path)
	}
	if got := rita.text("stepup-action"); got != "elevation.request" {
		rita.fatalf("rita: the step-up page confirms %q, want elevation.request", got)
	}
	if got := rita.text("stepup-resource"); got != "grafana" {
		rita.fatalf("rita: the step-up page names resource %q, want grafana", got)
	}
	if params := rita.text("stepup-params"); !strings.Contains(params, "viewer@grafana") || !strings.Contains(params, "check the error-rate dashboard") {
		rita.fatalf("rita: the step-up page's parameters %q do not show the ask", params)
	}
	if !rita.has(`#stepup-confirm[data-return="/elevate"]`) {
		rita.fatalf("rita: the step-up page does not return to /elevate")
	}
	rita.click("#stepup-confirm")
	st = rita.waitFor("the request page after the step-up", func(st pageState) bool {
		return strings.HasPrefix(st.Path, "/approve/") || (st.Shown && st.Class == "error")
	})
	rita.expectNoError(st)
	if got := rita.text("approve-status"); got != "approved" {
		rita.fatalf("rita: after the step-up her request is %q, want approved", got)
	}
	if !strings.HasPrefix(rita.text("approve-grant"), "grt_") {
		rita.fatalf("rita: the approved request shows no grant")
	}
	if n := len(e.audit("stepup.success")); n != 1 {
		e.fatalf("want one stepup.success event, got %d", n)
	}

	// A reason with a zero-width space, as the approver sees it.
	ask("dba@db-prod", "30", "restart\u200Bnginx on web-1")
	st = rita.waitFor("rita's request page", func(st pageState) bool { return strings.HasPrefix(st.Path, "/approve/") || st.Shown })
	rita.expectNoError(st)
	id := rita.text("approve-id")
	st = alex.open("/approve/" + id)
	alex.expectNoError(st)
	if got, want := alex.text("approve-reason"), `"restart\u200bnginx on web-1"`; got != want {
		alex.fatalf("alex: #approve-reason = %q, want %q (the zero-width space shown as an escape)", got, want)
	}
}
