package http_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestElevationPagesShowInvisibleGraphicCharacters: characters Unicode
// counts as graphic but that show as nothing or as blank space — the
// combining grapheme joiner, Hangul fillers, Khmer inherent vowels,
// variation selectors, the Braille blank — are accepted in a reason and a
// ticket; the approval pages must show them as escapes, so that a ticket
// that reads "INC-1234" is "INC-1234".
func TestElevationPagesShowInvisibleGraphicCharacters(t *testing.T) {
	e := newEnv(t, withElevation())
	p := e.elevationPeople()
	invisible := []string{"\u034F", "\u3164", "\u115F", "\u1160", "\u17B4", "\uFE0F", "\uFFA0", "\u2800", "\U000E0100"}
	reason := "restart web-1" + strings.Join(invisible, "x")
	r := e.req("POST", "/v1/elevation/requests", map[string]any{"scope": "dba@db-prod", "duration_s": int(30 * time.Minute / time.Second),
		"reason": reason, "ticket": "INC-12\u034F34"}, p.rita, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("request: %d %s", r.status, r.raw)
	}
	id := nested(r, "request")["id"].(string)
	for _, c := range []struct{ who, tok, path string }{
		{"approver", p.alex, "/approve/" + id},
		{"approver", p.alex, "/approvals"},
		{"requester", p.rita, "/elevate"},
	} {
		page := e.req("GET", c.path, nil, c.tok, nil)
		if page.status != 200 {
			t.Fatalf("GET %s: %d", c.path, page.status)
		}
		html := string(page.raw)
		for _, ch := range invisible {
			if strings.Contains(html, ch) {
				t.Errorf("%s %s: %U reaches the page raw (shows as nothing or a blank)", c.who, c.path, []rune(ch)[0])
			}
		}
		if !strings.Contains(html, `INC-12\u034f34`) {
			t.Errorf("%s %s: the ticket's U+034F is not shown as an escape", c.who, c.path)
		}
	}
}

// TestElevationCrossSiteRefused: every state-changing elevation route
// refuses a cookie-authenticated request from another origin (or none),
// and changes nothing; the same request from our own origin works.
func TestElevationCrossSiteRefused(t *testing.T) {
	e := newEnv(t, withElevation())
	p := e.elevationPeople()
	cookie := func(tok string) string { return "airlock_session=" + tok }
	pending := e.ask(p.rita, "dba@db-prod", 30*time.Minute, "fix replication")
	id := nested(pending, "request")["id"].(string)
	granted := e.ask(p.rita, "viewer@grafana", 30*time.Minute, "read dashboards")
	gid, _ := nested(granted, "grant")["id"].(string)
	if gid == "" {
		t.Fatalf("no grant: %s", granted.raw)
	}
	for _, c := range []struct {
		name, tok, path string
		body            any
	}{
		{"request", p.rita, "/v1/elevation/requests", map[string]any{"scope": "viewer@grafana", "duration_s": 600, "reason": "csrf"}},
		{"deny", p.alex, "/v1/elevation/requests/" + id + "/deny", map[string]any{"reason": "csrf"}},
		{"cancel", p.rita, "/v1/elevation/requests/" + id + "/cancel", map[string]any{}},
		{"approval-begin", p.alex, "/v1/approval/begin", map[string]any{"request": id}},
		{"approval-finish", p.alex, "/v1/approval/finish", map[string]any{"ceremony": "x", "credential": map[string]any{}}},
		{"end-grant", p.rita, "/v1/grants/" + gid + "/end", map[string]any{}},
		{"admin-revoke", p.admin, "/v1/admin/grants/" + gid + "/revoke", map[string]any{}},
	} {
		for _, origin := range []string{"https://evil.example", "null", ""} {
			hdr := map[string]string{"Cookie": cookie(c.tok)}
			if origin != "" {
				hdr["Origin"] = origin
			}
			if r := e.req("POST", c.path, c.body, "", hdr); r.status != http.StatusForbidden {
				t.Errorf("fail-%s-origin-%q: %d %s, want 403", c.name, origin, r.status, r.raw)
			}
		}
	}
	if r := e.req("GET", "/v1/elevation/requests/"+id, nil, p.rita, nil); nested(r, "request")["status"] != "pending" {
		t.Fatalf("request after cross-site posts: %s", r.raw)
	}
	if r := e.req("GET", "/v1/grants/"+gid, nil, p.rita, nil); r.body["active"] != true {
		t.Fatalf("grant after cross-site posts: %s", r.raw)
	}
	if r := e.req("GET", "/v1/elevation/requests", nil, p.rita, nil); len(r.body["requests"].([]any)) != 2 {
		t.Fatalf("a cross-site request was made: %s", r.raw)
	}
	// ok-same-origin: the page's own request goes through.
	r := e.req("POST", "/v1/elevation/requests/"+id+"/deny", map[string]any{"reason": "not now"}, "", map[string]string{"Cookie": cookie(p.alex), "Origin": e.origin})
	if r.status != http.StatusOK || nested(r, "request")["status"] != "denied" {
		t.Fatalf("ok-same-origin deny: %d %s", r.status, r.raw)
	}
}
