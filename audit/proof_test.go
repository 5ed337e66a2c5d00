package audit_test

import (
	"bytes"
	"context"
	"testing"

	"airlock"
	"airlock/audit"

	"golang.org/x/mod/sumdb/tlog"
)

func TestProve(t *testing.T) {
	ctx := context.Background()
	s, path := openStore(t)
	if _, err := audit.Prove(ctx, s, 1); airlock.ErrorCode(err) != airlock.ENOTFOUND {
		t.Errorf("proof without a checkpoint: %v, want ENOTFOUND", err)
	}
	cp := &audit.Checkpointer{Store: s, Key: newKey(t, "airlock/test"), Origin: "airlock/test"}
	appendEvents(t, s, 1, 13)
	c, err := cp.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	appendEvents(t, s, 14, 2) // not covered yet
	for seq := int64(1); seq <= 13; seq++ {
		p, err := audit.Prove(ctx, s, seq)
		if err != nil {
			t.Fatalf("Prove(%d): %v", seq, err)
		}
		root, _ := tlog.TreeHash(13, audit.HashReader(ctx, s))
		if p.TreeSize != 13 || p.RootHash != root || p.Checkpoint != string(c.Text) ||
			tlog.CheckRecord(p.Hashes, 13, root, seq-1, tlog.RecordHash([]byte(p.Leaf))) != nil {
			t.Fatalf("proof %d does not check: %+v", seq, p)
		}
	}
	for _, seq := range []int64{0, -1, 14, 99} {
		if _, err := audit.Prove(ctx, s, seq); airlock.ErrorCode(err) != airlock.EINVALID {
			t.Errorf("Prove(%d): %v, want EINVALID", seq, err)
		}
	}
	// A stored event that no longer matches: Prove refuses rather than
	// hand out a proof that does not check.
	db := admin(t, path)
	leaf := bytes.Replace(leafOf(t, db, 5), []byte(`"u-5"`), []byte(`"u-6"`), 1)
	exec(t, db, `UPDATE audit_log SET leaf = ? WHERE seq = 5`, leaf)
	if _, err := audit.Prove(ctx, s, 5); airlock.ErrorCode(err) != airlock.EINTERNAL {
		t.Errorf("Prove of a tampered event: %v, want EINTERNAL", err)
	}
}

func TestExport(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	appendEvents(t, s, 1, 5)
	var b bytes.Buffer
	last, err := audit.Export(ctx, s, &b, 2)
	if err != nil || last != 5 {
		t.Fatalf("Export: %d, %v", last, err)
	}
	entries, _ := s.ReadAuditEntries(ctx, 2, 10)
	var want bytes.Buffer
	for _, e := range entries {
		want.Write(e.Leaf)
		want.WriteByte('\n')
	}
	if !bytes.Equal(b.Bytes(), want.Bytes()) {
		t.Errorf("export:\n%s\nwant\n%s", b.Bytes(), want.Bytes())
	}
}
