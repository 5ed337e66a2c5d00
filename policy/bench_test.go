package policy

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go"

	"airlock"
)

// benchInputs are the requests both benchmarks decide, cycled so that no
// two consecutive decisions are identical: 16 users on their own devices,
// the four quick-start resources, UV and session ages that differ on every
// request. Half are critical actions on tier-0 resources with a stale UV
// (step_up), the rest low or high actions (allow).
func benchInputs() []Input {
	resources := []Resource{
		{Name: "grafana", Tier: 2, Labels: map[string]string{"env": "prod"}},
		{Name: "ci", Tier: 1, Labels: map[string]string{"env": "prod"}},
		{Name: "vault-prod", Tier: 0, Labels: map[string]string{"env": "prod", "team": "platform"}},
		{Name: "payments", Tier: 0, Labels: map[string]string{"env": "prod"}},
	}
	var out []Input
	for i := range 64 {
		in := baseInput()
		in.Subject.ID = fmt.Sprintf("usr_%02d", i%16)
		in.Subject.Name = fmt.Sprintf("user%02d", i%16)
		in.Device.ID = fmt.Sprintf("dev_%02d", i%16)
		in.Session.ID = fmt.Sprintf("ses_%02d", i%16)
		in.Session.AgeS = int64(600 + 37*i)
		in.Session.IdleS = int64(i % 50)
		in.Device.PostureAgeS = int64(3000 + 11*i)
		in.Resource = resources[i%4]
		switch {
		case i%2 == 0 && in.Resource.Tier == 0:
			in.Action = Action{Name: "secrets.export", Sensitivity: Critical}
			in.Session.UVAgeS = int64(400 + i)
		case i%2 == 0:
			in.Action = Action{Name: "deploy.prod", Sensitivity: High}
			in.Session.UVAgeS = int64(30 + i)
		default:
			in.Action = Action{Name: "config.read", Sensitivity: Low}
			in.Session.UVAgeS = int64(30 + i)
		}
		if i%8 == 0 {
			in.Signals.NewNetwork = true
		}
		// Each user keeps the same attributes on every request.
		if u := i % 16; u%4 == 1 {
			in.Subject.Roles = append(in.Subject.Roles, "sre")
		} else if u%4 == 3 {
			in.Subject.Roles = nil
			in.Subject.Kind = airlock.UserContractor
			in.Subject.Window = &airlock.AccessWindow{StartHour: 8, EndHour: 18}
		}
		out = append(out, in)
	}
	return out
}

// BenchmarkDecide is the whole in-process decision: input validation, risk
// signals, the Cedar request and entities, both evaluations, the outcome
// mapping and a new decision id. Compare with BenchmarkCedarBare in the same
// run (docs/performance.md).
func BenchmarkDecide(b *testing.B) {
	e := NewEngine(Default(), DefaultConfig())
	ins := benchInputs()
	want := make([]Outcome, len(ins))
	for i, in := range ins {
		want[i] = e.Decide(in).Outcome
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if d := e.Decide(ins[i]); d.Outcome != want[i] {
			b.Fatal(d.Outcome)
		}
		i = (i + 1) % len(ins)
	}
}

// bareRequest is one benchInputs request prepared for bare cedar-go.
type bareRequest struct {
	ents cedar.EntityMap
	req  cedar.Request
	want cedar.Decision
}

// bareSetup returns the default policies as one cedar.PolicySet and the
// benchInputs requests with their entities and contexts built once, exactly
// as Decide builds them.
func bareSetup() (*cedar.PolicySet, []bareRequest) {
	set := Default()
	all, err := cedar.NewPolicySetFromBytes("default", joinedDefault())
	if err != nil {
		panic(err)
	}
	e := NewEngine(set, DefaultConfig())
	var reqs []bareRequest
	for _, in := range benchInputs() {
		var f facts
		f.postureStale = in.Device.PostureAgeS < 0 || in.Device.PostureAgeS > e.model.postureMaxAge
		f.outsideWindow, f.windowText = outsideWindow(&in.Subject, in.Now)
		score := e.model.risk(&in, &f).Score
		var sc scratch
		sc.context = cedar.RecordMap{}
		req := set.cedarRequest(&sc, &in, &f, score, nil)
		em := cedar.EntityMap{sc.ents.user.UID: sc.ents.user, sc.ents.resource.UID: sc.ents.resource}
		want := cedar.Deny
		if e.Decide(in).Outcome == Allow {
			want = cedar.Allow
		}
		reqs = append(reqs, bareRequest{em, req, want})
	}
	return all, reqs
}

// joinedDefault is the default policy files as one document.
func joinedDefault() []byte {
	var b []byte
	for _, name := range slices.Sorted(maps.Keys(DefaultFiles())) {
		b = append(b, DefaultFiles()[name]...)
	}
	return b
}

// BenchmarkCedarBare evaluates the same policies with bare cedar-go
// (PolicySet.IsAuthorized) on the same entities and contexts, built once
// outside the loop: the floor Decide is compared with.
func BenchmarkCedarBare(b *testing.B) {
	all, reqs := bareSetup()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r := &reqs[i]
		if d, _ := all.IsAuthorized(r.ents, r.req); d != r.want {
			b.Fatal(d)
		}
		i = (i + 1) % len(reqs)
	}
}

// BenchmarkDecideRatio interleaves Decide and bare Cedar on the same
// requests, 64 of each in turn, and reports both per-decision times and
// their ratio (decide/bare): on a shared, busy machine the interleaved
// ratio is steadier than two separate benchmarks. Informational; no test
// asserts a timing.
func BenchmarkDecideRatio(b *testing.B) {
	e := NewEngine(Default(), DefaultConfig())
	ins := benchInputs()
	all, reqs := bareSetup()
	var decide, bare time.Duration
	n := 0
	for b.Loop() {
		t := time.Now()
		for i := range ins {
			e.Decide(ins[i])
		}
		t2 := time.Now()
		for i := range reqs {
			all.IsAuthorized(reqs[i].ents, reqs[i].req)
		}
		bare += time.Since(t2)
		decide += t2.Sub(t)
		n += len(ins)
	}
	b.ReportMetric(float64(decide.Nanoseconds())/float64(n), "decide-ns")
	b.ReportMetric(float64(bare.Nanoseconds())/float64(n), "bare-ns")
	b.ReportMetric(float64(decide)/float64(bare), "ratio")
	b.ReportMetric(0, "ns/op")
}
