package policy

import (
	"encoding/json"
	"testing"
)

// FuzzCompile: no policy text makes Compile panic, and a set that compiles
// decides without an internal error.
func FuzzCompile(f *testing.F) {
	for _, b := range DefaultFiles() {
		f.Add(b)
	}
	f.Add([]byte(okPermit))
	f.Add([]byte("@id(\"x\")\n@owner(\"o\")\n@review_by(\"2030-01-01\")\n@decision(\"step_up\")\n@max_age(\"5\")\nforbid (principal, action, resource) when { resource.hasTag(\"a\") && resource.getTag(\"a\") like \"*x*\" };\n" + okPermit))
	f.Add([]byte("@id(\"x\")\npermit (principal in User::\"a\", action == Action::\"request\", resource) when { context.session.amr.containsAny([\"hwk\"]) && (if context.risk_score > 5 then true else context.signals.clone_signal) };"))
	f.Add([]byte("forbid ("))
	f.Fuzz(func(t *testing.T, text []byte) {
		s, err := Compile(map[string][]byte{"f.cedar": text})
		if err != nil {
			if s != nil {
				t.Fatal("a set and an error")
			}
			return
		}
		d := NewEngine(s, DefaultConfig()).Decide(baseInput())
		for _, r := range d.Reasons {
			if r.Policy == ReasonInternal {
				t.Fatalf("internal error: %s", r.Text)
			}
		}
	})
}

// FuzzDecide: no Input (as the JSON a decision audit event stores) makes
// Decide panic or break its contract.
func FuzzDecide(f *testing.F) {
	for _, in := range benchInputs()[:8] {
		b, _ := json.Marshal(in)
		f.Add(b)
	}
	b, _ := json.Marshal(baseInput())
	f.Add(b)
	f.Add([]byte(`{"subject":{"id":"u","kind":"contractor","window":{"time_zone":"Nowhere/Zone","start_hour":30,"end_hour":-4}},"now":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"signals":{"failed_ceremonies":9223372036854775807,"travel_kmh":1e308},"session":{"uv_age_s":-9223372036854775808}}`))
	e := NewEngine(Default(), DefaultConfig())
	f.Fuzz(func(t *testing.T, data []byte) {
		var in Input
		if json.Unmarshal(data, &in) != nil {
			return
		}
		d := e.Decide(in)
		switch d.Outcome {
		case Allow, StepUp, ApprovalRequired:
		case Deny:
			if len(d.Reasons) == 0 {
				t.Fatal("deny without a reason")
			}
		default:
			t.Fatalf("outcome %q", d.Outcome)
		}
		for _, r := range d.Reasons {
			if r.Policy == ReasonInternal {
				t.Fatalf("internal error: %s", r.Text)
			}
		}
		if d.Outcome == StepUp && !d.Obligations.Transaction {
			t.Fatal("step_up without a transaction")
		}
		if d.Risk.Score < 0 || d.Risk.Score > 100 || d.PolicyVersion == "" || d.ID == "" {
			t.Fatalf("decision %+v", d)
		}
		if _, err := json.Marshal(d); err != nil {
			t.Fatalf("decision does not encode: %v", err)
		}
	})
}
