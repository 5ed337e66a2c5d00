package audit_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"airlock"
	"airlock/audit"
)

// gatedStore wraps a store so that tests can hold AppendAudit calls, fail
// them and see their batches.
type gatedStore struct {
	airlock.AuditStore
	mu       sync.Mutex
	batches  []int
	entered  chan int      // receives the batch size as each call starts
	release  chan struct{} // each call waits for a value (nil: never waits)
	failCall int           // fail the call with this number (1-based), if set
}

func (g *gatedStore) AppendAudit(ctx context.Context, events ...*airlock.AuditEvent) error {
	g.mu.Lock()
	g.batches = append(g.batches, len(events))
	call := len(g.batches)
	entered, release := g.entered, g.release
	g.mu.Unlock()
	if entered != nil {
		entered <- len(events)
	}
	if release != nil {
		<-release
	}
	if call == g.failCall {
		return airlock.Errorf(airlock.EINTERNAL, "disk on fire")
	}
	return g.AuditStore.AppendAudit(ctx, events...)
}

// waitQueued waits until n events wait in l's queue.
func waitQueued(t *testing.T, l *audit.Log, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.Pending() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d events queued", l.Pending(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func ev(typ string) airlock.AuditEvent {
	return airlock.AuditEvent{Type: typ, UserID: "u-1"}
}

// TestRecordGroupCommit shows the group commit deterministically: while one
// batch is held in its transaction, the events recorded meanwhile queue and
// then go to the store together in one call, and each caller returns only
// after its own batch committed.
func TestRecordGroupCommit(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	g := &gatedStore{AuditStore: s, entered: make(chan int, 100), release: make(chan struct{})}
	l := audit.New(g, func() time.Time { return t0 }, nil)

	first := make(chan error, 1)
	go func() { first <- l.Record(ctx, ev("x.first")) }()
	if n := <-g.entered; n != 1 {
		t.Fatalf("first batch has %d events", n)
	}
	const waiting = 20
	var wg sync.WaitGroup
	var returned atomic.Int32
	for range waiting {
		wg.Go(func() {
			if err := l.Record(ctx, ev("x.queued")); err != nil {
				t.Error(err)
			}
			returned.Add(1)
		})
	}
	waitQueued(t, l, waiting)
	if returned.Load() != 0 {
		t.Fatalf("%d callers returned before their batch was committed", returned.Load())
	}
	select {
	case err := <-first:
		t.Fatalf("the first caller returned (%v) before its commit", err)
	default:
	}
	g.release <- struct{}{} // commit the first batch
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if n := <-g.entered; n != waiting {
		t.Errorf("second batch has %d events, want all %d queued ones", n, waiting)
	}
	g.release <- struct{}{}
	wg.Wait()
	list, err := s.ListAudit(ctx, airlock.AuditFilter{})
	if err != nil || len(list) != waiting+1 {
		t.Fatalf("%d events stored, %v", len(list), err)
	}
	if l.LastSeq() != waiting+1 {
		t.Errorf("LastSeq = %d", l.LastSeq())
	}
}

// TestRecordConcurrent checks many producers against a real store: every
// acknowledged event is stored, under its own Seq, gap-free.
func TestRecordConcurrent(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	l := audit.New(s, nil, nil)
	const producers, each = 64, 10
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				e := ev("load.x")
				e.RequestID = string(rune('a'+p%26)) + string(rune('a'+i))
				if err := l.Record(ctx, e); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	list, err := s.ListAudit(ctx, airlock.AuditFilter{Limit: producers * each})
	if err != nil || len(list) != producers*each {
		t.Fatalf("%d events, %v", len(list), err)
	}
	for i, e := range list {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
	}
}

// TestRecordFailedCommitFailsItsBatch checks that a failed transaction
// fails every caller whose event was in it, and only them.
func TestRecordFailedCommitFailsItsBatch(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	g := &gatedStore{AuditStore: s, entered: make(chan int, 100), release: make(chan struct{}), failCall: 2}
	l := audit.New(g, nil, nil)
	first := make(chan error, 1)
	go func() { first <- l.Record(ctx, ev("x.first")) }()
	<-g.entered
	errs := make(chan error, 5)
	for range 5 {
		go func() { errs <- l.Record(ctx, ev("x.doomed")) }()
	}
	waitQueued(t, l, 5)
	g.release <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if n := <-g.entered; n != 5 {
		t.Fatalf("second batch has %d events", n)
	}
	g.release <- struct{}{} // call 2 fails
	for range 5 {
		if err := <-errs; airlock.ErrorCode(err) != airlock.EUNAVAILABLE {
			t.Errorf("caller of the failed batch: %v, want EUNAVAILABLE", err)
		}
	}
	if list, _ := s.ListAudit(ctx, airlock.AuditFilter{}); len(list) != 1 {
		t.Errorf("%d events stored, want only the first", len(list))
	}
	// The writer recovers: the next event is stored with the next Seq.
	g.mu.Lock()
	g.entered, g.release = nil, nil
	g.mu.Unlock()
	if err := l.Record(ctx, ev("x.after")); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListAudit(ctx, airlock.AuditFilter{}); len(list) != 2 || list[1].Seq != 2 {
		t.Errorf("after recovery: %d events", len(list))
	}
}

// TestRecordInvalidDoesNotPoisonBatch checks that an event that cannot be
// encoded is refused up front, EINVALID, without failing anyone else.
func TestRecordInvalidDoesNotPoisonBatch(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	l := audit.New(s, nil, nil)
	bad := ev("x.bad")
	bad.Details = map[string]any{"f": func() {}}
	if err := l.Record(ctx, bad); airlock.ErrorCode(err) != airlock.EINVALID {
		t.Errorf("invalid details: %v, want EINVALID", err)
	}
	if err := l.Record(ctx, airlock.AuditEvent{}); airlock.ErrorCode(err) != airlock.EINVALID {
		t.Errorf("no type: %v, want EINVALID", err)
	}
	if err := l.Record(ctx, ev("x.good")); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListAudit(ctx, airlock.AuditFilter{}); len(list) != 1 || list[0].Seq != 1 {
		t.Errorf("stored %+v", list)
	}
}

// TestRecordCancelledWhileQueued checks that a caller who gives up while
// its event still waits withdraws it, and the event is not stored.
func TestRecordCancelledWhileQueued(t *testing.T) {
	s, _ := openStore(t)
	g := &gatedStore{AuditStore: s, entered: make(chan int, 100), release: make(chan struct{})}
	l := audit.New(g, nil, nil)
	first := make(chan error, 1)
	go func() { first <- l.Record(context.Background(), ev("x.first")) }()
	<-g.entered
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { gaveUp <- l.Record(ctx, ev("x.withdrawn")) }()
	waitQueued(t, l, 1)
	cancel()
	if err := <-gaveUp; airlock.ErrorCode(err) != airlock.EUNAVAILABLE || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Record: %v", err)
	}
	g.release <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	g.entered, g.release = nil, nil
	g.mu.Unlock()
	if err := l.Record(context.Background(), ev("x.next")); err != nil {
		t.Fatal(err)
	}
	list, _ := s.ListAudit(context.Background(), airlock.AuditFilter{})
	if len(list) != 2 || list[1].Type != "x.next" {
		t.Errorf("stored %d events: the withdrawn one must not be there", len(list))
	}
}

// TestLogClose checks that Close drains the queue and refuses new events.
func TestLogClose(t *testing.T) {
	s, _ := openStore(t)
	g := &gatedStore{AuditStore: s, entered: make(chan int, 100), release: make(chan struct{})}
	l := audit.New(g, nil, nil)
	first := make(chan error, 1)
	go func() { first <- l.Record(context.Background(), ev("x.first")) }()
	<-g.entered
	second := make(chan error, 1)
	go func() { second <- l.Record(context.Background(), ev("x.second")) }()
	waitQueued(t, l, 1)
	closed := make(chan error, 1)
	go func() { closed <- l.Close(context.Background()) }()
	// Wait until Close has started: a probe with a cancelled context is
	// then refused as closed rather than withdrawn as cancelled.
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for errors.Is(l.Record(gone, ev("x.probe")), context.Canceled) {
		time.Sleep(time.Millisecond)
	}
	select {
	case <-closed:
		t.Fatal("Close returned with events still queued")
	default:
	}
	g.release <- struct{}{}
	<-g.entered
	g.release <- struct{}{}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if err := l.Record(context.Background(), ev("x.late")); airlock.ErrorCode(err) != airlock.EUNAVAILABLE {
		t.Errorf("Record after Close: %v", err)
	}
	if list, _ := s.ListAudit(context.Background(), airlock.AuditFilter{}); len(list) != 2 {
		t.Errorf("%d events stored", len(list))
	}
}

// TestRecordNilStore checks that a Log without a store fails closed: Record
// returns EUNAVAILABLE instead of panicking in the writer goroutine.
func TestRecordNilStore(t *testing.T) {
	var nilLog *audit.Log
	for name, l := range map[string]*audit.Log{"nil-store": audit.New(nil, nil, nil), "nil-log": nilLog} {
		err := l.Record(context.Background(), airlock.AuditEvent{Type: "auth.login"})
		if airlock.ErrorCode(err) != airlock.EUNAVAILABLE {
			t.Errorf("%s: Record = %v, want EUNAVAILABLE", name, err)
		}
	}
}
