package elevate

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
	"airlock/decide"
	"airlock/device"
	"airlock/passkey"
	"airlock/passkey/passkeytest"
	"airlock/policy"
	"airlock/sqlite"
)

const (
	testRPID   = "airlock.example.com"
	testOrigin = "https://airlock.example.com"
)

// fakeAuditor records events; err, if set, is returned by Record (for
// events of type failType only, when that is set).
type fakeAuditor struct {
	mu       sync.Mutex
	events   []airlock.AuditEvent
	err      error
	failType string
	// hook, if set, runs first (outside the lock); an error from it is
	// returned instead of recording.
	hook func(airlock.AuditEvent) error
}

var _ Auditor = (*fakeAuditor)(nil)

func (f *fakeAuditor) Record(_ context.Context, e airlock.AuditEvent) error {
	f.mu.Lock()
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		if err := hook(e); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil && (f.failType == "" || f.failType == e.Type) {
		return f.err
	}
	f.events = append(f.events, e)
	return nil
}

func (f *fakeAuditor) ofType(typ string) []airlock.AuditEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []airlock.AuditEvent
	for _, e := range f.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func (f *fakeAuditor) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err, f.failType = err, ""
}

// failOn makes Record fail with err for events of type typ only.
func (f *fakeAuditor) failOn(typ string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err, f.failType = err, typ
}

type notice struct {
	UserID, Kind string
	Payload      map[string]any
}

// fakeNotifier records notifications.
type fakeNotifier struct {
	mu    sync.Mutex
	calls []notice
	err   error
}

var _ Notifier = (*fakeNotifier)(nil)

func (f *fakeNotifier) Notify(_ context.Context, userID, kind string, payload any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	p, _ := payload.(map[string]any)
	f.calls = append(f.calls, notice{UserID: userID, Kind: kind, Payload: p})
	return nil
}

func (f *fakeNotifier) ofKind(kind string) []notice {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []notice
	for _, n := range f.calls {
		if n.Kind == kind {
			out = append(out, n)
		}
	}
	return out
}

// fakeDecider decides by the resource's tier unless decide is set: tier 0
// needs rule "tier0", tier 1 the default rule, tier 2 is allowed — as the
// default policies do. Resources are looked up in resources.
type fakeDecider struct {
	mu        sync.Mutex
	resources map[string]airlock.Resource
	decide    func(req decide.Request) policy.Decision
	reqs      []decide.Request
	err       error
}

var (
	_ Decider = (*fakeDecider)(nil)
	_ Decider = (*decide.Service)(nil)
)

func (f *fakeDecider) Decide(_ context.Context, _ decide.Subject, req decide.Request) (*decide.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	if f.err != nil {
		return nil, f.err
	}
	var d policy.Decision
	if f.decide != nil {
		d = f.decide(req)
	} else {
		tier := airlock.Tier(0)
		if req.Target != nil {
			tier = req.Target.Tier
		} else if r, ok := f.resources[req.Resource]; ok {
			tier = r.Tier
		}
		switch tier {
		case 0:
			d = policy.Decision{Outcome: policy.ApprovalRequired, Obligations: policy.Obligations{ApprovalRule: "tier0"}}
		case 1:
			d = policy.Decision{Outcome: policy.ApprovalRequired}
		default:
			d = policy.Decision{Outcome: policy.Allow}
		}
	}
	if d.ID == "" {
		d.ID = airlock.NewID("dec_")
	}
	d.Risk.Score = 12
	res := &decide.Result{Decision: d}
	if d.Outcome == policy.StepUp {
		res.StepUp = &airlock.StepUp{ID: "txn-1"}
		res.URL = "https://airlock.example.com/stepup/txn-1"
	}
	return res, nil
}

func (f *fakeDecider) LookupResource(_ context.Context, name string) (*airlock.Resource, error) {
	if r, ok := f.resources[name]; ok {
		return &r, nil
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

// person is a signed-in user: their device, passkey and session.
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
	aud    *fakeAuditor
	not    *fakeNotifier
	clk    *clock
	dec    *fakeDecider
	pk     *passkey.Service
	cfg    Config
	svc    *Service
	people map[string]*person
}

func testRules() map[string]Rule {
	return map[string]Rule{
		DefaultRule: {AllOf: []Quorum{{Group: "approvers", Min: 1}}},
		"tier0":     {AllOf: []Quorum{{Group: "team-leads", Min: 1}, {Group: "security", Min: 1}}},
	}
}

// newHarness starts a service over a fresh SQLite store with these people
// (all tier 0 on compliant managed laptops unless said otherwise):
//
//	alice  the requester; in team-leads, security and approvers too
//	bob    team-leads
//	carol  security
//	dave   team-leads and security
//	erin   team-leads, security, approvers — but tier 1
//	frank  approvers
//	gina   approvers
//	root   airlock-admin
//	mal    no groups
func newHarness(tb testing.TB, mod func(*Config)) *harness {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "a.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	h := &harness{tb: tb, ctx: ctx, store: st, aud: &fakeAuditor{}, not: &fakeNotifier{},
		clk: &clock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}, people: map[string]*person{},
		dec: &fakeDecider{resources: map[string]airlock.Resource{
			"db-prod": {Name: "db-prod", Tier: 0}, "ci": {Name: "ci", Tier: 1}, "grafana": {Name: "grafana", Tier: 2}}}}
	h.pk, err = passkey.New(passkey.Config{RPID: testRPID, RPName: "Airlock test", Origins: []string{testOrigin},
		Tiers: passkey.DefaultTierPolicies(), DeviceRules: device.DefaultRules(), Now: h.clk.Now}, st, &fakeAuditor{}, &fakeNotifier{})
	if err != nil {
		tb.Fatal(err)
	}
	h.cfg = Config{Rules: testRules(), BaseURL: testOrigin, DeviceRules: device.DefaultRules(), Now: h.clk.Now}
	if mod != nil {
		mod(&h.cfg)
	}
	h.svc, err = New(h.cfg, st, h.dec, h.pk, h.aud, h.not)
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range []struct {
		name  string
		tier  airlock.Tier
		roles []string
	}{
		{"alice", 0, []string{"team-leads", "security", "approvers"}},
		{"bob", 0, []string{"team-leads"}},
		{"carol", 0, []string{"security"}},
		{"dave", 0, []string{"team-leads", "security"}},
		{"erin", 1, []string{"team-leads", "security", "approvers"}},
		{"frank", 0, []string{"approvers"}},
		{"gina", 0, []string{"approvers"}},
		{"root", 0, []string{airlock.RoleAdmin}},
		{"mal", 0, nil},
	} {
		h.people[p.name] = h.newPerson(p.name, p.tier, p.roles)
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

// newPerson creates a user with a compliant laptop, a passkey enrolled
// there and a session of the user's tier.
func (h *harness) newPerson(name string, tier airlock.Tier, roles []string) *person {
	h.tb.Helper()
	now := h.clk.Now()
	u := &airlock.User{ID: "u-" + name, Name: name, DisplayName: name, Kind: airlock.UserEmployee, Tier: tier, Roles: roles,
		Handle: randBytes(h.tb, 32), CreatedAt: now, UpdatedAt: now}
	if err := h.store.CreateUser(h.ctx, u); err != nil {
		h.tb.Fatal(err)
	}
	d := h.newDevice(name+"-laptop", u.ID)
	a := passkeytest.New()
	secret, _, err := h.pk.IssueEnrolmentToken(h.ctx, "issuer", u.ID, d.ID, airlock.PurposeEnrol, passkey.Meta{})
	if err != nil {
		h.tb.Fatal(err)
	}
	b, err := h.pk.BeginEnrol(h.ctx, secret, passkey.Meta{})
	if err != nil {
		h.tb.Fatal(err)
	}
	resp, _, err := a.Register(testOrigin, mustJSON(h.tb, b))
	if err != nil {
		h.tb.Fatal(err)
	}
	if _, err := h.pk.FinishEnrol(h.ctx, b.Ceremony, resp, passkey.Meta{}); err != nil {
		h.tb.Fatalf("enrol %s: %v", name, err)
	}
	p := &person{user: u, dev: d, auth: a}
	p.sess = h.newSession(p, tier)
	return p
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

func (h *harness) p(name string) *person { return h.people[name] }

// ask makes a request as p and fails the test on error.
func (h *harness) ask(p *person, scope string, d time.Duration) (*airlock.AccessRequest, *airlock.Grant) {
	h.tb.Helper()
	r, g, err := h.svc.Request(h.ctx, p.sub(), Ask{Scope: scope, Duration: d, Reason: "fix the replication lag", Ticket: "OPS-1", IP: "192.0.2.7"})
	if err != nil {
		h.tb.Fatalf("Request(%s): %v", scope, err)
	}
	return r, g
}

// begin starts p's approval of request id.
func (h *harness) begin(p *person, id string) (*passkey.Begin, error) {
	return h.svc.BeginApproval(h.ctx, id, p.sub(), passkey.Meta{IP: "192.0.2.8"})
}

// approve runs p's whole approval of request id.
func (h *harness) approve(p *person, id string, opts ...passkeytest.Option) (*airlock.AccessRequest, *airlock.Grant, error) {
	h.tb.Helper()
	b, err := h.begin(p, id)
	if err != nil {
		return nil, nil, err
	}
	resp, err := p.auth.Assert(testOrigin, mustJSON(h.tb, b), opts...)
	if err != nil {
		h.tb.Fatal(err)
	}
	return h.svc.FinishApproval(h.ctx, b.Ceremony, resp, p.sub(), "ok", passkey.Meta{IP: "192.0.2.8"})
}

// mustApprove is approve that fails the test on error.
func (h *harness) mustApprove(p *person, id string) (*airlock.AccessRequest, *airlock.Grant) {
	h.tb.Helper()
	r, g, err := h.approve(p, id)
	if err != nil {
		h.tb.Fatalf("%s approves %s: %v", p.user.Name, id, err)
	}
	return r, g
}

func (h *harness) request(id string) *airlock.AccessRequest {
	h.tb.Helper()
	r, err := h.store.FindAccessRequestByID(h.ctx, id)
	if err != nil {
		h.tb.Fatal(err)
	}
	return r
}

func (h *harness) grant(id string) *airlock.Grant {
	h.tb.Helper()
	g, err := h.store.FindGrantByID(h.ctx, id)
	if err != nil {
		h.tb.Fatal(err)
	}
	return g
}

func (h *harness) approvals(id string) []*airlock.Approval {
	h.tb.Helper()
	as, err := h.store.ListApprovals(h.ctx, id)
	if err != nil {
		h.tb.Fatal(err)
	}
	return as
}

func (h *harness) grantsOf(userID string) []*airlock.Grant {
	h.tb.Helper()
	gs, err := h.store.ListGrants(h.ctx, airlock.GrantFilter{UserID: userID})
	if err != nil {
		h.tb.Fatal(err)
	}
	return gs
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

func userIDs(ns []notice) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.UserID)
	}
	slices.Sort(out)
	return out
}
