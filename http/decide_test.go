package http_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"airlock"
	"airlock/decide"
	airhttp "airlock/http"
	"airlock/passkey/passkeytest"
	"airlock/pep"
	"airlock/session"
)

// airlockTier1 makes the resource "airlock" tier 1, as an operator who lets
// tier-1 admins administer would configure it, so that tests reach the
// admin API's own escalation rules beneath the policy.
func airlockTier1(s *airhttp.Server) {
	c := decide.QuickStart()
	for i := range c.Resources {
		if c.Resources[i].Name == decide.ResourceAirlock {
			c.Resources[i].Tier = 1
		}
	}
	s.Decide.Catalog = c
}

// stepUp runs the step-up ceremony of transaction txn as session tok with
// authenticator a and returns the finish answer.
func (e *env) stepUp(tok string, a *passkeytest.Authenticator, txn string, opts ...passkeytest.Option) resp {
	e.t.Helper()
	b := e.req("POST", "/v1/stepup/begin", map[string]any{"transaction": txn}, tok, nil)
	if b.status != 200 {
		return b
	}
	cred, err := a.Assert(e.origin, mustJSON(b.body["publicKey"]), opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.req("POST", "/v1/stepup/finish", map[string]any{"ceremony": b.body["ceremony"], "credential": rawJSON(cred)}, tok, nil)
}

func (e *env) decideAs(tok string, body map[string]any) resp {
	e.t.Helper()
	if tok != "" {
		body["session"] = tok
	}
	return e.req("POST", "/v1/decide", body, "", nil)
}

func reasonsText(r resp) string {
	var out []string
	rs, _ := r.body["reasons"].([]any)
	for _, x := range rs {
		m := x.(map[string]any)
		out = append(out, m["policy"].(string)+": "+m["text"].(string))
	}
	return strings.Join(out, "; ")
}

const transfer = `{"payee":"DE02 1203 0000 0000 2020 51","amount":"250.00"}`

func TestDecideAPI(t *testing.T) {
	e := newEnv(t, nil)
	admin, _ := e.bootstrapAdmin()
	tok, a, _ := e.person(admin, "alice", 0, nil, passkeytest.Flags{})

	t.Run("ok-allow", func(t *testing.T) {
		r := e.decideAs(tok, map[string]any{"action": "config.read", "resource": "grafana", "context": map[string]any{"ip": "192.0.2.7", "client": "grafana"}})
		if r.status != 200 || r.body["decision"] != "allow" || r.body["decision_id"] == "" || r.body["policy_version"] == "" {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		if _, ok := r.body["risk"].(map[string]any)["signals"].([]any); !ok {
			t.Errorf("risk without signals: %s", r.raw)
		}
		evs, _ := e.store.ListAudit(context.Background(), airlock.AuditFilter{Type: "decision.", Newest: true, Limit: 1})
		if len(evs) != 1 || evs[0].DecisionID != r.body["decision_id"] || evs[0].IP != "192.0.2.7" || evs[0].Details["input"] == nil {
			t.Errorf("decision audit %+v", evs)
		}
	})

	t.Run("fail-unknown-session", func(t *testing.T) {
		r := e.decideAs("not-a-session", map[string]any{"action": "config.read", "resource": "grafana"})
		if r.status != 401 || r.errCode() != airlock.EUNAUTHORIZED {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		if r := e.decideAs("", map[string]any{"action": "config.read", "resource": "grafana"}); r.status != 401 {
			t.Fatalf("no session at all: %d %s", r.status, r.raw)
		}
	})

	t.Run("fail-unknown-action-and-resource", func(t *testing.T) {
		for _, b := range []map[string]any{{"action": "secrets.steal", "resource": "vault-prod"}, {"action": "config.read", "resource": "mainframe"}} {
			r := e.decideAs(tok, b)
			if r.status != 200 || r.body["decision"] != "deny" || !strings.Contains(reasonsText(r), "unknown-") {
				t.Fatalf("%v: %d %s", b, r.status, r.raw)
			}
		}
	})

	t.Run("fail-bad-input", func(t *testing.T) {
		for _, b := range []map[string]any{
			{"action": "config.read", "resource": "grafana", "context": map[string]any{"ip": "not-an-ip"}},
			{"action": "", "resource": "grafana"},
			{"action": "config.read", "resource": "grafana", "params": []int{1}},
			{"action": "config.read", "resource": "grafana", "surprise": true},
		} {
			if r := e.decideAs(tok, b); r.status != 400 || r.errCode() != airlock.EINVALID {
				t.Errorf("%v: %d %s", b, r.status, r.raw)
			}
		}
	})

	t.Run("cookie-same-origin-only", func(t *testing.T) {
		_, lr := e.login(a)
		c := (&http.Response{Header: lr.header}).Cookies()[0]
		body := map[string]any{"action": "config.read", "resource": "grafana"}
		if r := e.browser("POST", "/v1/decide", body, c); r.status != 200 || r.body["decision"] != "allow" {
			t.Fatalf("same-origin page: %d %s", r.status, r.raw)
		}
		decided := func() int {
			evs, err := e.store.ListAudit(context.Background(), airlock.AuditFilter{Type: "decision."})
			if err != nil {
				t.Fatal(err)
			}
			return len(evs)
		}
		before := decided()
		r := e.req("POST", "/v1/decide", body, "", map[string]string{"Cookie": c.Name + "=" + c.Value, "Origin": "https://evil.example"})
		if r.status != 403 {
			t.Fatalf("cross-site cookie decide: %d %s", r.status, r.raw)
		}
		// No Origin at all (a script outside any browser holding the
		// cookie): the cookie alone never authenticates a decision.
		r = e.req("POST", "/v1/decide", body, "", map[string]string{"Cookie": c.Name + "=" + c.Value})
		if r.status != 403 || r.errCode() != airlock.EFORBIDDEN {
			t.Fatalf("cookie decide without Origin: %d %s", r.status, r.raw)
		}
		if n := decided(); n != before {
			t.Errorf("refused cookie decides were decided and audited: %d decision events, want %d", n, before)
		}
	})

	t.Run("step-up-once", func(t *testing.T) {
		req := func(params string, proof string) resp {
			b := map[string]any{"action": "payments.transfer", "resource": "payments", "params": rawJSON([]byte(params)),
				"context": map[string]any{"ip": "192.0.2.7", "client": "bank-ui"}}
			if proof != "" {
				b["stepup"] = proof
			}
			return e.decideAs(tok, b)
		}
		r := req(transfer, "")
		su, _ := r.body["step_up"].(map[string]any)
		if r.body["decision"] != "step_up" || su == nil || su["max_age"] != float64(0) || !strings.HasSuffix(su["url"].(string), "/stepup/"+su["transaction"].(string)) {
			t.Fatalf("transfer: %s", r.raw)
		}
		txn := su["transaction"].(string)
		// UV cleared: refused, nothing to show for it.
		if f := e.stepUp(tok, a, txn, passkeytest.WithFlags(passkeytest.Flags{NoUserVerification: true})); f.status != 401 {
			t.Fatalf("UV-cleared step-up: %d %s", f.status, f.raw)
		}
		// Another session of the same person cannot confirm it.
		other, _ := e.login(a)
		if f := e.stepUp(other, a, txn); f.status != 403 {
			t.Fatalf("step-up from another session: %d %s", f.status, f.raw)
		}
		f := e.stepUp(tok, a, txn)
		proof, _ := f.body["proof"].(string)
		if f.status != 200 || proof == "" || f.body["transaction"] != txn {
			t.Fatalf("step-up: %d %s", f.status, f.raw)
		}
		ok := req(transfer, proof)
		if ok.body["decision"] != "allow" || !strings.Contains(reasonsText(ok), "stepup-confirmed") {
			t.Fatalf("decide with proof: %s", ok.raw)
		}
		// context.ip is only the caller's word: confirming the step-up
		// does not make that network the user's.
		sess, err := e.store.FindSessionByTokenHash(context.Background(), session.HashToken(tok))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.FindNetwork(context.Background(), sess.UserID, "192.0.2.0/24"); airlock.ErrorCode(err) != airlock.ENOTFOUND {
			t.Errorf("the PEP-reported network was recorded as the user's: %v", err)
		}
		again := req(transfer, proof)
		if again.body["decision"] != "deny" || !strings.Contains(reasonsText(again), "already used") {
			t.Fatalf("replayed proof: %s", again.raw)
		}

		// A proof made for one transfer is refused for another amount.
		r = req(transfer, "")
		txn2 := r.body["step_up"].(map[string]any)["transaction"].(string)
		proof2 := e.stepUp(tok, a, txn2).body["proof"].(string)
		other2 := req(`{"payee":"DE02 1203 0000 0000 2020 51","amount":"25000.00"}`, proof2)
		if other2.body["decision"] != "deny" || !strings.Contains(reasonsText(other2), "other parameters") {
			t.Fatalf("proof for other params: %s", other2.raw)
		}
		// And it was spent by that attempt.
		if late := req(transfer, proof2); late.body["decision"] != "deny" {
			t.Fatalf("spent proof accepted: %s", late.raw)
		}

		// Expired: the proof is valid for 2 minutes.
		r = req(transfer, "")
		txn3 := r.body["step_up"].(map[string]any)["transaction"].(string)
		proof3 := e.stepUp(tok, a, txn3).body["proof"].(string)
		e.clock.Add(2 * time.Minute)
		expired := req(transfer, proof3)
		if expired.body["decision"] != "deny" || !strings.Contains(reasonsText(expired), "expired") {
			t.Fatalf("expired proof: %s", expired.raw)
		}
	})

	t.Run("fail-store-down", func(t *testing.T) {
		e.store.Close()
		r := e.decideAs(tok, map[string]any{"action": "config.read", "resource": "grafana"})
		if r.status < 500 || r.body["decision"] != nil {
			t.Fatalf("store down: %d %s", r.status, r.raw)
		}
	})
}

func TestAdminStepUp(t *testing.T) {
	e := newEnv(t, nil)
	admin, adminAuth := e.bootstrapAdmin()
	users := func() int {
		us, _ := e.store.ListUsers(context.Background())
		return len(us)
	}
	// Within 300 s of the login's passkey verification: allowed directly.
	if r := e.req("POST", "/v1/admin/users", map[string]any{"name": "early"}, admin, nil); r.status != 201 {
		t.Fatalf("fresh admin: %d %s", r.status, r.raw)
	}
	e.clock.Add(301 * time.Second)
	n := users()
	body := map[string]any{"name": "bob", "tier": 1}
	r := e.req("POST", "/v1/admin/users", body, admin, nil)
	if r.status != 401 || r.errCode() != pep.ErrInsufficientUserAuthentication {
		t.Fatalf("stale admin change: %d %s", r.status, r.raw)
	}
	h := r.header.Get("WWW-Authenticate")
	for _, want := range []string{`Bearer error="insufficient_user_authentication"`, `acr_values="airlock:tier0"`, `max_age="300"`} {
		if !strings.Contains(h, want) {
			t.Errorf("WWW-Authenticate %q lacks %s", h, want)
		}
	}
	txn, _ := r.body["transaction"].(string)
	if txn == "" || r.body["step_up_url"] != e.origin+"/stepup/"+txn || users() != n {
		t.Fatalf("challenge body %s (users %d → %d)", r.raw, n, users())
	}
	// Reads still work on the admin rule alone.
	if g := e.req("GET", "/v1/admin/users", nil, admin, nil); g.status != 200 {
		t.Fatalf("read: %d %s", g.status, g.raw)
	}

	f := e.stepUp(admin, adminAuth, txn)
	proof, _ := f.body["proof"].(string)
	if f.status != 200 || proof == "" {
		t.Fatalf("step-up: %d %s", f.status, f.raw)
	}
	// The proof does not fit another change.
	if x := e.req("POST", "/v1/admin/users", map[string]any{"name": "mallory", "tier": 0}, admin, map[string]string{pep.HeaderStepUp: proof}); x.status != 403 || users() != n {
		t.Fatalf("proof for other params: %d %s", x.status, x.raw)
	}
	// It was spent by that attempt: a new challenge, a new confirmation.
	e.clock.Add(301 * time.Second)
	r = e.req("POST", "/v1/admin/users", body, admin, nil)
	txn = r.body["transaction"].(string)
	proof = e.stepUp(admin, adminAuth, txn).body["proof"].(string)
	ok := e.req("POST", "/v1/admin/users", body, admin, map[string]string{pep.HeaderStepUp: proof})
	if ok.status != 201 || users() != n+1 {
		t.Fatalf("confirmed change: %d %s", ok.status, ok.raw)
	}
	created, _ := e.store.ListAudit(context.Background(), airlock.AuditFilter{Type: "user.created", Newest: true, Limit: 1})
	allowed, _ := e.store.ListAudit(context.Background(), airlock.AuditFilter{Type: "decision.allow", Newest: true, Limit: 1})
	if len(created) != 1 || len(allowed) != 1 || created[0].DecisionID == "" || created[0].DecisionID != allowed[0].DecisionID || allowed[0].TransactionID != txn {
		t.Errorf("user.created %+v is not joined to its decision %+v", created, allowed)
	}
	// Once.
	if x := e.req("POST", "/v1/admin/users", map[string]any{"name": "bob2", "tier": 1}, admin, map[string]string{pep.HeaderStepUp: proof}); x.status != 403 {
		t.Fatalf("replayed admin proof: %d %s", x.status, x.raw)
	}
	// The step-up refreshed the session's passkey verification: the next
	// change within 300 s needs no new confirmation.
	if x := e.req("POST", "/v1/admin/users", map[string]any{"name": "carol"}, admin, nil); x.status != 201 {
		t.Fatalf("change right after a step-up: %d %s", x.status, x.raw)
	}
}

func TestExceptionsAPI(t *testing.T) {
	e := newEnv(t, nil)
	admin, _ := e.bootstrapAdmin()
	tok, _, uid := e.person(admin, "dana", 0, nil, passkeytest.Flags{})
	secrets := map[string]any{"action": "secrets.export", "resource": "vault-prod"}
	e.clock.Add(301 * time.Second)
	admin, _ = e.login(mustAuth(t, e, admin))
	if r := e.decideAs(tok, copyMap(secrets)); r.body["decision"] != "step_up" {
		t.Fatalf("secrets.export with stale UV: %s", r.raw)
	}
	bad := []map[string]any{
		{"user": uid, "action": "secrets.export", "effect": "skip_step_up", "owner": "sec", "ttl_s": 3600},                // no reason
		{"user": uid, "action": "secrets.export", "effect": "skip_step_up", "reason": "OPS-9", "ttl_s": 3600},             // no owner
		{"user": uid, "action": "nope.nope", "effect": "skip_step_up", "owner": "sec", "reason": "OPS-9", "ttl_s": 3600},  // unknown action
		{"user": uid, "effect": "skip_step_up", "owner": "sec", "reason": "OPS-9", "ttl_s": 200 * 24 * 3600},              // too long
		{"user": uid, "effect": "skip_step_up", "owner": "sec", "reason": "OPS-9"},                                        // no expiry
		{"user": "ghost", "effect": "skip_step_up", "owner": "sec", "reason": "OPS-9", "ttl_s": 60},                       // unknown user
		{"user": uid, "effect": "skip_step_up", "owner": "sec", "reason": "OPS-9", "ttl_s": 60, "expires_at": time.Now()}, // both
	}
	for _, b := range bad {
		if r := e.req("POST", "/v1/admin/exceptions", b, admin, nil); r.status != 400 {
			t.Errorf("%v: %d %s", b, r.status, r.raw)
		}
	}
	if r := e.req("POST", "/v1/admin/exceptions", map[string]any{"user": "admin", "effect": "skip_step_up", "owner": "me", "reason": "lazy", "ttl_s": 60}, admin, nil); r.status != 403 {
		t.Errorf("self exception: %d %s", r.status, r.raw)
	}
	if l := e.req("GET", "/v1/admin/exceptions", nil, admin, nil); len(l.body["exceptions"].([]any)) != 0 {
		t.Fatalf("refused exceptions were stored: %s", l.raw)
	}
	c := e.req("POST", "/v1/admin/exceptions", map[string]any{"user": "dana", "action": "secrets.export", "resource": "vault-prod",
		"effect": "skip_step_up", "owner": "security-team", "reason": "incident INC-42", "ttl_s": 600}, admin, nil)
	if c.status != 201 || c.body["live"] != true || c.body["user_id"] != uid {
		t.Fatalf("create: %d %s", c.status, c.raw)
	}
	id := c.body["id"].(string)
	r := e.decideAs(tok, copyMap(secrets))
	if r.body["decision"] != "allow" || len(r.body["exceptions"].([]any)) != 1 {
		t.Fatalf("with the exception: %s", r.raw)
	}
	if d := e.req("DELETE", "/v1/admin/exceptions/"+id, nil, admin, nil); d.status != 200 {
		t.Fatalf("delete: %d %s", d.status, d.raw)
	}
	if r := e.decideAs(tok, copyMap(secrets)); r.body["decision"] != "step_up" {
		t.Fatalf("after delete: %s", r.raw)
	}
	if d := e.req("DELETE", "/v1/admin/exceptions/"+id, nil, admin, nil); d.status != 404 {
		t.Fatalf("delete twice: %d %s", d.status, d.raw)
	}
	for _, typ := range []string{"policy.exception_created", "policy.exception_deleted"} {
		evs, _ := e.store.ListAudit(context.Background(), airlock.AuditFilter{Type: typ})
		if len(evs) != 1 || evs[0].Subject != id || evs[0].DecisionID == "" {
			t.Errorf("%s audit: %+v", typ, evs)
		}
	}
	// Expiry: ignored at once, swept and audited by housekeeping.
	c = e.req("POST", "/v1/admin/exceptions", map[string]any{"user": "dana", "action": "secrets.export", "effect": "skip_step_up",
		"owner": "security-team", "reason": "INC-43", "ttl_s": 60}, admin, nil)
	e.clock.Add(time.Minute)
	tok, _ = e.login(mustAuthOf(t, e, "dana"))
	if r := e.decideAs(tok, copyMap(secrets)); r.body["decision"] != "allow" {
		// The new login's passkey verification is fresh: allowed on its own.
		t.Fatalf("fresh login: %s", r.raw)
	}
	if n, err := e.decide.SweepExceptions(context.Background()); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	evs, _ := e.store.ListAudit(context.Background(), airlock.AuditFilter{Type: "policy.exception_expired"})
	if len(evs) != 1 || evs[0].Subject != c.body["id"] {
		t.Fatalf("expiry audit %+v", evs)
	}
}

// authenticators remembers each test person's authenticator by name.
var authenticators = map[string]*passkeytest.Authenticator{}

func mustAuth(t *testing.T, e *env, tok string) *passkeytest.Authenticator {
	t.Helper()
	return mustAuthOf(t, e, "admin")
}

func mustAuthOf(t *testing.T, e *env, name string) *passkeytest.Authenticator {
	t.Helper()
	a := authenticators[e.srv.URL+"/"+name]
	if a == nil {
		t.Fatalf("no authenticator for %s", name)
	}
	return a
}

func copyMap(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestResourcesAPI(t *testing.T) {
	e := newEnv(t, airlockTier1)
	admin, _ := e.bootstrapAdmin()
	t1admin, _, _ := e.person(admin, "t1admin", 1, []string{airlock.RoleAdmin}, passkeytest.Flags{})
	tok, _, _ := e.person(admin, "erin", 2, nil, passkeytest.Flags{})
	dec := func() string {
		return e.decideAs(tok, map[string]any{"action": "deploy.prod", "resource": "wiki"}).body["decision"].(string)
	}
	if dec() != "deny" {
		t.Fatal("unknown resource not denied")
	}
	if r := e.req("POST", "/v1/admin/resources", map[string]any{"name": "wiki", "tier": 2, "labels": map[string]string{"env": "prod"}}, t1admin, nil); r.status != 201 || r.body["source"] != "api" {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	if dec() != "allow" {
		t.Fatal("stored resource not used")
	}
	for _, tc := range []struct {
		name, method, path string
		body               map[string]any
		status             int
	}{
		{"fail-config-resource", "PATCH", "/v1/admin/resources/grafana", map[string]any{"tier": 1}, 403},
		{"fail-config-name", "POST", "/v1/admin/resources", map[string]any{"name": "ci", "tier": 2}, 409},
		{"fail-duplicate", "POST", "/v1/admin/resources", map[string]any{"name": "wiki", "tier": 2}, 409},
		{"fail-escalate-create", "POST", "/v1/admin/resources", map[string]any{"name": "crown", "tier": 0}, 403},
		{"fail-escalate-update", "PATCH", "/v1/admin/resources/wiki", map[string]any{"tier": 0}, 403},
		{"fail-bad-tier", "POST", "/v1/admin/resources", map[string]any{"name": "x", "tier": 7}, 400},
		{"fail-bad-name", "POST", "/v1/admin/resources", map[string]any{"name": "X Y", "tier": 2}, 400},
		{"fail-bad-label", "POST", "/v1/admin/resources", map[string]any{"name": "x", "tier": 2, "labels": map[string]string{"Bad Key": "v"}}, 400},
		{"fail-missing", "DELETE", "/v1/admin/resources/nothing", nil, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := e.req(tc.method, tc.path, tc.body, t1admin, nil); r.status != tc.status {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		})
	}
	if r := e.req("PATCH", "/v1/admin/resources/wiki", map[string]any{"tier": 1, "labels": map[string]string{"env": "staging"}}, t1admin, nil); r.status != 200 || r.body["tier"] != float64(1) {
		t.Fatalf("update: %d %s", r.status, r.raw)
	}
	if dec() != "deny" { // a tier-2 session on a tier-1 resource
		t.Fatal("resource tier change not applied")
	}
	l := e.req("GET", "/v1/admin/resources", nil, t1admin, nil)
	if l.status != 200 || !strings.Contains(string(l.raw), `"name":"vault-prod"`) || !strings.Contains(string(l.raw), `"name":"wiki"`) {
		t.Fatalf("list: %s", l.raw)
	}
	if r := e.req("DELETE", "/v1/admin/resources/wiki", nil, t1admin, nil); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	for _, typ := range []string{"resource.created", "resource.updated", "resource.deleted"} {
		if evs, _ := e.store.ListAudit(context.Background(), airlock.AuditFilter{Type: typ}); len(evs) != 1 {
			t.Errorf("%s audited %d times", typ, len(evs))
		}
	}
	if c := e.req("GET", "/v1/admin/catalog", nil, t1admin, nil); c.status != 200 || !strings.Contains(string(c.raw), decide.ActionUserCreate) {
		t.Fatalf("catalog: %d %s", c.status, c.raw)
	}
	if r := e.req("POST", "/v1/admin/policy/reload", nil, t1admin, nil); r.status != 400 {
		t.Fatalf("reload without policy_dir: %d %s", r.status, r.raw)
	}
}

func TestStepUpPage(t *testing.T) {
	e := newEnv(t, nil)
	admin, _ := e.bootstrapAdmin()
	_, a, _ := e.person(admin, "fay", 0, nil, passkeytest.Flags{})
	_, lr := e.login(a)
	c := (&http.Response{Header: lr.header}).Cookies()[0]
	r := e.browser("POST", "/v1/decide", map[string]any{"action": "payments.transfer", "resource": "payments",
		"params": rawJSON([]byte(transfer)), "context": map[string]any{"client": "bank <ui>"}}, c)
	txn := r.body["step_up"].(map[string]any)["transaction"].(string)
	page := func(path string, ck *http.Cookie) resp {
		h := map[string]string{}
		if ck != nil {
			h["Cookie"] = ck.Name + "=" + ck.Value
		}
		return e.req("GET", path, nil, "", h)
	}
	p := page("/stepup/"+txn+"?return_to=/somewhere%3Fx%3D1", c)
	for _, want := range []string{`id="stepup-action">payments.transfer<`, `id="stepup-resource">payments<`, "<td>amount</td><td>250.00</td>",
		"<td>payee</td><td>DE02 1203 0000 0000 2020 51</td>", "bank &lt;ui&gt;", `data-transaction="` + txn + `"`, `data-return="/somewhere?x=1"`} {
		if !strings.Contains(string(p.raw), want) {
			t.Errorf("step-up page lacks %s", want)
		}
	}
	for _, evil := range []string{"//evil.example/x", "https://evil.example/", "javascript:alert(1)", "/\\evil.example"} {
		p := page("/stepup/"+txn+"?return_to="+evil, c)
		if strings.Contains(string(p.raw), "evil") || strings.Contains(string(p.raw), "javascript") {
			t.Errorf("return_to %q kept", evil)
		}
	}
	// Another session of the same person: refused.
	_, lr2 := e.login(a)
	c2 := (&http.Response{Header: lr2.header}).Cookies()[0]
	if p := page("/stepup/"+txn, c2); p.status != 403 || strings.Contains(string(p.raw), "data-action=\"stepup\"") {
		t.Errorf("other session: %d", p.status)
	}
	if p := page("/stepup/txn_nope", c2); p.status != 404 {
		t.Errorf("unknown transaction: %d", p.status)
	}
}

// TestStepUpPageShowsEverything: the page shows every parameter the proof
// is bound to — padding parameters cannot push the payee out of sight — and
// the requesting application's self-chosen name cannot hide or reorder
// text with invisible characters.
func TestStepUpPageShowsEverything(t *testing.T) {
	e := newEnv(t, nil)
	admin, _ := e.bootstrapAdmin()
	_, a, _ := e.person(admin, "gus", 0, nil, passkeytest.Flags{})
	_, lr := e.login(a)
	c := (&http.Response{Header: lr.header}).Cookies()[0]
	params := map[string]any{"payee": "GB33 MALLORY", "amount": "9999.00"}
	for i := range 60 {
		params[fmt.Sprintf("a%02d", i)] = "x"
	}
	r := e.browser("POST", "/v1/decide", map[string]any{"action": "payments.transfer", "resource": "payments",
		"params": params, "context": map[string]any{"client": "bank\u202eknab"}}, c)
	if r.body["decision"] != "step_up" {
		t.Fatalf("decide: %s", r.raw)
	}
	txn := r.body["step_up"].(map[string]any)["transaction"].(string)
	p := e.req("GET", "/stepup/"+txn, nil, "", map[string]string{"Cookie": c.Name + "=" + c.Value})
	page := string(p.raw)
	for _, want := range []string{"<td>payee</td><td>GB33 MALLORY</td>", "<td>amount</td><td>9999.00</td>", "<td>a59</td>", `bank\u202eknab`} {
		if !strings.Contains(page, want) {
			t.Errorf("step-up page lacks %s", want)
		}
	}
	if strings.Contains(page, "\u202e") {
		t.Error("step-up page shows U+202E (right-to-left override) as is")
	}
}

// TestExceptionForEveryone: an exception with no user covers every account,
// the creator's and tier-0 ones included. Only a tier-0 session may create
// one, and it never applies to the admin who created it.
func TestExceptionForEveryone(t *testing.T) {
	e := newEnv(t, airlockTier1)
	admin, _ := e.bootstrapAdmin()
	t1admin, _, _ := e.person(admin, "t1admin", 1, []string{airlock.RoleAdmin}, passkeytest.Flags{})
	tok, _, _ := e.person(admin, "hal", 0, nil, passkeytest.Flags{})
	everyone := map[string]any{"action": "secrets.export", "effect": "skip_step_up", "owner": "sec", "reason": "OPS-7", "ttl_s": 3600}
	if r := e.req("POST", "/v1/admin/exceptions", copyMap(everyone), t1admin, nil); r.status != 403 {
		t.Errorf("fail-tier1-everyone: a tier-1 session created an exception covering tier-0 accounts: %d %s", r.status, r.raw)
	}
	if r := e.req("POST", "/v1/admin/exceptions", copyMap(everyone), admin, nil); r.status != 201 {
		t.Fatalf("tier-0 admin, every user: %d %s", r.status, r.raw)
	}
	e.clock.Add(301 * time.Second)
	secrets := map[string]any{"action": "secrets.export", "resource": "vault-prod"}
	if r := e.decideAs(tok, copyMap(secrets)); r.body["decision"] != "allow" {
		t.Errorf("ok-others: hal with the every-user exception: %s", r.raw)
	}
	if r := e.decideAs(admin, copyMap(secrets)); r.body["decision"] != "step_up" {
		t.Errorf("fail-self: the creator exempted by their own every-user exception: %s", r.raw)
	}
}
