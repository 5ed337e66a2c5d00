package http_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"airlock"
	"airlock/decide"
	"airlock/granttoken"
	airhttp "airlock/http"
	"airlock/passkey/passkeytest"
	"airlock/policy"
	"airlock/sshca"
)

// withSSHCA adds an SSH CA and a grant-token issuer (fresh keys, defaults)
// to a server that has elevation (withElevation).
func withSSHCA(s *airhttp.Server) {
	_, caKey, _ := ed25519.GenerateKey(rand.Reader)
	ca, err := sshca.New(caKey, s.Store, sshca.Config{})
	if err != nil {
		panic(err)
	}
	_, tokKey, _ := ed25519.GenerateKey(rand.Reader)
	iss, err := granttoken.New(tokKey, granttoken.Config{Issuer: s.Origins[0]})
	if err != nil {
		panic(err)
	}
	s.SSHCA, s.GrantTokens = ca, iss
}

// sshKeyLine is a fresh Ed25519 public key as an authorized_keys line.
func sshKeyLine(t *testing.T) (string, ssh.PublicKey) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " rita@laptop", k
}

// grantFor asks for scope as tok (auto-approved: tier 2) and returns the
// grant's id.
func (e *env) grantFor(tok, scope string) string {
	e.t.Helper()
	r := e.ask(tok, scope, time.Hour, "look at the dashboards")
	g := nested(r, "grant")
	if r.status != http.StatusCreated || g["id"] == nil {
		e.t.Fatalf("ask %s: %d %s, want an auto-approved grant", scope, r.status, r.raw)
	}
	return g["id"].(string)
}

func (e *env) certFor(tok, grantID string, body map[string]any, hdr map[string]string) resp {
	e.t.Helper()
	return e.req("POST", "/v1/grants/"+grantID+"/ssh-certificate", body, tok, hdr)
}

// auditOf returns the events of type typ recorded for grant id.
func (e *env) auditOf(grantID, typ string) []*airlock.AuditEvent {
	e.t.Helper()
	evs, err := e.store.ListAudit(context.Background(), airlock.AuditFilter{GrantID: grantID, Type: typ})
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

// TestSSHUnavailable: without a CA or token issuer the endpoints answer
// 503; the issuing ones need a bearer session first.
func TestSSHUnavailable(t *testing.T) {
	e := newEnv(t, withElevation())
	admin, _ := e.bootstrapAdmin()
	for _, c := range []struct {
		method, path, tok string
		status            int
	}{
		{"GET", "/v1/sshca/pubkey", "", http.StatusServiceUnavailable},
		{"GET", "/v1/jwks", "", http.StatusServiceUnavailable},
		{"POST", "/v1/grants/grt_x/ssh-certificate", admin, http.StatusServiceUnavailable},
		{"POST", "/v1/grants/grt_x/token", admin, http.StatusServiceUnavailable},
		// No bearer token and no Origin: refused before anything else.
		{"POST", "/v1/grants/grt_x/ssh-certificate", "", http.StatusForbidden},
		{"POST", "/v1/grants/grt_x/token", "", http.StatusForbidden},
	} {
		var body any
		if c.method == "POST" {
			body = map[string]any{}
		}
		if r := e.req(c.method, c.path, body, c.tok, nil); r.status != c.status {
			t.Errorf("%s %s (token %v): %d %s, want %d", c.method, c.path, c.tok != "", r.status, r.raw, c.status)
		}
	}
}

func TestSSHPublicEndpoints(t *testing.T) {
	var srv *airhttp.Server
	e := newEnv(t, withElevation(withSSHCA, func(s *airhttp.Server) { srv = s }))
	r := e.req("GET", "/v1/sshca/pubkey", nil, "", nil)
	if r.status != 200 || string(r.raw) != srv.SSHCA.AuthorizedKey() || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") ||
		!strings.Contains(r.header.Get("Cache-Control"), "public") {
		t.Errorf("pubkey: %d %q %v", r.status, r.raw, r.header)
	}
	if k, _, _, _, err := ssh.ParseAuthorizedKey(r.raw); err != nil || k.Type() != ssh.KeyAlgoED25519 {
		t.Errorf("pubkey does not parse as an authorized_keys line: %v", err)
	}
	r = e.req("GET", "/v1/jwks", nil, "", nil)
	if r.status != 200 || r.header.Get("Content-Type") != "application/jwk-set+json" || !strings.Contains(r.header.Get("Cache-Control"), "public") {
		t.Errorf("jwks: %d %v", r.status, r.header)
	}
	if ids, err := granttoken.ParseJWKS(r.raw); err != nil || len(ids) != 1 || ids[0] != srv.GrantTokens.KeyID() {
		t.Errorf("jwks: %v %v", ids, err)
	}
}

// TestSSHCertificateIssued: a certificate from an active grant carries the
// grant's principal, key id user/grant, a recorded serial and a window
// inside the grant; the issue is audited with the decision's id, and the
// ssh.login decision itself is on record.
func TestSSHCertificateIssued(t *testing.T) {
	var srv *airhttp.Server
	e := newEnv(t, withElevation(withSSHCA, func(s *airhttp.Server) { srv = s }))
	admin, _ := e.bootstrapAdmin()
	tok, _, uid := e.person(admin, "rita", 1, nil, passkeytest.Flags{})
	gid := e.grantFor(tok, "viewer@grafana")
	line, key := sshKeyLine(t)

	r := e.certFor(tok, gid, map[string]any{"public_key": line}, nil)
	if r.status != 200 {
		t.Fatalf("certificate: %d %s", r.status, r.raw)
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(r.body["certificate"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	cert := pk.(*ssh.Certificate)
	g, err := e.store.FindGrantByID(context.Background(), gid)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cert.ValidPrincipals, []string{"viewer@grafana"}) || cert.KeyId != "rita/"+gid || cert.CertType != ssh.UserCert ||
		string(cert.Key.Marshal()) != string(key.Marshal()) || string(cert.SignatureKey.Marshal()) != string(srv.SSHCA.PublicKey().Marshal()) {
		t.Errorf("certificate %+v", cert)
	}
	if time.Unix(int64(cert.ValidBefore), 0).After(g.NotAfter) || time.Unix(int64(cert.ValidAfter), 0).Before(g.NotBefore) {
		t.Errorf("certificate window outside the grant's")
	}
	if _, ok := cert.Extensions["permit-agent-forwarding"]; ok || len(cert.Extensions) != 1 {
		t.Errorf("extensions %v, want permit-pty only", cert.Extensions)
	}
	var exact struct {
		Serial uint64 `json:"serial"`
	}
	if err := json.Unmarshal(r.raw, &exact); err != nil || exact.Serial != cert.Serial || r.body["key_id"] != cert.KeyId ||
		fmt.Sprint(r.body["principals"]) != "[viewer@grafana]" || r.body["decision_id"] == "" || r.body["grant_id"] != gid {
		t.Errorf("answer %s (serial %d)", r.raw, cert.Serial)
	}
	recs, err := e.store.ListSSHCertificates(context.Background(), gid)
	if err != nil || len(recs) != 1 || recs[0].Serial != cert.Serial || recs[0].KeyID != cert.KeyId || recs[0].UserID != uid {
		t.Fatalf("records %+v %v", recs, err)
	}

	evs := e.auditOf(gid, airhttp.EventSSHCertificateIssued)
	if len(evs) != 1 {
		t.Fatalf("%d issue events", len(evs))
	}
	ev := evs[0]
	if ev.Outcome != airlock.OutcomeSuccess || ev.UserID != uid || ev.SessionID == "" || ev.GrantID != gid || ev.DecisionID != r.body["decision_id"] ||
		ev.Details["serial"] != fmt.Sprint(cert.Serial) || ev.Details["key_id"] != cert.KeyId || ev.Details["key_fingerprint"] != ssh.FingerprintSHA256(key) ||
		ev.Details["valid_before"] == nil || ev.Details["extensions"] == nil || fmt.Sprint(ev.Details["principals"]) != "[viewer@grafana]" {
		t.Errorf("issue event %+v", ev)
	}
	decided := false
	for _, d := range e.auditOf(gid, "decision.allow") {
		if d.DecisionID == ev.DecisionID && d.Details != nil {
			decided = true
		}
	}
	if !decided {
		t.Errorf("no decision.allow record for %s on the grant", ev.DecisionID)
	}

	// Serials stay unique across certificates.
	r2 := e.certFor(tok, gid, map[string]any{"public_key": line}, nil)
	if r2.status != 200 || r2.body["serial"] == r.body["serial"] {
		t.Errorf("second certificate: %d %s", r2.status, r2.raw)
	}
}

// TestSSHCertificateRefused: every refusal answers with its code and is
// audited; after the grant ends no new certificate is issued.
func TestSSHCertificateRefused(t *testing.T) {
	e := newEnv(t, withElevation(withSSHCA))
	admin, _ := e.bootstrapAdmin()
	tok, _, _ := e.person(admin, "rita", 1, nil, passkeytest.Flags{})
	otto, _, _ := e.person(admin, "otto", 1, nil, passkeytest.Flags{})
	gid := e.grantFor(tok, "viewer@grafana")
	line, _ := sshKeyLine(t)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rpub, _ := ssh.NewPublicKey(&rk.PublicKey)
	weak := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(rpub)))

	cases := []struct {
		name    string
		tok     string
		grant   string
		body    map[string]any
		status  int
		code    string
		contain string
		outcome string
	}{
		{"fail-rsa-2048", tok, gid, map[string]any{"public_key": weak}, 400, airlock.EINVALID, "3072", airlock.OutcomeFailure},
		{"fail-key-options", tok, gid, map[string]any{"public_key": `from="*" ` + line}, 400, airlock.EINVALID, "without options", airlock.OutcomeFailure},
		{"fail-no-key", tok, gid, map[string]any{}, 400, airlock.EINVALID, "public_key", airlock.OutcomeFailure},
		{"fail-unknown-field", tok, gid, map[string]any{"public_key": line, "principals": []string{"root"}}, 400, airlock.EINVALID, "", airlock.OutcomeFailure},
		{"fail-unknown-grant", tok, "grt_nope", map[string]any{"public_key": line}, 404, airlock.ENOTFOUND, "", airlock.OutcomeDenied},
		{"fail-someone-elses-grant", otto, gid, map[string]any{"public_key": line}, 404, airlock.ENOTFOUND, "", airlock.OutcomeDenied},
		{"fail-agent-forwarding", tok, gid, map[string]any{"public_key": line, "forward_agent": true}, 403, airlock.EFORBIDDEN, "ssh.agent_forwarding", airlock.OutcomeDenied},
		{"fail-port-forwarding", tok, gid, map[string]any{"public_key": line, "forward_ports": true}, 403, airlock.EFORBIDDEN, "ssh.port_forwarding", airlock.OutcomeDenied},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(e.auditOf(c.grant, airhttp.EventSSHCertificateIssued))
			r := e.certFor(c.tok, c.grant, c.body, nil)
			if r.status != c.status || r.errCode() != c.code || !strings.Contains(r.errMsg(), c.contain) || r.body["certificate"] != nil {
				t.Fatalf("%d %s, want %d %s containing %q", r.status, r.raw, c.status, c.code, c.contain)
			}
			evs := e.auditOf(c.grant, airhttp.EventSSHCertificateIssued)
			if len(evs) != before+1 || evs[len(evs)-1].Outcome != c.outcome || evs[len(evs)-1].Reason == "" {
				t.Errorf("refusal not audited as %s: %d → %d events", c.outcome, before, len(evs))
			}
		})
	}
	if recs, _ := e.store.ListSSHCertificates(context.Background(), gid); len(recs) != 0 {
		t.Errorf("refused requests recorded %d certificates", len(recs))
	}

	t.Run("fail-grant-ended", func(t *testing.T) {
		if r := e.certFor(tok, gid, map[string]any{"public_key": line}, nil); r.status != 200 {
			t.Fatalf("while active: %d %s", r.status, r.raw)
		}
		if r := e.req("POST", "/v1/grants/"+gid+"/end", map[string]any{}, tok, nil); r.status != 200 {
			t.Fatalf("end: %d %s", r.status, r.raw)
		}
		r := e.certFor(tok, gid, map[string]any{"public_key": line}, nil)
		if r.status != http.StatusForbidden || r.body["certificate"] != nil {
			t.Errorf("after the end: %d %s, want 403", r.status, r.raw)
		}
		if r := e.req("POST", "/v1/grants/"+gid+"/token", nil, tok, nil); r.status != http.StatusForbidden || r.body["token"] != nil {
			t.Errorf("token after the end: %d %s, want 403", r.status, r.raw)
		}
	})
	t.Run("fail-grant-expired", func(t *testing.T) {
		g2 := e.grantFor(tok, "viewer@grafana")
		// The session is used within its idle limit, so it stays alive
		// while the one-hour grant runs out.
		e.clock.Add(30 * time.Minute)
		if r := e.req("GET", "/v1/session", nil, tok, nil); r.status != 200 {
			t.Fatalf("session: %d %s", r.status, r.raw)
		}
		e.clock.Add(31 * time.Minute)
		r := e.certFor(tok, g2, map[string]any{"public_key": line}, nil)
		if r.status != http.StatusGone || r.errCode() != airlock.EEXPIRED || r.body["certificate"] != nil {
			t.Errorf("expired grant: %d %s, want 410 expired", r.status, r.raw)
		}
	})
}

// TestSSHForwardingAllowedByPolicy: an operator's policy without the
// default forwarding ban lets a certificate carry the forwarding
// extensions asked for.
func TestSSHForwardingAllowedByPolicy(t *testing.T) {
	files := policy.DefaultFiles()
	const ban = `@id("ssh-no-forwarding")`
	src := string(files["50-elevation.cedar"])
	i := strings.Index(src, ban)
	if i < 0 {
		t.Fatalf("the default set no longer has %s in 50-elevation.cedar; update this test", ban)
	}
	// Drop the ban (the comment block before it too).
	if j := strings.LastIndex(src[:i], "\n\n"); j >= 0 {
		i = j
	}
	files["50-elevation.cedar"] = []byte(src[:i] + "\n")
	set, err := policy.Compile(files)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, withElevation(withSSHCA, func(s *airhttp.Server) { s.Decide.Engine.Swap(set) }))
	admin, _ := e.bootstrapAdmin()
	tok, _, _ := e.person(admin, "rita", 1, nil, passkeytest.Flags{})
	gid := e.grantFor(tok, "viewer@grafana")
	line, _ := sshKeyLine(t)
	r := e.certFor(tok, gid, map[string]any{"public_key": line, "forward_agent": true, "forward_ports": true}, nil)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if fmt.Sprint(r.body["extensions"]) != "[permit-agent-forwarding permit-port-forwarding permit-pty]" {
		t.Errorf("extensions %v", r.body["extensions"])
	}
}

// TestSSHCertificateStepUp: when the policy wants a fresh passkey
// verification for ssh.login, the answer is the RFC 9470 challenge; the
// proof works for the identical request only.
func TestSSHCertificateStepUp(t *testing.T) {
	e := newEnv(t, withElevation(withSSHCA, func(s *airhttp.Server) {
		c := decide.QuickStart()
		c.Actions["ssh.login"] = decide.Action{Sensitivity: policy.High, Resources: map[string]policy.Sensitivity{"grafana": policy.Critical}}
		s.Decide.Catalog = c
	}))
	admin, _ := e.bootstrapAdmin()
	tok, a, _ := e.person(admin, "rita", 1, nil, passkeytest.Flags{})
	gid := e.grantFor(tok, "viewer@grafana")
	line, _ := sshKeyLine(t)
	other, _ := sshKeyLine(t)
	e.clock.Add(16 * time.Minute)

	body := map[string]any{"public_key": line}
	r := e.certFor(tok, gid, body, nil)
	www := r.header.Get("WWW-Authenticate")
	txn, _ := r.body["transaction"].(string)
	if r.status != http.StatusUnauthorized || !strings.HasPrefix(www, `Bearer error="insufficient_user_authentication"`) || !strings.Contains(www, `max_age="900"`) || txn == "" {
		t.Fatalf("step-up answer: %d %q %s", r.status, www, r.raw)
	}
	if evs := e.auditOf(gid, airhttp.EventSSHCertificateIssued); len(evs) != 1 || evs[0].Outcome != airlock.OutcomeDenied || evs[0].Reason != "policy_step_up" {
		t.Errorf("step-up not audited as a refusal: %+v", evs)
	}
	proof, _ := e.stepUp(tok, a, txn).body["proof"].(string)
	if proof == "" {
		t.Fatal("no proof")
	}
	// fail-proof-other-key: the proof confirmed another key.
	if r := e.certFor(tok, gid, map[string]any{"public_key": other}, map[string]string{"Airlock-StepUp": proof}); r.status != http.StatusForbidden || r.body["certificate"] != nil {
		t.Fatalf("proof for another key: %d %s, want 403", r.status, r.raw)
	}
	// ok-proof-same-request (a new step-up: the proof above was spent).
	e.clock.Add(16 * time.Minute)
	r = e.certFor(tok, gid, body, nil)
	txn, _ = r.body["transaction"].(string)
	proof, _ = e.stepUp(tok, a, txn).body["proof"].(string)
	r = e.certFor(tok, gid, body, map[string]string{"Airlock-StepUp": proof})
	if r.status != 200 || r.body["certificate"] == nil {
		t.Fatalf("with the proof: %d %s", r.status, r.raw)
	}
	// fail-proof-replayed.
	if r := e.certFor(tok, gid, body, map[string]string{"Airlock-StepUp": proof}); r.status == 200 {
		t.Errorf("replayed proof: %d %s", r.status, r.raw)
	}
}

// TestGrantToken: a grant token verifies offline against the served JWKS,
// for the grant's resource, not past the grant's end; the issue is audited.
func TestGrantToken(t *testing.T) {
	e := newEnv(t, withElevation(withSSHCA))
	admin, _ := e.bootstrapAdmin()
	tok, _, uid := e.person(admin, "rita", 1, nil, passkeytest.Flags{})
	gid := e.grantFor(tok, "viewer@grafana")
	r := e.req("POST", "/v1/grants/"+gid+"/token", nil, tok, nil)
	if r.status != 200 {
		t.Fatalf("token: %d %s", r.status, r.raw)
	}
	jwks := e.req("GET", "/v1/jwks", nil, "", nil).raw
	c, err := granttoken.Verify(r.body["token"].(string), jwks, "grafana", e.clock.Now())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	g, _ := e.store.FindGrantByID(context.Background(), gid)
	if c.GrantID != gid || c.Subject != uid || c.Name != "rita" || c.Scope != "viewer@grafana" || c.Issuer != e.origin || c.ExpiresAt().After(g.NotAfter) ||
		r.body["expires_at"] != c.ExpiresAt().Format(time.RFC3339) {
		t.Errorf("claims %+v, answer %s", c, r.raw)
	}
	if _, err := granttoken.Verify(r.body["token"].(string), jwks, "payments", e.clock.Now()); err == nil {
		t.Error("token accepted for another audience")
	}
	evs := e.auditOf(gid, airhttp.EventGrantTokenIssued)
	if len(evs) != 1 || evs[0].Outcome != airlock.OutcomeSuccess || evs[0].UserID != uid || evs[0].Details["jti"] != c.ID {
		t.Errorf("token events %+v", evs)
	}
	// A body other than empty or {} is refused.
	if r := e.req("POST", "/v1/grants/"+gid+"/token", map[string]any{"aud": "payments"}, tok, nil); r.status != 400 {
		t.Errorf("token with a body: %d %s", r.status, r.raw)
	}
}

// TestSSHTierScope: a tier grant's certificate names the principal
// "tier:N" and its token the audience "tier:N".
func TestSSHTierScope(t *testing.T) {
	e := newEnv(t, withElevation(withSSHCA))
	admin, _ := e.bootstrapAdmin()
	tok, _, _ := e.person(admin, "rita", 1, nil, passkeytest.Flags{})
	gid := e.grantFor(tok, "tier:2")
	line, _ := sshKeyLine(t)
	r := e.certFor(tok, gid, map[string]any{"public_key": line}, nil)
	if r.status != 200 || fmt.Sprint(r.body["principals"]) != "[tier:2]" {
		t.Fatalf("certificate: %d %s", r.status, r.raw)
	}
	r = e.req("POST", "/v1/grants/"+gid+"/token", nil, tok, nil)
	if r.status != 200 || r.body["audience"] != "tier:2" {
		t.Fatalf("token: %d %s", r.status, r.raw)
	}
}

// TestSSHCredentialsUsableAtOnce: a grant approved at a fractional second
// yields a certificate and a token valid at that very moment — sshd checks
// whole seconds, and a valid_after rounded up past now made it refuse a
// brand-new grant's certificate as "not yet valid" — and neither starts
// before the grant does.
func TestSSHCredentialsUsableAtOnce(t *testing.T) {
	e := newEnv(t, withElevation(withSSHCA))
	admin, _ := e.bootstrapAdmin()
	tok, _, _ := e.person(admin, "rita", 1, nil, passkeytest.Flags{})
	now := e.clock.Now()
	e.clock.Add(time.Second + 700*time.Millisecond - now.Sub(now.Truncate(time.Second)))
	now = e.clock.Now()
	if now.Nanosecond() != 700*int(time.Millisecond) {
		t.Fatalf("clock at %v, want .700", now)
	}
	gid := e.grantFor(tok, "viewer@grafana")
	g, err := e.store.FindGrantByID(context.Background(), gid)
	if err != nil {
		t.Fatal(err)
	}
	if !g.IsActive(now) {
		t.Fatalf("grant [%v, %v) not active at %v", g.NotBefore, g.NotAfter, now)
	}
	line, _ := sshKeyLine(t)
	r := e.certFor(tok, gid, map[string]any{"public_key": line}, nil)
	if r.status != 200 {
		t.Fatalf("certificate: %d %s", r.status, r.raw)
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(r.body["certificate"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	cert := pk.(*ssh.Certificate)
	after, before := time.Unix(int64(cert.ValidAfter), 0), time.Unix(int64(cert.ValidBefore), 0)
	if after.After(now) {
		t.Errorf("certificate valid after %v: not usable at %v", after.UTC(), now)
	}
	if after.Before(g.NotBefore) || before.After(g.NotAfter) {
		t.Errorf("certificate [%v, %v) outside the grant's [%v, %v)", after.UTC(), before.UTC(), g.NotBefore, g.NotAfter)
	}
	// sshd's check, at the real moment of issue.
	checker := &ssh.CertChecker{Clock: func() time.Time { return now },
		IsUserAuthority: func(k ssh.PublicKey) bool { return string(k.Marshal()) == string(cert.SignatureKey.Marshal()) }}
	if err := checker.CheckCert("viewer@grafana", cert); err != nil {
		t.Errorf("CheckCert at issue: %v", err)
	}

	r = e.req("POST", "/v1/grants/"+gid+"/token", nil, tok, nil)
	if r.status != 200 {
		t.Fatalf("token: %d %s", r.status, r.raw)
	}
	c, err := granttoken.Verify(r.body["token"].(string), e.req("GET", "/v1/jwks", nil, "", nil).raw, "grafana", now)
	if err != nil {
		t.Fatal(err)
	}
	if c.NotBefore > now.Unix() || time.Unix(c.NotBefore, 0).Before(g.NotBefore) || c.ExpiresAt().After(g.NotAfter) {
		t.Errorf("token [%d, %d) at %v, grant [%v, %v)", c.NotBefore, c.Expiry, now, g.NotBefore, g.NotAfter)
	}
}

// endingStore ends grant id (as an admin would, concurrently) just before
// the CA records a certificate for it.
type endingStore struct {
	st  airlock.Store
	now func() time.Time
}

func (s endingStore) CreateSSHCertificate(ctx context.Context, c *airlock.SSHCertificate) error {
	if err := s.st.EndGrant(ctx, c.GrantID, airlock.EndRevokedByAdmin, "usr_admin", s.now()); err != nil {
		return err
	}
	return s.st.CreateSSHCertificate(ctx, c)
}

// TestSSHCertificateGrantEndedMeanwhile: a grant that ends while its
// certificate is being decided and signed (an admin revocation, a session
// or device hook racing the request) gets no certificate: the grant is
// looked at again once the certificate is recorded, and the refusal is
// audited with the serial that was never handed out.
func TestSSHCertificateGrantEndedMeanwhile(t *testing.T) {
	var e *env
	e = newEnv(t, withElevation(func(s *airhttp.Server) {
		withSSHCA(s)
		_, caKey, _ := ed25519.GenerateKey(rand.Reader)
		ca, err := sshca.New(caKey, endingStore{st: s.Store, now: func() time.Time { return e.clock.Now() }}, sshca.Config{})
		if err != nil {
			panic(err)
		}
		s.SSHCA = ca
	}))
	admin, _ := e.bootstrapAdmin()
	tok, _, _ := e.person(admin, "rita", 1, nil, passkeytest.Flags{})
	gid := e.grantFor(tok, "viewer@grafana")
	line, _ := sshKeyLine(t)
	r := e.certFor(tok, gid, map[string]any{"public_key": line}, nil)
	if r.status != http.StatusForbidden || r.body["certificate"] != nil {
		t.Fatalf("grant ended meanwhile: %d %s, want 403 and no certificate", r.status, r.raw)
	}
	recs, err := e.store.ListSSHCertificates(context.Background(), gid)
	if err != nil || len(recs) != 1 {
		t.Fatalf("records %v %v", recs, err)
	}
	evs := e.auditOf(gid, airhttp.EventSSHCertificateIssued)
	if len(evs) != 1 || evs[0].Outcome != airlock.OutcomeDenied || evs[0].Details["serial"] != fmt.Sprint(recs[0].Serial) {
		t.Errorf("events %+v, want one denied naming serial %d", evs, recs[0].Serial)
	}
}

// TestSSHIssueRateLimited: certificates and grant tokens are bounded per
// user per minute, each counted apart; another user is not affected.
func TestSSHIssueRateLimited(t *testing.T) {
	e := newEnv(t, withElevation(withSSHCA))
	admin, _ := e.bootstrapAdmin()
	tok, _, _ := e.person(admin, "rita", 1, nil, passkeytest.Flags{})
	gid := e.grantFor(tok, "viewer@grafana")
	line, _ := sshKeyLine(t)
	for i := range airhttp.IssuePerMinute {
		if r := e.certFor(tok, gid, map[string]any{"public_key": line}, nil); r.status != 200 {
			t.Fatalf("certificate %d: %d %s", i, r.status, r.raw)
		}
	}
	r := e.certFor(tok, gid, map[string]any{"public_key": line}, nil)
	if r.status != 429 {
		t.Fatalf("certificate %d: %d %s, want 429", airhttp.IssuePerMinute+1, r.status, r.raw)
	}
	// Tokens have their own counter.
	if r := e.req("POST", "/v1/grants/"+gid+"/token", map[string]any{}, tok, nil); r.status != 200 {
		t.Fatalf("token after the certificate limit: %d %s", r.status, r.raw)
	}
	// Another user is not limited by rita's requests.
	tok2, _, _ := e.person(admin, "sam", 1, nil, passkeytest.Flags{})
	gid2 := e.grantFor(tok2, "viewer@grafana")
	if r := e.certFor(tok2, gid2, map[string]any{"public_key": line}, nil); r.status != 200 {
		t.Fatalf("other user: %d %s", r.status, r.raw)
	}
}

// TestSSHForwardingStepUpRefused: forwarding must be allowed outright. A
// step_up the policy answers for ssh.agent_forwarding is a 403 naming the
// action — never the RFC 9470 challenge, whose proof would confirm only
// ssh.login — and it is audited; no certificate is recorded.
func TestSSHForwardingStepUpRefused(t *testing.T) {
	files := policy.DefaultFiles()
	const ban = `@id("ssh-no-forwarding")`
	src := string(files["50-elevation.cedar"])
	i := strings.Index(src, ban)
	if i < 0 {
		t.Fatalf("the default set no longer has %s in 50-elevation.cedar; update this test", ban)
	}
	if j := strings.LastIndex(src[:i], "\n\n"); j >= 0 {
		i = j
	}
	files["50-elevation.cedar"] = []byte(src[:i] + "\n")
	set, err := policy.Compile(files)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, withElevation(withSSHCA, func(s *airhttp.Server) {
		s.Decide.Engine.Swap(set)
		c := decide.QuickStart()
		c.Actions[airhttp.ActionSSHAgentForwarding] = decide.Action{Sensitivity: policy.High, Resources: map[string]policy.Sensitivity{"grafana": policy.Critical}}
		s.Decide.Catalog = c
	}))
	admin, _ := e.bootstrapAdmin()
	tok, _, _ := e.person(admin, "rita", 1, nil, passkeytest.Flags{})
	gid := e.grantFor(tok, "viewer@grafana")
	line, _ := sshKeyLine(t)
	e.clock.Add(16 * time.Minute)

	// ok-without-forwarding: ssh.login alone is still allowed.
	if r := e.certFor(tok, gid, map[string]any{"public_key": line}, nil); r.status != 200 {
		t.Fatalf("without forwarding: %d %s", r.status, r.raw)
	}
	r := e.certFor(tok, gid, map[string]any{"public_key": line, "forward_agent": true}, nil)
	if r.status != http.StatusForbidden || r.errCode() != airlock.EFORBIDDEN || r.body["action"] != airhttp.ActionSSHAgentForwarding ||
		!strings.Contains(r.errMsg(), "outright") || r.body["certificate"] != nil || r.body["transaction"] != nil {
		t.Fatalf("forwarding wanting a step-up: %d %s, want 403 naming %s", r.status, r.raw, airhttp.ActionSSHAgentForwarding)
	}
	if www := r.header.Get("WWW-Authenticate"); www != "" {
		t.Errorf("WWW-Authenticate %q on a forwarding refusal", www)
	}
	evs := e.auditOf(gid, airhttp.EventSSHCertificateIssued)
	last := evs[len(evs)-1]
	if last.Outcome != airlock.OutcomeDenied || last.Reason != "policy_step_up" || last.Details["refused_action"] != airhttp.ActionSSHAgentForwarding {
		t.Errorf("refusal audited as %s %s %v", last.Outcome, last.Reason, last.Details)
	}
	if recs, _ := e.store.ListSSHCertificates(context.Background(), gid); len(recs) != 1 {
		t.Errorf("%d certificates recorded, want only the one without forwarding", len(recs))
	}
}
