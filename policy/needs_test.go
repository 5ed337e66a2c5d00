package policy

import (
	"fmt"
	"testing"
	"time"

	"airlock"
)

func needsOf(t *testing.T, cond string) needs {
	t.Helper()
	s := mustCompile(t, map[string]string{"p.cedar": policyFile("p", "", "permit (principal, action, resource) when { "+cond+" };")})
	return s.needs
}

func TestNeedsAnalysis(t *testing.T) {
	tests := []struct {
		cond string
		want []string // attribute paths that must be built
		not  []string // paths that must not be
	}{
		{`context.uv_age_s > 5`, []string{"context.uv_age_s"}, []string{"context.device", "principal.tier"}},
		{`context.device.kind == "managed"`, []string{"context.device", "context.device.kind"}, []string{"context.device.trust", "context.session"}},
		{`context.session has amr`, []string{"context.session", "context.session.amr"}, []string{"context.session.tier"}},
		{`principal.roles.contains("x") && resource.tier == 0`, []string{"principal.roles", "resource.tier"}, []string{"principal.tier", "resource.@tags"}},
		{`resource.hasTag("env") && resource.getTag("env") == context.action.name`, []string{"resource.@tags", "context.action.name"}, []string{"resource.tier", "context.action.level"}},
		{`context.device == context.device`, []string{"context.device.id", "context.device.posture_stale"}, []string{"context.session"}},
		{`context == context`, []string{"context.signals.outside_window", "context.grants"}, []string{"principal.roles"}},
		{`principal == User::"x"`, nil, []string{"principal.roles", "context.device"}},
		// Anything the analysis cannot follow builds everything.
		{`User::"x".tier == 0`, attrPaths, nil},
		{`(if true then context.device else context.device).kind == "x"`, attrPaths, nil},
	}
	for _, tt := range tests {
		t.Run(tt.cond, func(t *testing.T) {
			n := needsOf(t, tt.cond)
			for _, p := range tt.want {
				if !n.has(p) {
					t.Errorf("%s not built", p)
				}
			}
			for _, p := range tt.not {
				if n.has(p) {
					t.Errorf("%s built needlessly", p)
				}
			}
		})
	}
}

// TestPrunedMatchesFull decides the same inputs with the attributes the
// policies need and with every attribute, for the default set and for
// policies that read each part of the schema: the results must agree.
func TestPrunedMatchesFull(t *testing.T) {
	custom := mustCompile(t, map[string]string{"c.cedar": policyFile("all", "", `permit (principal, action, resource);`) +
		policyFile("tags", "", `forbid (principal, action, resource) when { resource.hasTag("team") && resource.getTag("team") == "platform" && context.session.amr.contains("hwk") };`) +
		policyFile("ages", "@decision(\"step_up\")\n", `forbid (principal, action, resource) when { context.session_age_s > 3000 || context.idle_s > 40 || context.posture_age_s > 3500 };`) +
		policyFile("signals", "", `forbid (principal, action, resource) when { context.signals.new_network && context.signals.failed_ceremonies > 0 && principal.name like "user0*" };`) +
		policyFile("grants", "", `permit (principal, action, resource) when { context.grants.contains("admin@ci") || context.session.id == "x" };`)})
	ins := benchInputs()
	for i := range ins {
		if i%5 == 0 {
			ins[i].Signals.FailedCeremonies = 2
		}
		if i%7 == 0 {
			ins[i].Grants = []string{"admin@ci"}
			ins[i].Exceptions = []Exception{{ID: "x", Effect: EffectSkipStepUp, Expires: t0.Add(time.Hour)}}
		}
		if i%9 == 0 {
			ins[i].Device.Kind = airlock.DeviceSharedStation
		}
	}
	for _, set := range []*Set{Default(), custom} {
		full := *set
		full.needs = needAll
		full.cache = &entityCache{}
		if set.needs == needAll {
			t.Fatal("nothing pruned")
		}
		pruned, all := NewEngine(set, DefaultConfig()), NewEngine(&full, DefaultConfig())
		outcomes := map[Outcome]int{}
		for round := range 2 { // the second round hits the caches
			for i, in := range ins {
				a, b := pruned.Decide(in), all.Decide(in)
				if fmt.Sprint(a.Outcome, a.Reasons, a.Obligations) != fmt.Sprint(b.Outcome, b.Reasons, b.Obligations) {
					t.Fatalf("round %d input %d: pruned %s %v, full %s %v", round, i, a.Outcome, a.Reasons, b.Outcome, b.Reasons)
				}
				outcomes[a.Outcome]++
			}
		}
		if len(outcomes) < 3 {
			t.Errorf("inputs exercise too few outcomes: %v", outcomes)
		}
	}
}

// TestCacheNeverServesStaleFacts changes one fact of a user, resource or
// device between two decisions and checks the second sees it.
func TestCacheNeverServesStaleFacts(t *testing.T) {
	e := NewEngine(Default(), DefaultConfig())
	in := baseInput()
	in.Resource = Resource{Name: "airlock", Tier: 0}
	in.Action = Action{Name: "airlock.audit.read", Sensitivity: Low}
	if d := e.Decide(in); d.Outcome != Allow {
		t.Fatalf("got %s", d.Outcome)
	}
	in.Subject.Roles = []string{"sre"} // lost the admin role
	if d := e.Decide(in); d.Outcome != Deny {
		t.Fatalf("roles: got %s", d.Outcome)
	}
	in = baseInput()
	e.Decide(in)
	in.Resource.Tier = 0
	in.Resource.Name = "grafana" // same name, now tier 0
	in.Session.Tier = 1
	if d := e.Decide(in); d.Outcome != Deny {
		t.Fatalf("resource tier: got %s", d.Outcome)
	}
	in = baseInput()
	e.Decide(in)
	in.Device.Trust = airlock.TrustRevoked
	if d := e.Decide(in); d.Outcome != Deny {
		t.Fatalf("device trust: got %s", d.Outcome)
	}
}

func TestBoundedMap(t *testing.T) {
	var m boundedMap[int, int]
	for i := range 3 * maxCached {
		m.store(i, i)
	}
	if len(m.m) > maxCached {
		t.Fatalf("%d entries", len(m.m))
	}
	if v, ok := m.load(3*maxCached - 1); !ok || v != 3*maxCached-1 {
		t.Fatal("latest entry lost")
	}
}
