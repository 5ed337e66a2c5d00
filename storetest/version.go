package storetest

import (
	"sync"
	"testing"

	"airlock"
)

// versionOps adapts a versioned record type (User, Device) to
// testVersioning, which checks the optimistic-concurrency contract of its
// Update method.
type versionOps[T any] struct {
	what    string
	fixture func() T // a record with Version 0
	other   func() T // a second record, with another ID, Version 0
	create  func(s airlock.Store, v T) error
	find    func(s airlock.Store, id string) (T, error)
	update  func(s airlock.Store, v T) error
	copy    func(v T) T // a shallow copy
	id      func(v T) string
	version func(v T) *int64
	// mutate changes mutable fields of v to values distinct for each i.
	mutate func(v T, i int)
}

func testVersioning[T any](t *testing.T, open func(t *testing.T) airlock.Store, ops versionOps[T]) {
	t.Run("version-increments", func(t *testing.T) {
		s := open(t)
		v, other := ops.fixture(), ops.other()
		must(t, "create", ops.create(s, v))
		must(t, "create", ops.create(s, other))
		for i := 1; i <= 3; i++ {
			ops.mutate(v, i)
			must(t, "update", ops.update(s, v))
			if got := *ops.version(v); got != int64(i) {
				t.Errorf("after update %d, caller's Version = %d, want %d", i, got, i)
			}
			got, err := ops.find(s, ops.id(v))
			must(t, "find", err)
			checkEqual(t, "updated "+ops.what, v, got)
		}
		got, err := ops.find(s, ops.id(other))
		must(t, "find", err)
		checkEqual(t, "untouched "+ops.what, ops.other(), got)
	})

	t.Run("create-keeps-version", func(t *testing.T) {
		s := open(t)
		v := ops.fixture()
		*ops.version(v) = 41
		must(t, "create", ops.create(s, v))
		got, err := ops.find(s, ops.id(v))
		must(t, "find", err)
		if *ops.version(got) != 41 {
			t.Fatalf("stored Version = %d, want 41", *ops.version(got))
		}
		ops.mutate(got, 1)
		must(t, "update at version 41", ops.update(s, got))
		if *ops.version(got) != 42 {
			t.Errorf("after update, Version = %d, want 42", *ops.version(got))
		}
		stale := ops.fixture() // Version 0: stale against 42
		ops.mutate(stale, 2)
		wantCode(t, "update at version 0", ops.update(s, stale), airlock.ECONFLICT)
	})

	t.Run("fail-stale-version", func(t *testing.T) {
		s := open(t)
		must(t, "create", ops.create(s, ops.fixture()))
		loaded, err := ops.find(s, ops.id(ops.fixture()))
		must(t, "find", err)
		a, b := ops.copy(loaded), ops.copy(loaded)
		ops.mutate(a, 1)
		must(t, "first update", ops.update(s, a))

		// b was read before a's update: refused, nothing written, b as it was.
		ops.mutate(b, 2)
		before := ops.copy(b)
		wantCode(t, "stale update", ops.update(s, b), airlock.ECONFLICT)
		checkEqual(t, "caller's "+ops.what+" after a refused update", before, b)
		got, err := ops.find(s, ops.id(a))
		must(t, "find", err)
		checkEqual(t, "stored "+ops.what+" after a refused update", a, got)

		// A version ahead of the store is as wrong as one behind it.
		ahead := ops.copy(a)
		*ops.version(ahead) += 5
		ops.mutate(ahead, 3)
		wantCode(t, "update ahead of the stored version", ops.update(s, ahead), airlock.ECONFLICT)
		got, err = ops.find(s, ops.id(a))
		must(t, "find", err)
		checkEqual(t, "stored "+ops.what+" after a refused update", a, got)

		// Reload and retry succeeds.
		retry, err := ops.find(s, ops.id(a))
		must(t, "find", err)
		ops.mutate(retry, 2)
		must(t, "update after reload", ops.update(s, retry))
		if *ops.version(retry) != 2 {
			t.Errorf("after retry, Version = %d, want 2", *ops.version(retry))
		}
	})

	t.Run("concurrent-updates-one-wins", func(t *testing.T) {
		s := open(t)
		must(t, "create", ops.create(s, ops.fixture()))
		const writers = 16
		for round := range 3 {
			base, err := ops.find(s, ops.id(ops.fixture()))
			must(t, "find", err)
			baseVersion := *ops.version(base)
			vals := make([]T, writers)
			errs := make([]error, writers)
			for i := range vals {
				vals[i] = ops.copy(base)
				ops.mutate(vals[i], round*writers+i)
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range vals {
				wg.Go(func() {
					<-start
					errs[i] = ops.update(s, vals[i])
				})
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil:
					if winner >= 0 {
						t.Errorf("round %d: updates %d and %d with the same version both succeeded", round, winner, i)
					}
					winner = i
					if got := *ops.version(vals[i]); got != baseVersion+1 {
						t.Errorf("round %d: winner's Version = %d, want %d", round, got, baseVersion+1)
					}
				default:
					wantCode(t, "losing update", err, airlock.ECONFLICT)
					if got := *ops.version(vals[i]); got != baseVersion {
						t.Errorf("round %d: loser's Version changed to %d", round, got)
					}
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: no update succeeded", round)
			}
			got, err := ops.find(s, ops.id(base))
			must(t, "find", err)
			checkEqual(t, "stored "+ops.what+" after the race", vals[winner], got)
		}
	})
}
