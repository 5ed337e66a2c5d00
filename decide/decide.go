// Package decide is Airlock's policy decision point for requests: it turns
// "this session wants to do this action on this resource with these
// parameters" into a policy.Input built from the store (user, device and its
// compliance, session ages, live exceptions, the catalog, gathered risk
// signals), asks the policy engine, audits the decision before anyone acts
// on it, and manages the step-up transactions that a step_up answer opens
// and the single-use proofs that close them.
//
// It is the domain behind POST /v1/decide and behind the enforcement of
// Airlock's own admin API; it knows no HTTP.
package decide

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"airlock"
	"airlock/device"
	"airlock/passkey"
	"airlock/policy"
	"airlock/risk"
)

// DefaultStepUpTTL is how long a step-up transaction may be confirmed: the
// ceremony lifetime.
const DefaultStepUpTTL = 5 * time.Minute

// Reason policy ids the decision edge itself uses (beside the engine's).
const (
	ReasonUnknownAction   = "unknown-action"
	ReasonUnknownResource = "unknown-resource"
	ReasonProofRefused    = "stepup-proof-refused"
)

// Auditor records audit events durably; *audit.Log satisfies it.
type Auditor interface {
	Record(ctx context.Context, e airlock.AuditEvent) error
}

// Service decides requests. Fill the fields, then use it; it is safe for
// concurrent use.
type Service struct {
	Store   airlock.Store
	Engine  *policy.Engine
	Catalog Catalog
	Signals *risk.Gatherer
	Audit   Auditor
	// DeviceRules judge the device's compliance for the policy input.
	DeviceRules device.Rules
	// BaseURL is the public base URL; step-up pages are BaseURL/stepup/{id}.
	BaseURL string
	// StepUpTTL bounds how long a transaction may be confirmed (0:
	// DefaultStepUpTTL).
	StepUpTTL time.Duration
	// Grants finds the active elevation grants of a session (package
	// elevate); nil means no grants, so resources labelled access=jit stay
	// closed under the default policy.
	Grants GrantSource
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// GrantSource finds the grants in force for a session; *elevate.Service
// satisfies it. It checks that each grant still rests on a live session, a
// trusted and compliant device, an unrevoked passkey and an enabled user.
type GrantSource interface {
	ActiveGrants(ctx context.Context, sub Subject) ([]*airlock.Grant, error)
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Subject is the authenticated session a request comes from, as the edge
// found it (the edge checked that it is live and its user, device and
// passkey still valid).
type Subject struct {
	Session *airlock.Session
	User    *airlock.User
	Device  *airlock.Device
	// IdleS is the time since the session was last seen before this
	// request, in seconds.
	IdleS int64
}

// Request is what the enforcement point asks about.
type Request struct {
	Action   string
	Resource string
	// Params are the request's parameters (a JSON object, or empty).
	Params json.RawMessage
	// IP and UserAgent describe the end user's request; Client names the
	// requesting application (shown on the step-up page).
	IP        string
	UserAgent string
	Client    string
	// Proof is a step-up proof presented for this request, or empty.
	Proof string
	// RequestID correlates the audit record with the edge's request.
	RequestID string
	// Target, when set, is the resource decided on instead of looking up
	// Resource (which must equal Target.Name): in-process callers use it
	// for resources that are not in the catalog, such as the synthetic
	// resource "tier:N" of a tier-scoped access request. The HTTP edge
	// never sets it.
	Target *airlock.Resource
	// Correlation ids of the elevation records this decision is about,
	// copied into its audit record.
	AccessRequestID string
	GrantID         string
}

// Result is a decision and what it opened.
type Result struct {
	Decision policy.Decision
	Input    policy.Input
	// StepUp is the transaction a step_up opened, or the one whose proof
	// this request presented.
	StepUp *airlock.StepUp
	// URL is the step-up page of a step_up's transaction.
	URL string
}

// Decide judges req from sub and audits the decision ("decision.<outcome>")
// before returning it. The policies see the user's live exceptions and
// those for every user, except the ones this user created (nobody exempts
// themselves). An unknown action or resource is a deny with a reason; a step_up opens a transaction; a presented proof is consumed on
// its first presentation and cures a step_up only when it was made for the
// identical action, resource, parameters and session and has not expired —
// otherwise the decision is deny with reason ReasonProofRefused. Any store
// or audit failure is returned as an error and no decision is given (fail
// closed): the caller must treat it as deny.
func (s *Service) Decide(ctx context.Context, sub Subject, req Request) (*Result, error) {
	now := s.now()
	params, err := CanonicalParams(req.Params)
	if err != nil {
		return nil, err
	}
	pd := ParamsDigest(params)
	in := s.baseInput(sub, now)
	in.Action.Name, in.Resource.Name = req.Action, req.Resource

	res := &Result{}
	sens, okAction := s.Catalog.Sensitivity(req.Action, req.Resource)
	var resource airlock.Resource
	okResource := false
	if req.Target != nil {
		if req.Target.Name != req.Resource || !req.Target.Tier.Valid() {
			return nil, airlock.Errorf(airlock.EINVALID, "decide: target %q does not match resource %q", req.Target.Name, req.Resource)
		}
		resource, okResource = *req.Target, true
		if resource.Labels == nil {
			resource.Labels = map[string]string{}
		}
	} else if resource, okResource, err = s.resource(ctx, req.Resource); err != nil {
		return nil, err
	}
	// A presented proof is spent on its first presentation, whatever the
	// request names.
	var refused *policy.Reason
	if req.Proof != "" {
		t, why, err := s.redeem(ctx, sub, req, pd, now)
		if err != nil {
			return nil, err
		}
		res.StepUp = t
		if why != "" {
			refused = &policy.Reason{Policy: ReasonProofRefused, Text: why}
		} else {
			in.Confirmation = &policy.Confirmation{Transaction: t.ID, AgeS: int64(now.Sub(t.CompletedAt) / time.Second)}
		}
	}
	var unknown *policy.Reason
	switch {
	case !okAction:
		unknown = &policy.Reason{Policy: ReasonUnknownAction, Text: fmt.Sprintf("action %q is not in the catalog", clip(req.Action))}
	case !okResource:
		unknown = &policy.Reason{Policy: ReasonUnknownResource, Text: fmt.Sprintf("resource %q is not known", clip(req.Resource))}
	default:
		in.Action.Sensitivity = sens
		in.Resource = policy.Resource{Name: resource.Name, Tier: resource.Tier, Labels: resource.Labels}
		excs, err := s.Store.ListLiveExceptions(ctx, sub.User.ID, now)
		if err != nil {
			return nil, err
		}
		for _, x := range excs {
			if x.UserID == "" && x.CreatedBy == sub.User.ID {
				// An exception for every user is for everyone but the
				// admin who made it: nobody exempts themselves.
				continue
			}
			in.Exceptions = append(in.Exceptions, policy.Exception{ID: x.ID, UserID: x.UserID, Action: x.Action,
				Resource: x.Resource, Effect: x.Effect, Owner: x.Owner, Reason: x.Reason, Expires: x.ExpiresAt})
		}
		if err := s.grants(ctx, sub, resource, &in); err != nil {
			return nil, err
		}
		if in.Signals, err = s.Signals.Gather(ctx, risk.Subject{UserID: sub.User.ID, DeviceID: sub.Device.ID,
			SessionCreated: sub.Session.CreatedAt, IP: req.IP}); err != nil {
			return nil, err
		}
	}

	if unknown != nil {
		// Nothing to evaluate: the request names something the catalog
		// does not know.
		reasons := []policy.Reason{*unknown}
		if refused != nil {
			reasons = append(reasons, *refused)
		}
		res.Decision = policy.Decision{ID: airlock.NewID(policy.PrefixDecision), Outcome: policy.Deny,
			Reasons: reasons, Risk: policy.Risk{Signals: []policy.Contribution{}}}
		if set := s.Engine.Set(); set != nil {
			res.Decision.PolicyVersion = set.Version()
		}
	} else {
		res.Decision = s.Engine.Decide(in)
		if refused != nil {
			// The policy's own verdict is kept in the reasons; a refused
			// proof never lets the request through.
			res.Decision.Outcome = policy.Deny
			res.Decision.Obligations = policy.Obligations{}
			res.Decision.Reasons = append(res.Decision.Reasons, *refused)
		}
	}
	in.DecisionID = res.Decision.ID
	res.Input = in

	if res.Decision.Outcome == policy.StepUp {
		t, err := s.open(ctx, sub, req, params, pd, res.Decision, now)
		if err != nil {
			return nil, err
		}
		res.StepUp = t
		res.URL = s.StepUpURL(t.ID)
	}
	if err := s.record(ctx, sub, req, pd, res); err != nil {
		return nil, err
	}
	return res, nil
}

// grants puts the session's active grants into the input: their scopes,
// and whether one covers resource (with the roles granted on it).
func (s *Service) grants(ctx context.Context, sub Subject, resource airlock.Resource, in *policy.Input) error {
	if s.Grants == nil {
		return nil
	}
	gs, err := s.Grants.ActiveGrants(ctx, sub)
	if err != nil {
		return err
	}
	for _, g := range gs {
		in.Grants = append(in.Grants, g.Scope.String())
		if g.Scope.Covers(resource.Name, resource.Tier) {
			in.Granted = true
			if !g.Scope.IsTier && !slices.Contains(in.GrantRoles, g.Scope.Role) {
				in.GrantRoles = append(in.GrantRoles, g.Scope.Role)
			}
		}
	}
	return nil
}

// LookupResource finds a resource by name in the configuration, then in the
// store (ENOTFOUND if neither has it).
func (s *Service) LookupResource(ctx context.Context, name string) (*airlock.Resource, error) {
	r, ok, err := s.resource(ctx, name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, airlock.Errorf(airlock.ENOTFOUND, "resource %q is not known", clip(name))
	}
	return &r, nil
}

// StepUpURL is the page where the person confirms transaction id.
func (s *Service) StepUpURL(id string) string {
	return strings.TrimRight(s.BaseURL, "/") + "/stepup/" + id
}

// baseInput fills what the session, user and device say.
func (s *Service) baseInput(sub Subject, now time.Time) policy.Input {
	u, d, ss := sub.User, sub.Device, sub.Session
	c := device.Evaluate(d, s.DeviceRules, now)
	postureAge := int64(-1)
	if !d.Posture.ReportedAt.IsZero() {
		postureAge = int64(c.PostureAge / time.Second)
	}
	uvAge := int64(-1)
	if !ss.LastUVAt.IsZero() {
		uvAge = max(0, int64(now.Sub(ss.LastUVAt)/time.Second))
	}
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	amr := ss.AMR
	if amr == nil {
		amr = []string{}
	}
	return policy.Input{
		Subject: policy.Subject{ID: u.ID, Name: u.Name, Roles: roles, Tier: u.Tier, Kind: u.Kind, Window: u.Window},
		Device:  policy.Device{ID: d.ID, Kind: d.Kind, Trust: d.Trust, Compliant: c.Compliant, PostureAgeS: postureAge},
		Session: policy.Session{ID: ss.ID, Tier: ss.Tier, AgeS: max(0, int64(now.Sub(ss.AuthTime)/time.Second)),
			IdleS: max(0, sub.IdleS), UVAgeS: uvAge, AMR: amr},
		Now: now,
	}
}

// resource finds a resource in the configuration, then in the store.
func (s *Service) resource(ctx context.Context, name string) (airlock.Resource, bool, error) {
	if r, ok := s.Catalog.Resource(name); ok {
		labels := r.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		return airlock.Resource{Name: r.Name, Tier: r.Tier, Labels: labels}, true, nil
	}
	if !ResourcePattern.MatchString(name) {
		return airlock.Resource{}, false, nil
	}
	r, err := s.Store.FindResourceByName(ctx, name)
	if airlock.ErrorCode(err) == airlock.ENOTFOUND {
		return airlock.Resource{}, false, nil
	} else if err != nil {
		return airlock.Resource{}, false, err
	}
	return *r, true, nil
}

// redeem consumes a presented proof (whatever happens next, it is spent)
// and says why it does not fit this request, or "" when it does.
func (s *Service) redeem(ctx context.Context, sub Subject, req Request, pd []byte, now time.Time) (*airlock.StepUp, string, error) {
	t, err := s.Store.ConsumeStepUpProof(ctx, passkey.ProofHash(req.Proof), now)
	switch airlock.ErrorCode(err) {
	case "":
	case airlock.ENOTFOUND:
		return nil, "the step-up proof is unknown", nil
	case airlock.ECONFLICT:
		return nil, "the step-up proof was already used", nil
	default:
		return nil, "", err
	}
	switch {
	case !now.Before(t.ProofExpiresAt):
		return t, fmt.Sprintf("the step-up proof expired at %s", expiryText(t.ProofExpiresAt)), nil
	case subtle.ConstantTimeCompare([]byte(t.SessionID), []byte(sub.Session.ID)) != 1:
		return t, "the step-up proof was made for another session", nil
	case t.Action != req.Action || t.Resource != req.Resource:
		return t, fmt.Sprintf("the step-up proof was made for %s on %s, not this request", t.Action, t.Resource), nil
	case !bytes.Equal(t.ParamsDigest, pd):
		return t, "the step-up proof was made for other parameters", nil
	}
	return t, "", nil
}

// open creates the transaction of a step_up decision.
func (s *Service) open(ctx context.Context, sub Subject, req Request, params, pd []byte, d policy.Decision, now time.Time) (*airlock.StepUp, error) {
	ttl := s.StepUpTTL
	if ttl <= 0 {
		ttl = DefaultStepUpTTL
	}
	var texts []string
	for _, r := range d.Reasons {
		texts = append(texts, r.Text)
	}
	t := &airlock.StepUp{ID: airlock.NewID(airlock.PrefixStepUp), SessionID: sub.Session.ID, UserID: sub.User.ID,
		DeviceID: sub.Device.ID, Action: req.Action, Resource: req.Resource, Params: params, ParamsDigest: pd,
		Client: clip(req.Client), DecisionID: d.ID, ACR: d.Obligations.ACR, MaxAge: d.Obligations.MaxAge,
		Reason: clip(strings.Join(texts, "; ")), IP: req.IP, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	t.Digest = TransactionDigest(t)
	if err := s.Store.CreateStepUp(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}

// record audits the decision with enough of its input to replay it.
func (s *Service) record(ctx context.Context, sub Subject, req Request, pd []byte, res *Result) error {
	d := res.Decision
	outcome := airlock.OutcomeDenied
	if d.Outcome == policy.Allow {
		outcome = airlock.OutcomeSuccess
	}
	var reasons []string
	for _, r := range d.Reasons {
		reasons = append(reasons, r.Policy)
	}
	e := airlock.AuditEvent{Type: "decision." + string(d.Outcome), Actor: sub.User.ID, Subject: req.Resource, Outcome: outcome,
		Reason: strings.Join(reasons, ","), UserID: sub.User.ID, SessionID: sub.Session.ID, DeviceID: sub.Device.ID,
		DecisionID: d.ID, RequestID: req.RequestID, IP: req.IP,
		Details: map[string]any{
			"input":          jsonValue(res.Input),
			"risk":           jsonValue(d.Risk),
			"reasons":        jsonValue(d.Reasons),
			"policy_version": d.PolicyVersion,
			"obligations":    jsonValue(d.Obligations),
			"action":         req.Action,
			"resource":       req.Resource,
			"params_digest":  b64(pd),
		}}
	if req.AccessRequestID != "" {
		// The audit record's request id is the access request; the edge's
		// HTTP request id moves to the details.
		e.RequestID = req.AccessRequestID
		if req.RequestID != "" {
			e.Details["http_request_id"] = req.RequestID
		}
	}
	e.GrantID = req.GrantID
	if req.Client != "" {
		e.Details["client"] = clip(req.Client)
	}
	if req.UserAgent != "" {
		e.Details["user_agent"] = clip(req.UserAgent)
	}
	if len(d.Exceptions) > 0 {
		e.Details["exceptions"] = jsonValue(d.Exceptions)
	}
	if t := res.StepUp; t != nil {
		e.TransactionID = t.ID
		if req.Proof != "" {
			e.Details["stepup_proof"] = "presented"
		}
	}
	return s.Audit.Record(ctx, e)
}

// jsonValue returns v as encoding/json would read it back, for audit
// details.
func jsonValue(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("unencodable: %v", err)
	}
	var out any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return string(b)
	}
	return out
}
