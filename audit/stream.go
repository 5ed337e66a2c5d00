package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"airlock"
	"airlock/notify"
)

// Sink receives batches of audit events. Delivery is at least once: a
// batch may be delivered again after a failure or a restart (the cursor is
// stored only after Deliver returns nil), so receivers deduplicate by seq.
type Sink interface {
	// Name identifies the sink's durable cursor in the store.
	Name() string
	// Deliver hands over the records, in Seq order, and returns nil only
	// once the receiver holds them durably.
	Deliver(ctx context.Context, entries []*airlock.AuditEntry) error
}

// Streamer delivers the audit log to sinks, each from its own durable
// cursor: after a restart it resumes after the last acknowledged batch, so
// no event is skipped.
type Streamer struct {
	Store airlock.AuditStore
	Sinks []Sink
	// Batch is the most events per delivery (default 500).
	Batch int
	// Poll is how often a sink looks for new events when not woken by Log
	// (default 1 s; other replicas' events are seen this way).
	Poll time.Duration
	// MinBackoff and MaxBackoff bound the delay between failed attempts
	// (defaults 1 s and 5 min; it doubles after each failure).
	MinBackoff, MaxBackoff time.Duration
	// Log, if set, wakes the sinks after its commits.
	Log    *Log
	Logger *slog.Logger
}

// Run streams to every sink until ctx ends.
func (s *Streamer) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, sink := range s.Sinks {
		var wake <-chan struct{}
		if s.Log != nil {
			wake = s.Log.Subscribe()
		}
		wg.Go(func() { s.run(ctx, sink, wake) })
	}
	wg.Wait()
}

func (s *Streamer) run(ctx context.Context, sink Sink, wake <-chan struct{}) {
	poll := s.Poll
	if poll <= 0 {
		poll = time.Second
	}
	minB, maxB := s.MinBackoff, s.MaxBackoff
	if minB <= 0 {
		minB = time.Second
	}
	if maxB <= 0 {
		maxB = 5 * time.Minute
	}
	backoff := time.Duration(0)
	for {
		var wait time.Duration
		n, err := s.DeliverOnce(ctx, sink)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			backoff = min(max(2*backoff, minB), maxB)
			wait = backoff
			if s.Logger != nil {
				s.Logger.Warn("audit sink delivery failed", "sink", sink.Name(), "err", err, "retry_in", wait)
			}
		case n > 0:
			backoff = 0
			continue // more may be waiting
		default:
			backoff = 0
			wait = poll
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-wake:
			t.Stop()
			if err != nil {
				// Still back off after a failure.
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
	}
}

// DeliverOnce delivers the next batch after sink's cursor and advances the
// cursor; it returns how many events it delivered.
func (s *Streamer) DeliverOnce(ctx context.Context, sink Sink) (int, error) {
	batch := s.Batch
	if batch <= 0 {
		batch = 500
	}
	cur, err := s.Store.AuditCursor(ctx, sink.Name())
	if err != nil {
		return 0, err
	}
	entries, err := s.Store.ReadAuditEntries(ctx, cur, batch)
	if err != nil || len(entries) == 0 {
		return 0, err
	}
	// Never skip: deliver only the unbroken run after the cursor.
	for i, e := range entries {
		if e.Seq != cur+int64(i)+1 {
			if i == 0 {
				return 0, fmt.Errorf("audit: event %d missing from the store (next is %d): run verify", cur+1, e.Seq)
			}
			entries = entries[:i]
			break
		}
	}
	if err := sink.Deliver(ctx, entries); err != nil {
		return 0, err
	}
	if err := s.Store.SetAuditCursor(ctx, sink.Name(), entries[len(entries)-1].Seq); err != nil {
		return 0, err
	}
	return len(entries), nil
}

// jsonLines returns the entries' leaves, one per line.
func jsonLines(entries []*airlock.AuditEntry) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		b.Write(e.Leaf)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// HTTPSink POSTs each batch as JSON lines (Content-Type
// application/x-ndjson), the leaves exactly as exported, with headers
// X-Airlock-Audit-First-Seq and X-Airlock-Audit-Last-Seq. With a Secret,
// X-Airlock-Timestamp and X-Airlock-Signature are set as for notifications
// (notify.Sign). Any 2xx answer acknowledges the batch.
type HTTPSink struct {
	SinkName string
	URL      string
	Secret   string
	Client   *http.Client
	Now      func() time.Time
}

// Name implements Sink.
func (h *HTTPSink) Name() string { return h.SinkName }

// Deliver implements Sink.
func (h *HTTPSink) Deliver(ctx context.Context, entries []*airlock.AuditEntry) error {
	body := jsonLines(entries)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("X-Airlock-Audit-First-Seq", strconv.FormatInt(entries[0].Seq, 10))
	req.Header.Set("X-Airlock-Audit-Last-Seq", strconv.FormatInt(entries[len(entries)-1].Seq, 10))
	if h.Secret != "" {
		now := time.Now
		if h.Now != nil {
			now = h.Now
		}
		ts := strconv.FormatInt(now().Unix(), 10)
		req.Header.Set("X-Airlock-Timestamp", ts)
		req.Header.Set("X-Airlock-Signature", "sha256="+notify.Sign(h.Secret, ts, body))
	}
	client := h.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		// The URL may carry a secret: report the cause, not the URL.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("audit: sink %s: %w", h.SinkName, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("audit: sink %s: receiver answered %s", h.SinkName, resp.Status)
	}
	return nil
}

// FileSink appends each batch as JSON lines to a file (created with mode
// 0600) and fsyncs it before acknowledging. On its first delivery after a
// start it repairs a torn last line left by a crash (truncating the partial
// line) and skips events the file already ends with, so the file itself
// holds each event once even though the cursor may lag it.
type FileSink struct {
	SinkName string
	Path     string

	mu      sync.Mutex
	checked bool
	lastSeq int64 // the last seq in the file, once checked
}

// Name implements Sink.
func (f *FileSink) Name() string { return f.SinkName }

// Deliver implements Sink.
func (f *FileSink) Deliver(ctx context.Context, entries []*airlock.AuditEntry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o700); err != nil {
		return fmt.Errorf("audit: sink %s: %w", f.SinkName, err)
	}
	file, err := os.OpenFile(f.Path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: sink %s: %w", f.SinkName, err)
	}
	defer file.Close()
	if !f.checked {
		if f.lastSeq, err = repairTail(file); err != nil {
			return fmt.Errorf("audit: sink %s: %w", f.SinkName, err)
		}
		f.checked = true
	}
	for len(entries) > 0 && entries[0].Seq <= f.lastSeq {
		entries = entries[1:]
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := file.Seek(0, io.SeekEnd); err != nil {
		return err
	}
	if _, err := file.Write(jsonLines(entries)); err != nil {
		f.checked = false // re-examine the tail next time
		return fmt.Errorf("audit: sink %s: %w", f.SinkName, err)
	}
	if err := file.Sync(); err != nil {
		f.checked = false
		return fmt.Errorf("audit: sink %s: %w", f.SinkName, err)
	}
	f.lastSeq = entries[len(entries)-1].Seq
	return nil
}

// repairTail truncates a partial last line and returns the seq of the last
// complete line (0 for an empty file).
func repairTail(file *os.File) (int64, error) {
	st, err := file.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	if size == 0 {
		return 0, nil
	}
	// Read back at most 1 MiB: events are far smaller.
	n := min(size, 1<<20)
	buf := make([]byte, n)
	if _, err := file.ReadAt(buf, size-n); err != nil && err != io.EOF {
		return 0, err
	}
	end := bytes.LastIndexByte(buf, '\n')
	if end < 0 && n < size {
		return 0, errors.New("last line of the sink file is longer than 1 MiB")
	}
	if keep := size - n + int64(end) + 1; keep < size {
		if err := file.Truncate(keep); err != nil {
			return 0, err
		}
		if err := file.Sync(); err != nil {
			return 0, err
		}
		buf = buf[:end+1]
	}
	if end < 0 {
		return 0, nil
	}
	// buf[end] is the last newline: the last line is what precedes it.
	last := buf[bytes.LastIndexByte(buf[:end], '\n')+1 : end]
	ev, err := airlock.ParseAuditLeaf(last)
	if err != nil {
		return 0, fmt.Errorf("last line of the sink file is not an audit event: %v", err)
	}
	return ev.Seq, nil
}
