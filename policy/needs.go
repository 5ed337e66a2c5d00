package policy

import (
	"strings"

	"github.com/cedar-policy/cedar-go"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// Building Cedar records is most of a decision's cost (cedar-go hashes and
// copies every record it is given), so a Set records at compile time which
// attributes its policies can read, and Decide builds only those. An
// attribute no policy mentions cannot change any policy's result; anything
// the analysis cannot follow (an access on something other than a plain
// variable chain, a whole record compared or passed around) makes it fall
// back to building everything under that path.

// attrPaths are the schema's attributes, one bit each, by dotted path from
// a request variable. Order fixes the bit numbers.
var attrPaths = []string{
	"principal.name", "principal.tier", "principal.kind", "principal.roles",
	"resource.name", "resource.tier", "resource.@tags",
	"context.action", "context.device", "context.session", "context.signals",
	"context.session_age_s", "context.idle_s", "context.uv_age_s", "context.posture_age_s",
	"context.risk_score", "context.exceptions", "context.grants", "context.granted", "context.grant_roles",
	"context.action.name", "context.action.sensitivity", "context.action.level",
	"context.device.id", "context.device.kind", "context.device.trust", "context.device.compliant",
	"context.device.posture_stale",
	"context.session.id", "context.session.tier", "context.session.has_uv", "context.session.amr",
	"context.signals.new_network", "context.signals.impossible_travel", "context.signals.travel_kmh",
	"context.signals.failed_ceremonies", "context.signals.recent_recovery",
	"context.signals.clone_signal", "context.signals.first_device_use", "context.signals.outside_window",
}

// needs is a bit set over attrPaths.
type needs uint64

var needAll = needs(1)<<len(attrPaths) - 1

var attrBit = func() map[string]needs {
	m := make(map[string]needs, len(attrPaths))
	for i, p := range attrPaths {
		m[p] = 1 << i
	}
	return m
}()

func bit(path string) needs { return attrBit[path] }

// has reports whether the attribute at path is needed.
func (n needs) has(path string) bool { return n&attrBit[path] != 0 }

// under returns the bits of path and of every attribute below it, plus the
// bits of the containers above it (a nested attribute needs its parents).
func under(path string) needs {
	var n needs
	for i, p := range attrPaths {
		if p == path || strings.HasPrefix(p, path+".") {
			n |= 1 << i
		}
	}
	for i := strings.LastIndexByte(path, '.'); i > 0; i = strings.LastIndexByte(path[:i], '.') {
		n |= attrBit[path[:i]]
	}
	return n
}

// policyNeeds returns the attributes p can read.
func policyNeeds(p *cedar.Policy) needs {
	var n needs
	for _, c := range (*xast.Policy)(p.AST()).Conditions {
		n |= nodeNeeds(c.Body)
	}
	return n
}

// nodeNeeds returns the attributes the expression node can read.
func nodeNeeds(node xast.IsNode) needs {
	var n needs
	xast.Inspect(xast.NewNode(node), func(node xast.IsNode) bool {
		if n == needAll {
			return false
		}
		switch v := node.(type) {
		case xast.NodeTypeAccess:
			path, ok := chain(v.Arg)
			if !ok {
				// An attribute read from anything but a variable chain
				// (a literal entity, an if-then-else, a record literal):
				// give up and build everything.
				n = needAll
				return false
			}
			n |= mark(path + "." + string(v.Value))
			return false
		case xast.NodeTypeHas:
			path, ok := chain(v.Arg)
			if !ok {
				n = needAll
				return false
			}
			n |= mark(path + "." + string(v.Value))
			return false
		case xast.NodeTypeGetTag:
			n |= tagNeeds(v.Left) | nodeNeeds(v.Right)
			return false
		case xast.NodeTypeHasTag:
			n |= tagNeeds(v.Left) | nodeNeeds(v.Right)
			return false
		case xast.NodeTypeVariable:
			// A variable used whole. For principal and resource only the
			// entity id matters (==, in, is read no attributes); a whole
			// context record needs everything in it.
			if v.Name == "context" {
				n |= under("context")
			}
		}
		return true
	})
	return n
}

func tagNeeds(entity xast.IsNode) needs {
	if path, ok := chain(entity); ok && (path == "principal" || path == "resource") {
		return mark(path + ".@tags")
	}
	return needAll
}

// chain returns the dotted path of an access chain rooted at a variable
// (context.device → "context.device").
func chain(node xast.IsNode) (string, bool) {
	switch v := node.(type) {
	case xast.NodeTypeVariable:
		return string(v.Name), true
	case xast.NodeTypeAccess:
		p, ok := chain(v.Arg)
		return p + "." + string(v.Value), ok
	}
	return "", false
}

// mark returns the bits needed to read path; an unknown path (a typo the
// schema check would have caught, or an attribute of action) needs all.
func mark(path string) needs {
	if _, ok := attrBit[path]; !ok {
		if strings.HasPrefix(path, "action") {
			return 0
		}
		return needAll
	}
	return under(path)
}
