package policy

import (
	"strings"
	"sync"
	"testing"
	"time"

	"airlock"
)

var t0 = time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC) // a Wednesday

// baseInput is a tier-0 admin on a compliant managed device, freshly
// verified, doing a low-sensitivity read on a tier-2 resource: allowed by
// the default set. Tests change one thing at a time.
func baseInput() Input {
	return Input{
		Subject: Subject{ID: "usr_admin", Name: "admin", Roles: []string{airlock.RoleAdmin}, Tier: 0, Kind: airlock.UserEmployee},
		Device:  Device{ID: "dev_1", Kind: airlock.DeviceManaged, Trust: airlock.TrustTrusted, Compliant: true, PostureAgeS: 600},
		Session: Session{ID: "ses_1", Tier: 0, AgeS: 1800, IdleS: 30, UVAgeS: 60, AMR: []string{"hwk", "user", "mfa"}},
		Action:  Action{Name: "config.read", Sensitivity: Low},
		Resource: Resource{Name: "grafana", Tier: 2, Labels: map[string]string{
			"env": "prod",
		}},
		Now: t0,
	}
}

// policyFile builds one annotated policy.
func policyFile(id, annotations, body string) string {
	return "@id(\"" + id + "\")\n@owner(\"test\")\n@review_by(\"2030-01-01\")\n" + annotations + body + "\n"
}

func mustCompile(t testing.TB, files map[string]string) *Set {
	t.Helper()
	m := map[string][]byte{}
	for k, v := range files {
		m[k] = []byte(v)
	}
	s, err := Compile(m)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

func reasonIDs(d Decision) string {
	var ids []string
	for _, r := range d.Reasons {
		ids = append(ids, r.Policy)
	}
	return strings.Join(ids, ",")
}

// TestOutcomeMapping checks the annotation rules of DESIGN.md on a small
// custom set, including the two cedar-go traps.
func TestOutcomeMapping(t *testing.T) {
	set := mustCompile(t, map[string]string{"p.cedar": policyFile("permit-unless-flag", "",
		`permit (principal, action, resource) unless { context.action.name == "nopermit" };`) +
		policyFile("step-a", "@decision(\"step_up\")\n@max_age(\"300\")\n@acr(\"airlock:tier1\")\n",
			`forbid (principal, action, resource) when { context.action.name like "*stepa*" };`) +
		policyFile("step-b", "@decision(\"step_up\")\n@max_age(\"60\")\n@acr(\"airlock:tier0\")\n",
			`forbid (principal, action, resource) when { context.action.name like "*stepb*" };`) +
		policyFile("approve", "@decision(\"approval\")\n@approval_rule(\"two-admins\")\n",
			`forbid (principal, action, resource) when { context.action.name like "*approve*" };`) +
		policyFile("approve-b", "@decision(\"approval\")\n@approval_rule(\"security\")\n",
			`forbid (principal, action, resource) when { context.action.name like "*apprb*" };`) +
		policyFile("approve-anon", "@decision(\"approval\")\n",
			`forbid (principal, action, resource) when { context.action.name like "*apprn*" };`) +
		policyFile("hard", "", `forbid (principal, action, resource) when { context.action.name like "*hard*" };`),
	})
	e := NewEngine(set, DefaultConfig())
	tests := []struct {
		action   string
		confirm  bool
		want     Outcome
		maxAge   int64
		acr      string
		rule     string
		reasons  string
		transact bool
	}{
		{action: "ok", want: Allow, reasons: "permit-unless-flag"},
		{action: "stepa", want: StepUp, maxAge: 300, acr: "airlock:tier1", reasons: "step-a", transact: true},
		{action: "stepa+stepb", want: StepUp, maxAge: 60, acr: "airlock:tier0", reasons: "step-a,step-b", transact: true},
		{action: "stepa+approve", want: ApprovalRequired, rule: "two-admins", reasons: "approve,step-a"},
		{action: "stepa+hard", want: Deny, reasons: "hard,step-a"},
		// Every matched approval policy's rule applies, sorted, once each;
		// one that names none contributes the default rule.
		{action: "approve+apprb", want: ApprovalRequired, rule: "security,two-admins", reasons: "approve,approve-b"},
		{action: "apprn", want: ApprovalRequired, rule: "default", reasons: "approve-anon"},
		{action: "apprn+approve+apprb", want: ApprovalRequired, rule: "default,security,two-admins", reasons: "approve,approve-anon,approve-b"},
		{action: "approve+hard", want: Deny, reasons: "approve,hard"},
		// Trap 1: a curable forbid with no permit stays a deny.
		{action: "nopermit", want: Deny, reasons: "no-permit"},
		// A confirmation cures step_up only.
		{action: "stepa", confirm: true, want: Allow, reasons: "step-a,stepup-confirmed"},
		{action: "stepa+approve", confirm: true, want: ApprovalRequired, rule: "two-admins", reasons: "approve,step-a"},
		{action: "stepa+hard", confirm: true, want: Deny, reasons: "hard,step-a"},
	}
	for _, tt := range tests {
		name := tt.action
		if tt.confirm {
			name += "+confirmed"
		}
		t.Run(name, func(t *testing.T) {
			in := baseInput()
			in.Action.Name = tt.action
			if tt.confirm {
				in.Confirmation = &Confirmation{Transaction: "txn_1", AgeS: 5}
			}
			d := e.Decide(in)
			if d.Outcome != tt.want || reasonIDs(d) != tt.reasons {
				t.Fatalf("got %s (%s), want %s (%s)", d.Outcome, reasonIDs(d), tt.want, tt.reasons)
			}
			if d.Obligations.MaxAge != tt.maxAge || d.Obligations.ACR != tt.acr || d.Obligations.ApprovalRule != tt.rule || d.Obligations.Transaction != tt.transact {
				t.Fatalf("obligations %+v", d.Obligations)
			}
			if d.PolicyVersion != set.Version() || !strings.HasPrefix(d.ID, PrefixDecision) {
				t.Fatalf("version %q id %q", d.PolicyVersion, d.ID)
			}
		})
	}
	t.Run("fail-trap1-nopermit-with-curable-forbid", func(t *testing.T) {
		in := baseInput()
		in.Action.Name = "nopermit-stepa"
		// "nopermit-stepa" != "nopermit", so the permit holds; use an
		// action the permit excludes and a step-up matches instead.
		set2 := mustCompile(t, map[string]string{"p.cedar": policyFile("only-low", "",
			`permit (principal, action, resource) when { context.action.sensitivity == "low" };`) +
			policyFile("step", "@decision(\"step_up\")\n", `forbid (principal, action, resource);`)})
		in.Action.Sensitivity = High
		d := NewEngine(set2, DefaultConfig()).Decide(in)
		if d.Outcome != Deny || reasonIDs(d) != "step,no-permit" {
			t.Fatalf("got %s (%s), want deny (step,no-permit)", d.Outcome, reasonIDs(d))
		}
		in.Action.Sensitivity = Low
		if d := NewEngine(set2, DefaultConfig()).Decide(in); d.Outcome != StepUp || d.Obligations.MaxAge != 0 {
			t.Fatalf("got %s max_age %d, want step_up max_age 0", d.Outcome, d.Obligations.MaxAge)
		}
	})
}

// TestEvaluationErrorDenies: Cedar skips a policy whose evaluation fails;
// Airlock must deny instead (trap 2). The schema check makes such errors
// impossible for type-correct policies, so provoke one at run time with an
// integer overflow.
func TestEvaluationErrorDenies(t *testing.T) {
	set := mustCompile(t, map[string]string{"p.cedar": policyFile("all", "", `permit (principal, action, resource);`) +
		policyFile("overflow", "", `forbid (principal, action, resource) when { context.uv_age_s * 10000000000 < 0 };`)})
	e := NewEngine(set, DefaultConfig())
	in := baseInput()
	if d := e.Decide(in); d.Outcome != Allow { // 60 * 1e10 fits in int64
		t.Fatalf("ok case: got %s %v", d.Outcome, d.Reasons)
	}
	in.Session.UVAgeS = -1 // never: 1e9 * 1e10 overflows, the forbid errors
	d := e.Decide(in)
	if d.Outcome != Deny || reasonIDs(d) != ReasonEvaluationError || !strings.Contains(d.Reasons[0].Text, "overflow") {
		t.Fatalf("got %s %v, want deny with evaluation error", d.Outcome, d.Reasons)
	}
}

func TestNilSetDenies(t *testing.T) {
	e := NewEngine(nil, DefaultConfig())
	d := e.Decide(baseInput())
	if d.Outcome != Deny || reasonIDs(d) != ReasonNoPolicy {
		t.Fatalf("got %s %v", d.Outcome, d.Reasons)
	}
	if e.Swap(nil) || e.Set() != nil {
		t.Fatal("Swap(nil) accepted")
	}
	if !e.Swap(Default()) || e.Decide(baseInput()).Outcome != Allow {
		t.Fatal("Swap(Default()) did not take effect")
	}
	if e.Swap(nil) || e.Set() != Default() {
		t.Fatal("Swap(nil) replaced the good set")
	}
}

// TestNilEngineDenies: a caller wired without an engine gets a plain deny
// (no policy), never a panic or an allow.
func TestNilEngineDenies(t *testing.T) {
	var e *Engine
	if d := e.Decide(baseInput()); d.Outcome != Deny || reasonIDs(d) != ReasonNoPolicy {
		t.Fatalf("nil engine: %s %v", d.Outcome, d.Reasons)
	}
	if e.Set() != nil {
		t.Fatal("nil engine has a set")
	}
}

func TestInvalidInputDenies(t *testing.T) {
	e := NewEngine(Default(), DefaultConfig())
	for name, mut := range map[string]func(*Input){
		"no-time":            func(in *Input) { in.Now = time.Time{} },
		"no-subject":         func(in *Input) { in.Subject.ID = "" },
		"bad-kind":           func(in *Input) { in.Subject.Kind = "robot" },
		"bad-tier":           func(in *Input) { in.Session.Tier = -1 },
		"bad-resource":       func(in *Input) { in.Resource.Tier = 7 },
		"no-action":          func(in *Input) { in.Action.Name = "" },
		"bad-sensitivity":    func(in *Input) { in.Action.Sensitivity = "meh" },
		"negative-age":       func(in *Input) { in.Session.AgeS = -5 },
		"uv-below-never":     func(in *Input) { in.Session.UVAgeS = -2 },
		"bad-device":         func(in *Input) { in.Device.Kind = "toaster" },
		"bad-trust":          func(in *Input) { in.Device.Trust = "" },
		"negative-fails":     func(in *Input) { in.Signals.FailedCeremonies = -1 },
		"empty-confirm":      func(in *Input) { in.Confirmation = &Confirmation{} },
		"no-resource-name":   func(in *Input) { in.Resource.Name = "" },
		"session-above-user": func(in *Input) { in.Subject.Tier = 1 },
	} {
		t.Run("fail-"+name, func(t *testing.T) {
			in := baseInput()
			mut(&in)
			d := e.Decide(in)
			if d.Outcome != Deny || reasonIDs(d) != ReasonInvalidInput {
				t.Fatalf("got %s %v", d.Outcome, d.Reasons)
			}
		})
	}
}

func TestDecisionID(t *testing.T) {
	e := NewEngine(Default(), DefaultConfig())
	in := baseInput()
	in.DecisionID = "dec_given"
	if d := e.Decide(in); d.ID != "dec_given" {
		t.Fatalf("id %q", d.ID)
	}
	in.DecisionID = ""
	a, b := e.Decide(in), e.Decide(in)
	if a.ID == b.ID || !strings.HasPrefix(a.ID, "dec_") {
		t.Fatalf("ids %q %q", a.ID, b.ID)
	}
}

// TestConcurrentSwap runs decisions while the set is swapped (go test -race).
func TestConcurrentSwap(t *testing.T) {
	other := mustCompile(t, map[string]string{"p.cedar": policyFile("all", "", `permit (principal, action, resource);`)})
	e := NewEngine(Default(), DefaultConfig())
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				if i == 0 && j%10 == 0 {
					if j%20 == 0 {
						e.Swap(other)
					} else {
						e.Swap(Default())
					}
				}
				d := e.Decide(baseInput())
				if d.Outcome != Allow || (d.PolicyVersion != other.Version() && d.PolicyVersion != Default().Version()) {
					t.Errorf("got %s %q", d.Outcome, d.PolicyVersion)
					return
				}
			}
		}()
	}
	wg.Wait()
}
