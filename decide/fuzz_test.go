package decide

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode"
)

// FuzzCanonicalParams: any input either is refused as EINVALID or gives a
// canonical form that is valid JSON, a fixed point (canonicalising it again
// changes nothing), within MaxParamsBytes, and summarised with nothing
// invisible or control shown as is; never a panic.
func FuzzCanonicalParams(f *testing.F) {
	for _, s := range []string{``, `null`, `{}`, `{"b":1,"a":[1,2,{"z":null}]}`, `{"a":1e400}`, `{"a":"\u0000\ud800"}`, `[1]`, `{"a":1}{}`, `{"a":-0.0}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := CanonicalParams(in)
		if err != nil {
			return
		}
		if !json.Valid(c) || len(c) > MaxParamsBytes {
			t.Fatalf("canonical form %q of %q is not valid bounded JSON", c, in)
		}
		again, err := CanonicalParams(c)
		if err != nil || !bytes.Equal(again, c) {
			t.Fatalf("not a fixed point: %q → %q (%v)", c, again, err)
		}
		for _, line := range Summary(c) {
			for _, r := range line.Key + line.Value {
				if !unicode.IsGraphic(r) || (unicode.IsSpace(r) && r != ' ') {
					t.Fatalf("summary line %q shows %U as is", line, r)
				}
			}
		}
	})
}
