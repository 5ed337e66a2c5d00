package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"airlock"

	"golang.org/x/mod/sumdb/tlog"
)

// numberRoundTrip returns m as stores return AuditEvent.Details: through
// canonical JSON decoded with UseNumber.
func numberRoundTrip(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// memTree is an in-memory reference for the stored hashes: what any store
// must hold after the same appends.
type memTree struct {
	leaves [][]byte
	hashes []tlog.Hash
}

func (m *memTree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m.hashes)) {
			return nil, fmt.Errorf("memTree: no hash %d", x)
		}
		out[i] = m.hashes[x]
	}
	return out, nil
}

func (m *memTree) add(t *testing.T, leaf []byte) []tlog.Hash {
	t.Helper()
	hs, err := tlog.StoredHashes(int64(len(m.leaves)), leaf, m)
	if err != nil {
		t.Fatal(err)
	}
	m.leaves = append(m.leaves, leaf)
	m.hashes = append(m.hashes, hs...)
	return hs
}

// storeHashReader reads s's stored hashes.
func storeHashReader(ctx context.Context, s airlock.Store) tlog.HashReader {
	return tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) { return s.ReadAuditHashes(ctx, ix) })
}

func testAuditLog(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("batch-append", func(t *testing.T) {
		s := open(t)
		must(t, "AppendAudit()", s.AppendAudit(ctx))
		if n, err := s.AuditTreeSize(ctx); err != nil || n != 0 {
			t.Fatalf("AuditTreeSize of an empty log = %d, %v", n, err)
		}
		a := fullEvent("auth.login", t0)
		b := &airlock.AuditEvent{Time: at(time.Second), Type: "auth.logout", Outcome: airlock.OutcomeSuccess}
		c := fullEvent("audit.read", at(2*time.Second))
		must(t, "AppendAudit(a, b, c)", s.AppendAudit(ctx, a, b, c))
		if a.Seq != 1 || b.Seq != 2 || c.Seq != 3 {
			t.Errorf("batch seqs = %d, %d, %d, want 1, 2, 3", a.Seq, b.Seq, c.Seq)
		}
		d := &airlock.AuditEvent{Time: at(3 * time.Second), Type: "x.y", Outcome: airlock.OutcomeSuccess}
		must(t, "AppendAudit(d)", s.AppendAudit(ctx, d))
		if d.Seq != 4 {
			t.Errorf("seq after a batch = %d, want 4", d.Seq)
		}
		if n, err := s.AuditTreeSize(ctx); err != nil || n != 4 {
			t.Errorf("AuditTreeSize = %d, %v, want 4", n, err)
		}
	})

	t.Run("fail-batch-all-or-nothing", func(t *testing.T) {
		s := open(t)
		must(t, "AppendAudit", s.AppendAudit(ctx, &airlock.AuditEvent{Time: t0, Type: "x.first", Outcome: airlock.OutcomeSuccess}))
		for _, tc := range []struct {
			name string
			bad  *airlock.AuditEvent
		}{
			{"no-type", &airlock.AuditEvent{Time: t0, Outcome: airlock.OutcomeSuccess}},
			{"no-outcome", &airlock.AuditEvent{Time: t0, Type: "x.y"}},
			{"no-time", &airlock.AuditEvent{Type: "x.y", Outcome: airlock.OutcomeSuccess}},
			{"details-not-json", &airlock.AuditEvent{Time: t0, Type: "x.y", Outcome: airlock.OutcomeSuccess,
				Details: map[string]any{"f": func() {}}}},
			{"nil", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				good := &airlock.AuditEvent{Time: t0, Type: "x.good", Outcome: airlock.OutcomeSuccess}
				wantCode(t, "AppendAudit", s.AppendAudit(ctx, good, tc.bad), airlock.EINVALID)
				if good.Seq != 0 {
					t.Errorf("good event of a failed batch got Seq %d", good.Seq)
				}
				if n, _ := s.AuditTreeSize(ctx); n != 1 {
					t.Errorf("tree size after a failed batch = %d, want 1", n)
				}
				if list, _ := s.ListAudit(ctx, airlock.AuditFilter{}); len(list) != 1 {
					t.Errorf("failed batch left %d events, want 1", len(list))
				}
			})
		}
		e := &airlock.AuditEvent{Time: t0, Type: "x.after", Outcome: airlock.OutcomeSuccess}
		must(t, "AppendAudit after failures", s.AppendAudit(ctx, e))
		if e.Seq != 2 {
			t.Errorf("seq after failed batches = %d, want 2 (no gap)", e.Seq)
		}
	})

	t.Run("leaves-and-hashes", func(t *testing.T) {
		s := open(t)
		var ref memTree
		var all []*airlock.AuditEvent
		n := 0
		// Batches of odd sizes, so that subtrees complete inside and across
		// batches.
		for bi, size := range []int{1, 3, 7, 1, 20, 2, 33} {
			batch := make([]*airlock.AuditEvent, size)
			for i := range batch {
				n++
				batch[i] = &airlock.AuditEvent{Time: at(time.Duration(n) * time.Millisecond), Type: "load.batch",
					Outcome: airlock.OutcomeSuccess, UserID: fmt.Sprintf("u-%d", n%3), GrantID: fmt.Sprintf("g-%d", bi),
					Details: map[string]any{"n": n, "big": int64(1)<<60 + int64(n)}}
			}
			must(t, "AppendAudit", s.AppendAudit(ctx, batch...))
			all = append(all, batch...)
		}
		size, err := s.AuditTreeSize(ctx)
		must(t, "AuditTreeSize", err)
		if size != int64(n) {
			t.Fatalf("AuditTreeSize = %d, want %d", size, n)
		}
		var entries []*airlock.AuditEntry
		for after := int64(0); ; {
			page, err := s.ReadAuditEntries(ctx, after, 10)
			must(t, "ReadAuditEntries", err)
			if len(page) == 0 {
				break
			}
			if len(page) > 10 {
				t.Fatalf("ReadAuditEntries(limit 10) returned %d", len(page))
			}
			entries = append(entries, page...)
			after = page[len(page)-1].Seq
		}
		if len(entries) != n {
			t.Fatalf("ReadAuditEntries paged %d entries, want %d", len(entries), n)
		}
		_, err = s.ReadAuditEntries(ctx, 0, -1)
		wantCode(t, "ReadAuditEntries negative limit", err, airlock.EINVALID)
		for i, e := range all {
			ent := entries[i]
			if ent.Seq != int64(i+1) || e.Seq != int64(i+1) {
				t.Fatalf("entry %d: Seq %d, event Seq %d", i, ent.Seq, e.Seq)
			}
			leaf, err := airlock.AuditLeaf(e)
			must(t, "AuditLeaf", err)
			if !bytes.Equal(ent.Leaf, leaf) {
				t.Errorf("seq %d: stored leaf %s, want %s", ent.Seq, ent.Leaf, leaf)
			}
			want := ref.add(t, leaf)
			checkEqual(t, fmt.Sprintf("seq %d hashes", ent.Seq), want, ent.Hashes)
			if !ent.Time.Equal(e.Time) || ent.Type != e.Type || ent.UserID != e.UserID || ent.SessionID != e.SessionID || ent.GrantID != e.GrantID {
				t.Errorf("seq %d: index columns %+v disagree with the event", ent.Seq, ent)
			}
		}
		// Every stored hash reads back by its tlog index, in any order.
		count := tlog.StoredHashCount(size)
		if count != int64(len(ref.hashes)) {
			t.Fatalf("reference holds %d hashes, tlog says %d", len(ref.hashes), count)
		}
		idx := make([]int64, 0, count)
		for i := count - 1; i >= 0; i-- {
			idx = append(idx, i)
		}
		got, err := s.ReadAuditHashes(ctx, idx)
		must(t, "ReadAuditHashes", err)
		for i, x := range idx {
			if got[i] != ref.hashes[x] {
				t.Fatalf("hash %d = %v, want %v", x, got[i], ref.hashes[x])
			}
		}
		_, err = s.ReadAuditHashes(ctx, []int64{0, count})
		wantCode(t, "ReadAuditHashes beyond the tree", err, airlock.ENOTFOUND)

		// The tree head and proofs computed through the store match the
		// reference.
		sr := storeHashReader(ctx, s)
		for _, m := range []int64{1, 2, 3, 8, 13, 32, size} {
			th, err := tlog.TreeHash(m, sr)
			must(t, "TreeHash", err)
			if wantTH, _ := tlog.TreeHash(m, &ref); th != wantTH {
				t.Errorf("TreeHash(%d) through the store differs", m)
			}
		}
		th, _ := tlog.TreeHash(size, sr)
		for _, k := range []int64{0, 5, size - 1} {
			p, err := tlog.ProveRecord(size, k, sr)
			must(t, "ProveRecord", err)
			if err := tlog.CheckRecord(p, size, th, k, tlog.RecordHash(ref.leaves[k])); err != nil {
				t.Errorf("inclusion proof of record %d: %v", k, err)
			}
		}
		old, _ := tlog.TreeHash(9, sr)
		tp, err := tlog.ProveTree(size, 9, sr)
		must(t, "ProveTree", err)
		if err := tlog.CheckTree(tp, size, th, 9, old); err != nil {
			t.Errorf("consistency proof 9 → %d: %v", size, err)
		}

		// Events read back are the leaves parsed.
		list, err := s.ListAudit(ctx, airlock.AuditFilter{Limit: n})
		must(t, "ListAudit", err)
		for i, e := range list {
			leaf, err := airlock.AuditLeaf(e)
			must(t, "AuditLeaf", err)
			if !bytes.Equal(leaf, entries[i].Leaf) {
				t.Errorf("seq %d: ListAudit's event does not re-encode to its leaf", e.Seq)
			}
		}
		if v := list[0].Details["big"]; v != json.Number("1152921504606846977") {
			t.Errorf("a large number in Details came back as %#v", v)
		}
	})

	t.Run("filters-grant-and-time", func(t *testing.T) {
		s := open(t)
		for i, g := range []string{"g-1", "", "g-2", "g-1", "g-1"} {
			must(t, "AppendAudit", s.AppendAudit(ctx, &airlock.AuditEvent{Time: at(time.Duration(i) * time.Minute).In(elsewhere),
				Type: "elevate.x", GrantID: g, Outcome: airlock.OutcomeSuccess}))
		}
		for _, tc := range []struct {
			name string
			f    airlock.AuditFilter
			want []int64
		}{
			{"grant", airlock.AuditFilter{GrantID: "g-1"}, []int64{1, 4, 5}},
			{"grant-newest-limit", airlock.AuditFilter{GrantID: "g-1", Newest: true, Limit: 2}, []int64{5, 4}},
			{"grant-none", airlock.AuditFilter{GrantID: "g-9"}, nil},
			{"since-inclusive", airlock.AuditFilter{Since: at(2 * time.Minute)}, []int64{3, 4, 5}},
			{"until-exclusive", airlock.AuditFilter{Until: at(2 * time.Minute)}, []int64{1, 2}},
			{"since-until", airlock.AuditFilter{Since: at(time.Minute), Until: at(3 * time.Minute).In(elsewhere)}, []int64{2, 3}},
			{"since-until-grant", airlock.AuditFilter{Since: at(time.Second), Until: at(time.Hour), GrantID: "g-1"}, []int64{4, 5}},
			{"since-after-all", airlock.AuditFilter{Since: at(time.Hour)}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				list, err := s.ListAudit(ctx, tc.f)
				must(t, "ListAudit", err)
				var got []int64
				for _, e := range list {
					got = append(got, e.Seq)
				}
				checkEqual(t, "seqs", tc.want, got)
			})
		}
		_, err := s.ListAudit(ctx, airlock.AuditFilter{Limit: -1})
		wantCode(t, "ListAudit negative limit", err, airlock.EINVALID)
	})

	t.Run("checkpoints", func(t *testing.T) {
		s := open(t)
		_, err := s.LatestAuditCheckpoint(ctx)
		wantCode(t, "LatestAuditCheckpoint on an empty store", err, airlock.ENOTFOUND)
		for range 5 {
			must(t, "AppendAudit", s.AppendAudit(ctx, &airlock.AuditEvent{Time: t0, Type: "x.y", Outcome: airlock.OutcomeSuccess}))
		}
		cp := func(size int64, text string) *airlock.AuditCheckpoint {
			return &airlock.AuditCheckpoint{Size: size, Text: []byte(text), CreatedAt: at(time.Duration(size) * time.Second)}
		}
		wantCode(t, "size 0", s.AddAuditCheckpoint(ctx, cp(0, "x")), airlock.EINVALID)
		wantCode(t, "beyond the tree", s.AddAuditCheckpoint(ctx, cp(6, "x")), airlock.EINVALID)
		wantCode(t, "empty text", s.AddAuditCheckpoint(ctx, cp(2, "")), airlock.EINVALID)
		must(t, "add 2", s.AddAuditCheckpoint(ctx, cp(2, "two\n")))
		must(t, "add 2 again, same text", s.AddAuditCheckpoint(ctx, cp(2, "two\n")))
		wantCode(t, "add 2, other text", s.AddAuditCheckpoint(ctx, cp(2, "TWO\n")), airlock.ECONFLICT)
		must(t, "add 5", s.AddAuditCheckpoint(ctx, cp(5, "five\n")))
		must(t, "add 3 (late)", s.AddAuditCheckpoint(ctx, cp(3, "three\n")))
		latest, err := s.LatestAuditCheckpoint(ctx)
		must(t, "LatestAuditCheckpoint", err)
		checkEqual(t, "latest", cp(5, "five\n"), latest)
		all, err := s.ListAuditCheckpoints(ctx, 0, 0)
		must(t, "ListAuditCheckpoints", err)
		checkEqual(t, "all", []*airlock.AuditCheckpoint{cp(2, "two\n"), cp(3, "three\n"), cp(5, "five\n")}, all)
		page, err := s.ListAuditCheckpoints(ctx, 2, 1)
		must(t, "ListAuditCheckpoints", err)
		checkEqual(t, "page", []*airlock.AuditCheckpoint{cp(3, "three\n")}, page)
		_, err = s.ListAuditCheckpoints(ctx, 0, -1)
		wantCode(t, "ListAuditCheckpoints negative limit", err, airlock.EINVALID)
	})

	t.Run("cursors", func(t *testing.T) {
		s := open(t)
		for range 4 {
			must(t, "AppendAudit", s.AppendAudit(ctx, &airlock.AuditEvent{Time: t0, Type: "x.y", Outcome: airlock.OutcomeSuccess}))
		}
		if c, err := s.AuditCursor(ctx, "siem"); err != nil || c != 0 {
			t.Fatalf("unset cursor = %d, %v, want 0", c, err)
		}
		must(t, "set 3", s.SetAuditCursor(ctx, "siem", 3))
		must(t, "set 3 again", s.SetAuditCursor(ctx, "siem", 3))
		wantCode(t, "back to 2", s.SetAuditCursor(ctx, "siem", 2), airlock.ECONFLICT)
		wantCode(t, "beyond the tree", s.SetAuditCursor(ctx, "siem", 5), airlock.EINVALID)
		wantCode(t, "negative", s.SetAuditCursor(ctx, "file", -1), airlock.EINVALID)
		wantCode(t, "no name", s.SetAuditCursor(ctx, "", 1), airlock.EINVALID)
		must(t, "set other", s.SetAuditCursor(ctx, "file", 4))
		if c, err := s.AuditCursor(ctx, "siem"); err != nil || c != 3 {
			t.Errorf("siem cursor = %d, %v, want 3", c, err)
		}
		if c, err := s.AuditCursor(ctx, "file"); err != nil || c != 4 {
			t.Errorf("file cursor = %d, %v, want 4", c, err)
		}
	})
}
