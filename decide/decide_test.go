package decide

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"airlock"
	"airlock/device"
	"airlock/passkey"
	"airlock/policy"
	"airlock/risk"
	"airlock/sqlite"
)

type recorder struct {
	mu     sync.Mutex
	events []airlock.AuditEvent
	err    error
}

func (r *recorder) Record(_ context.Context, e airlock.AuditEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) last(t *testing.T) airlock.AuditEvent {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) == 0 {
		t.Fatal("nothing audited")
	}
	return r.events[len(r.events)-1]
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

type fixture struct {
	ctx   context.Context
	store *sqlite.Store
	svc   *Service
	aud   *recorder
	now   time.Time
	sub   Subject
}

var t0 = time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC)

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{ctx: ctx, store: st, aud: &recorder{}, now: t0}
	clock := func() time.Time { return f.now }
	f.svc = &Service{Store: st, Engine: policy.NewEngine(policy.Default(), policy.DefaultConfig()), Catalog: QuickStart(),
		Signals: &risk.Gatherer{Store: st, Now: clock}, Audit: f.aud, DeviceRules: device.DefaultRules(),
		BaseURL: "https://airlock.example.com/", Now: clock}
	u := &airlock.User{ID: "usr-alice", Name: "alice", Kind: airlock.UserEmployee, Tier: 0, Roles: []string{airlock.RoleAdmin},
		Handle: []byte("h-alice"), CreatedAt: t0, UpdatedAt: t0}
	d := &airlock.Device{ID: "dev-laptop", Name: "laptop", Owner: u.ID, Kind: airlock.DeviceManaged, Trust: airlock.TrustTrusted,
		Posture:   airlock.Posture{Managed: true, DiskEncrypted: true, ScreenLock: true, ReportedAt: t0.Add(-time.Hour), Source: "test"},
		CreatedAt: t0, UpdatedAt: t0}
	s := &airlock.Session{ID: "ses-1", TokenHash: []byte("th-1"), UserID: u.ID, DeviceID: d.ID, CredentialID: []byte("c"), Tier: 0,
		AMR: []string{"hwk", "user", "mfa"}, AuthTime: t0.Add(-time.Hour), LastSeen: t0, LastUVAt: t0.Add(-time.Hour),
		AbsoluteDeadline: t0.Add(11 * time.Hour), IdleTimeout: 15 * time.Minute, CreatedAt: t0.Add(-time.Hour)}
	for _, err := range []error{st.CreateUser(ctx, u), st.CreateDevice(ctx, d), st.CreateSession(ctx, s)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	f.sub = Subject{Session: s, User: u, Device: d, IdleS: 30}
	return f
}

func (f *fixture) decide(t *testing.T, req Request) *Result {
	t.Helper()
	if req.IP == "" {
		req.IP = "192.0.2.10"
	}
	res, err := f.svc.Decide(f.ctx, f.sub, req)
	if err != nil {
		t.Fatalf("Decide(%s on %s): %v", req.Action, req.Resource, err)
	}
	return res
}

func hasReason(d policy.Decision, id string) bool {
	for _, r := range d.Reasons {
		if r.Policy == id {
			return true
		}
	}
	return false
}

func TestDecideAllowAudited(t *testing.T) {
	f := newFixture(t)
	res := f.decide(t, Request{Action: "config.read", Resource: "grafana", Params: json.RawMessage(`{"dashboard":"db-1"}`), Client: "grafana-proxy", RequestID: "req-1"})
	if res.Decision.Outcome != policy.Allow {
		t.Fatalf("config.read on grafana: %+v", res.Decision)
	}
	if res.Decision.PolicyVersion == "" || res.Decision.PolicyVersion != policy.Default().Version() {
		t.Errorf("policy version %q", res.Decision.PolicyVersion)
	}
	e := f.aud.last(t)
	if e.Type != "decision.allow" || e.DecisionID != res.Decision.ID || e.Outcome != airlock.OutcomeSuccess ||
		e.SessionID != "ses-1" || e.UserID != "usr-alice" || e.DeviceID != "dev-laptop" || e.RequestID != "req-1" {
		t.Fatalf("audit event %+v", e)
	}
	if e.Details["policy_version"] != res.Decision.PolicyVersion || e.Details["client"] != "grafana-proxy" {
		t.Errorf("details %+v", e.Details)
	}
	// The recorded input replays to the same decision.
	b, _ := json.Marshal(e.Details["input"])
	var in policy.Input
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatal(err)
	}
	if in.DecisionID != res.Decision.ID || in.Session.IdleS != 30 || in.Session.UVAgeS != 3600 || in.Session.AgeS != 3600 ||
		!in.Device.Compliant || in.Resource.Tier != 2 || in.Action.Sensitivity != policy.Low || !in.Signals.NewNetwork {
		t.Errorf("recorded input %+v", in)
	}
	replay := policy.NewEngine(policy.Default(), policy.DefaultConfig()).Decide(in)
	if replay.Outcome != res.Decision.Outcome || replay.Risk.Score != res.Decision.Risk.Score || replay.ID != res.Decision.ID {
		t.Errorf("replay %+v differs from %+v", replay, res.Decision)
	}
}

func TestDecideUnknownActionOrResource(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name, action, resource, reason string
	}{
		{"fail-unknown-action", "secrets.steal", "vault-prod", ReasonUnknownAction},
		{"fail-unknown-resource", "config.read", "nowhere", ReasonUnknownResource},
		{"fail-malformed-resource", "config.read", "../../etc", ReasonUnknownResource},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := f.decide(t, Request{Action: tc.action, Resource: tc.resource})
			if res.Decision.Outcome != policy.Deny || !hasReason(res.Decision, tc.reason) || res.Decision.ID == "" {
				t.Fatalf("decision %+v, want deny with %s", res.Decision, tc.reason)
			}
			if e := f.aud.last(t); e.Type != "decision.deny" || e.DecisionID != res.Decision.ID {
				t.Errorf("audit %+v", e)
			}
		})
	}
}

func TestDecideStoredResource(t *testing.T) {
	f := newFixture(t)
	if res := f.decide(t, Request{Action: "config.read", Resource: "wiki"}); res.Decision.Outcome != policy.Deny {
		t.Fatalf("unknown resource: %+v", res.Decision)
	}
	if err := f.store.CreateResource(f.ctx, &airlock.Resource{Name: "wiki", Tier: 2, Labels: map[string]string{"env": "prod"}, CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	res := f.decide(t, Request{Action: "config.read", Resource: "wiki"})
	if res.Decision.Outcome != policy.Allow || res.Input.Resource.Labels["env"] != "prod" {
		t.Fatalf("stored resource: %+v, input resource %+v", res.Decision, res.Input.Resource)
	}
}

// stepUp decides a payment and returns the result (a step_up).
func (f *fixture) stepUp(t *testing.T, params string) *Result {
	t.Helper()
	res := f.decide(t, Request{Action: "payments.transfer", Resource: "payments", Params: json.RawMessage(params), Client: "bank-ui"})
	if res.Decision.Outcome != policy.StepUp || res.StepUp == nil {
		t.Fatalf("payments.transfer: %+v, want step_up with a transaction", res.Decision)
	}
	return res
}

// confirm completes t as the step-up ceremony would, returning the proof.
func (f *fixture) confirm(t *testing.T, tx *airlock.StepUp, proof string) {
	t.Helper()
	if err := f.store.CompleteStepUp(f.ctx, tx.ID, passkey.ProofHash(proof), []byte("c"), f.now, f.now.Add(passkey.DefaultProofTTL)); err != nil {
		t.Fatal(err)
	}
}

const payment = `{"payee":"DE02 1203 0000 0000 2020 51","amount":"100.00"}`

func TestDecideStepUpTransaction(t *testing.T) {
	f := newFixture(t)
	res := f.stepUp(t, payment)
	tx := res.StepUp
	stored, err := f.store.FindStepUpByID(f.ctx, tx.ID)
	if err != nil {
		t.Fatal(err)
	}
	canon, _ := CanonicalParams(json.RawMessage(payment))
	if stored.SessionID != "ses-1" || stored.Action != "payments.transfer" || stored.Resource != "payments" ||
		string(stored.Params) != string(canon) || string(stored.ParamsDigest) != string(ParamsDigest(canon)) ||
		stored.DecisionID != res.Decision.ID || !stored.ExpiresAt.Equal(t0.Add(DefaultStepUpTTL)) || stored.Client != "bank-ui" {
		t.Errorf("stored transaction %+v", stored)
	}
	if string(stored.Digest) != string(TransactionDigest(stored)) {
		t.Error("stored digest is not TransactionDigest of the transaction")
	}
	if res.URL != "https://airlock.example.com/stepup/"+tx.ID {
		t.Errorf("URL %q", res.URL)
	}
	if res.Decision.Obligations.MaxAge != 0 || !res.Decision.Obligations.Transaction {
		t.Errorf("obligations %+v", res.Decision.Obligations)
	}
	if e := f.aud.last(t); e.Type != "decision.step_up" || e.TransactionID != tx.ID {
		t.Errorf("audit %+v", e)
	}
}

func TestDecideProof(t *testing.T) {
	other := &airlock.Session{ID: "ses-2", TokenHash: []byte("th-2"), UserID: "usr-alice", DeviceID: "dev-laptop", Tier: 0,
		AuthTime: t0, LastSeen: t0, LastUVAt: t0, AbsoluteDeadline: t0.Add(time.Hour), IdleTimeout: time.Hour, CreatedAt: t0}
	for _, tc := range []struct {
		name string
		// mutate changes the second request (or the fixture) before it is
		// decided with the proof.
		mutate func(f *fixture, req *Request)
		reason string // "" means allowed
	}{
		{"ok-identical-request", func(f *fixture, req *Request) {}, ""},
		{"ok-params-in-another-key-order", func(f *fixture, req *Request) {
			req.Params = json.RawMessage(`{ "amount": "100.00", "payee": "DE02 1203 0000 0000 2020 51" }`)
		}, ""},
		{"fail-other-params", func(f *fixture, req *Request) {
			req.Params = json.RawMessage(`{"payee":"DE02 1203 0000 0000 2020 51","amount":"100000.00"}`)
		}, "other parameters"},
		{"fail-other-resource", func(f *fixture, req *Request) { req.Resource = "vault-prod"; req.Action = "secrets.export" }, "not this request"},
		{"fail-expired", func(f *fixture, req *Request) { f.now = f.now.Add(passkey.DefaultProofTTL) }, "expired"},
		{"fail-other-session", func(f *fixture, req *Request) {
			if err := f.store.CreateSession(f.ctx, other); err != nil {
				t.Fatal(err)
			}
			f.sub.Session = other
		}, "another session"},
		{"fail-unknown-proof", func(f *fixture, req *Request) { req.Proof = "not-a-proof" }, "unknown"},
		{"fail-unknown-action", func(f *fixture, req *Request) { req.Action = "secrets.steal" }, "not this request"},
		{"fail-unknown-resource", func(f *fixture, req *Request) { req.Resource = "nowhere" }, "not this request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tx := f.stepUp(t, payment).StepUp
			f.now = f.now.Add(20 * time.Second)
			f.confirm(t, tx, "proof-1")
			f.now = f.now.Add(10 * time.Second)
			req := Request{Action: "payments.transfer", Resource: "payments", Params: json.RawMessage(payment), Proof: "proof-1"}
			tc.mutate(f, &req)
			res := f.decide(t, req)
			if tc.reason == "" {
				if res.Decision.Outcome != policy.Allow || !hasReason(res.Decision, policy.ReasonConfirmed) {
					t.Fatalf("identical request with its proof: %+v", res.Decision)
				}
				if res.Input.Confirmation == nil || res.Input.Confirmation.Transaction != tx.ID || res.Input.Confirmation.AgeS != 10 {
					t.Errorf("confirmation in input: %+v", res.Input.Confirmation)
				}
				if e := f.aud.last(t); e.Type != "decision.allow" || e.TransactionID != tx.ID {
					t.Errorf("audit %+v", e)
				}
				// Once: the same proof again is refused.
				again := f.decide(t, Request{Action: "payments.transfer", Resource: "payments", Params: json.RawMessage(payment), Proof: "proof-1"})
				if again.Decision.Outcome != policy.Deny || !hasReason(again.Decision, ReasonProofRefused) ||
					!strings.Contains(again.Decision.Reasons[len(again.Decision.Reasons)-1].Text, "already used") {
					t.Fatalf("fail-replayed-proof: %+v", again.Decision)
				}
				return
			}
			if res.Decision.Outcome != policy.Deny || !hasReason(res.Decision, ReasonProofRefused) {
				t.Fatalf("%s: %+v, want deny with %s", tc.name, res.Decision, ReasonProofRefused)
			}
			last := res.Decision.Reasons[len(res.Decision.Reasons)-1]
			if !strings.Contains(last.Text, tc.reason) {
				t.Errorf("reason %q does not say %q", last.Text, tc.reason)
			}
			if res.StepUp != nil {
				// A refused proof is spent: the right request cannot use
				// it afterwards either.
				f.sub.Session = f.svc.mustSession(t, f, "ses-1")
				f.now = t0.Add(40 * time.Second)
				res := f.decide(t, Request{Action: "payments.transfer", Resource: "payments", Params: json.RawMessage(payment), Proof: "proof-1"})
				if res.Decision.Outcome != policy.Deny {
					t.Errorf("a proof refused once was accepted later: %+v", res.Decision)
				}
			}
		})
	}
}

func (s *Service) mustSession(t *testing.T, f *fixture, id string) *airlock.Session {
	t.Helper()
	sess, err := f.store.FindSessionByID(f.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return sess
}

func TestDecideExceptions(t *testing.T) {
	f := newFixture(t)
	req := Request{Action: "secrets.export", Resource: "vault-prod"}
	if res := f.decide(t, req); res.Decision.Outcome != policy.StepUp {
		t.Fatalf("secrets.export with UV 1 h old: %+v", res.Decision)
	}
	x := &airlock.Exception{ID: "exc-1", UserID: "usr-alice", Action: "secrets.export", Effect: policy.EffectSkipStepUp,
		Owner: "sec-team", Reason: "OPS-1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := f.store.CreateException(f.ctx, x); err != nil {
		t.Fatal(err)
	}
	res := f.decide(t, req)
	if res.Decision.Outcome != policy.Allow || len(res.Decision.Exceptions) != 1 || res.Decision.Exceptions[0] != "exc-1" {
		t.Fatalf("with a live skip_step_up exception: %+v", res.Decision)
	}
	// Expired: ignored even before the sweep removes it.
	f.now = t0.Add(time.Hour)
	if res := f.decide(t, req); res.Decision.Outcome != policy.StepUp {
		t.Fatalf("with an expired exception: %+v", res.Decision)
	}
	n, err := f.svc.SweepExceptions(f.ctx)
	if err != nil || n != 1 {
		t.Fatalf("SweepExceptions = %d, %v", n, err)
	}
	e := f.aud.last(t)
	if e.Type != "policy.exception_expired" || e.Subject != "exc-1" {
		t.Errorf("sweep audit %+v", e)
	}
	if _, err := f.store.FindExceptionByID(f.ctx, "exc-1"); airlock.ErrorCode(err) != airlock.ENOTFOUND {
		t.Errorf("swept exception still stored: %v", err)
	}
	// Audit down: the sweep stops and deletes nothing unrecorded.
	x2 := *x
	x2.ID, x2.ExpiresAt = "exc-2", f.now.Add(-time.Second)
	if err := f.store.CreateException(f.ctx, &x2); err != nil {
		t.Fatal(err)
	}
	f.aud.err = errors.New("audit down")
	if _, err := f.svc.SweepExceptions(f.ctx); err == nil {
		t.Error("sweep succeeded without an audit log")
	}
	if _, err := f.store.FindExceptionByID(f.ctx, "exc-2"); err != nil {
		t.Errorf("exception deleted although its expiry was not recorded: %v", err)
	}
}

func TestDecideFailsClosed(t *testing.T) {
	t.Run("fail-no-policy", func(t *testing.T) {
		f := newFixture(t)
		f.svc.Engine = policy.NewEngine(nil, policy.DefaultConfig())
		res := f.decide(t, Request{Action: "config.read", Resource: "grafana"})
		if res.Decision.Outcome != policy.Deny || !hasReason(res.Decision, policy.ReasonNoPolicy) {
			t.Fatalf("no policy: %+v", res.Decision)
		}
	})
	t.Run("fail-store-down", func(t *testing.T) {
		f := newFixture(t)
		f.store.Close()
		res, err := f.svc.Decide(f.ctx, f.sub, Request{Action: "config.read", Resource: "grafana", IP: "192.0.2.1"})
		if err == nil {
			t.Fatalf("store down: decision %+v, want an error", res.Decision)
		}
		if f.aud.count() != 0 {
			t.Error("a decision was audited without a store")
		}
	})
	t.Run("fail-audit-down", func(t *testing.T) {
		f := newFixture(t)
		f.aud.err = errors.New("disk full")
		if _, err := f.svc.Decide(f.ctx, f.sub, Request{Action: "config.read", Resource: "grafana"}); err == nil {
			t.Fatal("a decision was given that could not be audited")
		}
	})
	t.Run("fail-bad-params", func(t *testing.T) {
		f := newFixture(t)
		for _, p := range []string{`[1,2]`, `"x"`, `{"a":1}{"b":2}`, `{"a":`} {
			_, err := f.svc.Decide(f.ctx, f.sub, Request{Action: "config.read", Resource: "grafana", Params: json.RawMessage(p)})
			if airlock.ErrorCode(err) != airlock.EINVALID {
				t.Errorf("params %s: %v, want EINVALID", p, err)
			}
		}
	})
}

func TestCanonicalParams(t *testing.T) {
	a, err := CanonicalParams(json.RawMessage(`{"b": [1, {"z": 1e3, "a": "<x>"}], "a": 0.10}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":0.10,"b":[1,{"a":"<x>","z":1e3}]}`; string(a) != want {
		t.Errorf("canonical = %s, want %s", a, want)
	}
	for _, empty := range []string{``, ` `, `null`, `{}`} {
		if c, err := CanonicalParams(json.RawMessage(empty)); err != nil || string(c) != "{}" {
			t.Errorf("CanonicalParams(%q) = %s, %v", empty, c, err)
		}
	}
	big := `{"x":"` + strings.Repeat("a", MaxParamsBytes) + `"}`
	if _, err := CanonicalParams(json.RawMessage(big)); airlock.ErrorCode(err) != airlock.EINVALID {
		t.Errorf("oversized params: %v", err)
	}
	sum := Summary([]byte(`{"payee":"DE02","amount":"100.00","meta":{"tags":["a","b"],"n":3,"none":null}}`))
	var lines []string
	for _, f := range sum {
		lines = append(lines, f.Key+"="+f.Value)
	}
	if got, want := strings.Join(lines, "; "), "amount=100.00; meta.n=3; meta.none=null; meta.tags[0]=a; meta.tags[1]=b; payee=DE02"; got != want {
		t.Errorf("Summary = %s, want %s", got, want)
	}
}

func TestTransactionDigest(t *testing.T) {
	base := airlock.StepUp{Action: "payments.transfer", Resource: "payments", ParamsDigest: []byte("pd"), SessionID: "s",
		DecisionID: "d", ExpiresAt: t0}
	seen := map[string]string{string(TransactionDigest(&base)): "base"}
	for name, mut := range map[string]func(*airlock.StepUp){
		"action":   func(x *airlock.StepUp) { x.Action = "payments.transfe" },
		"resource": func(x *airlock.StepUp) { x.Resource = "paymentsx" },
		"params":   func(x *airlock.StepUp) { x.ParamsDigest = []byte("pD") },
		"session":  func(x *airlock.StepUp) { x.SessionID = "t" },
		"decision": func(x *airlock.StepUp) { x.DecisionID = "e" },
		"expiry":   func(x *airlock.StepUp) { x.ExpiresAt = t0.Add(time.Microsecond) },
		// Moving a byte across a field boundary changes the digest.
		"boundary": func(x *airlock.StepUp) { x.Action, x.Resource = "payments.transferp", "ayments" },
	} {
		x := base
		mut(&x)
		d := string(TransactionDigest(&x))
		if prev, ok := seen[d]; ok {
			t.Errorf("changing %s gives the digest of %s", name, prev)
		}
		seen[d] = name
	}
	x := base
	x.ExpiresAt = t0.In(time.FixedZone("x", 3600))
	x.Client, x.Params = "other", []byte("{}")
	if string(TransactionDigest(&x)) != string(TransactionDigest(&base)) {
		t.Error("the digest depends on the time zone or on fields it does not cover")
	}
}

func TestCatalog(t *testing.T) {
	var c Catalog
	src := `
actions:
  secrets.export: critical
  deploy.prod:
    sensitivity: high
    resources:
      ci: critical
resources:
  - name: ci
    tier: 1
    labels: {env: prod}
`
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	c = c.WithAdmin()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		action, resource string
		want             policy.Sensitivity
		ok               bool
	}{
		{"secrets.export", "vault", policy.Critical, true},
		{"deploy.prod", "ci", policy.Critical, true},
		{"deploy.prod", "grafana", policy.High, true},
		{ActionUserCreate, ResourceAirlock, policy.Critical, true},
		{ActionAuditRead, ResourceAirlock, policy.Low, true},
		{"nope", "ci", "", false},
	} {
		got, ok := c.Sensitivity(tc.action, tc.resource)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Sensitivity(%s, %s) = %s, %v; want %s, %v", tc.action, tc.resource, got, ok, tc.want, tc.ok)
		}
	}
	if r, ok := c.Resource(ResourceAirlock); !ok || r.Tier != 0 {
		t.Error("WithAdmin does not add the airlock resource at tier 0")
	}
	if err := QuickStart().Validate(); err != nil {
		t.Errorf("quick-start catalog: %v", err)
	}
	for name, bad := range map[string]Catalog{
		"fail-sensitivity":       {Actions: map[string]Action{"a.b": {Sensitivity: "extreme"}}},
		"fail-action-name":       {Actions: map[string]Action{"A B": {Sensitivity: policy.Low}}},
		"fail-override":          {Actions: map[string]Action{"a.b": {Sensitivity: policy.Low, Resources: map[string]policy.Sensitivity{"ci": "nope"}}}},
		"fail-resource-tier":     {Resources: []ResourceDef{{Name: "x", Tier: 3}}},
		"fail-resource-name":     {Resources: []ResourceDef{{Name: "X Y", Tier: 1}}},
		"fail-duplicate":         {Resources: []ResourceDef{{Name: "x", Tier: 1}, {Name: "x", Tier: 2}}},
		"fail-label-key":         {Resources: []ResourceDef{{Name: "x", Tier: 1, Labels: map[string]string{"Bad Key": "v"}}}},
		"fail-empty-action-part": {Actions: map[string]Action{"a..b": {Sensitivity: policy.Low}}},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, bad)
		}
	}
}

func TestValidateException(t *testing.T) {
	f := newFixture(t)
	ok := func() *airlock.Exception {
		return &airlock.Exception{Action: "deploy.prod", Resource: "ci", Effect: "skip_step_up", Owner: "team", Reason: "OPS-1", ExpiresAt: t0.Add(time.Hour)}
	}
	if err := f.svc.ValidateException(f.ctx, ok(), t0); err != nil {
		t.Fatalf("ok-exception: %v", err)
	}
	for name, mut := range map[string]func(*airlock.Exception){
		"fail-no-effect":       func(x *airlock.Exception) { x.Effect = "" },
		"fail-bad-effect":      func(x *airlock.Exception) { x.Effect = "Allow All" },
		"fail-no-owner":        func(x *airlock.Exception) { x.Owner = "" },
		"fail-no-reason":       func(x *airlock.Exception) { x.Reason = "" },
		"fail-past":            func(x *airlock.Exception) { x.ExpiresAt = t0 },
		"fail-too-long":        func(x *airlock.Exception) { x.ExpiresAt = t0.Add(MaxExceptionLifetime + time.Second) },
		"fail-unknown-action":  func(x *airlock.Exception) { x.Action = "nope" },
		"fail-unknown-resouce": func(x *airlock.Exception) { x.Resource = "nope" },
	} {
		x := ok()
		mut(x)
		if err := f.svc.ValidateException(f.ctx, x, t0); airlock.ErrorCode(err) != airlock.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
}

// TestCanonicalParamsStrict: parameters that a second parser could read
// differently from the one that computed the digest are refused, so that
// two different requests never share a params digest.
func TestCanonicalParamsStrict(t *testing.T) {
	for name, p := range map[string]string{
		"fail-duplicate-key":          `{"payee":"alice","amount":"1","payee":"mallory"}`,
		"fail-duplicate-nested-key":   `{"to":{"iban":"DE02","iban":"GB33"}}`,
		"fail-duplicate-escaped-key":  `{"payee":"alice","p\u0061yee":"mallory"}`,
		"fail-duplicate-in-list-item": `{"l":[{"a":1,"a":2}]}`,
		"fail-invalid-utf8":           "{\"payee\":\"al\xffice\"}",
		"fail-invalid-utf8-key":       "{\"pa\xfeyee\":\"alice\"}",
		"fail-lone-high-surrogate":    `{"payee":"\ud800"}`,
		"fail-lone-low-surrogate":     `{"payee":"\udc00x"}`,
		"fail-high-then-not-low":      `{"payee":"\ud83d\u0041"}`,
		"fail-high-at-end-of-key":     `{"\ud83d":1}`,
	} {
		t.Run(name, func(t *testing.T) {
			if c, err := CanonicalParams(json.RawMessage(p)); airlock.ErrorCode(err) != airlock.EINVALID {
				t.Errorf("CanonicalParams(%q) = %s, %v; want EINVALID", p, c, err)
			}
		})
	}
	for name, p := range map[string]string{
		"ok-surrogate-pair":     `{"emoji":"\ud83d\ude00"}`,
		"ok-same-key-elsewhere": `{"a":{"x":1},"b":{"x":1},"x":[{"x":1},{"x":2}]}`,
		"ok-escaped-backslash":  `{"a":"\\ud800"}`,
		"ok-replacement-char":   `{"a":"\ufffd"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := CanonicalParams(json.RawMessage(p)); err != nil {
				t.Errorf("CanonicalParams(%q): %v", p, err)
			}
		})
	}
	// The literal replacement character and an escaped lone surrogate must
	// not share a digest (encoding/json reads both as U+FFFD).
	if a, _ := CanonicalParams(json.RawMessage(`{"a":"\ufffd"}`)); a == nil {
		t.Fatal("U+FFFD refused")
	} else if b, err := CanonicalParams(json.RawMessage(`{"a":"\udfff"}`)); err == nil && string(a) == string(b) {
		t.Error("a lone surrogate shares the digest of U+FFFD")
	}
}

// TestSummaryShowsEverything: the step-up page must show every parameter
// the proof is bound to, in full and unambiguously — no line limit that
// padding parameters can push the payee past, no clipped values, no
// invisible or direction-changing characters, no key that reads like a
// nested one.
func TestSummaryShowsEverything(t *testing.T) {
	text := func(fs []Field) string {
		var lines []string
		for _, f := range fs {
			lines = append(lines, f.Key+"="+f.Value)
		}
		return strings.Join(lines, "\n")
	}
	canon := func(p string) []byte {
		c, err := CanonicalParams(json.RawMessage(p))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Run("fail-padding-hides-payee", func(t *testing.T) {
		var b strings.Builder
		b.WriteString(`{`)
		for i := range 60 {
			fmt.Fprintf(&b, `"a%02d":"x",`, i)
		}
		b.WriteString(`"payee":"GB33 MALLORY","amount":"9999.00"}`)
		got := text(Summary(canon(b.String())))
		for _, want := range []string{"payee=GB33 MALLORY", "amount=9999.00", "a59=x"} {
			if !strings.Contains(got, want) {
				t.Errorf("summary hides %q:\n%s", want, got)
			}
		}
	})
	t.Run("fail-clipped-value", func(t *testing.T) {
		long := strings.Repeat("DE02 ", 60) + "MALLORY"
		got := text(Summary(canon(`{"payee":"` + long + `"}`)))
		if !strings.Contains(got, "MALLORY") {
			t.Errorf("summary clips the payee:\n%s", got)
		}
	})
	t.Run("fail-invisible-characters", func(t *testing.T) {
		// U+202E reverses what follows; U+200B is invisible; a newline
		// or leading/trailing spaces change nothing a person sees.
		// U+00A0 and U+3000 look like a space but are not one.
		got := text(Summary(canon(`{"payee":"alice\u202Eecila","memo":"a\u200Bb","note":" x ","nl":"a\nb","nb":"1\u00A0000","\u3000k":"v"}`)))
		for _, bad := range []string{"\u202e", "\u200b", "\n b", "\u00a0", "\u3000"} {
			if strings.Contains(got, bad) {
				t.Errorf("summary shows %q as is:\n%s", bad, got)
			}
		}
		for _, want := range []string{`payee="alice\u202eecila"`, `memo="a\u200bb"`, `note=" x "`, `nl="a\nb"`, `nb="1\u00a0000"`, `"\u3000k"=v`} {
			if !strings.Contains(got, want) {
				t.Errorf("summary lacks %s:\n%s", want, got)
			}
		}
	})
	t.Run("fail-key-looks-nested", func(t *testing.T) {
		a := text(Summary(canon(`{"to.iban":"GB33"}`)))
		b := text(Summary(canon(`{"to":{"iban":"GB33"}}`)))
		if a == b {
			t.Errorf("a dotted key and a nested key read alike: %q", a)
		}
		if c := text(Summary(canon(`{"l[0]":"x"}`))); c == text(Summary(canon(`{"l":["x"]}`))) {
			t.Errorf("a bracketed key and a list read alike: %q", c)
		}
	})
	t.Run("ok-plain-values-unquoted", func(t *testing.T) {
		got := text(Summary(canon(`{"payee":"DE02 1203 0000","amount":"250.00","n":3,"é":"café"}`)))
		if want := "amount=250.00\nn=3\npayee=DE02 1203 0000\né=café"; got != want {
			t.Errorf("summary = %q, want %q", got, want)
		}
	})
}

// TestDecideWildcardExceptionNotForCreator: an exception for every user
// (empty user) would otherwise exempt the admin who created it — the
// self-exemption that creating one for one's own account is refused to
// prevent.
func TestDecideWildcardExceptionNotForCreator(t *testing.T) {
	f := newFixture(t)
	req := Request{Action: "secrets.export", Resource: "vault-prod"}
	x := &airlock.Exception{ID: "exc-all", Action: "secrets.export", Effect: policy.EffectSkipStepUp,
		Owner: "sec-team", Reason: "OPS-2", CreatedBy: f.sub.User.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := f.store.CreateException(f.ctx, x); err != nil {
		t.Fatal(err)
	}
	if res := f.decide(t, req); res.Decision.Outcome != policy.StepUp || len(res.Decision.Exceptions) != 0 {
		t.Fatalf("fail-own-wildcard: the creator of an every-user exception was exempted: %+v", res.Decision)
	}
	x2 := *x
	x2.ID, x2.CreatedBy = "exc-all-2", "usr-other-admin"
	if err := f.store.CreateException(f.ctx, &x2); err != nil {
		t.Fatal(err)
	}
	if res := f.decide(t, req); res.Decision.Outcome != policy.Allow || len(res.Decision.Exceptions) != 1 || res.Decision.Exceptions[0] != "exc-all-2" {
		t.Fatalf("ok-others-wildcard: an every-user exception by another admin: %+v", res.Decision)
	}
}
