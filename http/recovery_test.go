package http_test

import (
	"encoding/json"
	"html"
	"net/http"
	"strings"
	"testing"
	"time"

	"airlock"
	airhttp "airlock/http"
	"airlock/notify"
	"airlock/passkey/passkeytest"
	"airlock/recovery"
)

// recoveryCoolDown is the tier-1 cool-down of the test's recovery service.
const recoveryCoolDown = 10 * time.Minute

// withRecovery wires elevation and a recovery service (tier 0: 2 officers,
// tiers 1–2: 1; a short cool-down) into the server.
func withRecovery(mods ...func(*airhttp.Server)) func(*airhttp.Server) {
	return withElevation(func(s *airhttp.Server) {
		svc, err := recovery.New(recovery.Config{
			CoolDown:    [airlock.MaxTier + 1]time.Duration{time.Hour, recoveryCoolDown, recoveryCoolDown},
			OpensPerDay: 10, BaseURL: s.Origins[0], DeviceRules: s.DeviceRules, Now: s.Now,
		}, s.Store, s.Passkeys, s.Sessions, s.Elevation, s.Audit, notify.NewOutbox(s.Store, s.Now))
		if err != nil {
			panic(err)
		}
		s.Recovery = svc
		for _, m := range mods {
			m(s)
		}
	})
}

// recoveryCast: the bootstrap admin; sam and sue (tier 1, no role: the
// subjects); olga and oscar (tier 1 recovery officers); hank (tier 1,
// help desk and officer: an opener who may not approve his own case).
type recoveryCast struct {
	admin                       string
	sam, sue, olga, oscar, hank person
}

type person struct {
	token, id string
	auth      *passkeytest.Authenticator
}

func (e *env) recoveryCast() recoveryCast {
	e.t.Helper()
	var c recoveryCast
	c.admin, _ = e.bootstrapAdmin()
	mk := func(name string, roles []string) person {
		tok, a, id := e.person(c.admin, name, 1, roles, passkeytest.Flags{})
		return person{token: tok, id: id, auth: a}
	}
	c.sam = mk("sam", nil)
	c.sue = mk("sue", nil)
	c.olga = mk("olga", []string{recovery.RoleOfficer})
	c.oscar = mk("oscar", []string{recovery.RoleOfficer})
	c.hank = mk("hank", []string{recovery.RoleHelpdesk, recovery.RoleOfficer})
	return c
}

// anon sends a request as the public recovery pages do: Origin, no cookie.
func (e *env) anon(method, path string, body any) resp {
	e.t.Helper()
	return e.req(method, path, body, "", map[string]string{"Origin": e.origin})
}

// caseOf returns the id of subjectID's case among the officer's list.
func (e *env) caseOf(officer, subjectID string) string {
	e.t.Helper()
	l := e.req("GET", "/v1/recovery/cases?pending=1", nil, officer, nil)
	if l.status != 200 {
		e.t.Fatalf("list cases: %d %s", l.status, l.raw)
	}
	cs, _ := l.body["cases"].([]any)
	for _, x := range cs {
		if m, _ := x.(map[string]any); m["subject_id"] == subjectID {
			return m["id"].(string)
		}
	}
	e.t.Fatalf("no pending case of %s in %s", subjectID, l.raw)
	return ""
}

// recoveryApprove runs the approval ceremony for case id as p.
func (e *env) recoveryApprove(p person, id, verification string) resp {
	e.t.Helper()
	b := e.req("POST", "/v1/recovery/begin", map[string]any{"case": id, "verification": verification}, p.token, nil)
	if b.status != 200 {
		return b
	}
	cred, err := p.auth.Assert(e.origin, mustJSON(b.body["publicKey"]))
	if err != nil {
		e.t.Fatal(err)
	}
	return e.req("POST", "/v1/recovery/finish", map[string]any{"ceremony": b.body["ceremony"], "credential": json.RawMessage(cred), "verification": verification}, p.token, nil)
}

// deviceOfPerson is the id of p's first passkey's device.
func (e *env) deviceOfPerson(p person) string {
	e.t.Helper()
	r := e.req("GET", "/v1/me/credentials", nil, p.token, nil)
	cs, _ := r.body["credentials"].([]any)
	if r.status != 200 || len(cs) == 0 {
		e.t.Fatalf("credentials: %d %s", r.status, r.raw)
	}
	return cs[0].(map[string]any)["device_id"].(string)
}

func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	if len(ks) > 1 && ks[0] > ks[1] {
		ks[0], ks[1] = ks[1], ks[0]
	}
	return strings.Join(ks, ",")
}

// TestRecoveryHTTPSelfService is the self-service story over the API: the
// neutral open, the claimant's status, an officer's approval bound to a
// verification note (the subject and a second approval refused), the
// cool-down, the claim on the subject's device, the enrolment — and the
// old passkey and session dead afterwards.
func TestRecoveryHTTPSelfService(t *testing.T) {
	e := newEnv(t, withRecovery())
	c := e.recoveryCast()

	for _, tc := range []struct {
		name   string
		body   any
		status int
	}{
		{"fail-bad-json", []byte(`{"user":`), 400},
		{"fail-unknown-field", map[string]any{"user": "sam", "reason": "lost", "extra": true}, 400},
		{"fail-no-reason", map[string]any{"user": "sam"}, 400},
		{"fail-long-reason", map[string]any{"user": "sam", "reason": strings.Repeat("r", recovery.MaxReasonLen+1)}, 400},
		{"fail-control-reason", map[string]any{"user": "sam", "reason": "lost\x07"}, 400},
		{"fail-no-user", map[string]any{"reason": "lost"}, 400},
		{"fail-self-device", map[string]any{"user": "sam", "reason": "lost", "device_id": "dev_x"}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := e.anon("POST", "/v1/recovery/cases", tc.body); r.status != tc.status || r.errCode() != airlock.EINVALID {
				t.Fatalf("%d %s, want %d", r.status, r.raw, tc.status)
			}
		})
	}
	if r := e.req("POST", "/v1/recovery/cases", map[string]any{"user": "sam", "reason": "lost"}, "", map[string]string{"Origin": "https://evil.example"}); r.status != 403 {
		t.Fatalf("cross-site open: %d", r.status)
	}
	if r := e.req("POST", "/v1/recovery/cases", map[string]any{"user": "sam", "reason": "lost"}, "not-a-session", nil); r.status != 401 {
		t.Fatalf("open with a dead bearer token: %d %s", r.status, r.raw)
	}

	// The same answer whether the account exists or not.
	const reason = "lost my laptop\u200b on the train"
	open := e.anon("POST", "/v1/recovery/cases", map[string]any{"user": "sam", "reason": reason})
	ghost := e.anon("POST", "/v1/recovery/cases", map[string]any{"user": "nobody", "reason": reason})
	if open.status != 202 || ghost.status != 202 || keys(open.body) != keys(ghost.body) || keys(open.body) != "claim_secret,status_url" {
		t.Fatalf("self-service open: %d %s / unknown account: %d %s", open.status, open.raw, ghost.status, ghost.raw)
	}
	secret, ghostSecret := open.body["claim_secret"].(string), ghost.body["claim_secret"].(string)
	if len(secret) != 43 || len(ghostSecret) != 43 || secret == ghostSecret || open.body["status_url"] != e.origin+"/recover/status" {
		t.Fatalf("claim secrets %q %q", secret, ghostSecret)
	}
	st, gst := e.anon("POST", "/v1/recovery/status", map[string]any{"secret": secret}), e.anon("POST", "/v1/recovery/status", map[string]any{"secret": ghostSecret})
	if st.status != 200 || string(st.raw) != string(gst.raw) || st.body["status"] != "pending" || st.body["claimable"] != false {
		t.Fatalf("status: %d %s / unknown: %d %s", st.status, st.raw, gst.status, gst.raw)
	}
	for _, body := range []any{map[string]any{}, []byte(`{"secret":1}`), map[string]any{"secret": secret, "x": 1}} {
		if r := e.anon("POST", "/v1/recovery/status", body); r.status != 400 {
			t.Errorf("status with %v: %d", body, r.status)
		}
	}
	// One live case per subject: a second self-service open is answered the
	// same but opens nothing.
	if again := e.anon("POST", "/v1/recovery/cases", map[string]any{"user": "sam", "reason": "again"}); again.status != 202 {
		t.Fatalf("second open: %d %s", again.status, again.raw)
	}

	// Who sees cases: officers, help desk, admins — not the subject.
	if r := e.req("GET", "/v1/recovery/cases", nil, c.sam.token, nil); r.status != 403 {
		t.Fatalf("sam lists cases: %d %s", r.status, r.raw)
	}
	if r := e.req("GET", "/v1/recovery/cases", nil, "", nil); r.status != 401 {
		t.Fatalf("anonymous list: %d", r.status)
	}
	if r := e.req("GET", "/v1/recovery/cases?pending=perhaps", nil, c.olga.token, nil); r.status != 400 {
		t.Fatalf("bad pending: %d", r.status)
	}
	id := e.caseOf(c.olga.token, c.sam.id)
	if l := e.req("GET", "/v1/recovery/cases", nil, c.olga.token, nil); l.status != 200 || len(l.body["cases"].([]any)) != 1 {
		t.Fatalf("one case expected (the unknown account and the second open made none): %s", l.raw)
	}
	v := e.req("GET", "/v1/recovery/cases/"+id, nil, c.olga.token, nil)
	if v.status != 200 || nested(v, "case")["reason"] != reason || nested(v, "case")["required"] != float64(1) || v.body["missing"] != float64(1) ||
		v.body["can_approve"] != true || nested(v, "subject")["name"] != "sam" || nested(v, "case")["approval_url"] != e.origin+"/recovery/"+id {
		t.Fatalf("case view: %d %s", v.status, v.raw)
	}
	if r := e.req("GET", "/v1/recovery/cases/rc_nothing", nil, c.olga.token, nil); r.status != 404 {
		t.Fatalf("unknown case: %d", r.status)
	}

	// The approval page shows the reason as an escape, not as look-alike text.
	pg := e.req("GET", "/recovery/"+id, nil, c.olga.token, nil)
	if pg.status != 200 || !strings.Contains(string(pg.raw), html.EscapeString(`"lost my laptop\u200b on the train"`)) || strings.Contains(string(pg.raw), "\u200b") ||
		!strings.Contains(string(pg.raw), `id="recovery-approve-submit"`) {
		t.Fatalf("/recovery/%s: %d\n%s", id, pg.status, pg.raw)
	}
	if pg := e.req("GET", "/recovery/"+id, nil, c.sam.token, nil); pg.status != 403 || strings.Contains(string(pg.raw), "recovery-approve-submit") {
		t.Fatalf("/recovery/%s as sam: %d", id, pg.status)
	}
	if pg := e.req("GET", "/recovery", nil, c.olga.token, nil); pg.status != 200 || !strings.Contains(string(pg.raw), `data-case="`+id+`"`) || strings.Contains(string(pg.raw), "helpdesk-form") {
		t.Fatalf("/recovery as olga: %d", pg.status)
	}

	// Approval: a verification note is required and bound; sam is no officer.
	if r := e.req("POST", "/v1/recovery/begin", map[string]any{"case": id}, c.olga.token, nil); r.status != 400 {
		t.Fatalf("begin without verification: %d %s", r.status, r.raw)
	}
	if r := e.req("POST", "/v1/recovery/begin", map[string]any{}, c.olga.token, nil); r.status != 400 {
		t.Fatalf("begin without case: %d %s", r.status, r.raw)
	}
	if r := e.req("POST", "/v1/recovery/begin", map[string]any{"case": id, "verification": "x"}, "", map[string]string{"Origin": e.origin}); r.status != 401 {
		t.Fatalf("begin without a session: %d %s", r.status, r.raw)
	}
	if r := e.recoveryApprove(c.sam, id, "it is me"); r.status != 403 {
		t.Fatalf("sam approves his own case: %d %s", r.status, r.raw)
	}
	b := e.req("POST", "/v1/recovery/begin", map[string]any{"case": id, "verification": "video call, HR photo"}, c.olga.token, nil)
	cred, err := c.olga.auth.Assert(e.origin, mustJSON(b.body["publicKey"]))
	if err != nil {
		t.Fatal(err)
	}
	if r := e.req("POST", "/v1/recovery/finish", map[string]any{"ceremony": b.body["ceremony"], "credential": json.RawMessage(cred), "verification": "something else"}, c.olga.token, nil); r.status < 400 {
		t.Fatalf("finish with another note than signed: %d %s", r.status, r.raw)
	}
	if r := e.req("POST", "/v1/recovery/finish", map[string]any{"ceremony": "x"}, c.olga.token, nil); r.status != 400 {
		t.Fatalf("finish without credential: %d", r.status)
	}
	a := e.recoveryApprove(c.olga, id, "video call, HR photo")
	if a.status != 200 || nested(a, "case")["status"] != "cooling_down" || nested(a, "case")["cool_down_until"] == nil {
		t.Fatalf("olga approves: %d %s", a.status, a.raw)
	}
	if r := e.recoveryApprove(c.oscar, id, "late"); r.status < 400 {
		t.Fatalf("approval after the quorum: %d %s", r.status, r.raw)
	}
	if r := e.req("POST", "/v1/recovery/cases/"+id+"/deny", map[string]any{"reason": "late"}, c.oscar.token, nil); r.status < 400 {
		t.Fatalf("deny after the quorum: %d %s", r.status, r.raw)
	}

	// The cool-down: the claimant sees it, cannot claim yet.
	st = e.anon("POST", "/v1/recovery/status", map[string]any{"secret": secret})
	if st.body["status"] != "cooling_down" || st.body["claimable"] != false || st.body["cool_down_until"] == nil {
		t.Fatalf("status in cool-down: %s", st.raw)
	}
	samDevice := e.deviceOfPerson(c.sam)
	if r := e.anon("POST", "/v1/recovery/claim", map[string]any{"secret": secret, "device_id": samDevice}); r.status < 400 {
		t.Fatalf("claim during the cool-down: %d %s", r.status, r.raw)
	}
	e.clock.Add(recoveryCoolDown + time.Second)
	if st := e.anon("POST", "/v1/recovery/status", map[string]any{"secret": secret}); st.body["claimable"] != true {
		t.Fatalf("status after the cool-down: %s", st.raw)
	}
	for name, body := range map[string]any{
		"fail-bad-json":     []byte(`{"secret":`),
		"fail-no-secret":    map[string]any{"device_id": samDevice},
		"fail-long-device":  map[string]any{"secret": secret, "device_id": strings.Repeat("d", 65)},
		"fail-ghost-secret": map[string]any{"secret": ghostSecret, "device_id": samDevice},
		"fail-other-device": map[string]any{"secret": secret, "device_id": e.deviceOfPerson(c.sue)},
		"fail-no-device":    map[string]any{"secret": secret},
	} {
		if r := e.anon("POST", "/v1/recovery/claim", body); r.status < 400 || r.body["enrol_url"] != nil {
			t.Errorf("%s: claim %d %s", name, r.status, r.raw)
		}
	}
	cl := e.anon("POST", "/v1/recovery/claim", map[string]any{"secret": secret, "device_id": samDevice})
	enrolURL, _ := cl.body["enrol_url"].(string)
	if cl.status != 200 || !strings.HasPrefix(enrolURL, e.origin+"/enrol?token=") || cl.body["expires_at"] == nil {
		t.Fatalf("claim: %d %s", cl.status, cl.raw)
	}
	newKey := passkeytest.New()
	if r := e.enrol(newKey, strings.TrimPrefix(enrolURL, e.origin+"/enrol?token=")); r.status != 200 {
		t.Fatalf("recovery enrolment: %d %s", r.status, r.raw)
	}
	if st := e.anon("POST", "/v1/recovery/status", map[string]any{"secret": secret}); st.body["status"] != "completed" {
		t.Fatalf("status after the enrolment: %s", st.raw)
	}
	// The old session and the old passkey are dead; the new one signs in.
	if r := e.req("GET", "/v1/session", nil, c.sam.token, nil); r.status != 401 {
		t.Fatalf("sam's old session after recovery: %d", r.status)
	}
	lb := e.browser("POST", "/v1/login/begin", map[string]any{}, nil)
	old, err := c.sam.auth.Assert(e.origin, mustJSON(lb.body["publicKey"]))
	if err != nil {
		t.Fatal(err)
	}
	if r := e.browser("POST", "/v1/login/finish", map[string]any{"ceremony": lb.body["ceremony"], "credential": json.RawMessage(old), "bearer": true}, nil); r.status == 200 {
		t.Fatalf("the old passkey still signs in: %s", r.raw)
	}
	if tok, r := e.login(newKey); r.status != 200 || tok == "" {
		t.Fatalf("the new passkey: %d %s", r.status, r.raw)
	}
	// The claim secret is spent.
	if r := e.anon("POST", "/v1/recovery/claim", map[string]any{"secret": secret, "device_id": samDevice}); r.status < 400 {
		t.Fatalf("second claim: %d %s", r.status, r.raw)
	}
}

// TestRecoveryHTTPHelpdeskCancelDeny: a help-desk open (201 with the case
// and the claim secret; refused for someone without the role), the opener
// refused as approver, the subject's cancel with a passkey and no session,
// an officer's denial and the opener's abort.
func TestRecoveryHTTPHelpdeskCancelDeny(t *testing.T) {
	e := newEnv(t, withRecovery())
	c := e.recoveryCast()

	if r := e.req("POST", "/v1/recovery/cases", map[string]any{"user": "sue", "reason": "phone stolen"}, c.olga.token, nil); r.status != 403 {
		t.Fatalf("an officer without the help-desk role opens: %d %s", r.status, r.raw)
	}
	if r := e.req("POST", "/v1/recovery/cases", map[string]any{"user": "nobody", "reason": "phone stolen"}, c.hank.token, nil); r.status != 404 {
		t.Fatalf("help desk opens for an unknown account: %d %s", r.status, r.raw)
	}
	op := e.req("POST", "/v1/recovery/cases", map[string]any{"user": "sue", "reason": "phone stolen", "device_id": e.deviceOfPerson(c.sue)}, c.hank.token, nil)
	if op.status != 201 || op.body["claim_secret"] == "" || nested(op, "case")["via"] != airlock.OpenedByHelpdesk || nested(op, "case")["opened_by"] != c.hank.id {
		t.Fatalf("help-desk open: %d %s", op.status, op.raw)
	}
	id := nested(op, "case")["id"].(string)
	if nested(op, "case")["cancel_url"] != e.origin+"/recover/cancel/"+id {
		t.Fatalf("cancel url %v", nested(op, "case")["cancel_url"])
	}
	if r := e.req("POST", "/v1/recovery/cases", map[string]any{"user": "sue", "reason": "again"}, c.hank.token, nil); r.status != 409 {
		t.Fatalf("second help-desk open while one is live: %d %s", r.status, r.raw)
	}
	// The opener may not approve.
	if r := e.recoveryApprove(c.hank, id, "I know her"); r.status != 403 {
		t.Fatalf("the opener approves: %d %s", r.status, r.raw)
	}

	// Sue cancels with the passkey she still has: no session needed.
	if pg := e.req("GET", "/recover/cancel/"+id, nil, "", nil); pg.status != 200 || !strings.Contains(string(pg.raw), `data-case="`+id+`"`) {
		t.Fatalf("cancel page: %d", pg.status)
	}
	for name, body := range map[string]any{"fail-bad-json": []byte(`{`), "fail-no-case": map[string]any{}} {
		if r := e.anon("POST", "/v1/recovery/cancel/begin", body); r.status != 400 {
			t.Errorf("%s: cancel begin %d", name, r.status)
		}
	}
	if r := e.anon("POST", "/v1/recovery/cancel/begin", map[string]any{"case": "rc_nothing"}); r.status != 404 {
		t.Fatalf("cancel begin of an unknown case: %d %s", r.status, r.raw)
	}
	cb := e.anon("POST", "/v1/recovery/cancel/begin", map[string]any{"case": id})
	if cb.status != 200 {
		t.Fatalf("cancel begin: %d %s", cb.status, cb.raw)
	}
	// Someone else's passkey cannot answer it.
	if cred, err := c.sam.auth.Assert(e.origin, mustJSON(cb.body["publicKey"])); err == nil {
		if r := e.anon("POST", "/v1/recovery/cancel/finish", map[string]any{"ceremony": cb.body["ceremony"], "credential": json.RawMessage(cred)}); r.status == 200 {
			t.Fatalf("sam's passkey cancelled sue's case: %s", r.raw)
		}
		cb = e.anon("POST", "/v1/recovery/cancel/begin", map[string]any{"case": id})
	}
	cred, err := c.sue.auth.Assert(e.origin, mustJSON(cb.body["publicKey"]))
	if err != nil {
		t.Fatal(err)
	}
	if r := e.anon("POST", "/v1/recovery/cancel/finish", map[string]any{"ceremony": cb.body["ceremony"], "credential": json.RawMessage(cred), "bearer": true}); r.status != 400 {
		t.Fatalf("cancel finish with an unknown field: %d %s", r.status, r.raw)
	}
	cf := e.anon("POST", "/v1/recovery/cancel/finish", map[string]any{"ceremony": cb.body["ceremony"], "credential": json.RawMessage(cred)})
	if cf.status != 200 || nested(cf, "case")["status"] != "cancelled" {
		t.Fatalf("cancel finish: %d %s", cf.status, cf.raw)
	}
	if r := e.anon("POST", "/v1/recovery/cancel/finish", map[string]any{"ceremony": cb.body["ceremony"], "credential": json.RawMessage(cred)}); r.status == 200 {
		t.Fatalf("replayed cancel: %s", r.raw)
	}
	if r := e.recoveryApprove(c.olga, id, "too late"); r.status < 400 {
		t.Fatalf("approval of a cancelled case: %d %s", r.status, r.raw)
	}

	// A new case for sue, denied by an officer (a reason is required).
	op = e.req("POST", "/v1/recovery/cases", map[string]any{"user": "sue", "reason": "phone stolen, second try"}, c.hank.token, nil)
	id2 := nested(op, "case")["id"].(string)
	if r := e.req("POST", "/v1/recovery/cases/"+id2+"/deny", map[string]any{}, c.olga.token, nil); r.status != 400 {
		t.Fatalf("deny without a reason: %d", r.status)
	}
	if r := e.req("POST", "/v1/recovery/cases/"+id2+"/deny", map[string]any{"reason": "no"}, c.sam.token, nil); r.status != 403 {
		t.Fatalf("sam denies: %d %s", r.status, r.raw)
	}
	d := e.req("POST", "/v1/recovery/cases/"+id2+"/deny", map[string]any{"reason": "could not reach her manager"}, c.olga.token, nil)
	if d.status != 200 || nested(d, "case")["status"] != "denied" {
		t.Fatalf("deny: %d %s", d.status, d.raw)
	}

	// A third, aborted by its opener.
	op = e.req("POST", "/v1/recovery/cases", map[string]any{"user": "sue", "reason": "third"}, c.hank.token, nil)
	id3 := nested(op, "case")["id"].(string)
	if r := e.req("POST", "/v1/recovery/cases/"+id3+"/abort", map[string]any{"reason": "x"}, c.sam.token, nil); r.status != 403 {
		t.Fatalf("sam aborts: %d %s", r.status, r.raw)
	}
	if r := e.req("POST", "/v1/recovery/cases/"+id3+"/abort", []byte(`{"reason":1}`), c.hank.token, nil); r.status != 400 {
		t.Fatalf("abort with bad JSON: %d", r.status)
	}
	ab := e.req("POST", "/v1/recovery/cases/"+id3+"/abort", map[string]any{"reason": "opened by mistake"}, c.hank.token, nil)
	if ab.status != 200 || nested(ab, "case")["status"] != "cancelled" {
		t.Fatalf("abort: %d %s", ab.status, ab.raw)
	}
	if pg := e.req("GET", "/recovery", nil, c.hank.token, nil); pg.status != 200 || !strings.Contains(string(pg.raw), "helpdesk-form") {
		t.Fatalf("/recovery as help desk: %d", pg.status)
	}
	for _, typ := range []string{"recovery.opened", "recovery.cancelled", "recovery.denied"} {
		if len(mustAudit(t, e, typ)) == 0 {
			t.Errorf("no %s audit event", typ)
		}
	}
}

// TestRecoveryHTTPPagesAndLimits: the login page links "Lost my passkey?",
// the public pages need no session, opening is rate limited per address,
// and without a service everything answers 503.
func TestRecoveryHTTPPagesAndLimits(t *testing.T) {
	e := newEnv(t, withRecovery(func(s *airhttp.Server) { s.BeginPerMinute = 2 }))
	if r := e.req("GET", "/login", nil, "", nil); r.status != 200 || !strings.Contains(string(r.raw), `href="/recover"`) || !strings.Contains(string(r.raw), "Lost my passkey?") {
		t.Fatalf("login page: %d", r.status)
	}
	for path, want := range map[string]string{"/recover": `id="recover-form"`, "/recover/status": `id="status-form"`} {
		if r := e.req("GET", path, nil, "", nil); r.status != 200 || !strings.Contains(string(r.raw), want) {
			t.Errorf("GET %s: %d", path, r.status)
		}
	}
	// (The client follows the redirect.)
	if r := e.req("GET", "/recovery", nil, "", nil); r.status != http.StatusOK || !strings.Contains(string(r.raw), `id="login"`) {
		t.Errorf("GET /recovery without a session: %d, want the login page", r.status)
	}
	for i := 0; i < 2; i++ {
		if r := e.anon("POST", "/v1/recovery/cases", map[string]any{"user": "x", "reason": "lost"}); r.status != 202 {
			t.Fatalf("open %d: %d %s", i, r.status, r.raw)
		}
	}
	if r := e.anon("POST", "/v1/recovery/cases", map[string]any{"user": "x", "reason": "lost"}); r.status != 429 || r.errCode() != airlock.ERATELIMIT {
		t.Fatalf("third open in a minute: %d %s", r.status, r.raw)
	}

	n := newEnv(t, nil)
	admin, _ := n.bootstrapAdmin()
	for _, c := range []struct{ method, path string }{
		{"POST", "/v1/recovery/cases"}, {"GET", "/v1/recovery/cases"}, {"GET", "/v1/recovery/cases/rc_x"},
		{"POST", "/v1/recovery/cases/rc_x/deny"}, {"POST", "/v1/recovery/cases/rc_x/abort"},
		{"POST", "/v1/recovery/begin"}, {"POST", "/v1/recovery/finish"},
		{"POST", "/v1/recovery/cancel/begin"}, {"POST", "/v1/recovery/cancel/finish"},
		{"POST", "/v1/recovery/status"}, {"POST", "/v1/recovery/claim"},
	} {
		if r := n.req(c.method, c.path, map[string]any{}, admin, nil); r.status != 503 || r.errCode() != airlock.EUNAVAILABLE {
			t.Errorf("%s %s without a service: %d %s", c.method, c.path, r.status, r.raw)
		}
	}
	for _, path := range []string{"/recover", "/recover/status", "/recover/cancel/rc_x", "/recovery", "/recovery/rc_x"} {
		if r := n.req("GET", path, nil, admin, nil); r.status != 503 || !strings.Contains(string(r.raw), "not configured") {
			t.Errorf("GET %s without a service: %d", path, r.status)
		}
	}
}
