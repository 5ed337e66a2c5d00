package policy

import (
	"math"

	"github.com/cedar-policy/cedar-go"
)

// never stands for "no such event" in ages passed to Cedar (no UV assertion,
// no posture report), so that "older than N" comparisons fail closed.
const never = 1_000_000_000

// Cedar entity types and the one action of the schema.
var (
	typeUser      = cedar.EntityType("User")
	typeResource  = cedar.EntityType("Resource")
	actionRequest = cedar.NewEntityUID("Action", "request")
)

// entities holds the request's two entities; it implements
// cedar.EntityGetter without building a map per decision.
type entities struct {
	user, resource cedar.Entity
}

func (e *entities) Get(uid cedar.EntityUID) (cedar.Entity, bool) {
	switch uid {
	case e.user.UID:
		return e.user, true
	case e.resource.UID:
		return e.resource, true
	}
	return cedar.Entity{}, false
}

func strSet(ss []string) cedar.Set {
	vs := make([]cedar.Value, len(ss))
	for i, s := range ss {
		vs[i] = cedar.String(s)
	}
	return cedar.NewSet(vs...)
}

func boolean(b bool) cedar.Value { return cedar.Boolean(b) }

// cedarRequest builds the Cedar request and entities for in, matching
// schema.cedarschema exactly (a missing attribute would be an evaluation
// error, hence a deny).
func cedarRequest(in *Input, f *facts, score int, effects []cedar.Value) (*entities, cedar.Request) {
	user := cedar.Entity{
		UID: cedar.NewEntityUID(typeUser, cedar.String(in.Subject.ID)),
		Attributes: cedar.NewRecord(cedar.RecordMap{
			"name":  cedar.String(in.Subject.Name),
			"tier":  cedar.Long(in.Subject.Tier),
			"kind":  cedar.String(in.Subject.Kind),
			"roles": strSet(in.Subject.Roles),
		}),
	}
	var tags cedar.Record
	if len(in.Resource.Labels) > 0 {
		m := make(cedar.RecordMap, len(in.Resource.Labels))
		for k, v := range in.Resource.Labels {
			m[cedar.String(k)] = cedar.String(v)
		}
		tags = cedar.NewRecord(m)
	}
	res := cedar.Entity{
		UID: cedar.NewEntityUID(typeResource, cedar.String(in.Resource.Name)),
		Attributes: cedar.NewRecord(cedar.RecordMap{
			"name": cedar.String(in.Resource.Name),
			"tier": cedar.Long(in.Resource.Tier),
		}),
		Tags: tags,
	}

	postureAge := in.Device.PostureAgeS
	if postureAge < 0 {
		postureAge = never
	}
	uvAge := in.Session.UVAgeS
	if uvAge < 0 {
		uvAge = never
	}
	s := &in.Signals
	ctx := cedar.NewRecord(cedar.RecordMap{
		"action":            cedar.String(in.Action.Name),
		"sensitivity":       cedar.String(in.Action.Sensitivity),
		"sensitivity_level": cedar.Long(sensitivityLevel(in.Action.Sensitivity)),
		"device": cedar.NewRecord(cedar.RecordMap{
			"id":            cedar.String(in.Device.ID),
			"kind":          cedar.String(in.Device.Kind),
			"trust":         cedar.String(in.Device.Trust),
			"compliant":     boolean(in.Device.Compliant),
			"posture_age_s": cedar.Long(postureAge),
			"posture_stale": boolean(f.postureStale),
		}),
		"session": cedar.NewRecord(cedar.RecordMap{
			"tier":     cedar.Long(in.Session.Tier),
			"age_s":    cedar.Long(in.Session.AgeS),
			"idle_s":   cedar.Long(in.Session.IdleS),
			"uv_age_s": cedar.Long(uvAge),
			"has_uv":   boolean(in.Session.UVAgeS >= 0),
			"amr":      strSet(in.Session.AMR),
		}),
		"signals": cedar.NewRecord(cedar.RecordMap{
			"new_network":       boolean(s.NewNetwork),
			"impossible_travel": boolean(s.ImpossibleTravel),
			"travel_kmh":        cedar.Long(int64(math.Min(s.TravelKmh, never))),
			"failed_ceremonies": cedar.Long(s.FailedCeremonies),
			"recent_recovery":   boolean(s.RecentRecovery),
			"clone_signal":      boolean(s.CloneSignal),
			"first_device_use":  boolean(s.FirstDeviceUse),
		}),
		"risk_score":     cedar.Long(score),
		"outside_window": boolean(f.outsideWindow),
		"exceptions":     cedar.NewSet(effects...),
		"grants":         strSet(in.Grants),
	})
	ents := &entities{user: user, resource: res}
	return ents, cedar.Request{
		Principal: user.UID,
		Action:    actionRequest,
		Resource:  res.UID,
		Context:   ctx,
	}
}
