package decide

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"airlock"
)

// MaxParamsBytes bounds the canonical parameters of one request.
const MaxParamsBytes = 16 << 10

// CanonicalParams returns the canonical JSON of a request's parameters: the
// object re-encoded with its keys sorted (recursively), no insignificant
// whitespace, numbers exactly as sent. Absent or null parameters are "{}";
// anything but a JSON object, or more than MaxParamsBytes, is EINVALID, and
// so is what parsers may read differently (strictJSON): a key twice in one
// object, invalid UTF-8, a lone surrogate escape. Two requests have the
// same parameters exactly when their canonical forms are equal.
func CanonicalParams(raw json.RawMessage) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return []byte("{}"), nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, airlock.Errorf(airlock.EINVALID, "params must be a JSON object: %v", err)
	}
	if dec.More() {
		return nil, airlock.Errorf(airlock.EINVALID, "params must be one JSON object")
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, airlock.Errorf(airlock.EINVALID, "params must be a JSON object")
	}
	if err := strictJSON(raw); err != nil {
		return nil, err
	}
	// encoding/json writes map keys sorted and json.Number verbatim.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, airlock.Wrap(airlock.EINVALID, "params cannot be encoded", err)
	}
	out := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(out) > MaxParamsBytes {
		return nil, airlock.Errorf(airlock.EINVALID, "params are larger than %d bytes", MaxParamsBytes)
	}
	return out, nil
}

// strictJSON refuses syntactically valid JSON that two parsers could read
// as different values, which encoding/json would otherwise fold into one
// canonical form (so that a digest would stand for two requests): invalid
// UTF-8 and \u escapes of lone surrogates (both read as U+FFFD), and an
// object with the same key (after unescaping) twice (encoding/json keeps
// the last, other parsers the first). raw must be one valid JSON value.
func strictJSON(raw []byte) error {
	if !utf8.Valid(raw) {
		return airlock.Errorf(airlock.EINVALID, "params are not valid UTF-8")
	}
	if err := checkSurrogates(raw); err != nil {
		return err
	}
	return checkDuplicateKeys(raw)
}

// checkSurrogates refuses a \u escape of a UTF-16 surrogate that is not a
// high one immediately followed by an escaped low one.
func checkSurrogates(raw []byte) error {
	hex4 := func(i int) rune {
		if i+4 > len(raw) {
			return -1
		}
		n, err := strconv.ParseUint(string(raw[i:i+4]), 16, 16)
		if err != nil {
			return -1
		}
		return rune(n)
	}
	bad := airlock.Errorf(airlock.EINVALID, "params contain a lone UTF-16 surrogate escape")
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			if i+1 >= len(raw) || raw[i+1] != 'u' {
				i++ // a one-character escape
				continue
			}
			r := hex4(i + 2)
			i += 5
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return bad
			case r >= 0xD800 && r <= 0xDBFF:
				if i+2 >= len(raw) || raw[i+1] != '\\' || raw[i+2] != 'u' {
					return bad
				}
				if lo := hex4(i + 3); lo < 0xDC00 || lo > 0xDFFF {
					return bad
				}
				i += 6
			}
		}
	}
	return nil
}

// checkDuplicateKeys refuses an object, at any depth, that has a key twice.
func checkDuplicateKeys(raw []byte) error {
	type frame struct {
		keys    map[string]bool // nil for an array
		wantKey bool
	}
	var stack []*frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].wantKey = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		} else if err != nil {
			return airlock.Errorf(airlock.EINVALID, "params must be a JSON object: %v", err)
		}
		if n := len(stack); n > 0 && stack[n-1].keys != nil && stack[n-1].wantKey {
			if tok == json.Delim('}') {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			k, _ := tok.(string)
			if stack[n-1].keys[k] {
				return airlock.Errorf(airlock.EINVALID, "params have the key %q twice in one object", clip(k))
			}
			stack[n-1].keys[k], stack[n-1].wantKey = true, false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{keys: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// ParamsDigest is SHA-256 of canonical parameters.
func ParamsDigest(canonical []byte) []byte {
	h := sha256.Sum256(canonical)
	return h[:]
}

// TransactionDigest is SHA-256 over the canonical encoding of what a
// step-up confirms: the domain string "airlock-stepup-v1", then action,
// resource, params digest, session id, decision id and the expiry (RFC 3339
// UTC with microseconds), each as a 4-byte big-endian length followed by
// its bytes, so that no two different transactions encode alike.
func TransactionDigest(t *airlock.StepUp) []byte {
	h := sha256.New()
	for _, f := range [][]byte{
		[]byte("airlock-stepup-v1"),
		[]byte(t.Action), []byte(t.Resource), t.ParamsDigest, []byte(t.SessionID), []byte(t.DecisionID),
		[]byte(t.ExpiresAt.UTC().Format("2006-01-02T15:04:05.000000Z07:00")),
	} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		h.Write(n[:])
		h.Write(f)
	}
	return h.Sum(nil)
}

// Field is one line of a readable parameter summary.
type Field struct {
	Key   string
	Value string
}

// Summary flattens canonical parameters into readable lines for the
// step-up page: nested keys joined with ".", list items as "[i]", numbers,
// booleans and null as sent. It shows everything the proof is bound to —
// no line limit and no clipped value (canonical parameters are at most
// MaxParamsBytes), since hidden lines or a clipped tail could hide a payee —
// and nothing ambiguous: a string or key that is empty, has leading,
// trailing or repeated spaces, a character that is not graphic (control,
// format such as U+202E or U+200B, line breaks), or starts with a quote is
// shown quoted with Go escapes, and so is a key containing ".", "[" or "]".
func Summary(canonical []byte) []Field {
	dec := json.NewDecoder(bytes.NewReader(canonical))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return []Field{{Key: "params", Value: DisplayText(string(canonical))}}
	}
	var out []Field
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 0 && prefix != "" {
				out = append(out, Field{prefix, "{}"})
			}
			for _, k := range slices.Sorted(maps.Keys(x)) {
				key := displayKey(k)
				if prefix != "" {
					key = prefix + "." + key
				}
				walk(key, x[k])
			}
		case []any:
			if len(x) == 0 {
				out = append(out, Field{prefix, "[]"})
			}
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", prefix, i), e)
			}
		case string:
			out = append(out, Field{prefix, DisplayText(x)})
		case nil:
			out = append(out, Field{prefix, "null"})
		default:
			out = append(out, Field{prefix, fmt.Sprint(x)})
		}
	}
	walk("", v)
	return out
}

// plainText reports whether s reads the same to a person as its bytes say:
// not empty, only graphic characters, single ASCII spaces between words, and
// no leading quote (which would look like a quoted value).
func plainText(s string) bool {
	if s == "" || s[0] == '"' || s[0] == ' ' || s[len(s)-1] == ' ' || strings.Contains(s, "  ") {
		return false
	}
	for _, r := range s {
		if r == utf8.RuneError || !shownAsIs(r) {
			return false
		}
	}
	return true
}

// DisplayText is s as a person should see it on a confirmation page: as is
// when it is plain text, else quoted with Go escapes (so that invisible,
// control and direction-changing characters show as escapes).
func DisplayText(s string) string {
	if plainText(s) {
		return s
	}
	return quoteVisible(s)
}

// quoteVisible quotes s like strconv.QuoteToGraphic but also escapes every
// space character other than the ASCII space (U+00A0, U+2007, U+3000 …),
// which QuoteToGraphic keeps as is although a person cannot tell them from
// a space.
func quoteVisible(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case shownAsIs(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToASCII(r) // e.g. '\u00a0', '\n'
			b.WriteString(q[1 : len(q)-1])
		}
	}
	b.WriteByte('"')
	return b.String()
}

// shownAsIs reports whether r reads as itself on a page: the ASCII space,
// or a graphic character that is neither another space nor blank.
func shownAsIs(r rune) bool {
	return r == ' ' || (unicode.IsGraphic(r) && !unicode.IsSpace(r) && !blankGraphic(r))
}

// blankGraphic reports a character Unicode counts as graphic that shows
// as nothing or as a blank: the default-ignorable ones of letter or mark
// category (U+034F combining grapheme joiner, the Hangul fillers U+115F,
// U+1160, U+3164, U+FFA0, the Khmer inherent vowels U+17B4/5, …), the
// variation selectors, and the Braille blank U+2800. Shown raw, they would
// make two different texts read alike ("INC-12\u034f34" as "INC-1234").
func blankGraphic(r rune) bool {
	return r == 0x2800 || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) || unicode.Is(unicode.Variation_Selector, r)
}

// displayKey is DisplayText for a key, which is also quoted when it
// contains the path punctuation "." "[" "]".
func displayKey(k string) string {
	if plainText(k) && !strings.ContainsAny(k, ".[]") {
		return k
	}
	return quoteVisible(k)
}

func clip(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if r := []rune(s); len(r) > 200 {
		return string(r[:200]) + "…"
	}
	return s
}

// expiryText formats t for messages.
func expiryText(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
