package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"airlock"
	"airlock/audit"
	"airlock/notify"
)

// leavesIn parses JSON lines into their seqs, failing on a line that is
// not a leaf.
func seqsIn(t *testing.T, b []byte) []int64 {
	t.Helper()
	var out []int64
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		e, err := airlock.ParseAuditLeaf(sc.Bytes())
		if err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, e.Seq)
	}
	return out
}

func wantSeqs(t *testing.T, got []int64, from, to int64) {
	t.Helper()
	if int64(len(got)) != to-from+1 {
		t.Fatalf("got seqs %v, want %d..%d", got, from, to)
	}
	for i, s := range got {
		if s != from+int64(i) {
			t.Fatalf("got seqs %v, want %d..%d", got, from, to)
		}
	}
}

func TestFileSink(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	path := filepath.Join(t.TempDir(), "siem", "audit.jsonl")
	appendEvents(t, s, 1, 7)
	st := &audit.Streamer{Store: s, Sinks: []audit.Sink{&audit.FileSink{SinkName: "file", Path: path}}, Batch: 3}
	for {
		n, err := st.DeliverOnce(ctx, st.Sinks[0])
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if c, _ := s.AuditCursor(ctx, "file"); c != 7 {
		t.Errorf("cursor %d, want 7", c)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("sink file mode %v, %v", fi.Mode(), err)
	}

	// A crash left a torn line, and the cursor behind what the file holds
	// (the process died between the fsync and the cursor update): after a
	// restart the file ends up with every event exactly once.
	appendEvents(t, s, 8, 5)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := s.ReadAuditEntries(ctx, 7, 2) // 8 and 9 made it
	for _, e := range entries {
		f.Write(append(e.Leaf, '\n'))
	}
	f.Write([]byte(`{"actor":"half a li`))
	f.Close()

	restarted := &audit.Streamer{Store: s, Sinks: []audit.Sink{&audit.FileSink{SinkName: "file", Path: path}}, Batch: 100}
	if n, err := restarted.DeliverOnce(ctx, restarted.Sinks[0]); err != nil || n != 5 {
		t.Fatalf("DeliverOnce after restart: %d, %v", n, err)
	}
	b, _ := os.ReadFile(path)
	wantSeqs(t, seqsIn(t, b), 1, 12)
	// And the file's lines are the exported leaves, byte for byte.
	var exp bytes.Buffer
	if _, err := audit.Export(ctx, s, &exp, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, exp.Bytes()) {
		t.Errorf("sink file differs from the export")
	}
}

// TestHTTPSink checks the wire format, the signature, retry with backoff
// and that after a restart nothing is skipped.
func TestHTTPSink(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, _ := openStore(t)
	var (
		mu       sync.Mutex
		got      []int64
		failures = 3
		attempts int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if r.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
		}
		ts := r.Header.Get("X-Airlock-Timestamp")
		if r.Header.Get("X-Airlock-Signature") != "sha256="+notify.Sign("s3cret", ts, body) {
			t.Errorf("bad signature")
		}
		seqs := seqsIn(t, body)
		if first, _ := strconv.ParseInt(r.Header.Get("X-Airlock-Audit-First-Seq"), 10, 64); first != seqs[0] {
			t.Errorf("first-seq header %d, body starts at %d", first, seqs[0])
		}
		if last, _ := strconv.ParseInt(r.Header.Get("X-Airlock-Audit-Last-Seq"), 10, 64); last != seqs[len(seqs)-1] {
			t.Errorf("last-seq header %d, body ends at %d", last, seqs[len(seqs)-1])
		}
		if failures > 0 {
			failures--
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		got = append(got, seqs...)
	}))
	defer srv.Close()
	sink := &audit.HTTPSink{SinkName: "siem", URL: srv.URL, Secret: "s3cret"}
	log := audit.New(s, nil, nil)
	st := &audit.Streamer{Store: s, Sinks: []audit.Sink{sink}, Batch: 4, Poll: time.Hour,
		MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, Log: log}
	done := make(chan struct{})
	go func() { defer close(done); st.Run(ctx) }()
	for i := range 10 {
		if err := log.Record(ctx, *event(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitCursor := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, _ := s.AuditCursor(context.Background(), "siem")
			if c == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("cursor at %d, want %d", c, want)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	waitCursor(10)
	cancel()
	<-done
	mu.Lock()
	wantSeqs(t, got, 1, 10)
	if attempts < 4 {
		t.Errorf("%d attempts: the failures were not retried", attempts)
	}
	mu.Unlock()

	// Restart: a new streamer resumes after the cursor.
	appendEvents(t, s, 11, 3)
	st2 := &audit.Streamer{Store: s, Sinks: []audit.Sink{sink}}
	if n, err := st2.DeliverOnce(context.Background(), sink); err != nil || n != 3 {
		t.Fatalf("after restart: %d, %v", n, err)
	}
	mu.Lock()
	wantSeqs(t, got, 1, 13)
	mu.Unlock()

	// A receiver that never answers 2xx leaves the cursor where it was.
	bad := &audit.HTTPSink{SinkName: "siem", URL: srv.URL + "/x", Client: &http.Client{Transport: failing{}}}
	appendEvents(t, s, 14, 1)
	if _, err := st2.DeliverOnce(context.Background(), bad); err == nil {
		t.Fatal("delivery to a failing receiver succeeded")
	}
	if c, _ := s.AuditCursor(context.Background(), "siem"); c != 13 {
		t.Errorf("cursor moved to %d after a failed delivery", c)
	}
}

type failing struct{}

func (failing) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, io.ErrUnexpectedEOF
}

// TestStreamerNeverSkips checks that a gap in the stored log (an event
// deleted by someone) stops delivery at the gap instead of skipping it.
func TestStreamerNeverSkips(t *testing.T) {
	ctx := context.Background()
	s, path := openStore(t)
	appendEvents(t, s, 1, 6)
	db := admin(t, path)
	exec(t, db, `DELETE FROM audit_log WHERE seq = 4`)
	file := filepath.Join(t.TempDir(), "a.jsonl")
	st := &audit.Streamer{Store: s, Sinks: []audit.Sink{&audit.FileSink{SinkName: "f", Path: file}}}
	if n, err := st.DeliverOnce(ctx, st.Sinks[0]); err != nil || n != 3 {
		t.Fatalf("first delivery: %d, %v; want 3 (up to the gap)", n, err)
	}
	if _, err := st.DeliverOnce(ctx, st.Sinks[0]); err == nil {
		t.Fatal("delivery went past a missing event")
	}
	if c, _ := s.AuditCursor(ctx, "f"); c != 3 {
		t.Errorf("cursor %d, want 3", c)
	}
}
