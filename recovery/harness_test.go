package recovery

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"airlock"
	"airlock/audit"
	"airlock/decide"
	"airlock/device"
	"airlock/elevate"
	"airlock/notify"
	"airlock/passkey"
	"airlock/passkey/passkeytest"
	"airlock/policy"
	"airlock/session"
	"airlock/sqlite"
)

const (
	testRPID   = "airlock.example.com"
	testOrigin = "https://airlock.example.com"
)

// failAuditor records through the real audit log, unless told to fail
// events of one type (or all: failType "*").
type failAuditor struct {
	log      *audit.Log
	mu       sync.Mutex
	failType string
}

func (f *failAuditor) Record(ctx context.Context, e airlock.AuditEvent) error {
	f.mu.Lock()
	ft := f.failType
	f.mu.Unlock()
	if ft != "" && (ft == "*" || ft == e.Type) {
		return airlock.Errorf(airlock.EUNAVAILABLE, "audit: injected failure")
	}
	return f.log.Record(ctx, e)
}

func (f *failAuditor) failOn(typ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failType = typ
}

// allowDecider allows every elevation request (the grants the recovery
// ends are made through it).
type allowDecider struct{}

func (allowDecider) Decide(context.Context, decide.Subject, decide.Request) (*decide.Result, error) {
	return &decide.Result{Decision: policy.Decision{ID: airlock.NewID("dec_"), Outcome: policy.Allow}}, nil
}

func (allowDecider) LookupResource(_ context.Context, name string) (*airlock.Resource, error) {
	if name == "grafana" {
		return &airlock.Resource{Name: "grafana", Tier: 2}, nil
	}
	return nil, airlock.Errorf(airlock.ENOTFOUND, "no resource %q", name)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// person is a user with a laptop, a passkey there and a session.
type person struct {
	user *airlock.User
	dev  *airlock.Device
	auth *passkeytest.Authenticator
	sess *airlock.Session
}

func (p *person) sub() decide.Subject {
	return decide.Subject{Session: p.sess, User: p.user, Device: p.dev}
}

type harness struct {
	tb     testing.TB
	ctx    context.Context
	store  *sqlite.Store
	log    *audit.Log
	aud    *failAuditor
	clk    *clock
	pk     *passkey.Service
	sm     *session.Manager
	el     *elevate.Service
	cfg    Config
	svc    *Service
	people map[string]*person
}

// newHarness starts a recovery service over a fresh SQLite store, the real
// audit log, notify outbox, passkey, session and elevation services, with:
//
//	sam    the subject: tier 0, a device-bound passkey on his laptop
//	tess   a tier-1 subject
//	olga, oscar, otto  recovery officers, tier 0
//	tina   a recovery officer of tier 1
//	syd    a tier-0 recovery officer whose only passkey is synced (BE=1)
//	hal    help desk (tier 1)
//	nora   no roles
//	root   airlock-admin
func newHarness(tb testing.TB, mod func(*Config)) *harness {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "r.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	h := &harness{tb: tb, ctx: ctx, store: st, clk: &clock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}, people: map[string]*person{}}
	h.log = audit.New(st, h.clk.Now, nil)
	h.aud = &failAuditor{log: h.log}
	out := notify.NewOutbox(st, h.clk.Now)
	h.pk, err = passkey.New(passkey.Config{RPID: testRPID, RPName: "Airlock test", Origins: []string{testOrigin},
		Tiers: passkey.DefaultTierPolicies(), DeviceRules: device.DefaultRules(), Now: h.clk.Now}, st, h.log, out)
	if err != nil {
		tb.Fatal(err)
	}
	h.sm = session.New(session.Config{Now: h.clk.Now}, st, h.log)
	h.el, err = elevate.New(elevate.Config{BaseURL: testOrigin, DeviceRules: device.DefaultRules(), Now: h.clk.Now}, st, allowDecider{}, h.pk, h.log, out)
	if err != nil {
		tb.Fatal(err)
	}
	h.sm.OnEnd(h.el.SessionsEnded)
	h.cfg = Config{BaseURL: testOrigin, DeviceRules: device.DefaultRules(), Now: h.clk.Now}
	if mod != nil {
		mod(&h.cfg)
	}
	h.svc, err = New(h.cfg, st, h.pk, h.sm, h.el, h.aud, out)
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range []struct {
		name   string
		tier   airlock.Tier
		roles  []string
		synced bool
	}{
		{"sam", 0, nil, false},
		{"tess", 1, nil, false},
		{"olga", 0, []string{RoleOfficer}, false},
		{"oscar", 0, []string{RoleOfficer}, false},
		{"otto", 0, []string{RoleOfficer}, false},
		{"tina", 1, []string{RoleOfficer}, false},
		{"syd", 0, []string{RoleOfficer}, true},
		{"hal", 1, []string{RoleHelpdesk}, false},
		{"nora", 0, nil, false},
		{"root", 0, []string{airlock.RoleAdmin}, false},
	} {
		h.people[p.name] = h.newPerson(p.name, p.tier, p.roles, p.synced)
	}
	return h
}

func randBytes(tb testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func (h *harness) p(name string) *person { return h.people[name] }

// newUser stores a user.
func (h *harness) newUser(name string, tier airlock.Tier, kind airlock.UserKind, roles []string) *airlock.User {
	h.tb.Helper()
	now := h.clk.Now()
	u := &airlock.User{ID: "u-" + name, Name: name, DisplayName: name, Kind: kind, Tier: tier, Roles: roles,
		Handle: randBytes(h.tb, 32), CreatedAt: now, UpdatedAt: now}
	if err := h.store.CreateUser(h.ctx, u); err != nil {
		h.tb.Fatal(err)
	}
	return u
}

// newPerson creates a user with a compliant laptop, a passkey enrolled
// there (synced: BE=1) and a session of the user's tier.
func (h *harness) newPerson(name string, tier airlock.Tier, roles []string, synced bool) *person {
	h.tb.Helper()
	u := h.newUser(name, tier, airlock.UserEmployee, roles)
	d := h.newDevice(name+"-laptop", u.ID)
	a := passkeytest.New()
	if synced {
		a.Flags = passkeytest.Flags{BackupEligible: true, BackupState: true}
	}
	secret, _, err := h.pk.IssueEnrolmentToken(h.ctx, "issuer", u.ID, d.ID, airlock.PurposeEnrol, passkey.Meta{})
	if err != nil {
		h.tb.Fatal(err)
	}
	if _, err := h.enrol(secret, a); err != nil {
		h.tb.Fatalf("enrol %s: %v", name, err)
	}
	p := &person{user: u, dev: d, auth: a}
	p.sess = h.newSession(p, tier)
	return p
}

// enrol runs a whole enrolment with the token secret on authenticator a.
func (h *harness) enrol(secret string, a *passkeytest.Authenticator) (*passkey.Enrolled, error) {
	h.tb.Helper()
	b, err := h.pk.BeginEnrol(h.ctx, secret, passkey.Meta{})
	if err != nil {
		return nil, err
	}
	resp, _, err := a.Register(testOrigin, mustJSON(h.tb, b))
	if err != nil {
		h.tb.Fatal(err)
	}
	return h.pk.FinishEnrol(h.ctx, b.Ceremony, resp, passkey.Meta{})
}

// newDevice creates a trusted device of owner, compliant under
// device.DefaultRules.
func (h *harness) newDevice(name, owner string) *airlock.Device {
	h.tb.Helper()
	now := h.clk.Now()
	d := &airlock.Device{ID: "d-" + name, Name: name, Owner: owner, Kind: airlock.DeviceManaged, Trust: airlock.TrustTrusted,
		Posture:   airlock.Posture{Managed: true, DiskEncrypted: true, ScreenLock: true, EDRRunning: true, OSVersion: "14.1", ReportedAt: now, Source: "test"},
		CreatedAt: now, UpdatedAt: now}
	if err := h.store.CreateDevice(h.ctx, d); err != nil {
		h.tb.Fatal(err)
	}
	return d
}

// newSession signs p in once more (a new session on the same device).
func (h *harness) newSession(p *person, tier airlock.Tier) *airlock.Session {
	h.tb.Helper()
	now := h.clk.Now()
	s := &airlock.Session{ID: airlock.NewID(airlock.PrefixSession), TokenHash: randBytes(h.tb, 32), UserID: p.user.ID, DeviceID: p.dev.ID,
		CredentialID: p.auth.Credentials()[0].ID, Tier: tier, AuthTime: now, LastSeen: now, LastUVAt: now,
		AbsoluteDeadline: now.Add(24 * time.Hour), IdleTimeout: 12 * time.Hour, CreatedAt: now}
	if err := h.store.CreateSession(h.ctx, s); err != nil {
		h.tb.Fatal(err)
	}
	return s
}

var meta = passkey.Meta{IP: "192.0.2.9", UserAgent: "test"}

// open opens a self-service case for name and fails the test on error.
func (h *harness) open(name string) *Opened {
	h.tb.Helper()
	o, err := h.svc.Open(h.ctx, Open{Subject: name, Reason: "laptop stolen at the airport"}, meta)
	if err != nil {
		h.tb.Fatalf("Open(%s): %v", name, err)
	}
	if o.Case == nil {
		h.tb.Fatalf("Open(%s): no case", name)
	}
	return o
}

const note = "video call, photo ID matched HR record"

// approve runs p's whole approval of case id with the verification note.
func (h *harness) approve(p *person, id string, opts ...passkeytest.Option) (*airlock.RecoveryCase, error) {
	h.tb.Helper()
	b, err := h.svc.BeginApproval(h.ctx, id, p.sub(), note, meta)
	if err != nil {
		return nil, err
	}
	resp, err := p.auth.Assert(testOrigin, mustJSON(h.tb, b), opts...)
	if err != nil {
		h.tb.Fatal(err)
	}
	return h.svc.FinishApproval(h.ctx, b.Ceremony, resp, p.sub(), note, meta)
}

func (h *harness) mustApprove(p *person, id string) *airlock.RecoveryCase {
	h.tb.Helper()
	c, err := h.approve(p, id)
	if err != nil {
		h.tb.Fatalf("%s approves %s: %v", p.user.Name, id, err)
	}
	return c
}

// cooled opens a case for sam, has olga and oscar approve it and waits
// out the cool-down.
func (h *harness) cooled() *Opened {
	h.tb.Helper()
	o := h.open("sam")
	h.mustApprove(h.p("olga"), o.Case.ID)
	c := h.mustApprove(h.p("oscar"), o.Case.ID)
	if c.Status != airlock.RecoveryCoolingDown {
		h.tb.Fatalf("after quorum: %s", c.Status)
	}
	h.clk.Advance(h.svc.cfg.CoolDown[0] + time.Second)
	return o
}

// cancel runs the subject's cancel of case id with authenticator a.
func (h *harness) cancel(id string, a *passkeytest.Authenticator, opts ...passkeytest.Option) (*airlock.RecoveryCase, error) {
	h.tb.Helper()
	b, err := h.svc.BeginCancel(h.ctx, id, meta)
	if err != nil {
		return nil, err
	}
	resp, err := a.Assert(testOrigin, mustJSON(h.tb, b), opts...)
	if err != nil {
		h.tb.Fatal(err)
	}
	return h.svc.FinishCancel(h.ctx, b.Ceremony, resp, meta)
}

func (h *harness) rcase(id string) *airlock.RecoveryCase {
	h.tb.Helper()
	c, err := h.store.FindRecoveryCaseByID(h.ctx, id)
	if err != nil {
		h.tb.Fatal(err)
	}
	return c
}

// auditTypes returns the types of the audit log's events of type prefix
// typ (e.g. "recovery.") in order.
func (h *harness) auditTypes(typ string) []string {
	h.tb.Helper()
	es, err := h.store.ListAudit(h.ctx, airlock.AuditFilter{Type: typ, Limit: 1000})
	if err != nil {
		h.tb.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Type)
	}
	return out
}

// auditOf returns the audit log's events of exactly type typ.
func (h *harness) auditOf(typ string) []*airlock.AuditEvent {
	h.tb.Helper()
	es, err := h.store.ListAudit(h.ctx, airlock.AuditFilter{Type: typ, Limit: 1000})
	if err != nil {
		h.tb.Fatal(err)
	}
	return es
}

// notices returns the outbox rows of kind for userID.
func (h *harness) notices(userID, kind string) []map[string]any {
	h.tb.Helper()
	ns, err := h.store.DueNotifications(h.ctx, h.clk.Now().Add(1000*time.Hour), 1000)
	if err != nil {
		h.tb.Fatal(err)
	}
	var out []map[string]any
	for _, n := range ns {
		if n.UserID == userID && n.Kind == kind {
			var p map[string]any
			if err := json.Unmarshal(n.Payload, &p); err != nil {
				h.tb.Fatal(err)
			}
			out = append(out, p)
		}
	}
	return out
}

// wantErr checks err's code and reason.
func wantErr(tb testing.TB, err error, code string, reason Reason) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("got success, want %s/%s", code, reason)
	}
	var ae *airlock.Error
	if !errors.As(err, &ae) {
		tb.Fatalf("error %v is not an *airlock.Error", err)
	}
	if ae.Code != code || ReasonOf(err) != reason {
		tb.Fatalf("got %s/%s (%q), want %s/%s", ae.Code, ReasonOf(err), ae.Message, code, reason)
	}
	if ae.Message == "" {
		tb.Fatal("error has no message")
	}
}

func has(list []string, v string) bool { return slices.Contains(list, v) }

// refresh gives p a fresh posture report and a new session (after the
// clock moved past a cool-down).
func (h *harness) refresh(p *person) {
	h.tb.Helper()
	d, err := h.store.FindDeviceByID(h.ctx, p.dev.ID)
	if err != nil {
		h.tb.Fatal(err)
	}
	d.Posture.ReportedAt = h.clk.Now()
	if err := h.store.UpdateDevice(h.ctx, d); err != nil {
		h.tb.Fatal(err)
	}
	p.dev = d
	p.sess = h.newSession(p, p.sess.Tier)
}
