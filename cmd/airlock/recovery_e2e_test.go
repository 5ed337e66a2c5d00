package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"airlock"
	"airlock/decide"
	"airlock/passkey/passkeytest"
	"airlock/recovery"
)

// e2eClock is the injected clock of a recovery run: the cool-down passes
// by moving it, not by sleeping.
type e2eClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *e2eClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *e2eClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// e2ePerson is a user with a trusted, compliant device of their own, a
// passkey on it and a bearer session from it.
type e2ePerson struct {
	name, device, token string
	key                 *passkeytest.Authenticator
}

// addDevice registers a managed device of owner, trusted and compliant,
// and returns its id.
func addDevice(t *testing.T, admin []string, name, owner string) string {
	t.Helper()
	out, errOut, code := runCLI(t, append(admin, "devices", "create", "--name", name, "--owner", owner, "--kind", "managed")...)
	var d map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil {
		t.Fatalf("devices create %s: %s %s", name, out, errOut)
	}
	dev := d["id"].(string)
	if _, errOut, code := runCLI(t, append(admin, "devices", "trust", dev)...); code != 0 {
		t.Fatalf("trust: %s", errOut)
	}
	if _, errOut, code := runCLI(t, append(admin, "devices", "posture", "--disk-encrypted", "--screen-lock", dev)...); code != 0 {
		t.Fatalf("posture: %s", errOut)
	}
	return dev
}

// enrolWith completes the enrolment link secret with key.
func enrolWith(t *testing.T, s *cliServer, secret string, key *passkeytest.Authenticator) {
	t.Helper()
	b := s.post("/v1/enrol/begin", map[string]any{"token": secret})
	opts, _ := json.Marshal(b["publicKey"])
	cred, _, err := key.Register(s.origin, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.post("/v1/enrol/finish", map[string]any{"ceremony": b["ceremony"], "credential": json.RawMessage(cred)})
}

// loginWith signs in with key and returns the status and the answer.
func loginWith(t *testing.T, s *cliServer, key *passkeytest.Authenticator) (int, map[string]any) {
	t.Helper()
	b := s.post("/v1/login/begin", map[string]any{})
	opts, _ := json.Marshal(b["publicKey"])
	cred, err := key.Assert(s.origin, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s.status("/v1/login/finish", "", map[string]any{"ceremony": b["ceremony"], "credential": json.RawMessage(cred), "bearer": true})
}

// addPerson creates user name (tier 0, roles) with a device and a passkey,
// and signs them in.
func addPerson(t *testing.T, s *cliServer, admin []string, name, roles string) *e2ePerson {
	t.Helper()
	args := append(admin, "users", "create", "--name", name, "--tier", "0")
	if roles != "" {
		args = append(args, "--roles", roles)
	}
	if _, errOut, code := runCLI(t, args...); code != 0 {
		t.Fatalf("users create %s: %s", name, errOut)
	}
	p := &e2ePerson{name: name, device: addDevice(t, admin, name+"-laptop", name), key: passkeytest.New()}
	out, errOut, code := runCLI(t, append(admin, "enrol-token", "--user", name, "--device", p.device)...)
	var tok map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &tok) != nil {
		t.Fatalf("enrol-token %s: %s %s", name, out, errOut)
	}
	enrolWith(t, s, tok["token"].(string), p.key)
	code, f := loginWith(t, s, p.key)
	if code != http.StatusOK {
		t.Fatalf("login %s: %d %v", name, code, f)
	}
	p.token = f["token"].(string)
	return p
}

// recoveryRig is a server on SQLite with a subject, two recovery officers
// and a help-desk operator who is also an officer.
type recoveryRig struct {
	s                      *cliServer
	clock                  *e2eClock
	admin                  []string
	sam, olga, oscar, hana *e2ePerson
}

func newRecoveryRig(t *testing.T) *recoveryRig {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Data = t.TempDir()
	// Shortened for the test; the clock is moved past it.
	cfg.Recovery.CoolDown = TierDurations{Tier0: 2 * time.Minute, Tier1: time.Minute, Tier2: time.Minute}
	clock := &e2eClock{t: time.Now().UTC().Truncate(time.Second)}
	cfg.Listen = "127.0.0.1:" + itoa(freePort(t))
	s := startServerWithClock(t, cfg, clock.Now)
	adminToken, _ := enrolAdmin(t, s)
	r := &recoveryRig{s: s, clock: clock, admin: []string{"admin", "--server", s.base, "--token", adminToken}}
	r.sam = addPerson(t, s, r.admin, "sam", "")
	r.olga = addPerson(t, s, r.admin, "olga", recovery.RoleOfficer)
	r.oscar = addPerson(t, s, r.admin, "oscar", recovery.RoleOfficer)
	r.hana = addPerson(t, s, r.admin, "hana", recovery.RoleHelpdesk+","+recovery.RoleOfficer)
	return r
}

// startServerWithClock is startServerWith with Main.Now set.
func startServerWithClock(t *testing.T, cfg Config, now func() time.Time) *cliServer {
	t.Helper()
	s := &cliServer{t: t, logs: &syncBuffer{}}
	s.m = &Main{Config: cfg, Stdout: &s.out, Now: now, Logger: slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if err := s.m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.m.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", s.logs.String())
		}
	})
	s.base = "http://" + s.m.Addr().String()
	s.origin = s.m.Origin
	return s
}

func (r *recoveryRig) subject(p *e2ePerson) decide.Subject { return subjectOf(r.s.t, r.s, p.token) }

// get GETs path with bearer and decodes the answer.
func (s *cliServer) get(path, bearer string) (int, map[string]any) {
	s.t.Helper()
	req, _ := http.NewRequest("GET", s.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

// rcAnswer is an answer of the recovery API: the case (when there is one)
// or the error message.
type rcAnswer struct {
	code    int
	status  string
	message string
	body    map[string]any
}

func answer(code int, body map[string]any) rcAnswer {
	a := rcAnswer{code: code, body: body, message: errMessage(body)}
	if c, ok := body["case"].(map[string]any); ok {
		a.status, _ = c["status"].(string)
	} else {
		a.status, _ = body["status"].(string)
	}
	return a
}

// approve runs officer p's approval of case id over HTTP
// (/v1/recovery/begin and /finish with p's session and passkey).
func (r *recoveryRig) approve(p *e2ePerson, id, verification string) rcAnswer {
	t := r.s.t
	t.Helper()
	code, b := r.s.status("/v1/recovery/begin", p.token, map[string]any{"case": id, "verification": verification})
	if code != http.StatusOK {
		return answer(code, b)
	}
	opts, _ := json.Marshal(b)
	resp, err := p.key.Assert(r.s.origin, opts)
	if err != nil {
		t.Fatal(err)
	}
	return answer(r.s.status("/v1/recovery/finish", p.token, map[string]any{"ceremony": b["ceremony"], "credential": json.RawMessage(resp), "verification": verification}))
}

// claim is POST /v1/recovery/claim; it returns the enrolment token secret
// of the released link.
func (r *recoveryRig) claim(secret, device string) (string, rcAnswer) {
	code, body := r.s.status("/v1/recovery/claim", "", map[string]any{"secret": secret, "device_id": device})
	a := answer(code, body)
	if code != http.StatusOK {
		return "", a
	}
	link, _ := body["enrol_url"].(string)
	u, err := url.Parse(link)
	if err != nil || !strings.HasPrefix(link, r.s.origin+"/enrol?token=") {
		r.s.t.Fatalf("enrol_url %q", link)
	}
	return u.Query().Get("token"), a
}

// TestRecoveryCancelledBySubjectE2E: the help desk opens a case for a
// tier-0 subject, neither the subject nor the opener can approve it, the
// same officer counts once, two officers meet the quorum, and the subject
// — who still holds a passkey — cancels it during the cool-down with no
// session; the claim secret is then worthless. All over HTTP.
func TestRecoveryCancelledBySubjectE2E(t *testing.T) {
	r := newRecoveryRig(t)
	code, opened := r.s.status("/v1/recovery/cases", r.hana.token, map[string]any{"user": "sam", "reason": "laptop stolen at the airport (ticket HD-1001)"})
	c, _ := opened["case"].(map[string]any)
	secret, _ := opened["claim_secret"].(string)
	if code != http.StatusCreated || c == nil || secret == "" || c["status"] != "pending" || c["required"] != float64(2) {
		t.Fatalf("help desk opens: %d %v", code, opened)
	}
	id := c["id"].(string)
	// The subject never approves their own recovery, nor does the opener,
	// even as an officer.
	if a := r.approve(r.sam, id, "it is me"); a.code != http.StatusForbidden || !strings.Contains(a.message, "your own account") {
		t.Fatalf("the subject approving: %+v", a)
	}
	if a := r.approve(r.hana, id, "I opened it"); a.code != http.StatusForbidden || !strings.Contains(a.message, "you opened this case") {
		t.Fatalf("the opener approving: %+v", a)
	}
	if a := r.approve(r.olga, id, "video call, matched HR photo"); a.code != http.StatusOK || a.status != "pending" {
		t.Fatalf("first approval: %+v", a)
	}
	// The same officer twice is still one approval.
	if a := r.approve(r.olga, id, "again"); a.code != http.StatusConflict || !strings.Contains(a.message, "already approved") {
		t.Fatalf("a second approval by the same officer: %+v", a)
	}
	if a := r.approve(r.oscar, id, "called back on the HR phone number"); a.code != http.StatusOK || a.status != "cooling_down" {
		t.Fatalf("quorum: %+v", a)
	}
	// The real owner still has a passkey and cancels, without a session.
	code, b := r.s.status("/v1/recovery/cancel/begin", "", map[string]any{"case": id})
	if code != http.StatusOK {
		t.Fatalf("cancel begin: %d %v", code, b)
	}
	opts, _ := json.Marshal(b)
	resp, err := r.sam.key.Assert(r.s.origin, opts)
	if err != nil {
		t.Fatal(err)
	}
	if a := answer(r.s.status("/v1/recovery/cancel/finish", "", map[string]any{"ceremony": b["ceremony"], "credential": json.RawMessage(resp)})); a.code != http.StatusOK || a.status != "cancelled" {
		t.Fatalf("cancel: %+v", a)
	}
	rc, err := r.s.m.Store.FindRecoveryCaseByID(context.Background(), id)
	if err != nil || rc.Status != airlock.RecoveryCancelled || rc.ResolvedBy != r.subject(r.sam).User.ID {
		t.Fatalf("cancelled case %+v %v", rc, err)
	}
	r.clock.Advance(3 * time.Minute)
	if tok, a := r.claim(secret, r.sam.device); tok != "" || a.code == http.StatusOK {
		t.Fatalf("a cancelled case was claimed: %+v", a)
	}
	// sam's passkey still works.
	if code, body := loginWith(t, r.s, r.sam.key); code != http.StatusOK {
		t.Fatalf("sam after the cancel: %d %v", code, body)
	}
}

// TestRecoveryCompletedE2E: a self-service case ("Lost my passkey?", no
// session) approved by two officers; the claim is refused during the
// cool-down and with a wrong secret, and released after it, bound to a new
// compliant device of the subject; enrolling there completes the case,
// revokes the old passkey (its login is refused) and ends the old session,
// and the new session's decisions carry the recent_recovery risk signal.
// All over HTTP.
func TestRecoveryCompletedE2E(t *testing.T) {
	r := newRecoveryRig(t)
	code, opened := r.s.status("/v1/recovery/cases", "", map[string]any{"user": "sam", "reason": "lost my security key"})
	secret, _ := opened["claim_secret"].(string)
	if code != http.StatusAccepted || secret == "" || opened["case"] != nil {
		t.Fatalf("self-service open: %d %v", code, opened)
	}
	// The same answer for a name that does not exist.
	code, ghost := r.s.status("/v1/recovery/cases", "", map[string]any{"user": "nobody", "reason": "lost my key"})
	if code != http.StatusAccepted || ghost["claim_secret"] == "" || len(ghost) != len(opened) {
		t.Fatalf("unknown account: %d %v", code, ghost)
	}
	// The officers find it in their list.
	samID := r.subject(r.sam).User.ID
	code, list := r.s.get("/v1/recovery/cases?pending=1", r.olga.token)
	var id string
	cases, _ := list["cases"].([]any)
	for _, c := range cases {
		if m := c.(map[string]any); m["subject_id"] == samID {
			id, _ = m["id"].(string)
		}
	}
	if code != http.StatusOK || id == "" {
		t.Fatalf("officer's list: %d %v", code, list)
	}
	if a := r.approve(r.olga, id, "video call, matched HR photo"); a.code != http.StatusOK {
		t.Fatalf("first approval: %+v", a)
	}
	if a := r.approve(r.oscar, id, "manager confirmed in person"); a.status != "cooling_down" {
		t.Fatalf("quorum: %+v", a)
	}
	newLaptop := addDevice(t, r.admin, "sam-new-laptop", "sam")
	if _, a := r.claim(secret, newLaptop); a.code == http.StatusOK || !strings.Contains(a.message, "cool") {
		t.Fatalf("claimed during the cool-down: %+v", a)
	}
	r.clock.Advance(3 * time.Minute)
	if st := answer(r.s.status("/v1/recovery/status", "", map[string]any{"secret": secret})); st.status != "cooling_down" || st.body["claimable"] != true {
		t.Fatalf("status after the cool-down: %+v", st)
	}
	if _, a := r.claim("not-the-secret", newLaptop); a.code == http.StatusOK {
		t.Fatal("claimed with a wrong secret")
	}
	enrol, a := r.claim(secret, newLaptop)
	if a.code != http.StatusOK || enrol == "" {
		t.Fatalf("claim: %+v", a)
	}
	newKey := passkeytest.New()
	enrolWith(t, r.s, enrol, newKey)

	if st := answer(r.s.status("/v1/recovery/status", "", map[string]any{"secret": secret})); st.status != "completed" {
		t.Fatalf("case after enrolment: %+v", st)
	}
	// The old passkey is dead, the old session ended.
	if code, body := loginWith(t, r.s, r.sam.key); code == http.StatusOK {
		t.Fatalf("the old passkey still signs in: %v", body)
	}
	if code, _ := r.s.status("/v1/decide", r.sam.token, map[string]any{"action": "config.read", "resource": "grafana"}); code != http.StatusUnauthorized {
		t.Fatalf("the old session still decides: %d", code)
	}
	// The new one works, and its decisions carry the risk signal.
	code, f := loginWith(t, r.s, newKey)
	if code != http.StatusOK {
		t.Fatalf("new passkey: %d %v", code, f)
	}
	code, d := r.s.status("/v1/decide", f["token"].(string), map[string]any{"action": "config.read", "resource": "grafana"})
	raw, _ := json.Marshal(d)
	if code != http.StatusOK || !strings.Contains(string(raw), `"signal":"recent_recovery"`) {
		t.Fatalf("decision after recovery: %d %s", code, raw)
	}
}
