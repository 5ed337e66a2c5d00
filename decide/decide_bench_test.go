package decide

import (
	"encoding/json"
	"testing"
)

// BenchmarkDecide compares, in one run, the decision point's in-process
// cost (store reads for resources, exceptions and signals on SQLite, the
// engine, the audit record handed to an in-memory auditor) with the
// engine's alone on the same input: the ratio is what gathering costs.
//
//	go test ./decide -run '^$' -bench Decide
func BenchmarkDecide(b *testing.B) {
	f := newFixture(b)
	req := Request{Action: "deploy.prod", Resource: "ci", Params: json.RawMessage(`{"service":"api","version":"1.2.3"}`), IP: "192.0.2.10"}
	if err := f.svc.Signals.Seen(f.ctx, f.sub.User.ID, req.IP); err != nil {
		b.Fatal(err)
	}
	res, err := f.svc.Decide(f.ctx, f.sub, req)
	if err != nil || res.Decision.Outcome != "allow" {
		b.Fatalf("%v %+v", err, res)
	}
	b.Run("service", func(b *testing.B) {
		for b.Loop() {
			f.aud.events = f.aud.events[:0]
			if _, err := f.svc.Decide(f.ctx, f.sub, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	in := res.Input
	b.Run("engine-only", func(b *testing.B) {
		for b.Loop() {
			in.DecisionID = ""
			if d := f.svc.Engine.Decide(in); d.Outcome != "allow" {
				b.Fatal(d)
			}
		}
	})
}
