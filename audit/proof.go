package audit

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"airlock"

	"golang.org/x/mod/sumdb/tlog"
)

// Proof is an inclusion proof of one event in a signed checkpoint: enough
// for anyone holding the verifier key to check, with golang.org/x/mod/sumdb
// alone, that the event is in the log the checkpoint describes:
//
//	note.Open(Checkpoint, verifier) → origin, TreeSize, RootHash
//	tlog.CheckRecord(Hashes, TreeSize, RootHash, Seq-1, tlog.RecordHash(Leaf))
type Proof struct {
	Seq int64 `json:"seq"`
	// Leaf is the event's leaf, its canonical JSON, as text.
	Leaf       string      `json:"leaf"`
	LeafHash   tlog.Hash   `json:"leaf_hash"`
	TreeSize   int64       `json:"tree_size"`
	RootHash   tlog.Hash   `json:"root_hash"`
	Checkpoint string      `json:"checkpoint"`
	Hashes     []tlog.Hash `json:"proof"`
}

// Prove returns the inclusion proof of event seq against the latest stored
// checkpoint. A seq the checkpoint does not cover is EINVALID, no
// checkpoint at all ENOTFOUND. The proof is checked before it is returned;
// the checkpoint's signature is not (that is the reader's job, with the
// key they trust).
func Prove(ctx context.Context, store airlock.AuditStore, seq int64) (*Proof, error) {
	cp, err := store.LatestAuditCheckpoint(ctx)
	if airlock.ErrorCode(err) == airlock.ENOTFOUND {
		return nil, airlock.Wrap(airlock.ENOTFOUND, "audit: no checkpoint yet", err)
	} else if err != nil {
		return nil, err
	}
	if seq < 1 || seq > cp.Size {
		return nil, airlock.Errorf(airlock.EINVALID, "audit: seq %d is not covered by the latest checkpoint (size %d)", seq, cp.Size)
	}
	t, err := ParseCheckpointNote(cp.Text)
	if err != nil {
		return nil, airlock.Wrap(airlock.EINTERNAL, "audit: latest checkpoint does not parse", err)
	}
	entries, err := store.ReadAuditEntries(ctx, seq-1, 1)
	if err != nil {
		return nil, err
	}
	if len(entries) != 1 || entries[0].Seq != seq {
		return nil, airlock.Errorf(airlock.ENOTFOUND, "audit: event %d not stored", seq)
	}
	leaf := entries[0].Leaf
	hashes, err := tlog.ProveRecord(t.Size, seq-1, HashReader(ctx, store))
	if err != nil {
		return nil, airlock.Wrap(airlock.EINTERNAL, "audit: inclusion proof", err)
	}
	lh := tlog.RecordHash(leaf)
	if err := tlog.CheckRecord(hashes, t.Size, t.Hash, seq-1, lh); err != nil {
		return nil, airlock.Wrap(airlock.EINTERNAL, "audit: the stored event does not prove against the checkpoint: run verify", err)
	}
	return &Proof{Seq: seq, Leaf: string(leaf), LeafHash: lh, TreeSize: t.Size, RootHash: t.Hash,
		Checkpoint: string(cp.Text), Hashes: hashes}, nil
}

// ParseCheckpointNote parses the body of a signed checkpoint note without
// verifying any signature.
func ParseCheckpointNote(text []byte) (Tree, error) {
	// The body ends at the blank line before the signatures.
	for i := 0; i+1 < len(text); i++ {
		if text[i] == '\n' && text[i+1] == '\n' {
			return ParseCheckpoint(text[:i+1])
		}
	}
	return Tree{}, fmt.Errorf("audit: checkpoint note has no signature block")
}

// Export writes the leaves of the events with Seq > after, one per line
// (the leaf bytes exactly, then "\n"), in Seq order, and returns the last
// Seq written (after, if none).
func Export(ctx context.Context, store airlock.AuditStore, w io.Writer, after int64) (int64, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	for {
		entries, err := store.ReadAuditEntries(ctx, after, 10000)
		if err != nil {
			return after, err
		}
		if len(entries) == 0 {
			break
		}
		for _, e := range entries {
			bw.Write(e.Leaf)
			if err := bw.WriteByte('\n'); err != nil {
				return after, err
			}
			after = e.Seq
		}
	}
	return after, bw.Flush()
}
