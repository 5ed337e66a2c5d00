package main

import (
	"context"
	"path/filepath"
	"time"

	"airlock/audit"

	"golang.org/x/mod/sumdb/note"
)

// auditParts are the server's audit machinery besides the Log: the
// checkpoint signer, the SIEM streamer and the verifiers the audit page
// checks the latest checkpoint with.
type auditParts struct {
	checkpoints *audit.Checkpointer
	stream      *audit.Streamer
	verifiers   note.Verifiers
}

// auditServices loads (or on first start generates) the checkpoint signing
// key and builds the checkpoint signer and the SIEM streamer over m.Audit.
func (m *Main) auditServices(cfg Config) error {
	origin := cfg.auditOrigin()
	key, err := signingKey[*audit.Key]{
		what: "audit checkpoint signing", setting: "audit.key_file", configured: cfg.Audit.KeyFile != "", path: cfg.auditKeyFile(),
		load: audit.LoadKey,
		loadOrCreate: func(path string) (*audit.Key, bool, error) {
			return audit.LoadOrCreateKey(path, origin)
		},
		logged: func(k *audit.Key) []any { return []any{"verifier_key", k.VerifierKey} },
	}.get(m.Logger, true)
	if err != nil {
		return err
	}
	vs, err := cfg.auditVerifiers(key.Verifier)
	if err != nil {
		return err
	}
	m.auditParts.verifiers = vs
	m.auditParts.checkpoints = &audit.Checkpointer{
		Store: m.Store, Key: key, Origin: origin, Verifiers: vs,
		Every: cfg.Audit.CheckpointEvery, Interval: cfg.Audit.CheckpointInterval,
		Log: m.Audit, Now: m.Now, Logger: m.Logger,
		// The signer's own memory of what it signed, out of the store's
		// reach (operations.md "The audit log").
		StateFile: filepath.Join(cfg.Data, "audit-checkpoint"),
	}
	var sinks []audit.Sink
	batch := 0
	for _, s := range cfg.Audit.Sinks {
		switch s.Type {
		case "http":
			sinks = append(sinks, &audit.HTTPSink{SinkName: s.Name, URL: s.URL, Secret: s.Secret, Now: m.Now})
		case "file":
			sinks = append(sinks, &audit.FileSink{SinkName: s.Name, Path: s.Path})
		}
		batch = max(batch, s.Batch)
	}
	if len(sinks) > 0 {
		m.auditParts.stream = &audit.Streamer{Store: m.Store, Sinks: sinks, Batch: batch, Log: m.Audit, Logger: m.Logger}
	}
	return nil
}

// runAudit signs checkpoints and streams to the sinks until ctx ends.
func (m *Main) runAudit(ctx context.Context) {
	if c := m.auditParts.checkpoints; c != nil {
		m.wg.Add(1)
		go func() { defer m.wg.Done(); c.Run(ctx) }()
	}
	if s := m.auditParts.stream; s != nil {
		m.wg.Add(1)
		go func() { defer m.wg.Done(); s.Run(ctx) }()
	}
}

// closeAudit drains the audit log's queue and signs a final checkpoint.
func (m *Main) closeAudit() {
	if m.Audit == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Audit.Close(ctx); err != nil {
		m.Logger.Error("audit log: events still queued at shutdown", "err", err)
	}
	if c := m.auditParts.checkpoints; c != nil {
		if cp, err := c.Checkpoint(ctx); err != nil {
			m.Logger.Error("audit checkpoint at shutdown failed", "err", err)
		} else if cp != nil {
			m.Logger.Info("audit checkpoint at shutdown", "size", cp.Size)
		}
	}
}

// auditStatus says whether the latest checkpoint verifies, for the audit
// page.
func (m *Main) auditStatus(ctx context.Context) audit.Status {
	return audit.CheckLatest(ctx, m.Store, m.auditParts.verifiers)
}
