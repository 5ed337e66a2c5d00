package policy

import (
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cedar-policy/cedar-go"
	cedarast "github.com/cedar-policy/cedar-go/ast"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"
)

// Annotations Airlock reads from a policy. Every policy must carry @id,
// @owner and @review_by; the others are optional.
const (
	// AnnotationID names the policy in reasons; unique across the set.
	AnnotationID = "id"
	// AnnotationDecision on a forbid makes it curable: "step_up" or
	// "approval" ("approval_required" is accepted as a synonym).
	AnnotationDecision = "decision"
	// AnnotationMaxAge is the step-up obligation's max_age in seconds.
	AnnotationMaxAge = "max_age"
	// AnnotationACR is the step-up obligation's acr value.
	AnnotationACR = "acr"
	// AnnotationApprovalRule names the approval rule for approval_required.
	AnnotationApprovalRule = "approval_rule"
	// AnnotationOwner names who answers for the policy.
	AnnotationOwner = "owner"
	// AnnotationReviewBy is the date (YYYY-MM-DD) by which the policy must
	// be reviewed; `airlock policy report` lists overdue ones.
	AnnotationReviewBy = "review_by"
	// AnnotationReason is the human text shown in a decision's reasons.
	AnnotationReason = "reason"
)

// maxMaxAge bounds @max_age so that obligations stay sensible (one day).
const maxMaxAge = 86400

// SchemaText is the Cedar schema every policy is validated against (the
// human-readable schema format).
//
//go:embed schema.cedarschema
var SchemaText []byte

//go:embed default/*.cedar
var defaultFS embed.FS

// validator is built once from SchemaText; the schema is part of the binary,
// so failing to parse it is a programming error caught by every test.
var validator = sync.OnceValue(func() *validate.Validator {
	var s schema.Schema
	s.SetFilename("schema.cedarschema")
	if err := s.UnmarshalCedar(SchemaText); err != nil {
		panic("policy: embedded schema: " + err.Error())
	}
	r, err := s.Resolve()
	if err != nil {
		panic("policy: embedded schema: " + err.Error())
	}
	return validate.New(r, validate.WithStrict())
})

// curable says what a satisfied forbid asks for instead of a plain deny.
type curable int

const (
	notCurable curable = iota
	cureStepUp
	cureApproval
)

// rule is what Airlock knows about one compiled policy.
type rule struct {
	id           string
	file         string
	line         int
	forbid       bool
	cure         curable
	maxAge       int64 // -1 when not annotated
	acr          string
	approvalRule string
	reason       string
	owner        string
	reviewBy     time.Time
}

// PolicyInfo describes one policy of a set, for reports.
type PolicyInfo struct {
	ID     string `json:"id"`
	Effect string `json:"effect"` // "permit" or "forbid"
	Line   int    `json:"line"`
	Owner  string `json:"owner"`
	// ReviewBy is the date (midnight UTC) by which the policy must be
	// reviewed.
	ReviewBy time.Time `json:"review_by"`
	Reason   string    `json:"reason,omitempty"`
}

// FileInfo describes one policy file of a set: its name and its policies in
// source order.
type FileInfo struct {
	Name     string       `json:"name"`
	Policies []PolicyInfo `json:"policies"`
}

// Set is a compiled, schema-checked policy set. It is immutable and safe for
// concurrent use. The zero value is not usable; use Compile or Default.
type Set struct {
	version string
	// eval holds every policy, each permit turned into a forbid with the
	// same scope and conditions (a "marker"): Cedar then reports every
	// policy whose conditions hold, permits included. On a deny Cedar
	// reports only the forbids, yet a curable forbid may become step_up
	// only when some permit holds too (DESIGN.md, "two traps"); with the
	// markers one evaluation of every policy tells both.
	eval  *policyList
	rules map[cedar.PolicyID]*rule
	files []FileInfo
	// needs are the attributes the policies can read; Decide builds only
	// these.
	needs needs
	cache *entityCache
}

// Compile parses Cedar policy files (name → content), checks every policy
// against the embedded schema and Airlock's annotation rules, and returns
// the set. Any error yields a nil Set and an error naming the file and line
// ("file.cedar:12:3: …"); all problems found are reported, joined.
func Compile(files map[string][]byte) (*Set, error) {
	if len(files) == 0 {
		return nil, errors.New("policy: no policy files")
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)

	s := &Set{
		version: version(names, files),
		eval:    &policyList{},
		rules:   map[cedar.PolicyID]*rule{},
		cache:   &entityCache{},
	}
	var errs []error
	permits := 0
	seen := map[string]string{} // @id → where first defined
	for _, name := range names {
		list, err := cedar.NewPolicyListFromBytes(name, files[name])
		if err != nil {
			errs = append(errs, parseError(name, err))
			continue
		}
		if len(list) == 0 {
			errs = append(errs, fmt.Errorf("%s: no policies in file", name))
			continue
		}
		fi := FileInfo{Name: name}
		for _, p := range list {
			pos := p.Position()
			where := fmt.Sprintf("%s:%d:%d", name, pos.Line, pos.Column)
			r, perrs := annotations(p, name, where)
			errs = append(errs, perrs...)
			if r == nil {
				continue
			}
			if prev, dup := seen[r.id]; dup {
				errs = append(errs, fmt.Errorf("%s: duplicate @id %q (first at %s)", where, r.id, prev))
				continue
			}
			seen[r.id] = where
			if err := validator().Policy(r.id, (*xast.Policy)(p.AST())); err != nil {
				for _, e := range flatten(err) {
					errs = append(errs, fmt.Errorf("%s: schema: %v", where, e))
				}
				continue
			}
			pid := cedar.PolicyID(r.id)
			s.rules[pid] = r
			s.needs |= policyNeeds(p)
			if r.forbid {
				s.eval.add(pid, p)
			} else {
				s.eval.add(pid, marker(p))
				permits++
			}
			eff := "permit"
			if r.forbid {
				eff = "forbid"
			}
			fi.Policies = append(fi.Policies, PolicyInfo{ID: r.id, Effect: eff, Line: r.line, Owner: r.owner, ReviewBy: r.reviewBy, Reason: r.reason})
		}
		s.files = append(s.files, fi)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("policy: invalid policy set:\n%w", errors.Join(errs...))
	}
	if permits == 0 {
		return nil, errors.New("policy: invalid policy set: no permit policy (everything would be denied)")
	}
	return s, nil
}

// marker returns p as a forbid: same scope, conditions, annotations and
// position; only the effect differs.
func marker(p *cedar.Policy) *cedar.Policy {
	m := *(*xast.Policy)(p.AST())
	m.Effect = xast.EffectForbid
	return cedar.NewPolicyFromAST((*cedarast.Policy)(&m))
}

// policyList is a cedar.PolicyIterator over a slice in source order:
// cheaper to walk than cedar.PolicySet's map, and its iterator function is
// made once, not per evaluation.
type policyList struct {
	ids      []cedar.PolicyID
	policies []*cedar.Policy
	seq      iter.Seq2[cedar.PolicyID, *cedar.Policy]
}

func (l *policyList) add(id cedar.PolicyID, p *cedar.Policy) {
	l.ids = append(l.ids, id)
	l.policies = append(l.policies, p)
	l.seq = func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for i, id := range l.ids {
			if !yield(id, l.policies[i]) {
				return
			}
		}
	}
}

// All implements cedar.PolicyIterator.
func (l *policyList) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] { return l.seq }

// IsAuthorized evaluates the policies (cedar.Authorize).
func (l *policyList) IsAuthorized(ents cedar.EntityGetter, req cedar.Request) (cedar.Decision, cedar.Diagnostic) {
	return cedar.Authorize(l, ents, req)
}

// annotations reads and checks Airlock's annotations on p. It returns a nil
// rule when p cannot be used.
func annotations(p *cedar.Policy, file, where string) (*rule, []error) {
	a := p.Annotations()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{where}, args...)...))
	}
	r := &rule{file: file, line: p.Position().Line, forbid: p.Effect() == cedar.Forbid, maxAge: -1}
	r.id = string(a[AnnotationID])
	switch {
	case r.id == "":
		bad("policy has no @id annotation")
	case len(r.id) > 100 || strings.ContainsAny(r.id, " \t\r\n\"\\"):
		bad("@id %q must be at most 100 characters without spaces or quotes", r.id)
	}
	r.owner = strings.TrimSpace(string(a[AnnotationOwner]))
	if r.owner == "" {
		bad("policy %q has no @owner annotation", r.id)
	}
	if rb, ok := a[AnnotationReviewBy]; !ok {
		bad("policy %q has no @review_by annotation", r.id)
	} else if t, err := time.Parse(time.DateOnly, string(rb)); err != nil {
		bad("policy %q: @review_by %q is not a YYYY-MM-DD date", r.id, string(rb))
	} else {
		r.reviewBy = t
	}
	r.reason = string(a[AnnotationReason])
	if d, ok := a[AnnotationDecision]; ok {
		switch string(d) {
		case "step_up":
			r.cure = cureStepUp
		case "approval", "approval_required":
			r.cure = cureApproval
		default:
			bad("policy %q: @decision %q is not \"step_up\" or \"approval\"", r.id, string(d))
		}
		if !r.forbid {
			bad("policy %q: @decision applies only to forbid policies", r.id)
		}
	}
	if m, ok := a[AnnotationMaxAge]; ok {
		n, err := strconv.ParseInt(string(m), 10, 64)
		if err != nil || n < 0 || n > maxMaxAge {
			bad("policy %q: @max_age %q is not a whole number of seconds 0..%d", r.id, string(m), maxMaxAge)
		}
		r.maxAge = n
		if r.cure != cureStepUp {
			bad("policy %q: @max_age needs @decision(\"step_up\")", r.id)
		}
	}
	if v, ok := a[AnnotationACR]; ok {
		r.acr = string(v)
		if r.cure != cureStepUp {
			bad("policy %q: @acr needs @decision(\"step_up\")", r.id)
		}
	}
	if v, ok := a[AnnotationApprovalRule]; ok {
		r.approvalRule = string(v)
		if r.cure != cureApproval {
			bad("policy %q: @approval_rule needs @decision(\"approval\")", r.id)
		}
		if !ValidRuleName(r.approvalRule) {
			bad("policy %q: @approval_rule %q is not a rule name (1-64 letters, digits, '.', '_', '-')", r.id, r.approvalRule)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return r, nil
}

var parsePos = regexp.MustCompile(`^parse error at <input>:(\d+):(\d+) `)

// parseError rewrites cedar-go's parse error ("parser error: parse error at
// <input>:L:C …") as "file:L:C: parse error …".
func parseError(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "parser error: ")
	if m := parsePos.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s:%s:%s: parse error at %s", file, m[1], m[2], msg[len(m[0]):])
	}
	return fmt.Errorf("%s: %s", file, msg)
}

func flatten(err error) []error {
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range u.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// version hashes the file names and contents (length-prefixed, in name
// order), so that any change to any file changes it.
func version(names []string, files map[string][]byte) string {
	h := sha256.New()
	var n [8]byte
	for _, name := range names {
		binary.BigEndian.PutUint64(n[:], uint64(len(name)))
		h.Write(n[:])
		h.Write([]byte(name))
		binary.BigEndian.PutUint64(n[:], uint64(len(files[name])))
		h.Write(n[:])
		h.Write(files[name])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]
}

// VersionOf returns the version Compile would give files (the content
// hash), without compiling them: a watcher can tell whether anything
// changed.
func VersionOf(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	return version(names, files)
}

// Version is the set's content hash, "sha256:" and 16 hex digits. Decisions
// carry it.
func (s *Set) Version() string { return s.version }

// Files lists the set's files in name order with their policies, for
// `airlock policy report`.
func (s *Set) Files() []FileInfo {
	out := make([]FileInfo, len(s.files))
	for i, f := range s.files {
		out[i] = FileInfo{Name: f.Name, Policies: slices.Clone(f.Policies)}
	}
	return out
}

// Overdue returns the policies whose @review_by date is before now's date
// (UTC), with their file names.
func (s *Set) Overdue(now time.Time) []OverdueReview {
	today := now.UTC().Truncate(24 * time.Hour)
	var out []OverdueReview
	for _, f := range s.files {
		for _, p := range f.Policies {
			if p.ReviewBy.Before(today) {
				out = append(out, OverdueReview{File: f.Name, PolicyInfo: p})
			}
		}
	}
	return out
}

// OverdueReview is a policy past its review date.
type OverdueReview struct {
	File string `json:"file"`
	PolicyInfo
}

// DefaultFiles returns the shipped default policy files (name → content),
// e.g. to write them out as a starting point.
func DefaultFiles() map[string][]byte {
	files := map[string][]byte{}
	err := fs.WalkDir(defaultFS, "default", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := defaultFS.ReadFile(p)
		files[path.Base(p)] = b
		return err
	})
	if err != nil {
		panic("policy: embedded default set: " + err.Error())
	}
	return files
}

var defaultSet = sync.OnceValue(func() *Set {
	s, err := Compile(DefaultFiles())
	if err != nil {
		panic("policy: embedded default set: " + err.Error())
	}
	return s
})

// Default returns the shipped default policy set (docs/policies.md). It is
// compiled once, on first use.
func Default() *Set { return defaultSet() }

// ValidRuleName reports whether name can name an approval rule: 1–64
// letters, digits, '.', '_' or '-' (no commas: Obligations.ApprovalRule
// lists several rules separated by commas).
func ValidRuleName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
