package outsider_test

// This file must not import Airlock: it checks the evidence with the
// public key text and golang.org/x/mod/sumdb alone, as anyone could.

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// memory is a tlog.HashReader over hashes computed here.
type memory []tlog.Hash

func (m memory) ReadHashes(ix []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(ix))
	for i, x := range ix {
		out[i] = m[x]
	}
	return out, nil
}

func TestOutsiderVerifies(t *testing.T) {
	ev := produce(t)

	// 1. The checkpoint is a signed note by the published key: origin,
	//    size and root hash (C2SP tlog-checkpoint).
	verifier, err := note.NewVerifier(ev.pubkey)
	if err != nil {
		t.Fatalf("public key %q: %v", ev.pubkey, err)
	}
	n, err := note.Open(ev.checkpoint, note.VerifierList(verifier))
	if err != nil {
		t.Fatalf("checkpoint does not verify: %v", err)
	}
	body := strings.Split(n.Text, "\n")
	if len(body) < 4 || body[0] == "" {
		t.Fatalf("checkpoint body %q", n.Text)
	}
	size, err := strconv.ParseInt(body[1], 10, 64)
	if err != nil || size < 1 {
		t.Fatalf("checkpoint size %q", body[1])
	}
	rootBytes, err := base64.StdEncoding.DecodeString(body[2])
	if err != nil || len(rootBytes) != tlog.HashSize {
		t.Fatalf("checkpoint root %q", body[2])
	}
	var root tlog.Hash
	copy(root[:], rootBytes)

	// 2. The export: one leaf per line, line i being event i; each leaf is
	//    canonical JSON (sorted keys, no white space) naming its seq.
	lines := bytes.Split(bytes.TrimSuffix(ev.export, []byte("\n")), []byte("\n"))
	if int64(len(lines)) < size {
		t.Fatalf("export has %d events, the checkpoint %d", len(lines), size)
	}
	var stored memory
	for i, leaf := range lines {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(leaf))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("line %d is not JSON: %v", i+1, err)
		}
		if m["seq"] != json.Number(strconv.Itoa(i+1)) {
			t.Fatalf("line %d has seq %v", i+1, m["seq"])
		}
		var canon bytes.Buffer
		enc := json.NewEncoder(&canon)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(m)
		if !bytes.Equal(bytes.TrimSuffix(canon.Bytes(), []byte("\n")), leaf) {
			t.Errorf("line %d is not canonical JSON", i+1)
		}
		hs, err := tlog.StoredHashes(int64(i), leaf, stored)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
	}

	// 3. The tree of the first size exported events has the signed root:
	//    the export is exactly the log the checkpoint vouches for.
	th, err := tlog.TreeHash(size, stored)
	if err != nil {
		t.Fatal(err)
	}
	if th != root {
		t.Fatalf("the exported events do not hash to the checkpoint's root")
	}

	// 4. Every inclusion proof checks against the signed root, and only
	//    for its own event.
	for seq, raw := range ev.proofs {
		var p struct {
			Seq        int64       `json:"seq"`
			Leaf       string      `json:"leaf"`
			TreeSize   int64       `json:"tree_size"`
			RootHash   tlog.Hash   `json:"root_hash"`
			Checkpoint string      `json:"checkpoint"`
			Proof      []tlog.Hash `json:"proof"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatalf("proof %d: %v", seq, err)
		}
		if p.Seq != seq || p.TreeSize != size || p.RootHash != root || p.Checkpoint != string(ev.checkpoint) {
			t.Fatalf("proof %d is for seq %d in a tree of %d", seq, p.Seq, p.TreeSize)
		}
		if p.Leaf != string(lines[seq-1]) {
			t.Fatalf("proof %d carries a leaf other than the exported one", seq)
		}
		if err := tlog.CheckRecord(p.Proof, size, root, seq-1, tlog.RecordHash([]byte(p.Leaf))); err != nil {
			t.Errorf("proof %d does not check: %v", seq, err)
		}
		forged := strings.Replace(p.Leaf, `"outcome":"`, `"outcome":"x`, 1)
		if tlog.CheckRecord(p.Proof, size, root, seq-1, tlog.RecordHash([]byte(forged))) == nil {
			t.Errorf("proof %d also proves an altered event", seq)
		}
		if seq > 1 && tlog.CheckRecord(p.Proof, size, root, seq-2, tlog.RecordHash([]byte(p.Leaf))) == nil {
			t.Errorf("proof %d also proves the event at another position", seq)
		}
	}

	// 5. A checkpoint re-signed by any other key does not verify.
	other, _, err := note.GenerateKey(rand.Reader, verifier.Name())
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(other)
	forged, _ := note.Sign(&note.Note{Text: n.Text}, signer)
	if _, err := note.Open(forged, note.VerifierList(verifier)); err == nil {
		t.Errorf("a checkpoint signed by another key verifies")
	}
}
