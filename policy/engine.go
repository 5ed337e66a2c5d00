package policy

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/cedar-policy/cedar-go"

	"airlock"
)

// PrefixDecision starts every decision id the engine makes.
const PrefixDecision = "dec_"

// Reason policy ids the engine itself uses (not Cedar policies).
const (
	ReasonNoPolicy        = "no-policy"        // no valid policy set is loaded
	ReasonInvalidInput    = "invalid-input"    // the Input failed validation
	ReasonEvaluationError = "evaluation-error" // a policy failed to evaluate
	ReasonNoPermit        = "no-permit"        // no permit policy was satisfied
	ReasonConfirmed       = "stepup-confirmed" // a confirmation cured a step_up
	ReasonInternal        = "internal-error"   // a bug; the decision is deny
)

// Exception effects the default policies understand. Other effects are
// passed to the policies as they are (context.exceptions) for operators'
// own policies.
const (
	// EffectSkipStepUp lifts the default set's UV-age step-ups
	// (critical-uv-tier0, critical-uv-tier1) for the matching scope. It
	// never lifts the per-transfer confirmation, the shared-station or
	// risk step-ups, or any deny.
	EffectSkipStepUp = "skip_step_up"
	// EffectAllowUnmanagedDevice lifts the default set's "managed device"
	// requirement for tier-0 resources (never the compliance one).
	EffectAllowUnmanagedDevice = "allow_unmanaged_device"
)

// Engine decides requests with a policy set and a risk model. It is safe
// for concurrent use; Swap replaces the set atomically.
type Engine struct {
	set   atomic.Pointer[Set]
	model model
}

// NewEngine returns an engine deciding with set and cfg. A nil set makes
// every decision deny (fail closed). cfg is used as given; call
// cfg.Validate first to reject bad configuration.
func NewEngine(set *Set, cfg Config) *Engine {
	e := &Engine{model: newModel(cfg)}
	e.set.Store(set)
	return e
}

// Swap replaces the policy set (hot reload). A nil set is refused: the
// engine keeps the set it has. It reports whether the set was replaced.
func (e *Engine) Swap(set *Set) bool {
	if set == nil {
		return false
	}
	e.set.Store(set)
	return true
}

// Set returns the policy set in use, or nil when there is none.
// A nil Engine has no set.
func (e *Engine) Set() *Set {
	if e == nil {
		return nil
	}
	return e.set.Load()
}

// Decide judges in. It never panics: an invalid Input, a missing policy
// set, any policy evaluation error or an internal failure is a deny whose
// reasons say why. The decision id is in.DecisionID, or a new one.
func (e *Engine) Decide(in Input) (d Decision) {
	d.ID = in.DecisionID
	if d.ID == "" {
		d.ID = newDecisionID()
	}
	d.Risk.Signals = []Contribution{} // JSON [], not null, on every path
	defer func() {
		if r := recover(); r != nil {
			d = Decision{ID: d.ID, Outcome: Deny, PolicyVersion: d.PolicyVersion, Risk: d.Risk,
				Reasons: []Reason{{Policy: ReasonInternal, Text: fmt.Sprintf("internal error: %v", r)}}}
		}
	}()
	set := e.Set()
	if set == nil {
		return deny(d, Reason{Policy: ReasonNoPolicy, Text: "no valid policy set is loaded"})
	}
	d.PolicyVersion = set.version
	if err := validateInput(&in); err != nil {
		return deny(d, Reason{Policy: ReasonInvalidInput, Text: err.Error()})
	}

	var f facts
	f.postureStale = in.Device.PostureAgeS < 0 || in.Device.PostureAgeS > e.model.postureMaxAge
	f.outsideWindow, f.windowText = outsideWindow(&in.Subject, in.Now)
	d.Risk = e.model.risk(&in, &f)

	var effects []cedar.Value
	for i := range in.Exceptions {
		x := &in.Exceptions[i]
		if x.applies(&in) {
			effects = append(effects, cedar.String(x.Effect))
			d.Exceptions = append(d.Exceptions, x.ID)
		}
	}

	sc := scratchPool.Get().(*scratch)
	req := set.cedarRequest(sc, &in, &f, d.Risk.Score, effects)
	d = set.decide(d, &in, &sc.ents, req)
	sc.ents = entities{}
	scratchPool.Put(sc)
	return d
}

// decide evaluates the request and maps Cedar's answer to Airlock's four
// outcomes (DESIGN.md, "Policy engine"). One evaluation of every policy
// (permits as markers, see Set.eval) says which permits and which forbids
// hold: no forbid and some permit is allow; a plain forbid, or no permit at
// all, is deny (a step-up must not be offered for a request nothing
// permits); curable forbids alone are step_up or approval_required.
func (s *Set) decide(d Decision, in *Input, ents *entities, req cedar.Request) Decision {
	_, diag := s.eval.IsAuthorized(ents, req)
	if len(diag.Errors) > 0 {
		return s.evaluationErrors(d, diag.Errors)
	}
	var pbuf, fbuf [8]cedar.DiagnosticReason
	permits, forbids := pbuf[:0], fbuf[:0]
	stepUp, approval, plain := false, false, false
	for _, r := range diag.Reasons {
		rr := s.rules[r.PolicyID]
		if !rr.forbid {
			permits = append(permits, r)
			continue
		}
		forbids = append(forbids, r)
		switch rr.cure {
		case cureStepUp:
			stepUp = true
		case cureApproval:
			approval = true
		default:
			plain = true
		}
	}
	if len(forbids) == 0 {
		if len(permits) == 0 {
			return deny(d, Reason{Policy: ReasonNoPermit, Text: "no policy permits this request"})
		}
		d.Outcome = Allow
		d.Reasons = s.reasons(permits)
		return d
	}
	d.Reasons = s.reasons(forbids)
	switch {
	case plain:
		d.Outcome = Deny
	case len(permits) == 0:
		// A curable forbid holds, but nothing permits the request: a
		// step-up would cure nothing.
		return deny(d, Reason{Policy: ReasonNoPermit, Text: "no policy permits this request"})
	case approval:
		d.Outcome = ApprovalRequired
		// Every matched approval policy's rule applies, not just one: an
		// operator's stricter rule must never lose to a shipped one by the
		// order of their ids.
		var names []string
		for _, r := range d.Reasons {
			rr := s.rules[cedar.PolicyID(r.Policy)]
			if rr.cure != cureApproval {
				continue
			}
			name := rr.approvalRule
			if name == "" {
				name = DefaultApprovalRule
			}
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		d.Obligations.ApprovalRule = strings.Join(names, ",")
	case stepUp:
		d.Outcome = StepUp
		d.Obligations.Transaction = true
		d.Obligations.MaxAge = math.MaxInt64
		for _, r := range d.Reasons {
			rr := s.rules[cedar.PolicyID(r.Policy)]
			age := max(rr.maxAge, 0) // a step-up without @max_age asks for a fresh confirmation
			if age < d.Obligations.MaxAge || (age == d.Obligations.MaxAge && d.Obligations.ACR == "") {
				d.Obligations.MaxAge = age
				if rr.acr != "" {
					d.Obligations.ACR = rr.acr
				}
			}
		}
		if in.Confirmation != nil {
			d.Outcome = Allow
			d.Obligations = Obligations{}
			d.Reasons = append(d.Reasons, Reason{Policy: ReasonConfirmed,
				Text: "cured by the passkey confirmation of transaction " + in.Confirmation.Transaction})
		}
	}
	return d
}

// evaluationErrors denies: Cedar skips a policy whose evaluation fails, and
// a skipped forbid would silently not apply.
func (s *Set) evaluationErrors(d Decision, errs []cedar.DiagnosticError) Decision {
	d.Reasons = nil
	for _, e := range errs {
		d.Reasons = append(d.Reasons, Reason{Policy: ReasonEvaluationError,
			Text: fmt.Sprintf("policy %s failed to evaluate: %s", e.PolicyID, e.Message)})
	}
	sortReasons(d.Reasons)
	d.Outcome = Deny
	d.Obligations = Obligations{}
	return d
}

// newDecisionID returns "dec_" and 24 hex digits (96 bits), the format of
// airlock.NewID. Decision ids name decisions in the audit log; they are not
// secrets, so they come from math/rand/v2's per-thread ChaCha8 generator
// (seeded by the OS), which costs nanoseconds instead of a system call.
func newDecisionID() string {
	var b [len(PrefixDecision) + 24]byte
	copy(b[:], PrefixDecision)
	hi, lo := rand.Uint64(), rand.Uint32()
	const digits = "0123456789abcdef"
	for i := range 16 {
		b[len(PrefixDecision)+i] = digits[hi>>(60-4*i)&0xf]
	}
	for i := range 8 {
		b[len(PrefixDecision)+16+i] = digits[lo>>(28-4*i)&0xf]
	}
	return string(b[:])
}

func deny(d Decision, r Reason) Decision {
	d.Outcome = Deny
	d.Obligations = Obligations{}
	d.Reasons = append(d.Reasons, r)
	return d
}

// reasons turns Cedar's determining policies into reasons, sorted by id.
func (s *Set) reasons(rs []cedar.DiagnosticReason) []Reason {
	out := make([]Reason, 0, len(rs))
	for _, r := range rs {
		text := s.rules[r.PolicyID].reason
		if text == "" {
			text = "policy " + string(r.PolicyID)
		}
		out = append(out, Reason{Policy: string(r.PolicyID), Text: text})
	}
	sortReasons(out)
	return out
}

func sortReasons(rs []Reason) {
	slices.SortFunc(rs, func(a, b Reason) int { return strings.Compare(a.Policy, b.Policy) })
}

// applies reports whether x is live at in.Now and its scope matches the
// request. An empty scope field matches anything.
func (x *Exception) applies(in *Input) bool {
	return in.Now.Before(x.Expires) &&
		(x.UserID == "" || x.UserID == in.Subject.ID) &&
		(x.Action == "" || x.Action == in.Action.Name) &&
		(x.Resource == "" || x.Resource == in.Resource.Name)
}

// IsLive reports whether x has not expired at in.Now and its scope matches
// in's user, action and resource: whether the engine shows it to the
// policies.
func (x Exception) IsLive(in Input) bool { return x.applies(&in) }

// validateInput rejects an Input that cannot describe a real request, so
// that nonsense is denied instead of evaluated.
func validateInput(in *Input) error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if in.Now.IsZero() {
		bad("no time")
	}
	if in.Subject.ID == "" {
		bad("no subject")
	}
	if !in.Subject.Kind.Valid() {
		bad("subject kind %q is unknown", in.Subject.Kind)
	}
	if !in.Subject.Tier.Valid() {
		bad("subject tier %d is not 0..%d", in.Subject.Tier, airlock.MaxTier)
	}
	if !in.Device.Kind.Valid() {
		bad("device kind %q is unknown", in.Device.Kind)
	}
	if !in.Device.Trust.Valid() {
		bad("device trust %q is unknown", in.Device.Trust)
	}
	if in.Device.PostureAgeS < -1 {
		bad("posture age %d is negative", in.Device.PostureAgeS)
	}
	if !in.Session.Tier.Valid() {
		bad("session tier %d is not 0..%d", in.Session.Tier, airlock.MaxTier)
	} else if in.Session.Tier < in.Subject.Tier {
		// The effective tier is the user's, lowered by the passkey's cap:
		// never more privileged than the user.
		bad("session tier %d is more privileged than the user's tier %d", in.Session.Tier, in.Subject.Tier)
	}
	if in.Session.AgeS < 0 || in.Session.IdleS < 0 || in.Session.UVAgeS < -1 {
		bad("session ages must not be negative")
	}
	if in.Action.Name == "" {
		bad("no action")
	}
	if sensitivityLevel(in.Action.Sensitivity) < 0 {
		bad("action sensitivity %q is unknown", in.Action.Sensitivity)
	}
	if in.Resource.Name == "" {
		bad("no resource")
	}
	if !in.Resource.Tier.Valid() {
		bad("resource tier %d is not 0..%d", in.Resource.Tier, airlock.MaxTier)
	}
	if in.Signals.FailedCeremonies < 0 {
		bad("failed ceremonies %d is negative", in.Signals.FailedCeremonies)
	}
	if t := in.Signals.TravelKmh; math.IsNaN(t) || t < 0 || math.IsInf(t, 0) {
		bad("travel speed %v is not a non-negative number", t)
	}
	if c := in.Confirmation; c != nil && (c.Transaction == "" || c.AgeS < 0) {
		bad("confirmation without transaction or with a negative age")
	}
	if len(errs) > 0 {
		return errors.New("invalid input: " + strings.Join(errs, "; "))
	}
	return nil
}

func sensitivityLevel(s Sensitivity) int64 {
	switch s {
	case Low:
		return 0
	case Medium:
		return 1
	case High:
		return 2
	case Critical:
		return 3
	}
	return -1
}
