package main

import (
	"context"
	"fmt"
	"os"
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
	path := cfg.auditKeyFile()
	var (
		key     *audit.Key
		created bool
		err     error
	)
	if cfg.Audit.KeyFile != "" {
		// A configured key must exist: a replica whose secret is not
		// mounted must not quietly sign with a key of its own.
		if key, err = audit.LoadKey(path); err != nil {
			return fmt.Errorf("config: audit.key_file: %w", err)
		}
	} else if key, created, err = audit.LoadOrCreateKey(path, cfg.auditOrigin()); err != nil {
		return err
	}
	if created {
		m.Logger.Info("generated the audit checkpoint signing key", "file", path, "verifier_key", key.VerifierKey)
	} else if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		m.Logger.Warn("the audit signing key file is readable by others than its owner", "file", path, "mode", st.Mode().Perm().String())
	}
	vs, err := cfg.auditVerifiers(key.Verifier)
	if err != nil {
		return err
	}
	m.auditParts.verifiers = vs
	m.auditParts.checkpoints = &audit.Checkpointer{
		Store: m.Store, Key: key, Origin: cfg.auditOrigin(), Verifiers: vs,
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
