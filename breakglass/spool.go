package breakglass

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"airlock"
)

// spool is an append-only JSON-lines file: each record is written with
// O_APPEND and fsynced before append returns. A crash can leave a torn
// last line (no final newline): read ignores it and the next append cuts
// it off first.
type spool struct {
	path string
	mu   sync.Mutex
}

// append writes v as one line, durably.
func (sp *spool) append(v any) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.appendLocked(v)
}

func (sp *spool) appendLocked(v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("breakglass: encode %s record: %w", filepath.Base(sp.path), err)
	}
	line = append(line, '\n')
	_, statErr := os.Stat(sp.path)
	created := errors.Is(statErr, fs.ErrNotExist)
	f, err := os.OpenFile(sp.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := repairTail(f); err != nil {
		return err
	}
	if _, err := f.Write(line); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if created {
		// The new file's directory entry must be durable too.
		if d, err := os.Open(filepath.Dir(sp.path)); err == nil {
			_ = d.Sync()
			d.Close()
		}
	}
	return f.Close()
}

// repairTail cuts a torn last line (bytes after the last newline) off f.
func repairTail(f *os.File) error {
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return err
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, st.Size()-1); err != nil {
		return err
	}
	if last[0] == '\n' {
		return nil
	}
	data, err := os.ReadFile(f.Name())
	if err != nil {
		return err
	}
	cut := int64(bytes.LastIndexByte(data, '\n') + 1)
	if err := f.Truncate(cut); err != nil {
		return err
	}
	return f.Sync()
}

// readLocked returns the complete lines of the file (none if it does not
// exist). A torn last line is ignored; a complete line that is not JSON is
// an error (the file was damaged: nothing is merged or dropped).
func (sp *spool) readLocked() ([][]byte, error) {
	data, err := os.ReadFile(sp.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var lines [][]byte
	for n := 1; ; n++ {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break // empty, or a torn last line
		}
		line := data[:i]
		data = data[i+1:]
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if !json.Valid(line) {
			return nil, fmt.Errorf("breakglass: %s line %d is not JSON", filepath.Base(sp.path), n)
		}
		lines = append(lines, line)
	}
	return lines, nil
}

func (sp *spool) read() ([][]byte, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.readLocked()
}

// startedDetails are the Details of a "breakglass.started" event: enough
// to record the BreakGlassEvent row of an offline use at Merge.
type startedDetails struct {
	EventID        string    `json:"event_id"`
	AccountID      string    `json:"account_id"`
	Account        string    `json:"account"`
	Justification  string    `json:"justification"`
	Scopes         []string  `json:"scopes"`
	UserAgent      string    `json:"user_agent,omitempty"`
	TokenHash      string    `json:"token_hash"` // base64url
	StartedAt      time.Time `json:"started_at"`
	EndsAt         time.Time `json:"ends_at"`
	AlertIDs       []string  `json:"alert_ids"`
	AlertDelivered bool      `json:"alert_delivered"`
	SignCount      uint32    `json:"sign_count"`
	OldSignCount   uint32    `json:"old_sign_count"`
	Offline        bool      `json:"offline,omitempty"`
}

// details returns d as an audit event's Details map.
func (d startedDetails) details() map[string]any {
	var m map[string]any
	b, _ := json.Marshal(d)
	_ = json.Unmarshal(b, &m)
	return m
}

// spooled is one audit event of the fallback file.
type spooled struct {
	airlock.AuditEvent
	raw []byte
}

func (e *spooled) spoolID() string {
	id, _ := e.Details["spool_id"].(string)
	return id
}

func (e *spooled) started() (*startedDetails, error) {
	b, err := json.Marshal(e.Details)
	if err != nil {
		return nil, err
	}
	var d startedDetails
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	if d.EventID == "" || d.AccountID == "" || d.TokenHash == "" {
		return nil, errors.New("breakglass.started event without event, account or token hash")
	}
	return &d, nil
}

// readFallbackLocked parses the fallback audit file.
func (s *Service) readFallbackLocked() ([]*spooled, error) {
	lines, err := s.auditSpool.readLocked()
	if err != nil {
		return nil, err
	}
	out := make([]*spooled, 0, len(lines))
	for i, l := range lines {
		var e airlock.AuditEvent
		if err := json.Unmarshal(l, &e); err != nil || e.Type == "" {
			return nil, fmt.Errorf("breakglass: local audit file line %d is not an audit event", i+1)
		}
		if e.Details == nil {
			e.Details = map[string]any{}
		}
		out = append(out, &spooled{AuditEvent: e, raw: l})
	}
	return out, nil
}

// offlineLocked reports whether the fallback file holds an unmerged
// "breakglass.started" event of account: an offline use not yet recorded
// in the store still locks the account.
func (s *Service) offlineLocked(accountID string) (bool, error) {
	s.auditSpool.mu.Lock()
	defer s.auditSpool.mu.Unlock()
	events, err := s.readFallbackLocked()
	if err != nil {
		return true, err // fail closed
	}
	for _, e := range events {
		if e.Type != "breakglass.started" {
			continue
		}
		if id, _ := e.Details["account_id"].(string); id == accountID {
			return true, nil
		}
	}
	return false, nil
}

// loadOfflineCounts reads the sign counts of unmerged offline uses.
func (s *Service) loadOfflineCounts() error {
	s.auditSpool.mu.Lock()
	events, err := s.readFallbackLocked()
	s.auditSpool.mu.Unlock()
	if err != nil {
		return err
	}
	for _, e := range events {
		if e.Type != "breakglass.started" || e.CredentialID == "" {
			continue
		}
		d, err := e.started()
		if err != nil {
			continue
		}
		id, err := base64.RawURLEncoding.DecodeString(e.CredentialID)
		if err != nil {
			continue
		}
		s.noteSignCount(id, d.SignCount)
	}
	return nil
}

// noteSignCount raises the remembered sign count of credential id.
func (s *Service) noteSignCount(id []byte, n uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > s.signCounts[string(id)] {
		s.signCounts[string(id)] = n
	}
}

// Merge folds the local fallback audit file into the log and records the
// events of offline uses in the store, once the store is back (Ping). It
// appends the spooled events in file order (skipping those already in the
// log: their spool_id is there, so a merge interrupted by a crash is
// simply run again), creates the BreakGlassEvent row of every offline use
// (so the account stays locked until reviewed), ends those ended offline,
// stores the sign counts, audits "breakglass.merged" and then renames the
// file aside (audit-fallback.merged-<unix nanos>.jsonl). It returns how
// many audit events it appended.
func (s *Service) Merge(ctx context.Context) (int, error) {
	s.mergeMu.Lock()
	defer s.mergeMu.Unlock()
	// Appends wait for the merge: nothing written meanwhile is renamed
	// away unmerged.
	s.auditSpool.mu.Lock()
	defer s.auditSpool.mu.Unlock()
	events, err := s.readFallbackLocked()
	if err != nil {
		return 0, airlock.Wrap(airlock.EINTERNAL, "local audit file", err)
	}
	if len(events) == 0 {
		return 0, nil
	}
	if err := s.store.Ping(ctx); err != nil {
		return 0, airlock.Wrap(airlock.EUNAVAILABLE, "store still unavailable", err)
	}
	since := events[0].Time
	for _, e := range events {
		if e.Time.Before(since) {
			since = e.Time // a clock that stepped back
		}
	}
	seen, err := s.spoolIDsInLog(ctx, since)
	if err != nil {
		return 0, err
	}
	merged := 0
	for _, e := range events {
		if id := e.spoolID(); id != "" && seen[id] {
			continue
		}
		ev := e.AuditEvent
		ev.Seq = 0
		ev.Details["merged"] = true
		if err := s.log.Record(ctx, ev); err != nil {
			return merged, err
		}
		merged++
	}
	var conflicts []string
	for _, e := range events {
		switch e.Type {
		case "breakglass.started":
			if c, err := s.mergeStarted(ctx, e); err != nil {
				return merged, err
			} else if c != "" {
				conflicts = append(conflicts, c)
			}
		case "breakglass.ended":
			id, _ := e.Details["event_id"].(string)
			reason, _ := e.Details["end_reason"].(string)
			err := s.store.EndBreakGlassEvent(ctx, id, reason, e.Time)
			if err != nil && airlock.ErrorCode(err) != airlock.ECONFLICT && airlock.ErrorCode(err) != airlock.ENOTFOUND {
				return merged, err
			}
		}
	}
	m := airlock.AuditEvent{Type: "breakglass.merged", Outcome: airlock.OutcomeSuccess,
		Details: map[string]any{"events": merged, "spooled": len(events)}}
	if len(conflicts) > 0 {
		m.Details["conflicts"] = conflicts
	}
	if err := s.log.Record(ctx, m); err != nil {
		return merged, err
	}
	aside := filepath.Join(filepath.Dir(s.auditSpool.path), "audit-fallback.merged-"+strconv.FormatInt(s.now().UnixNano(), 10)+".jsonl")
	if err := os.Rename(s.auditSpool.path, aside); err != nil {
		return merged, airlock.Wrap(airlock.EINTERNAL, "rotate the local audit file", err)
	}
	s.logger.Info("break-glass local audit file merged into the audit log", "events", merged, "moved_to", aside)
	return merged, nil
}

// mergeStarted records the event row of an offline use. A row with that
// id already there is fine (merged before); another unreviewed use of the
// account blocks the insert — that one keeps the account locked — and is
// reported back for the merge record.
func (s *Service) mergeStarted(ctx context.Context, e *spooled) (string, error) {
	d, err := e.started()
	if err != nil {
		return "", airlock.Wrap(airlock.EINTERNAL, "local audit file: "+err.Error(), err)
	}
	th, err := base64.RawURLEncoding.DecodeString(d.TokenHash)
	if err != nil {
		return "", airlock.Wrap(airlock.EINTERNAL, "local audit file: bad token hash", err)
	}
	credID, _ := base64.RawURLEncoding.DecodeString(e.CredentialID)
	ev := &airlock.BreakGlassEvent{ID: d.EventID, AccountID: d.AccountID, CredentialID: credID,
		Justification: d.Justification, Scopes: d.Scopes, IP: e.IP, UserAgent: d.UserAgent, TokenHash: th,
		StartedAt: d.StartedAt, EndsAt: d.EndsAt, AlertIDs: d.AlertIDs, AlertDelivered: d.AlertDelivered, Offline: true}
	conflict := ""
	if err := s.store.CreateBreakGlassEvent(ctx, ev); airlock.ErrorCode(err) == airlock.ECONFLICT {
		if _, ferr := s.store.FindBreakGlassEventByID(ctx, ev.ID); ferr != nil {
			conflict = ev.ID
			s.logger.Error("break-glass: an offline use could not be recorded as an event: the account has another unreviewed use",
				"event", ev.ID, "account", ev.AccountID, "err", err)
		}
	} else if err != nil {
		return "", err
	}
	// The sign count of the use, unless a later one is stored already.
	if len(credID) > 0 {
		if c, err := s.store.FindCredentialByID(ctx, credID); err == nil && c.SignCount < d.SignCount {
			if err := s.store.UpdateCredentialUse(ctx, credID, c.SignCount, d.SignCount, false, d.StartedAt); err != nil &&
				airlock.ErrorCode(err) != airlock.ECONFLICT {
				return conflict, err
			}
		}
	}
	return conflict, nil
}

// spoolIDsInLog returns the spool ids of break-glass events already in the
// log since the first spooled event's time.
func (s *Service) spoolIDsInLog(ctx context.Context, since time.Time) (map[string]bool, error) {
	seen := map[string]bool{}
	f := airlock.AuditFilter{Type: "breakglass.", Since: since, Limit: 500}
	for {
		page, err := s.log.List(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			if id, ok := e.Details["spool_id"].(string); ok {
				seen[id] = true
			}
		}
		if len(page) < f.Limit {
			return seen, nil
		}
		f.AfterSeq = page[len(page)-1].Seq
	}
}

// truncate empties the file at path (if any), durably.
func truncate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(0); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}
