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
