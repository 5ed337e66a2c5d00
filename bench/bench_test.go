package bench

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/open-policy-agent/opa/v1/ast"
	"gopkg.in/yaml.v3"

	"airlock/policy"
)

// cases loads ../policy/testdata/default-cases.yaml (every default rule, ok
// and fail) as inputs.
func cases(t testing.TB) map[string]policy.Input {
	t.Helper()
	b, err := os.ReadFile("../policy/testdata/default-cases.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Defaults map[string]any
		Cases    []struct {
			Name  string
			Input map[string]any
		}
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	out := map[string]policy.Input{}
	for _, c := range f.Cases {
		j, err := json.Marshal(merge(f.Defaults, c.Input))
		if err != nil {
			t.Fatal(err)
		}
		var in policy.Input
		if err := json.Unmarshal(j, &in); err != nil {
			t.Fatal(c.Name, err)
		}
		in.DecisionID = "dec_bench"
		out[c.Name] = in
	}
	if len(out) < 20 {
		t.Fatalf("%d cases", len(out))
	}
	return out
}

func merge(base, over map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = merge(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

type prepared struct {
	name  string
	in    policy.Input
	ents  cedar.EntityMap
	req   cedar.Request
	input ast.Value
	want  policy.Decision
}

func prepare(t testing.TB) []prepared {
	e := policy.NewEngine(policy.Default(), policy.DefaultConfig())
	var out []prepared
	for name, in := range cases(t) {
		d := Facts(in, e)
		ents, req := CedarRequest(d)
		v, err := OPAInput(d)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, prepared{name, in, ents, req, v, e.Decide(in)})
	}
	return out
}

// TestSameDecisions: the Rego policy is the same policy — for every case
// of the default set, OPA's outcome and max_age equal Airlock's, and bare
// cedar-go on the same facts agrees on allow versus deny.
func TestSameDecisions(t *testing.T) {
	ctx := context.Background()
	q, err := PrepareOPA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := CedarSet()
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[policy.Outcome]int{}
	for _, p := range prepare(t) {
		got, err := EvalOPA(ctx, q, p.input)
		if err != nil {
			t.Fatal(p.name, err)
		}
		if got.Outcome != string(p.want.Outcome) || got.MaxAge != p.want.Obligations.MaxAge {
			t.Errorf("%s: OPA %+v, Airlock %s max_age %d", p.name, got, p.want.Outcome, p.want.Obligations.MaxAge)
		}
		dec, diag := ps.IsAuthorized(p.ents, p.req)
		if len(diag.Errors) > 0 {
			t.Errorf("%s: cedar errors %v", p.name, diag.Errors)
		}
		if p.in.Confirmation == nil && (dec == cedar.Allow) != (p.want.Outcome == policy.Allow) {
			t.Errorf("%s: bare cedar %v, Airlock %s", p.name, dec, p.want.Outcome)
		}
		outcomes[p.want.Outcome]++
	}
	if outcomes[policy.Allow] == 0 || outcomes[policy.StepUp] == 0 || outcomes[policy.Deny] == 0 || outcomes[policy.ApprovalRequired] == 0 {
		t.Fatalf("cases cover %v", outcomes)
	}
}

// BenchmarkCedar is bare cedar-go: the default policies, entities and
// context built once, PolicySet.IsAuthorized per decision.
func BenchmarkCedar(b *testing.B) {
	ps, err := CedarSet()
	if err != nil {
		b.Fatal(err)
	}
	ps2 := prepare(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p := &ps2[i]
		ps.IsAuthorized(p.ents, p.req)
		i = (i + 1) % len(ps2)
	}
}

// BenchmarkOPA is the same policy in Rego: a prepared query, the input
// converted to an ast.Value once, Eval per decision.
func BenchmarkOPA(b *testing.B) {
	ctx := context.Background()
	q, err := PrepareOPA(ctx)
	if err != nil {
		b.Fatal(err)
	}
	ps := prepare(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := EvalOPA(ctx, q, ps[i].input); err != nil {
			b.Fatal(err)
		}
		i = (i + 1) % len(ps)
	}
}

// BenchmarkAirlockDecide is Airlock's whole in-process decision
// (policy.Engine.Decide: risk, Cedar request, evaluation, outcome) on the
// same cases, for reference.
func BenchmarkAirlockDecide(b *testing.B) {
	e := policy.NewEngine(policy.Default(), policy.DefaultConfig())
	ps := prepare(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.Decide(ps[i].in)
		i = (i + 1) % len(ps)
	}
}

// BenchmarkRatio interleaves the three on every case in turn and reports
// per-decision times and the ratios OPA/Cedar and Decide/Cedar; on a busy
// shared machine interleaving keeps the ratios steady.
func BenchmarkRatio(b *testing.B) {
	ctx := context.Background()
	q, err := PrepareOPA(ctx)
	if err != nil {
		b.Fatal(err)
	}
	cs, err := CedarSet()
	if err != nil {
		b.Fatal(err)
	}
	e := policy.NewEngine(policy.Default(), policy.DefaultConfig())
	ps := prepare(b)
	var tc, to, td time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		for i := range ps {
			cs.IsAuthorized(ps[i].ents, ps[i].req)
		}
		t1 := time.Now()
		for i := range ps {
			EvalOPA(ctx, q, ps[i].input)
		}
		t2 := time.Now()
		for i := range ps {
			e.Decide(ps[i].in)
		}
		td += time.Since(t2)
		to += t2.Sub(t1)
		tc += t1.Sub(t0)
		n += len(ps)
	}
	b.ReportMetric(float64(tc.Nanoseconds())/float64(n), "cedar-ns")
	b.ReportMetric(float64(to.Nanoseconds())/float64(n), "opa-ns")
	b.ReportMetric(float64(td.Nanoseconds())/float64(n), "decide-ns")
	b.ReportMetric(float64(to)/float64(tc), "opa/cedar")
	b.ReportMetric(float64(td)/float64(tc), "decide/cedar")
	b.ReportMetric(0, "ns/op")
}
