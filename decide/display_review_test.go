package decide

import (
	"strings"
	"testing"
)

// TestDisplayTextBlankGraphic: characters that are graphic to Unicode but
// show as nothing or as a blank are escaped like the invisible format
// characters, so two different texts never read alike; ordinary letters,
// marks and symbols stay as they are.
func TestDisplayTextBlankGraphic(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"INC-12\u034F34", `"INC-12\u034f34"`},
		{"fix\u3164now", `"fix\u3164now"`},
		{"a\u115Fb\u1160c", `"a\u115fb\u1160c"`},
		{"a\u17B4b", `"a\u17b4b"`},
		{"ok\uFE0F", `"ok\ufe0f"`},
		{"a\uFFA0b", `"a\uffa0b"`},
		{"a\u2800b", `"a\u2800b"`},
		{"a\U000E0100b", `"a\U000e0100b"`},
	} {
		if got := DisplayText(c.in); got != c.want {
			t.Errorf("fail-%+q: DisplayText = %s, want %s", c.in, got, c.want)
		}
	}
	for _, plain := range []string{"café", "Zoë Ω", "naïve e\u0301", "€ 250.00", "日本語"} {
		if got := DisplayText(plain); got != plain || strings.HasPrefix(got, `"`) {
			t.Errorf("ok-%q: DisplayText = %s, want it unchanged", plain, got)
		}
	}
}
