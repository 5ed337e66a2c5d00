# Airlock's default policy set (policy/default/*.cedar) written in Rego, for
# the side-by-side benchmark with OPA. Same input as the Cedar request:
# input.principal, input.resource and input.context carry the attributes of
# schema.cedarschema; input.confirmed says a step-up proof was presented.
# decision.outcome maps forbids and permits to allow / step_up / deny exactly
# as Airlock's engine does (a curable forbid with no satisfied permit stays a
# deny).
package airlock

import rego.v1

ctx := input.context

# --- permits (00-permit.cedar)

permits contains "low-any-user" if {
	ctx.action.sensitivity == "low"
	ctx.device.compliant
}

permits contains "tier-match" if {
	ctx.device.compliant
	ctx.session.tier <= input.resource.tier
}

# --- plain forbids (10-device.cedar, 30-risk.cedar, 40-people.cedar)

denies contains "device-trusted" if ctx.device.trust != "trusted"

denies contains "tier0-session" if {
	input.resource.tier == 0
	ctx.session.tier != 0
}

denies contains "tier0-device" if {
	input.resource.tier == 0
	not ctx.device.compliant
}

denies contains "tier0-device" if {
	input.resource.tier == 0
	ctx.device.kind != "managed"
	not "allow_unmanaged_device" in ctx.exceptions
}

denies contains "risk-deny" if ctx.risk_score >= 90

denies contains "contractor-window" if {
	input.principal.kind == "contractor"
	ctx.signals.outside_window
}

denies contains "airlock-admin-role" if {
	startswith(ctx.action.name, "airlock.")
	not "airlock-admin" in input.principal.roles
}

# --- elevation (50-elevation.cedar)

denies contains "jit-grant-required" if {
	input.resource.tags.access == "jit"
	not ctx.granted
	ctx.action.name != "elevation.request"
}

denies contains "ssh-no-forwarding" if ctx.action.name in {"ssh.agent_forwarding", "ssh.port_forwarding"}

approvals["elevation-tier0-approval"] := "tier0" if {
	ctx.action.name == "elevation.request"
	input.resource.tier == 0
}

approvals["elevation-tier1-approval"] := "default" if {
	ctx.action.name == "elevation.request"
	input.resource.tier == 1
}

# --- step-ups (20-stepup.cedar, 30-risk.cedar): id → max_age

step_ups["critical-uv-tier0"] := 300 if {
	input.resource.tier == 0
	ctx.action.sensitivity == "critical"
	ctx.uv_age_s > 300
	not "skip_step_up" in ctx.exceptions
}

step_ups["critical-uv-tier1"] := 900 if {
	input.resource.tier >= 1
	ctx.action.sensitivity == "critical"
	ctx.uv_age_s > 900
	not "skip_step_up" in ctx.exceptions
}

step_ups["payments-transfer"] := 0 if ctx.action.name == "payments.transfer"

step_ups["shared-station"] := 0 if {
	ctx.device.kind == "shared-station"
	ctx.action.level >= 2
}

step_ups["risk-step-up"] := 0 if ctx.risk_score >= 70

# --- outcome

outcome := "deny" if {
	count(denies) > 0
} else := "deny" if {
	count(permits) == 0
} else := "approval_required" if {
	count(approvals) > 0
} else := "allow" if {
	count(step_ups) > 0
	input.confirmed
} else := "step_up" if {
	count(step_ups) > 0
} else := "allow"

max_age := min({a | some a in step_ups}) if outcome == "step_up"

max_age := 0 if outcome != "step_up"

decision := {
	"outcome": outcome,
	"max_age": max_age,
	"denies": denies,
	"step_ups": object.keys(step_ups),
	"approvals": object.keys(approvals),
	"permits": permits,
}
