package audit

import (
	"fmt"
	"sort"

	"golang.org/x/mod/sumdb/tlog"
)

// HeldCheckpoint is a signed checkpoint note kept outside the store (a
// copy of `airlock audit checkpoint` saved elsewhere). Verify checks that
// the log still has the tree it signed.
type HeldCheckpoint struct {
	// Name says where the checkpoint came from (a file name), for the report.
	Name string
	// Text is the signed note.
	Text []byte
}

// Faults of a held checkpoint (HeldResult.Fault).
const (
	// HeldBadSignature: the note is not a checkpoint signed by a trusted
	// key (or names another origin than VerifyOptions.Origin).
	HeldBadSignature = "bad signature"
	// HeldTruncated: the log has fewer events than the checkpoint covers.
	HeldTruncated = "truncated"
	// HeldRewritten: the tree recomputed from the stored leaves at the
	// checkpoint's size has another root, or the sequence of records
	// breaks before that size: the history it covered was changed.
	HeldRewritten = "history rewritten"
)

// HeldResult is Verify's verdict on one held checkpoint.
type HeldResult struct {
	Name string    `json:"name"`
	Size int64     `json:"size"`
	Root tlog.Hash `json:"root"`
	OK   bool      `json:"ok"`
	// Fault is one of HeldBadSignature, HeldTruncated, HeldRewritten; ""
	// when OK. Message explains it.
	Fault   string `json:"fault,omitempty"`
	Message string `json:"message,omitempty"`
}

// String returns the verdict as one line.
func (h HeldResult) String() string {
	if h.OK {
		return fmt.Sprintf("held checkpoint %s (size %d): OK", h.Name, h.Size)
	}
	return fmt.Sprintf("held checkpoint %s (size %d): %s: %s", h.Name, h.Size, h.Fault, h.Message)
}

// heldCheck is a held checkpoint waiting for the recomputed tree to reach
// its size.
type heldCheck struct {
	res  *HeldResult
	tree Tree
}

// openHeld checks the held checkpoints' signatures and returns those that
// verified, in size order, to be compared as the tree is recomputed.
func (v *verifier) openHeld() {
	v.rep.Held = make([]HeldResult, len(v.opts.Held))
	for i, h := range v.opts.Held {
		res := &v.rep.Held[i]
		res.Name = h.Name
		t, err := OpenCheckpoint(h.Text, v.opts.Verifiers)
		switch {
		case err != nil:
			res.Fault, res.Message = HeldBadSignature, err.Error()
			continue
		case v.opts.Origin != "" && t.Origin != v.opts.Origin:
			res.Size, res.Root = t.Size, t.Hash
			res.Fault, res.Message = HeldBadSignature, fmt.Sprintf("origin %q, want %q", t.Origin, v.opts.Origin)
			continue
		}
		res.Size, res.Root = t.Size, t.Hash
		v.held = append(v.held, heldCheck{res: res, tree: t})
	}
	sort.SliceStable(v.held, func(i, j int) bool { return v.held[i].tree.Size < v.held[j].tree.Size })
}

// heldAt compares the held checkpoints of size upTo (all remaining ones
// when upTo < 0) with the recomputed tree; recomputed says whether the
// recomputed tree has exactly upTo records.
func (v *verifier) heldAt(upTo int64, recomputed bool) error {
	for len(v.held) > 0 && (upTo < 0 || v.held[0].tree.Size <= upTo) {
		h := v.held[0]
		v.held = v.held[1:]
		size := h.tree.Size
		switch have := min(v.rep.TreeSize, v.rep.Events); {
		case upTo < 0 && size > have:
			v.heldBad(h, HeldTruncated, have+1,
				fmt.Sprintf("the checkpoint covers %d events but the log has %d", size, have))
		case !recomputed || size != upTo:
			v.heldBad(h, HeldRewritten, v.heldOK+1,
				fmt.Sprintf("the sequence of records breaks before seq %d (see the problems)", size))
		default:
			root, err := tlog.TreeHash(size, &v.front)
			if err != nil {
				return err
			}
			if root != h.tree.Hash {
				v.heldBad(h, HeldRewritten, v.heldOK+1,
					fmt.Sprintf("the tree recomputed from the stored leaves at size %d has root %s, the checkpoint %s", size, root, h.tree.Hash))
				continue
			}
			h.res.OK = true
			v.heldOK = max(v.heldOK, size)
		}
	}
	return nil
}

// heldBad records a held checkpoint's fault at firstBad. When the history
// was rewritten, the stored checkpoints after the last held one that
// verified vouch for a different history: Verify lowers Covered to it.
func (v *verifier) heldBad(h heldCheck, fault string, firstBad int64, msg string) {
	h.res.Fault, h.res.Message = fault, msg
	if fault == HeldRewritten && (v.heldCap < 0 || firstBad-1 < v.heldCap) {
		v.heldCap = firstBad - 1
	}
	if v.rep.FirstBad == 0 || firstBad < v.rep.FirstBad {
		v.rep.FirstBad = firstBad
	}
}
