package policy

import (
	"strings"
	"testing"
)

const okPermit = "@id(\"p\")\n@owner(\"o\")\n@review_by(\"2030-01-01\")\npermit (principal, action, resource);\n"

func TestCompileErrors(t *testing.T) {
	head := func(id string) string { return "@id(\"" + id + "\")\n@owner(\"o\")\n@review_by(\"2030-01-01\")\n" }
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"fail-no-files", map[string]string{}, "no policy files"},
		{"fail-parse", map[string]string{"a.cedar": okPermit, "b.cedar": "\n\npermit (principal,"}, "b.cedar:3:"},
		{"fail-empty-file", map[string]string{"a.cedar": okPermit, "b.cedar": "// nothing\n"}, "b.cedar: no policies"},
		{"fail-unknown-attribute", map[string]string{"a.cedar": okPermit + head("f") + "forbid (principal, action, resource) when { context.nope };"},
			"a.cedar:5:1: schema: for policy `f`, attribute `nope`"},
		{"fail-type-error", map[string]string{"a.cedar": okPermit + head("f") + "forbid (principal, action, resource) when { resource.tier == \"0\" };"},
			"a.cedar:5:1: schema:"},
		{"fail-unguarded-tag", map[string]string{"a.cedar": head("f") + "permit (principal, action, resource) when { resource.getTag(\"env\") == \"prod\" };"},
			"unable to guarantee safety of access to tag"},
		{"fail-unknown-entity-type", map[string]string{"a.cedar": head("f") + "permit (principal == Admin::\"x\", action, resource);"}, "schema:"},
		{"fail-no-id", map[string]string{"a.cedar": "@owner(\"o\")\n@review_by(\"2030-01-01\")\npermit (principal, action, resource);"}, "a.cedar:1:1: policy has no @id"},
		{"fail-no-owner", map[string]string{"a.cedar": "@id(\"x\")\n@review_by(\"2030-01-01\")\npermit (principal, action, resource);"}, "no @owner"},
		{"fail-no-review-by", map[string]string{"a.cedar": "@id(\"x\")\n@owner(\"o\")\npermit (principal, action, resource);"}, "no @review_by"},
		{"fail-bad-review-by", map[string]string{"a.cedar": "@id(\"x\")\n@owner(\"o\")\n@review_by(\"soon\")\npermit (principal, action, resource);"}, "not a YYYY-MM-DD"},
		{"fail-bad-decision", map[string]string{"a.cedar": okPermit + head("f") + "@decision(\"maybe\")\nforbid (principal, action, resource);"}, "@decision \"maybe\""},
		{"fail-decision-on-permit", map[string]string{"a.cedar": head("f") + "@decision(\"step_up\")\npermit (principal, action, resource);"}, "only to forbid"},
		{"fail-max-age-not-number", map[string]string{"a.cedar": okPermit + head("f") + "@decision(\"step_up\")\n@max_age(\"5m\")\nforbid (principal, action, resource);"}, "@max_age \"5m\""},
		{"fail-max-age-negative", map[string]string{"a.cedar": okPermit + head("f") + "@decision(\"step_up\")\n@max_age(\"-1\")\nforbid (principal, action, resource);"}, "@max_age \"-1\""},
		{"fail-max-age-without-step-up", map[string]string{"a.cedar": okPermit + head("f") + "@max_age(\"5\")\nforbid (principal, action, resource);"}, "needs @decision"},
		{"fail-acr-without-step-up", map[string]string{"a.cedar": okPermit + head("f") + "@acr(\"x\")\nforbid (principal, action, resource);"}, "needs @decision"},
		{"fail-approval-rule-without-approval", map[string]string{"a.cedar": okPermit + head("f") + "@decision(\"step_up\")\n@approval_rule(\"x\")\nforbid (principal, action, resource);"}, "needs @decision(\"approval\")"},
		{"fail-approval-rule-name-with-comma", map[string]string{"a.cedar": okPermit + head("f") + "@decision(\"approval\")\n@approval_rule(\"a,b\")\nforbid (principal, action, resource);"}, "is not a rule name"},
		{"fail-duplicate-id", map[string]string{"a.cedar": okPermit, "b.cedar": okPermit}, "b.cedar:1:1: duplicate @id \"p\" (first at a.cedar:1:1)"},
		{"fail-id-with-space", map[string]string{"a.cedar": "@id(\"a b\")\n@owner(\"o\")\n@review_by(\"2030-01-01\")\npermit (principal, action, resource);"}, "without spaces"},
		{"fail-no-permit", map[string]string{"a.cedar": head("f") + "forbid (principal, action, resource);"}, "no permit policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string][]byte{}
			for k, v := range tt.files {
				m[k] = []byte(v)
			}
			s, err := Compile(m)
			if err == nil || s != nil {
				t.Fatalf("accepted (set %v)", s)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestCompileReportsEveryProblem(t *testing.T) {
	_, err := Compile(map[string][]byte{
		"a.cedar": []byte("permit (principal, action, resource);"),
		"b.cedar": []byte("forbid ("),
	})
	if err == nil || !strings.Contains(err.Error(), "a.cedar:1:1") || !strings.Contains(err.Error(), "b.cedar:1:") {
		t.Fatalf("error %v", err)
	}
}

func TestVersion(t *testing.T) {
	a := mustCompile(t, map[string]string{"a.cedar": okPermit})
	b := mustCompile(t, map[string]string{"a.cedar": okPermit})
	c := mustCompile(t, map[string]string{"a.cedar": okPermit + "// comment\n"})
	d := mustCompile(t, map[string]string{"b.cedar": okPermit})
	if a.Version() != b.Version() {
		t.Fatal("same content, different versions")
	}
	if a.Version() == c.Version() || a.Version() == d.Version() {
		t.Fatal("a changed file or name kept the version")
	}
	if !strings.HasPrefix(a.Version(), "sha256:") || len(a.Version()) != len("sha256:")+16 {
		t.Fatalf("version %q", a.Version())
	}
	if Default().Version() == a.Version() {
		t.Fatal("default version collides")
	}
}

func TestFiles(t *testing.T) {
	s := mustCompile(t, map[string]string{"b.cedar": okPermit, "a.cedar": "// header\n\n@id(\"f\")\n@owner(\"team-x\")\n@review_by(\"2020-02-03\")\n@reason(\"why\")\nforbid (principal, action, resource) when { context.risk_score > 99 };\n"})
	files := s.Files()
	if len(files) != 2 || files[0].Name != "a.cedar" || files[1].Name != "b.cedar" {
		t.Fatalf("files %+v", files)
	}
	p := files[0].Policies[0]
	if p.ID != "f" || p.Effect != "forbid" || p.Owner != "team-x" || p.ReviewBy.Format("2006-01-02") != "2020-02-03" || p.Line != 3 || p.Reason != "why" {
		t.Fatalf("policy info %+v", p)
	}
	files[0].Policies[0].ID = "changed"
	if s.Files()[0].Policies[0].ID != "f" {
		t.Fatal("Files exposes the set's internals")
	}
}
