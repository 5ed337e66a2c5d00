// Package policyfs loads Cedar policy sets from a directory and hot-reloads
// them, keeping the last good set when a new one is invalid.
package policyfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"airlock/policy"
)

// Ext is the extension of the policy files read from a directory.
const Ext = ".cedar"

// MaxFileSize bounds one policy file (1 MiB).
const MaxFileSize = 1 << 20

// ReadDir returns the policy files of dir (name → content): every regular
// file (or link to one) whose name ends in .cedar and does not start with
// a dot, not descending into subdirectories. A missing or unreadable
// directory, or one without policy files, is an error.
func ReadDir(dir string) (map[string][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("policyfs: %w", err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, Ext) || strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path) // follows links (e.g. a Kubernetes ConfigMap)
		if err != nil {
			return nil, fmt.Errorf("policyfs: %w", err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		b, err := readFile(path)
		if err != nil {
			return nil, err
		}
		files[name] = b
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("policyfs: %s: no %s files", dir, Ext)
	}
	return files, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policyfs: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("policyfs: %w", err)
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("policyfs: %s: larger than %d bytes", path, MaxFileSize)
	}
	return b, nil
}

// LoadDir reads and compiles the policy files of dir. Errors name the
// directory and, for invalid policies, the file and line.
func LoadDir(dir string) (*policy.Set, error) {
	files, err := ReadDir(dir)
	if err != nil {
		return nil, err
	}
	set, err := policy.Compile(files)
	if err != nil {
		return nil, fmt.Errorf("policyfs: %s: %w", dir, err)
	}
	return set, nil
}

// DefaultInterval is how often a Watcher polls when Interval is zero.
const DefaultInterval = 2 * time.Second

// Watcher polls a policy directory and swaps a newly valid set into an
// engine. An invalid or unreadable directory never replaces the engine's
// set: the last good one stays in force, and OnError is called once per
// distinct failure (not on every poll).
type Watcher struct {
	Dir    string
	Engine *policy.Engine
	// Interval between polls; zero means DefaultInterval.
	Interval time.Duration
	// OnError is told about a change that could not be activated (e.g. to
	// audit "policy.reload_failed" and alert). Optional.
	OnError func(error)
	// OnReload is told about a newly active set. Optional.
	OnReload func(*policy.Set)

	mu        sync.Mutex
	failed    string // version (or error text) of the last reported failure
	failedErr error
}

// Check polls once: it reads the directory and, when its content differs
// from the engine's set, compiles it and swaps it in. It reports whether
// the engine's set changed, and, while the directory's content cannot be
// activated, why (on every call; OnError only on the first).
func (w *Watcher) Check() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	files, err := ReadDir(w.Dir)
	if err != nil {
		return false, w.fail(err.Error(), err)
	}
	v := policy.VersionOf(files)
	if cur := w.Engine.Set(); cur != nil && cur.Version() == v {
		w.failed, w.failedErr = "", nil
		return false, nil
	}
	if v == w.failed {
		return false, w.failedErr // already reported; still invalid
	}
	set, err := policy.Compile(files)
	if err != nil {
		return false, w.fail(v, fmt.Errorf("policyfs: %s: %w (keeping %s)", w.Dir, err, version(w.Engine.Set())))
	}
	w.Engine.Swap(set)
	w.failed, w.failedErr = "", nil
	if w.OnReload != nil {
		w.OnReload(set)
	}
	return true, nil
}

func version(s *policy.Set) string {
	if s == nil {
		return "no policy set"
	}
	return "policy version " + s.Version()
}

// fail records a failure identified by key and reports it to OnError once.
func (w *Watcher) fail(key string, err error) error {
	if key == w.failed {
		return w.failedErr
	}
	w.failed, w.failedErr = key, err
	if w.OnError != nil {
		w.OnError(err)
	}
	return err
}

// Run polls until ctx is done and returns ctx's error.
func (w *Watcher) Run(ctx context.Context) error {
	if w.Engine == nil {
		return errors.New("policyfs: watcher without an engine")
	}
	iv := w.Interval
	if iv <= 0 {
		iv = DefaultInterval
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			w.Check()
		}
	}
}
