package passkey

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"airlock"
	"airlock/device"
	"airlock/passkey/passkeytest"
	"airlock/sqlite"
)

const (
	testRPID   = "airlock.example.com"
	testOrigin = "https://airlock.example.com"
)

// fakeAuditor records events; err, if set, is returned by Record.
type fakeAuditor struct {
	mu      sync.Mutex
	events  []airlock.AuditEvent
	err     error
	discard bool // keep nothing (fuzzing)
}

var _ Auditor = (*fakeAuditor)(nil)

func (f *fakeAuditor) Record(_ context.Context, e airlock.AuditEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if !f.discard {
		f.events = append(f.events, e)
	}
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

func (f *fakeAuditor) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = nil
}

type notifyCall struct {
	UserID, Kind string
	Payload      map[string]any
}

// fakeNotifier records notifications; err, if set, is returned by Notify.
type fakeNotifier struct {
	mu    sync.Mutex
	calls []notifyCall
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
	f.calls = append(f.calls, notifyCall{UserID: userID, Kind: kind, Payload: p})
	return nil
}

func (f *fakeNotifier) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
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

type harness struct {
	tb    testing.TB
	ctx   context.Context
	store *sqlite.Store
	aud   *fakeAuditor
	not   *fakeNotifier
	clk   *clock
	cfg   Config
	svc   *Service
}

func testConfig() Config {
	return Config{
		RPID: testRPID, RPName: "Airlock test", Origins: []string{testOrigin},
		Tiers: DefaultTierPolicies(), DeviceRules: device.DefaultRules(),
	}
}

func newHarness(tb testing.TB, mod func(*Config)) *harness {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "a.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	h := &harness{tb: tb, ctx: ctx, store: st, aud: &fakeAuditor{}, not: &fakeNotifier{},
		clk: &clock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}}
	h.cfg = testConfig()
	h.cfg.Now = h.clk.Now
	if mod != nil {
		mod(&h.cfg)
	}
	h.svc, err = New(h.cfg, st, h.aud, h.not)
	if err != nil {
		tb.Fatal(err)
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

func (h *harness) user(name string, tier airlock.Tier) *airlock.User {
	h.tb.Helper()
	now := h.clk.Now()
	u := &airlock.User{ID: "u-" + name, Name: name, DisplayName: name, Kind: airlock.UserEmployee, Tier: tier,
		Handle: randBytes(h.tb, 32), CreatedAt: now, UpdatedAt: now}
	if err := h.store.CreateUser(h.ctx, u); err != nil {
		h.tb.Fatal(err)
	}
	return u
}

// device creates a device of owner that is compliant under DefaultRules.
func (h *harness) device(name, owner string) *airlock.Device {
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

func (h *harness) setDeviceTrust(d *airlock.Device, trust airlock.TrustState) {
	h.tb.Helper()
	d.Trust = trust
	if err := h.store.UpdateDevice(h.ctx, d); err != nil {
		h.tb.Fatal(err)
	}
}

func (h *harness) setDeviceOwner(d *airlock.Device, owner string) {
	h.tb.Helper()
	d.Owner = owner
	if err := h.store.UpdateDevice(h.ctx, d); err != nil {
		h.tb.Fatal(err)
	}
}

func (h *harness) disableUser(u *airlock.User) {
	h.tb.Helper()
	u.Disabled = true
	if err := h.store.UpdateUser(h.ctx, u); err != nil {
		h.tb.Fatal(err)
	}
}

func (h *harness) token(u *airlock.User, d *airlock.Device) (string, *airlock.EnrolmentToken) {
	h.tb.Helper()
	secret, tok, err := h.svc.IssueEnrolmentToken(h.ctx, "issuer", u.ID, d.ID, airlock.PurposeEnrol, Meta{})
	if err != nil {
		h.tb.Fatal(err)
	}
	return secret, tok
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// beginEnrol begins an enrolment and returns the ceremony id and the begin
// answer as the client sees it.
func (h *harness) beginEnrol(secret string) (string, []byte) {
	h.tb.Helper()
	b, err := h.svc.BeginEnrol(h.ctx, secret, Meta{})
	if err != nil {
		h.tb.Fatal(err)
	}
	return b.Ceremony, mustJSON(h.tb, b)
}

func (h *harness) beginLogin() (string, []byte) {
	h.tb.Helper()
	b, err := h.svc.BeginLogin(h.ctx, Meta{IP: "192.0.2.1", UserAgent: "test", RequestID: "req-1"})
	if err != nil {
		h.tb.Fatal(err)
	}
	return b.Ceremony, mustJSON(h.tb, b)
}

// enrol runs a whole enrolment of a new passkey from a for u on d and fails
// the test if it does not succeed.
func (h *harness) enrol(a *passkeytest.Authenticator, u *airlock.User, d *airlock.Device, opts ...passkeytest.Option) (*Enrolled, *passkeytest.Credential) {
	h.tb.Helper()
	secret, _ := h.token(u, d)
	id, opt := h.beginEnrol(secret)
	resp, cred, err := a.Register(testOrigin, opt, opts...)
	if err != nil {
		h.tb.Fatal(err)
	}
	res, err := h.svc.FinishEnrol(h.ctx, id, resp, Meta{IP: "192.0.2.1", UserAgent: "test"})
	if err != nil {
		h.tb.Fatalf("enrol: %v", err)
	}
	return res, cred
}

// login runs a whole login with a.
func (h *harness) login(a *passkeytest.Authenticator, opts ...passkeytest.Option) (*LoginResult, error) {
	h.tb.Helper()
	id, opt := h.beginLogin()
	resp, err := a.Assert(testOrigin, opt, opts...)
	if err != nil {
		h.tb.Fatal(err)
	}
	return h.svc.FinishLogin(h.ctx, id, resp, Meta{IP: "192.0.2.1", UserAgent: "test", RequestID: "req-2"})
}

func (h *harness) credential(id []byte) *airlock.Credential {
	h.tb.Helper()
	c, err := h.store.FindCredentialByID(h.ctx, id)
	if err != nil {
		h.tb.Fatal(err)
	}
	return c
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

// requestOptions is what tests read of a ceremony's request options.
type requestOptions struct {
	PublicKey struct {
		Challenge        string `json:"challenge"`
		UserVerification string `json:"userVerification"`
		AllowCredentials []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
	} `json:"publicKey"`
}

func parseOptions(tb testing.TB, opt []byte) requestOptions {
	tb.Helper()
	var o requestOptions
	if err := json.Unmarshal(opt, &o); err != nil {
		tb.Fatal(err)
	}
	return o
}

// checkOptions checks that request options opt require user verification
// and allow exactly the passkey credID (whose), and returns their challenge.
func checkOptions(tb testing.TB, opt, credID []byte, whose string) string {
	tb.Helper()
	o := parseOptions(tb, opt)
	if o.PublicKey.UserVerification != "required" {
		tb.Errorf("userVerification = %q, want required", o.PublicKey.UserVerification)
	}
	if len(o.PublicKey.AllowCredentials) != 1 || o.PublicKey.AllowCredentials[0].ID != b64(credID) {
		tb.Errorf("allowCredentials = %+v, want %s only", o.PublicKey.AllowCredentials, whose)
	}
	return o.PublicKey.Challenge
}

func b64dec(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// hookStore lets a test act between the service's store calls, as another
// replica or an administrator would.
type hookStore struct {
	*sqlite.Store
	// afterFindCredential runs after each FindCredentialByID.
	afterFindCredential func(id []byte)
	// hideCredentials makes FindCredentialByID report ENOTFOUND (a
	// credential registered after the duplicate check).
	hideCredentials bool
	// beforeUpdateUse runs before UpdateCredentialUse.
	beforeUpdateUse func(id []byte)
	// revokeErr, if set, is returned by RevokeCredential.
	revokeErr error
}

func (s *hookStore) FindCredentialByID(ctx context.Context, id []byte) (*airlock.Credential, error) {
	if s.hideCredentials {
		return nil, airlock.Errorf(airlock.ENOTFOUND, "hidden")
	}
	c, err := s.Store.FindCredentialByID(ctx, id)
	if s.afterFindCredential != nil {
		s.afterFindCredential(id)
	}
	return c, err
}

func (s *hookStore) UpdateCredentialUse(ctx context.Context, id []byte, oldCount, newCount uint32, bs bool, at time.Time) error {
	if s.beforeUpdateUse != nil {
		s.beforeUpdateUse(id)
	}
	return s.Store.UpdateCredentialUse(ctx, id, oldCount, newCount, bs, at)
}

func (s *hookStore) RevokeCredential(ctx context.Context, id []byte, at time.Time) error {
	if s.revokeErr != nil {
		return s.revokeErr
	}
	return s.Store.RevokeCredential(ctx, id, at)
}

// hooks replaces the harness's service by one on a hookStore.
func (h *harness) hooks() *hookStore {
	h.tb.Helper()
	hs := &hookStore{Store: h.store}
	svc, err := New(h.cfg, hs, h.aud, h.not)
	if err != nil {
		h.tb.Fatal(err)
	}
	h.svc = svc
	return hs
}
