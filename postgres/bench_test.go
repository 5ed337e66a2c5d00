package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"airlock"
	"airlock/audit"
	"airlock/decide"
	"airlock/device"
	"airlock/policy"
	"airlock/postgres/pgtest"
	"airlock/risk"
	"airlock/sqlite"
)

// benchStores opens n handles on one new store of each kind: n SQLite
// stores on one file (n processes sharing it), n PostgreSQL stores on one
// schema (n replicas).
func benchStores(b *testing.B, kind string, n int) []airlock.Store {
	b.Helper()
	ctx := context.Background()
	out := make([]airlock.Store, n)
	switch kind {
	case "sqlite":
		path := filepath.Join(b.TempDir(), "airlock.db")
		for i := range out {
			s, err := sqlite.Open(ctx, path)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			out[i] = s
		}
	case "postgres":
		url := pgtest.Schema(b)
		for i := range out {
			out[i] = mustOpenURL(b, url)
		}
	}
	return out
}

// perSecond reports b.N per second of the timed run under unit.
func perSecond(b *testing.B, unit string) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, unit)
	}
}

var benchKinds = []string{"sqlite", "postgres"}

// BenchmarkAuditDurable measures durable audit events per second through
// the one write path (audit.Log.Record returns once the event is
// committed), on both stores in the same run:
//
//   - serial: one recorder, so one commit per event;
//   - concurrent: 32 recorders on one process, whose events the log's
//     group-commit writer batches;
//   - replicas-3: 32 recorders spread over three store handles each with
//     its own log — three replicas (or, for SQLite, three processes on one
//     file) whose batches the database serializes (PostgreSQL: the audit
//     advisory lock).
func BenchmarkAuditDurable(b *testing.B) {
	ctx := context.Background()
	ev := airlock.AuditEvent{Type: "auth.login", Outcome: airlock.OutcomeSuccess, UserID: "usr_1", SessionID: "ses_1",
		DeviceID: "dev_1", Details: map[string]any{"tier": 0, "amr": []string{"hwk", "user"}}}
	for _, kind := range benchKinds {
		b.Run(kind+"/serial", func(b *testing.B) {
			log := audit.New(benchStores(b, kind, 1)[0], nil, nil)
			for b.Loop() {
				if err := log.Record(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
			perSecond(b, "events/s")
		})
		for _, n := range []int{1, 3} {
			name := kind + "/concurrent"
			if n > 1 {
				name = kind + "/replicas-3"
			}
			b.Run(name, func(b *testing.B) {
				stores := benchStores(b, kind, n)
				logs := make([]*audit.Log, n)
				for i, s := range stores {
					logs[i] = audit.New(s, nil, nil)
				}
				var next atomic.Uint64
				b.SetParallelism(16)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					log := logs[(next.Add(1)-1)%uint64(n)]
					for pb.Next() {
						if err := log.Record(ctx, ev); err != nil {
							b.Error(err)
							return
						}
					}
				})
				perSecond(b, "events/s")
				b.StopTimer()
				checkGapFree(b, stores[0])
			})
		}
	}
}

// BenchmarkDecide measures decisions per second through decide.Service —
// policy input from the store, risk signals (which record the network
// seen), the Cedar engine, and the decision's audit record committed before
// the answer — on both stores in the same run, from 32 concurrent callers
// on one process (concurrent) and spread over three replicas (replicas-3).
func BenchmarkDecide(b *testing.B) {
	ctx := context.Background()
	for _, kind := range benchKinds {
		for _, n := range []int{1, 3} {
			name := kind + "/concurrent"
			if n > 1 {
				name = kind + "/replicas-3"
			}
			b.Run(name, func(b *testing.B) {
				stores := benchStores(b, kind, n)
				now := time.Now().UTC()
				u := &airlock.User{ID: "usr_alice", Name: "alice", Kind: airlock.UserEmployee, Tier: 0,
					Roles: []string{airlock.RoleAdmin}, Handle: []byte("h-alice"), CreatedAt: now, UpdatedAt: now}
				d := &airlock.Device{ID: "dev_laptop", Name: "laptop", Owner: u.ID, Kind: airlock.DeviceManaged,
					Trust: airlock.TrustTrusted, Posture: airlock.Posture{Managed: true, DiskEncrypted: true, ScreenLock: true,
						EDRRunning: true, ReportedAt: now.Add(-time.Hour), Source: "bench"}, CreatedAt: now, UpdatedAt: now}
				sess := &airlock.Session{ID: "ses_1", TokenHash: []byte("th-1"), UserID: u.ID, DeviceID: d.ID,
					CredentialID: []byte("c"), Tier: 0, AMR: []string{"hwk", "user", "mfa"}, AuthTime: now.Add(-time.Minute),
					LastSeen: now, LastUVAt: now.Add(-time.Minute), AbsoluteDeadline: now.Add(11 * time.Hour),
					IdleTimeout: 15 * time.Minute, CreatedAt: now.Add(-time.Minute)}
				for _, err := range []error{stores[0].CreateUser(ctx, u), stores[0].CreateDevice(ctx, d), stores[0].CreateSession(ctx, sess)} {
					if err != nil {
						b.Fatal(err)
					}
				}
				engine := policy.NewEngine(policy.Default(), policy.DefaultConfig())
				svcs := make([]*decide.Service, n)
				for i, s := range stores {
					svcs[i] = &decide.Service{Store: s, Engine: engine, Catalog: decide.QuickStart(),
						Signals: &risk.Gatherer{Store: s}, Audit: audit.New(s, nil, nil), DeviceRules: device.DefaultRules(),
						BaseURL: "https://airlock.example.com/"}
				}
				sub := decide.Subject{Session: sess, User: u, Device: d, IdleS: 30}
				req := decide.Request{Action: "config.read", Resource: "grafana", Params: json.RawMessage(`{"dashboard":"db-1"}`),
					IP: "192.0.2.10", Client: "bench"}
				if res, err := svcs[0].Decide(ctx, sub, req); err != nil || res.Decision.Outcome != policy.Allow {
					b.Fatalf("warm-up decision: %+v, %v", res, err)
				}
				var next atomic.Uint64
				b.SetParallelism(16)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					g := next.Add(1) - 1
					svc := svcs[g%uint64(n)]
					// Each caller comes from its own network, as many
					// people do: the risk signals' network sightings
					// are then distinct rows, not one hot row.
					req := req
					req.IP = fmt.Sprintf("10.%d.%d.7", g/250, g%250)
					for pb.Next() {
						res, err := svc.Decide(ctx, sub, req)
						if err != nil || res.Decision.Outcome != policy.Allow {
							b.Errorf("Decide: %+v, %v", res, err)
							return
						}
					}
				})
				perSecond(b, "decisions/s")
				b.StopTimer()
				checkGapFree(b, stores[0])
			})
		}
	}
}

// checkGapFree fails b unless the audit log's Seq run 1…size with no gap.
func checkGapFree(b *testing.B, s airlock.AuditStore) {
	b.Helper()
	ctx := context.Background()
	size, err := s.AuditTreeSize(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var seq int64
	for {
		page, err := s.ReadAuditEntries(ctx, seq, 10000)
		if err != nil {
			b.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if seq++; e.Seq != seq {
				b.Fatalf("audit record %d follows %d", e.Seq, seq-1)
			}
		}
	}
	if seq != size {
		b.Fatalf("read %d audit records, tree size %d", seq, size)
	}
}
