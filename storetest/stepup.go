package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"airlock"
)

// fullStepUp is a pending transaction (not completed, not used).
func fullStepUp(id string, expires time.Time) *airlock.StepUp {
	return &airlock.StepUp{
		ID:           id,
		SessionID:    "s-1",
		UserID:       "u-1",
		DeviceID:     "d-1",
		Action:       "payments.transfer",
		Resource:     "payments",
		Params:       []byte(`{"amount":"100.00","payee":"DE02 1203 0000 0000 2020 51"}`),
		ParamsDigest: bytesOf(3, 32),
		Client:       "bank-ui",
		DecisionID:   "dec-" + id,
		Digest:       bytesOf(7, 32),
		ACR:          "phr",
		MaxAge:       300,
		Reason:       "critical actions need a passkey confirmation",
		IP:           "2001:db8::7",
		CreatedAt:    expires.Add(-5 * time.Minute),
		ExpiresAt:    expires.In(elsewhere),
	}
}

func testStepUps(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()
	proof := func(i byte) []byte { return bytesOf(100+i, 32) }

	t.Run("round-trip", func(t *testing.T) {
		s := open(t)
		tx := fullStepUp("t-1", at(5*time.Minute))
		checkAllSet(t, tx, "ProofHash", "CredentialID", "CompletedAt", "ProofExpiresAt", "UsedAt")
		must(t, "CreateStepUp", s.CreateStepUp(ctx, tx))
		got, err := s.FindStepUpByID(ctx, tx.ID)
		must(t, "FindStepUpByID", err)
		checkEqual(t, "step-up", tx, got)
		if got.IsCompleted() {
			t.Error("a new transaction reports IsCompleted")
		}
	})

	t.Run("complete-and-consume", func(t *testing.T) {
		s := open(t)
		tx := fullStepUp("t-1", at(5*time.Minute))
		must(t, "CreateStepUp", s.CreateStepUp(ctx, tx))
		must(t, "CompleteStepUp", s.CompleteStepUp(ctx, tx.ID, proof(1), bytesOf(9, 48), at(time.Minute), at(3*time.Minute).In(elsewhere)))
		want := *tx
		want.ProofHash, want.CredentialID = proof(1), bytesOf(9, 48)
		want.CompletedAt, want.ProofExpiresAt = at(time.Minute), at(3*time.Minute)
		checkAllSet(t, &want, "UsedAt")
		got, err := s.FindStepUpByID(ctx, tx.ID)
		must(t, "FindStepUpByID", err)
		checkEqual(t, "completed step-up", &want, got)
		if !got.IsCompleted() {
			t.Error("a completed transaction does not report IsCompleted")
		}

		used, err := s.ConsumeStepUpProof(ctx, proof(1), at(2*time.Minute))
		must(t, "ConsumeStepUpProof", err)
		want.UsedAt = at(2 * time.Minute)
		checkEqual(t, "consumed step-up", &want, used)
		got, err = s.FindStepUpByID(ctx, tx.ID)
		must(t, "FindStepUpByID", err)
		checkEqual(t, "stored step-up after consumption", &want, got)
	})

	t.Run("fail-complete-twice", func(t *testing.T) {
		s := open(t)
		must(t, "CreateStepUp", s.CreateStepUp(ctx, fullStepUp("t-1", at(5*time.Minute))))
		must(t, "CompleteStepUp", s.CompleteStepUp(ctx, "t-1", proof(1), bytesOf(9, 48), at(time.Minute), at(3*time.Minute)))
		wantCode(t, "second CompleteStepUp", s.CompleteStepUp(ctx, "t-1", proof(2), bytesOf(10, 48), at(2*time.Minute), at(4*time.Minute)), airlock.ECONFLICT)
		got, err := s.FindStepUpByID(ctx, "t-1")
		must(t, "FindStepUpByID", err)
		checkEqual(t, "proof hash after a refused completion", proof(1), got.ProofHash)
		checkEqual(t, "completion time after a refused completion", at(time.Minute), got.CompletedAt)
		_, err = s.ConsumeStepUpProof(ctx, proof(2), at(2*time.Minute))
		wantCode(t, "ConsumeStepUpProof (refused proof)", err, airlock.ENOTFOUND)
	})

	t.Run("fail-complete-missing", func(t *testing.T) {
		s := open(t)
		wantCode(t, "CompleteStepUp", s.CompleteStepUp(ctx, "t-404", proof(1), nil, t0, at(time.Minute)), airlock.ENOTFOUND)
	})

	t.Run("fail-proof-hash-reused", func(t *testing.T) {
		s := open(t)
		must(t, "CreateStepUp", s.CreateStepUp(ctx, fullStepUp("t-1", at(5*time.Minute))))
		must(t, "CreateStepUp", s.CreateStepUp(ctx, fullStepUp("t-2", at(5*time.Minute))))
		must(t, "CompleteStepUp", s.CompleteStepUp(ctx, "t-1", proof(1), nil, t0, at(2*time.Minute)))
		wantCode(t, "CompleteStepUp with another transaction's proof hash", s.CompleteStepUp(ctx, "t-2", proof(1), nil, t0, at(2*time.Minute)), airlock.ECONFLICT)
		got, err := s.FindStepUpByID(ctx, "t-2")
		must(t, "FindStepUpByID", err)
		if got.IsCompleted() || len(got.ProofHash) != 0 {
			t.Errorf("t-2 after a refused completion: completed %v, proof hash %x", got.CompletedAt, got.ProofHash)
		}
	})

	t.Run("fail-duplicate-id", func(t *testing.T) {
		s := open(t)
		must(t, "CreateStepUp", s.CreateStepUp(ctx, fullStepUp("t-1", at(5*time.Minute))))
		dup := fullStepUp("t-1", at(time.Hour))
		dup.Action = "secrets.export"
		wantCode(t, "CreateStepUp", s.CreateStepUp(ctx, dup), airlock.ECONFLICT)
		got, err := s.FindStepUpByID(ctx, "t-1")
		must(t, "FindStepUpByID", err)
		checkEqual(t, "original step-up", fullStepUp("t-1", at(5*time.Minute)), got)
	})

	t.Run("fail-missing", func(t *testing.T) {
		s := open(t)
		_, err := s.FindStepUpByID(ctx, "t-404")
		wantCode(t, "FindStepUpByID", err, airlock.ENOTFOUND)
		_, err = s.ConsumeStepUpProof(ctx, proof(1), t0)
		wantCode(t, "ConsumeStepUpProof (unknown proof)", err, airlock.ENOTFOUND)
		_, err = s.ConsumeStepUpProof(ctx, nil, t0)
		wantCode(t, "ConsumeStepUpProof (empty proof)", err, airlock.ENOTFOUND)
	})

	t.Run("fail-zero-times", func(t *testing.T) {
		// A zero time would read back as "never": a completion or a use
		// recorded at the zero time would leave the proof reusable.
		s := open(t)
		must(t, "CreateStepUp", s.CreateStepUp(ctx, fullStepUp("t-1", at(5*time.Minute))))
		wantCode(t, "CompleteStepUp at the zero time", s.CompleteStepUp(ctx, "t-1", proof(1), nil, time.Time{}, at(2*time.Minute)), airlock.EINVALID)
		if got, err := s.FindStepUpByID(ctx, "t-1"); err != nil || got.IsCompleted() {
			t.Fatalf("after a refused completion: %+v, %v", got, err)
		}
		must(t, "CompleteStepUp", s.CompleteStepUp(ctx, "t-1", proof(1), nil, t0, at(2*time.Minute)))
		_, err := s.ConsumeStepUpProof(ctx, proof(1), time.Time{})
		wantCode(t, "ConsumeStepUpProof at the zero time", err, airlock.EINVALID)
		_, err = s.ConsumeStepUpProof(ctx, proof(1), at(time.Second))
		must(t, "ConsumeStepUpProof", err)
		_, err = s.ConsumeStepUpProof(ctx, proof(1), at(2*time.Second))
		wantCode(t, "second ConsumeStepUpProof", err, airlock.ECONFLICT)
	})

	t.Run("fail-replayed-proof", func(t *testing.T) {
		s := open(t)
		must(t, "CreateStepUp", s.CreateStepUp(ctx, fullStepUp("t-1", at(5*time.Minute))))
		must(t, "CompleteStepUp", s.CompleteStepUp(ctx, "t-1", proof(1), nil, t0, at(2*time.Minute)))
		_, err := s.ConsumeStepUpProof(ctx, proof(1), at(time.Second))
		must(t, "ConsumeStepUpProof", err)
		_, err = s.ConsumeStepUpProof(ctx, proof(1), at(2*time.Second))
		wantCode(t, "second ConsumeStepUpProof", err, airlock.ECONFLICT)
		got, err := s.FindStepUpByID(ctx, "t-1")
		must(t, "FindStepUpByID", err)
		checkEqual(t, "first use time after a replay", at(time.Second), got.UsedAt)
	})

	t.Run("expired-proof-still-consumed", func(t *testing.T) {
		s := open(t)
		must(t, "CreateStepUp", s.CreateStepUp(ctx, fullStepUp("t-1", at(5*time.Minute))))
		must(t, "CompleteStepUp", s.CompleteStepUp(ctx, "t-1", proof(1), nil, t0, at(2*time.Minute)))
		got, err := s.ConsumeStepUpProof(ctx, proof(1), at(time.Hour))
		must(t, "ConsumeStepUpProof (expired)", err)
		checkEqual(t, "proof expiry", at(2*time.Minute), got.ProofExpiresAt)
		_, err = s.ConsumeStepUpProof(ctx, proof(1), at(time.Hour))
		wantCode(t, "second ConsumeStepUpProof", err, airlock.ECONFLICT)
	})

	t.Run("consume-concurrently", func(t *testing.T) {
		s := open(t)
		const txs, racers = 4, 16
		for i := range txs {
			id := fmt.Sprint("t-", i)
			must(t, "CreateStepUp", s.CreateStepUp(ctx, fullStepUp(id, at(5*time.Minute))))
			must(t, "CompleteStepUp", s.CompleteStepUp(ctx, id, proof(byte(i)), nil, t0, at(2*time.Minute)))
		}
		for i := range txs {
			var (
				wg   sync.WaitGroup
				mu   sync.Mutex
				wins int
			)
			start := make(chan struct{})
			for range racers {
				wg.Go(func() {
					<-start
					got, err := s.ConsumeStepUpProof(ctx, proof(byte(i)), at(time.Minute))
					switch airlock.ErrorCode(err) {
					case "":
						if got == nil || got.ID != fmt.Sprint("t-", i) {
							t.Errorf("proof %d: winner got %+v", i, got)
						}
						mu.Lock()
						wins++
						mu.Unlock()
					case airlock.ECONFLICT:
					default:
						t.Errorf("proof %d: %v, want nil or ECONFLICT", i, err)
					}
				})
			}
			close(start)
			wg.Wait()
			if wins != 1 {
				t.Errorf("proof %d: %d of %d concurrent consumers won, want exactly 1", i, wins, racers)
			}
		}
	})

	t.Run("delete-expired", func(t *testing.T) {
		s := open(t)
		// Pending, ceremony deadline passed: deleted.
		must(t, "CreateStepUp", s.CreateStepUp(ctx, fullStepUp("t-old", at(-time.Microsecond))))
		// Pending, deadline exactly now: kept.
		must(t, "CreateStepUp", s.CreateStepUp(ctx, fullStepUp("t-exact", t0)))
		// Completed, both deadlines passed: deleted.
		must(t, "CreateStepUp", s.CreateStepUp(ctx, fullStepUp("t-done", at(-time.Hour))))
		must(t, "CompleteStepUp", s.CompleteStepUp(ctx, "t-done", proof(1), nil, at(-2*time.Hour), at(-time.Minute)))
		// Completed, ceremony deadline passed but proof still valid: kept.
		must(t, "CreateStepUp", s.CreateStepUp(ctx, fullStepUp("t-proof", at(-time.Hour))))
		must(t, "CompleteStepUp", s.CompleteStepUp(ctx, "t-proof", proof(2), nil, at(-time.Hour), at(time.Minute)))
		n, err := s.DeleteExpiredStepUps(ctx, t0)
		must(t, "DeleteExpiredStepUps", err)
		if n != 2 {
			t.Errorf("DeleteExpiredStepUps = %d, want 2", n)
		}
		for id, kept := range map[string]bool{"t-old": false, "t-exact": true, "t-done": false, "t-proof": true} {
			_, err := s.FindStepUpByID(ctx, id)
			if kept {
				must(t, "FindStepUpByID("+id+")", err)
			} else {
				wantCode(t, "FindStepUpByID("+id+")", err, airlock.ENOTFOUND)
			}
		}
		_, err = s.ConsumeStepUpProof(ctx, proof(1), t0)
		wantCode(t, "ConsumeStepUpProof of a deleted transaction", err, airlock.ENOTFOUND)
	})
}
