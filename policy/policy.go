// Package policy is Airlock's decision engine: risk signals plus Cedar
// policies turn a request into one of four outcomes (allow, step_up,
// approval_required, deny), with reasons, a risk score whose every
// contribution is explained, obligations and the policy version.
//
// The package is pure: it performs no I/O. The caller hands it everything it
// needs in an Input (subject, device, session, action, resource, risk
// signals, exceptions, the time) and gets a Decision back. This keeps
// decisions fast, testable and replayable (policy simulate re-runs recorded
// Inputs against a candidate policy set). Loading policy files from a
// directory and hot reload live in the edges, which hand the file contents to
// Compile.
//
// Every Input and Decision field round-trips through encoding/json with the
// tags below: decision audit events store the Input so that it can be
// replayed. Durations are whole seconds.
package policy

import (
	"time"

	"airlock"
)

// Outcome is what the engine answers.
type Outcome string

// Outcomes.
const (
	Allow            Outcome = "allow"
	StepUp           Outcome = "step_up"
	ApprovalRequired Outcome = "approval_required"
	Deny             Outcome = "deny"
)

// Sensitivity grades how much harm an action can do.
type Sensitivity string

// Sensitivities, from least to most harmful.
const (
	Low      Sensitivity = "low"
	Medium   Sensitivity = "medium"
	High     Sensitivity = "high"
	Critical Sensitivity = "critical"
)

// Subject is the person asking.
type Subject struct {
	ID     string                `json:"id"`
	Name   string                `json:"name"`
	Roles  []string              `json:"roles"`
	Tier   airlock.Tier          `json:"tier"`
	Kind   airlock.UserKind      `json:"kind"`
	Window *airlock.AccessWindow `json:"window,omitempty"`
}

// Device is the device the session runs on.
type Device struct {
	ID        string             `json:"id"`
	Kind      airlock.DeviceKind `json:"kind"`
	Trust     airlock.TrustState `json:"trust"`
	Compliant bool               `json:"compliant"`
	// PostureAgeS is the age of the last posture report in seconds, or -1
	// when the device never reported.
	PostureAgeS int64 `json:"posture_age_s"`
}

// Session is the signed-in session making the request.
type Session struct {
	ID   string       `json:"id"`
	Tier airlock.Tier `json:"tier"` // effective tier
	AgeS int64        `json:"age_s"`
	// IdleS is the time since the session was last seen before this request.
	IdleS int64 `json:"idle_s"`
	// UVAgeS is the time since the last user-verified passkey assertion,
	// or -1 when there was none.
	UVAgeS int64    `json:"uv_age_s"`
	AMR    []string `json:"amr"`
}

// Action is what the subject wants to do, with its sensitivity resolved from
// the action catalog.
type Action struct {
	Name        string      `json:"name"`
	Sensitivity Sensitivity `json:"sensitivity"`
}

// Resource is what the action is done to.
type Resource struct {
	Name   string            `json:"name"`
	Tier   airlock.Tier      `json:"tier"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Signals are the risk facts that need history or outside data, gathered by
// the caller before evaluation. Facts derivable from the rest of the Input
// (session age, idle time, UV age, posture, contractor window) are computed
// by the engine itself.
type Signals struct {
	// NewNetwork: the request's IPv4 /24 or IPv6 /48 was not seen for this
	// user in the last 30 days.
	NewNetwork bool `json:"new_network"`
	// ImpossibleTravel: the distance from the user's previous location
	// over the time between them exceeds a plausible speed (only with a
	// GeoIP database). TravelKmh is the implied speed.
	ImpossibleTravel bool    `json:"impossible_travel"`
	TravelKmh        float64 `json:"travel_kmh,omitempty"`
	// FailedCeremonies counts the user's failed passkey ceremonies in the
	// velocity window (default the last 15 minutes).
	FailedCeremonies int `json:"failed_ceremonies"`
	// RecentRecovery: the account completed a recovery in the last 7 days.
	RecentRecovery bool `json:"recent_recovery"`
	// CloneSignal: a sign-count regression was seen on one of the user's
	// credentials.
	CloneSignal bool `json:"clone_signal"`
	// FirstDeviceUse: this is the first session on this device.
	FirstDeviceUse bool `json:"first_device_use"`
}

// Exception is a time-bounded, owned deviation from policy, visible to
// policies as context. It is ignored once expired.
type Exception struct {
	ID       string    `json:"id"`
	UserID   string    `json:"user_id,omitempty"`  // empty: any user
	Action   string    `json:"action,omitempty"`   // empty: any action
	Resource string    `json:"resource,omitempty"` // empty: any resource
	Effect   string    `json:"effect"`             // e.g. "allow" or "skip_step_up"; see the policies
	Owner    string    `json:"owner"`
	Reason   string    `json:"reason"`
	Expires  time.Time `json:"expires"`
}

// Input is everything one decision depends on.
type Input struct {
	// DecisionID names the decision; the engine fills a new one when empty.
	DecisionID string      `json:"decision_id,omitempty"`
	Subject    Subject     `json:"subject"`
	Device     Device      `json:"device"`
	Session    Session     `json:"session"`
	Action     Action      `json:"action"`
	Resource   Resource    `json:"resource"`
	Signals    Signals     `json:"signals"`
	Exceptions []Exception `json:"exceptions,omitempty"`
	// Grants names the scopes ("role@resource", "tier:N") of the active
	// elevation grants of the requesting session.
	Grants []string `json:"grants,omitempty"`
	// Granted says one of those grants covers this request's resource (a
	// role grant on it, or a tier grant of its tier or a more privileged
	// one); GrantRoles are the roles granted on it. Resources labelled
	// access=jit need Granted under the default policy.
	Granted    bool     `json:"granted,omitempty"`
	GrantRoles []string `json:"grant_roles,omitempty"`
	// Confirmation, when set, says the request carries a step-up proof that
	// the caller has verified and consumed: a user-verified passkey
	// confirmation bound to this exact request. It cures a step_up (the
	// outcome becomes allow, with reason "stepup-confirmed"); it never
	// cures approval_required or deny. Recording it in the Input keeps a
	// replayed decision identical.
	Confirmation *Confirmation `json:"confirmation,omitempty"`
	Now          time.Time     `json:"now"`
}

// Confirmation is a verified, single-use, transaction-bound passkey
// confirmation of the request being decided.
type Confirmation struct {
	Transaction string `json:"transaction"`
	// AgeS is the time since the confirming assertion, in seconds.
	AgeS int64 `json:"age_s"`
}

// Reason explains one policy's part in a decision.
type Reason struct {
	Policy string `json:"policy"` // the policy's @id
	Text   string `json:"text"`
}

// Contribution is one risk signal's share of the score.
type Contribution struct {
	Signal string `json:"signal"`
	Points int    `json:"points"`
	Text   string `json:"text"`
}

// Risk is the 0–100 score and what made it.
type Risk struct {
	Score   int            `json:"score"`
	Signals []Contribution `json:"signals"`
}

// Obligations tell the enforcement point what would cure a step_up.
type Obligations struct {
	// MaxAge is the largest acceptable age, in seconds, of the passkey
	// assertion that cures the step-up (0: a fresh one for this very
	// request). Meaningful only for step_up.
	MaxAge int64 `json:"max_age"`
	// ACR is the authentication context class to request (RFC 9470
	// acr_values).
	ACR string `json:"acr,omitempty"`
	// Transaction: the cure must be a passkey confirmation bound to this
	// exact request (always true for step_up).
	Transaction bool `json:"transaction"`
	// ApprovalRule names the approval rules to apply for
	// approval_required: every matched approval policy's @approval_rule
	// (DefaultApprovalRule for one that names none), sorted, without
	// repeats, joined by commas. All of them must be satisfied.
	ApprovalRule string `json:"approval_rule,omitempty"`
}

// DefaultApprovalRule is the approval rule of an approval policy that names
// none with @approval_rule.
const DefaultApprovalRule = "default"

// Decision is the engine's answer.
type Decision struct {
	ID            string      `json:"decision_id"`
	Outcome       Outcome     `json:"decision"`
	Reasons       []Reason    `json:"reasons"`
	Risk          Risk        `json:"risk"`
	Obligations   Obligations `json:"obligations"`
	PolicyVersion string      `json:"policy_version"`
	// Exceptions lists the ids of the live exceptions that matched this
	// request and were visible to the policies.
	Exceptions []string `json:"exceptions,omitempty"`
}
