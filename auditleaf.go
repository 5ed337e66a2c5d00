package airlock

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/tlog"
)

// The audit log is a Merkle tree (RFC 9162, as implemented by
// golang.org/x/mod/sumdb/tlog) whose leaves are the events' canonical JSON.
// The functions in this file are the one definition of that encoding and of
// the tree bookkeeping, shared by every store and by verify, so that two
// stores can never disagree about what a leaf or a stored hash is.

// auditTimeLayout is the leaf's time format: RFC 3339 in UTC with exactly six
// fractional digits, so that a time has one spelling.
const auditTimeLayout = "2006-01-02T15:04:05.000000Z"

// AuditLeaf returns the leaf data of e: its canonical JSON. The encoding is
//
//   - one JSON object, keys sorted bytewise, no insignificant whitespace,
//     no trailing newline;
//   - "seq" (e.Seq, which must be positive), "time" (e.Time in UTC with
//     exactly six fractional digits; finer precision is truncated), "type"
//     and "outcome" always present; every other string field present only
//     when not empty, under its JSON name in AuditEvent;
//   - "details" present only when e.Details is not empty, canonicalized the
//     same way at every depth; numbers keep exactly the digits
//     encoding/json gives them (a json.Number is written verbatim);
//   - strings escaped as encoding/json does with HTML escaping off
//     (U+2028/U+2029 escaped), except that each byte of invalid UTF-8
//     becomes a literal U+FFFD.
//
// It returns EINVALID for a Seq < 1, a zero Time or one outside years
// 1–9999, an empty Type or Outcome, or details that do not marshal as JSON.
// e is not modified.
func AuditLeaf(e *AuditEvent) ([]byte, error) {
	if e == nil {
		return nil, Errorf(EINVALID, "audit: nil event")
	}
	if e.Seq < 1 {
		return nil, Errorf(EINVALID, "audit: event seq %d is not positive", e.Seq)
	}
	if e.Type == "" {
		return nil, Errorf(EINVALID, "audit: event has no type")
	}
	if e.Outcome == "" {
		return nil, Errorf(EINVALID, "audit: event has no outcome")
	}
	t := e.Time.UTC()
	if e.Time.IsZero() || t.Year() < 1 || t.Year() > 9999 {
		return nil, Errorf(EINVALID, "audit: event time %v is zero or out of range", e.Time)
	}
	var details []byte
	if len(e.Details) > 0 {
		var err error
		if details, err = canonicalJSON(e.Details); err != nil {
			return nil, Wrap(EINVALID, "audit: event details are not JSON", err)
		}
	}

	b := make([]byte, 0, 256+len(details))
	b = append(b, '{')
	first := true
	key := func(k string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
	}
	str := func(k, v string) {
		if v != "" {
			key(k)
			b = appendJSONString(b, v)
		}
	}
	// Keys in bytewise order (TestAuditLeafKeysSorted checks it).
	str("actor", e.Actor)
	str("credential_id", e.CredentialID)
	str("decision_id", e.DecisionID)
	if details != nil {
		key("details")
		b = append(b, details...)
	}
	str("device_id", e.DeviceID)
	str("grant_id", e.GrantID)
	str("ip", e.IP)
	str("outcome", e.Outcome)
	str("reason", e.Reason)
	str("request_id", e.RequestID)
	key("seq")
	b = strconv.AppendInt(b, e.Seq, 10)
	str("session_id", e.SessionID)
	str("ssh_session_id", e.SSHSessionID)
	str("subject", e.Subject)
	key("time")
	b = append(b, '"')
	b = t.AppendFormat(b, auditTimeLayout)
	b = append(b, '"')
	str("transaction_id", e.TransactionID)
	str("type", e.Type)
	str("user_id", e.UserID)
	b = append(b, '}')
	return b, nil
}

// appendJSONString appends s as a JSON string the way encoding/json
// encodes it with HTML escaping off — '"', '\\' and control characters
// escaped (\b \f \n \r \t short, others \u00XX), U+2028 and U+2029 as
// \u2028 and \u2029, everything else as is — except that each byte that is
// not valid UTF-8 becomes U+FFFD written as is, not as \ufffd: the form
// that decoding and encoding again leaves unchanged, so the leaf is a fixed
// point. (TestAppendJSONStringMatchesEncodingJSON holds it to that.)
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = utf8.AppendRune(b, utf8.RuneError)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// canonicalJSON returns v's canonical JSON: what marshalling v, decoding
// the result with UseNumber and marshalling again gives (maps marshal with
// sorted keys, numbers keep their digits). Common value types are encoded
// directly; anything else takes that round trip.
func canonicalJSON(v any) ([]byte, error) {
	if b, ok := appendCanonical(make([]byte, 0, 128), v); ok {
		return b, nil
	}
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

// appendCanonical is canonicalJSON's direct path. It reports false for a
// value it does not handle exactly as the round trip would (the caller then
// takes the round trip).
func appendCanonical(b []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), true
	case bool:
		return strconv.AppendBool(b, x), true
	case string:
		return appendJSONString(b, x), true
	case json.Number:
		if !isJSONNumber(string(x)) {
			return b, false
		}
		return append(b, x...), true
	case int:
		return strconv.AppendInt(b, int64(x), 10), true
	case int8:
		return strconv.AppendInt(b, int64(x), 10), true
	case int16:
		return strconv.AppendInt(b, int64(x), 10), true
	case int32:
		return strconv.AppendInt(b, int64(x), 10), true
	case int64:
		return strconv.AppendInt(b, x, 10), true
	case uint:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint8:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint16:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint64:
		return strconv.AppendUint(b, x, 10), true
	case float64, float32:
		// encoding/json's float format, by construction; NaN and ±Inf
		// fail and take the round trip, which reports the error.
		raw, err := json.Marshal(x)
		if err != nil {
			return b, false
		}
		return append(b, raw...), true
	case []any:
		if x == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendCanonical(b, e); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	case []string:
		if x == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, e)
		}
		return append(b, ']'), true
	case map[string]any:
		if x == nil {
			return append(b, "null"...), true
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			if !utf8.ValidString(k) {
				// Invalid keys collapse into U+FFFD on the way: leave
				// that to the round trip.
				return b, false
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			var ok bool
			if b, ok = appendCanonical(b, x[k]); !ok {
				return b, false
			}
		}
		return append(b, '}'), true
	}
	return b, false
}

// isJSONNumber reports whether s is a JSON number literal (RFC 8259 §6),
// as encoding/json requires of a json.Number it marshals.
func isJSONNumber(s string) bool {
	if s != "" && s[0] == '-' {
		s = s[1:]
	}
	digits := func() int {
		n := 0
		for n < len(s) && '0' <= s[n] && s[n] <= '9' {
			n++
		}
		s = s[n:]
		return n
	}
	switch {
	case s == "":
		return false
	case s[0] == '0':
		s = s[1:]
	case '1' <= s[0] && s[0] <= '9':
		digits()
	default:
		return false
	}
	if len(s) > 0 && s[0] == '.' {
		s = s[1:]
		if digits() == 0 {
			return false
		}
	}
	if len(s) > 0 && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
			s = s[1:]
		}
		if digits() == 0 {
			return false
		}
	}
	return s == ""
}

// auditLeafJSON is the leaf's shape for decoding.
type auditLeafJSON struct {
	Seq           int64          `json:"seq"`
	Time          string         `json:"time"`
	Type          string         `json:"type"`
	Actor         string         `json:"actor"`
	Subject       string         `json:"subject"`
	Outcome       string         `json:"outcome"`
	Reason        string         `json:"reason"`
	UserID        string         `json:"user_id"`
	SessionID     string         `json:"session_id"`
	DeviceID      string         `json:"device_id"`
	CredentialID  string         `json:"credential_id"`
	DecisionID    string         `json:"decision_id"`
	TransactionID string         `json:"transaction_id"`
	RequestID     string         `json:"request_id"`
	GrantID       string         `json:"grant_id"`
	SSHSessionID  string         `json:"ssh_session_id"`
	IP            string         `json:"ip"`
	Details       map[string]any `json:"details"`
}

// ParseAuditLeaf returns the event whose leaf is leaf. Numbers in Details
// come back as json.Number, exactly as recorded; Time is in UTC. It accepts
// only canonical leaves: the result's AuditLeaf must be exactly leaf (so
// unknown or duplicate keys, other key orders or spellings, whitespace and
// a non-canonical time are all rejected), else EINVALID.
func ParseAuditLeaf(leaf []byte) (*AuditEvent, error) {
	// The direct parser reads the canonical shape quickly; whatever it
	// accepts must re-encode to exactly leaf, so it cannot accept more than
	// the general path below, which also names what is wrong.
	if e, ok := parseLeafFast(leaf); ok {
		if again, err := AuditLeaf(e); err == nil && bytes.Equal(again, leaf) {
			return e, nil
		}
	}
	var l auditLeafJSON
	dec := json.NewDecoder(bytes.NewReader(leaf))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, Wrap(EINVALID, "audit: leaf is not an event", err)
	}
	if dec.More() {
		return nil, Errorf(EINVALID, "audit: leaf has data after the event")
	}
	t, err := time.Parse(auditTimeLayout, l.Time)
	if err != nil {
		return nil, Wrap(EINVALID, "audit: leaf time is not canonical", err)
	}
	e := &AuditEvent{
		Seq: l.Seq, Time: t.UTC(), Type: l.Type, Actor: l.Actor, Subject: l.Subject, Outcome: l.Outcome,
		Reason: l.Reason, UserID: l.UserID, SessionID: l.SessionID, DeviceID: l.DeviceID,
		CredentialID: l.CredentialID, DecisionID: l.DecisionID, TransactionID: l.TransactionID,
		RequestID: l.RequestID, GrantID: l.GrantID, SSHSessionID: l.SSHSessionID, IP: l.IP,
		Details: l.Details,
	}
	again, err := AuditLeaf(e)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, leaf) {
		return nil, Errorf(EINVALID, "audit: leaf of seq %d is not in canonical form", l.Seq)
	}
	return e, nil
}

// parseLeafFast parses a leaf of the canonical shape: an object whose
// values are strings without escapes, the integer seq, and a details
// object (decoded with encoding/json, numbers as json.Number). It reports
// false for anything else (ParseAuditLeaf then takes encoding/json's path).
func parseLeafFast(b []byte) (*AuditEvent, bool) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return nil, false
	}
	e := &AuditEvent{}
	i := 1
	str := func() (string, bool) { // at an opening quote
		if i >= len(b) || b[i] != '"' {
			return "", false
		}
		j := i + 1
		for j < len(b) && b[j] != '"' {
			if b[j] == '\\' || b[j] < 0x20 {
				return "", false
			}
			j++
		}
		if j >= len(b) {
			return "", false
		}
		v := string(b[i+1 : j])
		i = j + 1
		return v, true
	}
	for i < len(b)-1 {
		if i > 1 {
			if b[i] != ',' {
				return nil, false
			}
			i++
		}
		key, ok := str()
		if !ok || i >= len(b) || b[i] != ':' {
			return nil, false
		}
		i++
		switch key {
		case "seq":
			j := i
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			n, err := strconv.ParseInt(string(b[i:j]), 10, 64)
			if err != nil {
				return nil, false
			}
			e.Seq, i = n, j
			continue
		case "details":
			v, end, ok := parseValueFast(b, i, 0)
			m, isMap := v.(map[string]any)
			if !ok || !isMap {
				return nil, false
			}
			e.Details, i = m, end
			continue
		}
		v, ok := str()
		if !ok {
			return nil, false
		}
		var dst *string
		switch key {
		case "actor":
			dst = &e.Actor
		case "credential_id":
			dst = &e.CredentialID
		case "decision_id":
			dst = &e.DecisionID
		case "device_id":
			dst = &e.DeviceID
		case "grant_id":
			dst = &e.GrantID
		case "ip":
			dst = &e.IP
		case "outcome":
			dst = &e.Outcome
		case "reason":
			dst = &e.Reason
		case "request_id":
			dst = &e.RequestID
		case "session_id":
			dst = &e.SessionID
		case "ssh_session_id":
			dst = &e.SSHSessionID
		case "subject":
			dst = &e.Subject
		case "transaction_id":
			dst = &e.TransactionID
		case "type":
			dst = &e.Type
		case "user_id":
			dst = &e.UserID
		case "time":
			t, err := time.Parse(auditTimeLayout, v)
			if err != nil {
				return nil, false
			}
			e.Time = t.UTC()
			continue
		default:
			return nil, false
		}
		*dst = v
	}
	return e, true
}

// parseValueFast decodes the JSON value at b[i] as encoding/json with
// UseNumber would (objects as map[string]any, arrays as []any, numbers as
// json.Number), for the simple forms canonical leaves use: strings without
// escapes, numbers, true, false, null, nested at most 64 deep. It returns
// the value, the index after it, and false for anything else.
func parseValueFast(b []byte, i, depth int) (any, int, bool) {
	if i >= len(b) || depth > 64 {
		return nil, 0, false
	}
	switch c := b[i]; {
	case c == '"':
		j := i + 1
		for j < len(b) && b[j] != '"' {
			if b[j] == '\\' || b[j] < 0x20 {
				return nil, 0, false
			}
			j++
		}
		if j >= len(b) {
			return nil, 0, false
		}
		return string(b[i+1 : j]), j + 1, true
	case c == '{':
		m := map[string]any{}
		i++
		for first := true; ; first = false {
			if i < len(b) && b[i] == '}' && first {
				return m, i + 1, true
			}
			k, j, ok := parseValueFast(b, i, depth+1)
			key, isStr := k.(string)
			if !ok || !isStr || j >= len(b) || b[j] != ':' {
				return nil, 0, false
			}
			if _, dup := m[key]; dup {
				return nil, 0, false
			}
			v, j, ok := parseValueFast(b, j+1, depth+1)
			if !ok || j >= len(b) {
				return nil, 0, false
			}
			m[key] = v
			switch b[j] {
			case ',':
				i = j + 1
			case '}':
				return m, j + 1, true
			default:
				return nil, 0, false
			}
		}
	case c == '[':
		a := []any{}
		i++
		for first := true; ; first = false {
			if i < len(b) && b[i] == ']' && first {
				return a, i + 1, true
			}
			v, j, ok := parseValueFast(b, i, depth+1)
			if !ok || j >= len(b) {
				return nil, 0, false
			}
			a = append(a, v)
			switch b[j] {
			case ',':
				i = j + 1
			case ']':
				return a, j + 1, true
			default:
				return nil, 0, false
			}
		}
	case c == '-' || (c >= '0' && c <= '9'):
		j := i
		for j < len(b) && (b[j] == '-' || b[j] == '+' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || (b[j] >= '0' && b[j] <= '9')) {
			j++
		}
		if !isJSONNumber(string(b[i:j])) {
			return nil, 0, false
		}
		return json.Number(b[i:j]), j, true
	case bytes.HasPrefix(b[i:], []byte("true")):
		return true, i + 4, true
	case bytes.HasPrefix(b[i:], []byte("false")):
		return false, i + 5, true
	case bytes.HasPrefix(b[i:], []byte("null")):
		return nil, i + 4, true
	}
	return nil, 0, false
}

// AuditCheckpoint is a signed checkpoint of the audit tree: a C2SP
// tlog-checkpoint signed note. The store keeps Text verbatim and does not
// parse it; Size must equal the tree size the note states.
type AuditCheckpoint struct {
	Size      int64     `json:"size"`
	Text      []byte    `json:"text"`
	CreatedAt time.Time `json:"created_at"`
}

// AuditEntry is one stored audit record, as the store keeps it: the leaf
// (the source of truth), the tree hashes stored with it, and the index
// columns used for filtering, which must agree with the leaf (verify checks
// that they do).
type AuditEntry struct {
	Seq  int64
	Leaf []byte
	// Hashes are the tlog stored hashes written with this record:
	// tlog.StoredHashes(Seq-1, Leaf, …), stored hash indexes
	// tlog.StoredHashIndex(0, Seq-1) onwards.
	Hashes    []tlog.Hash
	Time      time.Time
	Type      string
	UserID    string
	SessionID string
	GrantID   string
}

// AuditAppend is the work of one AppendAudit call, computed by
// PrepareAuditAppend for a store to write.
type AuditAppend struct {
	// Entries are the records to insert, Seq FirstSeq, FirstSeq+1, …
	Entries []*AuditEntry
}

// PrepareAuditAppend computes the records that append events to a tree of
// size records: their Seq (size+1, size+2, …), leaves, index columns and
// stored hashes. r must read the stored hashes of the existing tree (see
// AuditHashLocation); hashes of earlier events of the same batch are taken
// from the batch itself, and each index is read from r at most once. The
// events are not modified: the store sets their Seq once the batch is
// committed. An event that has no leaf is EINVALID and nothing is prepared.
func PrepareAuditAppend(size int64, events []*AuditEvent, r tlog.HashReader) (*AuditAppend, error) {
	if size < 0 {
		return nil, Errorf(EINTERNAL, "audit: negative tree size %d", size)
	}
	out := &AuditAppend{Entries: make([]*AuditEntry, 0, len(events))}
	start := tlog.StoredHashIndex(0, size) // the first index this batch writes
	var batch []tlog.Hash                  // hashes this batch writes, from start
	cache := map[int64]tlog.Hash{}
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		var missing []int64
		for i, x := range indexes {
			if x >= start {
				if x-start >= int64(len(batch)) {
					return nil, Errorf(EINTERNAL, "audit: hash %d read before it was written", x)
				}
				out[i] = batch[x-start]
			} else if h, ok := cache[x]; ok {
				out[i] = h
			} else {
				missing = append(missing, x)
			}
		}
		if len(missing) > 0 {
			got, err := r.ReadHashes(missing)
			if err != nil {
				return nil, err
			}
			if len(got) != len(missing) {
				return nil, Errorf(EINTERNAL, "audit: read %d hashes, want %d", len(got), len(missing))
			}
			for i, x := range missing {
				cache[x] = got[i]
			}
			for i, x := range indexes {
				if x < start {
					out[i] = cache[x]
				}
			}
		}
		return out, nil
	})
	// Every hash the batch reads from before it lies on the right edge of
	// the tree of size records: read that edge into the cache in one call.
	if edge := treeEdge(size); len(edge) > 0 && len(events) > 0 {
		if _, err := reader.ReadHashes(edge); err != nil {
			return nil, err
		}
	}
	for i, e := range events {
		if e == nil {
			return nil, Errorf(EINVALID, "audit: nil event")
		}
		c := *e
		c.Seq = size + 1 + int64(i)
		leaf, err := AuditLeaf(&c)
		if err != nil {
			return nil, err
		}
		hashes, err := tlog.StoredHashes(c.Seq-1, leaf, reader)
		if err != nil {
			return nil, err
		}
		batch = append(batch, hashes...)
		out.Entries = append(out.Entries, &AuditEntry{
			Seq: c.Seq, Leaf: leaf, Hashes: hashes,
			Time: c.Time.UTC().Truncate(time.Microsecond), Type: c.Type,
			UserID: c.UserID, SessionID: c.SessionID, GrantID: c.GrantID,
		})
	}
	return out, nil
}

// treeEdge returns the stored-hash indexes of the complete subtrees that
// make up a tree of size records, largest first: the hashes a later record
// and the tree head need from it.
func treeEdge(size int64) []int64 {
	var out []int64
	var start int64
	for level := 62; level >= 0; level-- {
		if size&(1<<uint(level)) != 0 {
			out = append(out, tlog.StoredHashIndex(level, start>>uint(level)))
			start += 1 << uint(level)
		}
	}
	return out
}

// AuditHashLocation says where the stored hash with tlog index index lives
// when each record keeps the hashes it wrote (AuditEntry.Hashes): in the
// record with sequence number seq, at position pos of its Hashes.
func AuditHashLocation(index int64) (seq int64, pos int) {
	level, n := tlog.SplitStoredHashIndex(index)
	// The level-L hash of subtree n is completed by record (n+1)·2^L − 1
	// (0-based), whose Seq is one more.
	return (n + 1) << uint(level), level
}

// AuditHashSeqs returns the Seq of the record holding each stored hash with
// the given tlog indexes (see AuditHashLocation), for a store to read those
// records' hashes; a negative index is EINVALID.
func AuditHashSeqs(indexes []int64) ([]int64, error) {
	seqs := make([]int64, 0, len(indexes))
	for _, x := range indexes {
		if x < 0 {
			return nil, Errorf(EINVALID, "negative audit hash index %d", x)
		}
		seq, _ := AuditHashLocation(x)
		seqs = append(seqs, seq)
	}
	return seqs, nil
}

// PickAuditHashes returns the stored hashes with the given tlog indexes from
// stored (a record's Seq → its Hashes), in order; an index whose hash is not
// there is ENOTFOUND.
func PickAuditHashes(indexes []int64, stored map[int64][]tlog.Hash) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		seq, pos := AuditHashLocation(x)
		hs, ok := stored[seq]
		if !ok || pos >= len(hs) {
			return nil, Errorf(ENOTFOUND, "audit hash %d not stored", x)
		}
		out[i] = hs[pos]
	}
	return out, nil
}

// EncodeAuditHashes returns hashes concatenated, 32 bytes each: the form a
// store may keep AuditEntry.Hashes in.
func EncodeAuditHashes(hashes []tlog.Hash) []byte {
	b := make([]byte, 0, len(hashes)*tlog.HashSize)
	for _, h := range hashes {
		b = append(b, h[:]...)
	}
	return b
}

// DecodeAuditHashes is the inverse of EncodeAuditHashes; a length that is
// not a multiple of 32 is EINTERNAL.
func DecodeAuditHashes(b []byte) ([]tlog.Hash, error) {
	if len(b)%tlog.HashSize != 0 {
		return nil, Errorf(EINTERNAL, "audit: stored hashes of %d bytes", len(b))
	}
	out := make([]tlog.Hash, len(b)/tlog.HashSize)
	for i := range out {
		copy(out[i][:], b[i*tlog.HashSize:])
	}
	return out, nil
}
