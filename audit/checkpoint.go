package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"airlock"
	"airlock/internal/keyfile"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint defaults.
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = 10 * time.Second
)

// Tree is a checkpoint's statement: a log named Origin had Size records
// with Merkle tree hash Hash.
type Tree struct {
	Origin string
	Size   int64
	Hash   tlog.Hash
}

// FormatCheckpoint returns the body of a C2SP tlog-checkpoint: the origin
// line, the size in decimal, the root hash in standard base64, each ending
// in a newline. (tlog.FormatTree writes the Go checksum database's fixed
// origin line, so it cannot serve a configurable origin.)
func FormatCheckpoint(t Tree) []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\n", t.Origin, t.Size, base64.StdEncoding.EncodeToString(t.Hash[:]))
}

// ParseCheckpoint parses a checkpoint body (the text of a signed note).
// Extension lines after the root hash are allowed, as C2SP says, and
// ignored. It is strict about the first three lines: a non-empty origin, a
// size in canonical decimal, a 32-byte root hash in standard base64.
func ParseCheckpoint(text []byte) (Tree, error) {
	lines := strings.SplitAfter(string(text), "\n")
	if len(lines) < 3 || !strings.HasSuffix(lines[2], "\n") {
		return Tree{}, errors.New("audit: checkpoint needs origin, size and hash lines")
	}
	origin := strings.TrimSuffix(lines[0], "\n")
	size := strings.TrimSuffix(lines[1], "\n")
	hash := strings.TrimSuffix(lines[2], "\n")
	if origin == "" {
		return Tree{}, errors.New("audit: checkpoint has an empty origin")
	}
	n, err := strconv.ParseInt(size, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != size {
		return Tree{}, fmt.Errorf("audit: checkpoint size %q is not a decimal", size)
	}
	h, err := base64.StdEncoding.Strict().DecodeString(hash)
	if err != nil || len(h) != tlog.HashSize {
		return Tree{}, fmt.Errorf("audit: checkpoint root hash %q is not 32 bytes of base64", hash)
	}
	t := Tree{Origin: origin, Size: n}
	copy(t.Hash[:], h)
	return t, nil
}

// OpenCheckpoint verifies the signed note text with verifiers and parses
// its body.
func OpenCheckpoint(text []byte, verifiers note.Verifiers) (Tree, error) {
	n, err := note.Open(text, verifiers)
	if err != nil {
		return Tree{}, fmt.Errorf("audit: checkpoint signature: %w", err)
	}
	return ParseCheckpoint([]byte(n.Text))
}

// Key is the checkpoint signing key: a note signer and its verifier.
type Key struct {
	Signer   note.Signer
	Verifier note.Verifier
	// VerifierKey is the public verifier key text ("name+hash+base64"),
	// what `airlock audit pubkey` prints.
	VerifierKey string
}

// ParseKey parses a note signer key ("PRIVATE+KEY+name+hash+base64", as
// note.GenerateKey writes it; surrounding white space ignored) and derives
// its verifier.
func ParseKey(skey string) (*Key, error) {
	skey = strings.TrimSpace(skey)
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	// note has no function from a signer key to its verifier key: the
	// Ed25519 seed is the last field, after the algorithm byte.
	// Only the name and the hash precede it, and base64 may contain "+".
	parts := strings.SplitN(skey, "+", 5)
	raw, err := base64.StdEncoding.DecodeString(parts[len(parts)-1])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, errors.New("audit: signing key is not an Ed25519 note key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(signer.Name(), pub)
	if err != nil {
		return nil, fmt.Errorf("audit: verifier key: %w", err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("audit: verifier key: %w", err)
	}
	return &Key{Signer: signer, Verifier: verifier, VerifierKey: vkey}, nil
}

// LoadKey reads a signing key file.
func LoadKey(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	return ParseKey(string(b))
}

// LoadOrCreateKey reads the signing key at path or, if there is no file
// there, generates an Ed25519 note key named name and writes it with mode
// 0600 (exclusively: of several processes starting together, one writes
// and the others read its key). created reports whether this call made it.
func LoadOrCreateKey(path, name string) (k *Key, created bool, err error) {
	k, created, err = keyfile.LoadOrCreate(path, LoadKey, func() (*Key, []byte, error) {
		skey, _, err := note.GenerateKey(rand.Reader, name)
		if err != nil {
			return nil, nil, fmt.Errorf("audit: generate signing key: %w", err)
		}
		k, err := ParseKey(skey)
		return k, []byte(skey + "\n"), err
	})
	if err != nil && !strings.HasPrefix(err.Error(), "audit:") {
		err = fmt.Errorf("audit: signing key: %w", err)
	}
	return k, created, err
}

// DefaultOrigin is the checkpoint origin when none is configured:
// "airlock/<hostname>".
func DefaultOrigin() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	return "airlock/" + h
}

// Checkpointer signs checkpoints of the audit tree. It never signs a tree
// that is not consistent with the latest stored checkpoint.
type Checkpointer struct {
	Store airlock.AuditStore
	Key   *Key
	// Origin names the log in every checkpoint (DefaultOrigin if empty).
	Origin string
	// Verifiers check earlier checkpoints; nil means the Key's verifier
	// alone. Add retired keys here after a key rotation.
	Verifiers note.Verifiers
	// Every and Interval: Run signs once Every events have accumulated
	// since the last checkpoint, and every Interval when there is anything
	// new (defaults DefaultCheckpointEvery, DefaultCheckpointInterval).
	Every    int64
	Interval time.Duration
	// Log, if set, wakes Run after its commits.
	Log    *Log
	Now    func() time.Time
	Logger *slog.Logger
	// StateFile, if set, keeps the latest checkpoint this signer signed
	// (its note text) outside the store, so that after a restart it still
	// refuses a tree that does not extend it, even if the store's
	// checkpoints were deleted. A file that exists but does not verify
	// stops all signing; failing to write it is logged, not fatal (the
	// signer still remembers in memory).
	StateFile string

	mu     sync.Mutex // one signing at a time in this process
	last   *Tree      // the latest checkpoint signed or checked by this signer
	loaded bool       // StateFile has been read
}

// remember makes t the signer's latest known checkpoint if it is larger.
func (c *Checkpointer) remember(t Tree) {
	if c.last == nil || t.Size > c.last.Size {
		c.last = &t
	}
}

// loadState reads StateFile once.
func (c *Checkpointer) loadState() error {
	if c.loaded || c.StateFile == "" {
		return nil
	}
	b, err := os.ReadFile(c.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		c.loaded = true
		return nil
	} else if err != nil {
		return fmt.Errorf("audit: checkpoint state: %w", err)
	}
	t, err := OpenCheckpoint(b, c.verifiers())
	if err != nil {
		return fmt.Errorf("%w: the signer's own last checkpoint %s: %v", ErrInconsistent, c.StateFile, err)
	}
	c.remember(t)
	c.loaded = true
	return nil
}

// saveState writes the signed note text to StateFile (atomically, synced).
func (c *Checkpointer) saveState(text []byte) error {
	if c.StateFile == "" {
		return nil
	}
	dir := filepath.Dir(c.StateFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".audit-checkpoint-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(text); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), c.StateFile); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func (c *Checkpointer) verifiers() note.Verifiers {
	if c.Verifiers != nil {
		return c.Verifiers
	}
	return note.VerifierList(c.Key.Verifier)
}

func (c *Checkpointer) origin() string {
	if c.Origin != "" {
		return c.Origin
	}
	return DefaultOrigin()
}

// ErrInconsistent is wrapped by errors of Checkpoint when the tree does not
// extend the latest stored checkpoint (or that checkpoint does not verify):
// the log has been tampered with, and nothing is signed.
var ErrInconsistent = errors.New("audit: tree not consistent with the latest checkpoint")

// Checkpoint signs and stores a checkpoint of the current tree, unless the
// latest stored checkpoint already covers it (then it returns that one), or
// the log is empty (nil, nil). Before signing it checks that the latest
// stored checkpoint verifies and that the current tree extends both it and
// the latest checkpoint this signer itself signed (kept in memory and in
// StateFile, out of the store's reach: deleting checkpoints from the store
// must not let a rewritten history be signed), by tlog.ProveTree +
// tlog.CheckTree over the stored hashes; otherwise it signs nothing and
// returns an error wrapping ErrInconsistent.
func (c *Checkpointer) Checkpoint(ctx context.Context) (*airlock.AuditCheckpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.loadState(); err != nil {
		return nil, err
	}
	size, err := c.Store.AuditTreeSize(ctx)
	if err != nil || size == 0 {
		return nil, err
	}
	r := HashReader(ctx, c.Store)
	prev, err := c.Store.LatestAuditCheckpoint(ctx)
	switch {
	case airlock.ErrorCode(err) == airlock.ENOTFOUND:
		prev = nil
	case err != nil:
		return nil, err
	case prev.Size == size:
		return prev, nil
	case prev.Size > size:
		return nil, fmt.Errorf("%w: the tree has %d events, the checkpoint %d", ErrInconsistent, size, prev.Size)
	}
	root, err := tlog.TreeHash(size, r)
	if err != nil {
		return nil, fmt.Errorf("audit: tree hash: %w", err)
	}
	extends := func(old Tree, what string) error {
		if old.Size > size {
			return fmt.Errorf("%w: the tree has %d events, %s %d: truncated", ErrInconsistent, size, what, old.Size)
		}
		proof, err := tlog.ProveTree(size, old.Size, r)
		if err != nil {
			return fmt.Errorf("audit: consistency proof: %w", err)
		}
		if err := tlog.CheckTree(proof, size, root, old.Size, old.Hash); err != nil {
			return fmt.Errorf("%w: %s %d → %d: %v", ErrInconsistent, what, old.Size, size, err)
		}
		return nil
	}
	if prev != nil {
		old, err := OpenCheckpoint(prev.Text, c.verifiers())
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInconsistent, err)
		}
		if old.Size != prev.Size {
			return nil, fmt.Errorf("%w: checkpoint stored as size %d says %d", ErrInconsistent, prev.Size, old.Size)
		}
		if err := extends(old, "the stored checkpoint"); err != nil {
			return nil, err
		}
		c.remember(old)
	}
	if c.last != nil {
		if err := extends(*c.last, "the signer's last checkpoint"); err != nil {
			return nil, err
		}
	}
	signed, err := note.Sign(&note.Note{Text: string(FormatCheckpoint(Tree{Origin: c.origin(), Size: size, Hash: root}))}, c.Key.Signer)
	if err != nil {
		return nil, fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	cp := &airlock.AuditCheckpoint{Size: size, Text: signed, CreatedAt: now().UTC().Truncate(time.Microsecond)}
	// Remembered before it is stored: a checkpoint the store then fails
	// to keep may still have been signed.
	c.remember(Tree{Origin: c.origin(), Size: size, Hash: root})
	if err := c.saveState(signed); err != nil && c.Logger != nil {
		c.Logger.Error("audit checkpoint: cannot keep the signer's last checkpoint outside the store", "file", c.StateFile, "err", err)
	}
	if err := c.Store.AddAuditCheckpoint(ctx, cp); err != nil {
		return nil, err
	}
	if c.Logger != nil {
		c.Logger.Info("audit checkpoint", "size", size, "root", root.String())
	}
	return cp, nil
}

// Run signs checkpoints until ctx ends: after Every new events (woken by
// Log's commits) and every Interval when the tree has grown. Errors are
// logged; an inconsistent tree is logged as an error at every attempt.
func (c *Checkpointer) Run(ctx context.Context) {
	every, interval := c.Every, c.Interval
	if every <= 0 {
		every = DefaultCheckpointEvery
	}
	if interval <= 0 {
		interval = DefaultCheckpointInterval
	}
	var wake <-chan struct{}
	if c.Log != nil {
		wake = c.Log.Subscribe()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var signed int64
	if cp, err := c.Store.LatestAuditCheckpoint(ctx); err == nil {
		signed = cp.Size
	}
	try := func() {
		cp, err := c.Checkpoint(ctx)
		if err != nil {
			if c.Logger != nil && ctx.Err() == nil {
				// Replicas signing with different keys (or origins) look
				// like this too: they must share the key file.
				c.Logger.Error("audit checkpoint failed: no checkpoint signed; run airlock audit verify (replicas sharing a store must share audit.key_file and audit.origin)", "err", err)
			}
			return
		}
		if cp != nil {
			signed = cp.Size
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			try()
		case <-wake:
			if c.Log.LastSeq()-signed >= every {
				try()
			}
		}
	}
}

// Status is what CheckLatest found about the latest checkpoint.
type Status struct {
	// Size is the latest checkpoint's tree size, 0 if there is none.
	Size      int64     `json:"size"`
	Origin    string    `json:"origin,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	// TreeSize is the store's tree size when checked.
	TreeSize int64 `json:"tree_size"`
	// Verified is true when the signature verifies and the stored tree
	// has the checkpoint's root at its size and extends it to TreeSize.
	Verified bool `json:"verified"`
	// Problem says why not, when Verified is false.
	Problem string `json:"problem,omitempty"`
}

// CheckLatest checks the latest stored checkpoint against verifiers and the
// stored tree hashes (not the leaves: that is Verify's full pass).
func CheckLatest(ctx context.Context, store airlock.AuditStore, verifiers note.Verifiers) Status {
	var st Status
	size, err := store.AuditTreeSize(ctx)
	if err != nil {
		st.Problem = "store: " + airlock.ErrorMessage(err)
		return st
	}
	st.TreeSize = size
	cp, err := store.LatestAuditCheckpoint(ctx)
	if airlock.ErrorCode(err) == airlock.ENOTFOUND {
		st.Problem = "no checkpoint yet"
		return st
	} else if err != nil {
		st.Problem = "store: " + airlock.ErrorMessage(err)
		return st
	}
	st.Size, st.CreatedAt = cp.Size, cp.CreatedAt
	t, err := OpenCheckpoint(cp.Text, verifiers)
	if err != nil {
		st.Problem = err.Error()
		return st
	}
	st.Origin = t.Origin
	if t.Size != cp.Size {
		st.Problem = fmt.Sprintf("checkpoint stored as size %d says size %d", cp.Size, t.Size)
		return st
	}
	if size < t.Size {
		st.Problem = fmt.Sprintf("the log has %d events, fewer than the checkpoint's %d: truncated", size, t.Size)
		return st
	}
	r := HashReader(ctx, store)
	root, err := tlog.TreeHash(size, r)
	if err != nil {
		st.Problem = "tree hash: " + err.Error()
		return st
	}
	proof, err := tlog.ProveTree(size, t.Size, r)
	if err == nil {
		err = tlog.CheckTree(proof, size, root, t.Size, t.Hash)
	}
	if err != nil {
		st.Problem = fmt.Sprintf("stored tree not consistent with the checkpoint: %v", err)
		return st
	}
	st.Verified = true
	return st
}

// HashReader returns a tlog.HashReader over store's stored hashes.
func HashReader(ctx context.Context, store airlock.AuditStore) tlog.HashReader {
	return tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) { return store.ReadAuditHashes(ctx, ix) })
}
