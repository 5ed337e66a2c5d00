package policyfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"airlock/policy"
)

const permitAll = "@id(\"all\")\n@owner(\"t\")\n@review_by(\"2030-01-01\")\npermit (principal, action, resource);\n"

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func defaultDir(t *testing.T) string {
	dir := t.TempDir()
	for name, b := range policy.DefaultFiles() {
		writeFiles(t, dir, map[string]string{name: string(b)})
	}
	return dir
}

func TestLoadDir(t *testing.T) {
	dir := defaultDir(t)
	writeFiles(t, dir, map[string]string{"README.md": "not a policy", ".hidden.cedar": "garbage ("})
	os.Mkdir(filepath.Join(dir, "sub.cedar"), 0o755)
	set, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if set.Version() != policy.Default().Version() {
		t.Fatalf("version %s, want the default's %s", set.Version(), policy.Default().Version())
	}
}

func TestLoadDirErrors(t *testing.T) {
	t.Run("fail-missing-dir", func(t *testing.T) {
		_, err := LoadDir(filepath.Join(t.TempDir(), "nope"))
		if err == nil || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("fail-no-policy-files", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"x.txt": permitAll})
		if _, err := LoadDir(dir); err == nil || !strings.Contains(err.Error(), "no .cedar files") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("fail-invalid-names-file-and-line", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"a.cedar": permitAll, "b.cedar": "\n\nforbid (principal, action"})
		_, err := LoadDir(dir)
		if err == nil || !strings.Contains(err.Error(), "b.cedar:3:") || !strings.Contains(err.Error(), dir) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("fail-too-large", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"a.cedar": permitAll + strings.Repeat("//\n", MaxFileSize/3+1)})
		if _, err := LoadDir(dir); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("err %v", err)
		}
	})
}

// TestWatcherKeepsLastGood: an invalid change keeps the last good set and
// is reported once; a valid change is swapped in; a deleted directory keeps
// the set too.
func TestWatcherKeepsLastGood(t *testing.T) {
	dir := defaultDir(t)
	good, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := policy.NewEngine(good, policy.DefaultConfig())
	var errs []error
	var reloads []string
	w := &Watcher{Dir: dir, Engine: e, OnError: func(err error) { errs = append(errs, err) },
		OnReload: func(s *policy.Set) { reloads = append(reloads, s.Version()) }}

	if changed, err := w.Check(); changed || err != nil {
		t.Fatalf("unchanged dir: %v %v", changed, err)
	}
	writeFiles(t, dir, map[string]string{"20-stepup.cedar": "forbid (principal, action, resource) when { context.nope };"})
	for range 3 {
		if changed, err := w.Check(); changed || err == nil {
			t.Fatalf("invalid dir: changed=%v err=%v", changed, err)
		}
	}
	if e.Set() != good || len(errs) != 1 || !strings.Contains(errs[0].Error(), "20-stepup.cedar:1:1") || !strings.Contains(errs[0].Error(), "keeping policy version "+good.Version()) {
		t.Fatalf("set %v, errors %v", e.Set().Version(), errs)
	}

	os.Remove(filepath.Join(dir, "20-stepup.cedar"))
	writeFiles(t, dir, map[string]string{"99-all.cedar": strings.ReplaceAll(permitAll, `"all"`, `"extra"`)})
	if changed, err := w.Check(); !changed || err != nil {
		t.Fatalf("valid change: %v %v", changed, err)
	}
	if e.Set() == good || len(reloads) != 1 || reloads[0] != e.Set().Version() {
		t.Fatalf("not swapped: reloads %v", reloads)
	}
	current := e.Set()

	os.RemoveAll(dir)
	if changed, err := w.Check(); changed || err == nil {
		t.Fatalf("deleted dir: %v %v", changed, err)
	}
	if e.Set() != current || len(errs) != 2 {
		t.Fatalf("deleted dir replaced the set or was not reported: %v", errs)
	}
}

func TestWatcherRun(t *testing.T) {
	dir := defaultDir(t)
	e := policy.NewEngine(policy.Default(), policy.DefaultConfig())
	reloaded := make(chan *policy.Set, 1)
	w := &Watcher{Dir: dir, Engine: e, Interval: time.Millisecond, OnReload: func(s *policy.Set) { reloaded <- s }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	writeFiles(t, dir, map[string]string{"99-all.cedar": strings.ReplaceAll(permitAll, `"all"`, `"extra"`)})
	select {
	case s := <-reloaded:
		if e.Set() != s {
			t.Fatal("reloaded set not in use")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reload")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if err := (&Watcher{Dir: dir}).Run(ctx); err == nil {
		t.Fatal("Run without engine")
	}
}
