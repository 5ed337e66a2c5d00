package breakglass

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"airlock"
	"airlock/audit"
	"airlock/decide"
	"airlock/device"
	"airlock/notify"
	"airlock/passkey"
	"airlock/passkey/passkeytest"
	"airlock/sqlite"
	"airlock/sshca"
)

const (
	testRPID    = "airlock.example.com"
	testOrigin  = "https://airlock.example.com"
	alertSecret = "alert-secret-1"
	testIP      = "192.0.2.50"
)

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

// receiver is an alert webhook: it verifies each delivery's HMAC and keeps
// the alerts; fail makes it answer 500.
type receiver struct {
	mu     sync.Mutex
	alerts []Alert
	bad    int // deliveries whose signature did not verify
	fail   bool
	srv    *httptest.Server
}

func newReceiver(tb testing.TB) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		ts := req.Header.Get("X-Airlock-Timestamp")
		sig := req.Header.Get("X-Airlock-Signature")
		r.mu.Lock()
		defer r.mu.Unlock()
		if sig != "sha256="+notify.Sign(alertSecret, ts, body) || ts == "" {
			r.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.fail {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var a Alert
		if err := json.Unmarshal(body, &a); err != nil || a.ID != req.Header.Get("X-Airlock-Alert-Id") {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.alerts = append(r.alerts, a)
	}))
	tb.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setFail(v bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = v
}

func (r *receiver) badCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad
}

func (r *receiver) got() []Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Alert(nil), r.alerts...)
}

// notices records notifications.
type notices struct {
	mu    sync.Mutex
	calls []string // userID + " " + kind
}

func (n *notices) Notify(_ context.Context, userID, kind string, _ any) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, userID+" "+kind)
	return nil
}

func (n *notices) list() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.calls...)
}

// person is a normal signed-in user (a reviewer, say).
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
	tb      testing.TB
	ctx     context.Context
	sqlite  *sqlite.Store
	store   *switchStore
	log     *audit.Log
	clk     *clock
	pk      *passkey.Service
	ca      *sshca.CA
	rcv     *receiver
	not     *notices
	cfg     Config
	svc     *Service
	dir     string
	bg      *airlock.User
	bgAuth  *passkeytest.Authenticator
	bgCred  *airlock.Credential
	people  map[string]*person
	credsAt string // the static credential file
}

// newHarness starts a break-glass service over a real SQLite store behind
// a switchStore, with:
//
//	bg     a break-glass account with one sealed passkey (bgAuth)
//	alice  an employee (tier 0)
//	root   airlock-admin, tier-0 session (the reviewer)
//	ops    airlock-admin with a tier-1 session
//
// The policy's scopes are dba@db-prod and tier:2; resources db-prod (0),
// ci (1), grafana (2). The static credential file is exported at start.
func newHarness(tb testing.TB, mod func(*Config)) *harness {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "a.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	h := &harness{tb: tb, ctx: ctx, sqlite: st, store: &switchStore{inner: st}, dir: dir,
		clk: &clock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}, rcv: newReceiver(tb), not: &notices{},
		people: map[string]*person{}}
	h.log = audit.New(h.store, h.clk.Now, nil)
	h.pk, err = passkey.New(passkey.Config{RPID: testRPID, RPName: "Airlock test", Origins: []string{testOrigin},
		Tiers: passkey.DefaultTierPolicies(), DeviceRules: device.DefaultRules(), Now: h.clk.Now}, h.store, h.log, h.not)
	if err != nil {
		tb.Fatal(err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	if h.ca, err = sshca.New(key, h.store, sshca.Config{}); err != nil {
		tb.Fatal(err)
	}
	for _, r := range []airlock.Resource{{Name: "db-prod", Tier: 0}, {Name: "ci", Tier: 1}, {Name: "grafana", Tier: 2}} {
		r.CreatedAt, r.UpdatedAt = h.clk.Now(), h.clk.Now()
		if err := st.CreateResource(ctx, &r); err != nil {
			tb.Fatal(err)
		}
	}
	h.bg = h.newUser("bg", airlock.UserBreakGlass, 0, nil)
	h.bgAuth = passkeytest.New()
	h.bgCred = h.enrol(h.bg, h.bgAuth, "bg-safe")
	h.people["alice"] = h.newPerson("alice", 0, nil)
	h.people["root"] = h.newPerson("root", 0, []string{airlock.RoleAdmin})
	h.people["ops"] = h.newPerson("ops", 1, []string{airlock.RoleAdmin})
	h.exportCredentials()

	h.cfg = Config{Scopes: []string{"dba@db-prod", "tier:2"}, Duration: 30 * time.Minute,
		Alerts: []AlertTarget{{URL: h.rcv.srv.URL + "/alert", Secret: alertSecret}}, AlertTimeout: 5 * time.Second,
		Dir: filepath.Join(dir, "bg"), CredentialsFile: h.credsAt, Notifier: h.not,
		ResourceTier: func(name string) (airlock.Tier, bool) {
			t, ok := map[string]airlock.Tier{"db-prod": 0, "ci": 1, "grafana": 2}[name]
			return t, ok
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: h.clk.Now}
	if mod != nil {
		mod(&h.cfg)
	}
	h.svc = h.newService()
	return h
}

// newService starts another Service on the same store and directory (a
// restart of the process).
func (h *harness) newService() *Service {
	h.tb.Helper()
	svc, err := New(h.cfg, h.store, h.pk, h.log, h.ca)
	if err != nil {
		h.tb.Fatal(err)
	}
	return svc
}

func (h *harness) exportCredentials() {
	h.tb.Helper()
	data, err := ExportCredentials(h.ctx, h.sqlite)
	if err != nil {
		h.tb.Fatal(err)
	}
	h.credsAt = filepath.Join(h.dir, "breakglass-credentials.json")
	if err := os.WriteFile(h.credsAt, data, 0o600); err != nil {
		h.tb.Fatal(err)
	}
}

func (h *harness) newUser(name string, kind airlock.UserKind, tier airlock.Tier, roles []string) *airlock.User {
	h.tb.Helper()
	now := h.clk.Now()
	u := &airlock.User{ID: "u-" + name, Name: name, DisplayName: name, Kind: kind, Tier: tier, Roles: roles,
		Handle: randBytes(h.tb, 32), CreatedAt: now, UpdatedAt: now}
	if err := h.sqlite.CreateUser(h.ctx, u); err != nil {
		h.tb.Fatal(err)
	}
	return u
}

func (h *harness) newDevice(name, owner string) *airlock.Device {
	h.tb.Helper()
	now := h.clk.Now()
	d := &airlock.Device{ID: "d-" + name, Name: name, Owner: owner, Kind: airlock.DeviceManaged, Trust: airlock.TrustTrusted,
		Posture:   airlock.Posture{Managed: true, DiskEncrypted: true, ScreenLock: true, EDRRunning: true, OSVersion: "14.1", ReportedAt: now, Source: "test"},
		CreatedAt: now, UpdatedAt: now}
	if err := h.sqlite.CreateDevice(h.ctx, d); err != nil {
		h.tb.Fatal(err)
	}
	return d
}

// enrol enrols a new passkey of a for u on a new device named devName.
func (h *harness) enrol(u *airlock.User, a *passkeytest.Authenticator, devName string) *airlock.Credential {
	h.tb.Helper()
	d := h.newDevice(devName, u.ID)
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
	res, err := h.pk.FinishEnrol(h.ctx, b.Ceremony, resp, passkey.Meta{})
	if err != nil {
		h.tb.Fatalf("enrol %s: %v", u.Name, err)
	}
	return res.Credential
}

func (h *harness) newPerson(name string, tier airlock.Tier, roles []string) *person {
	h.tb.Helper()
	u := h.newUser(name, airlock.UserEmployee, 0, roles)
	a := passkeytest.New()
	cred := h.enrol(u, a, name+"-laptop")
	d, err := h.sqlite.FindDeviceByID(h.ctx, cred.DeviceID)
	if err != nil {
		h.tb.Fatal(err)
	}
	now := h.clk.Now()
	s := &airlock.Session{ID: airlock.NewID(airlock.PrefixSession), TokenHash: randBytes(h.tb, 32), UserID: u.ID, DeviceID: d.ID,
		CredentialID: cred.ID, Tier: tier, AuthTime: now, LastSeen: now, LastUVAt: now,
		AbsoluteDeadline: now.Add(24 * time.Hour), IdleTimeout: 12 * time.Hour, CreatedAt: now}
	if err := h.sqlite.CreateSession(h.ctx, s); err != nil {
		h.tb.Fatal(err)
	}
	return &person{user: u, dev: d, auth: a, sess: s}
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

var meta = passkey.Meta{IP: testIP, UserAgent: "test-agent", RequestID: "req-bg"}

// use runs a whole break-glass use of the account name with the sealed
// authenticator a (options for the assertion in opts).
func (h *harness) use(svc *Service, name string, a *passkeytest.Authenticator, justification string, opts ...passkeytest.Option) (string, *Session, error) {
	h.tb.Helper()
	b, err := svc.Begin(h.ctx, name, justification, meta)
	if err != nil {
		return "", nil, err
	}
	resp, err := a.Assert(testOrigin, mustJSON(h.tb, b), opts...)
	if err != nil {
		h.tb.Fatal(err)
	}
	return svc.Finish(h.ctx, b.Ceremony, resp, meta)
}

// mustUse is use that fails the test on error.
func (h *harness) mustUse(svc *Service) (string, *Session) {
	h.tb.Helper()
	tok, sess, err := h.use(svc, "bg", h.bgAuth, "prod database down, on-call cannot sign in (INC-7)")
	if err != nil {
		h.tb.Fatalf("break-glass use: %v", err)
	}
	return tok, sess
}

// review runs p's whole review of event id with notes.
func (h *harness) review(p *person, id, notes string) (*airlock.BreakGlassEvent, error) {
	h.tb.Helper()
	b, err := h.svc.BeginReview(h.ctx, id, p.sub(), notes, meta)
	if err != nil {
		return nil, err
	}
	resp, err := p.auth.Assert(testOrigin, mustJSON(h.tb, b))
	if err != nil {
		h.tb.Fatal(err)
	}
	return h.svc.FinishReview(h.ctx, b.Ceremony, resp, p.sub(), notes, meta)
}

// audited returns the audit log's events of type prefix typ, in order.
func (h *harness) audited(typ string) []*airlock.AuditEvent {
	h.tb.Helper()
	evs, err := h.sqlite.ListAudit(h.ctx, airlock.AuditFilter{Type: typ})
	if err != nil {
		h.tb.Fatal(err)
	}
	return evs
}

// fallback returns the events of the local audit file.
func (h *harness) fallback(svc *Service) []*spooled {
	h.tb.Helper()
	svc.auditSpool.mu.Lock()
	defer svc.auditSpool.mu.Unlock()
	evs, err := svc.readFallbackLocked()
	if err != nil {
		h.tb.Fatal(err)
	}
	return evs
}

// wantErr checks err's code and reason.
func wantErr(tb testing.TB, err error, code string, reason passkey.Reason) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("got success, want %s/%s", code, reason)
	}
	var ae *airlock.Error
	if !errors.As(err, &ae) {
		tb.Fatalf("error %v is not an *airlock.Error", err)
	}
	if ae.Code != code || passkey.ReasonOf(err) != reason {
		tb.Fatalf("got %s/%s (%q), want %s/%s", ae.Code, passkey.ReasonOf(err), ae.Message, code, reason)
	}
	if ae.Message == "" {
		tb.Fatal("error has no message")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
