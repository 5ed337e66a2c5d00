package audit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"airlock"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Problem is one fault Verify found: at an event (Seq) or a checkpoint
// (Checkpoint, its tree size), or both.
type Problem struct {
	Seq        int64  `json:"seq,omitempty"`
	Checkpoint int64  `json:"checkpoint,omitempty"`
	Message    string `json:"message"`
}

// String returns the problem as one line.
func (p Problem) String() string {
	switch {
	case p.Checkpoint != 0 && p.Seq != 0:
		return fmt.Sprintf("checkpoint %d, seq %d: %s", p.Checkpoint, p.Seq, p.Message)
	case p.Checkpoint != 0:
		return fmt.Sprintf("checkpoint %d: %s", p.Checkpoint, p.Message)
	}
	return fmt.Sprintf("seq %d: %s", p.Seq, p.Message)
}

// Report is the outcome of Verify.
type Report struct {
	// TreeSize is the store's tree size; Events how many records were read.
	TreeSize int64 `json:"tree_size"`
	Events   int64 `json:"events"`
	// Root is the tree hash recomputed from the leaves (when the records
	// formed an unbroken sequence).
	Root tlog.Hash `json:"root"`
	// Checkpoints stored, and how many verified (signature, and the tree
	// recomputed from the leaves has their root at their size).
	Checkpoints      int `json:"checkpoints"`
	ValidCheckpoints int `json:"valid_checkpoints"`
	// Covered is the size of the largest checkpoint that verified: events
	// after it are not yet vouched for by any signature.
	Covered int64 `json:"covered"`
	// FirstBad is the first sequence number found bad, 0 when everything
	// verified. When an event shows a fault of its own (its leaf disagrees
	// with its stored hashes, its index columns or its position, or it is
	// missing) it is the first such event's Seq; when only a checkpoint
	// shows the fault (the leaves and the stored hashes were rewritten
	// together, or a checkpoint was re-signed) it is the first event after
	// the last checkpoint that still verifies (Covered+1): from there on,
	// nothing vouches for the log.
	FirstBad int64 `json:"first_bad_seq,omitempty"`
	// Problems lists the faults found, at most MaxProblems of them;
	// MoreProblems counts the rest.
	Problems     []Problem `json:"problems,omitempty"`
	MoreProblems int       `json:"more_problems,omitempty"`
	// Held has the verdict on each of VerifyOptions.Held, in their order.
	Held []HeldResult `json:"held_checkpoints,omitempty"`
}

// OK reports whether verification found no fault.
func (r *Report) OK() bool {
	for _, h := range r.Held {
		if !h.OK {
			return false
		}
	}
	return r.FirstBad == 0 && len(r.Problems) == 0
}

// MaxProblems bounds Report.Problems.
const MaxProblems = 100

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Verifiers check the checkpoints' signatures (required).
	Verifiers note.Verifiers
	// Origin, if set, is the origin every checkpoint must name.
	Origin string
	// PageSize is how many records are read at a time (default 10000).
	PageSize int
	// Held are checkpoints kept outside the store: each must verify with
	// Verifiers (and name Origin, if set), the log must have at least its
	// size, and the tree recomputed from the stored leaves at its size
	// must have its root. Verdicts go to Report.Held.
	Held []HeldCheckpoint
}

// Verify checks the whole audit log offline, trusting nothing the store
// says: it reads every record and recomputes its leaf hash and every tree
// hash from the leaves (tlog.StoredHashes), compares them with the stored
// hashes, parses each leaf (canonical form, Seq matching its position) and
// compares the index columns with it; it checks that every stored checkpoint's
// signature verifies with opts.Verifiers, that its root equals both the
// tree recomputed from the leaves and the tree of the stored hashes at its
// size, and that no checkpoint is beyond the end of the log (truncation).
// Since every checkpoint must match the one recomputed tree, checkpoints
// are consistent with each other. It checks the opts.Held checkpoints
// against the same recomputed tree. Faults go into the report; the error
// is for failures to read the store.
func Verify(ctx context.Context, store airlock.AuditStore, opts VerifyOptions) (*Report, error) {
	if opts.Verifiers == nil {
		return nil, errors.New("audit: verify needs the checkpoint verifier key")
	}
	page := opts.PageSize
	if page <= 0 {
		page = 10000
	}
	rep := &Report{}
	size, err := store.AuditTreeSize(ctx)
	if err != nil {
		return nil, err
	}
	rep.TreeSize = size
	v := &verifier{ctx: ctx, store: store, opts: opts, rep: rep, front: frontier{}, heldCap: -1}
	v.cps = &checkpointIter{ctx: ctx, store: store}
	v.openHeld()
	if err := v.heldAt(0, true); err != nil {
		return nil, err
	}

	intact := true // records so far formed the sequence 1, 2, 3…
	// One goroutine reads the next page (and checks its records on every
	// core) while this one walks the current page in order.
	type checkedPage struct {
		entries []*airlock.AuditEntry
		checked []string
		err     error
	}
	pages := make(chan checkedPage, 1)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		defer close(pages)
		for after := int64(0); ; {
			entries, err := store.ReadAuditEntries(rctx, after, page)
			if err != nil || len(entries) == 0 {
				select {
				case pages <- checkedPage{err: err}:
				case <-rctx.Done():
				}
				return
			}
			select {
			case pages <- checkedPage{entries: entries, checked: checkRecords(entries)}:
			case <-rctx.Done():
				return
			}
			after = entries[len(entries)-1].Seq
		}
	}()
	for p := range pages {
		if p.err != nil {
			return nil, p.err
		}
		entries, checked := p.entries, p.checked
		if len(entries) == 0 {
			break
		}
		for k, e := range entries {
			rep.Events++
			n := v.n // records accepted into the recomputed tree
			if intact && e.Seq != n+1 {
				if e.Seq > n+1 {
					v.recordFault(n+1, fmt.Sprintf("missing: the next record is seq %d", e.Seq))
				} else {
					v.recordFault(e.Seq, fmt.Sprintf("out of order after seq %d", n))
				}
				intact = false
			}
			if msg := checked[k]; msg != "" {
				v.recordFault(e.Seq, msg)
			}
			if intact {
				if err := v.addToTree(e); err != nil {
					return nil, err
				}
				if err := v.checkpointsAt(v.n, true); err != nil {
					return nil, err
				}
				if err := v.heldAt(v.n, true); err != nil {
					return nil, err
				}
			}
		}
	}
	if rep.Events != size && intact {
		v.recordFault(rep.Events+1, fmt.Sprintf("the store says the tree has %d events, %d were read", size, rep.Events))
	}
	if intact && v.n > 0 {
		if rep.Root, err = tlog.TreeHash(v.n, &v.front); err != nil {
			return nil, err
		}
	}
	// Checkpoints the recomputed tree never reached: beyond the end of the
	// log (truncation), or after a break in the sequence.
	if err := v.checkpointsAt(-1, false); err != nil {
		return nil, err
	}
	if err := v.heldAt(-1, false); err != nil {
		return nil, err
	}
	if v.heldCap >= 0 && rep.Covered > v.heldCap {
		rep.Covered = v.heldCap
	}
	return rep, nil
}

type verifier struct {
	ctx   context.Context
	store airlock.AuditStore
	opts  VerifyOptions
	rep   *Report
	front frontier
	n     int64 // records in the recomputed tree
	cps   *checkpointIter
	// recordBad is the first seq with a fault of its own (0 if none).
	recordBad int64
	// held are the held checkpoints still to compare, in size order;
	// heldOK the largest size that matched; heldCap what Covered is
	// lowered to after a held checkpoint showed a rewrite (-1: none).
	held    []heldCheck
	heldOK  int64
	heldCap int64
}

// recordFault records a problem found in an event itself and lowers
// recordBad to seq.
func (v *verifier) recordFault(seq int64, msg string) {
	if v.recordBad == 0 || seq < v.recordBad {
		v.recordBad = seq
	}
	v.bad(seq, 0, msg)
}

// bad records a problem and lowers FirstBad to seq.
func (v *verifier) bad(seq, checkpoint int64, msg string) {
	if seq > 0 && (v.rep.FirstBad == 0 || seq < v.rep.FirstBad) {
		v.rep.FirstBad = seq
	}
	if len(v.rep.Problems) >= MaxProblems {
		v.rep.MoreProblems++
		return
	}
	v.rep.Problems = append(v.rep.Problems, Problem{Seq: seq, Checkpoint: checkpoint, Message: msg})
}

// checkRecords runs checkRecord on every entry, in parallel, and returns
// the fault of each ("" when none).
func checkRecords(entries []*airlock.AuditEntry) []string {
	out := make([]string, len(entries))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(entries)/256))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := w; k < len(entries); k += workers {
				out[k] = checkRecord(entries[k])
			}
		})
	}
	wg.Wait()
	return out
}

// checkRecord checks what one record says about itself: its leaf parses,
// is canonical, names the record's Seq, and the index columns agree. It
// returns the fault, or "".
func checkRecord(e *airlock.AuditEntry) string {
	ev, err := airlock.ParseAuditLeaf(e.Leaf)
	if err != nil {
		return "leaf: " + airlock.ErrorMessage(err)
	}
	if ev.Seq != e.Seq {
		return fmt.Sprintf("leaf says seq %d", ev.Seq)
	}
	var diff []string
	if !ev.Time.Equal(e.Time) {
		diff = append(diff, "time")
	}
	if ev.Type != e.Type {
		diff = append(diff, "type")
	}
	if ev.UserID != e.UserID {
		diff = append(diff, "user_id")
	}
	if ev.SessionID != e.SessionID {
		diff = append(diff, "session_id")
	}
	if ev.GrantID != e.GrantID {
		diff = append(diff, "grant_id")
	}
	if len(diff) > 0 {
		return fmt.Sprintf("index columns %v disagree with the leaf", diff)
	}
	return ""
}

// addToTree appends e's leaf to the recomputed tree and compares the
// hashes it yields with the stored ones.
func (v *verifier) addToTree(e *airlock.AuditEntry) error {
	n := v.n
	hs, err := tlog.StoredHashes(n, e.Leaf, &v.front)
	if err != nil {
		return fmt.Errorf("audit: recompute hashes of seq %d: %w", e.Seq, err)
	}
	if !slices.Equal(hs, e.Hashes) {
		v.recordFault(e.Seq, "stored tree hashes differ from the leaf's")
	}
	v.front.add(n, hs)
	v.n++
	return nil
}

// checkpointsAt checks the checkpoints of size upTo (all remaining ones
// when upTo < 0). recomputed says whether the recomputed tree has exactly
// upTo records (so its root can be compared).
func (v *verifier) checkpointsAt(upTo int64, recomputed bool) error {
	for {
		cp, err := v.cps.peek()
		if err != nil {
			return err
		}
		if cp == nil || (upTo >= 0 && cp.Size > upTo) {
			return nil
		}
		v.cps.next()
		v.rep.Checkpoints++
		if recomputed && cp.Size < upTo {
			// A size the recomputed tree passed without stopping: only
			// possible for a checkpoint listed out of order.
			recomputed = false
		}
		v.checkCheckpoint(cp, recomputed && cp.Size == upTo)
	}
}

// checkCheckpoint checks one checkpoint; atTree says the recomputed tree
// currently has exactly cp.Size records.
func (v *verifier) checkCheckpoint(cp *airlock.AuditCheckpoint, atTree bool) {
	fail := func(msg string) {
		// The events after the last checkpoint that verified are no
		// longer vouched for. If one of them already showed a fault of
		// its own, that event is the one named; otherwise only the
		// checkpoint tells, and the first unvouched event is.
		if v.recordBad > v.rep.Covered && v.recordBad <= cp.Size {
			v.bad(0, cp.Size, msg)
		} else {
			v.bad(v.rep.Covered+1, cp.Size, msg)
		}
	}
	t, err := OpenCheckpoint(cp.Text, v.opts.Verifiers)
	if err != nil {
		fail(err.Error())
		return
	}
	if t.Size != cp.Size {
		fail(fmt.Sprintf("stored as size %d, signed for size %d", cp.Size, t.Size))
		return
	}
	if v.opts.Origin != "" && t.Origin != v.opts.Origin {
		fail(fmt.Sprintf("origin %q, want %q", t.Origin, v.opts.Origin))
		return
	}
	if t.Size > v.rep.TreeSize || t.Size > v.rep.Events {
		v.bad(min(v.rep.TreeSize, v.rep.Events)+1, cp.Size,
			fmt.Sprintf("the checkpoint covers %d events but the log has %d: truncated", t.Size, min(v.rep.TreeSize, v.rep.Events)))
		return
	}
	// The tree of the stored hashes: if it matches, the stored hashes up to
	// this size are genuine and record-level faults name the exact events.
	stored, err := tlog.TreeHash(t.Size, HashReader(v.ctx, v.store))
	if err != nil || stored != t.Hash {
		fail("the stored tree hashes do not have the signed root")
		return
	}
	if !atTree {
		// The recomputed tree broke off earlier; the break is reported.
		return
	}
	root, err := tlog.TreeHash(t.Size, &v.front)
	if err != nil || root != t.Hash {
		// The stored hashes match but the leaves do not: the records that
		// differ from their stored hashes are already reported.
		v.bad(0, cp.Size, "the tree recomputed from the leaves does not have the signed root")
		return
	}
	v.rep.ValidCheckpoints++
	v.rep.Covered = t.Size
}

// frontier holds the hashes of the complete subtrees on the right edge of
// the tree being recomputed: all that tlog.StoredHashes needs for the next
// record and tlog.TreeHash for the current size, O(log n) of them.
type frontier map[int64]tlog.Hash

// ReadHashes implements tlog.HashReader.
func (f *frontier) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		h, ok := (*f)[x]
		if !ok {
			return nil, fmt.Errorf("audit: hash %d is not on the tree's edge", x)
		}
		out[i] = h
	}
	return out, nil
}

// add records the hashes of record n: the subtrees it completed absorb the
// left siblings they were built from.
func (f *frontier) add(n int64, hs []tlog.Hash) {
	m := len(hs) - 1
	for i := range m {
		delete(*f, tlog.StoredHashIndex(i, n>>uint(i)-1))
	}
	(*f)[tlog.StoredHashIndex(m, n>>uint(m))] = hs[m]
}

// checkpointIter pages through the stored checkpoints in size order.
type checkpointIter struct {
	ctx   context.Context
	store airlock.AuditStore
	buf   []*airlock.AuditCheckpoint
	after int64
	done  bool
}

func (it *checkpointIter) peek() (*airlock.AuditCheckpoint, error) {
	if len(it.buf) == 0 && !it.done {
		page, err := it.store.ListAuditCheckpoints(it.ctx, it.after, 1000)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			it.done = true
		} else {
			it.buf = page
			it.after = page[len(page)-1].Size
		}
	}
	if len(it.buf) == 0 {
		return nil, nil
	}
	return it.buf[0], nil
}

func (it *checkpointIter) next() { it.buf = it.buf[1:] }
