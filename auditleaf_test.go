package airlock

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/tlog"
)

// roundTrip is the definition canonicalJSON's direct path must match.
func roundTrip(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(tree); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// tricky strings: escapes, HTML characters, invalid UTF-8, U+2028/9.
var trickyStrings = []string{"", "plain", `quote " and \ back`, "<a href='x'>&amp;</a>", "\x00\x01\b\f\n\r\t\x1f\x7f",
	"\xff\xfe invalid", "line\u2028para\u2029", "ünïcödé 🦆", "\xed\xa0\x80 surrogate", "a\u00a0b"}

func randomValue(r *rand.Rand, depth int) any {
	switch n := r.IntN(14); {
	case n == 0:
		return nil
	case n == 1:
		return r.IntN(2) == 0
	case n == 2:
		return trickyStrings[r.IntN(len(trickyStrings))]
	case n == 3:
		return r.Int64() - r.Int64()
	case n == 4:
		return r.Uint64()
	case n == 5:
		return []float64{0, 0.25, -1e-7, 1e21, 123456789.125, math.SmallestNonzeroFloat64, 1 << 60}[r.IntN(7)]
	case n == 6:
		return json.Number([]string{"0", "-1.5e+10", "12345678901234567890123", "1E3"}[r.IntN(4)])
	case n == 7:
		return float32(0.1)
	case n == 8:
		return int8(-3)
	case n == 9 && depth < 3:
		out := []any{}
		for range r.IntN(4) {
			out = append(out, randomValue(r, depth+1))
		}
		return out
	case n == 10 && depth < 3:
		out := map[string]any{}
		for range r.IntN(5) {
			out[trickyStrings[r.IntN(len(trickyStrings))]+fmt.Sprint(r.IntN(3))] = randomValue(r, depth+1)
		}
		return out
	case n == 11:
		return []string{trickyStrings[r.IntN(len(trickyStrings))], "x"}
	case n == 12:
		return time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC) // not handled directly: round trip
	}
	return map[string]string{"k": "v"} // not handled directly either
}

// TestCanonicalJSONMatchesRoundTrip holds the direct encoder to the round
// trip's bytes on random nested values, tricky strings included.
func TestCanonicalJSONMatchesRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		v := map[string]any{"v": randomValue(r, 0), "w": randomValue(r, 1)}
		want, werr := roundTrip(v)
		got, gerr := canonicalJSON(v)
		if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("case %d %#v:\n got %s (%v)\nwant %s (%v)", i, v, got, gerr, want, werr)
		}
	}
	for _, bad := range []any{math.NaN(), math.Inf(1), json.Number("1.2.3"), func() {}} {
		if _, err := canonicalJSON(map[string]any{"x": bad}); err == nil {
			t.Errorf("canonicalJSON(%#v) succeeded", bad)
		}
	}
}

// TestAppendJSONStringMatchesEncodingJSON checks every single byte and
// a few runes against encoding/json with HTML escaping off.
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	var cases []string
	for b := range 256 {
		cases = append(cases, string([]byte{byte(b)}), "a"+string([]byte{byte(b)})+"z")
	}
	cases = append(cases, trickyStrings...)
	for _, s := range cases {
		// encoding/json writes invalid bytes as \ufffd; the leaf writes
		// U+FFFD itself, the fixed point of decoding and encoding again.
		var valid strings.Builder
		for i := 0; i < len(s); {
			r, n := utf8.DecodeRuneInString(s[i:])
			valid.WriteRune(r)
			i += n
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(valid.String())
		want := strings.TrimSuffix(buf.String(), "\n")
		if got := string(appendJSONString(nil, s)); got != want {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
}

func fullLeafEvent() *AuditEvent {
	return &AuditEvent{Seq: 7, Time: time.Date(2031, 3, 4, 5, 6, 7, 891011999, time.FixedZone("x", 3600)),
		Type: "auth.login", Actor: "a", Subject: "s", Outcome: OutcomeSuccess, Reason: "r", UserID: "u",
		SessionID: "ses", DeviceID: "dev", CredentialID: "cred", DecisionID: "dec", TransactionID: "tx",
		RequestID: "req", GrantID: "g", SSHSessionID: "ssh", IP: "192.0.2.1",
		Details: map[string]any{"b": 1, "a": []any{true, nil, "<x>"}}}
}

// TestAuditLeafKeysSorted checks the leaf against a generic canonical
// encoding: sorted keys, no white space, microsecond UTC time.
func TestAuditLeafKeysSorted(t *testing.T) {
	e := fullLeafEvent()
	leaf, err := AuditLeaf(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(leaf))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 18 {
		t.Errorf("leaf has %d keys, want all 18 fields", len(m))
	}
	again, _ := roundTrip(m)
	if !bytes.Equal(leaf, again) {
		t.Errorf("leaf is not canonical:\n%s\n%s", leaf, again)
	}
	if m["time"] != "2031-03-04T04:06:07.891011Z" {
		t.Errorf("time %v", m["time"])
	}
	want := `{"actor":"a","credential_id":"cred","decision_id":"dec","details":{"a":[true,null,"<x>"],"b":1},"device_id":"dev","grant_id":"g","ip":"192.0.2.1","outcome":"success","reason":"r","request_id":"req","seq":7,"session_id":"ses","ssh_session_id":"ssh","subject":"s","time":"2031-03-04T04:06:07.891011Z","transaction_id":"tx","type":"auth.login","user_id":"u"}`
	if string(leaf) != want {
		t.Errorf("leaf\n%s\nwant\n%s", leaf, want)
	}
	bare, _ := AuditLeaf(&AuditEvent{Seq: 1, Time: time.Unix(0, 1000).UTC(), Type: "x", Outcome: "success"})
	if string(bare) != `{"outcome":"success","seq":1,"time":"1970-01-01T00:00:00.000001Z","type":"x"}` {
		t.Errorf("bare leaf %s", bare)
	}
}

func TestAuditLeafInvalid(t *testing.T) {
	ok := func() *AuditEvent { return &AuditEvent{Seq: 1, Time: time.Now(), Type: "x", Outcome: "success"} }
	for name, e := range map[string]*AuditEvent{
		"nil":        nil,
		"seq-0":      func() *AuditEvent { e := ok(); e.Seq = 0; return e }(),
		"no-type":    func() *AuditEvent { e := ok(); e.Type = ""; return e }(),
		"no-outcome": func() *AuditEvent { e := ok(); e.Outcome = ""; return e }(),
		"no-time":    func() *AuditEvent { e := ok(); e.Time = time.Time{}; return e }(),
		"year-10000": func() *AuditEvent { e := ok(); e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC); return e }(),
		"details":    func() *AuditEvent { e := ok(); e.Details = map[string]any{"c": make(chan int)}; return e }(),
	} {
		if _, err := AuditLeaf(e); ErrorCode(err) != EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
}

// TestParseAuditLeaf checks the round trip and that only canonical leaves
// parse.
func TestParseAuditLeaf(t *testing.T) {
	e := fullLeafEvent()
	leaf, _ := AuditLeaf(e)
	got, err := ParseAuditLeaf(leaf)
	if err != nil {
		t.Fatal(err)
	}
	if fast, ok := parseLeafFast(leaf); !ok || !reflect.DeepEqual(fast, got) {
		t.Errorf("the direct parser does not read a canonical leaf: %v %+v", ok, fast)
	}
	if got.Seq != 7 || !got.Time.Equal(e.Time.Truncate(time.Microsecond)) || got.Details["b"] != json.Number("1") || got.SSHSessionID != "ssh" {
		t.Errorf("parsed %+v", got)
	}
	s := string(leaf)
	for name, bad := range map[string]string{
		"whitespace":      strings.Replace(s, `"seq":7`, `"seq": 7`, 1),
		"key-order":       `{"seq":1,"outcome":"success","time":"1970-01-01T00:00:00.000001Z","type":"x"}`,
		"unknown-key":     strings.Replace(s, `"actor":"a"`, `"actor":"a","zzz":1`, 1),
		"duplicate-key":   strings.Replace(s, `"actor":"a"`, `"actor":"a","actor":"b"`, 1),
		"upper-case-key":  strings.Replace(s, `"actor"`, `"Actor"`, 1),
		"time-not-micros": strings.Replace(s, `.891011Z`, `.891Z`, 1),
		"time-offset":     strings.Replace(s, `.891011Z`, `.891011+00:00`, 1),
		"empty-string":    strings.Replace(s, `"reason":"r"`, `"reason":""`, 1),
		"escaped-differs": strings.Replace(s, `"<x>"`, `"\u003cx>"`, 1),
		"trailing-data":   s + "{}",
		"not-json":        "nope",
		"seq-float":       strings.Replace(s, `"seq":7`, `"seq":7.0`, 1),
	} {
		if _, err := ParseAuditLeaf([]byte(bad)); ErrorCode(err) != EINVALID {
			t.Errorf("%s: ParseAuditLeaf(%s) = %v, want EINVALID", name, bad, err)
		}
	}
}

// FuzzAuditLeaf checks that any event's leaf parses back to the same leaf.
func FuzzAuditLeaf(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s, s, int64(1))
	}
	f.Fuzz(func(t *testing.T, a, b string, n int64) {
		e := &AuditEvent{Seq: 1 + n&0xffffff, Time: time.Unix(n%1e10, 0), Type: "t" + a, Outcome: "o", Reason: b,
			Details: map[string]any{a: b, "n": n, "list": []any{a, n}}}
		leaf, err := AuditLeaf(e)
		if err != nil {
			t.Skip()
		}
		got, err := ParseAuditLeaf(leaf)
		if err != nil {
			t.Fatalf("leaf %s does not parse: %v", leaf, err)
		}
		again, _ := AuditLeaf(got)
		if !bytes.Equal(leaf, again) {
			t.Fatalf("round trip changed the leaf:\n%s\n%s", leaf, again)
		}
		if want, _ := roundTrip(e.Details); !bytes.Contains(leaf, want) {
			t.Fatalf("details not canonical: %s vs %s", leaf, want)
		}
	})
}

// TestTreeEdge checks that the hashes PrepareAuditAppend prefetches are all
// that appending to, and hashing, a tree of each size reads.
func TestTreeEdge(t *testing.T) {
	var all []tlog.Hash
	mem := tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(ix))
		for i, x := range ix {
			out[i] = all[x]
		}
		return out, nil
	})
	for size := int64(0); size < 300; size++ {
		edge := map[int64]bool{}
		for _, x := range treeEdge(size) {
			edge[x] = true
		}
		var read []int64
		spy := tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) {
			read = append(read, ix...)
			return mem.ReadHashes(ix)
		})
		if size > 0 {
			if _, err := tlog.TreeHash(size, spy); err != nil {
				t.Fatal(err)
			}
		}
		hs, err := tlog.StoredHashes(size, []byte(fmt.Sprint(size)), spy)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range read {
			if !edge[x] {
				t.Fatalf("size %d: hash %d read but not on the edge %v", size, x, treeEdge(size))
			}
		}
		all = append(all, hs...)
	}
}
