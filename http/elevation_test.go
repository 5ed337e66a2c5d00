package http_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"airlock"
	"airlock/decide"
	"airlock/elevate"
	airhttp "airlock/http"
	"airlock/notify"
	"airlock/passkey/passkeytest"
	"airlock/policy"
)

// withElevation wires an elevation service (the default approval rules of
// `airlock serve`) into the server, and its grants into the decisions.
func withElevation(mods ...func(*airhttp.Server)) func(*airhttp.Server) {
	return func(s *airhttp.Server) {
		svc, err := elevate.New(elevate.Config{
			Rules: map[string]elevate.Rule{
				elevate.DefaultRule: {AllOf: []elevate.Quorum{{Group: "approvers", Min: 1}}},
				"tier0":             {AllOf: []elevate.Quorum{{Group: "team-leads", Min: 1}, {Group: "security", Min: 1}}},
			},
			BaseURL: s.Origins[0], DeviceRules: s.DeviceRules, Now: s.Now,
		}, s.Store, s.Decide, s.Passkeys, s.Audit, notify.NewOutbox(s.Store, s.Now))
		if err != nil {
			panic(err)
		}
		s.Elevation = svc
		s.Decide.Grants = svc
		for _, m := range mods {
			m(s)
		}
	}
}

// elevationPeople are the test's cast: the bootstrap admin, a tier-1
// requester, a tier-1 approver in group "approvers", and a tier-1 user in
// no group. Each has a compliant managed device.
type elevationPeople struct {
	admin, rita, alex, otto string
	alexAuth                *passkeytest.Authenticator
	ritaAuth                *passkeytest.Authenticator
}

func (e *env) elevationPeople() elevationPeople {
	e.t.Helper()
	var p elevationPeople
	p.admin, _ = e.bootstrapAdmin()
	p.rita, p.ritaAuth, _ = e.person(p.admin, "rita", 1, nil, passkeytest.Flags{})
	p.alex, p.alexAuth, _ = e.person(p.admin, "alex", 1, []string{"approvers"}, passkeytest.Flags{})
	p.otto, _, _ = e.person(p.admin, "otto", 1, nil, passkeytest.Flags{})
	return p
}

// ask posts an access request as tok.
func (e *env) ask(tok, scope string, dur time.Duration, reason string) resp {
	e.t.Helper()
	return e.req("POST", "/v1/elevation/requests", map[string]any{"scope": scope, "duration_s": int(dur / time.Second), "reason": reason}, tok, nil)
}

// approveAs runs the approval ceremony for request id as tok with a.
func (e *env) approveAs(tok string, a *passkeytest.Authenticator, id, comment string) resp {
	e.t.Helper()
	b := e.req("POST", "/v1/approval/begin", map[string]any{"request": id}, tok, nil)
	if b.status != 200 {
		return b
	}
	cred, err := a.Assert(e.origin, mustJSON(b.body["publicKey"]))
	if err != nil {
		e.t.Fatal(err)
	}
	return e.req("POST", "/v1/approval/finish", map[string]any{"ceremony": b.body["ceremony"], "credential": rawJSON(cred), "comment": comment}, tok, nil)
}

func nested(r resp, key string) map[string]any {
	m, _ := r.body[key].(map[string]any)
	return m
}

func listed(r resp, key, id string) bool {
	xs, _ := r.body[key].([]any)
	for _, x := range xs {
		if m, _ := x.(map[string]any); m["id"] == id {
			return true
		}
	}
	return false
}

// TestElevationUnavailable: without an elevation service every elevation
// route answers 503 to a signed-in caller (and 401 to anyone else).
func TestElevationUnavailable(t *testing.T) {
	e := newEnv(t, nil)
	admin, _ := e.bootstrapAdmin()
	for _, c := range []struct{ method, path string }{
		{"POST", "/v1/elevation/requests"},
		{"GET", "/v1/elevation/requests"},
		{"GET", "/v1/elevation/requests/req_x"},
		{"POST", "/v1/elevation/requests/req_x/deny"},
		{"POST", "/v1/elevation/requests/req_x/cancel"},
		{"POST", "/v1/approval/begin"},
		{"POST", "/v1/approval/finish"},
		{"GET", "/v1/grants"},
		{"GET", "/v1/grants/grt_x"},
		{"POST", "/v1/grants/grt_x/end"},
		{"GET", "/v1/admin/grants"},
	} {
		if r := e.req(c.method, c.path, map[string]any{}, admin, nil); r.status != http.StatusServiceUnavailable || r.errCode() != airlock.EUNAVAILABLE {
			t.Errorf("%s %s without a service: %d %s, want 503 unavailable", c.method, c.path, r.status, r.raw)
		}
	}
	for _, path := range []string{"/elevate", "/approvals", "/approve/req_x"} {
		r := e.req("GET", path, nil, admin, nil)
		if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.raw), "not configured") {
			t.Errorf("GET %s without a service: %d, want 503 and a page that says so", path, r.status)
		}
	}
}

// TestElevationUnauthenticated: no route of the elevation API answers
// without a session.
func TestElevationUnauthenticated(t *testing.T) {
	e := newEnv(t, withElevation())
	for _, c := range []struct{ method, path string }{
		{"POST", "/v1/elevation/requests"},
		{"GET", "/v1/elevation/requests"},
		{"GET", "/v1/elevation/requests/req_x"},
		{"POST", "/v1/elevation/requests/req_x/deny"},
		{"POST", "/v1/elevation/requests/req_x/cancel"},
		{"POST", "/v1/approval/begin"},
		{"POST", "/v1/approval/finish"},
		{"GET", "/v1/grants"},
		{"GET", "/v1/grants/grt_x"},
		{"POST", "/v1/grants/grt_x/end"},
		{"GET", "/v1/admin/grants"},
		{"POST", "/v1/admin/grants/grt_x/revoke"},
	} {
		// Same-origin (as a page would send it) but with no cookie.
		r := e.req(c.method, c.path, map[string]any{}, "", map[string]string{"Origin": e.origin})
		if r.status != http.StatusUnauthorized || r.errCode() != airlock.EUNAUTHORIZED {
			t.Errorf("%s %s unauthenticated: %d %s, want 401", c.method, c.path, r.status, r.raw)
		}
		r = e.req(c.method, c.path, map[string]any{}, "not-a-session", nil)
		if r.status != http.StatusUnauthorized {
			t.Errorf("%s %s with a bogus token: %d %s, want 401", c.method, c.path, r.status, r.raw)
		}
	}
	for _, path := range []string{"/elevate", "/approvals", "/approve/req_x"} {
		r, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
			t.Errorf("GET %s unauthenticated: %d → %q, want 303 to /login", path, r.StatusCode, r.Header.Get("Location"))
		}
	}
}

// TestElevationRequestInput: malformed asks are refused before anything is
// decided.
func TestElevationRequestInput(t *testing.T) {
	e := newEnv(t, withElevation())
	admin, _ := e.bootstrapAdmin()
	tok, _, _ := e.person(admin, "rita", 1, nil, passkeytest.Flags{})
	for _, c := range []struct {
		name string
		body any
		want int
	}{
		{"fail-no-duration", map[string]any{"scope": "dba@db-prod", "reason": "x"}, 400},
		{"fail-negative-duration", map[string]any{"scope": "dba@db-prod", "duration_s": -5, "reason": "x"}, 400},
		{"fail-huge-duration", map[string]any{"scope": "dba@db-prod", "duration_s": int64(1) << 50, "reason": "x"}, 400},
		{"fail-unknown-field", map[string]any{"scope": "dba@db-prod", "duration_s": 60, "reason": "x", "grant": true}, 400},
		{"fail-not-json", []byte("scope=dba@db-prod"), 400},
		{"fail-trailing-data", []byte(`{"scope":"dba@db-prod","duration_s":60,"reason":"x"} {}`), 400},
		{"fail-bad-scope", map[string]any{"scope": "dba db-prod", "duration_s": 60, "reason": "x"}, 400},
		{"fail-no-reason", map[string]any{"scope": "dba@db-prod", "duration_s": 60}, 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.req("POST", "/v1/elevation/requests", c.body, tok, nil)
			if r.status != c.want || r.errCode() != airlock.EINVALID {
				t.Errorf("%d %s, want %d invalid", r.status, r.raw, c.want)
			}
		})
	}
	if r := e.req("GET", "/v1/elevation/requests?view=everyone", nil, tok, nil); r.status != 400 {
		t.Errorf("GET /v1/elevation/requests?view=everyone: %d, want 400", r.status)
	}
	if r := e.req("GET", "/v1/grants?active=maybe", nil, tok, nil); r.status != 400 {
		t.Errorf("GET /v1/grants?active=maybe: %d, want 400", r.status)
	}
}

// TestElevationApprovalFlow walks the API: request → pending → the
// approver's passkey approves → grant → decide allows → end → decide
// denies; with the refusals along the way (self-approval, cancel by
// someone else, deny without a reason, someone else's grant, revoke
// without the admin role).
func TestElevationApprovalFlow(t *testing.T) {
	e := newEnv(t, withElevation())
	p := e.elevationPeople()

	r := e.ask(p.rita, "dba@db-prod", 30*time.Minute, "rotate the replication password (INC-7)")
	if r.status != http.StatusCreated {
		t.Fatalf("request: %d %s", r.status, r.raw)
	}
	q := nested(r, "request")
	id, _ := q["id"].(string)
	if q["status"] != "pending" || q["scope"] != "dba@db-prod" || q["scope_tier"] != float64(1) || q["duration_s"] != float64(1800) ||
		q["approval_rule"] != "default" || !strings.HasPrefix(id, airlock.PrefixAccessRequest) {
		t.Fatalf("request answer %s", r.raw)
	}
	if r.body["approval_url"] != e.origin+"/approve/"+id || r.body["grant"] != nil {
		t.Fatalf("approval_url %v, grant %v: want %s/approve/%s and no grant", r.body["approval_url"], r.body["grant"], e.origin, id)
	}
	dbWrite := map[string]any{"action": "db.write", "resource": "db-prod"}
	if d := e.decideAs(p.rita, copyMap(dbWrite)); d.body["decision"] != "deny" || !strings.Contains(reasonsText(d), "jit-grant-required") {
		t.Fatalf("db.write before any grant: %v (%s), want deny by jit-grant-required", d.body["decision"], reasonsText(d))
	}

	// Lists and views.
	if l := e.req("GET", "/v1/elevation/requests", nil, p.rita, nil); l.status != 200 || !listed(l, "requests", id) {
		t.Errorf("rita's requests: %d %s", l.status, l.raw)
	}
	if l := e.req("GET", "/v1/elevation/requests?view=to_approve", nil, p.alex, nil); l.status != 200 || !listed(l, "requests", id) {
		t.Errorf("alex's requests to approve: %d %s", l.status, l.raw)
	}
	if l := e.req("GET", "/v1/elevation/requests?view=to_approve", nil, p.rita, nil); l.status != 200 || listed(l, "requests", id) {
		t.Errorf("rita's own request is listed for her to approve: %d %s", l.status, l.raw)
	}
	if l := e.req("GET", "/v1/elevation/requests?view=mine", nil, p.alex, nil); l.status != 200 || listed(l, "requests", id) {
		t.Errorf("rita's request is listed as alex's own: %d %s", l.status, l.raw)
	}
	for _, c := range []struct {
		name, tok string
		want      int
	}{{"ok-requester", p.rita, 200}, {"ok-approver", p.alex, 200}, {"ok-admin", p.admin, 200}, {"fail-outsider", p.otto, 403}} {
		v := e.req("GET", "/v1/elevation/requests/"+id, nil, c.tok, nil)
		if v.status != c.want {
			t.Errorf("%s: GET request: %d %s, want %d", c.name, v.status, v.raw, c.want)
		}
		if c.want == 200 {
			if rq := nested(v, "requester"); rq["name"] != "rita" || nested(v, "device")["compliant"] != true || v.body["device_compliant"] != true {
				t.Errorf("%s: view %s", c.name, v.raw)
			}
			if m, _ := v.body["missing"].([]any); len(m) != 1 {
				t.Errorf("%s: missing %v, want one quorum", c.name, v.body["missing"])
			}
		}
	}
	if v := e.req("GET", "/v1/elevation/requests/req_nope", nil, p.alex, nil); v.status != 404 {
		t.Errorf("GET an unknown request: %d, want 404", v.status)
	}

	// Refusals.
	if b := e.req("POST", "/v1/approval/begin", map[string]any{"request": id}, p.rita, nil); b.status != http.StatusForbidden {
		t.Errorf("fail-self-approval: begin as the requester: %d %s, want 403", b.status, b.raw)
	}
	if b := e.req("POST", "/v1/approval/begin", map[string]any{"request": id}, p.otto, nil); b.status != http.StatusForbidden {
		t.Errorf("fail-not-in-group: begin as otto: %d %s, want 403", b.status, b.raw)
	}
	if b := e.req("POST", "/v1/approval/begin", map[string]any{}, p.alex, nil); b.status != 400 {
		t.Errorf("fail-no-request: begin without a request id: %d, want 400", b.status)
	}
	if c := e.req("POST", "/v1/elevation/requests/"+id+"/cancel", nil, p.alex, nil); c.status != http.StatusForbidden {
		t.Errorf("fail-cancel-by-approver: %d %s, want 403", c.status, c.raw)
	}
	for _, reason := range []any{nil, "", "   "} {
		body := map[string]any{}
		if reason != nil {
			body["reason"] = reason
		}
		if d := e.req("POST", "/v1/elevation/requests/"+id+"/deny", body, p.alex, nil); d.status != 400 || d.errCode() != airlock.EINVALID {
			t.Errorf("fail-deny-without-reason (%q): %d %s, want 400", reason, d.status, d.raw)
		}
	}
	if d := e.req("POST", "/v1/elevation/requests/"+id+"/deny", map[string]any{"reason": "mine anyway"}, p.rita, nil); d.status != http.StatusForbidden {
		t.Errorf("fail-deny-own-request: %d %s, want 403", d.status, d.raw)
	}

	// The approver approves with a passkey: the grant is made.
	f := e.approveAs(p.alex, p.alexAuth, id, "ok, INC-7")
	if f.status != 200 {
		t.Fatalf("approve: %d %s", f.status, f.raw)
	}
	g := nested(f, "grant")
	gid, _ := g["id"].(string)
	if nested(f, "request")["status"] != "approved" || !strings.HasPrefix(gid, airlock.PrefixGrant) || g["active"] != true || g["scope"] != "dba@db-prod" {
		t.Fatalf("approve answer %s", f.raw)
	}
	if left := g["expires_in_s"].(float64); left <= 0 || left > 1800 {
		t.Errorf("grant expires_in_s = %v, want within the 30 minutes asked", left)
	}
	if again := e.approveAs(p.alex, p.alexAuth, id, ""); again.status < 400 {
		t.Errorf("fail-approve-twice: %d %s", again.status, again.raw)
	}

	if d := e.decideAs(p.rita, copyMap(dbWrite)); d.body["decision"] != "allow" {
		t.Fatalf("db.write with the grant: %v (%s), want allow", d.body["decision"], reasonsText(d))
	}
	if d := e.decideAs(p.alex, copyMap(dbWrite)); d.body["decision"] != "deny" {
		t.Errorf("db.write as alex (no grant): %v, want deny", d.body["decision"])
	}

	// Grants: the holder sees it; nobody else can see or end it.
	if l := e.req("GET", "/v1/grants?active=1", nil, p.rita, nil); l.status != 200 || !listed(l, "grants", gid) {
		t.Errorf("rita's active grants: %d %s", l.status, l.raw)
	}
	if l := e.req("GET", "/v1/grants", nil, p.alex, nil); l.status != 200 || listed(l, "grants", gid) {
		t.Errorf("alex's grants list rita's: %d %s", l.status, l.raw)
	}
	if g := e.req("GET", "/v1/grants/"+gid, nil, p.rita, nil); g.status != 200 || g.body["id"] != gid {
		t.Errorf("rita GET her grant: %d %s", g.status, g.raw)
	}
	if g := e.req("GET", "/v1/grants/"+gid, nil, p.otto, nil); g.status != 404 {
		t.Errorf("fail-other-user-grant: otto GET rita's grant: %d, want 404", g.status)
	}
	if g := e.req("POST", "/v1/grants/"+gid+"/end", nil, p.alex, nil); g.status != 404 {
		t.Errorf("fail-end-other-user-grant: alex ends rita's grant: %d, want 404", g.status)
	}
	if g := e.req("POST", "/v1/admin/grants/"+gid+"/revoke", nil, p.otto, nil); g.status != http.StatusForbidden {
		t.Errorf("fail-revoke-not-admin: %d %s, want 403", g.status, g.raw)
	}
	if l := e.req("GET", "/v1/admin/grants", nil, p.otto, nil); l.status != http.StatusForbidden {
		t.Errorf("fail-admin-list-not-admin: %d, want 403", l.status)
	}
	if l := e.req("GET", "/v1/admin/grants?active=1&user=rita", nil, p.admin, nil); l.status != 200 || !listed(l, "grants", gid) {
		t.Errorf("admin lists rita's active grants: %d %s", l.status, l.raw)
	}

	// The holder ends it: decide denies again; ending twice conflicts.
	end := e.req("POST", "/v1/grants/"+gid+"/end", nil, p.rita, nil)
	if end.status != 200 || end.body["active"] != false || end.body["end_reason"] != airlock.EndDone {
		t.Fatalf("end: %d %s", end.status, end.raw)
	}
	if d := e.decideAs(p.rita, copyMap(dbWrite)); d.body["decision"] != "deny" || !strings.Contains(reasonsText(d), "jit-grant-required") {
		t.Errorf("db.write after the end: %v (%s), want deny by jit-grant-required", d.body["decision"], reasonsText(d))
	}
	if again := e.req("POST", "/v1/grants/"+gid+"/end", nil, p.rita, nil); again.status != http.StatusConflict {
		t.Errorf("ending an ended grant: %d, want 409", again.status)
	}
	if l := e.req("GET", "/v1/grants?active=1", nil, p.rita, nil); listed(l, "grants", gid) {
		t.Errorf("an ended grant is still listed active: %s", l.raw)
	}
}

// TestElevationAdminRevoke: an admin ends someone's grant through the
// policy-decided revoke route.
func TestElevationAdminRevoke(t *testing.T) {
	e := newEnv(t, withElevation())
	p := e.elevationPeople()
	r := e.ask(p.rita, "dba@db-prod", time.Hour, "schema migration")
	id, _ := nested(r, "request")["id"].(string)
	f := e.approveAs(p.alex, p.alexAuth, id, "")
	gid, _ := nested(f, "grant")["id"].(string)
	if gid == "" {
		t.Fatalf("no grant: %d %s", f.status, f.raw)
	}
	rv := e.req("POST", "/v1/admin/grants/"+gid+"/revoke", nil, p.admin, nil)
	if rv.status != 200 || rv.body["end_reason"] != airlock.EndRevokedByAdmin || rv.body["active"] != false {
		t.Fatalf("revoke: %d %s", rv.status, rv.raw)
	}
	if d := e.decideAs(p.rita, map[string]any{"action": "db.write", "resource": "db-prod"}); d.body["decision"] != "deny" {
		t.Errorf("db.write after the revoke: %v, want deny", d.body["decision"])
	}
	if evs, _ := e.store.ListAudit(t.Context(), airlock.AuditFilter{Type: "decision.allow", Limit: 1000}); !decidedAction(evs, decide.ActionGrantRevoke) {
		t.Errorf("the revoke was not decided as %s", decide.ActionGrantRevoke)
	}
}

func decidedAction(evs []*airlock.AuditEvent, action string) bool {
	for _, ev := range evs {
		if ev.Details["action"] == action {
			return true
		}
	}
	return false
}

// TestElevationAutoApproved: a tier-2 scope is granted at once.
func TestElevationAutoApproved(t *testing.T) {
	e := newEnv(t, withElevation())
	admin, _ := e.bootstrapAdmin()
	tok, _, _ := e.person(admin, "rita", 1, nil, passkeytest.Flags{})
	r := e.ask(tok, "viewer@grafana", 2*time.Hour, "look at the dashboards")
	if r.status != http.StatusCreated || nested(r, "request")["status"] != "approved" || nested(r, "grant")["active"] != true || r.body["approval_url"] != nil {
		t.Fatalf("tier-2 request: %d %s, want 201 approved with an active grant and no approval URL", r.status, r.raw)
	}
	// Longer than the tier-2 cap (8 h): capped.
	r = e.ask(tok, "viewer@grafana", 24*time.Hour, "a long day")
	if r.status != http.StatusCreated || nested(r, "request")["duration_s"] != float64(8*3600) {
		t.Fatalf("24 h on tier 2: %d %s, want 201 capped to 28800 s", r.status, r.raw)
	}
}

// TestElevationPolicyDeny: a policy deny answers 403 with the decision's
// reasons; a step-up answers the RFC 9470 401, and the proof of the
// confirmed ask makes the identical ask succeed.
func TestElevationPolicyDenyAndStepUp(t *testing.T) {
	files := policy.DefaultFiles()
	files["90-test.cedar"] = []byte(`@id("test-no-ci-elevation")
@owner("test")
@review_by("2099-01-01")
@reason("no elevation on ci in this test")
forbid (principal, action, resource)
when { context.action.name == "elevation.request" && resource.name == "ci" };
`)
	set, err := policy.Compile(files)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, withElevation(func(s *airhttp.Server) {
		s.Decide.Engine.Swap(set)
		// Asking for privilege on grafana is critical here: a tier-1
		// session then needs a passkey verification within 900 s.
		c := decide.QuickStart()
		c.Actions[elevate.ActionRequest] = decide.Action{Sensitivity: policy.Medium, Resources: map[string]policy.Sensitivity{"grafana": policy.Critical}}
		s.Decide.Catalog = c
	}))
	admin, _ := e.bootstrapAdmin()
	tok, a, _ := e.person(admin, "rita", 1, nil, passkeytest.Flags{})

	r := e.ask(tok, "deployer@ci", time.Hour, "deploy")
	if r.status != http.StatusForbidden || r.errCode() != airlock.EFORBIDDEN || !strings.Contains(r.errMsg(), "no elevation on ci") ||
		!strings.Contains(reasonsText(r), "test-no-ci-elevation: no elevation on ci") || r.body["decision_id"] == "" {
		t.Fatalf("fail-policy-deny: %d %s, want 403 with the decision's id and reasons", r.status, r.raw)
	}

	e.clock.Add(16 * time.Minute)
	ask := map[string]any{"scope": "viewer@grafana", "duration_s": 3600, "reason": "dashboards"}
	r = e.req("POST", "/v1/elevation/requests", ask, tok, nil)
	www := r.header.Get("WWW-Authenticate")
	txn, _ := r.body["transaction"].(string)
	if r.status != http.StatusUnauthorized || !strings.Contains(www, `error="insufficient_user_authentication"`) || !strings.Contains(www, `max_age="900"`) ||
		txn == "" || r.body["step_up_url"] != e.origin+"/stepup/"+txn {
		t.Fatalf("step-up answer: %d %q %s", r.status, www, r.raw)
	}
	proof, _ := e.stepUp(tok, a, txn).body["proof"].(string)
	if proof == "" {
		t.Fatal("no step-up proof")
	}
	other := copyMap(ask)
	other["reason"], other["stepup"] = "something else", proof
	if r := e.req("POST", "/v1/elevation/requests", other, tok, nil); r.status != http.StatusForbidden || !strings.Contains(reasonsText(r), "stepup-proof-refused") {
		t.Fatalf("fail-proof-for-other-ask: %d %s, want 403 stepup-proof-refused", r.status, r.raw)
	}
	// The proof was spent on that attempt (single use). The step-up
	// refreshed the session's passkey verification, so let it age again:
	// a new step-up.
	e.clock.Add(16 * time.Minute)
	r = e.req("POST", "/v1/elevation/requests", ask, tok, nil)
	txn, _ = r.body["transaction"].(string)
	if r.status != http.StatusUnauthorized || txn == "" {
		t.Fatalf("after a refused proof: %d %s, want a new step-up", r.status, r.raw)
	}
	proof, _ = e.stepUp(tok, a, txn).body["proof"].(string)
	same := copyMap(ask)
	same["stepup"] = proof
	if r := e.req("POST", "/v1/elevation/requests", same, tok, nil); r.status != http.StatusCreated || nested(r, "request")["status"] != "approved" {
		t.Fatalf("ok-proof-for-same-ask: %d %s", r.status, r.raw)
	}
}

// hostile is a reason that tries to disguise itself with markup,
// zero-width characters, a no-break space and doubled spaces (control and
// text-direction characters the service refuses outright).
const hostile = "<script>alert(1)</script> fix\u200Bthis\u00A0now\u200D  INC-1"

// TestElevationPagesEscape: every page that shows a request shows a
// hostile reason and ticket literally and with its invisible characters
// made visible; the approve button is there for an approver only.
func TestElevationPagesEscape(t *testing.T) {
	e := newEnv(t, withElevation())
	p := e.elevationPeople()
	for _, c := range []struct{ name, reason, ticket string }{
		{"fail-reason-rtl-override", "fix \u202Egnp.exe", ""},
		{"fail-reason-line-break", "fix\nINC-1", ""},
		{"fail-ticket-rtl-isolate", "fix", "T-\u20671"},
	} {
		r := e.req("POST", "/v1/elevation/requests", map[string]any{"scope": "dba@db-prod", "duration_s": 1800, "reason": c.reason, "ticket": c.ticket}, p.rita, nil)
		if r.status != 400 {
			t.Errorf("%s: %d %s, want 400", c.name, r.status, r.raw)
		}
	}
	// The requester's browser name is theirs to choose too: it reaches the
	// approval page as well.
	r := e.req("POST", "/v1/elevation/requests", map[string]any{"scope": "dba@db-prod", "duration_s": 1800, "reason": hostile, "ticket": "T-\u200B1"}, p.rita,
		map[string]string{"User-Agent": "Mozilla/5.0 \u202Efdp.exe"})
	if r.status != http.StatusCreated {
		t.Fatalf("request: %d %s", r.status, r.raw)
	}
	id := nested(r, "request")["id"].(string)
	page := func(tok, path string) string {
		t.Helper()
		r := e.req("GET", path, nil, tok, nil)
		if r.status != 200 {
			t.Fatalf("GET %s: %d %s", path, r.status, r.raw)
		}
		if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
		return string(r.raw)
	}
	for _, c := range []struct{ who, tok, path string }{
		{"approver", p.alex, "/approve/" + id},
		{"requester", p.rita, "/approve/" + id},
		{"approver", p.alex, "/approvals"},
		{"requester", p.rita, "/elevate"},
	} {
		html := page(c.tok, c.path)
		if strings.Contains(html, "<script>alert") {
			t.Errorf("%s %s: the reason's markup is live", c.who, c.path)
		}
		if !strings.Contains(html, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s %s: the reason's markup is not shown literally", c.who, c.path)
		}
		for _, invisible := range []string{"\u202E", "\u200B", "\u200D", "\u00A0"} {
			if strings.Contains(html, invisible) {
				t.Errorf("%s %s: an invisible character %U reaches the page raw", c.who, c.path, []rune(invisible)[0])
			}
		}
		if visible := `fix\u200bthis\u00a0now\u200d  INC-1`; !strings.Contains(html, visible) {
			t.Errorf("%s %s: want the escapes %s visible", c.who, c.path, visible)
		}
		if !strings.Contains(html, `T-\u200b1`) {
			t.Errorf("%s %s: the ticket's zero-width space is not shown as an escape", c.who, c.path)
		}
		if strings.HasPrefix(c.path, "/approve/") && !strings.Contains(html, `Mozilla/5.0 \u202efdp.exe`) {
			t.Errorf("%s %s: the browser name's override is not shown as an escape", c.who, c.path)
		}
	}
	approver := page(p.alex, "/approve/"+id)
	for _, want := range []string{`id="approve-confirm"`, `id="deny-form"`, `id="approve-requester">rita<`, `id="approve-scope">dba@db-prod<`,
		`id="approve-duration">30m<`, `id="approve-missing">1 of approvers<`, `/static/elevate.js`} {
		if !strings.Contains(approver, want) {
			t.Errorf("approver's page lacks %s", want)
		}
	}
	own := page(p.rita, "/approve/"+id)
	if strings.Contains(own, `id="approve-confirm"`) || strings.Contains(own, `id="deny-form"`) || !strings.Contains(own, `id="approve-own"`) ||
		!strings.Contains(own, `id="approve-status">pending<`) {
		t.Errorf("the requester's own page offers approve/deny or hides the status")
	}
	outsider := e.req("GET", "/approve/"+id, nil, p.otto, nil)
	if outsider.status != http.StatusForbidden || strings.Contains(string(outsider.raw), "alert(1)") {
		t.Errorf("an outsider's approval page: %d (showing the request: %v), want 403 without it", outsider.status, strings.Contains(string(outsider.raw), "alert(1)"))
	}
}

// TestElevationApprovalBeginRateLimited: approval ceremony starts count
// against the per-address ceremony limit like every other begin.
func TestElevationApprovalBeginRateLimited(t *testing.T) {
	e := newEnv(t, withElevation(func(s *airhttp.Server) { s.BeginPerMinute = 2 }))
	admin, _ := e.bootstrapAdmin()
	tok, _, _ := e.person(admin, "alex", 1, []string{"approvers"}, passkeytest.Flags{})
	for i, want := range []int{404, 404, http.StatusTooManyRequests} {
		r := e.req("POST", "/v1/approval/begin", map[string]any{"request": "req_nope"}, tok, nil)
		if r.status != want {
			t.Fatalf("begin #%d: %d %s, want %d", i+1, r.status, r.raw, want)
		}
	}
	e.clock.Add(time.Minute)
	if r := e.req("POST", "/v1/approval/begin", map[string]any{"request": "req_nope"}, tok, nil); r.status != 404 {
		t.Fatalf("begin a minute later: %d, want 404", r.status)
	}
}
