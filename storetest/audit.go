package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"airlock"
)

func fullEvent(typ string, when time.Time) *airlock.AuditEvent {
	return &airlock.AuditEvent{
		Seq:           0,
		Time:          when.In(elsewhere),
		Type:          typ,
		Actor:         "u-admin",
		Subject:       "u-1",
		Outcome:       airlock.OutcomeDenied,
		Reason:        "synced passkey cannot serve tier 0",
		UserID:        "u-1",
		SessionID:     "s-1",
		DeviceID:      "d-1",
		CredentialID:  "AAEC_w",
		DecisionID:    "dec-1",
		TransactionID: "tx-1",
		RequestID:     "req-1",
		GrantID:       "g-1",
		SSHSessionID:  "ssh-1",
		IP:            "192.0.2.7",
		Details: map[string]any{
			"tier":     0,
			"ratio":    0.25,
			"ok":       false,
			"nothing":  nil,
			"text":     "ünïcode \"quoted\"\n",
			"list":     []any{"a", 1, true},
			"nested":   map[string]any{"amr": []string{"hwk", "user"}, "n": int64(1) << 52},
			"empty":    map[string]any{},
			"emptyish": "",
		},
	}
}

func testAudit(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("round-trip-and-seq", func(t *testing.T) {
		s := open(t)
		e1 := fullEvent("auth.login", t0)
		checkAllSet(t, e1, "Seq")
		e1.Seq = 99 // assigned by the store, whatever the caller put there
		bare := &airlock.AuditEvent{Time: at(time.Second), Type: "store.bare", Outcome: airlock.OutcomeSuccess}
		e3 := fullEvent("auth.logout", at(2*time.Second))
		e3.Details = map[string]any{}
		for i, e := range []*airlock.AuditEvent{e1, bare, e3} {
			must(t, "AppendAudit", s.AppendAudit(ctx, e))
			if e.Seq != int64(i+1) {
				t.Errorf("event %d: Seq = %d, want %d", i, e.Seq, i+1)
			}
		}
		list, err := s.ListAudit(ctx, airlock.AuditFilter{})
		must(t, "ListAudit", err)
		if len(list) != 3 {
			t.Fatalf("ListAudit returned %d events, want 3", len(list))
		}
		want1 := *e1
		want1.Details = numberRoundTrip(t, e1.Details)
		checkEqual(t, "event 1", &want1, list[0])
		checkEqual(t, "event 2", bare, list[1])
		checkEqual(t, "event 3", e3, list[2])
		if len(list[1].Details) != 0 || len(list[2].Details) != 0 {
			t.Errorf("nil/empty Details came back as %v, %v", list[1].Details, list[2].Details)
		}
	})

	t.Run("seq-gap-free-concurrent", func(t *testing.T) {
		s := open(t)
		const writers, each = 16, 25
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			seen = map[int64]string{}
		)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					e := &airlock.AuditEvent{Time: t0, Type: "load.append", Outcome: airlock.OutcomeSuccess,
						RequestID: string(rune('A'+w)) + "-" + string(rune('a'+i))}
					if err := s.AppendAudit(ctx, e); err != nil {
						t.Errorf("AppendAudit: %v", err)
						return
					}
					mu.Lock()
					if prev, dup := seen[e.Seq]; dup {
						t.Errorf("Seq %d given to both %s and %s", e.Seq, prev, e.RequestID)
					}
					seen[e.Seq] = e.RequestID
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for seq := int64(1); seq <= writers*each; seq++ {
			if _, ok := seen[seq]; !ok {
				t.Errorf("Seq %d was never assigned", seq)
			}
		}
		list, err := s.ListAudit(ctx, airlock.AuditFilter{Limit: writers * each})
		must(t, "ListAudit", err)
		if len(list) != writers*each {
			t.Fatalf("ListAudit returned %d events, want %d", len(list), writers*each)
		}
		for i, e := range list {
			if e.Seq != int64(i+1) {
				t.Fatalf("ListAudit[%d].Seq = %d: not 1, 2, 3… in order", i, e.Seq)
			}
			if seen[e.Seq] != e.RequestID {
				t.Errorf("Seq %d holds %s, appender was told %s", e.Seq, e.RequestID, seen[e.Seq])
			}
		}
	})

	t.Run("filters", func(t *testing.T) {
		s := open(t)
		type ev struct{ typ, user, session string }
		events := []ev{
			{"auth.login", "u-1", "s-1"},      // 1
			{"auth.logout", "u-1", "s-1"},     // 2
			{"authz.decision", "u-1", "s-2"},  // 3
			{"auth", "u-2", "s-3"},            // 4
			{"auth.login", "u-2", "s-3"},      // 5
			{"auth.login.extra", "u-2", ""},   // 6
			{"a_b.c", "", ""},                 // 7
			{"axb.c", "", ""},                 // 8
			{"session.ended", "u-1", "s-1"},   // 9
			{"auth.passkey.added", "u-1", ""}, // 10
		}
		for _, e := range events {
			must(t, "AppendAudit", s.AppendAudit(ctx, &airlock.AuditEvent{Time: t0, Type: e.typ, UserID: e.user, SessionID: e.session, Outcome: airlock.OutcomeSuccess}))
		}
		for _, tc := range []struct {
			name string
			f    airlock.AuditFilter
			want []int64
		}{
			{"all", airlock.AuditFilter{}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{"after-seq", airlock.AuditFilter{AfterSeq: 7}, []int64{8, 9, 10}},
			{"after-last", airlock.AuditFilter{AfterSeq: 10}, nil},
			{"user", airlock.AuditFilter{UserID: "u-2"}, []int64{4, 5, 6}},
			{"session", airlock.AuditFilter{SessionID: "s-1"}, []int64{1, 2, 9}},
			{"type-exact", airlock.AuditFilter{Type: "auth.login"}, []int64{1, 5}},
			{"type-exact-no-prefix", airlock.AuditFilter{Type: "auth"}, []int64{4}},
			{"type-prefix", airlock.AuditFilter{Type: "auth."}, []int64{1, 2, 5, 6, 10}},
			{"type-prefix-deeper", airlock.AuditFilter{Type: "auth.login."}, []int64{6}},
			{"type-prefix-no-wildcards", airlock.AuditFilter{Type: "a_b."}, []int64{7}},
			{"type-none", airlock.AuditFilter{Type: "nothing"}, nil},
			{"limit", airlock.AuditFilter{Limit: 3}, []int64{1, 2, 3}},
			{"limit-after-seq", airlock.AuditFilter{AfterSeq: 3, Limit: 3}, []int64{4, 5, 6}},
			{"combined", airlock.AuditFilter{UserID: "u-1", Type: "auth.", AfterSeq: 1, Limit: 2}, []int64{2, 10}},
			{"user-and-session", airlock.AuditFilter{UserID: "u-2", SessionID: "s-1"}, nil},
			{"before-seq", airlock.AuditFilter{BeforeSeq: 4}, []int64{1, 2, 3}},
			{"before-first", airlock.AuditFilter{BeforeSeq: 1}, nil},
			{"before-past-last", airlock.AuditFilter{BeforeSeq: 99}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{"before-seq-negative-ignored", airlock.AuditFilter{BeforeSeq: -1}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{"after-and-before", airlock.AuditFilter{AfterSeq: 2, BeforeSeq: 6}, []int64{3, 4, 5}},
			{"after-and-before-empty", airlock.AuditFilter{AfterSeq: 5, BeforeSeq: 6}, nil},
			{"before-and-limit", airlock.AuditFilter{BeforeSeq: 8, Limit: 2}, []int64{1, 2}},
			{"before-and-user", airlock.AuditFilter{UserID: "u-2", BeforeSeq: 6}, []int64{4, 5}},
			{"before-and-type-prefix", airlock.AuditFilter{Type: "auth.", BeforeSeq: 10}, []int64{1, 2, 5, 6}},
			{"newest-all", airlock.AuditFilter{Newest: true}, []int64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
			{"newest-limit", airlock.AuditFilter{Newest: true, Limit: 3}, []int64{10, 9, 8}},
			{"newest-before", airlock.AuditFilter{Newest: true, BeforeSeq: 8, Limit: 2}, []int64{7, 6}},
			{"newest-after", airlock.AuditFilter{Newest: true, AfterSeq: 7}, []int64{10, 9, 8}},
			{"newest-after-limit", airlock.AuditFilter{Newest: true, AfterSeq: 2, Limit: 2}, []int64{10, 9}},
			{"newest-user", airlock.AuditFilter{Newest: true, UserID: "u-1", Limit: 3}, []int64{10, 9, 3}},
			{"newest-session-between", airlock.AuditFilter{Newest: true, SessionID: "s-1", AfterSeq: 1, BeforeSeq: 9}, []int64{2}},
			{"newest-type-prefix-before", airlock.AuditFilter{Newest: true, Type: "auth.", BeforeSeq: 10, Limit: 2}, []int64{6, 5}},
			{"newest-type-exact", airlock.AuditFilter{Newest: true, Type: "auth.login"}, []int64{5, 1}},
			{"newest-none", airlock.AuditFilter{Newest: true, Type: "nothing"}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				list, err := s.ListAudit(ctx, tc.f)
				must(t, "ListAudit", err)
				var got []int64
				for _, e := range list {
					got = append(got, e.Seq)
				}
				checkEqual(t, "seqs", tc.want, got)
			})
		}
	})

	t.Run("page-through", func(t *testing.T) {
		s := open(t)
		for range 7 {
			must(t, "AppendAudit", s.AppendAudit(ctx, &airlock.AuditEvent{Time: t0, Type: "x.y", Outcome: airlock.OutcomeSuccess}))
		}
		var got []int64
		var after int64
		for range 10 {
			page, err := s.ListAudit(ctx, airlock.AuditFilter{AfterSeq: after, Limit: 3})
			must(t, "ListAudit", err)
			if len(page) == 0 {
				break
			}
			for _, e := range page {
				got = append(got, e.Seq)
			}
			after = page[len(page)-1].Seq
		}
		checkEqual(t, "paged seqs", []int64{1, 2, 3, 4, 5, 6, 7}, got)

		// And backwards, newest first, with BeforeSeq.
		got = nil
		var before int64
		for range 10 {
			page, err := s.ListAudit(ctx, airlock.AuditFilter{Newest: true, BeforeSeq: before, Limit: 3})
			must(t, "ListAudit", err)
			if len(page) == 0 {
				break
			}
			for _, e := range page {
				got = append(got, e.Seq)
			}
			before = page[len(page)-1].Seq
		}
		checkEqual(t, "paged seqs, newest first", []int64{7, 6, 5, 4, 3, 2, 1}, got)
	})

	testAuditLog(t, open)
}
