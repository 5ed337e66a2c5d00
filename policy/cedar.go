package policy

import (
	"math"
	"math/bits"
	"strings"
	"sync"

	"github.com/cedar-policy/cedar-go"

	"airlock"
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

// Get implements cedar.EntityGetter.
func (e *entities) Get(uid cedar.EntityUID) (cedar.Entity, bool) {
	switch uid {
	case e.user.UID:
		return e.user, true
	case e.resource.UID:
		return e.resource, true
	}
	return cedar.Entity{}, false
}

// emptySet is the boxed empty set, shared (Cedar values are immutable).
var emptySet cedar.Value = cedar.NewSet()

func strSet(ss []string) cedar.Set {
	vs := make([]cedar.Value, len(ss))
	for i, s := range ss {
		vs[i] = cedar.String(s)
	}
	return cedar.NewSet(vs...)
}

// Bits of the attributes, for the builders below.
var (
	bUserName, bUserTier, bUserKind, bUserRoles = bit("principal.name"), bit("principal.tier"), bit("principal.kind"), bit("principal.roles")
	bResName, bResTier, bResTags                = bit("resource.name"), bit("resource.tier"), bit("resource.@tags")

	bAction, bDevice, bSession, bSignals  = bit("context.action"), bit("context.device"), bit("context.session"), bit("context.signals")
	bSessionAge, bIdle, bUVAge, bPosture  = bit("context.session_age_s"), bit("context.idle_s"), bit("context.uv_age_s"), bit("context.posture_age_s")
	bRiskScore, bOutsideWindow            = bit("context.risk_score"), bit("context.outside_window")
	bExceptions, bGrants                  = bit("context.exceptions"), bit("context.grants")
	bGranted, bGrantRoles                 = bit("context.granted"), bit("context.grant_roles")
	bActName, bActSensitivity, bActLevel  = bit("context.action.name"), bit("context.action.sensitivity"), bit("context.action.level")
	bDevID, bDevKind, bDevTrust           = bit("context.device.id"), bit("context.device.kind"), bit("context.device.trust")
	bDevCompliant, bDevPostureStale       = bit("context.device.compliant"), bit("context.device.posture_stale")
	bSesID, bSesTier, bSesHasUV, bSesAMR  = bit("context.session.id"), bit("context.session.tier"), bit("context.session.has_uv"), bit("context.session.amr")
	bSigNewNet, bSigTravel                = bit("context.signals.new_network"), bit("context.signals.impossible_travel")
	bSigKmh, bSigFailed                   = bit("context.signals.travel_kmh"), bit("context.signals.failed_ceremonies")
	bSigRecovery, bSigClone, bSigFirstUse = bit("context.signals.recent_recovery"), bit("context.signals.clone_signal"), bit("context.signals.first_device_use")
	bSigOutsideWindow                     = bit("context.signals.outside_window")
	levelUser                             = bUserName | bUserTier | bUserKind | bUserRoles
	levelResource                         = bResName | bResTier
	levelContext                          = bAction | bDevice | bSession | bSignals | bSessionAge | bIdle | bUVAge | bPosture | bRiskScore | bExceptions | bGrants | bGranted | bGrantRoles
	levelAction                           = bActName | bActSensitivity | bActLevel
	levelDevice                           = bDevID | bDevKind | bDevTrust | bDevCompliant | bDevPostureStale
	levelSession                          = bSesID | bSesTier | bSesHasUV | bSesAMR
	levelSignals                          = bSigNewNet | bSigTravel | bSigKmh | bSigFailed | bSigRecovery | bSigClone | bSigFirstUse | bSigOutsideWindow
)

// scratch is per-decision working memory, pooled: the entities Cedar reads
// through and the map the context record is copied from.
type scratch struct {
	ents    entities
	context cedar.RecordMap
}

var scratchPool = sync.Pool{New: func() any { return &scratch{context: make(cedar.RecordMap, 8)} }}

// record builds a Cedar record from the attributes whose bit is in n. The
// put methods box a value only when its attribute is needed.
type record struct {
	n needs
	m cedar.RecordMap
}

func newRecord(n, level needs) record {
	return record{n: n, m: make(cedar.RecordMap, bits.OnesCount64(uint64(n&level)))}
}

func (r record) str(b needs, key cedar.String, v string) {
	if r.n&b != 0 {
		r.m[key] = cedar.String(v)
	}
}

func (r record) long(b needs, key cedar.String, v int64) {
	if r.n&b != 0 {
		r.m[key] = cedar.Long(v)
	}
}

func (r record) boolean(b needs, key cedar.String, v bool) {
	if r.n&b != 0 {
		r.m[key] = cedar.Boolean(v)
	}
}

func (r record) strs(b needs, key cedar.String, v []string) {
	if r.n&b != 0 {
		r.m[key] = strSet(v)
	}
}

func (r record) done() cedar.Record { return cedar.NewRecord(r.m) }

func userEntity(in *Input, n needs) cedar.Entity {
	u := newRecord(n, levelUser)
	u.str(bUserName, "name", in.Subject.Name)
	u.long(bUserTier, "tier", int64(in.Subject.Tier))
	u.str(bUserKind, "kind", string(in.Subject.Kind))
	u.strs(bUserRoles, "roles", in.Subject.Roles)
	return cedar.Entity{UID: cedar.NewEntityUID(typeUser, cedar.String(in.Subject.ID)), Attributes: u.done()}
}

func resourceEntity(in *Input, n needs) cedar.Entity {
	r := newRecord(n, levelResource)
	r.str(bResName, "name", in.Resource.Name)
	r.long(bResTier, "tier", int64(in.Resource.Tier))
	res := cedar.Entity{UID: cedar.NewEntityUID(typeResource, cedar.String(in.Resource.Name)), Attributes: r.done()}
	if n&bResTags != 0 && len(in.Resource.Labels) > 0 {
		m := make(cedar.RecordMap, len(in.Resource.Labels))
		for k, v := range in.Resource.Labels {
			m[cedar.String(k)] = cedar.String(v)
		}
		res.Tags = cedar.NewRecord(m)
	}
	return res
}

// The context's records are cached by the facts they are built from; each
// key holds only the facts the set's policies read (the others stay zero).

type actionKey struct {
	name        string
	sensitivity Sensitivity
}

func (k actionKey) record(n needs) cedar.Record {
	r := newRecord(n, levelAction)
	r.str(bActName, "name", k.name)
	r.str(bActSensitivity, "sensitivity", string(k.sensitivity))
	r.long(bActLevel, "level", sensitivityLevel(k.sensitivity))
	return r.done()
}

type deviceKey struct {
	id               string
	kind             airlock.DeviceKind
	trust            airlock.TrustState
	compliant, stale bool
}

func (k deviceKey) record(n needs) cedar.Record {
	r := newRecord(n, levelDevice)
	r.str(bDevID, "id", k.id)
	r.str(bDevKind, "kind", string(k.kind))
	r.str(bDevTrust, "trust", string(k.trust))
	r.boolean(bDevCompliant, "compliant", k.compliant)
	r.boolean(bDevPostureStale, "posture_stale", k.stale)
	return r.done()
}

type sessionKey struct {
	id    string
	tier  airlock.Tier
	hasUV bool
	amr   string // the AMR values joined by NUL
}

func (k sessionKey) record(n needs) cedar.Record {
	r := newRecord(n, levelSession)
	r.str(bSesID, "id", k.id)
	r.long(bSesTier, "tier", int64(k.tier))
	r.boolean(bSesHasUV, "has_uv", k.hasUV)
	if n&bSesAMR != 0 {
		var amr []string
		if k.amr != "" {
			amr = strings.Split(k.amr, "\x00")
		}
		r.strs(bSesAMR, "amr", amr)
	}
	return r.done()
}

type signalsKey struct {
	newNetwork, travel, recovery, clone, firstUse, outside bool
	kmh, failed                                            int64
}

func (k signalsKey) record(n needs) cedar.Record {
	r := newRecord(n, levelSignals)
	r.boolean(bSigNewNet, "new_network", k.newNetwork)
	r.boolean(bSigTravel, "impossible_travel", k.travel)
	r.long(bSigKmh, "travel_kmh", k.kmh)
	r.long(bSigFailed, "failed_ceremonies", k.failed)
	r.boolean(bSigRecovery, "recent_recovery", k.recovery)
	r.boolean(bSigClone, "clone_signal", k.clone)
	r.boolean(bSigFirstUse, "first_device_use", k.firstUse)
	r.boolean(bSigOutsideWindow, "outside_window", k.outside)
	return r.done()
}

// keep returns v when bit b is needed, else the zero value, so that facts
// no policy reads do not split the caches.
func keep[T any](n, b needs, v T) T {
	if n&b != 0 {
		return v
	}
	var zero T
	return zero
}

// cedarRequest builds the Cedar request and entities for in, matching
// schema.cedarschema, with only the attributes in s.needs (those the
// policies can read; a missing attribute that a policy did read would be an
// evaluation error, hence a deny). Entities and the context's records come
// from s's caches when identical ones were built before; the context itself
// is built fresh.
func (s *Set) cedarRequest(sc *scratch, in *Input, f *facts, score int, effects []cedar.Value) cedar.Request {
	n := s.needs
	sc.ents = entities{user: s.cache.user(in, n), resource: s.cache.resource(in, n)}
	ents := &sc.ents

	// The context map is only read by cedar.NewRecord, which copies it, so
	// the scratch map is reused from decision to decision.
	clear(sc.context)
	c := record{n: n, m: sc.context}
	if n&bAction != 0 {
		c.m["action"] = s.cache.actions.get(actionKey{
			name:        keep(n, bActName, in.Action.Name),
			sensitivity: keep(n, bActSensitivity|bActLevel, in.Action.Sensitivity),
		}, n)
	}
	if n&bDevice != 0 {
		c.m["device"] = s.cache.devices.get(deviceKey{
			id:        keep(n, bDevID, in.Device.ID),
			kind:      keep(n, bDevKind, in.Device.Kind),
			trust:     keep(n, bDevTrust, in.Device.Trust),
			compliant: keep(n, bDevCompliant, in.Device.Compliant),
			stale:     keep(n, bDevPostureStale, f.postureStale),
		}, n)
	}
	if n&bSession != 0 {
		k := sessionKey{
			id:    keep(n, bSesID, in.Session.ID),
			tier:  keep(n, bSesTier, in.Session.Tier),
			hasUV: keep(n, bSesHasUV, in.Session.UVAgeS >= 0),
		}
		if n&bSesAMR != 0 {
			k.amr = strings.Join(in.Session.AMR, "\x00")
		}
		c.m["session"] = s.cache.sessions.get(k, n)
	}
	if n&bSignals != 0 {
		sig := &in.Signals
		c.m["signals"] = s.cache.signals.get(signalsKey{
			newNetwork: keep(n, bSigNewNet, sig.NewNetwork),
			travel:     keep(n, bSigTravel, sig.ImpossibleTravel),
			kmh:        keep(n, bSigKmh, int64(math.Min(sig.TravelKmh, never))),
			failed:     keep(n, bSigFailed, int64(sig.FailedCeremonies)),
			recovery:   keep(n, bSigRecovery, sig.RecentRecovery),
			clone:      keep(n, bSigClone, sig.CloneSignal),
			firstUse:   keep(n, bSigFirstUse, sig.FirstDeviceUse),
			outside:    keep(n, bSigOutsideWindow, f.outsideWindow),
		}, n)
	}
	uvAge, postureAge := in.Session.UVAgeS, in.Device.PostureAgeS
	if uvAge < 0 {
		uvAge = never
	}
	if postureAge < 0 {
		postureAge = never
	}
	c.long(bSessionAge, "session_age_s", in.Session.AgeS)
	c.long(bIdle, "idle_s", in.Session.IdleS)
	c.long(bUVAge, "uv_age_s", uvAge)
	c.long(bPosture, "posture_age_s", postureAge)
	c.long(bRiskScore, "risk_score", int64(score))
	if n&bExceptions != 0 {
		if len(effects) == 0 {
			c.m["exceptions"] = emptySet
		} else {
			c.m["exceptions"] = cedar.NewSet(effects...)
		}
	}
	c.strs(bGrants, "grants", in.Grants)
	c.boolean(bGranted, "granted", in.Granted)
	c.strs(bGrantRoles, "grant_roles", in.GrantRoles)
	return cedar.Request{
		Principal: ents.user.UID,
		Action:    actionRequest,
		Resource:  ents.resource.UID,
		Context:   c.done(),
	}
}
