package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
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

// approve runs officer p's approval of case id.
func (r *recoveryRig) approve(p *e2ePerson, id, verification string) (*airlock.RecoveryCase, error) {
	ctx := context.Background()
	officer := r.subject(p)
	b, err := r.s.m.Recovery.BeginApproval(ctx, id, officer, verification, e2eMeta)
	if err != nil {
		return nil, err
	}
	opts, _ := json.Marshal(b)
	resp, err := p.key.Assert(r.s.origin, opts)
	if err != nil {
		r.s.t.Fatal(err)
	}
	return r.s.m.Recovery.FinishApproval(ctx, b.Ceremony, resp, officer, verification, e2eMeta)
}

// TestRecoveryCancelledBySubjectE2E: the help desk opens a case for a
// tier-0 subject, the opener cannot approve it, two other officers do, and
// the subject — who still holds a passkey — cancels it during the
// cool-down; the claim secret is then worthless.
func TestRecoveryCancelledBySubjectE2E(t *testing.T) {
	r := newRecoveryRig(t)
	ctx := context.Background()
	hana := r.subject(r.hana)
	opened, err := r.s.m.Recovery.Open(ctx, recovery.Open{Subject: "sam", Reason: "laptop stolen at the airport (ticket HD-1001)", Opener: &hana}, e2eMeta)
	if err != nil || opened.Case == nil || opened.Secret == "" {
		t.Fatalf("help desk opens: %+v %v", opened, err)
	}
	c := opened.Case
	if c.Status != airlock.RecoveryPending || c.Required != 2 {
		t.Fatalf("tier-0 case %+v", c)
	}
	// The subject never approves their own recovery (checked before the
	// officer role), nor does the opener, even as an officer.
	if _, err := r.approve(r.sam, c.ID, "it is me"); recovery.ReasonOf(err) != recovery.ReasonSelfApproval {
		t.Fatalf("the subject approving: %v", err)
	}
	if _, err := r.approve(r.hana, c.ID, "I opened it"); recovery.ReasonOf(err) != recovery.ReasonOpenerApproval {
		t.Fatalf("the opener approving their own case: %v", err)
	}
	if c, err = r.approve(r.olga, c.ID, "video call, matched HR photo"); err != nil || c.Status != airlock.RecoveryPending {
		t.Fatalf("first approval: %+v %v", c, err)
	}
	// The same officer twice is still one approval.
	if _, err := r.approve(r.olga, c.ID, "again"); recovery.ReasonOf(err) != recovery.ReasonAlreadyApproved {
		t.Fatalf("a second approval by the same officer: %v", err)
	}
	if c, err = r.approve(r.oscar, c.ID, "called back on the HR phone number"); err != nil || c.Status != airlock.RecoveryCoolingDown {
		t.Fatalf("quorum: %+v %v", c, err)
	}
	// The real owner still has a passkey and cancels.
	b, err := r.s.m.Recovery.BeginCancel(ctx, c.ID, e2eMeta)
	if err != nil {
		t.Fatal(err)
	}
	opts, _ := json.Marshal(b)
	resp, err := r.sam.key.Assert(r.s.origin, opts)
	if err != nil {
		t.Fatal(err)
	}
	if c, err = r.s.m.Recovery.FinishCancel(ctx, b.Ceremony, resp, e2eMeta); err != nil || c.Status != airlock.RecoveryCancelled || c.ResolvedBy != r.subject(r.sam).User.ID {
		t.Fatalf("cancel: %+v %v", c, err)
	}
	r.clock.Advance(3 * time.Minute)
	if _, _, err := r.s.m.Recovery.Claim(ctx, opened.Secret, r.sam.device, e2eMeta); err == nil {
		t.Fatal("a cancelled case was claimed")

	}
	// sam's passkey still works.
	if code, body := loginWith(t, r.s, r.sam.key); code != http.StatusOK {
		t.Fatalf("sam after the cancel: %d %v", code, body)
	}
}

// TestRecoveryCompletedE2E: a self-service case approved by two officers;
// the claim is refused during the cool-down and released after it, bound to
// a new compliant device of the subject; enrolling there revokes the old
// passkey (its login is refused) and ends the old session, and the new
// session's decisions carry the recent_recovery risk signal.
func TestRecoveryCompletedE2E(t *testing.T) {
	r := newRecoveryRig(t)
	ctx := context.Background()
	opened, err := r.s.m.Recovery.Open(ctx, recovery.Open{Subject: "sam", Reason: "lost my security key"}, e2eMeta)
	if err != nil || opened.Secret == "" {
		t.Fatalf("self-service open: %+v %v", opened, err)
	}
	// Self-service answers the same for a name that does not exist.
	ghost, err := r.s.m.Recovery.Open(ctx, recovery.Open{Subject: "nobody", Reason: "lost my key"}, e2eMeta)
	if err != nil || ghost.Case != nil || ghost.Secret == "" {
		t.Fatalf("unknown account: %+v %v", ghost, err)
	}
	c, err := r.s.m.Recovery.Status(ctx, opened.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.approve(r.olga, c.ID, "video call, matched HR photo"); err != nil {
		t.Fatal(err)
	}
	if c, err = r.approve(r.oscar, c.ID, "manager confirmed in person"); err != nil || c.Status != airlock.RecoveryCoolingDown {
		t.Fatalf("quorum: %+v %v", c, err)
	}
	newLaptop := addDevice(t, r.admin, "sam-new-laptop", "sam")
	if _, _, err := r.s.m.Recovery.Claim(ctx, opened.Secret, newLaptop, e2eMeta); recovery.ReasonOf(err) != recovery.ReasonCoolingDown {
		t.Fatalf("claimed during the cool-down: %v", err)
	}
	r.clock.Advance(3 * time.Minute)
	if _, _, err := r.s.m.Recovery.Claim(ctx, "not-the-secret", newLaptop, e2eMeta); err == nil {
		t.Fatal("claimed with a wrong secret")
	}
	secret, tok, err := r.s.m.Recovery.Claim(ctx, opened.Secret, newLaptop, e2eMeta)
	if err != nil || tok.DeviceID != newLaptop || tok.Purpose != airlock.PurposeRecovery {
		t.Fatalf("claim: %+v %v", tok, err)
	}
	newKey := passkeytest.New()
	enrolWith(t, r.s, secret, newKey)

	c, err = r.s.m.Recovery.Status(ctx, opened.Secret)
	if err != nil || c.Status != airlock.RecoveryCompleted {
		t.Fatalf("case after enrolment: %+v %v", c, err)
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
