package policy

import (
	"strings"
	"testing"
	"time"

	"airlock"
)

// TestDefaultSet has, for every rule of the shipped default set, an ok-case
// and a fail-case (docs/policies.md lists the rules).
func TestDefaultSet(t *testing.T) {
	tier1 := func(in *Input) {
		in.Subject.Tier, in.Session.Tier = 1, 1
		in.Subject.Roles = nil
	}
	tier2 := func(in *Input) {
		in.Subject.Tier, in.Session.Tier = 2, 2
		in.Subject.Roles = nil
	}
	on := func(name string, tier airlock.Tier) func(*Input) {
		return func(in *Input) {
			in.Resource = Resource{Name: name, Tier: tier, Labels: map[string]string{"env": "prod"}}
		}
	}
	act := func(name string, s Sensitivity) func(*Input) {
		return func(in *Input) { in.Action = Action{Name: name, Sensitivity: s} }
	}
	uv := func(s int64) func(*Input) { return func(in *Input) { in.Session.UVAgeS = s } }
	jit := func(name string, tier airlock.Tier) func(*Input) {
		return func(in *Input) {
			in.Resource = Resource{Name: name, Tier: tier, Labels: map[string]string{"env": "prod", "access": "jit"}}
		}
	}
	granted := func(in *Input) {
		in.Grants, in.Granted, in.GrantRoles = []string{"dba@" + in.Resource.Name}, true, []string{"dba"}
	}
	exc := func(effect, user, action, resource string, expires time.Time) func(*Input) {
		return func(in *Input) {
			in.Exceptions = append(in.Exceptions, Exception{ID: "exc_1", UserID: user, Action: action, Resource: resource,
				Effect: effect, Owner: "sec", Reason: "test", Expires: expires})
		}
	}
	later, earlier := t0.Add(time.Hour), t0.Add(-time.Second)
	contractor := func(w *airlock.AccessWindow) func(*Input) {
		return func(in *Input) {
			in.Subject.Kind = airlock.UserContractor
			in.Subject.Window = w
			in.Subject.Roles = nil
		}
	}
	// t0 is Wednesday 10:00 UTC.
	workHours := &airlock.AccessWindow{Weekdays: []time.Weekday{time.Monday, time.Wednesday}, StartHour: 9, EndHour: 17}
	nights := &airlock.AccessWindow{StartHour: 20, EndHour: 6}

	tests := []struct {
		name    string
		muts    []func(*Input)
		want    Outcome
		maxAge  int64
		reasons string
	}{
		// low-any-user
		{"ok-low-any-user", []func(*Input){tier2, on("ci", 1)}, Allow, 0, "low-any-user"},
		{"fail-low-any-user-noncompliant", []func(*Input){tier2, on("ci", 1), func(in *Input) { in.Device.Compliant = false }}, Deny, 0, "no-permit"},
		// tier-match
		{"ok-tier-match", []func(*Input){tier1, on("ci", 1), act("deploy.prod", High)}, Allow, 0, "tier-match"},
		{"fail-tier-match-session-too-weak", []func(*Input){tier2, on("ci", 1), act("deploy.prod", High)}, Deny, 0, "no-permit"},
		{"fail-tier-match-noncompliant", []func(*Input){tier1, on("ci", 1), act("deploy.prod", High), func(in *Input) { in.Device.Compliant = false }}, Deny, 0, "no-permit"},
		// device-trusted
		{"ok-device-trusted", nil, Allow, 0, "low-any-user,tier-match"},
		{"fail-device-revoked", []func(*Input){func(in *Input) { in.Device.Trust = airlock.TrustRevoked }}, Deny, 0, "device-trusted"},
		// tier0-session
		{"ok-tier0-session", []func(*Input){on("vault-prod", 0)}, Allow, 0, "low-any-user,tier-match"},
		{"fail-tier0-session-tier1", []func(*Input){tier1, on("vault-prod", 0)}, Deny, 0, "tier0-session"},
		// tier0-device
		{"fail-tier0-device-shared-station", []func(*Input){on("vault-prod", 0), func(in *Input) { in.Device.Kind = airlock.DeviceSharedStation }}, Deny, 0, "tier0-device"},
		{"fail-tier0-device-noncompliant", []func(*Input){on("vault-prod", 0), func(in *Input) { in.Device.Compliant = false }}, Deny, 0, "tier0-device"},
		{"ok-tier0-device-unmanaged-with-exception", []func(*Input){on("vault-prod", 0), func(in *Input) { in.Device.Kind = airlock.DeviceUnmanaged },
			exc(EffectAllowUnmanagedDevice, "usr_admin", "config.read", "vault-prod", later)}, Allow, 0, "low-any-user,tier-match"},
		{"fail-tier0-device-exception-expired", []func(*Input){on("vault-prod", 0), func(in *Input) { in.Device.Kind = airlock.DeviceUnmanaged },
			exc(EffectAllowUnmanagedDevice, "usr_admin", "config.read", "vault-prod", earlier)}, Deny, 0, "tier0-device"},
		{"fail-tier0-device-exception-other-user", []func(*Input){on("vault-prod", 0), func(in *Input) { in.Device.Kind = airlock.DeviceUnmanaged },
			exc(EffectAllowUnmanagedDevice, "usr_other", "", "", later)}, Deny, 0, "tier0-device"},
		{"fail-tier0-device-exception-never-lifts-compliance", []func(*Input){on("vault-prod", 0), func(in *Input) { in.Device.Compliant = false },
			exc(EffectAllowUnmanagedDevice, "", "", "", later)}, Deny, 0, "tier0-device"},
		// critical-uv-tier0
		{"ok-critical-uv-tier0-300s", []func(*Input){on("vault-prod", 0), act("secrets.export", Critical), uv(300)}, Allow, 0, "tier-match"},
		{"fail-critical-uv-tier0-301s", []func(*Input){on("vault-prod", 0), act("secrets.export", Critical), uv(301)}, StepUp, 300, "critical-uv-tier0"},
		{"fail-critical-uv-tier0-never", []func(*Input){on("vault-prod", 0), act("iam.role.grant", Critical), uv(-1)}, StepUp, 300, "critical-uv-tier0"},
		{"ok-critical-uv-tier0-skip-exception", []func(*Input){on("vault-prod", 0), act("secrets.export", Critical), uv(3000),
			exc(EffectSkipStepUp, "usr_admin", "secrets.export", "vault-prod", later)}, Allow, 0, "tier-match"},
		{"fail-critical-uv-tier0-skip-exception-other-action", []func(*Input){on("vault-prod", 0), act("secrets.export", Critical), uv(3000),
			exc(EffectSkipStepUp, "usr_admin", "iam.role.grant", "vault-prod", later)}, StepUp, 300, "critical-uv-tier0"},
		// critical-uv-tier1
		{"ok-critical-uv-tier1-900s", []func(*Input){tier1, on("ci", 1), act("ci.secrets.rotate", Critical), uv(900)}, Allow, 0, "tier-match"},
		{"fail-critical-uv-tier1-901s", []func(*Input){tier1, on("ci", 1), act("ci.secrets.rotate", Critical), uv(901)}, StepUp, 900, "critical-uv-tier1"},
		// payments-transfer
		{"fail-payments-transfer-fresh-uv-still-steps-up", []func(*Input){on("payments", 0), act("payments.transfer", Critical), uv(0)}, StepUp, 0, "payments-transfer"},
		{"fail-payments-transfer-skip-exception-does-not-lift", []func(*Input){on("payments", 0), act("payments.transfer", Critical), uv(0),
			exc(EffectSkipStepUp, "", "", "", later)}, StepUp, 0, "payments-transfer"},
		{"ok-payments-transfer-confirmed", []func(*Input){on("payments", 0), act("payments.transfer", Critical), uv(0),
			func(in *Input) { in.Confirmation = &Confirmation{Transaction: "txn_1", AgeS: 3} }}, Allow, 0, "payments-transfer,stepup-confirmed"},
		{"fail-payments-transfer-stale-uv-smallest-max-age", []func(*Input){on("payments", 0), act("payments.transfer", Critical), uv(4000)},
			StepUp, 0, "critical-uv-tier0,payments-transfer"},
		// shared-station
		{"ok-shared-station-medium", []func(*Input){tier1, on("ci", 1), act("ci.job.retry", Medium), func(in *Input) { in.Device.Kind = airlock.DeviceSharedStation }}, Allow, 0, "tier-match"},
		{"fail-shared-station-high", []func(*Input){tier1, on("ci", 1), act("deploy.prod", High), func(in *Input) { in.Device.Kind = airlock.DeviceSharedStation }}, StepUp, 0, "shared-station"},
		// risk-step-up (impossible travel 50 + new network 20 = 70)
		{"ok-risk-below-70", []func(*Input){func(in *Input) { in.Signals.ImpossibleTravel, in.Signals.TravelKmh = true, 5000 },
			func(in *Input) { in.Signals.FirstDeviceUse = true }}, Allow, 0, "low-any-user,tier-match"},
		{"fail-risk-70-steps-up", []func(*Input){func(in *Input) { in.Signals.ImpossibleTravel, in.Signals.TravelKmh = true, 5000 },
			func(in *Input) { in.Signals.NewNetwork = true }}, StepUp, 0, "risk-step-up"},
		// risk-deny (clone 70 + new network 20 = 90)
		{"ok-risk-85-steps-up-not-denied", []func(*Input){func(in *Input) { in.Signals.CloneSignal = true },
			func(in *Input) { in.Signals.FirstDeviceUse = true }}, StepUp, 0, "risk-step-up"},
		{"fail-risk-90-denies", []func(*Input){func(in *Input) { in.Signals.CloneSignal, in.Signals.NewNetwork = true, true }}, Deny, 0, "risk-deny,risk-step-up"},
		// contractor-window
		{"ok-contractor-inside-window", []func(*Input){contractor(workHours)}, Allow, 0, "low-any-user,tier-match"},
		{"ok-contractor-overnight-window", []func(*Input){contractor(nights), func(in *Input) { in.Now = t0.Add(12 * time.Hour) }}, Allow, 0, "low-any-user,tier-match"},
		{"fail-contractor-outside-hours", []func(*Input){contractor(workHours), func(in *Input) { in.Now = t0.Add(8 * time.Hour) }}, Deny, 0, "contractor-window"},
		{"fail-contractor-wrong-weekday", []func(*Input){contractor(workHours), func(in *Input) { in.Now = t0.Add(24 * time.Hour) }}, Deny, 0, "contractor-window"},
		{"fail-contractor-no-window", []func(*Input){contractor(nil)}, Deny, 0, "contractor-window"},
		// airlock-admin-role
		{"ok-airlock-admin-role", []func(*Input){on("airlock", 0), act("airlock.audit.read", Low)}, Allow, 0, "low-any-user,tier-match"},
		{"fail-airlock-admin-role-missing", []func(*Input){on("airlock", 0), act("airlock.audit.read", Low), func(in *Input) { in.Subject.Roles = []string{"sre"} }}, Deny, 0, "airlock-admin-role"},
		// admin actions: critical ⇒ UV within 300 s on tier 0
		{"ok-admin-critical-fresh-uv", []func(*Input){on("airlock", 0), act("airlock.user.create", Critical), uv(120)}, Allow, 0, "tier-match"},
		{"fail-admin-critical-stale-uv", []func(*Input){on("airlock", 0), act("airlock.user.create", Critical), uv(301)}, StepUp, 300, "critical-uv-tier0"},
		{"fail-admin-tier1-session", []func(*Input){on("airlock", 0), act("airlock.user.update", High), func(in *Input) { in.Session.Tier = 1 }}, Deny, 0, "tier0-session"},
		// jit-grant-required
		{"ok-jit-granted", []func(*Input){tier1, jit("db-prod", 1), act("db.write", High), granted}, Allow, 0, "tier-match"},
		{"fail-jit-no-grant", []func(*Input){tier1, jit("db-prod", 1), act("db.write", High)}, Deny, 0, "jit-grant-required"},
		{"fail-jit-no-grant-low-too", []func(*Input){tier1, jit("db-prod", 1), act("config.read", Low)}, Deny, 0, "jit-grant-required"},
		{"fail-jit-grant-elsewhere-does-not-count", []func(*Input){tier1, jit("db-prod", 1), act("db.write", High),
			func(in *Input) { in.Grants = []string{"dba@other-db"} }}, Deny, 0, "jit-grant-required"},
		{"ok-jit-label-other-value", []func(*Input){tier1, on("ci", 1), act("deploy.prod", High),
			func(in *Input) { in.Resource.Labels["access"] = "standing" }}, Allow, 0, "tier-match"},
		// elevation-tier1-approval / elevation-tier0-approval / tier 2 automatic
		{"ok-elevation-tier2-automatic", []func(*Input){tier2, on("grafana", 2), act("elevation.request", Medium)}, Allow, 0, "tier-match"},
		{"fail-elevation-tier1-needs-approval", []func(*Input){tier1, jit("db-prod", 1), act("elevation.request", Medium)}, ApprovalRequired, 0, "elevation-tier1-approval"},
		{"fail-elevation-tier0-needs-approval", []func(*Input){jit("vault-prod", 0), act("elevation.request", Medium)}, ApprovalRequired, 0, "elevation-tier0-approval"},
		{"fail-elevation-tier1-session-too-weak", []func(*Input){tier2, jit("db-prod", 1), act("elevation.request", Medium)}, Deny, 0, "elevation-tier1-approval,no-permit"},
		// ssh-no-forwarding
		{"ok-ssh-login-granted", []func(*Input){tier1, jit("prod-hosts", 1), act("ssh.login", High), granted}, Allow, 0, "tier-match"},
		{"fail-ssh-agent-forwarding", []func(*Input){tier1, jit("prod-hosts", 1), act("ssh.agent_forwarding", Critical), granted}, Deny, 0, "ssh-no-forwarding"},
		{"fail-ssh-port-forwarding", []func(*Input){tier1, jit("prod-hosts", 1), act("ssh.port_forwarding", Critical), granted}, Deny, 0, "ssh-no-forwarding"},
	}
	e := NewEngine(Default(), DefaultConfig())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInput()
			for _, m := range tt.muts {
				m(&in)
			}
			d := e.Decide(in)
			if d.Outcome != tt.want || reasonIDs(d) != tt.reasons {
				t.Fatalf("got %s (%s), want %s (%s); risk %+v", d.Outcome, reasonIDs(d), tt.want, tt.reasons, d.Risk)
			}
			if d.Outcome == StepUp && (d.Obligations.MaxAge != tt.maxAge || !d.Obligations.Transaction) {
				t.Fatalf("obligations %+v, want max_age %d with a transaction", d.Obligations, tt.maxAge)
			}
			for _, r := range d.Reasons {
				if r.Text == "" {
					t.Fatalf("reason %s has no text", r.Policy)
				}
			}
		})
	}
}

func TestDefaultSetAnnotations(t *testing.T) {
	files := Default().Files()
	if len(files) != len(DefaultFiles()) {
		t.Fatalf("%d files", len(files))
	}
	n := 0
	for _, f := range files {
		if len(f.Policies) == 0 {
			t.Errorf("%s has no policies", f.Name)
		}
		for _, p := range f.Policies {
			n++
			if p.Owner == "" || p.ReviewBy.IsZero() || p.Reason == "" || p.Line == 0 {
				t.Errorf("%s %s: %+v", f.Name, p.ID, p)
			}
		}
	}
	if n != 17 {
		t.Errorf("%d policies, the docs list 17", n)
	}
	if o := Default().Overdue(time.Date(2027, 5, 31, 23, 0, 0, 0, time.UTC)); len(o) != 0 {
		t.Errorf("overdue on the review day: %v", o)
	}
	if o := Default().Overdue(time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)); len(o) != n {
		t.Errorf("%d overdue the day after, want %d", len(o), n)
	}
}

// TestRecipePostureRefresh checks the docs/policies.md recipe that lets an
// admin on a trusted managed device whose posture went stale record
// posture (and nothing else) with a fresh passkey confirmation.
func TestRecipePostureRefresh(t *testing.T) {
	files := DefaultFiles()
	dev := string(files["10-device.cedar"])
	old := `   (context.device.kind != "managed" && !context.exceptions.contains("allow_unmanaged_device")))
};`
	if !strings.Contains(dev, old) {
		t.Fatal("10-device.cedar changed; update the recipe in docs/policies.md")
	}
	files["10-device.cedar"] = []byte(strings.Replace(dev, old, old[:len(old)-2]+`}
unless {
  context.action.name == "airlock.device.posture" &&
  context.device.trust == "trusted" && context.device.kind == "managed"
};`, 1))
	files["50-posture-refresh.cedar"] = []byte(`@id("posture-refresh")
@owner("airlock-maintainers")
@review_by("2027-05-31")
@reason("an admin on a trusted managed device may record posture even while their own device's report is stale")
permit (principal, action, resource)
when {
  context.action.name == "airlock.device.posture" &&
  context.device.trust == "trusted" && context.device.kind == "managed" &&
  context.session.tier <= resource.tier
};
`)
	s, err := Compile(files)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(s, DefaultConfig())
	in := baseInput()
	in.Device.Compliant, in.Device.PostureAgeS = false, 90000
	in.Resource = Resource{Name: "airlock", Tier: 0}
	in.Action = Action{Name: "airlock.device.posture", Sensitivity: Critical}
	if d := e.Decide(in); d.Outcome != Allow {
		t.Fatalf("ok-posture-with-fresh-uv: %s %v", d.Outcome, d.Reasons)
	}
	in.Session.UVAgeS = 1000
	if d := e.Decide(in); d.Outcome != StepUp {
		t.Fatalf("ok-posture-stale-uv-steps-up: %s %v", d.Outcome, d.Reasons)
	}
	in.Action.Name = "airlock.user.create"
	if d := e.Decide(in); d.Outcome != Deny {
		t.Fatalf("fail-other-admin-action: %s %v", d.Outcome, d.Reasons)
	}
	in.Action.Name = "airlock.device.posture"
	in.Device.Kind = airlock.DeviceUnmanaged
	if d := e.Decide(in); d.Outcome != Deny {
		t.Fatalf("fail-unmanaged-device: %s %v", d.Outcome, d.Reasons)
	}
	in.Device.Kind, in.Subject.Roles = airlock.DeviceManaged, nil
	if d := e.Decide(in); d.Outcome != Deny {
		t.Fatalf("fail-not-admin: %s %v", d.Outcome, d.Reasons)
	}
}
