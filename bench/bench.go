// Package bench compares Airlock's policy engine (Cedar, cedar-go) with the
// same default policy written in Rego and evaluated by OPA. It is a separate
// Go module so that Airlock itself never depends on OPA.
//
//	cd bench && go test -run '^$' -bench . -benchtime 2s
package bench

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/cedar-policy/cedar-go"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"airlock"
	"airlock/policy"
)

//go:embed rego/airlock.rego
var regoPolicy string

// Doc is one request's facts in the shape of Airlock's Cedar schema
// (principal, resource, context), as plain JSON-like values.
type Doc struct {
	Principal map[string]any
	Resource  map[string]any
	Tags      map[string]string
	Context   map[string]any
	Confirmed bool
	userID    string
}

// Facts computes the request facts Airlock's engine would give Cedar for in,
// including the risk score from e and the derived signals, with every
// schema attribute present.
func Facts(in policy.Input, e *policy.Engine) Doc {
	d := e.Decide(in)
	var effects []any
	for _, x := range in.Exceptions {
		if x.IsLive(in) {
			effects = append(effects, x.Effect)
		}
	}
	outside := false
	if in.Subject.Kind == airlock.UserContractor {
		outside = in.Subject.Window == nil
		if !outside {
			ok, _ := policy.InWindow(*in.Subject.Window, in.Now)
			outside = !ok
		}
	}
	never := int64(1_000_000_000)
	uv, posture := in.Session.UVAgeS, in.Device.PostureAgeS
	if uv < 0 {
		uv = never
	}
	if posture < 0 {
		posture = never
	}
	level := map[policy.Sensitivity]int64{policy.Low: 0, policy.Medium: 1, policy.High: 2, policy.Critical: 3}
	s := in.Signals
	return Doc{
		userID: in.Subject.ID,
		Principal: map[string]any{"name": in.Subject.Name, "tier": int64(in.Subject.Tier), "kind": string(in.Subject.Kind),
			"roles": strs(in.Subject.Roles)},
		Resource: map[string]any{"name": in.Resource.Name, "tier": int64(in.Resource.Tier)},
		Tags:     in.Resource.Labels,
		Context: map[string]any{
			"action": map[string]any{"name": in.Action.Name, "sensitivity": string(in.Action.Sensitivity), "level": level[in.Action.Sensitivity]},
			"device": map[string]any{"id": in.Device.ID, "kind": string(in.Device.Kind), "trust": string(in.Device.Trust),
				"compliant": in.Device.Compliant, "posture_stale": posture > 86400},
			"session": map[string]any{"id": in.Session.ID, "tier": int64(in.Session.Tier), "has_uv": in.Session.UVAgeS >= 0,
				"amr": strs(in.Session.AMR)},
			"signals": map[string]any{"new_network": s.NewNetwork, "impossible_travel": s.ImpossibleTravel,
				"travel_kmh": int64(min(s.TravelKmh, 1e9)), "failed_ceremonies": int64(s.FailedCeremonies),
				"recent_recovery": s.RecentRecovery, "clone_signal": s.CloneSignal, "first_device_use": s.FirstDeviceUse,
				"outside_window": outside},
			"session_age_s": in.Session.AgeS, "idle_s": in.Session.IdleS, "uv_age_s": uv, "posture_age_s": posture,
			"risk_score": int64(d.Risk.Score), "exceptions": effects, "grants": strs(in.Grants),
			"granted": in.Granted, "grant_roles": strs(in.GrantRoles),
		},
		Confirmed: in.Confirmation != nil,
	}
}

func strs(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// cedarValue converts a JSON-like value to Cedar.
func cedarValue(v any) cedar.Value {
	switch v := v.(type) {
	case string:
		return cedar.String(v)
	case bool:
		return cedar.Boolean(v)
	case int64:
		return cedar.Long(v)
	case []any:
		vs := make([]cedar.Value, len(v))
		for i, x := range v {
			vs[i] = cedarValue(x)
		}
		return cedar.NewSet(vs...)
	case map[string]any:
		m := cedar.RecordMap{}
		for k, x := range v {
			m[cedar.String(k)] = cedarValue(x)
		}
		return cedar.NewRecord(m)
	}
	panic(fmt.Sprintf("bench: no Cedar value for %T", v))
}

// CedarRequest builds the Cedar entities and request for d, every attribute
// present (what a caller of bare cedar-go would build).
func CedarRequest(d Doc) (cedar.EntityMap, cedar.Request) {
	user := cedar.Entity{UID: cedar.NewEntityUID("User", cedar.String(d.userID)), Attributes: cedarValue(d.Principal).(cedar.Record)}
	tags := cedar.RecordMap{}
	for k, v := range d.Tags {
		tags[cedar.String(k)] = cedar.String(v)
	}
	res := cedar.Entity{UID: cedar.NewEntityUID("Resource", cedar.String(d.Resource["name"].(string))),
		Attributes: cedarValue(d.Resource).(cedar.Record), Tags: cedar.NewRecord(tags)}
	return cedar.EntityMap{user.UID: user, res.UID: res}, cedar.Request{
		Principal: user.UID, Action: cedar.NewEntityUID("Action", "request"), Resource: res.UID,
		Context: cedarValue(d.Context).(cedar.Record),
	}
}

// CedarSet returns the default policy files as one cedar-go PolicySet,
// policies named by their @id.
func CedarSet() (*cedar.PolicySet, error) {
	ps := cedar.NewPolicySet()
	for name, b := range policy.DefaultFiles() {
		list, err := cedar.NewPolicyListFromBytes(name, b)
		if err != nil {
			return nil, err
		}
		for _, p := range list {
			ps.Add(cedar.PolicyID(p.Annotations()["id"]), p)
		}
	}
	return ps, nil
}

// OPAInput converts d to OPA's input value, once, outside any timed loop.
func OPAInput(d Doc) (ast.Value, error) {
	resource := map[string]any{"tags": d.Tags}
	for k, v := range d.Resource {
		resource[k] = v
	}
	return ast.InterfaceToValue(map[string]any{
		"principal": d.Principal, "resource": resource, "context": d.Context, "confirmed": d.Confirmed,
	})
}

// PrepareOPA compiles the Rego policy into a prepared query for
// data.airlock.decision.
func PrepareOPA(ctx context.Context) (rego.PreparedEvalQuery, error) {
	return rego.New(rego.Query("data.airlock.decision"), rego.Module("airlock.rego", regoPolicy)).PrepareForEval(ctx)
}

// OPADecision is the Rego policy's answer.
type OPADecision struct {
	Outcome string
	MaxAge  int64
}

// EvalOPA evaluates the prepared query on a converted input.
func EvalOPA(ctx context.Context, q rego.PreparedEvalQuery, input ast.Value) (OPADecision, error) {
	rs, err := q.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return OPADecision{}, err
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return OPADecision{}, fmt.Errorf("bench: %d results", len(rs))
	}
	m, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return OPADecision{}, fmt.Errorf("bench: result %T", rs[0].Expressions[0].Value)
	}
	var age int64
	if n, ok := m["max_age"].(interface{ Int64() (int64, error) }); ok {
		age, _ = n.Int64()
	}
	out, _ := m["outcome"].(string)
	return OPADecision{Outcome: out, MaxAge: age}, nil
}
