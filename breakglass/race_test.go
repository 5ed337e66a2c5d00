package breakglass

import (
	"sync"
	"testing"

	"airlock"
	"airlock/passkey"
)

// TestBreakGlassConcurrentUses: two uses of the same account finished at
// the same time — with the store up and with it stopped — start exactly
// one session; the other is refused as locked.
func TestBreakGlassConcurrentUses(t *testing.T) {
	for _, stopped := range []bool{false, true} {
		name := "store-up"
		if stopped {
			name = "store-stopped"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.store.stopped.Store(stopped)
			var begins []*passkey.Begin
			var resps [][]byte
			for range 2 {
				b, err := h.svc.Begin(h.ctx, "bg", "db down", meta)
				if err != nil {
					t.Fatal(err)
				}
				begins = append(begins, b)
			}
			// Counters in order, so that both would pass the clone check.
			for _, b := range begins {
				r, err := h.bgAuth.Assert(testOrigin, mustJSON(t, b))
				if err != nil {
					t.Fatal(err)
				}
				resps = append(resps, r)
			}
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, _, errs[i] = h.svc.Finish(h.ctx, begins[i].Ceremony, resps[i], meta)
				}()
			}
			wg.Wait()
			ok := 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case passkey.ReasonOf(err) == ReasonLocked, passkey.ReasonOf(err) == passkey.ReasonClone:
					// The loser: locked, or (store up, the second counter
					// lost the compare-and-set) a concurrent use.
				default:
					t.Errorf("unexpected refusal: %v", err)
				}
			}
			if ok != 1 {
				t.Fatalf("%d uses started, want 1 (%v)", ok, errs)
			}
			if !stopped {
				evs, _ := h.sqlite.ListBreakGlassEvents(h.ctx, airlock.BreakGlassFilter{})
				if len(evs) != 1 {
					t.Errorf("%d events", len(evs))
				}
			}
		})
	}
}
