package decide

import (
	"fmt"
	"maps"
	"regexp"
	"slices"

	"gopkg.in/yaml.v3"

	"airlock"
	"airlock/policy"
)

// ResourceAirlock is Airlock itself: the resource of its own admin actions.
const ResourceAirlock = "airlock"

// Airlock's own admin actions, decided on ResourceAirlock. They are always
// in the catalog (configuration may change their sensitivity, never remove
// them).
const (
	ActionEnrolmentTokenIssue = "airlock.enrolment_token.issue"
	ActionUserCreate          = "airlock.user.create"
	ActionUserUpdate          = "airlock.user.update"
	ActionDeviceCreate        = "airlock.device.create"
	ActionDeviceUpdate        = "airlock.device.update"
	ActionDevicePosture       = "airlock.device.posture"
	ActionCredentialRevoke    = "airlock.credential.revoke"
	ActionPolicyChange        = "airlock.policy.change"
	ActionExceptionCreate     = "airlock.exception.create"
	ActionExceptionDelete     = "airlock.exception.delete"
	ActionResourceChange      = "airlock.resource.change"
	ActionAuditRead           = "airlock.audit.read"
	// ActionGrantRevoke ends someone's elevation grant early. High, not
	// critical: taking privilege away should not wait for a step-up.
	ActionGrantRevoke = "airlock.grant.revoke"
)

// Action is one catalog entry: its sensitivity, and per-resource overrides
// (resource name → sensitivity). In YAML either a bare sensitivity
// ("secrets.export: critical") or a mapping with "sensitivity" and
// "resources".
type Action struct {
	Sensitivity policy.Sensitivity            `yaml:"sensitivity" json:"sensitivity"`
	Resources   map[string]policy.Sensitivity `yaml:"resources,omitempty" json:"resources,omitempty"`
}

// UnmarshalYAML accepts the bare-sensitivity short form.
func (a *Action) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		a.Sensitivity = policy.Sensitivity(n.Value)
		return nil
	}
	type plain Action
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*a = Action(p)
	return nil
}

// ResourceDef is a resource defined in configuration.
type ResourceDef struct {
	Name   string            `yaml:"name" json:"name"`
	Tier   airlock.Tier      `yaml:"tier" json:"tier"`
	Labels map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
}

// Catalog is the action catalog and the configured resources. Resources
// added through the admin API live in the store; a configured resource
// cannot be changed there.
type Catalog struct {
	Actions   map[string]Action `yaml:"actions" json:"actions"`
	Resources []ResourceDef     `yaml:"resources" json:"resources"`
}

// AdminActions returns Airlock's own admin actions with their default
// sensitivities: every change is critical (on the tier-0 resource "airlock"
// the default policies then want a passkey verification within 300 s, else
// a step-up bound to the exact change); reading the audit log is low.
// Changing resources is critical too: a resource's tier decides what every
// other rule demands, so lowering it is as strong as changing a policy.
func AdminActions() map[string]Action {
	m := map[string]Action{ActionAuditRead: {Sensitivity: policy.Low}, ActionGrantRevoke: {Sensitivity: policy.High}}
	for _, a := range []string{ActionEnrolmentTokenIssue, ActionUserCreate, ActionUserUpdate, ActionDeviceCreate,
		ActionDeviceUpdate, ActionDevicePosture, ActionCredentialRevoke, ActionPolicyChange, ActionExceptionCreate,
		ActionExceptionDelete, ActionResourceChange} {
		m[a] = Action{Sensitivity: policy.Critical}
	}
	return m
}

// QuickStart returns the quick-start catalog of DESIGN.md (the embedded
// default configuration): config.read, deploy.prod, secrets.export,
// iam.role.grant and payments.transfer on grafana, ci, vault-prod and
// payments; elevation.request, db.write, ssh.login and the two SSH
// forwarding actions, with db-prod and prod-hosts (tier 1, access=jit: no
// standing access); plus the admin actions and the resource "airlock"
// (tier 0).
func QuickStart() Catalog {
	acts := AdminActions()
	maps.Copy(acts, map[string]Action{
		"config.read":       {Sensitivity: policy.Low},
		"deploy.prod":       {Sensitivity: policy.High},
		"secrets.export":    {Sensitivity: policy.Critical},
		"iam.role.grant":    {Sensitivity: policy.Critical},
		"payments.transfer": {Sensitivity: policy.Critical},
		// Just-in-time elevation (docs/elevation.md, docs/ssh.md).
		"elevation.request":    {Sensitivity: policy.Medium},
		"db.write":             {Sensitivity: policy.High},
		"ssh.login":            {Sensitivity: policy.High},
		"ssh.agent_forwarding": {Sensitivity: policy.Critical},
		"ssh.port_forwarding":  {Sensitivity: policy.Critical},
	})
	prod := func() map[string]string { return map[string]string{"env": "prod"} }
	return Catalog{Actions: acts, Resources: []ResourceDef{
		{Name: ResourceAirlock, Tier: 0, Labels: map[string]string{"app": "airlock"}},
		{Name: "grafana", Tier: 2, Labels: prod()},
		{Name: "ci", Tier: 1, Labels: prod()},
		{Name: "vault-prod", Tier: 0, Labels: prod()},
		{Name: "payments", Tier: 0, Labels: prod()},
		// No standing access: every action needs a grant (jit-grant-required).
		{Name: "db-prod", Tier: 1, Labels: map[string]string{"env": "prod", "access": "jit"}},
		{Name: "prod-hosts", Tier: 1, Labels: map[string]string{"env": "prod", "access": "jit"}},
	}}
}

// WithAdmin returns c with the admin actions and the resource "airlock"
// added where c does not define them.
func (c Catalog) WithAdmin() Catalog {
	out := Catalog{Actions: AdminActions(), Resources: slices.Clone(c.Resources)}
	maps.Copy(out.Actions, c.Actions)
	if !slices.ContainsFunc(out.Resources, func(r ResourceDef) bool { return r.Name == ResourceAirlock }) {
		out.Resources = append([]ResourceDef{{Name: ResourceAirlock, Tier: 0, Labels: map[string]string{"app": "airlock"}}}, out.Resources...)
	}
	return out
}

var (
	// ActionPattern is what an action name looks like: lower-case dotted
	// words, e.g. "secrets.export".
	ActionPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$`)
	// ResourcePattern is what a resource name looks like.
	ResourcePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	labelKey        = regexp.MustCompile(`^[a-z0-9][a-z0-9._/-]{0,62}$`)
)

// ValidSensitivity reports whether s is one of the four sensitivities.
func ValidSensitivity(s policy.Sensitivity) bool {
	switch s {
	case policy.Low, policy.Medium, policy.High, policy.Critical:
		return true
	}
	return false
}

// ValidateResource checks a resource's name, tier and labels.
func ValidateResource(name string, tier airlock.Tier, labels map[string]string) error {
	if !ResourcePattern.MatchString(name) {
		return airlock.Errorf(airlock.EINVALID, "resource name %q must be 1-64 lower-case letters, digits and . _ -", name)
	}
	if !tier.Valid() {
		return airlock.Errorf(airlock.EINVALID, "resource %s: tier must be 0, 1 or 2", name)
	}
	if len(labels) > 32 {
		return airlock.Errorf(airlock.EINVALID, "resource %s: at most 32 labels", name)
	}
	for k, v := range labels {
		if !labelKey.MatchString(k) {
			return airlock.Errorf(airlock.EINVALID, "resource %s: label key %q must be lower-case letters, digits and . _ / -", name, k)
		}
		if len(v) > 200 {
			return airlock.Errorf(airlock.EINVALID, "resource %s: label %s is longer than 200 characters", name, k)
		}
	}
	return nil
}

// Validate reports the first error in the catalog: a malformed action or
// resource name, an unknown sensitivity, an override for a resource that is
// not configured, a duplicate resource.
func (c Catalog) Validate() error {
	names := map[string]bool{}
	for _, r := range c.Resources {
		if err := ValidateResource(r.Name, r.Tier, r.Labels); err != nil {
			return fmt.Errorf("catalog: %s", airlock.ErrorMessage(err))
		}
		if names[r.Name] {
			return fmt.Errorf("catalog: resource %s is defined twice", r.Name)
		}
		names[r.Name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(c.Actions)) {
		a := c.Actions[name]
		if len(name) > 128 || !ActionPattern.MatchString(name) {
			return fmt.Errorf("catalog: action name %q must be lower-case dotted words, e.g. secrets.export", name)
		}
		if !ValidSensitivity(a.Sensitivity) {
			return fmt.Errorf("catalog: action %s: sensitivity %q must be low, medium, high or critical", name, a.Sensitivity)
		}
		for res, s := range a.Resources {
			if !ValidSensitivity(s) {
				return fmt.Errorf("catalog: action %s on %s: sensitivity %q must be low, medium, high or critical", name, res, s)
			}
			if !ResourcePattern.MatchString(res) {
				return fmt.Errorf("catalog: action %s: override for %q, which is not a resource name", name, res)
			}
		}
	}
	return nil
}

// Sensitivity returns the sensitivity of action on resource: the
// resource's override if any, else the action's. It reports false for an
// action not in the catalog.
func (c Catalog) Sensitivity(action, resource string) (policy.Sensitivity, bool) {
	a, ok := c.Actions[action]
	if !ok {
		return "", false
	}
	if s, ok := a.Resources[resource]; ok {
		return s, true
	}
	return a.Sensitivity, true
}

// Resource returns the configured resource named name.
func (c Catalog) Resource(name string) (ResourceDef, bool) {
	for _, r := range c.Resources {
		if r.Name == name {
			return r, true
		}
	}
	return ResourceDef{}, false
}
