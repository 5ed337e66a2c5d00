package decide

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"airlock"
)

// MaxParamsBytes bounds the canonical parameters of one request.
const MaxParamsBytes = 16 << 10

// CanonicalParams returns the canonical JSON of a request's parameters: the
// object re-encoded with its keys sorted (recursively), no insignificant
// whitespace, numbers exactly as sent. Absent or null parameters are "{}";
// anything but a JSON object, or more than MaxParamsBytes, is EINVALID.
// Two requests have the same parameters exactly when their canonical forms
// are equal.
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
// step-up page: nested keys joined with ".", list items as "[i]", strings
// unquoted, every value at most 200 characters, at most 50 lines (the last
// one then says how many more there are).
func Summary(canonical []byte) []Field {
	dec := json.NewDecoder(bytes.NewReader(canonical))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return []Field{{Key: "params", Value: clip(string(canonical))}}
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
				key := k
				if prefix != "" {
					key = prefix + "." + k
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
			out = append(out, Field{prefix, clip(x)})
		case nil:
			out = append(out, Field{prefix, "null"})
		default:
			out = append(out, Field{prefix, clip(fmt.Sprint(x))})
		}
	}
	walk("", v)
	const maxLines = 50
	if len(out) > maxLines {
		more := len(out) - (maxLines - 1)
		out = append(out[:maxLines-1], Field{"…", fmt.Sprintf("%d more", more)})
	}
	return out
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
